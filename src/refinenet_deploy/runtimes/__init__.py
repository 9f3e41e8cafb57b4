"""The ``Runner`` protocol and one runner per backend (PyTorch, ONNX Runtime, OpenVINO, TensorRT).

Backends are imported only inside their own modules, when a runner for them is opened.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import IncompatibleArtifactError, UsageError
from .base import BaseRunner, TensorSpec

RUNTIMES = ("auto", "onnxruntime", "openvino", "tensorrt", "torch")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".safetensors", ".ckpt", ".bin")


def detect_runtime(artifact: str | Path) -> str:
    """The runtime an artifact needs, from its file name."""
    name = Path(artifact).name.lower()
    if name.endswith(".onnx"):
        return "onnxruntime"
    if name.endswith(".xml"):
        return "openvino"
    if name.endswith((".engine", ".plan", ".trt")):
        return "tensorrt"
    if name.endswith(CHECKPOINT_SUFFIXES):
        return "torch"
    raise UsageError(f"cannot tell the runtime of {Path(artifact).name}. Pass --runtime "
                     "(onnxruntime for .onnx, openvino for .xml, tensorrt for .engine, torch for checkpoints)")


def open_runner(artifact: str | Path, runtime: str = "auto", *, threads: int | None = None, device: str = "cpu",
                hint: str = "latency", inference_precision: str | None = "f32") -> BaseRunner:
    """A (not yet activated) runner for an exported artifact; checkpoints are handled by the caller."""
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime: {runtime}. Use one of {', '.join(RUNTIMES)}")
    runtime = detect_runtime(artifact) if runtime == "auto" else runtime
    if runtime == "onnxruntime":
        from .onnxruntime import OnnxRuntimeRunner

        providers = {"cpu": ["CPUExecutionProvider"], "gpu": ["CUDAExecutionProvider"]}.get(device)
        if providers is None:
            raise UsageError(f"ONNX Runtime runs on cpu or gpu here, not {device}")
        if device == "gpu":
            import onnxruntime as ort

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise IncompatibleArtifactError("ONNX Runtime has no CUDA provider here. Install onnxruntime-gpu "
                                                "(instead of onnxruntime) on a machine with an NVIDIA GPU")
        return OnnxRuntimeRunner(Path(artifact), providers=providers, threads=threads)
    if runtime == "openvino":
        from .openvino import OpenVINORunner

        if device == "dla":
            raise UsageError("DLA is a TensorRT device; OpenVINO takes cpu, gpu or npu")
        return OpenVINORunner(Path(artifact), device=device.upper(), hint=hint, threads=threads,
                              inference_precision=inference_precision)
    if runtime == "tensorrt":
        from ..export.metadata import read_artifact_metadata
        from .tensorrt import TensorRTRunner

        return TensorRTRunner(Path(artifact), meta=read_artifact_metadata(artifact))
    raise UsageError("the torch runtime takes a checkpoint; pass it as MODEL")


__all__ = ["RUNTIMES", "BaseRunner", "TensorSpec", "detect_runtime", "open_runner"]
