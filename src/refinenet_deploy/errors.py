"""Typed errors, each with the process exit code the CLI uses for it.

The library raises these and never prints or exits; ``cli.main`` maps them to
``error: ...`` on stderr and the exit code below.

| code | meaning |
|---|---|
| 2 | bad usage or option combination; an output that cannot be written (``OutputWriteError``) |
| 3 | a validation gate failed (parity, latency) |
| 4 | an optional backend is not installed |
| 5 | bad model name, model file, checkpoint, image or dataset; an input that cannot be read (``InputReadError``) |
| 6 | conversion or engine build failed |
| 7 | artifact does not match this environment |

The environment refusing a file (``OSError``: no space, a file-size limit, a quota, a permission, a read-only
file system, a FIFO or a symlink loop where a file should be) is one rule in every command: writing an output is
exit 2 (``write_failed``), reading an input exit 5 (``read_failed``), each naming the path and the system's reason.
Names in messages go through ``printable`` so that a control character in a file name never splits the one
``error:`` line.
"""

from __future__ import annotations

import errno as _errno
import json as _json
import os as _os
import re as _re
from typing import Any


class RefineNetDeployError(Exception):
    """Base class: a failure the user can act on. ``hint`` is an optional second line."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RefineNetDeployError):
    exit_code = 2


class ParityError(RefineNetDeployError):
    exit_code = 3


class LatencyBudgetError(RefineNetDeployError):
    exit_code = 3


class MissingDependencyError(RefineNetDeployError):
    exit_code = 4


class ModelNotFoundError(RefineNetDeployError):
    exit_code = 5


class CheckpointError(RefineNetDeployError):
    exit_code = 5


class DataError(RefineNetDeployError):
    """An image, label or dataset layout that cannot be read or is not supported."""

    exit_code = 5


class CalibrationError(RefineNetDeployError):
    exit_code = 5


class InvalidModelError(RefineNetDeployError):
    """A model file (ONNX) that cannot be read or is not an image model this tool can run."""

    exit_code = 5


class ExportError(RefineNetDeployError):
    exit_code = 6


class EngineBuildError(RefineNetDeployError):
    exit_code = 6


class IncompatibleArtifactError(RefineNetDeployError):
    exit_code = 7


class OutputWriteError(RefineNetDeployError):
    """An output that the environment does not let us write (no space, file-size limit, quota, permission,
    read-only file system): exit 2, like an unwritable output found before any work. ``path`` and ``cause`` (the
    ``OSError``) are set by ``write_failed``."""

    exit_code = 2
    path: object = None
    cause: BaseException | None = None


class InputReadError(RefineNetDeployError):
    """An input that cannot be read (permission, a FIFO or device where a file should be, a symlink loop, an
    I/O error), or a JSON input nested too deep or too large: exit 5, like any bad input."""

    exit_code = 5


# --------------------------------------------------------------------------------------------- helpers
_CONTROL = _re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``): a file name in a message never splits the
    one ``error:`` line nor drives the terminal."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


def os_reason(exc: BaseException) -> str:
    """The system's reason for an ``OSError`` (``No space left on device``), else the exception text."""
    if isinstance(exc, OSError):
        if exc.strerror:
            return exc.strerror
        if exc.errno:
            return _os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


_WRITE_ADVICE = {
    _errno.ENOSPC: "Free some space or choose another output folder",
    _errno.EFBIG: "Raise the file-size limit (ulimit -f) or choose another output folder",
    _errno.EDQUOT: "Free some of your quota or choose another output folder",
    _errno.EROFS: "Choose an output folder on a writable file system",
    _errno.EACCES: "Choose an output folder you can write to",
    _errno.EPERM: "Choose an output folder you can write to",
}
WRITE_ERRNOS = frozenset(_WRITE_ADVICE)


