"""What this machine can do for a target: build it, run it, or neither (then it is pending on a device).

Detection imports no framework: module specs, ``nvidia-smi`` and the Jetson release file only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from .config import Target
from .spec import BENCH_FLAGS, render_flags

DEVICE_OF = {"cpu": "cpu", "rtx": "gpu", "gpu": "gpu", "jetson": "gpu"}


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def has_torch() -> bool:
    return has_module("torch")


@dataclass(frozen=True)
class Capabilities:
    gpus: tuple[dict[str, str], ...]
    jetson: bool
    tensorrt: bool
    tensorrt_rtx: bool
    cuda_python: bool
    openvino: bool
    torch: bool

    @classmethod
    def detect(cls) -> Capabilities:
        from ...environment import nvidia_gpus
        from ...jetson import jetson_fingerprint

        return cls(
            gpus=tuple(nvidia_gpus()),
            jetson=jetson_fingerprint() is not None,
            tensorrt=has_module("tensorrt"),
            tensorrt_rtx=has_module("tensorrt_rtx"),
            cuda_python=has_module("cuda"),
            openvino=has_module("openvino"),
            torch=has_torch(),
        )

    @property
    def rtx_gpu(self) -> bool:
        from ...backends.tensorrt.runner import RTX_COMPUTE_CAPABILITIES

        return any(g.get("compute_capability") in RTX_COMPUTE_CAPABILITIES for g in self.gpus)

    def why_cannot_build(self, t: Target) -> str | None:
        """None when this machine can build the target's engine, else what it lacks."""
        if t.device == "rtx":
            return None if self.tensorrt_rtx else "needs TensorRT-RTX (pip install 'refinenet-deploy[trt-rtx]')"
        if t.device == "jetson":
            return None if self.jetson and self.tensorrt else "needs a Jetson with TensorRT (JetPack)"
        if t.device == "gpu" and t.engine:
            if not self.gpus or self.jetson:
                return "needs an NVIDIA GPU machine with TensorRT 10/11"
            return None if self.tensorrt else "needs TensorRT 10/11 (pip install 'refinenet-deploy[trt]')"
        return None

    def why_cannot_run(self, t: Target | None) -> str | None:
        """None when this machine can run the target (parity, bench), else what it lacks."""
        if t is None or t.device == "cpu":
            if t is not None and t.runtime == "openvino" and not self.openvino:
                return "needs OpenVINO (pip install 'refinenet-deploy[openvino]')"
            return None
        if t.runtime == "torch":
            if not self.gpus or self.jetson or not self.torch:
                return "needs an NVIDIA GPU machine with PyTorch (CUDA)"
            return None
        if t.device == "rtx":
            if not self.rtx_gpu:
                return "needs an RTX-class GPU of compute capability 8.6, 8.9 or 12.x (not Hopper, A100 or Jetson)"
            return None if self.tensorrt_rtx and self.cuda_python else "needs TensorRT-RTX and cuda-python"
        if t.device == "jetson":
            return None if self.jetson and self.tensorrt and self.cuda_python else "needs a Jetson with TensorRT"
        if not self.gpus or self.jetson:
            return "needs an NVIDIA GPU machine with TensorRT 10/11"
        return None if self.tensorrt and self.cuda_python else "needs TensorRT 10/11 and cuda-python ([trt])"


def parity_device_kwargs(t: Target, device: str) -> dict[str, Any]:
    """Keyword arguments for ``validate_parity`` that put the target on its device."""
    if t.runtime == "torch":
        return {"device": device, "torch_precision": t.precision}
    return {}


def bench_device_kwargs(t: Target | None, device: str) -> dict[str, Any]:
    """Keyword arguments for ``benchmark`` beyond the device itself. PyTorch on a GPU runs as a GPU user would ship
    it at a static size: replayed from a CUDA graph (cudnn.benchmark on, the bench default there)."""
    if t is not None and t.runtime == "torch":
        return {"torch_precision": t.precision, **({"cuda_graph": True} if device == "gpu" else {})}
    return {}


# Same-device PyTorch baselines timed when a bundle has GPU targets and runs on a GPU: strict FP32 (TF32 off, eager,
# cudnn.benchmark on) and the fastest PyTorch configuration measured on an H200 (LW-RefineNet-50, 512x512, batch 1:
# fp16 replayed from a CUDA graph, 2.33 ms, against 5.22 ms for FP32 in a graph and 5.56 ms for fp16 eager;
# shared/reference/TENSORRT.md).
GPU_BASELINES: dict[str, dict[str, Any]] = {
    "gpu-torch-fp32": {"torch_precision": "fp32"},
    "gpu-torch-best": {"torch_precision": "fp16", "cuda_graph": True},
}
GPU_BASELINE_TITLES = {
    "gpu-torch-fp32": "PyTorch FP32 on this GPU (TF32 off, eager)",
    "gpu-torch-best": "PyTorch at its best on this GPU (fp16, CUDA graph)",
}


TORCH_BENCH_OPTIONS = ("torch_precision", "cuda_graph", "channels_last", "cudnn_benchmark")


def bench_flags(kwargs: dict[str, Any]) -> list[str]:
    """The ``rfdeploy bench`` options that say what the PyTorch options in ``benchmark(**kwargs)`` say (the bench
    step's ``CallSpec`` renders them from the same table, ``spec.BENCH_FLAGS``)."""
    unknown = set(kwargs) - set(TORCH_BENCH_OPTIONS)
    if unknown:
        raise ValueError(f"no bench flag for {sorted(unknown)}")
    return render_flags(BENCH_FLAGS, kwargs)
