"""What this machine can do for a target: build it, run it, or neither (then it is pending on a device).

Detection imports no framework: module specs, ``nvidia-smi`` and the Jetson release file only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from .config import Target

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
                return "needs an NVIDIA RTX/Ampere-class or Blackwell GPU (TensorRT-RTX engines run there)"
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
    """Keyword arguments for ``benchmark`` beyond the device itself."""
    if t is not None and t.runtime == "torch":
        return {"torch_precision": t.precision}
    return {}
