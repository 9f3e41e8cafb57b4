"""The artifact layer: how every model file this tool writes reaches the disk, and what later steps read back.

Every writer (export onnx, calibrate, build openvino, build trt) goes through this package:

- ``paths``: ``check_output_path`` / ``probe_output`` refuse an output that cannot be written before any work is
  done (exit 2); sidecar and companion paths, hashes, timestamps;
- ``staging``: ``staged_artifact`` gives a temporary folder beside the output; ``Staging.commit`` renames the
  model, its companion files (an IR's ``.bin``) and its ``.meta.json`` sidecar into place, rolling back to the
  files that were there before if any rename fails, so a failed or interrupted step never leaves a model without
  its provenance or a half-written file; ``write_atomic``, ``staged_dir`` and ``clean_stale`` for the rest. It is
  the only module that renames files into place;
- ``metadata``: ``sidecar`` builds the one versioned sidecar schema (``results.SIDECAR_SCHEMA_VERSION``, documented in
  the README): the model description that travels along the chain (``MODEL_KEYS``), the step's own record, and one
  ``provenance`` block (tool and package versions, host fingerprint with GPUs/compute capability/JetPack);
  ``read_metadata`` / ``artifact_precision`` are how later steps learn what an artifact is;
- ``onnx``: ONNX files read with the core ``onnx`` package only (graph checks, external data, precision);
- ``inputs``: ``InputPolicy.from_metadata`` (how an image becomes an artifact's input) and the one input-size
  resolver, ``resolve_input_size``.

This package imports no backend. Callers import from here (``from ..artifacts import staged_artifact``).
"""

from __future__ import annotations

from .inputs import (
    INPUT_FORMATS,
    MAX_PIXELS,
    MAX_SIDE,
    MIN_SIDE,
    InputPolicy,
    checkpoint_input_size,
    parse_hw,
    resolve_input_size,
    spatial_size,
)
from .metadata import (
    MODEL_KEYS,
    ONNX_METADATA_KEY,
    artifact_precision,
    embed_onnx_metadata,
    load_onnx_artifact,
    provenance,
    read_metadata,
    sidecar,
)
from .onnx import (
    INLINE_LIMIT_BYTES,
    check_external_data,
    check_onnx_graph,
    copy_model_files,
    external_data_files,
    load_onnx,
    onnx_precision,
)
from .paths import (
    FORMATS,
    check_output_path,
    companion_paths,
    ensure_parent,
    is_inside,
    probe_output,
    remove_created,
    sha256_file,
    sidecar_path,
    utc_now,
)
from .staging import (
    OWNER_FILE,
    TMP_SUFFIX,
    ArtifactResult,
    Staging,
    clean_stale,
    staged_artifact,
    staged_dir,
    write_atomic,
    write_json_atomic,
    write_refused,
)

__all__ = [
    "FORMATS",
    "INLINE_LIMIT_BYTES",
    "INPUT_FORMATS",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "MODEL_KEYS",
    "ONNX_METADATA_KEY",
    "OWNER_FILE",
    "TMP_SUFFIX",
    "ArtifactResult",
    "InputPolicy",
    "Staging",
    "artifact_precision",
    "check_external_data",
    "check_onnx_graph",
    "check_output_path",
    "checkpoint_input_size",
    "clean_stale",
    "companion_paths",
    "copy_model_files",
    "embed_onnx_metadata",
    "ensure_parent",
    "external_data_files",
    "is_inside",
    "load_onnx",
    "load_onnx_artifact",
    "onnx_precision",
    "parse_hw",
    "probe_output",
    "provenance",
    "read_metadata",
    "remove_created",
    "resolve_input_size",
    "sha256_file",
    "sidecar",
    "sidecar_path",
    "spatial_size",
    "staged_artifact",
    "staged_dir",
    "utc_now",
    "write_atomic",
    "write_json_atomic",
    "write_refused",
]
