"""Explicit-quantization INT8: a Q/DQ ONNX from an FP32 ONNX and a calibration set.

What TensorRT 10/11 require of an explicitly quantized network: symmetric INT8 activations and weights
(zero point 0), per-channel weights, float biases. The same file runs in ONNX Runtime and OpenVINO on a
CPU, so the INT8 accuracy TensorRT will see can be predicted here.

Producers (``producer=``), compared on this family by ``benchmarks/compare_qdq_producers.py``:
- ``modelopt`` (default): NVIDIA ModelOpt ONNX PTQ (``modelopt.onnx.quantization.quantize``, CPU
  calibration, unquantized tensors kept FP32); methods ``entropy`` (default) and ``max``. It gave the
  better IoU on the demo model: entropy drop 0.034 pt vs 0.141 pt for ONNX Runtime.
- ``onnxruntime``: ONNX Runtime ``quantize_static`` in QDQ format, streaming the calibration set; methods
  ``max`` and ``percentile`` (99.999 %). Its ``Entropy`` calibrator is not offered: through
  ``quantize_static`` it runs with 128 histogram bins = 128 quantized bins, which leaves the maximum as the
  only candidate threshold (measured: scales identical to ``max`` for all 168 tensors of the demo model),
  and with real KL settings (2048/256 bins) it clipped so hard that the demo model lost 48.6 mIoU points.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import CalibrationError, ExportError, UsageError
from .dataset import CalibrationSet

log = logging.getLogger(__name__)
METHODS = ("entropy", "max", "percentile")
PRODUCERS = ("modelopt", "onnxruntime")
PRODUCER_METHODS = {"modelopt": ("entropy", "max"), "onnxruntime": ("max", "percentile")}


def check_method(producer: str, method: str | None) -> str:
    """The calibration method for ``producer`` (its default when ``None``); UsageError for a bad pair."""
    if producer not in PRODUCERS:
        raise UsageError(f"unsupported --producer: {producer}. Use one of {', '.join(PRODUCERS)}")
    method = method or PRODUCER_METHODS[producer][0]
    if method not in METHODS:
        raise UsageError(f"unsupported --method: {method}. Use one of {', '.join(METHODS)}")
    if method not in PRODUCER_METHODS[producer]:
        other = next(p for p, m in PRODUCER_METHODS.items() if method in m)
        why = (
            " (its entropy calibration is min/max in effect; see the calibrate docs)"
            if producer == "onnxruntime"
            else ""
        )
        raise UsageError(
            f"--producer {producer} calibrates with {' or '.join(PRODUCER_METHODS[producer])}{why}; "
            f"use --producer {other} for --method {method}"
        )
    return method


def quantize_qdq(
    model: Path,
    out: Path,
    cs: CalibrationSet,
    *,
    producer: str,
    method: str,
    exclude_nodes: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the Q/DQ INT8 model of ``model`` to ``out`` (scratch files go beside ``out``); returns the
    producer's record for the sidecar. Quantizer failures are ``ExportError`` (exit 6)."""
    require("onnxruntime.quantization", package="onnxruntime")
    import onnx

    input_name = onnx.load(str(model), load_external_data=False).graph.input[0].name
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the quantizers print their progress on stdout
            if producer == "onnxruntime":
                return _quantize_onnxruntime(model, out, cs, input_name, method, exclude_nodes, out.parent, progress)
            return _quantize_modelopt(model, out, cs, input_name, method, exclude_nodes, progress)
    except (CalibrationError, UsageError):
        raise
    except Exception as exc:
        raise ExportError(f"INT8 quantization failed: {str(exc).splitlines()[0][:200]}") from exc


def _method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return {"max": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}[name]


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


def _quantize_onnxruntime(
    model: Path,
    out: Path,
    cs: CalibrationSet,
    input_name: str,
    method: str,
    exclude_nodes: list[str] | None,
    tmp_dir: Path,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = tmp_dir / "pre.onnx"
    quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(out),
        _Reader(cs, input_name, progress),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=_method(method),
        nodes_to_exclude=exclude_nodes or [],
        # biases stay float: TensorRT fuses them itself and takes no INT32 bias Q/DQ
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "CalibPercentile": 99.999,
            "QuantizeBias": False,
        },
    )
    return {
        "producer": "onnxruntime.quantization.quantize_static",
        "bias": "float (not quantized)",
        "weights_stored": "int8 initializers + DequantizeLinear",
    }


class _StreamingReader:
    """ModelOpt's calibration-reader protocol (get_next, get_first, rewind) over our streaming set: memory is
    bounded by one image whatever the set size (ModelOpt's histogram calibrator updates per batch)."""

    def __init__(self, cs: CalibrationSet, input_name: str) -> None:
        self.cs, self.name = cs, input_name
        self._first: dict[str, np.ndarray] | None = None
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self.name: batch}

    def get_first(self) -> dict[str, np.ndarray]:
        if self._first is None:
            self._first = {self.name: next(self.cs.batches(1))}
        return self._first

    def rewind(self) -> None:
        self._it = self.cs.batches(1)


def _quantize_modelopt(
    model: Path,
    out: Path,
    cs: CalibrationSet,
    input_name: str,
    method: str,
    exclude_nodes: list[str] | None,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """ModelOpt in a child process: importing it monkeypatches ONNX Runtime's calibrators for the whole
    process (``modelopt.onnx.quantization.ort_patching``), which would silently change what the
    ``onnxruntime`` producer computes afterwards."""
    require("modelopt.onnx.quantization", package="nvidia-modelopt")
    import multiprocessing

    error = out.with_suffix(".error.txt")
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=_modelopt_worker, args=(str(model), cs, input_name, method, exclude_nodes, str(out), str(error))
    )
    # The child starts with SIGINT ignored (Python keeps an inherited SIG_IGN), so a Ctrl-C while it boots or
    # works prints no traceback of its own: the parent gets KeyboardInterrupt, stops the child and re-raises.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        proc.start()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        proc.join()
    except BaseException:
        proc.terminate()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
        raise
    if progress:
        progress(len(cs.files), len(cs.files))
    if error.is_file():
        raise ExportError(f"ModelOpt quantization failed: {error.read_text().strip()[:200]}")
    if proc.exitcode != 0 or not out.is_file():
        log_file = error.with_suffix(".log")
        tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] if log_file.is_file() else []
        raise ExportError(
            f"ModelOpt quantization failed (exit code {proc.exitcode}): {tail[0][:200] if tail else 'no output'}"
        )
    return {
        "producer": "modelopt.onnx.quantization.quantize",
        "bias": "float (not quantized)",
        "weights_stored": "float initializers + QuantizeLinear/DequantizeLinear",
        "unquantized_tensors": "fp32 (high_precision_dtype)",
    }


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _modelopt_worker(
    model: str, cs: CalibrationSet, input_name: str, method: str, exclude_nodes: list[str] | None, out: str, error: str
) -> None:
    """Runs in a spawned process; ModelOpt's own output (a progress line per image) goes to a log file."""
    log_fd = os.open(str(Path(error).with_suffix(".log")), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        from modelopt.onnx.quantization import quantize

        quantize(
            model,
            quantize_mode="int8",
            calibration_data_reader=_StreamingReader(cs, input_name),
            calibration_method=method,
            calibration_eps=["cpu"],
            nodes_to_exclude=exclude_nodes or None,
            high_precision_dtype="fp32",
            output_path=out,
            log_level="WARNING",
        )
    except Exception as exc:  # reported to the parent as one line
        Path(error).write_text(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
