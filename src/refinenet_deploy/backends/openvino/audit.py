"""Effective precision audit: what the OpenVINO plugin really runs, read from the compiled model's runtime graph
(``CompiledModel.get_runtime_model()``: each executed node's ``layerType`` and ``runtimePrecision``).

An "INT8" IR whose convolutions run f32 (a CPU without VNNI/AMX, a FakeQuantize the plugin could not fold) or an
FP32 IR that the CPU plugin runs in bf16 by default (AMX CPUs) is visible here, not in the IR.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..._optional import require

INT8_PRECISIONS = frozenset({"i8", "u8"})
HINTS = {"fp32": "f32", "f32": "f32", "fp16": "f16", "f16": "f16", "bf16": "bf16"}


def _rt(op: Any, key: str) -> str | None:
    info = op.get_rt_info()
    if key not in info:
        return None
    value = info[key]
    return value.astype(str) if hasattr(value, "astype") else str(value)


def runtime_precisions(compiled: Any) -> dict[str, Any]:
    """Counts of executed convolutions by runtime precision (i8/u8 counted as int8) and the shares."""
    convs: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        if _rt(op, "layerType") in ("Convolution", "GroupConvolution", "Deconvolution"):
            precision = _rt(op, "runtimePrecision") or "unknown"
            convs["int8" if precision in INT8_PRECISIONS else precision] += 1
    total = sum(convs.values())
    return {
        "convolutions": total,
        "by_precision": dict(sorted(convs.items())),
        "int8_share": round(convs["int8"] / total, 4) if total else 0.0,
        "summary": f"INT8 convolutions: {convs['int8']}/{total}",
    }


def audit_ir(
    xml: str | Path, *, device: str = "CPU", inference_precision: str = "fp32", threads: int | None = None
) -> dict[str, Any]:
    """Compile ``xml`` as the runner does (``INFERENCE_PRECISION_HINT``) and audit its runtime graph."""
    ov = require("openvino", extra="openvino")
    core = ov.Core()
    xml = Path(xml)
    model = core.read_model(str(xml), str(xml.with_suffix(".bin")))
    hint = HINTS.get(inference_precision, inference_precision)
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = core.compile_model(model, device.upper(), config)
    audit = runtime_precisions(compiled)
    try:
        caps = list(core.get_property(device.upper(), "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # noqa: BLE001  (a plugin without the property)
        caps = []
    return {"device": device.upper(), "inference_precision_hint": hint, "device_capabilities": caps, **audit}
