"""``BenchResult``: what ``rfdeploy bench`` measured, as a typed document that writes and reads its own JSON.

Schema ``refinenet-deploy/bench``; version 3 is written, 1 to 3 are read (legacy fields in ``_from_legacy``):

- 1: ``precision`` / ``runtime_precision`` (now ``artifact_precision`` / ``inference_precision``; both are still
  written for older readers), PyTorch settings at the top level or in a ``torch`` block;
- 2: ``artifact_precision`` / ``inference_precision``, ``peak_probe`` object, ``input_size_source``;
- 3: the steady-state protocol (``protocol.warmup``), ``timing_stability``, ``device_state``, PyTorch's
  ``cuda_graph`` / ``cudnn_benchmark`` / ``compile_mode`` in ``runtime_config``, ``fraction_of_peak`` never over 1.

Fields this class does not name are kept in ``extra`` (and written back), so nothing is lost on a round trip."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..enums import PRECISION_SPELLINGS
from ..errors import DataError
from .base import Fields, ResultDocument, bad, check_version, finite_ms, is_int
from .build import PrecisionAudit

BENCH_SCHEMA = "refinenet-deploy/bench"
BENCH_SCHEMA_VERSION = 3
TIMINGS = {"compute_only": "compute-only", "device_only": "device-only", "end_to_end": "end-to-end"}


def normalize_precision(value: Any) -> str | None:
    """``f32``/``float32``/``FP32`` -> ``fp32`` (likewise fp16, bf16, int8); None and "" stay None."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    return PRECISION_SPELLINGS.get(text, text)


@dataclass(frozen=True)
class LatencyStats:
    """One timing of a bench result (compute-only, device-only or end-to-end), in milliseconds."""

    p50_ms: float
    p99_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    throughput_ips: float | None = None
    iterations: int | None = None
    batch: int | None = None
    requests: int | None = None  # asynchronous throughput: requests kept in flight
    mode: str | None = None  # "asynchronous: ..." for OpenVINO's throughput hint
    extra: dict[str, Any] = field(default_factory=dict)  # p90_ms, min_ms, cv, clock, ...

    @property
    def asynchronous(self) -> bool:
        return (self.mode or "").startswith("asynchronous")

    @property
    def complete(self) -> bool:
        """Whether the stability rule can be applied (mean, std, p50 and p99 recorded)."""
        return None not in (self.mean_ms, self.std_ms, self.p99_ms)

    def to_dict(self) -> dict[str, Any]:
        known = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out = {k: v for k, v in known.items() if v is not None}
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any, name: str) -> LatencyStats:
        f = Fields(doc, where, name)
        p50 = f.required("p50_ms", "a number")
        if not finite_ms(p50):
            raise bad(where, f"field '{name}.p50_ms' must be within [1e-06, 1e+09] ms, found {p50!r}")
        known = {x.name for x in fields(cls)} - {"extra"}
        return cls(
            p50_ms=float(p50),
            p99_ms=f.optional("p99_ms", "a number"),
            mean_ms=f.optional("mean_ms", "a number"),
            std_ms=f.optional("std_ms", "a number"),
            throughput_ips=f.optional("throughput_ips", "a number"),
            iterations=f.optional("iterations", "an integer"),
            batch=f.optional("batch", "an integer"),
            requests=f.optional("requests", "an integer"),
            mode=f.optional("mode", "a string"),
            extra={k: v for k, v in doc.items() if k not in known},
        )


# the document's keys in the order the writer puts them; the ones in OMITTED_WHEN_NONE only appear when set
_ORDER = (
    "schema",
    "schema_version",
    "created",
    "tool_version",
    "artifact",
    "artifact_sha256",
    "runtime",
    "device",
    "precision",
    "artifact_precision",
    "inference_precision",
    "runtime_precision",
    "requested_inference_precision",
    "hint",
    "runtime_config",
    "arch",
    "num_classes",
    "input_size",
    "input_size_source",
    "batch",
    "input_format",
    "head",
    "protocol",
    "first_call_ms",
    "compute_only",
    "device_only",
    "device_memory_mib",
    "end_to_end",
    "timing_stability",
    "precision_fallback",
    "device_state",
    "gmac_per_image",
    "achieved_gmacs",
    "achieved_at",
    "peak_gmacs",
    "peak_probe",
    "fraction_of_peak",
    "peak_rss_mib",
    "fingerprint",
    "end_to_end_skipped",
    "precision_audit",
    "artifact_bytes",
    "label",
)
OMITTED_WHEN_NONE = frozenset(
    {"first_call_ms", "device_only", "end_to_end", "precision_fallback", "end_to_end_skipped", "precision_audit"}
    | {"artifact_bytes", "artifact_sha256", "created", "tool_version"}
)
_ALIASES = {"precision": "artifact_precision", "runtime_precision": "inference_precision"}  # schema 1 names
# PyTorch settings: in runtime_config since schema 2; at the top level or in a "torch" block before
_TORCH_SETTINGS = (
    "torch_precision",
    "tf32",
    "allow_tf32",
    "channels_last",
    "cuda_graph",
    "compiled",
    "compile",
    "torch_compile",
    "compile_mode",
)


