"""``rfdeploy parity --localize``: name the RefineNet block where a deployed model departs from PyTorch.

Wiring only: the taps are ``models.taps``; their tensors in the artifact come from ``backends.taps`` (ONNX, and
OpenVINO through ``backends.openvino.taps``); the metrics and the verdict are ``validate.localize``. One job per
module:

- ``run``: ``localize_parity`` (the artifact side and the comparison);
- ``reference``: the PyTorch taps, live or saved beside a reference (``REF.taps.npz``);
- ``actions``: what to do about a block (exclusions per tool, mIoU recovered, ``calibrate --keep-float``);
- ``nncf_recovered``: mIoU recovered for NNCF INT8 IRs (one NNCF quantization per block);
- ``document``: the localize JSON document (schema name and version, defined once);
- ``chart``: SQNR along the network's depth, one line per artifact (``sqnr_chart(documents) -> PNG bytes``).
"""

from __future__ import annotations

from .actions import block_actions, keep_float_nodes, keep_float_ranking, miou_recovered
from .chart import sqnr_chart
from .document import (
    LOCALIZE_SCHEMA,
    LOCALIZE_SCHEMA_VERSION,
    TAPS_SCHEMA,
    LocalizeResult,
    check_localize_document,
    is_localize_document,
)
from .reference import MAX_TAPS_MIB, taps_path
from .run import DEFAULT_IMAGES, FUSION_NOTE, check_localize_runtimes, localize_parity

__all__ = [
    "DEFAULT_IMAGES",
    "FUSION_NOTE",
    "LOCALIZE_SCHEMA",
    "LOCALIZE_SCHEMA_VERSION",
    "MAX_TAPS_MIB",
    "TAPS_SCHEMA",
    "LocalizeResult",
    "block_actions",
    "check_localize_document",
    "check_localize_runtimes",
    "is_localize_document",
    "keep_float_nodes",
    "keep_float_ranking",
    "localize_parity",
    "miou_recovered",
    "sqnr_chart",
    "taps_path",
]
