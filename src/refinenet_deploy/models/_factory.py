"""``create_model`` and ``load_model``: the one way the rest of the package gets a network."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.preprocessing import Normalization
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
    normalization: Normalization  # resolved once: the checkpoint metadata's, else the architecture's preset


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
    meta_arch = _metadata_arch(raw, chosen=arch)
    source = "--arch"
    if arch == "auto":
        arch = meta_arch or infer_architecture(sd)
        source = "its metadata's arch" if meta_arch else "--arch auto"
        log.info("architecture of %s: %s (from %s)", raw.path.name, arch, source)
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
            f"checkpoint {raw.path.name} does not fit {arch} ({n_cls} classes, from {source}): {report.describe()}. "
            + ("Check --arch, or use --arch auto" if source == "--arch" else "Pass the right --arch"),
            hint=hint,
        )
    class_names = _metadata_classes(raw, n_cls)
    check_tensor_values(sd, model, raw.path.name)
    norm = raw.metadata.get("normalization")
    if norm is None:
        normalization = Normalization.from_name(cfg.normalization)
    else:
        normalization = check_normalization_metadata(norm, raw.path.name)
    model.load_state_dict(checkpoint_filter_fn(sd, model), strict=True)
    model.eval()
    return LoadedModel(model, arch, n_cls, cfg.with_classes(n_cls, class_names), raw, class_names, normalization)


def _metadata_arch(raw: RawCheckpoint, chosen: str = "auto") -> str | None:
    """The architecture a checkpoint's metadata names (None when it names none).

    A name the tool does not know (another tool's label) is ignored with a warning: the keys decide. Weights that do
    not fit a known named architecture fail the strict load that follows, with its key report and the closest
    architecture: such a checkpoint is mislabelled or damaged, and guessing would deploy the wrong thing.
    """
    meta_arch = raw.metadata.get("arch")
    if meta_arch is None:
        return None
    known = list_models(include_test=True)
    if not isinstance(meta_arch, str) or meta_arch not in known:
        # another tool's name for it (re-packaged files carry their own labels): the keys decide, as without one
        log.warning(
            "%s: its metadata names architecture %r, which this tool does not know; %s",
            raw.path.name,
            str(meta_arch)[:60],
            "inferring it from the weights" if chosen == "auto" else f"using --arch {chosen}",
        )
        return None
    return meta_arch


def _metadata_classes(raw: RawCheckpoint, n_cls: int) -> tuple[str, ...] | None:
    """The class names of a checkpoint's metadata: a ``num_classes`` that contradicts the classifier is a
    CheckpointError; names that do not fit it are dropped with a warning."""
    meta_n = raw.metadata.get("num_classes")
    if meta_n is not None and (isinstance(meta_n, bool) or not isinstance(meta_n, int) or meta_n != n_cls):
        raise CheckpointError(
            f"checkpoint {raw.path.name}: its metadata says num_classes={str(meta_n)[:20]} but the classifier has "
            f"{n_cls} classes. Fix the file's metadata or re-save it from the training code"
        )
    names = raw.metadata.get("class_names")
    if names is None:
        return None
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names) or len(names) != n_cls:
        # e.g. the 20 VOC object names on a 21-class head: wrong names would mislabel every per-class result
        count = f"{len(names)} class names" if isinstance(names, (list, tuple)) else "class names that are not a list"
        log.warning(
            "%s: its metadata has %s for a classifier of %d classes; not using them (classes are numbered)",
            raw.path.name,
            count,
            n_cls,
        )
        return None
    return tuple(names)
