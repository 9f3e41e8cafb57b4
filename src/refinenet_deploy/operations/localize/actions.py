"""What to do about a block of an INT8 artifact: the exclusion that keeps it in float in each tool (ModelOpt
``nodes_to_exclude``, NNCF ``ignored_scope``, ``calibrate --keep-float`` for TensorRT), the mIoU recovered when only
that block stays in float, and which blocks to keep in float first.

mIoU recovered (points) = drop(the artifact) - drop(the artifact with only this block in float), with the fallback's
metric (``operations.accuracy``: vs ground truth with labels, else disagreement with the FP32 ONNX) on the first
``images`` images, the FP32 ONNX the artifact was made from (its sidecar's ``source_model``, beside it) as
reference:

- Q/DQ ONNX: the block's nodes read float inputs (``calibration.fallback.dequantize_nodes``, graph surgery on the
  artifact itself), scored in ONNX Runtime;
- NNCF INT8 IR: ``recovered_nncf`` (one NNCF quantization per block, with the block in ``ignored_scope``), for the
  candidate blocks only (``nncf_candidates``: the flagged one and the ``KEEP_FLOAT_MAX`` adding the most dB); the
  others stay unmeasured (None), and a note says how many were measured.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...artifacts import read_metadata, sha256_file
from ...backends.taps import GraphNode, block_nodes, onnx_nodes, resolve_taps
from ...enums import Runtime
from ...errors import UsageError
from ...validate.localize import Localization

KEEP_FLOAT_MAX = 5
RECOVERED_RESOLUTION_POINTS = 0.05  # mIoU points: smaller differences in mIoU recovered rank as ties


def exclusions(
    nodes: Sequence[GraphNode], inputs: Sequence[str], taps: Sequence[Any], tensors: dict[str, str]
) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """``(members, blocks)``: each block's node names and, per block, the exclusion in each tool: the block's
    module scope as a regular expression when all its named nodes sit under it, else its node names."""
    from ...models.taps import onnx_scope

    members = block_nodes(nodes, tensors, inputs)
    modules = {t.name: t for t in taps}
    blocks: dict[str, dict[str, Any]] = {}
    for name, names in members.items():
        tap = modules[name]
        scope = onnx_scope(tap.module) + "/"
        named = [n for n in names if n.startswith("/")]  # OpenVINO's own weight-decompression ops (Convert_123)
        in_scope = tap.side == "output" and named and all(n.startswith(scope) for n in named)
        patterns = [re.escape(scope) + ".*"] if in_scope else [re.escape(n) for n in names]
        blocks[name] = {
            "nodes": len(names),
            "modelopt_nodes_to_exclude": patterns,
            "nncf_ignored_scope": {"patterns": patterns},
            "tensorrt": f"calibrate --keep-float {name} (the block's Q/DQ removed; build strongly typed)",
            "miou_recovered_points": None,
        }
    return members, blocks


def block_actions(
    artifact: Path,
    kind: Runtime,
    nodes: Sequence[GraphNode],
    onnx_model: Any,
    taps: Sequence[Any],
    tensors: dict[str, str],
    *,
    data: str | Path | None,
    split: str | None = None,
    images: int = 8,
    threads: int | None = None,
    candidates: Sequence[str] | None = None,
) -> dict[str, Any]:
    """For an INT8 artifact, per block: the exclusions and the mIoU recovered (module docstring). An NNCF IR costs
    one quantization per block, so only ``candidates`` (``nncf_candidates``; None: every block) are measured there.
    Returns ``{"blocks": {block: {...}}, "notes": [...]}``."""
    from ...calibration.fallback import QDQ_OPS

    inputs = [n.name for n in nodes if n.op == "Parameter"]
    if onnx_model is not None:
        inputs = [i.name for i in onnx_model.graph.input]
    members, blocks = exclusions(nodes, inputs, taps, tensors)
    has_qdq = onnx_model is not None and any(n.op_type in QDQ_OPS for n in onnx_model.graph.node)
    nncf = kind == Runtime.OPENVINO and nncf_quantized(artifact)
    if not has_qdq and not nncf:
        note = "mIoU recovered per block: measured for Q/DQ ONNX and NNCF INT8 IRs (nncf.quantize) only"
        return {"blocks": blocks, "notes": [note]}
    fp32 = fp32_source(artifact)
    if fp32 is None or data is None:
        why = "no --data" if fp32 is not None else "its FP32 source model is not beside it (sidecar source_model)"
        return {"blocks": blocks, "notes": [f"mIoU recovered per block not measured: {why}"]}
    if has_qdq:
        recovered = miou_recovered(onnx_model, fp32, {b: members[b] for b in blocks}, data, split, images, threads)
        notes: list[str] = []
    else:
        from .nncf_recovered import recovered_nncf

        chosen = [b for b in blocks if candidates is None or b in candidates]
        patterns = {b: blocks[b]["nncf_ignored_scope"]["patterns"] for b in chosen}
        recovered, notes = recovered_nncf(artifact, fp32, patterns, data, split, images, threads)
    for name, value in recovered.items():
        blocks[name]["miou_recovered_points"] = value
    return {"blocks": blocks, "notes": notes}


def nncf_candidates(localization: Localization) -> list[str]:
    """The blocks worth one NNCF quantization each: the first below the threshold and the ``KEEP_FLOAT_MAX`` that add
    the most error over their input (dB)."""
    rows = sorted((r for r in localization.rows if r.added_db is not None), key=lambda r: -(r.added_db or 0.0))
    first = [localization.first_below] if localization.first_below else []
    return list(dict.fromkeys([*first, *(r.name for r in rows[:KEEP_FLOAT_MAX])]))


def nncf_quantized(artifact: Path) -> bool:
    """An IR that ``build openvino --int8`` quantized with plain ``nncf.quantize`` (its sidecar says so)."""
    quantization = read_metadata(artifact).get("quantization") or {}
    return quantization.get("producer") == "nncf.quantize"


def fp32_source(artifact: Path) -> Path | None:
    """The FP32 ONNX an artifact was made from, when it sits beside it unchanged (sidecar ``source_model``)."""
    source = read_metadata(artifact).get("source_model") or {}
    if not source.get("file"):
        return None
    path = artifact.parent / Path(source["file"]).name
    if not path.is_file() or (source.get("sha256") and sha256_file(path) != source["sha256"]):
        return None
    return path


def miou_recovered(
    qdq: Any,
    fp32_path: Path,
    blocks: dict[str, list[str]],
    data: str | Path,
    split: str | None,
    images: int,
    threads: int | None,
) -> dict[str, float | None]:
    """``{block: drop(fully quantized) - drop(only this block in float)}`` in mIoU points (the fallback's metric:
    vs ground truth with labels, else disagreement with FP32), one evaluation per block."""
    import onnx

    from ...calibration.fallback import dequantize_nodes, model_parts
    from ..accuracy import MiouDropEvaluator

    fp32 = onnx.load(str(fp32_path))
    quantized = {n for part in model_parts(qdq).values() for n in part}
    evaluate = MiouDropEvaluator(fp32_path, data, num_images=images, split=split, threads=threads)
    try:
        first = evaluate(qdq).drop
        out: dict[str, float | None] = {}
        for name, nodes in blocks.items():
            chosen = [n for n in nodes if n in quantized]
            if not chosen:
                out[name] = 0.0
                continue
            out[name] = round(first - evaluate(dequantize_nodes(qdq, fp32, chosen)).drop, 4)
        return out
    finally:
        evaluate.close()


def keep_float_ranking(
    actions: dict[str, dict[str, Any]], added_db: dict[str, float | None], flagged: Sequence[str | None]
) -> list[str]:
    """The blocks to keep in float first (at most ``KEEP_FLOAT_MAX``): by mIoU recovered when it was measured, in
    steps of ``RECOVERED_RESOLUTION_POINTS`` (closer values are ties: on a few images they differ by a handful of
    pixels), ties broken by the error the block adds over its input (dB); else the flagged blocks (first below the
    threshold, then the one adding the most)."""
    measured = {k: v["miou_recovered_points"] for k, v in actions.items() if v["miou_recovered_points"] is not None}
    if measured:

        def key(k: str) -> tuple[int, float]:
            return -round(measured[k] / RECOVERED_RESOLUTION_POINTS), -(added_db.get(k) or 0.0)

        return sorted(measured, key=key)[:KEEP_FLOAT_MAX]
    return list(dict.fromkeys(b for b in flagged if b))


def keep_float_nodes(fp32: Any, meta: dict[str, Any], blocks: Sequence[str]) -> list[str]:
    """The FP32 graph's node names of ``blocks`` (``calibrate --keep-float``): what a Q/DQ producer must leave
    unquantized. The architecture comes from the model's metadata (``arch``); UsageError for an unknown block."""
    from ...models.taps import taps_for_arch

    arch = meta.get("arch")
    if not arch:
        raise UsageError("--keep-float needs the model's architecture: pass the ONNX 'rfdeploy export onnx' wrote")
    taps = taps_for_arch(arch, **(meta.get("arch_kwargs") or {}))
    known = [t.name for t in taps]
    unknown = [b for b in blocks if b not in known]
    if unknown:
        raise UsageError(f"--keep-float: unknown block {', '.join(unknown)} for {arch}. Blocks: {', '.join(known)}")
    nodes = onnx_nodes(fp32)
    try:
        tensors = resolve_taps(taps, nodes)
    except KeyError as exc:
        raise UsageError(f"--keep-float: {exc.args[0]}. Re-export the model with rfdeploy") from None
    members = block_nodes(nodes, tensors, [i.name for i in fp32.graph.input])
    return [n for b in blocks for n in members[b]]
