"""Choices shared by the library and the CLI: precision, runtime and device, and every spelling of them we accept.

String enums, so ``Precision.FP32 == "fp32"`` and they serialise to JSON as their value. ``Precision.parse``,
``Runtime.parse`` and ``Device.parse`` are the one place an option's or a document's spelling (``f16``, ``half``,
``float32``, ``ort``, ``cuda``, ...) becomes the one we record (``fp16``, ``fp32``, ``onnxruntime``, ``gpu``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any, TypeVar

from .errors import UsageError

C = TypeVar("C", bound="_Choice")


class _Choice(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {}

    @classmethod
    def lookup(cls: type[C], value: Any) -> C | None:
        """Any accepted spelling (case and surrounding space ignored) -> the member; None for None, "" or unknown."""
        if value is None:
            return None
        if isinstance(value, cls):
            return value
        text = str(value).strip().lower()
        text = cls._aliases().get(text, text)
        try:
            return cls(text)
        except ValueError:
            return None

    @classmethod
    def parse(cls: type[C], value: Any, *, allowed: Iterable[C] | None = None, option: str = "") -> C:
        """Any accepted spelling -> the member; UsageError (exit 2) naming ``option`` and the choices otherwise,
        or when the member is not one of ``allowed``."""
        choices = tuple(allowed) if allowed is not None else tuple(cls)
        member = cls.lookup(value)
        if member is None or member not in choices:
            what = option or cls.__name__.lower()
            raise UsageError(f"unsupported {what}: {value!r}. Use one of: {', '.join(c.value for c in choices)}")
        return member


class Precision(_Choice):
    """What an artifact's float parts compute in (``int8``: explicitly quantized; ``tf32``: PyTorch's TF32 matmuls
    and convolutions on an FP32 model)."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    TF32 = "tf32"
    INT8 = "int8"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return PRECISION_SPELLINGS

    @property
    def openvino(self) -> str:
        """OpenVINO's element-type name (INFERENCE_PRECISION_HINT) of fp32, fp16 or bf16."""
        return {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}[self.value]


class Runtime(_Choice):
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    TENSORRT = "tensorrt"
    TORCH = "torch"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return RUNTIME_SPELLINGS


class Device(_Choice):
    CPU = "cpu"
    GPU = "gpu"
    NPU = "npu"
    DLA = "dla"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return DEVICE_SPELLINGS


# Every spelling met in options, bench/parity JSON (old and new) and OpenVINO's element types -> the one we record.
PRECISION_SPELLINGS: dict[str, str] = {
    "fp32": "fp32",
    "f32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "tf32": "tf32",
    "fp16": "fp16",
    "f16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "int8": "int8",
    "i8": "int8",
    "u8": "int8",
    "qint8": "int8",
}
RUNTIME_SPELLINGS: dict[str, str] = {
    "onnxruntime": "onnxruntime",
    "ort": "onnxruntime",
    "onnxrt": "onnxruntime",
    "openvino": "openvino",
    "ov": "openvino",
    "tensorrt": "tensorrt",
    "trt": "tensorrt",
    "torch": "torch",
    "pytorch": "torch",
}
DEVICE_SPELLINGS: dict[str, str] = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "npu": "npu", "dla": "dla"}


# The devices each runtime can run an artifact on; the first is the default.
RUNTIME_DEVICES: dict[Runtime, tuple[Device, ...]] = {
    Runtime.ONNXRUNTIME: (Device.CPU, Device.GPU),
    Runtime.OPENVINO: (Device.CPU, Device.GPU, Device.NPU),
    Runtime.TENSORRT: (Device.GPU, Device.DLA),
    Runtime.TORCH: (Device.CPU, Device.GPU),
}
