"""Scoring a prediction made at a reduced input size against the ground truth at the label's own resolution.

The logits (at any size: the model's 1/4 output of a reduced input) are upsampled back to the label size with the
same bilinear resize parity uses (``parity_engine.upsample_bilinear``: align_corners=False, as training, evaluation
and the export's upsample head), then argmax, then the confusion matrix. Never the label shrunk to the prediction:
a reduced size must pay for the detail it loses. Pure NumPy, no I/O.
"""

from __future__ import annotations

import numpy as np

from .metrics import IGNORE_INDEX, confusion_matrix
from .parity_engine import upsample_bilinear


def labels_at_label_size(logits: np.ndarray, label_size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) or (1, C, h, w) logits -> (H, W) class map at ``label_size``."""
    x = np.asarray(logits, dtype=np.float32)
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected one image's logits, got a batch of {x.shape[0]}")
        x = x[0]
    if x.ndim != 3:
        raise ValueError(f"expected (C, H, W) logits, got shape {x.shape}")
    return upsample_bilinear(x, (int(label_size[0]), int(label_size[1]))).argmax(0)


def confusion_at_label_size(
    logits: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int | None = IGNORE_INDEX
) -> np.ndarray:
    """The confusion matrix (rows ground truth) of ``logits`` upsampled to ``label``'s size and argmaxed."""
    label = np.asarray(label)
    return confusion_matrix(labels_at_label_size(logits, label.shape[:2]), label, num_classes, ignore_index)


__all__ = ["confusion_at_label_size", "labels_at_label_size"]
