"""TensorRT side of the block taps: mark the tap tensors (``backends.taps.resolve_taps`` on the ONNX; the ONNX
parser keeps tensor names) as network outputs before the engine is built. An engine's outputs are fixed at build
time, so a localize engine is a separate build, and marking a tensor as an output stops TensorRT from fusing
across it: the localize engine can differ from the deployed one (that is also how "fusion breakers" find a
miscompiled fusion). Marking and building are tested with TensorRT-RTX on a CPU
(``tests/backends/test_tensorrt_taps.py``); running a tapped engine needs a GPU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def mark_tap_outputs(network: Any, tensors: Sequence[str]) -> list[str]:
    """Mark each named tensor of a parsed ``INetworkDefinition`` as an output; returns the names marked. KeyError
    naming the tensors the network does not have (the parser may fold a tensor away, e.g. a constant)."""
    by_name: dict[str, Any] = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_outputs):
            t = layer.get_output(j)
            by_name.setdefault(t.name, t)
    missing = [t for t in tensors if t not in by_name]
    if missing:
        raise KeyError(f"tensors not in the TensorRT network: {', '.join(missing[:5])}")
    already = {network.get_output(i).name for i in range(network.num_outputs)}
    marked = []
    for name in dict.fromkeys(tensors):
        if name not in already:
            network.mark_output(by_name[name])
            marked.append(name)
    return marked
