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
