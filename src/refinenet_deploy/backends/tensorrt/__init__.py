"""TensorRT (10.x, 11.x) and TensorRT for RTX: the engine builder and the engine runner.

``library`` picks the module and knows each generation's rules; ``builder`` turns an ONNX into a serialized
engine; ``runner`` runs engines with cuda-python buffers; ``cuda`` wraps the CUDA runtime calls.
"""

from .library import LIBRARIES, TrtLibrary, available_libraries, load_library
from .runner import TensorRTRunner, check_engine_compatibility

__all__ = [
    "LIBRARIES",
    "TensorRTRunner",
    "TrtLibrary",
    "available_libraries",
    "check_engine_compatibility",
    "load_library",
]
