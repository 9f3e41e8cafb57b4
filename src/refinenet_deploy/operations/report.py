"""Reporting, in one place: bench and parity JSON from any number of devices -> one table with charts
(Markdown, or self-contained HTML), and the Markdown rendering of one parity result.

Like is compared with like. A row is one timing (compute-only, device-only or end-to-end) of one bench file.
Rows are grouped by model (architecture and classes), input size and batch; inside a group, the speed-up of a
row is against that group's PyTorch row **on the same device** (host/GPU fingerprint + device kind) and the
same timing kind. The baseline is the strict PyTorch fp32 row (TF32 off) when there is one; otherwise the
row used is named in a footnote, and a row with no PyTorch row beside it says so instead of borrowing one.

Parity results join on the artifact (same path, else the same file name when that is unambiguous), the
runtime and the device kind, and only when the model and the precision that ran agree. Inputs are checked
before any work: every known non-result rfdeploy file (sidecars ``*.meta.json``, calibration manifests, a
bundle's ``manifest.json``/``pipeline.json``, models, references, reports) is skipped with a note, anything
else that is not a bench or parity JSON this version reads is refused (exit 5) naming the file and the field.
The HTML is self-contained (charts embedded as base64 PNG), so it opens offline; the Markdown links PNGs
written beside it. Charts need matplotlib (the ``report`` extra); without it the report says they were skipped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import check_output_path, ensure_parent, probe_output, remove_created, write_atomic
from ..enums import PRECISION_SPELLINGS
from ..errors import (
    DataError,
    InputReadError,
    JSONLimitError,
    MissingDependencyError,
    UsageError,
    nonfinite_field,
    read_json,
)
from ..validate.speedup import speedup_of

BENCH_SCHEMA = "refinenet-deploy/bench"
PARITY_SCHEMA = "refinenet-deploy/parity"
TIMINGS = {"compute_only": "compute-only", "device_only": "device-only", "end_to_end": "end-to-end"}
# requests kept in flight (OpenVINO throughput hint): p50 is one request's latency under load, not comparable
# with a synchronous call, so it is a timing kind of its own
ASYNC_TIMING = "async throughput"
REPORT_SUFFIXES = (".md", ".html")
MIN_MS, MAX_MS = 1e-6, 1e9  # a p50 outside is not a timing (and would break ratios and chart scales)
CHART_NAMES = ("latency", "accuracy_vs_latency")
CHART_CAPTIONS = {
    "latency": "p50 latency per model, input size and batch, on a log scale (every bar readable next to PyTorch's); "
    "the label after each bar is its speed-up against PyTorch on the same device. Colour: runtime.",
    "accuracy_vs_latency": "mIoU drop against PyTorch versus p50 latency; each point is numbered, the key beside "
    "the chart names it. Colour: runtime; marker: model.",
}

# every spelling met in bench/parity JSON (old and new, OpenVINO's element types) -> the one we print: enums'
PRECISION_ALIASES = PRECISION_SPELLINGS


def known_schema_versions() -> dict[str, tuple[int, ...]]:
    """The bench and parity JSON versions this rfdeploy reads: 1 up to the version its own writers produce."""
    from ..validate.parity_engine import PARITY_SCHEMA_VERSION
    from . import bench

    bench_version = int(getattr(bench, "BENCH_SCHEMA_VERSION", 1))
    return {
        BENCH_SCHEMA: tuple(range(1, bench_version + 1)),
        PARITY_SCHEMA: tuple(range(1, int(PARITY_SCHEMA_VERSION) + 1)),
    }


def normalize_precision(value: Any) -> str | None:
    """``f32``/``float32``/``FP32`` -> ``fp32`` (likewise fp16, bf16, int8); None stays None."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    return PRECISION_ALIASES.get(text, text)


# --------------------------------------------------------------------------------------------- reading inputs
@dataclass(frozen=True)
class Document:
    """One bench or parity result read from ``path``."""

    path: Path
    kind: str  # "bench" | "parity"
    data: dict[str, Any]


def _is_sidecar(path: Path, doc: Any) -> bool:
    if path.name.endswith(".meta.json"):
        return True
    if not isinstance(doc, dict):
        return False
    fmt = doc.get("format")
    if isinstance(fmt, str) and fmt.startswith("refinenet-deploy/"):
        return True
    return "schema_version" in doc and isinstance(doc.get("artifact"), dict) and "schema" not in doc


# files rfdeploy writes that are not results (what a ``report out/*`` glob also picks up), known by suffix
NON_RESULT_SUFFIXES = {
    ".onnx": "an ONNX model",
    ".xml": "an OpenVINO IR",
    ".bin": "OpenVINO IR weights",
    ".engine": "a TensorRT engine",
    ".npz": "a saved PyTorch reference",
    ".png": "an image (chart or panel)",
    ".md": "a Markdown report",
    ".html": "an HTML report",
    ".safetensors": "a checkpoint",
    ".cache": "a TensorRT calibration cache",
}


def non_result_kind(path: Path, doc: Any = None) -> str | None:
    """What a known non-result rfdeploy file is (a sidecar, a calibration manifest, a bundle's manifest, ...), or
    None. ``doc``: its parsed JSON, when it is JSON."""
    if path.suffix.lower() in NON_RESULT_SUFFIXES:
        return NON_RESULT_SUFFIXES[path.suffix.lower()]
    if _is_sidecar(path, doc):
        return "an artifact sidecar (.meta.json)"
    if not isinstance(doc, dict):
        return None
    if path.name.endswith(".calibration.json") or {"files", "resize_policy", "sampling"} <= doc.keys():
        return "a calibration set manifest (.calibration.json, written by calibrate)"
    if doc.get("schema") == "refinenet-deploy/bundle-manifest":
        return "a pipeline bundle's manifest.json"
    if {"targets", "calib_images", "input_size"} <= doc.keys() and "schema" not in doc:
        return "a pipeline bundle's settings (pipeline.json)"
    if {"schema_version", "steps"} == set(doc.keys()):
        return "a pipeline bundle's step state (.pipeline/state.json)"
    if {"pid", "host", "started"} == set(doc.keys()):
        return "a pipeline bundle's lock"
    if doc.get("generator") == "refinenet_deploy.synth":
        return "a synthetic dataset's description (dataset.json)"
    if "cache_key" in doc and "calibration cache" in str(doc.get("format")):
        return "a TensorRT calibration cache key"
    return None


def _bad(path: Path, what: str) -> DataError:
    return DataError(f"{path}: {what}", hint="pass the files written by 'rfdeploy bench --json' or 'parity --json'")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _require(path: Path, doc: Mapping[str, Any], key: str, kind: str, where: str = "") -> Any:
    """``doc[key]``, or DataError naming the file and the field when it is missing or of the wrong kind."""
    name = f"{where}.{key}" if where else key
    if doc.get(key) is None:
        raise _bad(path, f"missing required field '{name}'")
    value = doc[key]
    checks = {
        "a number": _number,
        "a string": lambda v: isinstance(v, str),
        "an object": lambda v: isinstance(v, dict),
        "true or false": lambda v: isinstance(v, bool),
    }
    if not checks[kind](value):
        raise _bad(path, f"field '{name}' must be {kind}, found {json.dumps(value)[:60]}")
    return value


