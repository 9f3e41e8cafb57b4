"""Artifact provenance: the ``<stem>.meta.json`` sidecar and ONNX ``metadata_props``.

Later steps (calibrate, build, parity, bench) read these instead of asking the user again.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IncompatibleArtifactError

ONNX_METADATA_KEY = "refinenet_deploy"
SCHEMA_VERSION = 1


@dataclass
class ArtifactResult:
    """What a step that writes an artifact returns: the file, its sidecar and the metadata written there."""

    path: Path
    metadata_path: Path
    metadata: dict[str, Any]


def sidecar_path(artifact: str | Path) -> Path:
    """``model.onnx`` -> ``model.meta.json`` (``model.int8.onnx`` -> ``model.int8.meta.json``).

    Other artifacts keep their suffix, so that ``model.xml`` or ``model.engine`` built beside ``model.onnx``
    never overwrites its metadata: ``model.xml`` -> ``model.xml.meta.json``.
    """
    artifact = Path(artifact)
    if artifact.suffix == ".onnx":
        return artifact.with_name(artifact.stem + ".meta.json")
    return artifact.with_name(artifact.name + ".meta.json")


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_artifact_metadata(artifact: str | Path) -> dict[str, Any]:
    """The sidecar if present, else the ONNX ``metadata_props`` entry; empty dict if neither exists."""
    artifact = Path(artifact)
    side = sidecar_path(artifact)
    if side.is_file():
        try:
            return json.loads(side.read_text())
        except json.JSONDecodeError as exc:
            raise IncompatibleArtifactError(f"metadata sidecar is not valid JSON: {side}. Re-export the model") from exc
    if artifact.suffix == ".onnx" and artifact.is_file():
        import onnx

        model = onnx.load(str(artifact), load_external_data=False)
        for prop in model.metadata_props:
            if prop.key == ONNX_METADATA_KEY:
                return json.loads(prop.value)
    return {}
