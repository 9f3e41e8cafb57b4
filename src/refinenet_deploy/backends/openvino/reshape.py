"""A dynamic-shape IR fixed to one input size (``ov.Model.reshape``): what a deployment at one camera size loads.

Measured on the demo model (``benchmarks/sweep_openvino_shapes.py``): the CPU plugin runs the reshaped static IR
6-16 % faster than the same IR left dynamic, FP32 and INT8 alike, so the sweep converts (and quantizes) once and
reshapes per size. Reshaping keeps the weights and FakeQuantize nodes as they are; no calibration runs again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..._optional import require
from ...errors import ExportError


def reshape_ir(xml: str | Path, size: tuple[int, int], *, input_format: str = "nchw-float") -> Any:
    """The IR ``xml`` read and reshaped to batch 1 at ``size`` (H, W): ``[1, 3, H, W]``, or ``[1, H, W, 3]`` for
    an ``nhwc-uint8`` input. A graph that cannot take that shape is an ExportError (exit 6)."""
    ov = require("openvino", extra="openvino")
    xml = Path(xml)
    h, w = int(size[0]), int(size[1])
    try:
        model = ov.Core().read_model(str(xml), str(xml.with_suffix(".bin")))
        port = model.inputs[0]
        shape = [1, h, w, 3] if input_format == "nhwc-uint8" else [1, 3, h, w]
        model.reshape({port.get_any_name(): ov.PartialShape(shape)})
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ExportError(f"OpenVINO cannot reshape {xml.name} to {h}x{w}: {first}") from exc
    return model


__all__ = ["reshape_ir"]
