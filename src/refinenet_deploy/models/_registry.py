"""Model registry: names users know from the reference code map to entrypoints and a ``ModelCfg``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..errors import ModelNotFoundError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelCfg:
    """What preprocessing, calibration and metadata need to know about a model."""

    name: str
    family: str
    backbone: str
    num_classes: int = 21
    input_size: tuple[int, int] = (512, 512)
    normalization: str = "imagenet"
    class_names: tuple[str, ...] | None = None
    description: str = ""
    source: str = ""
    licence: str = "see the checkpoint's source"
    extra: dict[str, Any] = field(default_factory=dict)

    def with_classes(self, num_classes: int, class_names: tuple[str, ...] | None = None) -> ModelCfg:
        return replace(self, num_classes=num_classes, class_names=class_names)


_entrypoints: dict[str, Callable[..., Any]] = {}
_cfgs: dict[str, ModelCfg] = {}


def register_model(cfg: ModelCfg) -> Callable[[F], F]:
    """Register ``fn(num_classes=..., **kwargs) -> nn.Module`` under ``cfg.name``; duplicates raise."""

    def decorator(fn: F) -> F:
        if cfg.name in _entrypoints:
            raise ValueError(f"model '{cfg.name}' is registered twice")
        _entrypoints[cfg.name] = fn
        _cfgs[cfg.name] = cfg
        return fn

    return decorator


def list_models(pattern: str = "*", *, include_test: bool = False) -> list[str]:
    """Registered names matching a shell-style pattern, sorted; ``*_test`` models only on request."""
    names = [n for n in _entrypoints if fnmatch.fnmatch(n, pattern)]
    if not include_test:
        names = [n for n in names if not n.endswith("_test")]
    return sorted(names)


def get_model_cfg(name: str) -> ModelCfg:
    if name not in _cfgs:
        raise _not_found(name)
    return _cfgs[name]


def get_entrypoint(name: str) -> Callable[..., Any]:
    if name not in _entrypoints:
        raise _not_found(name)
    return _entrypoints[name]


def _not_found(name: str) -> ModelNotFoundError:
    import difflib

    close = difflib.get_close_matches(name, list(_entrypoints), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "run 'rfdeploy models' to list them"
    return ModelNotFoundError(f"unknown model: {name}. Use one of the registered names", hint=hint)
