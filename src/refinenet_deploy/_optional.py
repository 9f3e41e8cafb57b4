"""Lazy imports of optional backends, failing with the extra that provides them."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError


def require(
    module: str, *, extra: str | None = None, package: str | None = None, hint: str | None = None
) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra (or ``hint``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # includes a module blocked as sys.modules[name] = None
        dist = package or module.split(".")[0]
        raise MissingDependencyError(
            f"optional dependency '{dist}' is not installed",
            hint=hint
            or (
                f"install it with: pip install 'refinenet-deploy[{extra}]'"
                if extra
                else f"install it with: pip install {dist}"
            ),
        ) from exc


# top-level module -> (pip distribution, extra that installs it)
EXTRA_OF_MODULE = {
    "torch": ("torch", "export"),
    "safetensors": ("safetensors", "export"),
    "onnxsim": ("onnxsim", "export"),
    "onnxslim": ("onnxslim", "export"),
    "onnxconverter_common": ("onnxconverter-common", "export"),
    "onnxscript": ("onnxscript", "export"),
    "modelopt": ("nvidia-modelopt", "calibrate"),
    "onnx_graphsurgeon": ("onnx-graphsurgeon", "calibrate"),
    "polygraphy": ("polygraphy", "calibrate"),
    "openvino": ("openvino", "openvino"),
    "nncf": ("nncf", "openvino"),
    "matplotlib": ("matplotlib", "report"),
    "tensorrt": ("tensorrt", "trt"),
    "tensorrt_rtx": ("tensorrt-rtx-cu13", "trt-rtx"),
    "cuda": ("cuda-python", "trt"),
}


def missing_dependency(exc: ImportError) -> MissingDependencyError | None:
    """The MissingDependencyError (exit 4, naming the extra) for an ImportError of an optional module, or None
    when the missing module is not one of ours to name (a real bug: let it surface)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if name not in EXTRA_OF_MODULE:
        return None
    dist, extra = EXTRA_OF_MODULE[name]
    return MissingDependencyError(
        f"optional dependency '{dist}' is not installed (this command needs it)",
        hint=f"install it with: pip install 'refinenet-deploy[{extra}]'",
    )
