"""Comparing a backend's outputs with the PyTorch reference: pure NumPy functions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tolerances import Tolerance


@dataclass(frozen=True)
class OutputDiff:
    """How far ``test`` is from ``ref``; ``max_rel_error`` is relative to the largest |ref| (scale-free)."""

    max_abs_error: float
    mean_abs_error: float
    max_rel_error: float
    argmax_agreement: float  # fraction of positions whose argmax over the class axis agree
    within_tolerance: bool
    elements: int

    def to_dict(self) -> dict[str, float | bool | int]:
        return dict(self.__dict__)


def argmax_agreement(ref: np.ndarray, test: np.ndarray, axis: int = 1) -> float:
    """Agreement of class maps; pass logits (argmax over ``axis``) or class maps of equal shape."""
    if ref.ndim == test.ndim and ref.shape == test.shape and np.issubdtype(ref.dtype, np.integer):
        return float(np.mean(ref == test))
    return float(np.mean(ref.argmax(axis) == test.argmax(axis)))


def compare_class_maps(
    ref_logits: np.ndarray, test_labels: np.ndarray, tol: Tolerance, *, class_axis: int = 1
) -> OutputDiff:
    """A backend's class map against the reference *logits* (N, C, H, W) at the same size.

    With ``tol.atol`` set (FP32), every pixel must agree except numerical ties, where the reference's
    logit for the backend's class is within ``atol`` of its best logit. Otherwise (FP16/INT8) the
    agreement fraction must reach ``tol.min_agreement``. The error fields hold the fraction of
    disagreeing pixels (``max_abs_error``) and of disagreements that are not ties (``max_rel_error``).
    """
    ref_labels = ref_logits.argmax(class_axis)
    if ref_labels.shape != test_labels.shape:
        raise ValueError(f"class map shapes differ: reference {ref_labels.shape}, test {test_labels.shape}")
    differ = ref_labels != test_labels.astype(np.int64)
    agree = 1.0 - float(differ.mean())
    best = np.take_along_axis(ref_logits, np.expand_dims(ref_labels, class_axis), class_axis).squeeze(class_axis)
    chosen = np.take_along_axis(
        ref_logits, np.expand_dims(test_labels.astype(np.int64), class_axis), class_axis
    ).squeeze(class_axis)
    not_tie = differ & (best - chosen > (tol.atol or 0.0))
    frac_not_tie = float(not_tie.mean())
    ok = (not not_tie.any()) if tol.atol is not None else agree >= tol.min_agreement
    return OutputDiff(float(differ.mean()), float(differ.mean()), frac_not_tie, agree, ok, int(differ.size))


def compare_outputs(ref: np.ndarray, test: np.ndarray, tol: Tolerance, *, class_axis: int = 1) -> OutputDiff:
    """Element-wise and argmax comparison of logits (float); for a class-map ``test`` see ``compare_class_maps``.

    ``max_rel_error`` is the largest absolute error divided by the largest |ref| (a scale-free number;
    an element-wise ratio is meaningless for logits near zero).
    """
    if np.issubdtype(test.dtype, np.integer) and ref.ndim == test.ndim + 1:
        return compare_class_maps(ref, test, tol, class_axis=class_axis)
    if ref.shape != test.shape:
        raise ValueError(f"output shapes differ: reference {ref.shape}, test {test.shape}")
    if np.issubdtype(ref.dtype, np.integer):
        agree = float(np.mean(ref == test))
        mism = float(np.mean(ref != test))
        return OutputDiff(mism, mism, mism, agree, agree >= tol.min_agreement, int(ref.size))
    r = ref.astype(np.float64)
    t = test.astype(np.float64)
    diff = np.abs(r - t)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(r).max()) if r.size else 0.0
    agree = argmax_agreement(r, t, class_axis)
    ok = agree >= tol.min_agreement and bool(np.all(np.isfinite(t)))
    if tol.atol is not None:  # scale-aware: float32 reordering errors grow with the activations' magnitude
        ok = ok and max_abs <= tol.atol + tol.rtol * scale
    return OutputDiff(
        max_abs, float(diff.mean()) if diff.size else 0.0, max_abs / scale if scale else max_abs, agree, ok, int(r.size)
    )


def seeded_inputs(spec: object, count: int = 2, seed: int = 0, dynamic_size: int = 64) -> list[np.ndarray]:
    """``count`` reproducible inputs for a runner's input spec (``name``, ``dtype``, ``shape``; dynamic dimensions
    become ``dynamic_size``): uniform bytes for uint8 frames, standard normal values for float tensors."""
    shape = tuple(d if isinstance(d, int) else dynamic_size for d in spec.shape)  # type: ignore[attr-defined]
    dtype = np.dtype(spec.dtype)  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]
    return [rng.standard_normal(shape).astype(dtype) for _ in range(count)]
