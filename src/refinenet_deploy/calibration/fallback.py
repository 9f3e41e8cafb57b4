"""Accuracy-aware INT8: leave the most quantization-sensitive parts of a Q/DQ network in float until the
mIoU drop against the FP32 model fits a budget.

Parts follow the network's structure, read from the ONNX node names the exporter writes
(``/model/<module>/...``): backbone stages (``backbone.layer3``, ``backbone.stem``), CRP blocks
(``crp.crp2``, ``crp.mflow_conv_g1_pool``), decoder modules (adapters, dimension reducers, sums),
the classifier (``classifier``) and all resizes (``resizes``).

A part "falls back" when its nodes read their original float inputs instead of dequantized ones (the
Q/DQ pairs in front of them are bypassed, weights come back from the FP32 model), which is what TensorRT
and OpenVINO run in higher precision. Because this is graph surgery on one calibrated model, trying a
part costs one evaluation, not one calibration.

Search (greedy, like NNCF's accuracy control but for any Q/DQ producer and for TensorRT):
1. drop of the fully quantized model; done if it fits;
2. each part alone in float: its sensitivity is how much of the drop it removes;
3. parts fall back in order of sensitivity until the drop fits.

The evaluator (``evaluate(model) -> Score``) is passed in; the one ``calibrate`` uses
(``operations.accuracy.MiouDropEvaluator``) runs candidates in ONNX Runtime against the FP32 model.

Sensitivity is ranked on disagreement with the FP32 predictions (100 x (1 - agreement mIoU)), which is
smooth in what changes; the stopping rule is the user's budget. The drop is measured in mIoU points
against the FP32 model on validation images: with labels, FP32 mIoU minus INT8 mIoU against the ground
truth; without labels, 100 x (1 - agreement mIoU of INT8 vs FP32).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
_STEM = {"conv1", "bn1", "maxpool"}
_CLASSIFIER = {"clf_conv", "segm"}
_ACTIVATIONS = {"relu", "do"}
_CRP = re.compile(r"^(crp\d+|mflow_conv_g\d+_pool)$")
_BACKBONE = re.compile(r"^(layer\d+|ims2)$")


def node_part(name: str, op_type: str) -> str | None:
    """The part of the network a node belongs to, from its exporter-given name (None: no module)."""
    if op_type == "Resize":
        return "resizes"
    segs = [s for s in name.split("/") if s]
    if segs and segs[0] == "model":  # the export wrapper's attribute
        segs = segs[1:]
    if len(segs) < 2:  # a top-level op (a sum, an activation): takes the part of its input
        return None
    module = re.sub(r"_\d+$", "", segs[0])  # a module called twice is exported as name_1, name_2, ...
    if module in _ACTIVATIONS:  # shared activations (the stem's ReLU is reused in the decoder)
        return None
    if module in _STEM:
        return "backbone.stem"
    if _BACKBONE.match(module):
        return f"backbone.{module}"
    if _CRP.match(module):
        return f"crp.{module}"
    if module in _CLASSIFIER:
        return "classifier"
    return f"decoder.{module}"


def _producers(graph: Any) -> dict[str, Any]:
    return {o: n for n in graph.node for o in n.output}


def _dq_source(name: str, producers: Mapping[str, Any]) -> str | None:
    """If ``name`` is the output of a DequantizeLinear, the float tensor that was quantized (or None)."""
    dq = producers.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = producers.get(dq.input[0])
    if q is not None and q.op_type == "QuantizeLinear":
        return q.input[0]
    return dq.input[0]  # a quantized initializer (weights stored as int8)


def model_parts(model: Any) -> dict[str, list[str]]:
    """Quantized (non-Q/DQ) nodes grouped by part, in graph order; nodes with no module inherit their input's."""
    graph = model.graph
    producers = _producers(graph)
    part_of: dict[str, str] = {}
    parts: dict[str, list[str]] = {}
    for node in graph.node:  # graph order is topological, so an input's part is known first
        if node.op_type in QDQ_OPS or node.op_type == "Constant":
            continue
        part = node_part(node.name, node.op_type)
        if part is None:
            for i in node.input:
                src = producers.get(i)
                while src is not None and src.op_type in QDQ_OPS:
                    src = producers.get(src.input[0])
                if src is not None and part_of.get(src.name) not in (None, "resizes"):
                    part = part_of[src.name]  # a sum after an upsampling belongs to its other branch
                    break
        part = part or "decoder.top"
        part_of[node.name] = part
        if any(_dq_source(i, producers) is not None for i in node.input):
            parts.setdefault(part, []).append(node.name)
    return parts


