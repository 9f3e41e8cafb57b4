"""Latency statistics as pure functions: per-iteration nanoseconds in, labelled numbers out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = (50, 90, 95, 99)
# A timing is flagged unstable (a machine under load, clocks moving) when its coefficient of variation (std/mean)
# is over MAX_CV or its p99 is more than MAX_TAIL_RATIO times its p50. Measured for scale: an idle 2-core CPU gives a
# CV of 0.02-0.10 on the demo model, a CUDA-graph replay on an H200 under 0.02; the loaded machine of issue 19 gave
# CV 0.82 and p99/p50 2.5.
MAX_CV = 0.25
MAX_TAIL_RATIO = 2.0


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
        return {**asdict(self), "cv": coefficient_of_variation(self)}


def coefficient_of_variation(stats: LatencyStats | ThroughputStats) -> float:
    """std/mean of the timed samples (0 for a single sample)."""
    return stats.std_ms / stats.mean_ms if stats.mean_ms > 0 else 0.0


@dataclass(frozen=True)
class Stability:
    """Whether a timing is steady enough to quote: CV and tail ratio against the stated limits."""

    stable: bool
    cv: float
    p99_over_p50: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "stable": self.stable,
            "cv": self.cv,
            "p99_over_p50": self.p99_over_p50,
            "reasons": list(self.reasons),
            "rule": f"unstable when CV > {MAX_CV:g} or p99/p50 > {MAX_TAIL_RATIO:g}",
        }


def timing_stability(stats: LatencyStats | ThroughputStats | Mapping[str, float]) -> Stability:
    """Pure rule: unstable when CV (std/mean) > ``MAX_CV`` or p99/p50 > ``MAX_TAIL_RATIO``. ``stats`` is a
    statistics object or its dict (``mean_ms``, ``std_ms``, ``p50_ms``, ``p99_ms``)."""
    get = stats.get if isinstance(stats, Mapping) else lambda key: getattr(stats, key)
    mean, std, p50, p99 = (float(get(k)) for k in ("mean_ms", "std_ms", "p50_ms", "p99_ms"))
    cv = std / mean if mean > 0 else 0.0
    tail = p99 / p50 if p50 > 0 else 1.0
    reasons = []
    if cv > MAX_CV:
        reasons.append(f"CV {cv:.2f} > {MAX_CV:g}")
    if tail > MAX_TAIL_RATIO:
        reasons.append(f"p99/p50 {tail:.2f} > {MAX_TAIL_RATIO:g}")
    return Stability(not reasons, cv, tail, tuple(reasons))


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


def achieved_gmacs(gmac_per_image: float, stats: LatencyStats | ThroughputStats, at: str = "mean") -> float:
    """GMAC/s achieved: at the ``mean`` or ``p50`` latency of one request; for ``ThroughputStats``, at the
    measured throughput (images per second of wall time), whatever ``at`` says."""
    if isinstance(stats, ThroughputStats):
        return gmac_per_image * stats.throughput_ips
    if at not in ("mean", "p50"):
        raise ValueError("at must be 'mean' or 'p50'")
    ms = stats.mean_ms if at == "mean" else stats.p50_ms
    return gmac_per_image * stats.batch / (ms / 1000.0)


@dataclass(frozen=True)
class ThroughputStats:
    """Asynchronous requests in flight: ``throughput_ips`` is images (completed requests x batch) per second of
    wall time; the ``*_ms`` fields are percentiles of each request's own latency (longer than one request alone:
    the requests share the device)."""

    iterations: int  # completed requests
    batch: int
    requests: int  # kept in flight
    wall_s: float
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
        return {**asdict(self), "cv": coefficient_of_variation(self)}


def throughput_stats(
    latencies_ns: Sequence[int] | np.ndarray, wall_ns: int, requests: int, batch: int = 1
) -> ThroughputStats:
    """Per-request latency percentiles plus images per second over ``wall_ns`` (pure function)."""
    if wall_ns <= 0:
        raise ValueError("wall time must be positive")
    if requests < 1:
        raise ValueError("requests must be >= 1")
    lat = latency_stats(latencies_ns, batch=batch)
    return ThroughputStats(
        iterations=lat.iterations,
        batch=batch,
        requests=requests,
        wall_s=wall_ns / 1e9,
        mean_ms=lat.mean_ms,
        std_ms=lat.std_ms,
        min_ms=lat.min_ms,
        p50_ms=lat.p50_ms,
        p90_ms=lat.p90_ms,
        p95_ms=lat.p95_ms,
        p99_ms=lat.p99_ms,
        max_ms=lat.max_ms,
        throughput_ips=lat.iterations * batch / (wall_ns / 1e9),
    )
