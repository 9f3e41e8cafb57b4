"""ONNX Runtime: the runner for .onnx artifacts (FP32, FP16 and Q/DQ INT8) on the CPU or a CUDA GPU."""

from __future__ import annotations

from pathlib import Path

from ...enums import Device
from ...errors import IncompatibleArtifactError
from .runner import OnnxRuntimeRunner


def open_onnxruntime(
    model: str | Path, device: Device = Device.CPU, *, threads: int | None = None
) -> OnnxRuntimeRunner:
    """An ONNX Runtime runner on ``device`` (gpu needs onnxruntime-gpu's CUDA execution provider)."""
    if device == Device.GPU:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise IncompatibleArtifactError(
                "ONNX Runtime has no CUDA provider here. Install onnxruntime-gpu "
                "(instead of onnxruntime) on a machine with an NVIDIA GPU"
            )
        return OnnxRuntimeRunner(Path(model), providers=["CUDAExecutionProvider"], threads=threads)
    return OnnxRuntimeRunner(Path(model), threads=threads)


__all__ = ["OnnxRuntimeRunner", "open_onnxruntime"]
