"""One sweep cell measured: mIoU at the label's resolution, per-class IoU, latency, model size, peak memory.

Accuracy: each validation image is resized (bilinear, as parity resizes for a static artifact) to the cell's size,
run, and its logits are upsampled back to the label's own size (``validate.label_resolution``) and scored against
the ground truth. Latency: ``operations.bench.benchmark`` at the cell's size (the steady-state protocol of
``validate.timing``: warm-up until the timings settle, then timed iterations), compute-only, no peak probe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...artifacts import InputPolicy, read_metadata
from ...backends import open_runner
from ...data.datasets import open_dataset
from ...data.preprocessing import resize_image
from ...errors import DataError
from ...results.sweep import CellLatency, CellMeasurement
from ...validate.label_resolution import confusion_at_label_size
from ...validate.metrics import SegmentationScores

PEAK_MEMORY_NOT_MEASURED = (
    "not measured: on a CPU the process's RSS high-water mark covers every model this process loaded, not this one"
)


def open_cell_runner(artifact: Path, device: str, threads: int | None) -> tuple[Any, InputPolicy, int, list[str]]:
    """An inactive runner for an artifact (its sidecar's input policy) or a checkpoint (PyTorch, its own
    normalisation, logits), the policy that prepares its input, the class count and the class names."""
    if artifact.suffix in (".onnx", ".xml", ".engine", ".plan"):
        meta = read_metadata(artifact)
        runner = open_runner(artifact, device=device, threads=threads, meta=meta)
        names = list(meta.get("class_names") or [])
        return runner, InputPolicy.from_metadata(meta), int(meta["num_classes"]), names
    if threads:
        import torch

        torch.set_num_threads(threads)  # the eval as the benchmark runs it (PyTorch's thread count is global)
    runner = open_runner(artifact, "torch", device=device, threads=threads)
    loaded = runner.loaded
    names = list(loaded.class_names or [])
    return runner, InputPolicy(normalization=loaded.normalization), int(loaded.num_classes), names


def score_runner(
    runner: Any,
    policy: InputPolicy,
    num_classes: int,
    data: Path,
    size: tuple[int, int] | None,
    num_images: int,
) -> tuple[SegmentationScores, int]:
    """Scores of an active runner on the first ``num_images`` labelled images, each resized to ``size`` (None:
    its own size), scored at its label's resolution; and the count of images scored."""
    ds = open_dataset(data)
    if not ds.has_labels:
        raise DataError(f"{data}: the sweep needs labelled images (mIoU against the ground truth)")
    ignore = getattr(ds, "ignore_index", 255)
    name = runner.input_specs[0].name
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    n = min(num_images, len(ds))
    for i in range(n):
        _, image, label = ds[i]
        x = policy.to_input(resize_image(image, size) if size else image, batch=1)
        logits = next(iter(runner.infer({name: x}).values()))
        conf += confusion_at_label_size(logits, label, num_classes, ignore_index=ignore)
    if not conf.any():
        raise DataError(
            f"{data}: the first {n} labelled images have no pixel outside the ignore label {ignore}, "
            "so mIoU is not defined",
            hint="pass --data with label masks that mark some pixels with a class",
        )
    return SegmentationScores.from_confusion(conf), n


def model_bytes(artifact: Path) -> int:
    """The bytes a deployment ships: the file (an OpenVINO IR: its .xml and .bin)."""
    files = [artifact, artifact.with_suffix(".bin")] if artifact.suffix == ".xml" else [artifact]
    return sum(f.stat().st_size for f in files if f.is_file())


def measure_cell(
    artifact: Path,
    *,
    device: str,
    size: tuple[int, int] | None,
    data: Path,
    num_images: int,
    warmup: int,
    max_warmup: int,
    iterations: int,
    threads: int | None = None,
) -> CellMeasurement:
    """The cell's numbers. ``size`` None: each image at its own size (the reference row), timed at
    the first image's size."""
    from ..bench import benchmark

    runner, policy, num_classes, names = open_cell_runner(artifact, device, threads)
    with runner:
        scores, n = score_runner(runner, policy, num_classes, data, size, num_images)
    if size is None:
        _, image, _ = open_dataset(data)[0]
        size = (int(image.shape[0]), int(image.shape[1]))
    result = benchmark(
        artifact,
        device=device,
        input_size=size,
        warmup=warmup,
        max_warmup=max_warmup,
        iterations=iterations,
        threads=threads,
        peak=False,
    )
    compute, memory = result.compute_only, result.device_memory_mib
    return CellMeasurement(
        input_size=list(size),
        num_images=n,
        miou=float(scores.miou),
        pixel_accuracy=float(scores.pixel_accuracy),
        iou=[None if np.isnan(v) else float(v) for v in scores.iou],
        class_names=names or [str(i) for i in range(num_classes)],
        latency=CellLatency(
            p50_ms=compute.p50_ms,
            p99_ms=compute.p99_ms,
            iterations=compute.iterations,
            kind="compute-only (runtime call on a pre-processed input)",
            protocol=(result.protocol or {}).get("timing"),
            stable=(result.timing_stability or {}).get("stable"),
            runtime=result.runtime,
            inference_precision=result.inference_precision,
        ),
        model_bytes=model_bytes(artifact),
        peak_memory_mib=memory,
        peak_memory=f"{memory:.0f} MiB on the device" if memory is not None else PEAK_MEMORY_NOT_MEASURED,
    )


__all__ = ["PEAK_MEMORY_NOT_MEASURED", "measure_cell", "model_bytes", "open_cell_runner", "score_runner"]
