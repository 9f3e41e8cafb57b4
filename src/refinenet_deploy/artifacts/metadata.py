"""The sidecar schema: what every artifact records about itself (the model description that travels along the
chain, the step's own record, one provenance block), how it is written (``<name>.meta.json`` and, for ONNX,
``metadata_props``) and how later steps read it back, checked."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..enums import Precision
from ..errors import (
    IncompatibleArtifactError,
    InputReadError,
    InvalidModelError,
    loads_json,
    printable,
    read_json,
    regular_file,
)
from ..results.build import SIDECAR_PREFIX, SIDECAR_SCHEMA_VERSION, SIDECAR_SCHEMA_VERSIONS
from .inputs import INPUT_FORMATS
from .onnx import check_external_data, check_onnx_graph, load_onnx, onnx_precision
from .paths import sidecar_path, utc_now

ONNX_METADATA_KEY = "refinenet_deploy"

# The model description: written by export, inherited by every artifact made from it.
MODEL_KEYS = (
    "arch",
    "num_classes",
    "class_names",
    "normalization",
    "input_format",
    "head",
    "opset",
    "exporter",
    "simplifier",
    "dynamic",
    "dynamic_batch",
    "export_size",
    "batch",
    "inputs",
    "outputs",
    "checkpoint",
)


def provenance(command: str = "", packages: Sequence[str] = ()) -> dict[str, Any]:
    """One provenance record: this tool, the command, package versions and the host (CPU/ISA, GPUs, JetPack)."""
    from ..environment import host_fingerprint, package_versions

    return {
        "tool": "refinenet-deploy",
        "tool_version": __version__,
        "created": utc_now(),
        "command": command,
        "versions": {k: v for k, v in package_versions(tuple(packages)).items() if v},
        "host": host_fingerprint(),
    }


def sidecar(
    kind: str,
    precision: str,
    *,
    source: Mapping[str, Any] | None = None,
    command: str = "",
    packages: Sequence[str] = (),
    **record: Any,
) -> dict[str, Any]:
    """The sidecar of a new artifact: the model description inherited from ``source`` (the upstream metadata),
    the step's ``record`` and one provenance block. Keys of the upstream step's own record are not inherited."""
    inherited = {k: v for k, v in (source or {}).items() if k in MODEL_KEYS}
    meta: dict[str, Any] = {
        "format": f"{SIDECAR_PREFIX}{kind}",
        "schema_version": SIDECAR_SCHEMA_VERSION,
        **inherited,
        "precision": str(precision),
    }
    meta.update(record)
    meta["provenance"] = provenance(command, packages)
    return meta


def embed_onnx_metadata(model: Any, meta: Mapping[str, Any]) -> None:
    """Write the sidecar into an ONNX model's ``metadata_props`` (plus a few plain keys for other tools)."""
    del model.metadata_props[:]
    plain = {k: meta.get(k) for k in ("arch", "num_classes", "input_format", "head", "precision")}
    plain["tool_version"] = __version__
    props = {f"{ONNX_METADATA_KEY}.{k}": str(v) for k, v in plain.items()}
    props[ONNX_METADATA_KEY] = json.dumps(meta)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def load_onnx_artifact(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """What a step that reads an ONNX needs: (ModelProto, metadata), the file parsed once and its graph checked
    (``check_onnx_graph``) and its external data files present (``check_external_data``); exit 5 for a file that
    is not a usable model, 7 for unreadable metadata."""
    path = Path(path)
    model = load_onnx(path)
    check_onnx_graph(model, path)
    check_external_data(model, path)
    return model, _metadata_from(path, model)


# Types of the sidecar keys later steps read; anything else in a sidecar is only recorded.
_META_TYPES: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "format": (str,),
    "arch": (str,),
    "num_classes": (int,),
    "class_names": (list,),
    "normalization": (dict, str),
    "input_format": (str,),
    "head": (str,),
    "precision": (str,),
    "opset": (int,),
    "dynamic": (bool,),
    "dynamic_batch": (bool,),
    "export_size": (list,),
    "batch": (int,),
    "inputs": (list,),
    "outputs": (list,),
    "checkpoint": (dict,),
    "calibration": (dict,),
    "quantization": (dict,),
    "provenance": (dict,),
}


