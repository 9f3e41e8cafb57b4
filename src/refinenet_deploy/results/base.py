"""What every result document shares: its schema name and version, a bounded read, the field checks that name the
file and the field, and the dispatch from the ``schema`` field to the class that reads it.

A result class declares ``SCHEMA`` (its name), ``VERSION`` (what this rfdeploy writes) and ``READS`` (every version
it reads); legacy fields are read in one place per class (``_from_legacy``). An unknown schema or version is refused
(``DataError``, exit 5) with a message naming the version and the fix."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..errors import DataError, InputReadError, JSONLimitError, nonfinite_field, read_json

HINT = "pass the files written by 'rfdeploy bench --json' or 'parity --json'"
MIN_MS, MAX_MS = 1e-6, 1e9  # a p50 outside is not a timing (and would break ratios and chart scales)


class JsonWriter(Protocol):
    """How a document reaches the disk: ``artifacts.write_json_atomic`` (the artifact layer owns renames)."""

    def __call__(self, path: Any, obj: Any, /) -> Path: ...


def bad(where: Any, what: str, hint: str = HINT) -> DataError:
    """The one refusal of a result file: ``<file>: <what>`` and the hint naming what to pass."""
    return DataError(f"{where}: {what}", hint=hint)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_KINDS: dict[str, Callable[[Any], bool]] = {
    "a number": is_number,
    "a string": lambda v: isinstance(v, str),
    "an object": lambda v: isinstance(v, dict),
    "true or false": lambda v: isinstance(v, bool),
    "a list": lambda v: isinstance(v, list),
    "an integer": is_int,
    "a positive integer": lambda v: is_int(v) and v > 0,
    "[height, width]": lambda v: isinstance(v, list) and len(v) == 2 and all(is_int(d) and d > 0 for d in v),
}


class Fields:
    """Typed access to one JSON object of a result: every read names the file and the field when it fails."""

    def __init__(self, doc: Mapping[str, Any], where: Any, prefix: str = "", hint: str = HINT) -> None:
        self.doc, self.where, self.prefix, self.hint = doc, where, prefix, hint

    def name_of(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def _check(self, key: str, value: Any, kind: str) -> Any:
        if not _KINDS[kind](value):
            raise bad(
                self.where, f"field '{self.name_of(key)}' must be {kind}, found {json.dumps(value)[:60]}", self.hint
            )
        return value

    def required(self, key: str, kind: str) -> Any:
        """``doc[key]``, refused when missing (or null) or of the wrong kind."""
        value = self.doc.get(key, None)
        if value is None:
            raise bad(self.where, f"missing required field '{self.name_of(key)}'", self.hint)
        return self._check(key, value, kind)

    def optional(self, key: str, kind: str) -> Any:
        """``doc[key]`` or None when absent or null; refused when of the wrong kind."""
        value = self.doc.get(key, None)
        return None if value is None else self._check(key, value, kind)

    def child(self, key: str) -> Fields | None:
        """The object at ``key`` as Fields, or None when absent or null."""
        value = self.optional(key, "an object")
        return None if value is None else Fields(value, self.where, self.name_of(key), self.hint)


class ResultDocument:
    """A result that writes and reads its own JSON (a mixin of the result dataclasses)."""

    SCHEMA: ClassVar[str]
    VERSION: ClassVar[int]
    READS: ClassVar[tuple[int, ...]]

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any = "result") -> Any:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write(self, path: str | Path, write_json: JsonWriter) -> Path:
        """Write the document to ``path`` with ``write_json`` (``artifacts.write_json_atomic``)."""
        return write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> Any:
        """Read ``path``: refused (DataError, exit 5) unless it is a readable ``cls`` document."""
        doc = read_document(path)
        if not isinstance(doc, cls):
            raise bad(path, f"not a {cls.SCHEMA} result (schema {type(doc).SCHEMA!r})")
        return doc


def check_version(doc: Mapping[str, Any], where: Any, schema: str, reads: tuple[int, ...], hint: str = HINT) -> int:
    """The document's ``schema_version``, refused when missing or not one of ``reads``."""
    version = doc.get("schema_version", None)
    if version is None:
        raise bad(where, "missing required field 'schema_version'", hint)
    if not is_int(version) or version not in reads:
        raise bad(
            where,
            f"{schema} schema_version {version!r} is not one this rfdeploy reads "
            f"(it knows {', '.join(map(str, reads))}). Upgrade refinenet-deploy or re-run the step",
            hint,
        )
    return int(version)


def load_json(path: str | Path, kind: str = "a bench or parity JSON", hint: str = HINT) -> Any:
    """A result file's JSON, bounded in size and depth (a regular file only: a FIFO would block). Every failure is
    ``DataError`` (exit 5) naming the file; ``kind`` names what the file should have been, ``hint`` the fix."""
    path = Path(path)
    try:
        return read_json(path)
    except UnicodeDecodeError:
        raise bad(path, f"not a text (UTF-8) file, so not {kind}", hint) from None
    except json.JSONDecodeError as exc:
        raise bad(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", hint) from None
    except JSONLimitError as exc:
        raise bad(path, f"not {kind} ({exc})", hint) from None
    except InputReadError as exc:
        raise DataError(exc.message) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def result_classes() -> dict[str, type[ResultDocument]]:
    """Every result schema by name (bench and parity: the results a report reads)."""
    from .bench import BenchResult
    from .parity import ParityResult

    return {BenchResult.SCHEMA: BenchResult, ParityResult.SCHEMA: ParityResult}


def known_schema_versions() -> dict[str, tuple[int, ...]]:
    """The bench and parity JSON versions this rfdeploy reads."""
    return {name: cls.READS for name, cls in result_classes().items()}


def parse_document(doc: Any, where: Any) -> Any:
    """A parsed JSON document as its result class (``BenchResult`` or ``ParityResult``); DataError naming ``where``
    and the field for anything else: NaN/Infinity, not an object, unknown schema or version, a bad field."""
    bad_number = nonfinite_field(doc)
    if bad_number is not None:  # NaN or Infinity: Python's json reads them, no result can hold one
        raise bad(where, f"field {bad_number!r} is not a finite number (NaN or Infinity)")
    if not isinstance(doc, dict):
        raise bad(where, f"expected a JSON object, found {type(doc).__name__} ({json.dumps(doc)[:40]})")
    classes = result_classes()
    schema = doc.get("schema", None)
    if not isinstance(schema, str) or schema not in classes:
        found = "no 'schema' field" if schema is None else f"schema {schema!r}"
        raise bad(where, f"not a bench or parity result ({found}; expected {' or '.join(classes)})")
    return classes[schema].from_dict(doc, where)


def read_document(path: str | Path) -> Any:
    """Read one result file (bounded) and return it as its class."""
    return parse_document(load_json(path), Path(path))


def finite_ms(value: float) -> bool:
    return math.isfinite(value) and MIN_MS <= value <= MAX_MS
