"""Light-Weight RefineNet (Nekrasov, Shen, Reid, BMVC 2018): ResNet-50/101/152 and MobileNet-v2 encoders.

Blocks -> models -> ``checkpoint_filter_fn`` (in ``checkpoint.py``) -> registered entrypoints.
State-dict keys and shapes equal the reference implementation's, so its checkpoints load strictly.
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import ModelCfg, register_model
from .layers import CRPBlock, conv1x1, conv3x3, upsample_to, wrap
from .resnet import RESNET_LAYERS, ResNetBackbone, init_weights


class LWRefineNet(ResNetBackbone):
    """LW-RefineNet with a ResNet encoder. Output: logits at (ceil(H/4), ceil(W/4))."""

    classifier_key = "clf_conv"

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        num_classes: int = 21,
        base_width: int = 64,
        decoder_width: int = 256,
        top_width: int = 512,
    ) -> None:
        super().__init__(layers, base_width)
        c1, c2, c3, c4 = self.out_channels
        d, t = decoder_width, top_width
        self.do = nn.Dropout(p=0.5)
        self.p_ims1d2_outl1_dimred = conv1x1(c4, t)
        self.mflow_conv_g1_pool = wrap(CRPBlock(t, t, 4))
        self.mflow_conv_g1_b3_joint_varout_dimred = conv1x1(t, d)
        self.p_ims1d2_outl2_dimred = conv1x1(c3, d)
        self.adapt_stage2_b2_joint_varout_dimred = conv1x1(d, d)
        self.mflow_conv_g2_pool = wrap(CRPBlock(d, d, 4))
        self.mflow_conv_g2_b3_joint_varout_dimred = conv1x1(d, d)
        self.p_ims1d2_outl3_dimred = conv1x1(c2, d)
        self.adapt_stage3_b2_joint_varout_dimred = conv1x1(d, d)
        self.mflow_conv_g3_pool = wrap(CRPBlock(d, d, 4))
        self.mflow_conv_g3_b3_joint_varout_dimred = conv1x1(d, d)
        self.p_ims1d2_outl4_dimred = conv1x1(c1, d)
        self.adapt_stage4_b2_joint_varout_dimred = conv1x1(d, d)
        self.mflow_conv_g4_pool = wrap(CRPBlock(d, d, 4))
        self.clf_conv = conv3x3(d, num_classes, bias=True)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1, l2, l3, l4 = self.forward_features(x)
        l4 = self.do(l4)
        l3 = self.do(l3)

        x4 = self.relu(self.p_ims1d2_outl1_dimred(l4))
        x4 = self.mflow_conv_g1_pool(x4)
        x4 = upsample_to(self.mflow_conv_g1_b3_joint_varout_dimred(x4), l3)

        x3 = self.adapt_stage2_b2_joint_varout_dimred(self.p_ims1d2_outl2_dimred(l3))
        x3 = self.mflow_conv_g2_pool(self.relu(x3 + x4))
        x3 = upsample_to(self.mflow_conv_g2_b3_joint_varout_dimred(x3), l2)

        x2 = self.adapt_stage3_b2_joint_varout_dimred(self.p_ims1d2_outl3_dimred(l2))
        x2 = self.mflow_conv_g3_pool(self.relu(x2 + x3))
        x2 = upsample_to(self.mflow_conv_g3_b3_joint_varout_dimred(x2), l1)

        x1 = self.adapt_stage4_b2_joint_varout_dimred(self.p_ims1d2_outl4_dimred(l1))
        x1 = self.mflow_conv_g4_pool(self.relu(x1 + x2))
        x1 = self.do(x1)
        return self.clf_conv(x1)


def conv_bn_act(
    in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1, act: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidualBlock(nn.Module):
    """MobileNet-v2 block as in the reference: the 1x1 expansion exists even for t = 1."""

    def __init__(self, in_ch: int, out_ch: int, expansion: int, stride: int) -> None:
        super().__init__()
        mid = in_ch * expansion
        self.residual = in_ch == out_ch and stride == 1
        self.output = nn.Sequential(
            conv_bn_act(in_ch, mid, 1),
            conv_bn_act(mid, mid, 3, stride=stride, groups=mid),
            conv_bn_act(mid, out_ch, 1, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.output(x)
        return out + x if self.residual else out


MBV2_CONFIG: tuple[tuple[int, int, int, int], ...] = (
    # expansion t, channels c, repeats n, stride s  -> layer2 .. layer8
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class LWRefineNetMBv2(nn.Module):
    """LW-RefineNet with the reference's MobileNet-v2 encoder (not the torchvision key layout)."""

    classifier_key = "segm"

    def __init__(self, num_classes: int = 21, decoder_width: int = 256, width_mult: float = 1.0) -> None:
        super().__init__()
        d = decoder_width
        in_ch = max(8, int(32 * width_mult))
        self.layer1 = conv_bn_act(3, in_ch, 3, stride=2)
        chans = []
        for li, (t, c, n, s) in enumerate(MBV2_CONFIG, start=2):
            c = max(8, int(c * width_mult))
            blocks = []
            for i in range(n):
                blocks.append(InvertedResidualBlock(in_ch, c, t, s if i == 0 else 1))
                in_ch = c
            setattr(self, f"layer{li}", nn.Sequential(*blocks))
            chans.append(c)
        init_weights(self)  # encoder only; the BN-free decoder keeps PyTorch's default init
        _, c3, c4, c5, c6, c7, c8 = chans
        self.conv8 = conv1x1(c8, d)
        self.conv7 = conv1x1(c7, d)
        self.conv6 = conv1x1(c6, d)
        self.conv5 = conv1x1(c5, d)
        self.conv4 = conv1x1(c4, d)
        self.conv3 = conv1x1(c3, d)
        self.crp4 = wrap(CRPBlock(d, d, 4))
        self.crp3 = wrap(CRPBlock(d, d, 4))
        self.crp2 = wrap(CRPBlock(d, d, 4))
        self.crp1 = wrap(CRPBlock(d, d, 4))
        self.conv_adapt4 = conv1x1(d, d)
        self.conv_adapt3 = conv1x1(d, d)
        self.conv_adapt2 = conv1x1(d, d)
        self.segm = conv3x3(d, num_classes, bias=True)
        self.relu = nn.ReLU6(inplace=True)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(x))
        l3 = self.layer3(x)  # 24 ch, 1/4
        l4 = self.layer4(l3)  # 32 ch, 1/8
        l5 = self.layer5(l4)  # 64 ch, 1/16
        l6 = self.layer6(l5)  # 96 ch, 1/16
        l7 = self.layer7(l6)  # 160 ch, 1/32
        l8 = self.layer8(l7)  # 320 ch, 1/32

        x7 = self.crp4(self.relu(self.conv8(l8) + self.conv7(l7)))
        x7 = upsample_to(self.conv_adapt4(x7), l6)
        x5 = self.crp3(self.relu(self.conv5(l5) + self.conv6(l6) + x7))
        x5 = upsample_to(self.conv_adapt3(x5), l4)
        x4 = self.crp2(self.relu(x5 + self.conv4(l4)))
        x4 = upsample_to(self.conv_adapt2(x4), l3)
        x3 = self.crp1(self.relu(self.conv3(l3) + x4))
        return self.segm(x3)


