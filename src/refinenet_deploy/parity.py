"""``validate_parity``: a checkpoint and a deployed artifact, one dataset, one report.

Glue between ``models`` (the PyTorch reference), ``runtimes`` (the backend runner, chosen from the file
and its metadata) and ``validate.parity`` (the engine, which sees only runners).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .data.datasets import open_dataset
from .data.preprocessing import Normalization, preprocess
from .environment import package_versions
from .errors import UsageError
from .export.metadata import read_artifact_metadata, utc_now
from .export.onnx import DeployModule
from .models import load_model
from .runtimes import detect_runtime, open_runner
from .runtimes.torch_runner import TorchRunner
from .validate.panels import save_panels
from .validate.parity import DEFAULT_GATES, Gates, InputPolicy, ParityEngine, ParityReport

log = logging.getLogger(__name__)


def _onnx_precision(path: Path) -> str | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    if "QuantizeLinear" in ops or "DequantizeLinear" in ops:
        return "int8"
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        return "fp16"
    return None


def _static_size(spec_shape: tuple[int | None, ...], input_format: str) -> tuple[int, int] | None:
    hw = spec_shape[1:3] if input_format == "nhwc-uint8" else spec_shape[2:4]
    return (int(hw[0]), int(hw[1])) if all(isinstance(d, int) for d in hw) else None


def _samples(data: str | Path, split: str | None, num_images: int | None) -> tuple[Any, Iterator]:
    ds = open_dataset(data, split=split)
    n = len(ds) if num_images is None else min(num_images, len(ds))

    def gen() -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
        for i in range(n):
            sample, image, label = ds[i]
            yield sample.name, image, label

    return ds, gen()


def validate_parity(
    checkpoint: str | Path,
    artifact: str | Path,
    data: str | Path,
    *,
    runtime: str = "auto",
    split: str | None = None,
    num_images: int | None = None,
    max_miou_drop: float | None = None,
    min_agreement: float | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    save_worst: int = 0,
    worst_dir: str | Path | None = None,
    threads: int | None = None,
    inference_precision: str | None = "f32",
    progress: Callable[[int, int], None] | None = None,
) -> ParityReport:
    """Run ``artifact`` and the PyTorch ``checkpoint`` on the same inputs; return the parity report.

    The report's ``passed`` is False when a gate failed; raising is the caller's choice (the CLI exits 3).
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    if min_agreement is not None and min_agreement > 1:
        min_agreement = min_agreement / 100  # accept percent as well as a fraction
    if save_worst and worst_dir is None:
        raise UsageError("--save-worst needs a folder: --save-worst K DIR")
    artifact = Path(artifact)
    if not artifact.exists():
        raise UsageError(f"artifact not found: {artifact}. Check the path")
    runtime = detect_runtime(artifact) if runtime == "auto" else runtime

    loaded = load_model(checkpoint)
    meta = read_artifact_metadata(artifact) if runtime != "torch" else {}
    norm = Normalization.from_dict(meta["normalization"]) if isinstance(meta.get("normalization"), dict) else (
        Normalization.from_name(loaded.normalization))
    head = meta.get("head", "logits")
    input_format = meta.get("input_format", "nchw-float")
    if meta.get("num_classes") not in (None, loaded.num_classes):
        raise UsageError(f"the artifact has {meta['num_classes']} classes, the checkpoint {loaded.num_classes}. "
                         "Compare an artifact with the checkpoint it was exported from")

    reference = TorchRunner(DeployModule(loaded.model, norm, head, input_format, loaded.num_classes),
                            input_dtype=np.uint8 if input_format == "nhwc-uint8" else np.float32)
    if runtime == "torch":
        other = load_model(artifact, arch=loaded.arch)
        backend = TorchRunner(DeployModule(other.model, norm, head, input_format, loaded.num_classes))
        precision = "fp32"
    else:
        backend = open_runner(artifact, runtime, threads=threads, inference_precision=inference_precision)
        precision = meta.get("precision") or (_onnx_precision(artifact) if artifact.suffix == ".onnx" else None)
        precision = precision or "fp32"
        if runtime == "openvino" and precision == "fp32" and inference_precision in ("bf16", "f16"):
            precision = {"bf16": "bf16", "f16": "fp16"}[inference_precision]  # what runs sets the gates
    gates = DEFAULT_GATES.get(precision, DEFAULT_GATES["fp32"])
    gates = Gates(max_miou_drop=gates.max_miou_drop if max_miou_drop is None else max_miou_drop,
                  min_agreement=gates.min_agreement if min_agreement is None else min_agreement)

    ds, samples = _samples(data, split, num_images)
    total = len(ds) if num_images is None else min(num_images, len(ds))
    names = loaded.class_names or meta.get("class_names") or ds.class_names
    if not names or len(names) != loaded.num_classes:
        names = tuple(str(i) for i in range(loaded.num_classes))
    with reference, backend:
        spec = backend.input_specs[0]
        static = _static_size(spec.shape, input_format)
        policy = InputPolicy(input_name=spec.name, input_format=input_format, static_size=static,
                             batch=spec.shape[0] if isinstance(spec.shape[0], int) else 1, head=head)
        engine = ParityEngine(reference, backend, num_classes=loaded.num_classes, class_names=names,
                              preprocess=lambda im: preprocess(im, norm), policy=policy, precision=precision,
                              gates=gates, scales=scales, flip=flip, save_worst=save_worst)
        report = engine.run(samples, progress=(lambda i: progress(i, total)) if progress else None)
        executed = getattr(backend, "executed_precision", None)
    if save_worst:
        paths = save_panels(engine.worst_records(), worst_dir)
        for entry, path in zip(report.worst, paths):
            entry["panel"] = str(path)
    ckpt_sha = loaded.checkpoint.sha256 if loaded.checkpoint else None
    art_sha = (meta.get("checkpoint") or {}).get("sha256")
    report.context = {
        "created": utc_now(), "tool_version": __version__,
        "checkpoint": str(checkpoint), "checkpoint_sha256": ckpt_sha, "arch": loaded.arch,
        "artifact": str(artifact), "runtime": runtime, "runtime_precision": executed,
        "artifact_from_this_checkpoint": None if art_sha is None else art_sha == ckpt_sha,
        "data": str(data), "split": getattr(ds, "split", None),
        "versions": {k: v for k, v in package_versions(("torch", "onnxruntime", "openvino", "tensorrt")).items() if v},
    }
    if art_sha is not None and art_sha != ckpt_sha:
        log.warning("the artifact's metadata names another checkpoint (sha256 %s...), comparing anyway", art_sha[:12])
    return report


