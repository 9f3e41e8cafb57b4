"""Latency statistics on hand-made samples (structure and arithmetic; no wall-clock assertions)."""

from __future__ import annotations

import pytest

from refinenet_deploy.validate.latency import achieved_gmacs, latency_stats


def test_stats_by_hand() -> None:
    s = latency_stats([1_000_000, 2_000_000, 3_000_000, 4_000_000, 10_000_000], batch=2)
    assert s.iterations == 5 and s.batch == 2
    assert s.mean_ms == pytest.approx(4.0) and s.min_ms == 1.0 and s.max_ms == 10.0
    assert s.p50_ms == pytest.approx(3.0)
    assert s.p90_ms == pytest.approx(4 + 0.6 * 6)  # linear interpolation between 4 and 10
    assert s.std_ms == pytest.approx(3.5355, abs=1e-4)
    assert s.throughput_ips == pytest.approx(2 * 1000 / 4.0)
    assert achieved_gmacs(8.58, s) == pytest.approx(8.58 * 2 / 0.004)
    assert set(s.to_dict()) >= {"p95_ms", "p99_ms", "throughput_ips"}


def test_single_sample_and_errors() -> None:
    assert latency_stats([5_000_000]).std_ms == 0.0
    with pytest.raises(ValueError):
        latency_stats([])
    with pytest.raises(ValueError):
        latency_stats([1], batch=0)
