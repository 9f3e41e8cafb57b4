"""RefineNet (Lin et al., CVPR 2017): the multi-path refinement network with RCU, fusion and 3x3 CRP.

One class covers the paper's variants (Fig. 7) through ``groups``, the backbone levels each RefineNet
block fuses (level 1 = layer4, the coarsest; level 4 = layer1):

- 4-cascaded (standard, ``rf50``/``rf101``/``rf152``): ((1,), (2,), (3,), (4,)); keys equal the reference.
- 2-cascaded: ((1, 2), (3, 4)); single RefineNet: ((1, 2, 3, 4),).
- 4-cascaded 2-scale: the image resized by 1.2 and 0.6 through two independent ResNets; level-k features
  of both scales enter RefineNet-k.

Each block: per input path a 3x3 dim-reduction conv and 2 RCUs; if the block has several inputs, a 3x3
fusion conv per backbone path, the previous block's output reduced by its ``b3`` conv, all upsampled
(bilinear, align_corners) to the finest input and summed; ReLU; CRP (4 stages); 3 RCUs; then either the
``b3`` conv feeding the next block or the classifier. Keys of the extra variants follow the same scheme
(``adapt_stage{k}_s2_*`` and ``p_ims2d2_*`` for the second scale, whose ResNet lives under ``ims2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import ModelCfg, register_model
from .layers import CRPBlock, RCUBlock, conv3x3, upsample_to, wrap
from .resnet import RESNET_LAYERS, ResNetBackbone

CASCADES: dict[str, tuple[tuple[int, ...], ...]] = {
    "4": ((1,), (2,), (3,), (4,)),
    "2": ((1, 2), (3, 4)),
    "1": ((1, 2, 3, 4),),
}


def _out_size(size: Any) -> Any:
    """Spatial size after a stride-2 conv/pool with 'same'-style padding: ceil(size / 2)."""
    return (size - 1) // 2 + 1


class RefineNet(ResNetBackbone):
    """Full RefineNet. Output: logits at (ceil(H/4), ceil(W/4)) for every variant."""

    classifier_key = "clf_conv"

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        num_classes: int = 21,
        groups: Sequence[Sequence[int]] = CASCADES["4"],
        scales: Sequence[float] = (1.0,),
        base_width: int = 64,
        width: int = 256,
        top_width: int = 512,
    ) -> None:
        super().__init__(layers, base_width)
        if sorted(k for g in groups for k in g) != [1, 2, 3, 4]:
            raise ValueError(f"groups must cover levels 1..4 exactly once, got {groups}")
        if len(scales) not in (1, 2):
            raise ValueError("scales must have one or two entries")
        self.groups = tuple(tuple(sorted(g)) for g in groups)
        self.scales = tuple(float(s) for s in scales)
        if len(self.scales) == 2:
            self.ims2 = ResNetBackbone(layers, base_width)
        level_ch = dict(zip((4, 3, 2, 1), self.out_channels))  # level 4 = layer1 ... level 1 = layer4
        path_width = {k: top_width if k == 1 else width for k in range(1, 5)}
        self.do = nn.Dropout(p=0.5)

        widths = [top_width if 1 in g and len(g) == 1 else width for g in self.groups]
        self._block_widths = widths
        for gi, levels in enumerate(self.groups, start=1):
            w = widths[gi - 1]
            n_inputs = len(levels) * len(self.scales) + (gi > 1)
            for k in levels:
                for si in range(1, len(self.scales) + 1):
                    sfx = "" if si == 1 else f"_s{si}"
                    setattr(self, f"p_ims{si}d2_outl{k}_dimred", conv3x3(level_ch[k], path_width[k]))
                    setattr(self, f"adapt_stage{k}{sfx}_b", wrap(RCUBlock(path_width[k], path_width[k], 2, 2)))
                    if n_inputs > 1:
                        setattr(self, f"adapt_stage{k}{sfx}_b2_joint_varout_dimred", conv3x3(path_width[k], w))
            setattr(self, f"mflow_conv_g{gi}_pool", wrap(CRPBlock(w, w, 4, kernel_size=3)))
            setattr(self, f"mflow_conv_g{gi}_b", wrap(RCUBlock(w, w, 3, 2)))
            if gi < len(self.groups):
                setattr(self, f"mflow_conv_g{gi}_b3_joint_varout_dimred", conv3x3(w, widths[gi]))
        self.clf_conv = conv3x3(widths[-1], num_classes, bias=True)
        self.num_classes = num_classes

    def _features(self, x: torch.Tensor) -> list[dict[int, torch.Tensor]]:
        """Backbone features per scale, keyed by level (1 = layer4 ... 4 = layer1)."""
        feats = []
        for si, scale in enumerate(self.scales, start=1):
            xs = x
            if scale != 1.0:  # output floor(H*s) x floor(W*s); the same scale maps coordinates in ONNX Resize
                xs = F.interpolate(
                    x, scale_factor=scale, mode="bilinear", align_corners=False, recompute_scale_factor=False
                )
            backbone = self if si == 1 else self.ims2
            l1, l2, l3, l4 = backbone.forward_features(xs)
            feats.append({1: self.do(l4), 2: self.do(l3), 3: l2, 4: l1})
        return feats

    def _nominal_sizes(self, x: torch.Tensor) -> dict[int, tuple[Any, Any]]:
        """Feature sizes the single-scale network would have: fusion targets for the 2-scale variant.

        Plain arithmetic on ``x.shape`` (no int()/round()), so an ONNX trace keeps the sizes symbolic.
        """
        h, w = x.shape[-2], x.shape[-1]
        h, w = _out_size(_out_size(h)), _out_size(_out_size(w))  # conv1 + maxpool -> layer1
        sizes = {4: (h, w)}
        for k in (3, 2, 1):
            h, w = _out_size(h), _out_size(w)
            sizes[k] = (h, w)
        return sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._features(x)
        nominal = self._nominal_sizes(x) if len(self.scales) > 1 else None
        prev: torch.Tensor | None = None
        for gi, levels in enumerate(self.groups, start=1):
            finest = max(levels)
            target = nominal[finest] if nominal is not None else feats[0][finest]
            n_inputs = len(levels) * len(self.scales) + (gi > 1)
            paths = []
            for k in levels:
                for si in range(1, len(self.scales) + 1):
                    sfx = "" if si == 1 else f"_s{si}"
                    p = getattr(self, f"p_ims{si}d2_outl{k}_dimred")(feats[si - 1][k])
                    p = getattr(self, f"adapt_stage{k}{sfx}_b")(p)
                    if n_inputs > 1:
                        p = getattr(self, f"adapt_stage{k}{sfx}_b2_joint_varout_dimred")(p)
                    if nominal is not None or k != finest:
                        p = upsample_to(p, target)
                    paths.append(p)
            if prev is not None:
                paths.append(upsample_to(prev, target))
            y = paths[0]
            for p in paths[1:]:
                y = y + p
            y = F.relu(y)
            y = getattr(self, f"mflow_conv_g{gi}_pool")(y)
            y = getattr(self, f"mflow_conv_g{gi}_b")(y)
            if gi < len(self.groups):
                prev = getattr(self, f"mflow_conv_g{gi}_b3_joint_varout_dimred")(y)
            else:
                prev = y
        return self.clf_conv(self.do(prev))


def _make(depth: int, num_classes: int, cascade: str = "4", two_scale: bool = False) -> RefineNet:
    if cascade not in CASCADES:
        raise ValueError(f"cascade must be one of {sorted(CASCADES)}, got {cascade!r}")
    scales = (1.2, 0.6) if two_scale else (1.0,)
    return RefineNet(RESNET_LAYERS[depth], num_classes, groups=CASCADES[cascade], scales=scales)


def _cfg(name: str, depth: int, what: str) -> ModelCfg:
    return ModelCfg(
        name=name,
        family="refinenet",
        backbone=f"resnet{depth}",
        description=f"RefineNet, ResNet-{depth}, {what}",
        source="Lin et al., CVPR 2017" + (" (reference checkpoint rf101_voc.pth.tar)" if name == "rf101" else ""),
    )


@register_model(_cfg("rf50", 50, "4-cascaded"))
def rf50(num_classes: int = 21, cascade: str = "4", two_scale: bool = False) -> RefineNet:
    return _make(50, num_classes, cascade, two_scale)


@register_model(_cfg("rf101", 101, "4-cascaded"))
def rf101(num_classes: int = 21, cascade: str = "4", two_scale: bool = False) -> RefineNet:
    return _make(101, num_classes, cascade, two_scale)


@register_model(_cfg("rf152", 152, "4-cascaded"))
def rf152(num_classes: int = 21, cascade: str = "4", two_scale: bool = False) -> RefineNet:
    return _make(152, num_classes, cascade, two_scale)


@register_model(_cfg("rf101_single", 101, "single RefineNet (1-cascade)"))
def rf101_single(num_classes: int = 21) -> RefineNet:
    return _make(101, num_classes, cascade="1")


@register_model(_cfg("rf101_cascade2", 101, "2-cascaded"))
def rf101_cascade2(num_classes: int = 21) -> RefineNet:
    return _make(101, num_classes, cascade="2")


@register_model(_cfg("rf101_2scale", 101, "4-cascaded 2-scale (x1.2 and x0.6)"))
def rf101_2scale(num_classes: int = 21) -> RefineNet:
    return _make(101, num_classes, cascade="4", two_scale=True)


@register_model(
    ModelCfg(
        name="rf_test",
        family="refinenet",
        backbone="resnet_tiny",
        num_classes=3,
        input_size=(64, 64),
        description="tiny RefineNet for tests (ResNet [1,1,1,1], width 8); cascade/two_scale as options",
        source="this project",
    )
)
def rf_test(num_classes: int = 3, cascade: str = "4", two_scale: bool = False) -> RefineNet:
    scales = (1.2, 0.6) if two_scale else (1.0,)
    return RefineNet(
        (1, 1, 1, 1), num_classes, groups=CASCADES[cascade], scales=scales, base_width=8, width=16, top_width=32
    )