def report_markdown(report: dict[str, Any]) -> str:
    """A Markdown rendering of the parity JSON."""
    def pct(v: float | None, digits: int = 2) -> str:
        return "n/a" if v is None else f"{v * 100:.{digits}f}"

    status = "PASSED" if report["passed"] else "FAILED: " + "; ".join(report["failed_gates"])
    lines = [
        f"# Parity: `{Path(report['artifact']).name}` vs PyTorch `{Path(report['checkpoint']).name}`", "",
        f"**{status}** ({report['precision']} gates: |mIoU drop| <= {report['gates']['max_miou_drop']} pt, "
        f"pixel agreement >= {report['gates']['min_agreement'] * 100:.2f} %)", "",
        f"{report['num_images']} images from `{report['data']}`, runtime `{report['runtime']}`"
        + (f" (ran in {report['runtime_precision']})" if report.get("runtime_precision") else "")
        + f", TTA scales {report['tta']['scales']}, flip {report['tta']['flip']}.", "",
        "| metric | value |", "|---|---:|",
        f"| PyTorch mIoU | {pct(report['reference_miou'])} |",
        f"| backend mIoU | {pct(report['backend_miou'])} |",
        f"| mIoU drop (pt) | {_fmt(report['miou_drop_points'], '.3f')} |",
        f"| agreement mIoU (backend vs PyTorch) | {pct(report['agreement_miou'])} |",
        f"| pixel agreement | {pct(report['pixel_agreement'], 3)} |",
        f"| boundary agreement ({report['policy']['boundary_width_px']} px band) | "
        f"{pct(report['boundary_agreement'], 3)} |",
        f"| logit max abs error | {_fmt(report['logit_max_abs_error'])} |",
        f"| logit mean abs error | {_fmt(report['logit_mean_abs_error'])} |", "",
        "| class | PyTorch IoU | backend IoU | drop (pt) | agreement IoU |", "|---|---:|---:|---:|---:|",
    ]
    for c in report["per_class"]:
        drop = "n/a" if c["drop_points"] is None else f"{c['drop_points']:.2f}"
        lines.append(f"| {c['class']} | {pct(c['reference_iou'])} | {pct(c['backend_iou'])} | {drop} | "
                     f"{pct(c['agreement_iou'])} |")
    if report.get("worst"):
        lines += ["", "Lowest agreement: " + ", ".join(f"{w['name']} ({w['pixel_agreement']:.2%})"
                                                        for w in report["worst"])]
    return "\n".join(lines) + "\n"


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "n/a" if v is None else format(v, spec)
