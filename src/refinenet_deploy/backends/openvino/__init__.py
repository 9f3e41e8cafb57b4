"""OpenVINO: ONNX -> IR builder and the IR runner (CPU by default; GPU/NPU plugins when present)."""

from .builder import compile_cpu, convert_onnx, ensure_available, save_ir
from .runner import HINTS, PRECISIONS, CompiledModelRunner, OpenVINORunner

__all__ = [
    "HINTS",
    "PRECISIONS",
    "CompiledModelRunner",
    "OpenVINORunner",
    "compile_cpu",
    "convert_onnx",
    "ensure_available",
    "save_ir",
]
