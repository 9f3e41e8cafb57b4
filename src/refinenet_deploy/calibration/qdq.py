"""Explicit-quantization INT8: a Q/DQ ONNX from an FP32 ONNX and a calibration set.

Producer: ONNX Runtime ``quantize_static`` in QDQ format with what TensorRT 10/11 require of an explicitly
quantized network: symmetric INT8 activations and weights (zero point 0), per-channel weights. The same
file runs in ONNX Runtime and OpenVINO on a CPU, so the INT8 accuracy TensorRT will see can be predicted
here. Calibration methods: ``entropy`` (KL), ``max`` (min/max) and ``percentile`` (99.999 %).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._optional import require
from ..data.preprocessing import Normalization
from ..environment import package_versions
from ..errors import CalibrationError, ExportError, UsageError
from ..export.metadata import read_artifact_metadata, sidecar_path, utc_now, write_json_atomic
from ..models.checkpoint import sha256_file
from ..validate.compare import argmax_agreement
from .dataset import CalibrationSet, build_calibration_set

log = logging.getLogger(__name__)
METHODS = ("entropy", "max", "percentile")


@dataclass
class CalibrationResult:
    path: Path
    metadata_path: Path
    metadata: dict[str, Any]


def _method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return {"entropy": CalibrationMethod.Entropy, "max": CalibrationMethod.MinMax,
            "percentile": CalibrationMethod.Percentile}[name]


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over our streaming calibration set."""

    def __init__(self, cs: CalibrationSet, input_name: str, progress: Callable[[int, int], None] | None) -> None:
        self._it = cs.batches(1)
        self._name, self._n, self._count, self._progress = input_name, len(cs.files), 0, progress

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        if batch is None:
            return None
        self._count += 1
        if self._progress:
            self._progress(self._count, self._n)
        return {self._name: batch}

    def rewind(self) -> None:  # not needed by a single calibration pass
        pass


def calibrate_onnx(model: str | Path, data: str | Path, output: str | Path, *, method: str = "entropy",
                   num_images: int = 300, seed: int = 0, split: str | None = None,
                   exclude_nodes: list[str] | None = None, command: str = "",
                   progress: Callable[[int, int], None] | None = None) -> CalibrationResult:
    """Write ``output`` (Q/DQ INT8 ONNX) and its ``.meta.json``; atomic, nothing left behind on failure."""
    require("onnxruntime.quantization", package="onnxruntime")
    from ..export.onnx import check_output_path

    if method not in METHODS:
        raise UsageError(f"unsupported --method: {method}. Use one of {', '.join(METHODS)}")
    model, output = Path(model), Path(output)
    if not model.is_file() or model.suffix != ".onnx":
        raise UsageError(f"not an ONNX file: {model}. Pass the model written by 'rfdeploy export onnx'")
    check_output_path(output, ".onnx")
    meta = read_artifact_metadata(model)
    if meta.get("precision") not in (None, "fp32"):
        raise UsageError(f"{model.name} is {meta['precision']}; calibrate the FP32 export")
    norm = Normalization.from_dict(meta["normalization"]) if isinstance(meta.get("normalization"), dict) else (
        Normalization.imagenet())
    input_format = meta.get("input_format", "nchw-float")

    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    dims = [d.dim_value or None for d in graph.input[0].type.tensor_type.shape.dim]
    hw = dims[1:3] if input_format == "nhwc-uint8" else dims[2:4]
    size = tuple(hw) if all(hw) else tuple(meta.get("export_size") or (512, 512))
    cs = build_calibration_set(data, size=size, normalization=norm, input_format=input_format,
                               num_images=num_images, seed=seed, split=split)
    manifest = cs.manifest

    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.stem}.calib-") as tmp:
        tmp_dir = Path(tmp)
        pre = tmp_dir / "pre.onnx"
        out_tmp = tmp_dir / "int8.onnx"
        try:
            with contextlib.redirect_stdout(sys.stderr):  # ONNX Runtime prints its progress on stdout
                quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
                quantize_static(
                    str(pre), str(out_tmp), _Reader(cs, graph.input[0].name, progress),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=_method(method),
                    nodes_to_exclude=exclude_nodes or [],
                    # biases stay float: TensorRT fuses them itself and takes no INT32 bias Q/DQ
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "CalibPercentile": 99.999,
                                   "QuantizeBias": False},
                )
        except (CalibrationError, UsageError):
            raise
        except Exception as exc:
            raise ExportError(f"INT8 quantization failed: {str(exc).splitlines()[0][:200]}") from exc
        agreement = _agreement(model, out_tmp, cs, graph.input[0].name)
        info = {
            **{k: v for k, v in meta.items() if k not in ("verification", "created", "command")},
            "format": "refinenet-deploy/onnx", "tool_version": __version__, "created": utc_now(), "command": command,
            "precision": "int8", "source_model": {"file": model.name, "sha256": sha256_file(model)},
            "quantization": {"producer": "onnxruntime.quantization.quantize_static", "format": "QDQ",
                             "activations": "int8 symmetric (zero point 0)", "weights": "int8 symmetric per-channel",
                             "bias": "float (not quantized)",
                             "method": method, "excluded_nodes": exclude_nodes or []},
            "calibration": {"digest": cs.digest(manifest), "count": len(cs.files), "seed": seed,
                            "input_size": list(size), "resize_policy": manifest["resize_policy"],
                            "skipped": manifest["skipped"], "cache_key": cs.cache_key(sha256_file(model))},
            "check": {"argmax_agreement_vs_fp32_on_calibration_images": agreement, "runtime": "onnxruntime CPU"},
            "versions": {k: v for k, v in package_versions(("onnx", "onnxruntime")).items() if v},
        }
        side = write_json_atomic(tmp_dir / "meta.json", info)
        write_json_atomic(tmp_dir / "manifest.json", manifest)
        os.replace(out_tmp, output)
        try:
            os.replace(side, sidecar_path(output))
            os.replace(tmp_dir / "manifest.json", output.with_name(output.stem + ".calibration.json"))
        except OSError:
            output.unlink(missing_ok=True)
            raise
    log.info("wrote %s (argmax agreement with FP32 %.4f)", output, agreement)
    return CalibrationResult(output, sidecar_path(output), info)


def _agreement(fp32: Path, int8: Path, cs: CalibrationSet, input_name: str, limit: int = 16) -> float:
    """Argmax agreement of the INT8 model with the FP32 model on up to ``limit`` calibration images."""
    from ..runtimes.onnxruntime import OnnxRuntimeRunner

    agree = []
    with OnnxRuntimeRunner(fp32) as a, OnnxRuntimeRunner(int8) as b:
        for i, batch in enumerate(cs.batches(1)):
            if i >= limit:
                break
            ra = next(iter(a.infer({input_name: batch}).values()))
            rb = next(iter(b.infer({input_name: batch}).values()))
            agree.append(argmax_agreement(ra, rb))
    return float(np.mean(agree))
