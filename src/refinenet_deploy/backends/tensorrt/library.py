"""Which TensorRT library builds and runs engines: TensorRT (``tensorrt``, 10.x or 11.x) or TensorRT for RTX
(``tensorrt_rtx``), and what each generation allows.

| library | typing | precision from | weak-typing flags | implicit INT8 calibrator | DLA | CPU-only build |
|---|---|---|---|---|---|---|
| TensorRT 10.x | weak or strong | ONNX (+ flags) | yes (deprecated 10.12) | yes (deprecated 10.1) | yes | no |
| TensorRT 11.x | strong only | the ONNX | removed | removed | Jetson only | no |
| TensorRT-RTX | strong only | the ONNX | absent | absent | no | yes (ahead of time) |

Only this package imports ``tensorrt`` / ``tensorrt_rtx``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ...errors import MissingDependencyError, UsageError

LIBRARIES = ("auto", "tensorrt", "tensorrt-rtx")
_MODULES = {"tensorrt": "tensorrt", "tensorrt-rtx": "tensorrt_rtx"}
_EXTRAS = {"tensorrt": "trt", "tensorrt-rtx": "trt-rtx"}
_DISTRIBUTIONS = {
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"),
    "tensorrt-rtx": ("tensorrt-rtx-cu13", "tensorrt-rtx-cu12", "tensorrt-rtx"),
}


@dataclass(frozen=True)
class TrtLibrary:
    """An imported TensorRT module and the rules of its generation."""

    name: str  # "tensorrt" | "tensorrt-rtx"
    module: Any
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt-rtx"

    @property
    def weakly_typed(self) -> bool:
        """TensorRT 10.x: BuilderFlag.FP16/INT8, layer precisions and implicit calibrators exist."""
        return not self.is_rtx and self.major < 11

    @property
    def has_dla(self) -> bool:
        return not self.is_rtx

    @property
    def trtexec(self) -> str:
        return "tensorrt_rtx" if self.is_rtx else "trtexec"

    @property
    def cuda_flavour(self) -> str | None:
        """The CUDA major version its wheels were built for (from the installed distribution name), if known."""
        for dist in _DISTRIBUTIONS[self.name]:
            try:
                importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
            if "-cu" in dist:
                return dist.rsplit("-cu", 1)[1]
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "library": self.name,
            "module": self.module.__name__,
            "version": self.version,
            "generation": "TensorRT-RTX" if self.is_rtx else f"TensorRT {self.major}.x",
            "strongly_typed_only": not self.weakly_typed,
            "cuda": self.cuda_flavour,
        }


def _import(name: str) -> ModuleType:
    return importlib.import_module(_MODULES[name])


def load_library(choice: str = "auto") -> TrtLibrary:
    """``auto``: ``tensorrt`` if it imports, else ``tensorrt_rtx``. A missing library is exit 4 naming the extra."""
    if choice not in LIBRARIES:
        raise UsageError(f"unknown --library: {choice}. Use one of {', '.join(LIBRARIES)}")
    names = ("tensorrt", "tensorrt-rtx") if choice == "auto" else (choice,)
    for name in names:
        try:
            module = _import(name)
        except (ImportError, OSError):  # OSError: a wheel whose native libraries did not install
            continue
        return TrtLibrary(name, module, str(getattr(module, "__version__", "0")))
    if choice == "auto":
        raise MissingDependencyError(
            "no TensorRT library is installed (neither tensorrt nor tensorrt_rtx imports)",
            hint="on an NVIDIA GPU machine: pip install 'refinenet-deploy[trt]'; to build TensorRT-RTX engines "
            "without a GPU: pip install 'refinenet-deploy[trt-rtx]'; on a Jetson use the TensorRT JetPack ships",
        )
    raise MissingDependencyError(
        f"optional dependency '{_MODULES[choice]}' is not installed",
        hint=f"install it with: pip install 'refinenet-deploy[{_EXTRAS[choice]}]'",
    )


def available_libraries() -> dict[str, str | None]:
    """Installed TensorRT libraries and their versions (for ``doctor``); None where one does not import."""
    found: dict[str, str | None] = {}
    for name, module in _MODULES.items():
        try:
            found[module] = str(getattr(_import(name), "__version__", "?"))
        except (ImportError, OSError):
            found[module] = None
    return found
