"""ONNX Runtime: the runner for .onnx artifacts (FP32, FP16 and Q/DQ INT8) on the CPU or a CUDA GPU."""

from __future__ import annotations

from pathlib import Path

from ...enums import Device
from ...errors import MissingDependencyError
from .runner import CUDA_PROVIDER, OnnxRuntimeRunner


def open_onnxruntime(
    model: str | Path, device: Device = Device.CPU, *, threads: int | None = None
) -> OnnxRuntimeRunner:
    """An ONNX Runtime runner on ``device`` (gpu needs onnxruntime-gpu's CUDA execution provider: without it,
    MissingDependencyError, exit 4). ``runner.runtime_config["providers"]`` records the providers that ran."""
    if device == Device.GPU:
        import onnxruntime as ort

        if CUDA_PROVIDER not in ort.get_available_providers():
            raise MissingDependencyError(
                f"--device gpu: ONNX Runtime has no CUDA execution provider here (available: "
                f"{', '.join(ort.get_available_providers())}). Install onnxruntime-gpu instead of onnxruntime "
                "on a machine with an NVIDIA GPU",
                hint="pip uninstall onnxruntime && pip install onnxruntime-gpu",
            )
        return OnnxRuntimeRunner(
            Path(model),
            providers=[CUDA_PROVIDER],
            threads=threads,
            require=CUDA_PROVIDER,
            image_model=True,
        )
    return OnnxRuntimeRunner(Path(model), threads=threads, image_model=True)


__all__ = ["CUDA_PROVIDER", "OnnxRuntimeRunner", "open_onnxruntime"]
