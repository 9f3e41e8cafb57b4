"""torch -> ONNX: the graph as exported, simplified and (optionally) converted to FP16.

Exporter choice: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) is the default.
On this model family it exports natively at every opset 13-18 (the dynamo exporter starts at 18 and reaches
older opsets only through the version converter), it takes about a second instead of about a minute, and
after simplification its graph is the smaller of the two (Conv with folded BN, Clip/Relu, MaxPool, Add and
three Resize nodes plus shape arithmetic for dynamic sizes). ``exporter="dynamo"`` remains available.

Verification against PyTorch and writing the artifact are the export operation's job
(``operations.export``); this module only builds graphs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..._optional import require
from ...errors import ExportError, RefineNetDeployError, UsageError, write_cause
from ...models.deploy import HEADS
from ..graph import to_fp16  # noqa: F401  (re-exported: the export's FP16 step)

INPUT_FORMATS = ("nchw-float", "nhwc-uint8")
SIMPLIFIERS = ("onnxsim", "onnxslim", "none")
EXPORTERS = ("torchscript", "dynamo")
SUPPORTED_OPSETS = range(13, 19)
INPUT_NAME = "input"
DEFAULT_VERIFY_SIZES: tuple[tuple[int, int], ...] = ((375, 500), (468, 625))


MAX_BATCH = 256  # --batch of an exported graph


@dataclass(frozen=True)
class ExportSpec:
    """What to export; the CLI's options one-to-one."""

    arch: str = "auto"
    num_classes: int | None = None
    input_size: tuple[int, int] | None = None  # None: resolve_input_size (checkpoint metadata, else the arch's)
    batch: int = 1
    dynamic: bool = False
    dynamic_batch: bool = False
    opset: int = 17
    simplify: str = "onnxsim"
    head: str = "logits"
    input_format: str = "nchw-float"
    fp16: bool = False
    exporter: str = "torchscript"
    data: str | None = None
    verify_sizes: tuple[tuple[int, int], ...] = DEFAULT_VERIFY_SIZES
    num_verify_images: int = 4
    seed: int = 0
    trt_check: bool = True  # also parse + build with TensorRT when a TensorRT library imports

    def validate(self) -> None:
        choices = (
            (self.head, HEADS, "--head"),
            (self.input_format, INPUT_FORMATS, "--input-format"),
            (self.simplify, SIMPLIFIERS, "--simplify"),
            (self.exporter, EXPORTERS, "--exporter"),
        )
        for value, allowed, what in choices:
            if value not in allowed:
                raise UsageError(f"unsupported {what}: {value}. Use one of {', '.join(allowed)}")
        if self.opset not in SUPPORTED_OPSETS:
            first, last = SUPPORTED_OPSETS.start, SUPPORTED_OPSETS.stop - 1
            raise UsageError(f"unsupported opset: {self.opset}. Use {first}-{last}")
        if self.exporter == "dynamo" and self.opset < 18:
            raise UsageError(
                f"the dynamo exporter needs opset >= 18, got {self.opset}. Use --opset 18 or the default exporter"
            )
        from ...artifacts import MAX_PIXELS, MAX_SIDE, MIN_SIDE

        h, w = self.input_size or (MIN_SIDE, MIN_SIDE)
        if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE) or h * w > MAX_PIXELS:
            raise UsageError(
                f"--input-size {h}x{w} is out of bounds: each side {MIN_SIDE}..{MAX_SIDE}, at most "
                f"{MAX_PIXELS / 1e6:.1f} MP"
            )
        if not 1 <= self.batch <= MAX_BATCH:
            raise UsageError(f"--batch must be 1..{MAX_BATCH}, got {self.batch}")
        if self.dynamic_batch and not self.dynamic:
            raise UsageError("--dynamic-batch needs --dynamic. Add --dynamic")

    @property
    def output_name(self) -> str:
        return "labels" if self.head == "argmax" else "logits"

    @property
    def precision(self) -> str:
        return "fp16" if self.fp16 else "fp32"


def dynamic_axes(spec: ExportSpec) -> dict[str, dict[int, str]] | None:
    if not spec.dynamic:
        return None
    axes_in = {1: "height", 2: "width"} if spec.input_format == "nhwc-uint8" else {2: "height", 3: "width"}
    if spec.head == "argmax":
        axes_out = {1: "height", 2: "width"}
    elif spec.head == "upsample":
        axes_out = {2: "height", 3: "width"}
    else:
        axes_out = {2: "out_height", 3: "out_width"}
    if spec.dynamic_batch:
        axes_in[0] = axes_out[0] = "batch"
    return {INPUT_NAME: axes_in, spec.output_name: axes_out}


def torch_export(module: nn.Module, dummy: torch.Tensor, path: Path, spec: ExportSpec) -> None:
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if spec.exporter == "torchscript":
                torch.onnx.export(
                    module,
                    (dummy,),
                    str(path),
                    opset_version=spec.opset,
                    input_names=[INPUT_NAME],
                    output_names=[spec.output_name],
                    dynamic_axes=dynamic_axes(spec),
                    do_constant_folding=True,
                    dynamo=False,
                )
            else:
                shapes = None
                axes = dynamic_axes(spec)
                if axes:
                    shapes = {
                        "x": {
                            i: torch.export.Dim(n, min=16 if n != "batch" else 1, max=8192)
                            for i, n in axes[INPUT_NAME].items()
                        }
                    }
                torch.onnx.export(
                    module,
                    (dummy,),
                    str(path),
                    opset_version=spec.opset,
                    input_names=[INPUT_NAME],
                    output_names=[spec.output_name],
                    dynamic_shapes=shapes,
                    dynamo=True,
                    external_data=False,
                )
    except RefineNetDeployError:
        raise
    except Exception as exc:
        cause = write_cause(exc)  # the disk, not the exporter: the caller reports it as an unwritable output
        if cause is not None:
            raise cause from exc
        raise ExportError(
            f"torch.onnx.export failed: {str(exc).splitlines()[0][:200]}. Try another --opset or --exporter"
        ) from exc


def simplify(model: Any, simplifier: str) -> Any:
    if simplifier == "onnxsim":
        onnxsim = require("onnxsim", hint="pip install onnxsim, or use --simplify onnxslim (pure Python)")
        try:
            simplified, ok = onnxsim.simplify(model)
        except Exception as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ExportError(f"onnxsim failed: {first}. Use --simplify onnxslim or none") from exc
        if not ok:
            raise ExportError("onnxsim's own check says the simplified model differs. Use --simplify onnxslim or none")
        return simplified
    onnxslim = require("onnxslim", hint="pip install onnxslim, or use --simplify none")
    try:
        return onnxslim.slim(model)
    except Exception as exc:
        raise ExportError(f"onnxslim failed: {str(exc).splitlines()[0][:200]}. Use --simplify onnxsim or none") from exc


def fix_static_dims(model: Any, spec: ExportSpec, num_classes: int) -> None:
    """The TorchScript exporter leaves some static output dims symbolic: pin batch and class count."""
    outputs = model.graph.output
    if not spec.dynamic_batch:
        for value in (*model.graph.input, *outputs):
            value.type.tensor_type.shape.dim[0].dim_value = spec.batch
    if spec.head != "argmax":
        for value in outputs:
            value.type.tensor_type.shape.dim[1].dim_value = num_classes


def io_spec(value_info: Any) -> dict[str, Any]:
    import onnx

    t = value_info.type.tensor_type
    dims = [d.dim_param or d.dim_value for d in t.shape.dim]
    return {"name": value_info.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": dims}