def _optional(path: Path, doc: Mapping[str, Any], key: str, check: Any, expected: str, where: str = "") -> None:
    value = doc.get(key)
    if value is not None and not check(value):
        name = f"{where}.{key}" if where else key
        raise _bad(path, f"field '{name}' must be {expected}, found {json.dumps(value)[:60]}")


def _validate_bench(path: Path, doc: dict[str, Any]) -> None:
    for key in ("artifact", "runtime", "device"):
        _require(path, doc, key, "a string")
    _require(path, doc, "compute_only", "an object")
    for section in TIMINGS:
        stats = doc.get(section)
        if stats is None:
            continue
        if not isinstance(stats, dict):
            raise _bad(path, f"field '{section}' must be an object, found {json.dumps(stats)[:60]}")
        p50 = _require(path, stats, "p50_ms", "a number", section)
        if not math.isfinite(p50) or not MIN_MS <= p50 <= MAX_MS:
            raise _bad(path, f"field '{section}.p50_ms' must be within [{MIN_MS:g}, {MAX_MS:g}] ms, found {p50!r}")
        for key in ("p99_ms", "throughput_ips"):
            _optional(path, stats, key, _number, "a number", section)
    _optional(
        path,
        doc,
        "input_size",
        lambda v: isinstance(v, list) and len(v) == 2 and all(isinstance(d, int) and d > 0 for d in v),
        "[height, width]",
    )
    _optional(path, doc, "batch", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "an integer")
    _optional(path, doc, "num_classes", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")
    _optional(path, doc, "arch", lambda v: isinstance(v, str), "a string")
    _optional(path, doc, "fingerprint", lambda v: isinstance(v, dict), "an object")
    for key in ("precision", "artifact_precision", "inference_precision", "runtime_precision", "created"):
        _optional(path, doc, key, lambda v: isinstance(v, str), "a string")


def _validate_parity(path: Path, doc: dict[str, Any]) -> None:
    _require(path, doc, "artifact", "a string")
    gates = _require(path, doc, "gates", "an object")  # the verdict is recomputed from the numbers with these
    for key in ("max_miou_drop", "min_agreement"):
        _require(path, gates, key, "a number", where="gates")
    _optional(path, doc, "passed", lambda v: isinstance(v, bool), "true or false")
    _optional(path, doc, "runtime", lambda v: isinstance(v, str), "a string")
    _optional(path, doc, "failed_gates", lambda v: isinstance(v, list), "a list")
    for key in ("miou_drop_points", "pixel_agreement"):
        _optional(path, doc, key, _number, "a number")
    _optional(path, doc, "policy", lambda v: isinstance(v, dict), "an object")
    for key in ("arch", "checkpoint", "checkpoint_sha256", "data", "device", "runtime_precision", "precision"):
        _optional(path, doc, key, lambda v: isinstance(v, str), "a string")
    _optional(path, doc, "num_classes", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")


def read_documents(inputs: Sequence[str | Path]) -> tuple[list[Document], list[str]]:
    """Read and check every input. Returns the bench/parity documents and one note per skipped file: every file
    rfdeploy writes that is not a result (``non_result_kind``: sidecars, calibration manifests, a bundle's
    manifest, settings and state, models, references, reports, charts).

    Raises ``DataError`` (exit 5) naming the file (and the field) for anything that is not a readable result:
    a missing file, a folder, invalid JSON, not an object, an unknown schema or schema version, a missing or
    mistyped required field."""
    known = known_schema_versions()
    docs: list[Document] = []
    notes: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            raise DataError(f"{path}: a folder, not a bench or parity JSON file. Pass the files in it ({path}/*.json)")
        if not path.exists() and not path.is_symlink():
            raise DataError(f"{path}: input not found. Check the path")
        kind = non_result_kind(path)
        if kind is not None:
            notes.append(f"skipped {path}: {kind}, not a bench or parity result")
            continue
        try:
            doc = read_json(path)  # a regular file only (a FIFO would block), bounded in size and depth
        except UnicodeDecodeError:
            raise _bad(path, "not a text (UTF-8) file, so not a bench or parity JSON") from None
        except json.JSONDecodeError as exc:
            raise _bad(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        except JSONLimitError as exc:
            raise _bad(path, f"not a bench or parity JSON ({exc})") from None
        except InputReadError as exc:
            raise DataError(exc.message) from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror})") from None
        kind = non_result_kind(path, doc)
        if kind is not None:
            notes.append(f"skipped {path}: {kind}, not a bench or parity result")
            continue
        bad_number = nonfinite_field(doc)
        if bad_number is not None:  # NaN or Infinity: Python's json reads them, no result can hold one
            raise _bad(path, f"field {bad_number!r} is not a finite number (NaN or Infinity)")
        if not isinstance(doc, dict):
            raise _bad(path, f"expected a JSON object, found {type(doc).__name__} ({json.dumps(doc)[:40]})")
        schema = doc.get("schema")
        if not isinstance(schema, str) or schema not in known:
            found = "no 'schema' field" if schema is None else f"schema {schema!r}"
            raise _bad(path, f"not a bench or parity result ({found}; expected {' or '.join(known)})")
        version = doc.get("schema_version")
        versions = known[schema]
        if version is None:
            raise _bad(path, "missing required field 'schema_version'")
        if not isinstance(version, int) or isinstance(version, bool) or version not in versions:
            raise _bad(
                path,
                f"{schema} schema_version {version!r} is not one this rfdeploy reads "
                f"(it knows {', '.join(map(str, versions))}). Upgrade refinenet-deploy or re-run the step",
            )
        kind = "bench" if schema == BENCH_SCHEMA else "parity"
        (_validate_bench if kind == "bench" else _validate_parity)(path, doc)
        docs.append(Document(path, kind, doc))
    return docs, notes


# --------------------------------------------------------------------------------------------- devices
def _gpu_names(fp: Mapping[str, Any]) -> tuple[str, ...]:
    names = []
    gpus = fp.get("gpus")
    for gpu in gpus if isinstance(gpus, list) else []:
        if isinstance(gpu, dict):
            names.append(str(gpu.get("name", "GPU")))
        else:
            names.append(str(gpu).split(" (sm_")[0])
    return tuple(names)


def _device_kind(device: Any) -> str:
    text = str(device or "cpu").lower()
    return "gpu" if text.startswith("cuda") else text.split(":")[0]


def _machine(fp: Mapping[str, Any]) -> str | None:
    """The CPU architecture of a fingerprint (``x86_64``, ``aarch64``); read from ``platform`` for older files."""
    if fp.get("machine"):
        return str(fp["machine"]).lower().replace("amd64", "x86_64").replace("arm64", "aarch64")
    text = str(fp.get("platform") or "").lower()
    for token, name in (("x86_64", "x86_64"), ("amd64", "x86_64"), ("aarch64", "aarch64"), ("arm64", "aarch64")):
        if token in text:
            return name
    return None


def device_identity(fp: Mapping[str, Any] | None, device: str) -> tuple[tuple[Any, ...], str]:
    """(identity, label) of the device a result was measured on: the device kind plus the host/GPU fingerprint.

    Two results compare only when their identities are equal. The label is never shortened: a CPU name keeps
    every word (``Intel(R) Xeon(R) Processor (Icelake), 2 cores``)."""
    fp = fp or {}
    kind = _device_kind(device)
    jetson = fp.get("jetson") if isinstance(fp.get("jetson"), dict) else {}
    release = jetson.get("release") if isinstance(jetson.get("release"), dict) else {}
    jetpack = release.get("jetpack")
    cpu = str(fp.get("cpu") or "CPU")
    cores = fp.get("cpu_affinity") or fp.get("cpu_count")
    gpus = _gpu_names(fp)
    host = fp.get("hostname")
    parts = (
        host,
        _machine(fp),
        jetson.get("model"),
        jetpack,
        cpu,
        fp.get("cpu_count"),
        fp.get("cpu_affinity"),
        fp.get("isa"),
    )
    identity = (
        kind,
        *(json.dumps(v, sort_keys=True, default=str) for v in parts),  # hashable whatever the JSON held
        gpus if kind in ("gpu", "dla") else (),
    )
    if jetson.get("model"):
        label = f"{jetson['model']}" + (f" (JetPack {jetpack})" if jetpack else "") + f" {kind.upper()}"
    elif kind in ("gpu", "dla"):
        label = (gpus[0] + (f" x{len(gpus)}" if len(gpus) > 1 else "")) if gpus else f"GPU (not recorded) on {cpu}"
        if kind == "dla":
            label += " DLA"
    else:
        label = cpu + (f", {cores} cores" if cores else "")
        if kind not in ("cpu",):
            label = f"{kind.upper()} on {label}"
    return identity, label


# --------------------------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class ReportRow:
    """One line of the table: one timing kind of one bench result (or a parity result with no timing)."""

    arch: str | None
    num_classes: int | None
    input_size: tuple[int, int] | None
    batch: int | None
    device: str  # the whole label, e.g. "Intel(R) Xeon(R) Processor (Icelake), 2 cores"
    device_id: tuple[Any, ...] | None
    device_kind: str
    runtime: str
    artifact: str
    artifact_precision: str | None
    inference_precision: str | None  # what ran (an INT8 model: its float parts)
    variant: tuple[str, ...]  # PyTorch: channels-last, compiled
    tf32: bool | None  # PyTorch on a GPU: whether TF32 was allowed (None: not recorded)
    precision: str  # as printed: "fp32", "int8 (float parts fp32)", "bf16 (fp32 artifact)", "tf32"
    timing: str | None  # compute-only | device-only | end-to-end | None (accuracy only)
    p50_ms: float | None
    p99_ms: float | None
    throughput_ips: float | None
    speedup: float | None = None
    baseline: str | None = None  # the PyTorch row the speed-up is against ("PyTorch fp32")
    is_baseline: bool = False
    threads: int | None = None  # --threads as recorded (None: the runtime's default)
    unstable: tuple[str, ...] = ()  # why this timing is flagged unstable (validate.latency.timing_stability)
    speedup_best: float | None = None  # GPU rows: against the fastest PyTorch row on the same GPU
    baseline_best: str | None = None
    miou_drop_points: float | None = None
    agreement: float | None = None
    parity: str | None = None  # "pass" | "fail" | "not evaluated" | None (no parity result)
    failed_gates: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    source: str = ""
    std_ms: float | None = None  # of the same timing kind
    model_mib: float | None = None  # the artifact's size on disk (an IR: .xml + .bin), when recorded or found
    peak_rss_mib: float | None = None  # of the bench process

    @property
    def model(self) -> str:
        return (self.arch or "model not recorded") + (f", {self.num_classes} classes" if self.num_classes else "")

    @property
    def size(self) -> str:
        return f"{self.input_size[0]}x{self.input_size[1]}" if self.input_size else "n/a"

    @property
    def group(self) -> tuple[Any, ...] | None:
        """What must agree for a comparison: model, classes, input size, batch (None: not recorded)."""
        if not self.arch or self.input_size is None:
            return None
        return (self.arch, self.num_classes, self.input_size, self.batch or 1)


def _flag(doc: Mapping[str, Any], *keys: str) -> Any:
    """A PyTorch setting recorded at the top level, in runtime_config or in a 'torch' block."""
    places = [doc, doc.get("runtime_config") or {}, doc.get("torch") or {}]
    for place in places:
        if not isinstance(place, dict):
            continue
        for key in keys:
            if key in place and place[key] is not None:
                return place[key]
    return None


def _precision_of(
    doc: Mapping[str, Any], runtime: str
) -> tuple[str | None, str | None, tuple[str, ...], bool | None, str]:
    """(artifact precision, what ran, variant tags, TF32 flag, printed label) of a bench or parity document."""
    artifact = normalize_precision(doc.get("artifact_precision") or doc.get("precision"))
    ran = normalize_precision(
        doc.get("inference_precision") or doc.get("runtime_precision") or doc.get("executed_precision")
    )
    variant: list[str] = []
    tf32 = None
    if runtime == "torch":
        ran = normalize_precision(_flag(doc, "torch_precision")) or ran or artifact
        tf32 = _flag(doc, "tf32", "allow_tf32")
        tf32 = tf32 if isinstance(tf32, bool) else None
        if ran == "fp32" and tf32 is True:
            ran = "tf32"
        if _flag(doc, "channels_last"):
            variant.append("channels-last")
        if _flag(doc, "cuda_graph"):
            variant.append("CUDA graph")
        if _flag(doc, "compiled", "compile", "torch_compile"):
            mode = _flag(doc, "compile_mode")
            variant.append("compiled" + (f" ({mode})" if mode not in (None, "default") else ""))
        label = ran or "fp32"
    elif artifact == "int8":
        label = "int8" + (f" (float parts {ran})" if ran and ran != "int8" else "")
    elif ran and artifact and ran != artifact:
        label = f"{ran} ({artifact} artifact)"
    else:
        label = artifact or ran or "not recorded"
    if variant:
        label += ", " + ", ".join(variant)
    return artifact, ran, tuple(variant), tf32, label


def _size(value: Any) -> tuple[int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(d, int) for d in value):
        return int(value[0]), int(value[1])
    return None


def _parity_for(bench: Document, ran: str | None, parities: list[Document]) -> tuple[Document | None, str | None]:
    """The parity result that belongs to this bench result, or (None, why) when none or several could."""
    b = bench.data
    path, name = b["artifact"], Path(b["artifact"]).name
    kind = _device_kind(b.get("device"))
    candidates = []
    for p in parities:
        d = p.data
        if Path(d["artifact"]).name != name or d.get("runtime", b["runtime"]) != b["runtime"]:
            continue
        if _device_kind(d.get("device") or "cpu") != kind:
            continue
        if b.get("arch") and d.get("arch") and b["arch"] != d["arch"]:
            continue
        if b.get("num_classes") and d.get("num_classes") and b["num_classes"] != d["num_classes"]:
            continue
        static = _size((d.get("policy") or {}).get("static_size"))
        if static and _size(b.get("input_size")) and static != _size(b.get("input_size")):
            continue
        parity_ran = normalize_precision(d.get("runtime_precision"))
        if ran and parity_ran and ran != parity_ran:
            continue
        candidates.append(p)
    exact = [p for p in candidates if p.data["artifact"] == path]
    if len(exact) == 1 or len(candidates) == 1:
        return (exact or candidates)[0], None
    if candidates:
        paths = sorted({p.data["artifact"] for p in candidates})
        return None, f"several parity results match {name} ({', '.join(paths)}): none joined"
    return None, None


def build_rows(documents: Iterable[Document | dict[str, Any]]) -> tuple[list[ReportRow], list[str]]:
    """Table rows, sorted by model group, device and timing kind, with speed-ups inside each group; and the
    notes (footnote texts) the rows refer to."""
    docs = [d if isinstance(d, Document) else _as_document(d) for d in documents]
    benches = [d for d in docs if d.kind == "bench"]
    parities = [d for d in docs if d.kind == "parity"]
    labels: dict[tuple[Any, ...], str] = {}
    raw: list[ReportRow] = []
    joined: set[int] = set()
    for b in benches:
        d = b.data
        ident, label = device_identity(d.get("fingerprint"), d["device"])
        labels.setdefault(ident, label)
        artifact, ran, variant, tf32, shown = _precision_of(d, d["runtime"])
        threads = _threads_of(d)
        if threads is not None:
            shown += f", {threads} thread{'s' if threads != 1 else ''}"
        parity, why = _parity_for(b, ran, parities)
        if parity is not None:
            joined.add(id(parity))
        pd = parity.data if parity else {}
        for key, timing in TIMINGS.items():
            stats = d.get(key)
            if not isinstance(stats, dict):
                continue
            if str(stats.get("mode", "")).startswith("asynchronous"):  # OpenVINO --hint throughput
                timing = ASYNC_TIMING
            raw.append(
                ReportRow(
                    arch=d.get("arch"),
                    num_classes=d.get("num_classes"),
                    input_size=_size(d.get("input_size")),
                    batch=d.get("batch"),
                    device=label,
                    device_id=ident,
                    device_kind=_device_kind(d["device"]),
                    runtime=d["runtime"],
                    artifact=Path(d["artifact"]).name,
                    artifact_precision=artifact,
                    inference_precision=ran,
                    variant=variant,
                    tf32=tf32,
                    precision=shown,
                    timing=timing,
                    p50_ms=float(stats["p50_ms"]),
                    p99_ms=stats.get("p99_ms"),
                    throughput_ips=stats.get("throughput_ips"),
                    miou_drop_points=pd.get("miou_drop_points"),
                    agreement=pd.get("pixel_agreement"),
                    parity=None if parity is None else parity_verdict(pd)[0],
                    failed_gates=() if parity is None else parity_verdict(pd)[1],
                    notes=(*((why,) if why else ()), *_device_flags(d)),
                    source=str(b.path),
                    threads=threads,
                    unstable=_unstable(stats),
                )
            )
    _disambiguate(labels)
    raw = [_relabel(r, labels) for r in raw]
    rows = _with_speedups(raw)
    for p in parities:
        if id(p) in joined:
            continue
        d = p.data
        runtime = d.get("runtime") or "?"
        artifact, ran, variant, tf32, shown = _precision_of(d, runtime)
        kind = _device_kind(d.get("device") or "cpu")
        rows.append(
            ReportRow(
                arch=d.get("arch"),
                num_classes=d.get("num_classes"),
                input_size=_size((d.get("policy") or {}).get("static_size")),
                batch=None,
                device=f"{kind} (accuracy only: no bench result for this artifact)",
                device_id=None,
                device_kind=kind,
                runtime=runtime,
                artifact=Path(d["artifact"]).name,
                artifact_precision=artifact,
                inference_precision=ran,
                variant=variant,
                tf32=tf32,
                precision=shown,
                timing=None,
                p50_ms=None,
                p99_ms=None,
                throughput_ips=None,
                miou_drop_points=d.get("miou_drop_points"),
                agreement=d.get("pixel_agreement"),
                parity=parity_verdict(d)[0],
                failed_gates=parity_verdict(d)[1],
                source=str(p.path),
            )
        )
    return rows, _collect_notes(rows)


def parity_verdict(doc: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """("pass" | "fail" | "not evaluated", reasons) of a parity result, recomputed from its numbers and the gates
    it states (``validate.verdict``): the ``passed`` field of the file is not trusted."""
    from ..validate.tolerances import Gates
    from ..validate.verdict import judge_parity_document

    gates = doc["gates"]
    verdict = judge_parity_document(doc, Gates(float(gates["max_miou_drop"]), float(gates["min_agreement"])))
    shown = {"passed": "pass", "failed": "fail"}.get(verdict.status, "not evaluated")
    return shown, (*verdict.failed, *(f"not evaluated: {r}" for r in verdict.not_evaluated))


def _as_document(doc: dict[str, Any]) -> Document:
    schema = doc.get("schema")
    if schema not in (BENCH_SCHEMA, PARITY_SCHEMA):
        raise DataError(f"not a bench or parity result (schema {schema!r})")
    return Document(Path(str(doc.get("artifact", "?"))), "bench" if schema == BENCH_SCHEMA else "parity", doc)


def _disambiguate(labels: dict[tuple[Any, ...], str]) -> None:
    """Two different devices with the same label (same CPU model, other ISA or host) get a short tag each."""
    by_label: dict[str, list[tuple[Any, ...]]] = {}
    for ident, label in labels.items():
        by_label.setdefault(label, []).append(ident)
    for label, idents in by_label.items():
        if len(idents) > 1:
            for ident in idents:
                tag = hashlib.sha256(repr(ident).encode()).hexdigest()[:6]
                labels[ident] = f"{label} [host {tag}]"


def _relabel(row: ReportRow, labels: Mapping[tuple[Any, ...], str]) -> ReportRow:
    from dataclasses import replace

    return replace(row, device=labels.get(row.device_id, row.device)) if row.device_id in labels else row


def _threads_of(doc: Mapping[str, Any]) -> int | None:
    protocol = doc.get("protocol")
    threads = protocol.get("threads") if isinstance(protocol, dict) else None
    return threads if isinstance(threads, int) and not isinstance(threads, bool) else None


def _device_flags(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """What the device state read around the run flags (throttling, a Jetson's unlocked clocks)."""
    state = doc.get("device_state")
    flags = state.get("flags") if isinstance(state, dict) else None
    return tuple(f"device: {f}" for f in flags if isinstance(f, str)) if isinstance(flags, list) else ()


def _unstable(stats: Mapping[str, Any]) -> tuple[str, ...]:
    """The stability rule (``validate.latency``) applied to one timing's statistics; () when they are incomplete."""
    from ..validate.latency import timing_stability

    if not all(_number(stats.get(k)) for k in ("mean_ms", "std_ms", "p50_ms", "p99_ms")):
        return ()
    return timing_stability(stats).reasons


def _baseline_rank(row: ReportRow) -> tuple[int, int]:
    """Lower is a better baseline: strict fp32 (TF32 off, or a CPU), then fp32 with TF32 not recorded,
    tf32, bf16, fp16; plain eager before channels-last/compiled."""
    ran = row.inference_precision or "fp32"
    if ran == "fp32":
        strict = row.device_kind not in ("gpu", "dla") or row.tf32 is False
        rank = 0 if strict else 1
    else:
        rank = {"tf32": 2, "bf16": 3, "fp16": 4}.get(ran, 5)
    return rank, len(row.variant)


def choose_baseline(row: ReportRow, torch_rows: Sequence[ReportRow]) -> tuple[ReportRow, list[str]]:
    """The PyTorch row ``row``'s speed-up is against, and the notes that say how it was chosen.

    The rule, in order: the same thread setting as ``row`` (a thread count changes PyTorch's time several-fold);
    strict fp32 (TF32 off, or a CPU) before TF32/bf16/fp16, plain eager before channels-last/compiled/graphs; a
    stable timing before an unstable one. Rows still equal by all of that are a tie: the tie is reported and the
    fastest of them is used (the smallest, conservative speed-up), so the argument order never matters."""

    def key(t: ReportRow) -> tuple[int, tuple[int, int], int]:
        return (0 if t.threads == row.threads else 1, _baseline_rank(t), 1 if t.unstable else 0)

    best = min(key(t) for t in torch_rows)
    tied = sorted((t for t in torch_rows if key(t) == best), key=lambda t: (t.p50_ms or float("inf"), t.source))
    base, notes = tied[0], []
    if len({t.p50_ms for t in tied}) > 1:
        p50s = ", ".join(f"{t.p50_ms:.2f}" for t in tied if t.p50_ms is not None)
        notes.append(
            f"{len(tied)} PyTorch results tie as baseline (p50 {p50s} ms): speed-up against the fastest "
            "(the conservative one)"
        )
    if base.threads != row.threads:
        notes.append(f"baseline ran with {base.threads or 'default'} threads, this row with {row.threads or 'default'}")
    rank = _baseline_rank(base)
    if rank != (0, 0):
        why = "TF32 not recorded" if rank[0] == 1 else "no strict fp32 (TF32 off) PyTorch row"
        notes.append(f"speed-up against PyTorch {base.precision} ({why} on this device)")
    if base.unstable and base is not row:
        notes.append(f"speed-up against an UNSTABLE PyTorch timing ({'; '.join(base.unstable)}): do not quote it")
    return base, notes


def _with_speedups(rows: list[ReportRow]) -> list[ReportRow]:
    from dataclasses import replace

    groups: dict[tuple[Any, ...], list[ReportRow]] = {}
    for r in rows:
        if r.group is not None:
            groups.setdefault((r.group, r.device_id, r.timing), []).append(r)
    out = []
    for r in rows:
        notes = r.notes
        if r.unstable:
            notes = (*notes, f"unstable timing: {'; '.join(r.unstable)} (machine under load?)")
        if r.group is None:
            missing = "model (arch)" if not r.arch else "input size"
            out.append(replace(r, notes=(*notes, f"no PyTorch baseline: the bench JSON does not record the {missing}")))
            continue
        torch_rows = [t for t in groups[(r.group, r.device_id, r.timing)] if t.runtime == "torch"]
        if not torch_rows:
            why = (
                "no PyTorch baseline: an asynchronous throughput run (requests in flight) has no synchronous "
                "PyTorch counterpart; compare its img/s"
                if r.timing == ASYNC_TIMING
                else "no PyTorch baseline: no PyTorch result with the same model, input size, batch and timing "
                "kind on this device"
            )
            out.append(replace(r, notes=(*notes, why)))
            continue
        base, how = choose_baseline(r, torch_rows)
        best = min(torch_rows, key=lambda t: (t.p50_ms or float("inf"), t.source))
        gpu = r.device_kind in ("gpu", "dla")
        out.append(
            replace(
                r,
                speedup=speedup_of(base.p50_ms, r.p50_ms),
                baseline=f"PyTorch {base.precision}",
                is_baseline=r is base,
                notes=(*notes, *how),
                speedup_best=speedup_of(best.p50_ms, r.p50_ms) if gpu else None,
                baseline_best=f"PyTorch {best.precision}" if gpu else None,
            )
        )
    timing_order = [*TIMINGS.values(), ASYNC_TIMING]
    return sorted(
        out,
        key=lambda r: (
            r.group is None,
            (r.group[0], r.group[1] or 0, r.group[2], r.group[3]) if r.group else ("", 0, (0, 0), 0),
            r.device,
            timing_order.index(r.timing) if r.timing in timing_order else 9,
            r.runtime != "torch",
            r.p50_ms if r.p50_ms is not None else float("inf"),
        ),
    )


def _collect_notes(rows: Sequence[ReportRow]) -> list[str]:
    notes: list[str] = []
    for r in rows:
        for n in r.notes:
            if n not in notes:
                notes.append(n)
    return notes


# --------------------------------------------------------------------------------------------- the report
@dataclass
class Report:
    """The table, its footnotes and the header facts found in the inputs."""

    rows: list[ReportRow]
    notes: list[str]
    header: dict[str, list[str]] = field(default_factory=dict)
    charts_skipped: str | None = None
    preamble: str = ""  # Markdown shown first (a pipeline bundle's summary and pending commands)


def summarize_inputs(docs: Sequence[Document]) -> dict[str, list[str]]:
    """Checkpoints, data, dates, input sizes and tool versions found in the inputs (for the report header)."""
    checkpoints, data, dates, sizes, tools = [], [], [], [], []

    def add(items: list[str], value: str | None) -> None:
        if value and value not in items:
            items.append(value)

    for doc in sorted(docs, key=lambda x: x.kind != "parity"):  # parity first: it names the checkpoint fully
        d = doc.data
        if doc.kind == "parity":
            sha = d.get("checkpoint_sha256")
            if d.get("checkpoint"):
                add(checkpoints, f"{Path(str(d['checkpoint'])).name}" + (f" (sha256 {sha[:12]})" if sha else ""))
            if d.get("data"):
                split = f", split {d['split']}" if d.get("split") else ""
                add(data, f"{d['data']}{split} ({d.get('num_images', '?')} images)")
            static = _size((d.get("policy") or {}).get("static_size"))
            if static:
                add(sizes, f"{static[0]}x{static[1]}")
        else:
            name = Path(d["artifact"]).name
            if d.get("runtime") == "torch" and not any(c.split(" (")[0] == name for c in checkpoints):
                add(checkpoints, name + " (PyTorch bench)")
            size = _size(d.get("input_size"))
            if size:
                add(sizes, f"{size[0]}x{size[1]}")
        if isinstance(d.get("created"), str):
            add(dates, d["created"])
        if d.get("tool_version"):
            add(tools, str(d["tool_version"]))
    dates.sort()
    return {
        "checkpoint": checkpoints,
        "data": data,
        "date": [dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"] if dates else [],
        "input sizes (HxW)": sorted(sizes, key=lambda s: tuple(int(x) for x in s.split("x"))),
        "rfdeploy": tools,
    }


HEADER = (
    "model",
    "input (HxW)",
    "batch",
    "device",
    "runtime",
    "precision",
    "timing",
    "p50 (ms)",
    "p99 (ms)",
    "std (ms)",
    "throughput (img/s)",
    "speed-up vs PyTorch",  # same model, size, batch and device: the paragraph under the table says so
    "mIoU drop (pt)",
    "pixel agreement",
    "parity gates",
    "artifact",
    "model size (MiB)",
    "peak RSS (MiB)",
)


def _artifact_size_mib(doc: Mapping[str, Any], source: Path) -> float | None:
    """The artifact's size: recorded in the result, else the file (relative paths: to the result's folder, or to a
    bundle's root), an OpenVINO IR with its .bin. None: not found here."""
    recorded = doc.get("artifact_bytes")
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool):
        return float(recorded) / 2**20
    path = Path(str(doc.get("artifact", "")))
    candidates = [path] if path.is_absolute() else [source.parent / path, *(p / path for p in source.parents)]
    for candidate in candidates:
        try:
            if candidate.is_file():
                size = candidate.stat().st_size
                weights = candidate.with_suffix(".bin")
                if candidate.suffix == ".xml" and weights.is_file():
                    size += weights.stat().st_size
                return size / 2**20
        except OSError:
            return None
    return None


def _with_resources(rows: list[ReportRow], docs: Sequence[Document]) -> list[ReportRow]:
    """Std of the row's timing, model size and peak RSS from the bench result each row came from; and, where
    several rows show the same artifact file name (a bundle's model.xml), the folder it is in (its target)."""
    from dataclasses import replace

    by_path = {str(d.path): d for d in docs if d.kind == "bench"}
    names: dict[str, set[str]] = {}
    for r in rows:
        names.setdefault(r.artifact, set()).add(r.source)
    out = []
    for r in rows:
        doc = by_path.get(r.source)
        changes: dict[str, Any] = {}
        if doc is not None:
            key = next((k for k, v in TIMINGS.items() if v == r.timing), None)
            stats = doc.data.get(key) if key else None
            if r.timing == ASYNC_TIMING:
                stats = next((doc.data.get(k) for k in TIMINGS if isinstance(doc.data.get(k), dict)), None)
            std = stats.get("std_ms") if isinstance(stats, dict) else None
            changes["std_ms"] = float(std) if _number(std) else None
            rss = doc.data.get("peak_rss_mib")
            changes["peak_rss_mib"] = float(rss) if _number(rss) else None
            changes["model_mib"] = _artifact_size_mib(doc.data, doc.path)
        if len(names.get(r.artifact, ())) > 1 and r.source:
            changes["artifact"] = f"{Path(r.source).parent.name}/{r.artifact}"
        out.append(replace(r, **changes) if changes else r)
    return out


def _cells(r: ReportRow, notes: Sequence[str]) -> list[str]:
    def f(v: float | None, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    def marks() -> str:
        return "".join(f"[{notes.index(n) + 1}]" for n in r.notes if n in notes)

    if r.timing is None:
        speed = "n/a"
    elif r.is_baseline:
        speed = "1.00x (baseline)"
    elif r.speedup is not None:
        speed = f"{r.speedup:.2f}x"
    else:
        speed = "—"
    if r.speedup_best is not None and r.baseline_best != r.baseline:
        speed += f"; {r.speedup_best:.2f}x vs fastest ({r.baseline_best})"
    speed += marks()
    if r.parity is None:
        gates = "—"
    elif r.parity == "pass":
        gates = "pass"
    elif r.parity == "not evaluated":
        gates = "not evaluated" + (f": {'; '.join(r.failed_gates)}" if r.failed_gates else "")
    else:
        gates = "FAIL" + (f": {'; '.join(r.failed_gates)}" if r.failed_gates else "")
    return [
        r.model,
        r.size,
        "n/a" if r.batch is None else str(r.batch),
        r.device,
        r.runtime,
        r.precision,
        r.timing or "n/a (accuracy only)",
        f(r.p50_ms, ".2f"),
        f(r.p99_ms, ".2f"),
        f(r.std_ms, ".2f"),
        f(r.throughput_ips, ".1f"),
        speed,
        f(r.miou_drop_points, ".3f"),
        "n/a" if r.agreement is None else f"{r.agreement * 100:.3f} %",
        gates,
        r.artifact,
        "not measured" if r.model_mib is None else f"{r.model_mib:.1f}",
        "not measured" if r.peak_rss_mib is None else f"{r.peak_rss_mib:.0f}",
    ]


def _header_lines(report: Report) -> list[str]:
    lines = []
    for key, values in report.header.items():
        if values:
            lines.append(f"- **{key}**: {', '.join(values)}")
    return lines


def _md(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report, charts: Mapping[str, str] | None = None) -> str:
    lines = [report.preamble] if report.preamble else []
    lines += ["# refinenet-deploy report", "", *_header_lines(report), ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_md(c) for c in _cells(r, report.notes)) + " |" for r in report.rows]
    lines += ["", _EXPLAIN]
    if report.notes:
        lines += [""] + [f"[{i}] {n}" + "  " for i, n in enumerate(report.notes, 1)]
    for title, path in (charts or {}).items():
        name = next((k for k in sorted(CHART_CAPTIONS, key=len, reverse=True) if title.endswith(k)), "")
        caption = CHART_CAPTIONS.get(name, title)
        lines += ["", f"![{caption}]({path})", "", f"_{caption}_"]
    if report.charts_skipped:
        lines += ["", f"_Charts skipped: {report.charts_skipped}._"]
    return "\n".join(lines) + "\n"


_EXPLAIN = (
    "Speed-up is p50 of the PyTorch row / p50 of this row, computed only between rows of the same model, "
    "classes, input size, batch and timing kind on the same device (host/GPU fingerprint and device kind); "
    "'—' means no such PyTorch row. Timings: compute-only = the runtime call on a pre-processed input (host "
    "clock); device-only = CUDA events around the model on the GPU; end-to-end = JPEG decode + preprocess + "
    "infer + argmax; async throughput = requests kept in flight (img/s over wall time, p50/p99 per request). "
    "mIoU drop and pixel agreement are against PyTorch on the same checkpoint (parity JSON)."
)


def _inline_html(text: str) -> str:
    """Inline Markdown of our own summaries (`code`, **bold**) as HTML, everything else escaped."""
    parts = text.split("`")
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            bold = html.escape(part).split("**")
            out.append("".join(f"<b>{b}</b>" if j % 2 else b for j, b in enumerate(bold)))
    return "".join(out)


def markdown_to_html(text: str) -> str:
    """The Markdown rfdeploy writes in summaries (headings, paragraphs, pipe tables, two-level lists, inline code
    and bold) as HTML: report.html shows what report.md shows."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 4)
            blocks.append(f"<h{level}>{_inline_html(line.lstrip('#').strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            head = "".join(f"<th>{_inline_html(c)}</th>" for c in rows[0]) if rows else ""
            body = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
            blocks.append(
                f"<div class='wide'><table class='summary'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                "</table></div>"
            )
        elif line.lstrip().startswith("- "):
            items: list[str] = []
            while i < len(lines) and lines[i].lstrip().startswith("- "):
                item = _inline_html(lines[i].lstrip()[2:])
                if lines[i].startswith("  ") and items:
                    items[-1] += f"<ul><li>{item}</li></ul>"
                else:
                    items.append(item)
                i += 1
            blocks.append("<ul>" + "".join(f"<li>{x}</li>" for x in items).replace("</ul><ul>", "") + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "- ", "  - ")):
                para.append(lines[i])
                i += 1
            blocks.append(f"<p>{_inline_html(' '.join(para))}</p>")
    return "\n".join(blocks)


def to_html(report: Report, charts: Mapping[str, bytes]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r, report.notes)) + "</tr>" for r in report.rows
    )
    facts = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(', '.join(v))}</li>" for k, v in report.header.items() if v
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    imgs = "".join(
        f'<figure><img alt="{html.escape(CHART_CAPTIONS.get(k, k))}" src="data:image/png;base64,'
        f'{base64.b64encode(v).decode()}"><figcaption>{html.escape(CHART_CAPTIONS.get(k, k))}</figcaption></figure>'
        for k, v in charts.items()
    )
    skipped = f"<p><i>Charts skipped: {html.escape(report.charts_skipped)}.</i></p>" if report.charts_skipped else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>refinenet-deploy report</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1400px}.wide{overflow-x:auto;max-width:100%}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;"
        "text-align:right;vertical-align:top}th{background:#f2f2f2;text-align:left}"
        "td:nth-child(-n+7),td:nth-child(15),td:nth-child(16){text-align:left}"
        "td:nth-child(4){min-width:12em}td:nth-child(15){min-width:10em}"
        "table.summary td{text-align:left}code{font-size:12px;word-break:break-all}"
        "img{max-width:100%}figure{margin:1.5em 0}figcaption{font-size:13px;color:#444}"
        "</style></head><body>"
        + (f"<section class='bundle'>{markdown_to_html(report.preamble)}</section>" if report.preamble else "")
        + "<h1>refinenet-deploy report</h1>"
        f"<ul>{facts}</ul><div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        f"<p>{html.escape(_EXPLAIN)}</p><ol>{notes}</ol>{imgs}{skipped}</body></html>\n"
    )


def summary_page(preamble: str) -> str:
    """A self-contained HTML page of a Markdown summary alone (a bundle with no result yet)."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>refinenet-deploy bundle</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px}</style></head><body>" + markdown_to_html(preamble) + "</body></html>\n"
    )


# --------------------------------------------------------------------------------------------- charts
RUNTIME_COLORS = {"torch": "#8c8c8c", "onnxruntime": "#4c72b0", "openvino": "#55a868", "tensorrt": "#c44e52"}


def chart_label(r: ReportRow) -> str:
    """The y label of a bar: device (whole), runtime, precision and timing kind."""
    return f"{r.device} | {r.runtime} {r.precision} | {r.timing}"


def _model_title(group: tuple[Any, ...]) -> str:
    arch, classes, (h, w), batch = group
    return f"{arch}" + (f", {classes} classes" if classes else "") + f", {h}x{w}, batch {batch}"


def render_charts(rows: Sequence[ReportRow]) -> dict[str, bytes]:
    """PNG bytes: p50 latency as horizontal bars, one panel per model/input size/batch (each panel its own
    scale, the figure sized by the number of rows); and mIoU drop against latency."""
    matplotlib = _matplotlib()
    import matplotlib.pyplot as plt

    with plt.rc_context({"text.parse_math": False, "text.usetex": False}):  # a "$" in a name is just a "$"
        return _render_charts(rows, matplotlib, plt)


def _render_charts(rows: Sequence[ReportRow], matplotlib: Any, plt: Any) -> dict[str, bytes]:
    charts: dict[str, bytes] = {}
    timed = [r for r in rows if r.p50_ms is not None]
    groups: dict[Any, list[ReportRow]] = {}
    for r in timed:
        groups.setdefault(r.group, []).append(r)
    if timed:
        longest = max(len(chart_label(r)) for r in timed)
        width = min(22.0, 7.0 + 0.065 * longest)
        height = 0.9 + 0.3 * len(timed) + 0.75 * len(groups)
        fig, axes = plt.subplots(
            len(groups),
            1,
            figsize=(width, height),
            squeeze=False,
            gridspec_kw={"height_ratios": [len(g) + 1.2 for g in groups.values()]},
        )
        for ax, (group, members) in zip(axes[:, 0], groups.items()):
            y = range(len(members))
            values = [m.p50_ms for m in members]
            ax.barh(y, values, color=[RUNTIME_COLORS.get(m.runtime, "#937860") for m in members])
            ax.set_yticks(list(y), [chart_label(m) for m in members], fontsize=7)
            ax.invert_yaxis()
            ax.set_xscale("log")  # PyTorch can be 100x slower: on a linear axis every other bar is a sliver
            ax.set_xlim(min(values) / 1.5, max(values) * 6)  # room for the labels after the bars
            _plain_log_ticks(ax, matplotlib)
            for i, m in enumerate(members):
                if i and m.device != members[i - 1].device:  # a rule between devices
                    ax.axhline(i - 0.5, color="#bbb", lw=0.6)
                speed = "  baseline" if m.is_baseline else f"  {m.speedup:.2f}x" if m.speedup is not None else ""
                text = f"{m.p50_ms:.2f} ms{speed}"
                ax.annotate(text, (m.p50_ms, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
            ax.set_title(_model_title(group) if group else "model or input size not recorded", fontsize=9)
            ax.set_xlabel("p50 latency (ms, log scale); label: speed-up vs PyTorch on the same device", fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
        used = {r.runtime for r in timed}
        handles = [matplotlib.patches.Patch(color=c, label=k) for k, c in RUNTIME_COLORS.items() if k in used]
        fig.legend(handles=handles, loc="upper right", fontsize=7, ncols=len(handles) or 1)
        fig.suptitle("Latency per model, input size and batch (lower is better)", fontsize=10, x=0.02, ha="left")
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / height))
        charts["latency"] = _png(fig)
        plt.close(fig)
    both = [r for r in timed if r.miou_drop_points is not None]
    if both:
        fig, ax = plt.subplots(figsize=(11, 5))
        markers = "os^Dvp*hX"
        key: list[Any] = []  # legend entries: the number of each point and what it is
        n = 0
        model_handles = []
        for k, (group, members) in enumerate(groups.items()):
            pts = [m for m in members if m.miou_drop_points is not None]
            if not pts:
                continue
            marker = markers[k % len(markers)]
            ax.scatter(
                [m.p50_ms for m in pts],
                [m.miou_drop_points for m in pts],
                marker=marker,
                s=40,
                c=[RUNTIME_COLORS.get(m.runtime, "#937860") for m in pts],
                edgecolors="black",
                linewidths=0.4,
                zorder=3,
            )
            model_handles.append(
                matplotlib.lines.Line2D(
                    [], [], marker=marker, ls="", color="#555", label=_model_title(group) if group else "model?"
                )
            )
            for m in pts:
                n += 1
                ax.annotate(
                    str(n),
                    (m.p50_ms, m.miou_drop_points),
                    xytext=(4, 4),
                    textcoords="offset points",
                    fontsize=7,
                    annotation_clip=True,  # a number never leaves the axes
                )
                key.append(
                    matplotlib.lines.Line2D(
                        [], [], ls="", label=f"{n}: {m.runtime} {m.precision} ({m.device_kind}, {m.timing})"
                    )
                )
        ax.axhline(0, color="#999", lw=0.8)
        xs = [m.p50_ms for m in both]
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
        _plain_log_ticks(ax, matplotlib)
        ys = [m.miou_drop_points for m in both]
        pad = max(0.05, (max(ys) - min(ys)) * 0.15)
        ax.set_ylim(min(min(ys), 0) - pad, max(max(ys), 0) + pad)
        ax.set_xlabel("p50 latency (ms, log scale)")
        ax.set_ylabel("mIoU drop vs PyTorch (points)")
        ax.set_title("Accuracy vs latency (colour: runtime; marker: model)")
        used = {m.runtime for m in both}
        colours = [matplotlib.patches.Patch(color=c, label=r) for r, c in RUNTIME_COLORS.items() if r in used]
        ax.legend(  # one legend (a second one would fall outside the saved image): colours, markers, the points
            handles=colours + model_handles + key, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0)
        )
        fig.tight_layout(rect=(0, 0, 0.6, 1))  # the legends beside the axes stay inside the figure
        charts["accuracy_vs_latency"] = _png(fig)
        plt.close(fig)
    return charts


def _plain_log_ticks(ax: Any, matplotlib: Any) -> None:
    """Tick labels of a log axis as plain numbers (1, 10, 100 ms): with math text off (names may hold '$'), the
    default labels would print as raw '$\\mathdefault{10^{2}}$'."""
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(
        matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}" if f"{v:g}"[0] in "25" else "")
    )
    ax.tick_params(axis="x", which="minor", labelsize=6)


def _matplotlib() -> Any:
    from .._optional import require

    matplotlib = require("matplotlib", extra="report")
    matplotlib.use("Agg")
    import matplotlib.lines  # noqa: F401  (legend entries)
    import matplotlib.patches  # noqa: F401  (legend patches)
    import matplotlib.ticker  # noqa: F401  (plain log-axis labels)

    return matplotlib


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # long device names are never cut
    return buf.getvalue()


# --------------------------------------------------------------------------------------------- writing
@dataclass
class ReportResult:
    """What ``write_report`` did: the report, the chart files beside it, every file written, and the notes
    (skipped sidecars, skipped charts) the CLI shows."""

    output: Path
    rows: list[ReportRow]
    charts: list[Path]
    written: list[Path]
    skipped: list[str]
    charts_skipped: str | None


def chart_paths(output: Path) -> list[Path]:
    """Where the PNG charts of a Markdown report go (an HTML report embeds them and writes none)."""
    return [output.with_name(f"{output.stem}_{name}.png") for name in CHART_NAMES] if output.suffix == ".md" else []


def write_report(inputs: Sequence[str | Path], output: str | Path, *, preamble: str = "") -> ReportResult:
    """Check ``output`` (before any work), read and check ``inputs``, build the table and the charts, and write
    the report (and, for Markdown, its PNG charts) atomically. Raises UsageError (exit 2) for a bad output or
    no inputs, DataError (exit 5) for an input that is not a bench/parity result this version reads (or only
    sidecars). ``preamble``: Markdown shown before the table (in HTML too): a pipeline bundle's summary."""
    output = Path(output)
    if not inputs:
        raise UsageError("no input JSON files. Pass bench/parity files written with --json")
    if output.suffix not in REPORT_SUFFIXES:
        raise UsageError(f"report must end in .md or .html: {output}. Pass -o report.html")
    check_output_path(output, REPORT_SUFFIXES, inputs=list(inputs), what="-o")
    pngs = chart_paths(output)
    if pngs:
        probe_output(pngs[0], inputs=list(inputs), what="-o (chart)", companions=pngs[1:])
    docs, skipped = read_documents(inputs)
    if not docs:
        names = ", ".join(str(Path(i)) for i in inputs)
        raise DataError(
            f"no bench or parity result among the inputs: {names} (artifact sidecars only)",
            hint="pass the files written by 'rfdeploy bench --json' or 'parity --json'",
        )
    rows, notes = build_rows(docs)
    rows = _with_resources(rows, docs)
    report = Report(rows, notes, summarize_inputs(docs), preamble=preamble)
    try:
        charts = render_charts(rows)
    except MissingDependencyError:
        charts = {}
        report.charts_skipped = "matplotlib is not installed (pip install 'refinenet-deploy[report]')"
    written: list[Path] = []
    chart_files: list[Path] = []
    created = ensure_parent(output)
    try:
        for name, png in charts.items() if output.suffix == ".md" else ():  # HTML: embedded, no files
            path = output.with_name(f"{output.stem}_{name}.png")
            write_atomic(path, lambda tmp, png=png: tmp.write_bytes(png))
            written.append(path)
            chart_files.append(path)
        text = (
            to_html(report, charts)
            if output.suffix == ".html"
            else to_markdown(report, {p.stem: p.name for p in chart_files})
        )
        write_atomic(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        written.append(output)
        for old in set(pngs) - set(chart_files):  # charts of an earlier report at this path: no longer true
            old.unlink(missing_ok=True)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        remove_created(created)
        raise
    return ReportResult(output, rows, chart_files, written, skipped, report.charts_skipped)


def make_report(
    inputs: Sequence[str | Path], output: str | Path, *, preamble: str = ""
) -> tuple[Path, list[ReportRow], list[Path]]:
    """``write_report`` returning (report path, rows, chart files)."""
    result = write_report(inputs, output, preamble=preamble)
    return result.output, result.rows, result.charts


# --------------------------------------------------------------------------------------------- one parity result
def parity_markdown(report: dict[str, Any]) -> str:
    """A Markdown rendering of the parity JSON."""

    def pct(v: float | None, digits: int = 2) -> str:
        return "n/a" if v is None else f"{v * 100:.{digits}f} %"

    shown, reasons = parity_verdict(report)
    status = {"pass": "PASSED", "fail": "FAILED"}.get(shown, "NOT EVALUATED") + (
        ": " + "; ".join(reasons) if reasons else ""
    )
    ran = normalize_precision(report.get("runtime_precision"))
    lines = [
        f"# Parity: `{Path(report['artifact']).name}` vs PyTorch `{Path(report['checkpoint']).name}`",
        "",
        f"**{status}** ({normalize_precision(report['precision'])} gates: |mIoU drop| <= "
        f"{report['gates']['max_miou_drop']} pt, pixel agreement >= {report['gates']['min_agreement'] * 100:.2f} %)",
        "",
        f"{report['num_images']} images from `{report['data']}`, runtime `{report['runtime']}`"
        + (f" (ran in {ran})" if ran else "")
        + f", TTA scales {report['tta']['scales']}, flip {report['tta']['flip']}.",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| PyTorch mIoU | {pct(report['reference_miou'])} |",
        f"| backend mIoU | {pct(report['backend_miou'])} |",
        f"| mIoU drop (pt) | {_fmt(report['miou_drop_points'], '.3f')} |",
        f"| agreement mIoU (backend vs PyTorch) | {pct(report['agreement_miou'])} |",
        f"| pixel agreement | {pct(report['pixel_agreement'], 3)} |",
        f"| boundary agreement ({report['policy']['boundary_width_px']} px band) | "
        f"{pct(report['boundary_agreement'], 3)} |",
        f"| logit max abs error | {_fmt(report['logit_max_abs_error'])} |",
        f"| logit mean abs error | {_fmt(report['logit_mean_abs_error'])} |",
        "",
        "| class | PyTorch IoU | backend IoU | drop (pt) | agreement IoU |",
        "|---|---:|---:|---:|---:|",
    ]
    for c in report["per_class"]:
        drop = "n/a" if c["drop_points"] is None else f"{c['drop_points']:.2f}"
        lines.append(
            f"| {c['class']} | {pct(c['reference_iou'])} | {pct(c['backend_iou'])} | {drop} | "
            f"{pct(c['agreement_iou'])} |"
        )
    if report.get("worst"):
        lines += [
            "",
            "Lowest agreement: " + ", ".join(f"{w['name']} ({w['pixel_agreement']:.2%})" for w in report["worst"]),
        ]
    return "\n".join(lines) + "\n"


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "n/a" if v is None else format(v, spec)