def dequantize_nodes(qdq: Any, fp32: Any, node_names: Iterable[str]) -> Any:
    """A copy of the Q/DQ model in which ``node_names`` read float inputs (their Q/DQ bypassed).

    Activations come from the float tensor in front of the Q/DQ pair; weights from the FP32 model's
    initializers (exact values, not the dequantized ones). A graph output produced only through a Q/DQ pair
    behind a float node is connected to that node directly. Unused Q/DQ nodes and initializers are removed.
    """
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    graph = model.graph
    wanted = set(node_names)
    fp32_nodes = {n.name: n for n in fp32.graph.node}
    fp32_inits = {t.name: t for t in fp32.graph.initializer}
    inits = {t.name for t in graph.initializer}
    producers = _producers(graph)
    missing = wanted - {n.name for n in graph.node}
    if missing:
        raise ValueError(f"nodes not in the Q/DQ model: {sorted(missing)[:3]}")
    for node in graph.node:
        if node.name not in wanted:
            continue
        original = fp32_nodes.get(node.name)
        for k, name in enumerate(node.input):
            src = _dq_source(name, producers)
            if src is None:
                continue
            if src in inits and original is not None and original.input[k] in fp32_inits:
                float_name = original.input[k]
                if float_name not in inits or _dtype(graph, float_name) != fp32_inits[float_name].data_type:
                    float_name = f"{float_name}__float"
                    if float_name not in inits:
                        t = onnx.TensorProto()
                        t.CopyFrom(fp32_inits[original.input[k]])
                        t.name = float_name
                        graph.initializer.append(t)
                        inits.add(float_name)
                node.input[k] = float_name
            else:
                node.input[k] = src
    _reconnect_outputs(graph, wanted)
    _prune(graph)
    return model


def _dtype(graph: Any, name: str) -> int | None:
    return next((t.data_type for t in graph.initializer if t.name == name), None)


def _reconnect_outputs(graph: Any, wanted: set[str]) -> None:
    producers = _producers(graph)
    for out in graph.output:
        dq = producers.get(out.name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = producers.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        node = producers.get(q.input[0])
        if node is None or node.name not in wanted:
            continue
        consumers = [n for n in graph.node if q.input[0] in n.input]
        if consumers != [q]:
            continue
        for k, o in enumerate(node.output):
            if o == q.input[0]:
                node.output[k] = out.name
        dq.output[0] = f"{out.name}__unused"


def _prune(graph: Any) -> None:
    """Remove nodes whose outputs nobody reads, then unused initializers."""
    keep_outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | keep_outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {i for n in graph.node for i in n.input}
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)


# --------------------------------------------------------------------------------------------- search
@dataclass(frozen=True)
class Score:
    """One evaluation: the budgeted drop and the disagreement with FP32 (both in mIoU points)."""

    drop: float
    disagreement: float


@dataclass
class FallbackResult:
    model: Any
    max_drop: float
    metric: str
    initial_drop: float
    final_drop: float
    parts: list[str]
    nodes: list[str]
    sensitivity: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    evaluations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_miou_drop_points": self.max_drop,
            "metric": self.metric,
            "initial_drop_points": self.initial_drop,
            "final_drop_points": self.final_drop,
            "fallback_parts": self.parts,
            "fallback_node_count": len(self.nodes),
            "sensitivity_disagreement_points": self.sensitivity,
            "history": self.history,
            "evaluations": self.evaluations,
        }


def search_fallback(
    qdq: Any, fp32: Any, evaluate: Callable[[Any], Score], max_drop: float, report: Callable[[str], None] | None = None
) -> FallbackResult:
    """Greedy sensitivity-ordered fallback; ``evaluate(model) -> Score`` (lower is better)."""
    say = report or (lambda msg: log.info("%s", msg))
    parts = model_parts(qdq)
    metric = getattr(evaluate, "metric", "mIoU drop (points)")
    first = evaluate(qdq)
    initial = first.drop
    evaluations = 1
    say(f"fully quantized: drop {initial:.3f} pt (budget {max_drop:.3f} pt), disagreement {first.disagreement:.3f} pt")
    if initial <= max_drop:
        return FallbackResult(qdq, max_drop, metric, initial, initial, [], [], {}, [], evaluations)
    sensitivity: dict[str, float] = {}
    for name, nodes in parts.items():
        score = evaluate(dequantize_nodes(qdq, fp32, nodes))
        evaluations += 1
        sensitivity[name] = first.disagreement - score.disagreement
        say(f"  {name} in float: disagreement {score.disagreement:.3f} pt")
    order = sorted(parts, key=lambda p: (-sensitivity[p], p))
    chosen: list[str] = []
    history = []
    model, drop = qdq, initial
    for name in order:
        chosen.append(name)
        nodes = [n for p in chosen for n in parts[p]]
        model = dequantize_nodes(qdq, fp32, nodes)
        drop = evaluate(model).drop
        evaluations += 1
        history.append({"added": name, "drop_points": drop})
        say(f"float: {', '.join(chosen)} -> drop {drop:.3f} pt")
        if drop <= max_drop:
            break
    nodes = [n for p in chosen for n in parts[p]]
    return FallbackResult(
        model,
        max_drop,
        metric,
        initial,
        drop,
        chosen,
        nodes,
        {k: round(v, 4) for k, v in sensitivity.items()},
        history,
        evaluations,
    )
