"""Building blocks shared by the RefineNet families.

Attribute names follow the reference implementation so that state_dict keys match
checkpoints trained with it (``{i}_outvar_dimred``, ``{i}_conv``, ``{i}_conv_relu_varout_dimred``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=bias)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, padding=0, bias=bias)


def upsample_to(x: torch.Tensor, like: torch.Tensor | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with align_corners=True to the spatial size of ``like``, as the reference does."""
    size = like.shape[-2:] if isinstance(like, torch.Tensor) else like
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class CRPBlock(nn.Module):
    """Chained residual pooling: ``n_stages`` of (5x5 max-pool, stride 1) -> conv, each added to a running sum.

    The light-weight variant uses 1x1 convs, the original RefineNet 3x3 convs. No activation inside.
    """

    def __init__(self, in_ch: int, out_ch: int, n_stages: int = 4, kernel_size: int = 1) -> None:
        super().__init__()
        conv = conv1x1 if kernel_size == 1 else conv3x3
        for i in range(n_stages):
            setattr(self, f"{i + 1}_outvar_dimred", conv(in_ch if i == 0 else out_ch, out_ch, bias=False))
        self.n_stages = n_stages
        self.maxpool = nn.MaxPool2d(kernel_size=5, stride=1, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = x
        for i in range(self.n_stages):
            top = self.maxpool(top)
            top = getattr(self, f"{i + 1}_outvar_dimred")(top)
            x = top + x
        return x


class RCUBlock(nn.Module):
    """``n_blocks`` residual conv units: x + conv_b(relu(conv_a(relu(x)))), conv_a with bias, conv_b without."""

    def __init__(self, in_ch: int, out_ch: int, n_blocks: int = 2, n_stages: int = 2) -> None:
        super().__init__()
        stage_names = ("conv", "conv_relu_varout_dimred")
        for i in range(n_blocks):
            for j in range(n_stages):
                name = f"{i + 1}_{stage_names[j]}"
                setattr(self, name, conv3x3(in_ch if i == 0 and j == 0 else out_ch, out_ch, bias=j == 0))
        self.n_blocks = n_blocks
        self.n_stages = n_stages
        self._stage_names = stage_names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.n_blocks):
            residual = x
            for j in range(self.n_stages):
                x = F.relu(x)
                x = getattr(self, f"{i + 1}_{self._stage_names[j]}")(x)
            x = x + residual
        return x


def wrap(block: nn.Module) -> nn.Sequential:
    """The reference wraps CRP and RCU blocks in a one-element Sequential: that is the ``.0.`` in the keys."""
    return nn.Sequential(block)


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The one logits->label-size resize used by training, evaluation, export heads and parity.

    Bilinear with align_corners=False (half-pixel centres, which every backend and DLA support).
    """
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