def write_cause(exc: BaseException) -> OSError | None:
    """The ``OSError`` of a refused write (no space, file-size limit, quota, read-only, permission) behind ``exc``,
    which a third-party library may have wrapped in its own exception type; None if there is none."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in WRITE_ERRNOS:
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def write_failed(path: object, exc: BaseException) -> OutputWriteError:
    """The error for an output the environment refused (exit 2), naming the path and the system's reason."""
    advice = _WRITE_ADVICE.get(getattr(exc, "errno", None) or 0, "Check the output folder and the disk")
    error = OutputWriteError(f"cannot write {printable(path)}: {os_reason(exc)}. {advice}")
    error.path, error.cause = path, exc
    return error


def read_failed(path: object, exc: BaseException, what: str = "file") -> InputReadError:
    """The error for an input the environment refused (exit 5), naming the path and the system's reason."""
    code = getattr(exc, "errno", None)
    reason = "a symlink loop" if code == _errno.ELOOP else os_reason(exc)
    return InputReadError(f"cannot read the {what} {printable(path)}: {reason}. Check the file and its permissions")


def regular_file(path: object, what: str = "file") -> None:
    """Refuse (exit 5, naming it) an existing input that is not a regular file once links are followed: a FIFO
    (opening one blocks until a writer comes), a device, a socket, a folder, a symlink loop or an unreadable
    entry. A missing path is left to the caller (each command has its own "not found" message)."""
    import stat

    try:
        mode = _os.stat(str(path)).st_mode
    except FileNotFoundError:
        if _os.path.islink(str(path)):
            raise InputReadError(
                f"the {what} {printable(path)} is a symbolic link to a missing file. Fix or remove the link"
            ) from None
        return
    except OSError as exc:
        raise read_failed(path, exc, what) from exc
    if stat.S_ISREG(mode):
        return
    kind = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    raise InputReadError(f"the {what} {printable(path)} is {kind}, not a regular file. Pass a regular file")


# Bounds of any JSON this tool parses (results, sidecars, dataset.json, manifests, pipeline state and metadata).
MAX_JSON_DEPTH = 64
MAX_JSON_BYTES = 64 << 20


class JSONLimitError(ValueError):
    """A JSON document nested deeper than ``MAX_JSON_DEPTH`` or larger than ``MAX_JSON_BYTES``."""


_JSON_STRING = _re.compile(r'"(?:[^"\\]|\\.)*"', _re.S)
_JSON_BRACKET = _re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped); an O(n) scan with no recursion."""
    depth = deepest = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        if m.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads_json(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """``json.loads`` bounded in size and depth. Raises ``ValueError`` for anything that is not a JSON document
    within the bounds (``JSONLimitError`` for the bounds, ``json.JSONDecodeError`` / ``UnicodeDecodeError`` for
    bad text); never ``RecursionError``."""
    if len(text) > max_bytes:
        raise JSONLimitError(f"larger than {max_bytes >> 20} MiB")
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    if json_depth(text) > max_depth:
        raise JSONLimitError(f"nested deeper than {max_depth} levels")
    try:
        return _json.loads(text)
    except RecursionError:
        raise JSONLimitError(f"nested deeper than {max_depth} levels") from None


def read_json(path: object, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON file parsed with ``loads_json``, opened only if it is a regular file within ``max_bytes``. Raises
    ``OSError`` (reading: not found, permission, not a regular file as ``InputReadError``) or ``ValueError``."""
    regular_file(path)
    size = _os.stat(str(path)).st_size
    if size > max_bytes:
        raise JSONLimitError(f"larger than {max_bytes >> 20} MiB")
    with open(str(path), "rb") as fh:
        data = fh.read(max_bytes + 1)
    return loads_json(data, max_depth=max_depth, max_bytes=max_bytes)


def nonfinite_field(doc: Any, where: str = "") -> str | None:
    """The dotted path (``compute_only.p50_ms``, ``per_class[2].iou``) of the first number in a parsed JSON
    document that is not finite (NaN, Infinity: Python's ``json`` accepts them), or None. Iterative."""
    import math

    stack: list[tuple[str, Any]] = [(where, doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path or "(the document)"
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
    return None
