"""Which configuration to ship: the Pareto front of (mIoU up, latency down) per device, and the picks within budgets.

Pure functions of the numbers and the stated budgets; no I/O. mIoU is a fraction (0..1) as ``validate.metrics``
returns it; drops are in points (percentage points of mIoU) against the reference row (PyTorch FP32 at full
resolution). The reference row itself is not a candidate: it is what the candidates are measured against.

Ties (``TIE_RULE``): two mIoUs closer than ``MIOU_TIE_PT`` points, or two latencies closer than
``LATENCY_TIE_MS``, are equal. "Best mIoU within the latency budget" then takes the faster (p50), then the
configuration name in alphabetical order; "fastest within the mIoU budget" takes the higher mIoU, then the name.
When no configuration meets a budget, the pick is ``None`` with the reason; there is no default.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIOU_TIE_PT = 0.01  # mIoU points closer than this are a tie
LATENCY_TIE_MS = 0.01  # latencies (p50) closer than this are a tie
TIE_RULE = (
    f"ties (mIoU within {MIOU_TIE_PT:g} pt, p50 within {LATENCY_TIE_MS:g} ms): best mIoU takes the faster, "
    "fastest takes the higher mIoU, then the configuration name in alphabetical order"
)


@dataclass(frozen=True)
class SweepPoint:
    """One measured configuration: ``config`` names it (target and size), ``device`` groups the front."""

    config: str
    device: str
    miou: float  # fraction 0..1, against the ground truth at the label's resolution
    latency_ms: float  # p50, steady state

    def drop_pt(self, reference_miou: float) -> float:
        return (reference_miou - self.miou) * 100.0


@dataclass(frozen=True)
class Pick:
    """A pick under a budget: ``point`` None means no configuration meets it (``reason`` says why)."""

    rule: str
    point: SweepPoint | None
    reason: str


@dataclass(frozen=True)
class Recommendation:
    device: str
    front: tuple[SweepPoint, ...]  # by latency, fastest first
    best_within_latency: Pick | None  # None: no latency budget given
    fastest_within_drop: Pick | None  # None: no mIoU budget given (or no reference mIoU)


def _miou_key(p: SweepPoint) -> int:
    return round(p.miou * 100.0 / MIOU_TIE_PT)


def _latency_key(p: SweepPoint) -> int:
    return round(p.latency_ms / LATENCY_TIE_MS)


def dominates(a: SweepPoint, b: SweepPoint) -> bool:
    """``a`` is at least as accurate and as fast as ``b`` and strictly better in one (at the tie resolution)."""
    better_or_equal = _miou_key(a) >= _miou_key(b) and _latency_key(a) <= _latency_key(b)
    return better_or_equal and (_miou_key(a) > _miou_key(b) or _latency_key(a) < _latency_key(b))


def pareto_front(points: Iterable[SweepPoint]) -> tuple[SweepPoint, ...]:
    """The points no other point dominates, fastest first (equal points are all kept)."""
    pts = list(points)
    front = [p for p in pts if not any(dominates(q, p) for q in pts if q is not p)]
    return tuple(sorted(front, key=lambda p: (_latency_key(p), -_miou_key(p), p.config)))


def best_within_latency(points: Sequence[SweepPoint], max_latency_ms: float) -> Pick:
    rule = f"best mIoU with p50 <= {max_latency_ms:g} ms"
    ok = [p for p in points if p.latency_ms <= max_latency_ms]
    if not ok:
        fastest = min(points, key=lambda p: (p.latency_ms, p.config), default=None)
        why = (
            "no configuration was measured"
            if fastest is None
            else (f"none meets the budget: the fastest, {fastest.config}, takes {fastest.latency_ms:.2f} ms")
        )
        return Pick(rule, None, why)
    best = min(ok, key=lambda p: (-_miou_key(p), _latency_key(p), p.config))
    return Pick(rule, best, f"mIoU {best.miou * 100:.2f} at {best.latency_ms:.2f} ms")


def fastest_within_drop(points: Sequence[SweepPoint], reference_miou: float, max_drop_pt: float) -> Pick:
    rule = f"fastest with an mIoU drop <= {max_drop_pt:g} pt vs the reference"
    ok = [p for p in points if p.drop_pt(reference_miou) <= max_drop_pt + 1e-9]
    if not ok:
        best = max(points, key=lambda p: (p.miou, p.config), default=None)
        why = (
            "no configuration was measured"
            if best is None
            else (
                f"none meets the budget: the most accurate, {best.config}, drops {best.drop_pt(reference_miou):.2f} pt"
            )
        )
        return Pick(rule, None, why)
    fastest = min(ok, key=lambda p: (_latency_key(p), -_miou_key(p), p.config))
    return Pick(rule, fastest, f"{fastest.latency_ms:.2f} ms, mIoU drop {fastest.drop_pt(reference_miou):.2f} pt")


def recommend(
    points: Iterable[SweepPoint],
    *,
    reference_miou: float | None,
    max_latency_ms: float | None,
    max_miou_drop: float | None,
) -> list[Recommendation]:
    """Per device (in name order): its front and the picks for the budgets given (a budget not given: no pick)."""
    by_device: dict[str, list[SweepPoint]] = {}
    for p in points:
        by_device.setdefault(p.device, []).append(p)
    out = []
    for device in sorted(by_device):
        pts = by_device[device]
        latency = None if max_latency_ms is None else best_within_latency(pts, max_latency_ms)
        drop = None
        if max_miou_drop is not None:
            drop = (
                Pick(f"fastest with an mIoU drop <= {max_miou_drop:g} pt", None, "no reference mIoU was measured")
                if reference_miou is None
                else fastest_within_drop(pts, reference_miou, max_miou_drop)
            )
        out.append(Recommendation(device, pareto_front(pts), latency, drop))
    return out


__all__ = [
    "LATENCY_TIE_MS",
    "MIOU_TIE_PT",
    "TIE_RULE",
    "Pick",
    "Recommendation",
    "SweepPoint",
    "best_within_latency",
    "dominates",
    "fastest_within_drop",
    "pareto_front",
    "recommend",
]