def _check_metadata(meta: Any, where: Path) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise InvalidModelError(
            f"metadata in {where} is a JSON {type(meta).__name__}, not an object. Re-export the model"
        )
    for key, types in _META_TYPES.items():
        value = meta.get(key)
        if value is None:
            continue
        ok = isinstance(value, types) and not (bool not in types and isinstance(value, bool))
        if not ok:
            raise InvalidModelError(
                f"metadata in {where}: {key!r} is {type(value).__name__} {str(value)[:40]!r}, expected "
                f"{' or '.join(t.__name__ for t in types)}. Re-export the model"
            )
    export = meta.get("export_size")
    if export is not None and (
        len(export) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in export)
    ):
        raise InvalidModelError(f"metadata in {where}: export_size {export!r} is not [H, W]. Re-export the model")
    if meta.get("input_format") is not None and meta["input_format"] not in INPUT_FORMATS:
        raise InvalidModelError(
            f"metadata in {where}: unknown input_format {meta['input_format']!r}. Re-export the model"
        )
    for key in ("num_classes", "batch"):
        if meta.get(key) is not None and meta[key] < 1:
            raise InvalidModelError(f"metadata in {where}: {key} {meta[key]} is not positive. Re-export")
    version = meta.get("schema_version")
    if version is not None and version not in SIDECAR_SCHEMA_VERSIONS:
        raise IncompatibleArtifactError(
            f"metadata in {where} has schema version {version}; this rfdeploy reads "
            f"{', '.join(map(str, SIDECAR_SCHEMA_VERSIONS))}. Upgrade refinenet-deploy "
            "or re-export the model"
        )
    return meta


def _metadata_from(artifact: Path, model: Any | None = None) -> dict[str, Any]:
    if not artifact.is_dir() and (artifact.exists() or artifact.is_symlink()):
        regular_file(artifact, "model file")  # a FIFO would block every later open() of it
    side = sidecar_path(artifact)
    meta: Any = None
    where = artifact
    if side.exists() or side.is_symlink():
        try:
            meta = read_json(side)
        except ValueError as exc:  # bad JSON, bad UTF-8, nested too deep or too large
            raise InvalidModelError(
                f"metadata sidecar is not valid JSON ({exc}): {printable(side)}. Re-export the model"
            ) from exc
        except InputReadError:
            raise
        except OSError as exc:
            raise InvalidModelError(f"cannot read the metadata sidecar {printable(side)}: {exc.strerror}") from exc
        where = side
    elif artifact.suffix == ".onnx" and artifact.is_file():
        for prop in (model if model is not None else load_onnx(artifact)).metadata_props:
            if prop.key == ONNX_METADATA_KEY:
                try:
                    meta = loads_json(prop.value)
                except ValueError as exc:
                    raise InvalidModelError(f"{artifact.name} has unreadable metadata. Re-export the model") from exc
    if meta is None:
        return {}
    return _check_metadata(meta, where)


def read_metadata(artifact: str | Path) -> dict[str, Any]:
    """The sidecar if present, else the ONNX ``metadata_props`` entry; an empty dict if neither exists.

    A sidecar that is not a JSON object, or whose known keys have the wrong types, and an ONNX that cannot be
    parsed are refused as corrupt (InvalidModelError, exit 5); a schema version this tool does not know is a
    mismatch (IncompatibleArtifactError, exit 7)."""
    return _metadata_from(Path(artifact))


def artifact_precision(artifact: str | Path, meta: Mapping[str, Any] | None = None) -> Precision:
    """What an artifact is: read from the graph for ONNX (never trusted from a sidecar), else the sidecar."""
    artifact = Path(artifact)
    if artifact.suffix == ".onnx" and artifact.is_file():
        return onnx_precision(load_onnx(artifact))
    value = (meta if meta is not None else read_metadata(artifact)).get("precision") or "fp32"
    try:
        return Precision(value)
    except ValueError:
        raise IncompatibleArtifactError(
            f"{artifact.name}: unknown precision {value!r} in its metadata. Rebuild the artifact"
        ) from None
