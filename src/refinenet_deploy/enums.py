"""Choices shared by the library and the CLI: precision, runtime and device.

String enums, so ``Precision.FP32 == "fp32"`` and they serialise to JSON as their value.
"""

from __future__ import annotations

from enum import Enum


class _Choice(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class Precision(_Choice):
    """What an artifact's float parts compute in (``int8``: explicitly quantized)."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"


class Runtime(_Choice):
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    TENSORRT = "tensorrt"
    TORCH = "torch"


class Device(_Choice):
    CPU = "cpu"
    GPU = "gpu"
    NPU = "npu"
    DLA = "dla"


# The devices each runtime can run an artifact on; the first is the default.
RUNTIME_DEVICES: dict[Runtime, tuple[Device, ...]] = {
    Runtime.ONNXRUNTIME: (Device.CPU, Device.GPU),
    Runtime.OPENVINO: (Device.CPU, Device.GPU, Device.NPU),
    Runtime.TENSORRT: (Device.GPU, Device.DLA),
    Runtime.TORCH: (Device.CPU, Device.GPU),
}
