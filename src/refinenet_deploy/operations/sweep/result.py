"""``sweep.json``: the sweep's document, its schema name and version in one place, read back strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import DataError, InputReadError, read_json

SWEEP_SCHEMA = "refinenet-deploy/sweep"
SWEEP_SCHEMA_VERSION = 1
SWEEP_FILE = "sweep.json"


def read_sweep(path: str | Path) -> dict[str, Any]:
    """A sweep document; a file of another schema or an unknown version is refused (DataError, exit 5)."""
    path = Path(path)
    try:
        doc = read_json(path)
    except (OSError, ValueError, InputReadError) as exc:
        raise DataError(
            f"{path}: not a readable sweep result ({type(exc).__name__}). Run 'rfdeploy sweep' again"
        ) from exc
    if not isinstance(doc, dict) or doc.get("schema") != SWEEP_SCHEMA:
        raise DataError(f"{path}: not a sweep result (schema {SWEEP_SCHEMA} expected)")
    if doc.get("schema_version") != SWEEP_SCHEMA_VERSION:
        raise DataError(
            f"{path}: sweep schema version {doc.get('schema_version')!r}; this rfdeploy reads version "
            f"{SWEEP_SCHEMA_VERSION}. Run the sweep again with this version"
        )
    return doc


__all__ = ["SWEEP_FILE", "SWEEP_SCHEMA", "SWEEP_SCHEMA_VERSION", "read_sweep"]
