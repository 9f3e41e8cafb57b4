"""The one speed-up rule and the one p50 live with the bench result (``results.bench``: ``speedup_of`` is baseline
p50 / candidate p50 on the compute-only p50, ``p50_ms`` that p50). Re-exported here for the callers that import them
from ``validate`` (the pipeline summary); which baseline qualifies is decided by the caller
(``operations.report.choose_baseline``, the pipeline summary)."""

from __future__ import annotations

from ..results.bench import p50_ms, speedup_of

__all__ = ["p50_ms", "speedup_of"]
