"""OpenVINO side of the block taps: the model's nodes for ``backends.taps.resolve_taps`` and a loader that adds
the tap tensors as output ports (``ov.Model.add_outputs``) before compiling. Extra outputs keep those tensors
materialised, which can change what the CPU plugin fuses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..._optional import require
from ..taps import GraphNode


def _name(port: Any) -> str:
    """A port's tensor name; an unnamed port gets a unique ``#node:index`` placeholder (never a tap)."""
    names = sorted(port.get_names())
    if not names:
        return f"#{port.get_node().get_friendly_name()}:{port.get_index()}"
    return next((n for n in names if n.endswith("_output_0")), names[0])


def ov_nodes(model: Any) -> list[GraphNode]:
    """The nodes of an ``ov.Model`` in topological order, with their ports' tensor names."""
    nodes = []
    for op in model.get_ordered_ops():
        inputs = tuple(_name(i.get_source_output()) for i in op.inputs())
        outputs = tuple(_name(o) for o in op.outputs())
        nodes.append(GraphNode(op.get_friendly_name(), op.get_type_name(), inputs, outputs))
    return nodes


def read_ir(path: str | Path) -> Any:
    ov = require("openvino", extra="openvino")
    path = Path(path)
    if path.suffix.lower() == ".xml":
        return ov.Core().read_model(str(path), str(path.with_suffix(".bin")))
    return ov.Core().read_model(str(path))


def model_with_outputs(path: str | Path, tensors: Sequence[str]) -> Callable[[], Any]:
    """A zero-argument builder (what ``OpenVINORunner`` takes) of the model at ``path`` with ``tensors`` added as
    outputs."""

    def build() -> Any:
        model = read_ir(path)
        have = {n for o in model.outputs for n in o.get_names()}
        extra = [t for t in tensors if t not in have]
        if extra:
            model.add_outputs(extra)
        return model

    return build
