"""``validate_parity``: a checkpoint and a deployed artifact, one dataset, one report.

Glue between ``models`` (the PyTorch reference), ``backends`` (the backend runner, chosen from the file
and its metadata) and ``validate.parity_engine`` (the engine, which sees only runners).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..artifacts import InputPolicy, artifact_precision, read_metadata, utc_now
from ..backends import open_runner, resolve_runtime
from ..backends.torch import open_checkpoint
from ..data.datasets import open_dataset
from ..enums import Runtime
from ..environment import package_versions
from ..errors import ParityError, UsageError
from ..models import load_model
from ..models.deploy import checkpoint_normalization
from ..validate.panels import save_panels
from ..validate.parity_engine import ParityEngine, ParityReport
from ..validate.tolerances import Gates, tolerance_for

log = logging.getLogger(__name__)


def parse_scales(text: str | None) -> tuple[float, ...]:
    """``--multi-scale 0.75,1,1.25`` -> (0.75, 1.0, 1.25); ``None`` -> (1.0,)."""
    if not text:
        return (1.0,)
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        raise UsageError(f"--multi-scale expects comma-separated numbers such as 0.75,1,1.25, got {text!r}") from None
    return scales


def _samples(data: str | Path, split: str | None, num_images: int | None) -> tuple[Any, int, Iterator]:
    ds = open_dataset(data, split=split)
    n = len(ds) if num_images is None else min(num_images, len(ds))

    def gen() -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
        for i in range(n):
            sample, image, label = ds[i]
            yield sample.name, image, label

    return ds, n, gen()


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
    kind = resolve_runtime(artifact, runtime)

    meta = read_metadata(artifact) if kind != Runtime.TORCH else {}
    loaded = load_model(checkpoint)
    policy = InputPolicy.from_metadata(meta, default=checkpoint_normalization(loaded))
    if meta.get("num_classes") not in (None, loaded.num_classes):
        raise UsageError(
            f"the artifact has {meta['num_classes']} classes, the checkpoint {loaded.num_classes}. "
            "Compare an artifact with the checkpoint it was exported from"
        )
    reference = open_checkpoint(loaded, policy=policy)
    if kind == Runtime.TORCH:
        backend = open_checkpoint(artifact, policy=policy, arch=loaded.arch)
        precision = "fp32"
    else:
        backend = open_runner(artifact, kind.value, threads=threads, inference_precision=inference_precision, meta=meta)
        precision = artifact_precision(artifact, meta).value
        if kind == Runtime.OPENVINO and precision == "fp32" and inference_precision in ("bf16", "f16"):
            precision = {"bf16": "bf16", "f16": "fp16"}[inference_precision]  # what runs sets the gates
    defaults = tolerance_for(precision).gates
    gates = Gates(
        max_miou_drop=defaults.max_miou_drop if max_miou_drop is None else max_miou_drop,
        min_agreement=defaults.min_agreement if min_agreement is None else min_agreement,
    )

    ds, total, samples = _samples(data, split, num_images)
    names = loaded.class_names or meta.get("class_names") or ds.class_names
    if not names or len(names) != loaded.num_classes:
        names = tuple(str(i) for i in range(loaded.num_classes))
    with reference, backend:
        spec = backend.input_specs[0]
        engine = ParityEngine(
            reference,
            backend,
            num_classes=loaded.num_classes,
            class_names=names,
            policy=policy.for_input(spec.name, spec.shape),
            precision=precision,
            gates=gates,
            scales=scales,
            flip=flip,
            save_worst=save_worst,
        )
        report = engine.run(samples, progress=(lambda i: progress(i, total)) if progress else None)
        executed = getattr(backend, "executed_precision", None)
    if save_worst:
        paths = save_panels(engine.worst_records(), worst_dir)
        for entry, path in zip(report.worst, paths):
            entry["panel"] = str(path)
    ckpt_sha = loaded.checkpoint.sha256 if loaded.checkpoint else None
    art_sha = (meta.get("checkpoint") or {}).get("sha256")
    report.context = {
        "created": utc_now(),
        "tool_version": __version__,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": ckpt_sha,
        "arch": loaded.arch,
        "artifact": str(artifact),
        "runtime": kind.value,
        "device": str(backend.device),
        "runtime_precision": executed,
        "artifact_from_this_checkpoint": None if art_sha is None else art_sha == ckpt_sha,
        "data": str(data),
        "split": getattr(ds, "split", None),
        "versions": {k: v for k, v in package_versions(("torch", "onnxruntime", "openvino", "tensorrt")).items() if v},
    }
    if art_sha is not None and art_sha != ckpt_sha:
        log.warning("the artifact's metadata names another checkpoint (sha256 %s...), comparing anyway", art_sha[:12])
    return report


def raise_for_gates(report: ParityReport) -> None:
    """Exit 3 (``ParityError``) when a gate failed."""
    if not report.passed:
        raise ParityError(
            "parity gate failed: " + "; ".join(report.failed_gates),
            hint="see the report; --save-worst K DIR shows where the backend disagrees",
        )
