"""mIoU recovered per block for an NNCF INT8 IR: the NNCF counterpart of the Q/DQ fallback's "this part in float".

An NNCF IR cannot be partly dequantized by graph surgery as a Q/DQ ONNX can (its weights are stored in INT8), so
each block is measured the way a user would keep it in float: ``nncf.quantize`` again, on the IR's own calibration
set and settings (``calibration.nncf.quantize_openvino``), with the block's patterns in ``ignored_scope``. Then

    recovered(block) = drop(the IR) - drop(NNCF with only this block ignored)

with the fallback's metric (``operations.accuracy``: vs ground truth with labels, else disagreement with the FP32
ONNX), each candidate compiled for the CPU in f32 as the accuracy checks run it. One quantization per block (on the
tiny test model several seconds each on a shared 2-core machine; minutes on a real network), so only the candidate
blocks the caller passes are measured and the note names them.

The calibration set is rebuilt from ``--data`` with the count and seed the IR's sidecar records, and must have the
recorded digest (the same images, resized the same way); otherwise nothing is measured and a note says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...artifacts import read_metadata
from ...calibration.fallback import Score
from ..accuracy import MiouDropEvaluator


class CompiledDropEvaluator(MiouDropEvaluator):
    """``evaluate(ov_model) -> Score``: an OpenVINO model against the FP32 ONNX (the fallback's metric)."""

    def __call__(self, model: Any) -> Score:
        from ...backends.openvino.builder import compile_cpu
        from ...backends.openvino.runner import CompiledModelRunner

        engine = self.reference.engine(CompiledModelRunner(compile_cpu(model, self.threads)))
        for i in range(self.count):
            sample, image, label = self.dataset[i]
            engine.add(sample.name, image, label)
        report = engine.report()
        disagreement = float((1.0 - report.agreement.miou) * 100)
        drop = report.miou_drop_points
        return Score(float(drop) if drop is not None else disagreement, disagreement)


def nncf_calibration_set(artifact: Path, fp32: Path, data: str | Path, split: str | None) -> tuple[Any, str | None]:
    """The IR's calibration set rebuilt from ``data`` and, when it is not the recorded one, why (else None)."""
    from ...calibration.dataset import calibration_set_for_model

    calibration = read_metadata(artifact).get("calibration") or {}
    if not calibration.get("digest") or not calibration.get("count"):
        return None, "the IR's sidecar records no calibration set"
    cs = calibration_set_for_model(
        fp32, read_metadata(fp32), data, num_images=int(calibration["count"]), seed=int(calibration.get("seed", 0)),
        split=split,
    )  # fmt: skip
    if cs.digest() != calibration["digest"]:
        return (
            None,
            f"--data is not the IR's calibration set (digest {cs.digest()[:12]} vs {calibration['digest'][:12]})",
        )
    return cs, None


def recovered_nncf(
    artifact: Path,
    fp32: Path,
    patterns: Mapping[str, Sequence[str]],
    data: str | Path,
    split: str | None,
    images: int,
    threads: int | None,
) -> tuple[dict[str, float | None], list[str]]:
    """``({block: recovered points}, notes)`` for an NNCF INT8 IR (module docstring); every value None, with a note,
    when the calibration set cannot be rebuilt."""
    from ...backends.openvino.builder import convert_onnx
    from ...backends.openvino.taps import read_ir
    from ...calibration import nncf as nncf_adapter

    cs, why = nncf_calibration_set(artifact, fp32, data, split)
    if cs is None:
        return dict.fromkeys(patterns), [f"mIoU recovered per block not measured: {why}"]
    evaluate = CompiledDropEvaluator(fp32, data, num_images=images, split=split, threads=threads)
    out: dict[str, float | None] = {}
    try:
        first = evaluate(read_ir(artifact)).drop
        with nncf_adapter.nncf_output(show=False):
            for name, block in patterns.items():
                kept = nncf_adapter.quantize_openvino(convert_onnx(fp32), cs, ignored_patterns=block)
                out[name] = round(first - evaluate(kept).drop, 4)
    finally:
        evaluate.close()
    note = (
        f"mIoU recovered measured for {len(out)} blocks ({', '.join(out)}): one NNCF quantization each, with that "
        "block in ignored_scope; the others: not measured"
    )
    return out, [note]
