"""Effective precision audit of a TensorRT build: in which precision each convolution runs, from the build's layer
report (``builder.engine_layers`` / ``builder.network_layers``), recorded in the engine's sidecar as
``precision_audit``, as ``backends.openvino.audit`` does for an IR.

Two sources, and the audit says which it used:

- ``engine``: ``IEngineInspector`` of the built engine (where it deserialises: a GPU the library supports): the
  fused layers' output formats (``Int8``, ``Half``, ``Float``): what really runs;
- ``network``: the parsed network definition (no GPU needed; what a TensorRT-RTX build on a machine without a GPU
  has): what each convolution was requested in. Precision comes from the ONNX (strongly typed networks, TensorRT 11
  and RTX; and Q/DQ placement on 10.x): a convolution whose input and weights both come from a DequantizeLinear
  runs INT8, one with FP16 outputs FP16, the others FP32. Fusion can still change that, which only the engine
  inspector shows.

Not realised (a warning; ``--strict-precision`` makes the build fail, exit 6): INT8 requested and convolutions that
run FP32 (an "INT8" engine with FP32 layers: missing Q/DQ, or blocks kept in float on purpose, which are listed
too), FP16 requested and convolutions that run FP32 (TensorRT 11 builds FP32 where the ONNX is FP32).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import EngineBuildError

log = logging.getLogger(__name__)

NETWORK_NOTE = (
    "requested precisions from the parsed network (the engine does not deserialise here: no GPU this library "
    "supports); fusion may change them, which only the engine inspector shows"
)
ENGINE_NOTE = "IEngineInspector of the built engine: the fused layers' output formats"
NAMES_SHOWN = 8


def network_precision(layer: Mapping[str, Any]) -> str:
    """A parsed network layer's requested precision: int8 only when both its input and its weights come from a
    DequantizeLinear."""
    if layer.get("fed_by_dequantize") and layer.get("weights_from_dequantize", True):
        return "int8"  # INT8 input and INT8 weights (a float kernel behind a Q/DQ'd input runs FP32)
    outputs = [str(o).upper() for o in layer.get("outputs") or []]
    if any(o in ("HALF", "FP16") for o in outputs):
        return "fp16"
    if any(o in ("BF16", "BFLOAT16") for o in outputs):
        return "bf16"
    return "fp32"


def _engine_precision(layer: Mapping[str, Any]) -> str:
    text = " ".join(str(o) for o in layer.get("outputs") or []).lower()
    for key, name in (("int8", "int8"), ("bfloat16", "bf16"), ("half", "fp16"), ("fp16", "fp16"), ("float", "fp32")):
        if key in text:
            return name
    return "unknown"


def _is_convolution(layer: Mapping[str, Any], source: str) -> bool:
    kind = str(layer.get("type") or "")
    return kind in ("CONVOLUTION", "DECONVOLUTION") if source == "network" else "conv" in kind.lower()


def convolution_precisions(layers: Sequence[Mapping[str, Any]], source: str) -> dict[str, Any]:
    """Counts of convolutions by precision (``source``: "network" or "engine"), the INT8 share, the summary line
    and the names of the FP32 ones."""
    precision = network_precision if source == "network" else _engine_precision
    convs = [(str(layer.get("name")), precision(layer)) for layer in layers if _is_convolution(layer, source)]
    counts = Counter(p for _, p in convs)
    total = len(convs)
    return {
        "source": source,
        "explanation": NETWORK_NOTE if source == "network" else ENGINE_NOTE,
        "convolutions": total,
        "by_precision": dict(sorted(counts.items())),
        "int8_share": round(counts["int8"] / total, 4) if total else 0.0,
        "summary": f"INT8 convolutions: {counts['int8']}/{total}",
        "fp32_layers": [name for name, p in convs if p == "fp32"],
    }


def audit_layer_report(report: Mapping[str, Any], requested: str, *, strict: bool = False) -> dict[str, Any]:
    """The audit of a build's layer report (``{"source", "layers"}``) against the ``requested`` precision (fp32,
    fp16, int8), with ``realised`` and, when not, a ``warning`` (also logged). ``strict``: a warning is an
    ``EngineBuildError`` (exit 6) instead."""
    audit = convolution_precisions(report["layers"], report["source"])
    total, fp32 = audit["convolutions"], audit["fp32_layers"]
    warning = None
    if requested in ("int8", "fp16") and total and fp32:
        shown = ", ".join(fp32[:NAMES_SHOWN]) + (", ..." if len(fp32) > NAMES_SHOWN else "")
        what = "layers run FP32" if audit["source"] == "engine" else "layers are FP32 in the network"
        warning = (
            f"requested {requested.upper()} but {audit['summary']}; {len(fp32)}/{total} convolution {what} "
            f"({shown}){' (blocks kept in float on purpose count too)' if requested == 'int8' else ''}"
        )
    elif requested == "int8" and total and audit["int8_share"] == 0:
        warning = f"requested INT8 but {audit['summary']}"
    audit["requested"] = requested
    audit["realised"] = warning is None
    if warning:
        audit["warning"] = warning
        if strict:
            raise EngineBuildError(f"--strict-precision: {warning}. Nothing was written")
        log.warning("%s", warning)
    return audit
