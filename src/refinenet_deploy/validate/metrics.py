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


def out_of_range_labels(label: np.ndarray, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """The class ids in ``label`` that cannot be scored: outside ``0..num_classes-1`` and not ``ignore_index``
    (``confusion_matrix`` skips their pixels). Returns ``(ids, pixel_counts)`` stacked as a (2, K) int64 array."""
    lab = np.asarray(label).reshape(-1).astype(np.int64)
    bad = (lab < 0) | (lab >= num_classes)
    if ignore_index is not None:
        bad &= lab != ignore_index
    ids, counts = np.unique(lab[bad], return_counts=True)
    return np.stack([ids, counts]).astype(np.int64)


class LabelRangeCounter:
    """Counts labelled pixels outside the model's classes (say class 200 in a 6-class set) per file, so that a run
    can say so instead of silently not scoring them. The ignore index (VOC's 255) stays ignored."""

    def __init__(self, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.pixels = 0
        self.images = 0
        self.files: list[str] = []
        self.ids: dict[int, int] = {}

    def add(self, name: str, label: np.ndarray) -> int:
        """Count one label map; returns its out-of-range pixel count."""
        ids, counts = out_of_range_labels(label, self.num_classes, self.ignore_index)
        n = int(counts.sum())
        if n:
            self.pixels += n
            self.images += 1
            self.files.append(name)
            for i, c in zip(ids.tolist(), counts.tolist()):
                self.ids[i] = self.ids.get(i, 0) + c
        return n

    def summary(self, max_files: int = 20) -> dict[str, object]:
        """JSON-ready counts (the first ``max_files`` file names)."""
        return {
            "pixels": self.pixels,
            "images": self.images,
            "class_ids": {str(k): v for k, v in sorted(self.ids.items())},
            "ignore_index": self.ignore_index,
            "num_classes": self.num_classes,
            "files": self.files[:max_files],
        }

    def message(self, first: int = 5) -> str | None:
        """One line naming the first few files and the count, or None when every label is in range."""
        if not self.pixels:
            return None
        names = ", ".join(self.files[:first]) + (f" and {self.images - first} more" if self.images > first else "")
        ids = ", ".join(str(k) for k in sorted(self.ids))
        return (
            f"{self.pixels} labelled pixels in {self.images} image(s) have class ids outside 0..{self.num_classes - 1} "
            f"(ids {ids}; ignore index {self.ignore_index}) and were not scored: {names}"
        )
