"""ONNX -> OpenVINO IR: conversion, saving (optionally with FP16 weights) and CPU compilation for checks.

``compress_to_fp16`` only changes the stored weights; the CPU plugin computes in its inference precision
(set explicitly by ``OpenVINORunner``). Quantization (NNCF) is the calibration layer's job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..._optional import require
from ...errors import ExportError, write_failed


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def ensure_available() -> None:
    """MissingDependencyError (exit 4, naming the ``openvino`` extra) when OpenVINO is not installed."""
    require("openvino", extra="openvino")


def convert_onnx(model: str | Path) -> Any:
    """``ov.Model`` from an ONNX file (FP32, FP16 or Q/DQ INT8: Q/DQ pairs become FakeQuantize)."""
    ov = require("openvino", extra="openvino")
    try:
        return ov.convert_model(str(model))
    except Exception as exc:
        raise ExportError(f"OpenVINO cannot convert {Path(model).name}: {_first_line(exc)}") from exc


def save_ir(ov_model: Any, xml: str | Path, *, compress_to_fp16: bool = False) -> None:
    """Write ``xml`` and its ``.bin``."""
    ov = require("openvino", extra="openvino")
    try:
        ov.save_model(ov_model, str(xml), compress_to_fp16=compress_to_fp16)
    except Exception as exc:
        from ...artifacts import write_refused

        refused = write_refused(xml, Path(xml).with_suffix(".bin"))
        if refused is not None:  # the disk or a limit, not OpenVINO: exit 2 naming the file
            raise write_failed(xml, refused) from exc
        raise ExportError(f"OpenVINO could not save the IR: {_first_line(exc)}") from exc


def compile_cpu(ov_model: Any, threads: int | None = None) -> Any:
    """The model compiled for the CPU in f32 (what accuracy checks compare)."""
    ov = require("openvino", extra="openvino")
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return ov.Core().compile_model(ov_model, "CPU", config)
