"""Parameter and multiply-accumulate counts, measured by running the model on the meta device."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_gmac(model: nn.Module, height: int = 512, width: int = 512, batch: int = 1) -> float:
    """GMACs of all Conv2d layers for one forward pass at (height, width).

    Runs on a meta-device copy when the model lives on the meta device, so even RefineNet-152 costs nothing.
    """
    total = 0

    def hook(module: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += out.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    device = next(model.parameters()).device
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(batch, 3, height, width, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total / 1e9


@dataclass(frozen=True)
class ModelSummary:
    name: str
    family: str
    backbone: str
    parameters: int
    gmac: float
    description: str


def describe_models(
    pattern: str = "*", *, height: int = 512, width: int = 512, num_classes: int = 21, include_test: bool = False
) -> list[ModelSummary]:
    """One row per registered model, counted on the meta device (allocates nothing)."""
    from ._factory import create_model
    from ._registry import get_model_cfg, list_models

    rows = []
    for name in list_models(pattern, include_test=include_test):
        cfg = get_model_cfg(name)
        with torch.device("meta"):
            model = create_model(name, num_classes=num_classes)
        rows.append(
            ModelSummary(
                name,
                cfg.family,
                cfg.backbone,
                count_parameters(model),
                conv_gmac(model, height, width),
                cfg.description,
            )
        )
    return rows
