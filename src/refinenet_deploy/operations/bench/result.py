"""The bench result: its schema and class (defined in ``results.bench``), its precision label, the device-side
statistics."""

from __future__ import annotations

from typing import Any

from ...results.bench import BENCH_SCHEMA, BENCH_SCHEMA_VERSION, BenchResult
from ...validate.latency import latency_stats


def precision_label(result: BenchResult | dict[str, Any]) -> str:
    """What a result's row says about precision (``BenchResult.precision_label``), of a result or its JSON."""
    return (result if isinstance(result, BenchResult) else BenchResult.from_dict(result)).precision_label()


def device_stats(device_times_ms: list[float] | None, timed: int, batch: int) -> dict[str, Any] | None:
    """Latency statistics of the GPU-side times (CUDA events) of the last ``timed`` inferences.

    GPU runners record one time per ``infer``; the first ones belong to the warm-up and are dropped, so
    these are the same iterations as the host-side compute-only numbers."""
    if not device_times_ms or len(device_times_ms) < timed:
        return None
    ns = [int(t * 1e6) for t in device_times_ms[-timed:]]
    return {
        **latency_stats(ns, batch=batch).to_dict(),
        "clock": "CUDA events around the model/engine on its stream (excludes host copies)",
    }


__all__ = ["BENCH_SCHEMA", "BENCH_SCHEMA_VERSION", "BenchResult", "device_stats", "precision_label"]
