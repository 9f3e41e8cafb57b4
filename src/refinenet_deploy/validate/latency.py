"""Latency statistics as pure functions: per-iteration nanoseconds in, labelled numbers out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per iteration; ``throughput_ips`` counts images (iterations x batch) per second."""

    iterations: int
    batch: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    throughput_ips: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def latency_stats(samples_ns: Sequence[int] | np.ndarray, batch: int = 1) -> LatencyStats:
    """Summary of per-iteration timings (``perf_counter_ns`` differences). Percentiles use linear
    interpolation between order statistics (NumPy's default)."""
    ns = np.asarray(samples_ns, dtype=np.float64)
    if ns.size == 0:
        raise ValueError("no timing samples")
    if batch < 1:
        raise ValueError("batch must be >= 1")
    ms = ns / 1e6
    p = np.percentile(ms, PERCENTILES)
    return LatencyStats(
        iterations=int(ms.size),
        batch=batch,
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        min_ms=float(ms.min()),
        p50_ms=float(p[0]),
        p90_ms=float(p[1]),
        p95_ms=float(p[2]),
        p99_ms=float(p[3]),
        max_ms=float(ms.max()),
        throughput_ips=float(batch * 1000.0 / ms.mean()),
    )


def achieved_gmacs(gmac_per_image: float, stats: LatencyStats) -> float:
    """GMAC/s achieved at the mean latency."""
    return gmac_per_image * stats.batch / (stats.mean_ms / 1000.0)
