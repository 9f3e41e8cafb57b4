"""Where a deployed model departs from PyTorch: per-block metrics and the rule that names the block.

Pure functions (NumPy in, numbers out). For each tap (``models.taps``) the reference (PyTorch) and the backend
activations of the same images are accumulated into ``TapStats``; the metrics, over all images:

- cosine similarity of the flattened activations;
- SQNR in dB, ``10 log10(sum ref^2 / sum (test - ref)^2)`` (capped at ``SQNR_CAP_DB``: an exact match);
- max error relative to the block's activation range, ``max |test - ref| / (max ref - min ref)``;
- the error the block adds over its input: the lowest SQNR among the taps it reads minus its own SQNR, in dB,
  both capped at the precision's ceiling (``CEILING_DB``: about what rounding to that precision alone gives,
  6.02 x mantissa bits + 1.76 dB; the network input counts as the ceiling). A faithful block adds about 0 dB; a
  broken one adds many. The cap keeps float rounding noise (110-140 dB in FP32) from reading as "added error".

The verdict: the first block (in execution order) whose SQNR falls below the threshold ("flagged"), and the block
that adds the most error (named when it adds at least ``MIN_ADDED_DB``, 4x the noise power of its input; in a
healthy INT8 model this is its most quantization-sensitive block, which is worth knowing, not a fault).

Default thresholds per precision are in ``DEFAULT_THRESHOLD_DB``: an FP32 graph that computes the
same function sits near 80-140 dB, FP16 near 40-70 dB and INT8 near 15-35 dB, so each default flags what is well
outside its precision's normal range, not its normal noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SQNR_CAP_DB = 140.0
DEFAULT_THRESHOLD_DB = {"fp32": 60.0, "tf32": 30.0, "fp16": 30.0, "bf16": 20.0, "int8": 12.0, "mixed": 12.0}
CEILING_DB = {"fp32": 100.0, "tf32": 64.0, "fp16": 68.0, "bf16": 50.0, "int8": 50.0, "mixed": 50.0}
MIN_ADDED_DB = 6.0
INPUT = "input"


def ceiling_for(precision: str) -> float:
    return CEILING_DB.get(precision, CEILING_DB["int8"])


def threshold_for(precision: str) -> float:
    return DEFAULT_THRESHOLD_DB.get(precision, DEFAULT_THRESHOLD_DB["int8"])


@dataclass
class TapStats:
    """Running sums for one tap over images."""

    ref_sq: float = 0.0
    err_sq: float = 0.0
    dot: float = 0.0
    test_sq: float = 0.0
    max_abs_err: float = 0.0
    ref_min: float = math.inf
    ref_max: float = -math.inf
    elements: int = 0
    shape_mismatch: str | None = None

    def add(self, ref: np.ndarray, test: np.ndarray) -> None:
        if ref.shape != test.shape:
            if ref.size == test.size:  # e.g. a runtime that dropped a unit dimension
                test = test.reshape(ref.shape)
            else:
                self.shape_mismatch = f"{tuple(ref.shape)} vs {tuple(test.shape)}"
                return
        r = ref.astype(np.float64, copy=False).ravel()
        t = test.astype(np.float64, copy=False).ravel()
        e = t - r
        self.ref_sq += float(r @ r)
        self.err_sq += float(e @ e)
        self.dot += float(r @ t)
        self.test_sq += float(t @ t)
        if e.size:
            self.max_abs_err = max(self.max_abs_err, float(np.max(np.abs(e))))
            self.ref_min = min(self.ref_min, float(r.min()))
            self.ref_max = max(self.ref_max, float(r.max()))
        self.elements += r.size

    @property
    def cosine(self) -> float | None:
        if self.elements == 0 or self.shape_mismatch:
            return None
        if self.ref_sq == 0.0 or self.test_sq == 0.0:
            return 1.0 if self.ref_sq == self.test_sq else 0.0
        return max(-1.0, min(1.0, self.dot / math.sqrt(self.ref_sq * self.test_sq)))

    @property
    def sqnr_db(self) -> float | None:
        if self.elements == 0 or self.shape_mismatch:
            return None
        if self.err_sq == 0.0:
            return SQNR_CAP_DB
        if self.ref_sq == 0.0:
            return -SQNR_CAP_DB
        return max(-SQNR_CAP_DB, min(SQNR_CAP_DB, 10.0 * math.log10(self.ref_sq / self.err_sq)))

    @property
    def max_rel_err(self) -> float | None:
        if self.elements == 0 or self.shape_mismatch:
            return None
        span = self.ref_max - self.ref_min
        return self.max_abs_err / span if span > 0 else (0.0 if self.max_abs_err == 0 else math.inf)


@dataclass(frozen=True)
class BlockRow:
    name: str
    sqnr_db: float | None
    cosine: float | None
    max_rel_err: float | None
    added_db: float | None
    below: bool
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None, d: int) -> float | None:
            return None if v is None or not math.isfinite(v) else round(v, d)

        return {
            "block": self.name,
            "sqnr_db": r(self.sqnr_db, 2),
            "cosine": r(self.cosine, 6),
            "max_rel_err": r(self.max_rel_err, 6),
            "added_db": r(self.added_db, 2),
            "below_threshold": self.below,
            **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True)
class Localization:
    rows: tuple[BlockRow, ...]
    threshold_db: float
    first_below: str | None
    adds_most: str | None
    images: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold_sqnr_db": self.threshold_db,
            "images": self.images,
            "first_below_threshold": self.first_below,
            "adds_most_error": self.adds_most,
            "blocks": [r.to_dict() for r in self.rows],
            **self.extra,
        }


def localize(
    order: Sequence[str],
    inputs: Mapping[str, Sequence[str]],
    stats: Mapping[str, TapStats],
    threshold_db: float,
    images: int,
    *,
    ceiling_db: float = SQNR_CAP_DB,
    min_added_db: float = MIN_ADDED_DB,
) -> Localization:
    """Per-block rows in ``order`` and the verdict. ``adds_most`` is the block adding the most dB (None when none
    adds ``min_added_db`` or more: nothing stands out)."""
    sqnr: dict[str, float] = {INPUT: ceiling_db}
    rows = []
    for name in order:
        s = stats[name]
        q = s.sqnr_db
        reads = [sqnr[i] for i in inputs.get(name, ()) if i in sqnr]
        added = None if q is None or not reads else max(0.0, min(reads) - min(q, ceiling_db))
        if q is not None:
            sqnr[name] = min(q, ceiling_db)
        rows.append(
            BlockRow(
                name,
                q,
                s.cosine,
                s.max_rel_err,
                added,
                q is not None and q < threshold_db,
                note=f"shape {s.shape_mismatch}" if s.shape_mismatch else None,
            )
        )
    first = next((r.name for r in rows if r.below), None)
    ranked = [r for r in rows if r.added_db is not None and r.added_db >= min_added_db]
    most = max(ranked, key=lambda r: r.added_db).name if ranked else None  # type: ignore[arg-type,return-value]
    return Localization(
        tuple(rows), threshold_db, first, most, images, {"ceiling_db": ceiling_db, "min_added_db": min_added_db}
    )
