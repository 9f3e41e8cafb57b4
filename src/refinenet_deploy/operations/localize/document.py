"""The localize JSON document (``rfdeploy parity --localize-json``, and the ``localize`` section of a parity JSON):
its schema name and version, defined here once, the writer (``LocalizeResult.to_dict``) and the reader's check
(``check_localize_document``), which the chart and the report use.

Version 1 fields: ``schema``, ``version``, ``created``, ``artifact``, ``runtime``, ``precision``, ``reference``,
``threshold_sqnr_db``, ``images``, ``first_below_threshold``, ``adds_most_error``, ``blocks`` (in execution order:
``block``, ``sqnr_db``, ``cosine``, ``max_rel_err``, ``added_db``, ``below_threshold``, optional ``note``),
``ceiling_db``, ``min_added_db``, ``tensors``, ``saved_taps``, ``saved_taps_images``, ``notes``, and for INT8
artifacts ``actions`` (per block: the exclusions and ``miou_recovered_points``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...artifacts import utc_now
from ...errors import DataError
from ...validate.localize import Localization

LOCALIZE_SCHEMA = "refinenet-deploy/localize"
LOCALIZE_SCHEMA_VERSION = 1
TAPS_SCHEMA = "refinenet-deploy/localize-taps"  # the PyTorch taps saved beside a reference (REF.taps.npz)
TAPS_SCHEMA_VERSION = 1


@dataclass
class LocalizeResult:
    localization: Localization
    artifact: str
    runtime: str
    precision: str
    tensors: dict[str, str]
    source: str
    saved_taps: str | None = None
    saved_images: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": LOCALIZE_SCHEMA,
            "version": LOCALIZE_SCHEMA_VERSION,
            "created": utc_now(),
            "artifact": self.artifact,
            "runtime": self.runtime,
            "precision": self.precision,
            "reference": self.source,
            **self.localization.to_dict(),
            "tensors": self.tensors,
            "saved_taps": self.saved_taps,
            "saved_taps_images": self.saved_images,
            "notes": self.notes,
        }


def is_localize_document(doc: Any) -> bool:
    """True for a dict that says it is a localize document (any version)."""
    return isinstance(doc, dict) and doc.get("schema") == LOCALIZE_SCHEMA


def check_localize_document(doc: Any, where: str = "document") -> dict[str, Any]:
    """``doc`` if it is a localize document of a version this package reads; else DataError (exit 5)
    naming what it is and what to do."""
    if not is_localize_document(doc):
        schema = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise DataError(
            f"{where} is not a localize document (schema {schema!r}, expected {LOCALIZE_SCHEMA!r}). "
            "Pass the JSON 'rfdeploy parity --localize --localize-json' writes"
        )
    if doc.get("version") != LOCALIZE_SCHEMA_VERSION:
        raise DataError(
            f"{where}: localize document version {doc.get('version')!r} is not readable by this refinenet-deploy "
            f"(reads version {LOCALIZE_SCHEMA_VERSION}). Run 'rfdeploy parity --localize' again with this version"
        )
    return doc
