"""``rfdeploy bench``: latency of one artifact on this machine (``run.benchmark``), one job per module:

| module | job |
|---|---|
| ``options`` | ``BenchOptions``, the bounds of every option, checked once |
| ``run`` | ``benchmark``: the runner, the input size, the steady-state timing, the document |
| ``peak`` | the dense-convolution peak probe and the fraction-of-peak rule |
| ``frames`` | the encoded frames ``--end-to-end`` decodes |
| ``result`` | the document's schema, its precision label, device-side statistics |
"""

from __future__ import annotations

from .frames import E2E_IMAGES, E2E_SCAN, readable_frames
from .options import (
    DEFAULT_ITERATIONS,
    DEFAULT_MAX_WARMUP,
    DEFAULT_WARMUP,
    INFERENCE_PRECISIONS,
    MAX_BATCH,
    MAX_BATCH_PIXELS,
    MAX_DURATION_S,
    MAX_ITERATIONS,
    MAX_THREADS,
    MAX_WARMUP,
    MIN_DURATION_S,
    BenchOptions,
    check_bench_options,
    normalize_inference_precision,
)
from .peak import PROBE_SHAPES, fraction_of_peak, no_peak, peak_probe
from .result import BENCH_SCHEMA, BENCH_SCHEMA_VERSION, device_stats, precision_label
from .run import benchmark

__all__ = [
    "BENCH_SCHEMA",
    "BENCH_SCHEMA_VERSION",
    "DEFAULT_ITERATIONS",
    "DEFAULT_MAX_WARMUP",
    "DEFAULT_WARMUP",
    "E2E_IMAGES",
    "E2E_SCAN",
    "INFERENCE_PRECISIONS",
    "MAX_BATCH",
    "MAX_BATCH_PIXELS",
    "MAX_DURATION_S",
    "MAX_ITERATIONS",
    "MAX_THREADS",
    "MAX_WARMUP",
    "MIN_DURATION_S",
    "PROBE_SHAPES",
    "BenchOptions",
    "benchmark",
    "check_bench_options",
    "device_stats",
    "fraction_of_peak",
    "no_peak",
    "normalize_inference_precision",
    "peak_probe",
    "precision_label",
    "readable_frames",
]
