"""Independent functional forward passes of the reference networks, written from REFINENET.md.

They read weights straight out of a state_dict with F.conv2d / F.batch_norm and share no code with
``refinenet_deploy.models``, so agreement means our modules implement the reference dataflow (not that
our modules agree with themselves).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _conv(sd: dict, key: str, x: Tensor, stride: int = 1, groups: int = 1) -> Tensor:
    w = sd[f"{key}.weight"]
    return F.conv2d(x, w, sd.get(f"{key}.bias"), stride=stride, padding=w.shape[-1] // 2, groups=groups)


def _bn(sd: dict, key: str, x: Tensor) -> Tensor:
    return F.batch_norm(
        x,
        sd[f"{key}.running_mean"],
        sd[f"{key}.running_var"],
        sd[f"{key}.weight"],
        sd[f"{key}.bias"],
        training=False,
        eps=1e-5,
    )


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)


def resnet_features(sd: dict, x: Tensor, blocks: tuple[int, ...]) -> list[Tensor]:
    x = F.relu(_bn(sd, "bn1", F.conv2d(x, sd["conv1.weight"], stride=2, padding=3)))
    x = F.max_pool2d(x, 3, 2, 1)
    feats = []
    for li, n in enumerate(blocks, start=1):
        for b in range(n):
            p = f"layer{li}.{b}"
            stride = 2 if (b == 0 and li > 1) else 1
            out = F.relu(_bn(sd, f"{p}.bn1", _conv(sd, f"{p}.conv1", x)))
            out = F.relu(_bn(sd, f"{p}.bn2", _conv(sd, f"{p}.conv2", out, stride=stride)))
            out = _bn(sd, f"{p}.bn3", _conv(sd, f"{p}.conv3", out))
            res = x
            if f"{p}.downsample.0.weight" in sd:
                res = _bn(sd, f"{p}.downsample.1", F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride))
            x = F.relu(out + res)
        feats.append(x)
    return feats


def crp(sd: dict, key: str, x: Tensor) -> Tensor:
    top = x
    for i in range(1, 5):
        top = _conv(sd, f"{key}.0.{i}_outvar_dimred", F.max_pool2d(top, 5, 1, 2))
        x = top + x
    return x


def rcu(sd: dict, key: str, x: Tensor, n: int) -> Tensor:
    for i in range(1, n + 1):
        res = x
        x = _conv(sd, f"{key}.0.{i}_conv", F.relu(x))
        x = _conv(sd, f"{key}.0.{i}_conv_relu_varout_dimred", F.relu(x))
        x = x + res
    return x


def lw_resnet_forward(sd: dict, x: Tensor, blocks: tuple[int, ...]) -> Tensor:
    l1, l2, l3, l4 = resnet_features(sd, x, blocks)
    x4 = crp(sd, "mflow_conv_g1_pool", F.relu(_conv(sd, "p_ims1d2_outl1_dimred", l4)))
    x4 = _up(_conv(sd, "mflow_conv_g1_b3_joint_varout_dimred", x4), l3)
    x = x4
    for k, skip, nxt in ((2, l3, l2), (3, l2, l1), (4, l1, None)):
        y = _conv(sd, f"adapt_stage{k}_b2_joint_varout_dimred", _conv(sd, f"p_ims1d2_outl{k}_dimred", skip))
        y = crp(sd, f"mflow_conv_g{k}_pool", F.relu(y + x))
        if nxt is not None:
            y = _up(_conv(sd, f"mflow_conv_g{k}_b3_joint_varout_dimred", y), nxt)
        x = y
    return _conv(sd, "clf_conv", x)


def mbv2_forward(sd: dict, x: Tensor) -> Tensor:
    relu6 = lambda t: F.hardtanh(t, 0.0, 6.0)  # noqa: E731
    x = relu6(_bn(sd, "layer1.1", F.conv2d(x, sd["layer1.0.weight"], stride=2, padding=1)))
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    feats = {}
    for li, (_t, _c, n, s) in enumerate(cfg, start=2):
        for b in range(n):
            p = f"layer{li}.{b}.output"
            inp = x
            y = relu6(_bn(sd, f"{p}.0.1", _conv(sd, f"{p}.0.0", x)))
            y = relu6(_bn(sd, f"{p}.1.1", _conv(sd, f"{p}.1.0", y, stride=s if b == 0 else 1, groups=y.shape[1])))
            y = _bn(sd, f"{p}.2.1", _conv(sd, f"{p}.2.0", y))
            x = y + inp if y.shape == inp.shape and (b > 0 or s == 1) else y
        feats[li] = x
    l3, l4, l5, l6, l7, l8 = (feats[i] for i in range(3, 9))
    x7 = crp(sd, "crp4", relu6(_conv(sd, "conv8", l8) + _conv(sd, "conv7", l7)))
    x7 = _up(_conv(sd, "conv_adapt4", x7), l6)
    x5 = crp(sd, "crp3", relu6(_conv(sd, "conv5", l5) + _conv(sd, "conv6", l6) + x7))
    x5 = _up(_conv(sd, "conv_adapt3", x5), l4)
    x4 = crp(sd, "crp2", relu6(x5 + _conv(sd, "conv4", l4)))
    x4 = _up(_conv(sd, "conv_adapt2", x4), l3)
    return _conv(sd, "segm", crp(sd, "crp1", relu6(_conv(sd, "conv3", l3) + x4)))


def refinenet_forward(sd: dict, x: Tensor, blocks: tuple[int, ...]) -> Tensor:
    """4-cascaded RefineNet: RCUs on each input path and after CRP, 3x3 convs throughout."""
    l1, l2, l3, l4 = resnet_features(sd, x, blocks)
    prev = None
    for k, feat in ((1, l4), (2, l3), (3, l2), (4, l1)):
        y = rcu(sd, f"adapt_stage{k}_b", _conv(sd, f"p_ims1d2_outl{k}_dimred", feat), 2)
        if prev is not None:
            y = _conv(sd, f"adapt_stage{k}_b2_joint_varout_dimred", y) + _up(prev, feat)
        y = rcu(sd, f"mflow_conv_g{k}_b", crp(sd, f"mflow_conv_g{k}_pool", F.relu(y)), 3)
        prev = _conv(sd, f"mflow_conv_g{k}_b3_joint_varout_dimred", y) if k < 4 else y
    return _conv(sd, "clf_conv", prev)