def _lw_resnet_cfg(depth: int) -> ModelCfg:
    return ModelCfg(
        name=f"rf_lw{depth}",
        family="lw_refinenet",
        backbone=f"resnet{depth}",
        description=f"Light-Weight RefineNet, ResNet-{depth} encoder",
        source="Nekrasov et al., BMVC 2018 (reference checkpoints rf_lw{depth}_*.pth.tar)",
    )


@register_model(_lw_resnet_cfg(50))
def rf_lw50(num_classes: int = 21) -> LWRefineNet:
    return LWRefineNet(RESNET_LAYERS[50], num_classes)


@register_model(_lw_resnet_cfg(101))
def rf_lw101(num_classes: int = 21) -> LWRefineNet:
    return LWRefineNet(RESNET_LAYERS[101], num_classes)


@register_model(_lw_resnet_cfg(152))
def rf_lw152(num_classes: int = 21) -> LWRefineNet:
    return LWRefineNet(RESNET_LAYERS[152], num_classes)


@register_model(
    ModelCfg(
        name="rf_lw_mbv2",
        family="lw_refinenet",
        backbone="mobilenet_v2",
        description="Light-Weight RefineNet, MobileNet-v2 encoder (ReLU6)",
        source="Nekrasov et al., BMVC 2018 (reference checkpoint rf_lwmbv2_voc.pth.tar)",
    )
)
def rf_lw_mbv2(num_classes: int = 21) -> LWRefineNetMBv2:
    return LWRefineNetMBv2(num_classes)


@register_model(
    ModelCfg(
        name="rf_lw_test",
        family="lw_refinenet",
        backbone="resnet_tiny",
        num_classes=3,
        input_size=(64, 64),
        description="tiny LW-RefineNet for tests (ResNet [1,1,1,1], width 8)",
        source="this project",
    )
)
def rf_lw_test(num_classes: int = 3) -> LWRefineNet:
    return LWRefineNet((1, 1, 1, 1), num_classes, base_width=8, decoder_width=16, top_width=32)


@register_model(
    ModelCfg(
        name="rf_lw_mbv2_test",
        family="lw_refinenet",
        backbone="mobilenet_v2_tiny",
        num_classes=3,
        input_size=(64, 64),
        description="tiny LW-RefineNet MobileNet-v2 for tests (width x0.25)",
        source="this project",
    )
)
def rf_lw_mbv2_test(num_classes: int = 3) -> LWRefineNetMBv2:
    return LWRefineNetMBv2(num_classes, decoder_width=16, width_mult=0.25)
