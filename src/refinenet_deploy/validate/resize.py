"""Resizing model outputs to the label size in NumPy, as PyTorch does: bilinear for logits (``upsample_bilinear``,
align_corners=False), nearest neighbour for class maps (``nearest``). Parity uses them on both sides, so parity
from a saved reference runs where PyTorch is not installed."""

from __future__ import annotations

import numpy as np


def nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer map (half-pixel centres, like PIL/OpenCV NEAREST)."""
    h, w = labels.shape[-2:]
    if (h, w) == tuple(size):
        return labels
    ys = np.minimum((np.arange(size[0]) + 0.5) * h / size[0], h - 1).astype(np.intp)
    xs = np.minimum((np.arange(size[1]) + 0.5) * w / size[1], w - 1).astype(np.intp)
    return labels[..., ys[:, None], xs[None, :]]


def _bilinear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a 1-D bilinear resize with half-pixel centres (align_corners=False):
    ``src = (i + 0.5) * n_in / n_out - 0.5`` clamped at 0, as ``torch.nn.functional.interpolate`` computes them."""
    scale = np.float32(n_in / n_out)
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    i0 = np.minimum(src.astype(np.intp), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def upsample_bilinear(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (align_corners=False) of the last two axes to ``size``, in float32: the same resize as
    training, evaluation and the export's upsample head (``models.layers.upsample_logits``), in NumPy, so that
    parity from a saved reference runs where PyTorch is not installed. Agrees with ``torch.nn.functional.
    interpolate`` within float32 rounding, up- and down-scaling (no antialiasing, like torch's default)."""
    x = np.asarray(logits, dtype=np.float32)
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    y0, y1, wy = _bilinear_axis(h, int(size[0]))
    x0, x1, wx = _bilinear_axis(w, int(size[1]))
    cols = x[..., x0] * (np.float32(1) - wx) + x[..., x1] * wx  # along W, then H: torch's order of operations
    wy = wy[:, None]
    return cols[..., y0, :] * (np.float32(1) - wy) + cols[..., y1, :] * wy
