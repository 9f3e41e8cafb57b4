"""``create_model`` and ``load_model``: the one way the rest of the package gets a network."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ._registry import ModelCfg, get_entrypoint, get_model_cfg, list_models
from .checkpoint import (
    IGNORED_SUFFIX,
    RawCheckpoint,
    check_normalization_metadata,
    check_tensor_values,
    checkpoint_filter_fn,
    compare_keys,
    num_classes_from_state_dict,
    read_checkpoint,
)

log = logging.getLogger(__name__)


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    checkpoint: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model; with ``checkpoint`` its weights are loaded strictly and it is put in eval mode."""
    if checkpoint is not None:
        return load_model(checkpoint, arch=name, num_classes=num_classes, **kwargs).model
    cfg = get_model_cfg(name)
    return get_entrypoint(name)(num_classes=num_classes or cfg.num_classes, **kwargs)


@functools.cache
def model_shapes(name: str, num_classes: int | None = None) -> dict[str, tuple[int, ...]]:
    """state_dict key -> shape of a registered model, built on the meta device (no memory, fast)."""
    cfg = get_model_cfg(name)
    with torch.device("meta"):
        model = get_entrypoint(name)(num_classes=num_classes or cfg.num_classes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _classifier_key(name: str) -> str:
    return "segm" if get_model_cfg(name).backbone.startswith("mobilenet") else "clf_conv"


def _signature(shapes: dict[str, tuple[int, ...]], clf: str) -> set[tuple[str, tuple[int, ...]]]:
    """Key/shape pairs with the class dimension of the classifier blanked out."""
    out = set()
    for k, s in shapes.items():
        if k.endswith(IGNORED_SUFFIX):
            continue
        if k.startswith(clf + "."):
            s = (-1, *s[1:])
        out.add((k, tuple(s)))
    return out


def rank_architectures(state_dict: dict[str, torch.Tensor]) -> list[tuple[float, str]]:
    """Registered architectures by similarity (Jaccard over key/shape pairs) to a state_dict, best first."""
    found = {k: tuple(v.shape) for k, v in state_dict.items()}
    scores = []
    for name in list_models(include_test=True):
        clf = _classifier_key(name)
        a, b = _signature(model_shapes(name), clf), _signature(found, clf)
        scores.append((len(a & b) / max(1, len(a | b)), name))
    return sorted(scores, key=lambda t: (-t[0], t[1]))


def infer_architecture(state_dict: dict[str, torch.Tensor]) -> str:
    """The registered architecture whose keys and shapes this state_dict has exactly, else CheckpointError."""
    ranked = rank_architectures(state_dict)
    best_score, best = ranked[0]
    if best_score == 1.0:
        return best
    clf = _classifier_key(best)
    report = compare_keys(model_shapes(best, num_classes_from_state_dict(state_dict, clf)), state_dict)
    raise CheckpointError(
        f"checkpoint does not match any known architecture; closest is {best} "
        f"({best_score:.0%} of keys/shapes agree): {report.describe()}. Pass --arch if it is a variant",
        hint="run 'rfdeploy models' for the supported architectures",
    )


@dataclass
class LoadedModel:
    """A model with its weights, and what the checkpoint told us about it."""

    model: nn.Module
    arch: str
    num_classes: int
    cfg: ModelCfg
    checkpoint: RawCheckpoint | None
    class_names: tuple[str, ...] | None
    normalization: str


def load_model(
    checkpoint: str | Path,
    *,
    arch: str = "auto",
    num_classes: int | None = None,
    **kwargs: Any,
) -> LoadedModel:
    """Read ``checkpoint`` and load it strictly into ``arch`` (``"auto"``: inferred from the keys)."""
    raw = read_checkpoint(checkpoint)
    sd = raw.state_dict
    meta_arch = raw.metadata.get("arch")
    if arch == "auto":
        if isinstance(meta_arch, str) and meta_arch in list_models(include_test=True) and not kwargs:
            ranked = dict((n, s) for s, n in rank_architectures(sd))
            arch = meta_arch if ranked.get(meta_arch) == 1.0 else infer_architecture(sd)
        else:
            arch = infer_architecture(sd)
        log.info("architecture inferred from %s: %s", raw.path.name, arch)
    cfg = get_model_cfg(arch)
    clf = _classifier_key(arch)
    ckpt_classes = num_classes_from_state_dict(sd, clf)
    if num_classes is not None and ckpt_classes is not None and num_classes != ckpt_classes:
        raise CheckpointError(
            f"class-count mismatch: {raw.path.name} has {ckpt_classes} classes, --num-classes is {num_classes}. "
            f"Drop --num-classes or pass {ckpt_classes}"
        )
    n_cls = num_classes or ckpt_classes or cfg.num_classes
    model = get_entrypoint(arch)(num_classes=n_cls, **kwargs)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    report = compare_keys(expected, sd)
    if not report.ok:
        ranked = rank_architectures(sd)
        closest = next((n for s, n in ranked if n != arch), None)
        score = dict((n, s) for s, n in ranked)
        hint = (
            f"closest architecture: {ranked[0][1]} ({ranked[0][0]:.0%} of keys/shapes agree)"
            if ranked and ranked[0][1] != arch
            else f"next closest: {closest} ({score.get(closest, 0):.0%})"
            if closest
            else None
        )
        raise CheckpointError(
            f"checkpoint {raw.path.name} does not fit {arch} ({n_cls} classes): {report.describe()}. "
            "Check --arch, or use --arch auto",
            hint=hint,
        )
    check_tensor_values(sd, model, raw.path.name)
    norm = raw.metadata.get("normalization")
    norm_name = cfg.normalization if norm is None else check_normalization_metadata(norm, raw.path.name)
    model.load_state_dict(checkpoint_filter_fn(sd, model), strict=True)
    model.eval()
    names = raw.metadata.get("class_names")
    class_names = tuple(names) if isinstance(names, (list, tuple)) and len(names) == n_cls else None
    return LoadedModel(model, arch, n_cls, cfg.with_classes(n_cls, class_names), raw, class_names, str(norm_name))
