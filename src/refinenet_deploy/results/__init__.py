"""Typed result documents: each result (bench, parity, an artifact's sidecar, a bundle's manifest, a sweep) is a
dataclass that writes and reads its own JSON (schema name and version; legacy fields read in one place; unknown
versions refused), as Polygraphy's ``RunResults`` does. Commands, the report, the pipeline and the sweep pass these
objects.

| module | document |
|---|---|
| ``base`` | schema/version checks, the bounded read, ``read_document`` (dispatch on ``schema``) |
| ``bench`` | ``BenchResult`` (``LatencyStats``), THE p50, THE speed-up rule |
| ``parity`` | ``ParityResult`` |
| ``build`` | ``BuildResult`` (an artifact's sidecar) and its ``PrecisionAudit`` |
| ``manifest`` | ``BundleManifest`` (a pipeline bundle's manifest.json) |
| ``sweep`` | ``SweepDocument`` (sweep.json) and ``CellMeasurement`` (one cell's numbers) |
| ``device`` | the device identity of a result |

Sits low (beside ``telemetry``): imports only ``errors``, ``enums`` and the standard library."""

from __future__ import annotations

from .base import JsonWriter, ResultDocument, known_schema_versions, parse_document, read_document
from .bench import (
    BENCH_SCHEMA,
    BENCH_SCHEMA_VERSION,
    TIMINGS,
    BenchResult,
    LatencyStats,
    normalize_precision,
    p50_ms,
    speedup_of,
)
from .build import SIDECAR_SCHEMA_VERSION, SIDECAR_SCHEMA_VERSIONS, BuildResult, PrecisionAudit
from .device import device_identity, device_kind, identity_of, same_device
from .manifest import MANIFEST_SCHEMA, MANIFEST_SCHEMA_VERSION, BundleManifest, ManifestArtifact, ManifestTarget
from .parity import PARITY_SCHEMA, PARITY_SCHEMA_VERSION, ParityGates, ParityResult
from .sweep import SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, CellMeasurement, SweepDocument

__all__ = [
    "BENCH_SCHEMA",
    "BENCH_SCHEMA_VERSION",
    "MANIFEST_SCHEMA",
    "MANIFEST_SCHEMA_VERSION",
    "PARITY_SCHEMA",
    "PARITY_SCHEMA_VERSION",
    "SIDECAR_SCHEMA_VERSION",
    "SIDECAR_SCHEMA_VERSIONS",
    "SWEEP_SCHEMA",
    "SWEEP_SCHEMA_VERSION",
    "TIMINGS",
    "BenchResult",
    "BuildResult",
    "BundleManifest",
    "CellMeasurement",
    "JsonWriter",
    "LatencyStats",
    "ManifestArtifact",
    "ManifestTarget",
    "ParityGates",
    "ParityResult",
    "PrecisionAudit",
    "ResultDocument",
    "SweepDocument",
    "device_identity",
    "device_kind",
    "identity_of",
    "known_schema_versions",
    "normalize_precision",
    "p50_ms",
    "parse_document",
    "read_document",
    "same_device",
    "speedup_of",
]
