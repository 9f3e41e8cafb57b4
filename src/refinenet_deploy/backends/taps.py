"""Block taps in a deployed graph: which tensor carries each ``models.taps.Tap``, and an ONNX copy that exposes
them as graph outputs.

The exporter names each node after its PyTorch module (``/model/<scope>/<op>``, ``models.taps.onnx_scope``). A
tap on a module's output is the first output of the last node in its scope (graph order is topological); a tap
on a module's input is the first input of the first node in its scope. Quantization nodes (ONNX Q/DQ, OpenVINO
FakeQuantize) are looked through: a tap is the float tensor in front of them, so the error a quantized block adds
is seen at its own output. OpenVINO keeps the ONNX node names as friendly names and the ONNX tensor names as port
names, so one resolver serves both (``GraphNode`` lists from ``onnx_nodes`` and ``backends.openvino.taps``).

Exposing a tensor as an output can change what a runtime fuses (ONNX Runtime, OpenVINO and TensorRT keep an
exposed tensor materialised), so a localize run measures a graph close to, not identical with, the deployed one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "FakeQuantize", "FakeConvert"})
SKIP_OPS = frozenset({"Constant", "Result", "Parameter"}) | QUANT_OPS
PASS_THROUGH = frozenset({"Add", "Convert", "Reshape"})  # an OpenVINO conv's bias Add, a precision Convert


@dataclass(frozen=True)
class GraphNode:
    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def onnx_nodes(model: Any) -> list[GraphNode]:
    """The nodes of an ``onnx.ModelProto`` in graph order."""
    return [GraphNode(n.name, n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node]


def resolve_taps(taps: Sequence[Any], nodes: Sequence[GraphNode], root: str = "model") -> dict[str, str]:
    """``{tap name: tensor name}`` for every tap; KeyError naming the taps that do not resolve."""
    from ..models.taps import onnx_scope

    producers = {o: n for n in nodes for o in n.outputs if o}
    consumers: dict[str, list[GraphNode]] = {}
    for n in nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    found: dict[str, str] = {}
    missing = []
    for tap in taps:
        scope = onnx_scope(tap.module, root) + "/"
        inside = [n for n in nodes if n.name.startswith(scope) and n.op not in SKIP_OPS]
        tensor = None
        if inside and tap.side == "input":
            tensor = _float_source(inside[0].inputs[0] if inside[0].inputs else "", producers)
        elif inside:
            tensor = _named_output(inside[-1], consumers)
        if tensor:
            found[tap.name] = tensor
        else:
            missing.append(tap.name)
    if missing:
        raise KeyError(f"taps not found in the graph: {', '.join(missing[:5])}")
    return found


def _float_source(name: str, producers: dict[str, GraphNode]) -> str:
    node = producers.get(name)
    while node is not None and node.op in QUANT_OPS and node.inputs:
        name = node.inputs[0]
        node = producers.get(name)
    return name


def _named_output(node: GraphNode, consumers: dict[str, list[GraphNode]]) -> str | None:
    for _ in range(4):  # an OpenVINO conv without its bias has no name: the bias Add after it has
        named = [o for o in node.outputs if o and not o.startswith("#")]
        if named:
            return named[0]
        users = [c for o in node.outputs for c in consumers.get(o, []) if c.op not in ("ShapeOf", "Shape")]
        if len(users) != 1 or users[0].op not in PASS_THROUGH:
            return None
        node = users[0]
    return None


def expose_onnx_tensors(model: Any, names: Iterable[str]) -> Any:
    """A copy of an ONNX model with ``names`` added as graph outputs (element types from shape inference)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    wanted = [n for n in dict.fromkeys(names) if n not in {o.name for o in copy.graph.output}]
    try:
        inferred = onnx.shape_inference.infer_shapes(copy)
        types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    except Exception:  # noqa: BLE001  (a graph shape inference cannot read: fall back to float)
        types = {}
    for name in wanted:
        elem = types.get(name) or onnx.TensorProto.FLOAT
        copy.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
    return copy


def block_nodes(
    nodes: Sequence[GraphNode], tensors: dict[str, str], inputs: Iterable[str] = ()
) -> dict[str, list[str]]:
    """The nodes of each block: every compute node on the way back from the block's tap tensor to the nearest
    other tap tensors (or the graph inputs and weights), in graph order. Quantization nodes and constants are
    looked through and not listed, so the same block has the same nodes in the FP32 graph and its Q/DQ copy."""
    producers = {o: n for n in nodes for o in n.outputs if o}
    order = {n.name: i for i, n in enumerate(nodes)}
    stops = set(tensors.values()) | set(inputs)
    blocks: dict[str, list[str]] = {}
    for tap, tensor in tensors.items():
        seen: set[str] = set()
        found: dict[str, GraphNode] = {}
        todo = [tensor]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            node = producers.get(name)
            if node is None:
                continue
            if node.op not in SKIP_OPS:
                found[node.name] = node
            for i in node.inputs:
                if i and i not in stops:
                    todo.append(i)
        blocks[tap] = sorted(found, key=lambda n: order[n])
    return blocks
