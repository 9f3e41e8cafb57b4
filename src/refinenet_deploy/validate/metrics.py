"""Segmentation metrics as pure functions: NumPy in, numbers or frozen dataclasses out, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255


def confusion_matrix(
    pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int | None = IGNORE_INDEX
) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, rows = ground truth, columns = prediction.

    Pixels whose label equals ``ignore_index`` are skipped; so are labels outside ``0..num_classes-1``
    (they cannot be scored). Predictions outside that range raise, since they mean a wrong class count.
    """
    pred = np.asarray(pred)
    label = np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} != label shape {label.shape}")
    lab = label.reshape(-1).astype(np.int64)
    prd = pred.reshape(-1).astype(np.int64)
    keep = (lab >= 0) & (lab < num_classes)
    if ignore_index is not None:
        keep &= lab != ignore_index
    lab, prd = lab[keep], prd[keep]
    if prd.size and (prd.min() < 0 or prd.max() >= num_classes):
        raise ValueError(f"prediction has class ids outside 0..{num_classes - 1}")
    return np.bincount(lab * num_classes + prd, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """IoU per class; NaN for a class that is neither in the ground truth nor predicted."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(confusion: np.ndarray) -> float:
    """Mean IoU over classes that occur (in ground truth or prediction); NaN if none do."""
    ious = iou_per_class(confusion)
    return float(np.nanmean(ious)) if np.any(~np.isnan(ious)) else float("nan")


def pixel_accuracy(confusion: np.ndarray) -> float:
    confusion = np.asarray(confusion)
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


@dataclass(frozen=True)
class SegmentationScores:
    miou: float
    pixel_accuracy: float
    iou: tuple[float, ...]

    @classmethod
    def from_confusion(cls, confusion: np.ndarray) -> SegmentationScores:
        return cls(mean_iou(confusion), pixel_accuracy(confusion), tuple(float(x) for x in iou_per_class(confusion)))


def boundary_mask(labels: np.ndarray, width: int = 3) -> np.ndarray:
    """Pixels within ``width`` px (Chebyshev distance) of a class boundary in a (H, W) label map.

    A pixel is on a boundary when a 4-neighbour has another class; the band is that set dilated by
    ``width - 1`` (a square structuring element). Pure NumPy, no SciPy.
    """
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, dtype=bool)
    diff_v = labels[1:, :] != labels[:-1, :]
    diff_h = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= diff_v
    edge[:-1, :] |= diff_v
    edge[:, 1:] |= diff_h
    edge[:, :-1] |= diff_h
    for _ in range(max(0, width - 1)):
        grown = edge.copy()
        grown[1:, :] |= edge[:-1, :]
        grown[:-1, :] |= edge[1:, :]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        grown[1:, 1:] |= edge[:-1, :-1]
        grown[:-1, :-1] |= edge[1:, 1:]
        grown[1:, :-1] |= edge[:-1, 1:]
        grown[:-1, 1:] |= edge[1:, :-1]
        edge = grown
    return edge


@dataclass(frozen=True)
class AgreementScores:
    """How well a backend's class map agrees with the PyTorch reference's (no ground truth needed)."""

    miou: float  # mean IoU of backend vs reference predictions
    pixel: float  # fraction of pixels with the same class
    boundary: float  # the same, restricted to pixels near a reference class boundary
    iou: tuple[float, ...]
