"""Accuracy of a PyTorch checkpoint on a labelled dataset (the training-side check; parity lives in validate/)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.datasets import SegmentationDataset, open_dataset
from ..data.preprocessing import Normalization, preprocess
from ..errors import DataError
from ..models import load_model
from ..models.layers import upsample_logits
from ..validate.metrics import LabelRangeCounter, SegmentationScores, confusion_matrix

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    ds: SegmentationDataset,
    num_classes: int,
    norm: Normalization,
    progress: Callable[[int, int], None] | None = None,
    labels: LabelRangeCounter | None = None,
) -> SegmentationScores:
    """mIoU of a PyTorch model: logits upsampled to the label size (``upsample_logits``), then argmax. Label ids
    outside the classes (other than the dataset's ignore index) are not scored; ``labels`` counts them."""
    model.eval()
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    ignore = getattr(ds, "ignore_index", 255)
    for i, (sample, image, label) in enumerate(ds):
        if label is None:
            raise DataError(f"evaluation needs labels, none for {sample.name}. Use a labelled split")
        if labels is not None:
            labels.add(sample.name, label)
        x = torch.from_numpy(preprocess(image, norm))[None].contiguous(memory_format=torch.channels_last)
        pred = upsample_logits(model(x), label.shape).argmax(1)[0].numpy()
        conf += confusion_matrix(pred, label, num_classes, ignore_index=ignore)
        if progress:
            progress(i + 1, len(ds))
    return SegmentationScores.from_confusion(conf)


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    *,
    split: str | None = None,
    arch: str = "auto",
    num_classes: int | None = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    strict_labels: bool = False,
) -> dict[str, Any]:
    """Load ``checkpoint`` strictly, run it over ``data`` and return mIoU and per-class IoU (JSON-ready).

    Labels with class ids outside the model's classes (other than the ignore index, VOC's 255) are counted in
    ``labels_out_of_range`` with one warning; ``strict_labels`` makes them a ``DataError`` (exit 5)."""
    if threads:
        torch.set_num_threads(threads)
    loaded = load_model(checkpoint, arch=arch, num_classes=num_classes)
    ds = open_dataset(data, split=split)
    if not ds.has_labels:
        raise DataError(f"dataset has no labels: {data}. Evaluation needs a VOC or Cityscapes layout with labels")
    norm = loaded.normalization
    model = loaded.model.to(memory_format=torch.channels_last)
    labels = LabelRangeCounter(loaded.num_classes, getattr(ds, "ignore_index", 255))
    scores = evaluate_model(model, ds, loaded.num_classes, norm, progress, labels=labels)
    message = labels.message()
    if message and strict_labels:
        raise DataError(message, hint="fix the labels or the class count; without --strict-labels they are counted")
    if message:
        log.warning("%s. Check the dataset's class count, or pass --strict-labels to fail", message)
    names = loaded.class_names or ds.class_names or tuple(str(i) for i in range(loaded.num_classes))
    return {
        "checkpoint": str(checkpoint),
        "arch": loaded.arch,
        "data": str(data),
        "num_images": len(ds),
        "miou": scores.miou,
        "pixel_accuracy": scores.pixel_accuracy,
        "class_names": list(names),
        "iou": [None if np.isnan(v) else v for v in scores.iou],
        "labels_out_of_range": labels.summary(),
    }