@dataclass
class BenchResult(ResultDocument):
    """One bench run: what was timed, where, how, and every number, each labelled by its timing kind."""

    SCHEMA = BENCH_SCHEMA
    VERSION = BENCH_SCHEMA_VERSION
    READS = (1, 2, 3)

    artifact: str
    runtime: str
    device: str
    compute_only: LatencyStats
    schema_version: int = BENCH_SCHEMA_VERSION
    created: str | None = None
    tool_version: str | None = None
    artifact_sha256: str | None = None
    artifact_precision: str | None = None  # what the file is
    inference_precision: str | None = None  # what its float parts ran in
    requested_inference_precision: str | None = None
    hint: str | None = None
    runtime_config: dict[str, Any] | None = None
    arch: str | None = None
    num_classes: int | None = None
    input_size: tuple[int, int] | None = None
    input_size_source: str | None = None
    batch: int | None = None
    input_format: str | None = None
    head: str | None = None
    protocol: dict[str, Any] | None = None
    first_call_ms: float | None = None
    device_only: LatencyStats | None = None
    device_memory_mib: float | None = None
    end_to_end: LatencyStats | None = None
    timing_stability: dict[str, Any] | None = None
    precision_fallback: dict[str, Any] | None = None
    device_state: dict[str, Any] | None = None
    gmac_per_image: float | None = None
    achieved_gmacs: float | None = None
    achieved_at: str | None = None
    peak_gmacs: float | None = None
    peak_probe: dict[str, Any] | None = None
    fraction_of_peak: float | None = None
    peak_rss_mib: float | None = None
    fingerprint: dict[str, Any] | None = None
    end_to_end_skipped: list[str] | None = None
    precision_audit: PrecisionAudit | None = None  # the artifact's (its sidecar's): "INT8 convolutions: 78/78"
    artifact_bytes: int | None = None
    label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not name (pipeline: "target")

    # ----------------------------------------------------------------------------------------- derived numbers
    @property
    def p50_ms(self) -> float:
        """The compute-only p50 (the number every runtime measures the same way; checked positive on reading)."""
        return self.compute_only.p50_ms

    def timings(self) -> dict[str, LatencyStats]:
        """The timings it holds, by key (compute_only, device_only, end_to_end), in that order."""
        found = {"compute_only": self.compute_only, "device_only": self.device_only, "end_to_end": self.end_to_end}
        return {k: v for k, v in found.items() if v is not None}

    @property
    def threads(self) -> int | None:
        """``--threads`` as recorded (None: the runtime's default)."""
        value = (self.protocol or {}).get("threads")
        return value if is_int(value) else None

    @property
    def device_flags(self) -> tuple[str, ...]:
        """What the device state read around the run flags (throttling, a Jetson's unlocked clocks)."""
        flags = (self.device_state or {}).get("flags")
        return tuple(f for f in flags if isinstance(f, str)) if isinstance(flags, list) else ()

    @property
    def stable(self) -> bool:
        """False only when the run flagged its own timing unstable."""
        return (self.timing_stability or {}).get("stable") is not False

    @property
    def gpus(self) -> Any:
        return (self.runtime_config or {}).get("gpu")

    def setting(self, *keys: str) -> Any:
        """A runtime setting (PyTorch's precision, TF32, channels-last, compile...): first of ``keys`` that is set."""
        for place in (self.runtime_config or {}, self.extra, self.extra.get("torch") or {}):
            if not isinstance(place, dict):
                continue
            for key in keys:
                if place.get(key) is not None:
                    return place[key]
        return None

    def precision_label(self) -> str:
        """What a result's row says about precision, without contradiction: ``int8 artifact, float parts fp32``,
        ``fp16 artifact, ran fp32``, ``fp16, channels-last, compiled`` (PyTorch), or just ``fp32``."""
        artifact, ran = self.artifact_precision, self.inference_precision
        if self.runtime == "torch":
            names = (("channels_last", "channels-last"), ("cuda_graph", "CUDA graph"), ("compiled", "compiled"))
            extras = [name for key, name in names if self.setting(key)]
            mode = self.setting("compile_mode")
            if mode not in (None, "default"):
                extras.append(str(mode))
            return ", ".join([ran or "fp32", *extras])
        fallback = self.precision_fallback
        note = f" ({fallback['requested']} requested, not available)" if fallback else ""
        if artifact == "int8":
            return "int8 artifact" + (f", float parts {ran}" if ran else "") + note
        if ran and artifact and ran != artifact:
            return f"{artifact} artifact, ran {ran}{note}"
        return str(artifact or ran or "precision not recorded") + note

    # ----------------------------------------------------------------------------------------- JSON
    def __getitem__(self, key: str) -> Any:
        """A field as the JSON has it (``result["compute_only"]["p50_ms"]``): for scripts written against the
        dict ``benchmark`` returned before; a missing field is a KeyError, never a default."""
        return self.to_dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "schema_version")
        }
        values.update(
            schema=self.SCHEMA,
            schema_version=self.schema_version,
            precision=self.artifact_precision,
            runtime_precision=self.inference_precision,
            input_size=list(self.input_size) if self.input_size else None,
        )
        if self.precision_audit is not None:
            values["precision_audit"] = self.precision_audit.to_dict()
        for key in TIMINGS:
            stats = values[key]
            values[key] = stats.to_dict() if stats is not None else None
        out = {k: values[k] for k in _ORDER if not (k in OMITTED_WHEN_NONE and values[k] is None)}
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any = "bench result") -> BenchResult:
        version = check_version(doc, where, BENCH_SCHEMA, cls.READS)
        f = Fields(doc, where)
        for key in ("artifact", "runtime", "device"):
            f.required(key, "a string")
        f.required("compute_only", "an object")
        stats = {k: LatencyStats.from_dict(doc[k], where, k) for k in TIMINGS if f.optional(k, "an object") is not None}
        size = f.optional("input_size", "[height, width]")
        values: dict[str, Any] = {
            "artifact": doc["artifact"],
            "runtime": doc["runtime"],
            "device": doc["device"],
            "schema_version": version,
            "input_size": (int(size[0]), int(size[1])) if size else None,
            "batch": f.optional("batch", "a positive integer"),
            "num_classes": f.optional("num_classes", "an integer"),
            "fingerprint": f.optional("fingerprint", "an object"),
            **stats,
        }
        for key in ("arch", "artifact_precision", "inference_precision", "created"):
            values[key] = f.optional(key, "a string")
        legacy = cls._from_legacy(doc, f, version)
        for key in ("runtime_config", "protocol", "peak_probe", "device_state", "timing_stability"):
            values[key] = None if key in legacy["extra"] else f.optional(key, "an object")
        for key in ("peak_rss_mib", "device_memory_mib", "first_call_ms", "fraction_of_peak"):
            values[key] = f.optional(key, "a number")
        values["artifact_bytes"] = f.optional("artifact_bytes", "a number")
        audit = f.optional("precision_audit", "an object")
        values["precision_audit"] = PrecisionAudit.from_dict(audit, where) if audit is not None else None
        named = {x.name for x in fields(cls)} - {"extra"}
        for key in named - values.keys():
            if key in doc:
                values[key] = doc[key]
        extra = {k: v for k, v in doc.items() if k not in named and k not in _ALIASES and k != "schema"}
        values.update(legacy, extra={**extra, **legacy["extra"]})
        return cls(**values)

    @staticmethod
    def _from_legacy(doc: Mapping[str, Any], f: Fields, version: int) -> dict[str, Any]:
        """Schema 1 names and shapes (and older spellings): the one place they are read. Schema 1 spelled the
        artifact's precision ``precision``, what ran ``runtime_precision``, and described the peak probe in a
        string (kept as written, in ``extra``: no typed probe)."""
        for key in ("precision", "runtime_precision", "executed_precision"):
            f.optional(key, "a string")
        artifact = doc.get("artifact_precision") or doc.get("precision")
        ran = doc.get("inference_precision") or doc.get("runtime_precision") or doc.get("executed_precision")
        probe = doc.get("peak_probe")
        return {
            "artifact_precision": normalize_precision(artifact),
            "inference_precision": normalize_precision(ran),
            "extra": {"peak_probe": probe} if version == 1 and isinstance(probe, str) else {},
        }


def p50_ms(result: BenchResult | Mapping[str, Any] | None) -> float | None:
    """THE p50 of a bench result: compute-only, or None when there is no result or no positive finite p50. A bench
    JSON object (not yet read as a ``BenchResult``) is read as one first."""
    if result is None:
        return None
    if not isinstance(result, BenchResult):
        try:
            result = BenchResult.from_dict(result)
        except DataError:  # not a readable bench result: no p50
            return None
    return result.p50_ms


def speedup_of(baseline_ms: float | None, candidate_ms: float | None) -> float | None:
    """The one speed-up rule: how many times faster the candidate is than the baseline (baseline p50 / candidate
    p50); None when either time is missing or not positive."""
    if not baseline_ms or not candidate_ms or baseline_ms <= 0 or candidate_ms <= 0:
        return None
    return baseline_ms / candidate_ms


__all__ = [
    "BENCH_SCHEMA",
    "BENCH_SCHEMA_VERSION",
    "TIMINGS",
    "BenchResult",
    "LatencyStats",
    "normalize_precision",
    "p50_ms",
    "speedup_of",
]
