"""Block taps: where to look inside a RefineNet, in the papers' vocabulary.

A tap is one block boundary: a PyTorch module's output (a forward hook) or, for the multi-resolution fusion
(a sum of paths plus ReLU that is no module of its own), the input of the CRP block that follows it (a forward
pre-hook). The exporter names every ONNX node after its module (``/model/<scope>/<op>``), so each tap also maps to
the ONNX tensor that carries it (``backends.graph_taps``), from there to an OpenVINO tensor of the same name and to
a TensorRT network tensor (the ONNX parser keeps tensor names).

Names, with stage 1 the coarsest RefineNet stage (1/32) and stage 4 the finest (1/4) in every architecture:

- ``backbone.stem`` (ResNet conv1+BN+ReLU+max-pool; MobileNet-v2 ``layer1``), ``backbone.layer1..4`` (ResNet
  stages) or ``backbone.layer2..8`` (MobileNet-v2 stages), ``backbone2.*`` for the second scale of a 2-scale
  RefineNet (whose stages are tapped where the decoder reads them; its own stem is not tapped);
- RefineNet (Lin et al. 2017), per block ``g``: ``refinenet{g}.adapt.l{k}[.s2]`` (the adaptive convolution of
  backbone level ``k``: dim-reduction conv + 2 RCUs), ``refinenet{g}.fusion`` (the multi-resolution fusion: the
  sum of the paths and its ReLU; ``refinenet{g}.relu`` when the block has one input), ``refinenet{g}.crp``
  (chained residual pooling), ``refinenet{g}.rcu`` (the 3 output RCUs), ``refinenet{g}.out`` (the conv feeding
  the next block);
- Light-Weight RefineNet (Nekrasov et al. 2018), per stage ``g``: ``refinenet{g}.dimred[.a|.b]`` (the 1x1
  dim-reduction convs of the backbone features), ``refinenet{g}.sum`` (the sum of the paths and its ReLU),
  ``refinenet{g}.crp`` (the CRP block), ``refinenet{g}.out`` (the 1x1 conv feeding the next stage);
- ``classifier`` (the last conv: logits at 1/4).

Each tap also names the taps it reads (``inputs``), so the error a block adds over its input can be computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

INPUT = "input"  # the pseudo-tap of the network's input (exact on both sides)


@dataclass(frozen=True)
class Tap:
    """One block boundary: ``module`` (a dotted path in the network), ``side`` ("output" or "input": the tensor
    entering the module), ``inputs`` (the taps it reads; ``INPUT`` for the image)."""

    name: str
    module: str
    side: str = "output"
    inputs: tuple[str, ...] = ()
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "side": self.side, "inputs": list(self.inputs)}


def onnx_scope(module: str, root: str = "model") -> str:
    """The node-name prefix the TorchScript exporter gives a module: ``layer3.0.conv3`` -> ``/model/layer3/layer3.0/
    conv3`` (a numbered child of a Sequential is spelled with its parent's name)."""
    segs: list[str] = []
    for part in module.split("."):
        segs.append(f"{segs[-1]}.{part}" if part.isdigit() and segs else part)
    return "/" + "/".join([root, *segs]) if root else "/" + "/".join(segs)


def _resnet_backbone(prefix: str, module_prefix: str, source: str) -> list[Tap]:
    p = f"{module_prefix}." if module_prefix else ""
    taps = [Tap(f"{prefix}.stem", f"{p}maxpool", inputs=(source,), kind="backbone")]
    previous = f"{prefix}.stem"
    for i in range(1, 5):
        taps.append(Tap(f"{prefix}.layer{i}", f"{p}layer{i}", inputs=(previous,), kind="backbone"))
        previous = f"{prefix}.layer{i}"
    return taps


def _lw_resnet_taps() -> list[Tap]:
    taps = _resnet_backbone("backbone", "", INPUT)
    level = {1: "backbone.layer4", 2: "backbone.layer3", 3: "backbone.layer2", 4: "backbone.layer1"}
    previous = None
    for g in range(1, 5):
        if g == 1:
            taps.append(Tap("refinenet1.dimred", "p_ims1d2_outl1_dimred", inputs=(level[1],), kind="decoder"))
            crp_in = "refinenet1.dimred"
        else:
            dimred = f"adapt_stage{g}_b2_joint_varout_dimred"
            taps.append(Tap(f"refinenet{g}.dimred", dimred, inputs=(level[g],), kind="decoder"))
            taps.append(
                Tap(
                    f"refinenet{g}.sum",
                    f"mflow_conv_g{g}_pool",
                    side="input",
                    inputs=(f"refinenet{g}.dimred", previous),
                    kind="fusion",
                )
            )
            crp_in = f"refinenet{g}.sum"
        taps.append(Tap(f"refinenet{g}.crp", f"mflow_conv_g{g}_pool", inputs=(crp_in,), kind="crp"))
        if g < 4:
            taps.append(
                Tap(
                    f"refinenet{g}.out",
                    f"mflow_conv_g{g}_b3_joint_varout_dimred",
                    inputs=(f"refinenet{g}.crp",),
                    kind="decoder",
                )
            )
            previous = f"refinenet{g}.out"
    taps.append(Tap("classifier", "clf_conv", inputs=("refinenet4.crp",), kind="classifier"))
    return taps


def _lw_mbv2_taps() -> list[Tap]:
    taps = [Tap("backbone.stem", "layer1", inputs=(INPUT,), kind="backbone")]
    previous = "backbone.stem"
    for i in range(2, 9):
        taps.append(Tap(f"backbone.layer{i}", f"layer{i}", inputs=(previous,), kind="backbone"))
        previous = f"backbone.layer{i}"
    # stage g: its dim-reduction convs (module, backbone tap), the CRP, the adapter feeding the next stage
    stages = {
        1: (("conv8", "backbone.layer8"), ("conv7", "backbone.layer7")),
        2: (("conv5", "backbone.layer5"), ("conv6", "backbone.layer6")),
        3: (("conv4", "backbone.layer4"),),
        4: (("conv3", "backbone.layer3"),),
    }
    crp = {1: "crp4", 2: "crp3", 3: "crp2", 4: "crp1"}
    adapt = {1: "conv_adapt4", 2: "conv_adapt3", 3: "conv_adapt2"}
    prev_out = None
    for g in range(1, 5):
        reads = []
        for j, (module, source) in enumerate(stages[g]):
            name = f"refinenet{g}.dimred" + (f".{'ab'[j]}" if len(stages[g]) > 1 else "")
            taps.append(Tap(name, module, inputs=(source,), kind="decoder"))
            reads.append(name)
        if prev_out:
            reads.append(prev_out)
        taps.append(Tap(f"refinenet{g}.sum", crp[g], side="input", inputs=tuple(reads), kind="fusion"))
        taps.append(Tap(f"refinenet{g}.crp", crp[g], inputs=(f"refinenet{g}.sum",), kind="crp"))
        if g < 4:
            taps.append(Tap(f"refinenet{g}.out", adapt[g], inputs=(f"refinenet{g}.crp",), kind="decoder"))
            prev_out = f"refinenet{g}.out"
    taps.append(Tap("classifier", "segm", inputs=("refinenet4.crp",), kind="classifier"))
    return taps


def _refinenet_taps(groups: Sequence[Sequence[int]], scales: Sequence[float]) -> list[Tap]:
    if len(scales) == 2:
        # the exporter scopes the second ResNet's nodes like the first one's (``/model/layer4/layer4.0_1/...``), so
        # each stage of both is tapped where the decoder reads it: the input of its dim-reduction conv
        taps = [Tap("backbone.stem", "maxpool", inputs=(INPUT,), kind="backbone")]
        for si, prefix in ((1, "backbone"), (2, "backbone2")):
            previous = "backbone.stem" if si == 1 else INPUT
            for i in range(1, 5):
                module = f"p_ims{si}d2_outl{5 - i}_dimred"
                taps.append(Tap(f"{prefix}.layer{i}", module, side="input", inputs=(previous,), kind="backbone"))
                previous = f"{prefix}.layer{i}"
    else:
        taps = _resnet_backbone("backbone", "", INPUT)
    level_tap = {4: "layer1", 3: "layer2", 2: "layer3", 1: "layer4"}
    previous = None
    for gi, levels in enumerate(groups, start=1):
        reads = []
        for k in levels:
            for si in range(1, len(scales) + 1):
                sfx = "" if si == 1 else f"_s{si}"
                name = f"refinenet{gi}.adapt.l{k}" + ("" if si == 1 else f".s{si}")
                source = ("backbone" if si == 1 else "backbone2") + "." + level_tap[k]
                taps.append(Tap(name, f"adapt_stage{k}{sfx}_b", inputs=(source,), kind="rcu"))
                reads.append(name)
        if previous:
            reads.append(previous)
        fusion = f"refinenet{gi}.fusion" if len(reads) > 1 else f"refinenet{gi}.relu"
        taps.append(Tap(fusion, f"mflow_conv_g{gi}_pool", side="input", inputs=tuple(reads), kind="fusion"))
        taps.append(Tap(f"refinenet{gi}.crp", f"mflow_conv_g{gi}_pool", inputs=(fusion,), kind="crp"))
        taps.append(Tap(f"refinenet{gi}.rcu", f"mflow_conv_g{gi}_b", inputs=(f"refinenet{gi}.crp",), kind="rcu"))
        previous = f"refinenet{gi}.rcu"
        if gi < len(groups):
            taps.append(
                Tap(
                    f"refinenet{gi}.out",
                    f"mflow_conv_g{gi}_b3_joint_varout_dimred",
                    inputs=(previous,),
                    kind="decoder",
                )
            )
            previous = f"refinenet{gi}.out"
    taps.append(Tap("classifier", "clf_conv", inputs=(previous,), kind="classifier"))
    return taps


def block_taps(model: Any) -> list[Tap]:
    """The taps of a network (an ``nn.Module`` of the zoo), in execution order. Raises ValueError for a model this
    module does not know."""
    from .lw_refinenet import LWRefineNet, LWRefineNetMBv2
    from .refinenet import RefineNet

    if isinstance(model, LWRefineNet):
        return _lw_resnet_taps()
    if isinstance(model, LWRefineNetMBv2):
        return _lw_mbv2_taps()
    if isinstance(model, RefineNet):
        return _refinenet_taps(model.groups, model.scales)
    raise ValueError(f"no block taps for {type(model).__name__}")


def taps_for_arch(arch: str, **kwargs: Any) -> list[Tap]:
    """The taps of a registered architecture (builds it on the meta device: no weights are allocated)."""
    import torch

    from . import create_model

    with torch.device("meta"):
        model = create_model(arch, **kwargs)
    return block_taps(model)


def find_tap(taps: Sequence[Tap], name: str) -> Tap:
    for tap in taps:
        if tap.name == name:
            return tap
    raise KeyError(name)


# --------------------------------------------------------------------------------------------- PyTorch side
class TapRecorder:
    """Forward hooks that copy each tap's tensor during one forward pass of ``network`` (the model itself, not
    the deploy wrapper). Use as a context manager; ``take()`` returns and clears what the last pass recorded."""

    def __init__(self, network: Any, taps: Sequence[Tap]) -> None:
        self.network, self.taps = network, list(taps)
        self._handles: list[Any] = []
        self._values: dict[str, np.ndarray] = {}

    def __enter__(self) -> TapRecorder:
        modules = dict(self.network.named_modules())
        missing = [t.module for t in self.taps if t.module not in modules]
        if missing:
            raise KeyError(f"modules not in the network: {missing[:3]}")
        for tap in self.taps:
            module = modules[tap.module]
            if tap.side == "input":
                self._handles.append(module.register_forward_pre_hook(self._pre(tap.name)))
            else:
                self._handles.append(module.register_forward_hook(self._post(tap.name)))
        return self

    def _pre(self, name: str) -> Any:
        def hook(_module: Any, args: Any) -> None:
            self._values[name] = args[0].detach().float().cpu().numpy().copy()

        return hook

    def _post(self, name: str) -> Any:
        def hook(_module: Any, _args: Any, output: Any) -> None:
            self._values[name] = output.detach().float().cpu().numpy().copy()

        return hook

    def take(self) -> dict[str, np.ndarray]:
        values, self._values = self._values, {}
        return values

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
