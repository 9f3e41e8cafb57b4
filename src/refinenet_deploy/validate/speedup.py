"""The one speed-up rule: baseline p50 / candidate p50, on the compute-only p50 of a bench result (the number every
runtime measures the same way). Pure functions; which baseline qualifies is decided by the caller
(``operations.report.choose_baseline``, the pipeline summary)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def p50_ms(bench: Mapping[str, Any] | None) -> float | None:
    """The compute-only p50 of a bench result, or None when it has none (or it is not a positive finite number)."""
    stats = (bench or {}).get("compute_only")
    value = stats.get("p50_ms") if isinstance(stats, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def speedup_of(baseline_ms: float | None, candidate_ms: float | None) -> float | None:
    """How many times faster the candidate is than the baseline; None when either time is missing."""
    if not baseline_ms or not candidate_ms or baseline_ms <= 0 or candidate_ms <= 0:
        return None
    return baseline_ms / candidate_ms
