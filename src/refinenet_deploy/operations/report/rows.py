"""Table rows from typed results. A row is one timing (compute-only, device-only, end-to-end or asynchronous
throughput) of one bench result, with the parity result that belongs to it joined on; a parity result that joins
no bench result is a row of its own (accuracy only). Speed-ups are added by ``baselines``.

Parity results join on the artifact (same path, else the same file name when that is unambiguous), the runtime and
the device kind, and only when the model and the precision that ran agree."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...results import TIMINGS, BenchResult, LatencyStats, ParityResult, device_kind, identity_of, normalize_precision
from .baselines import ASYNC_TIMING, collect_notes, disambiguate, with_speedups
from .documents import Document, Result, as_document


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
    precision_audit: str | None = None  # what an OpenVINO IR really runs ("INT8 convolutions: 78/78")

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


def precision_of(r: Result) -> tuple[str | None, str | None, tuple[str, ...], bool | None, str]:
    """(artifact precision, what ran, variant tags, TF32 flag, printed label) of a bench or parity result."""
    if isinstance(r, BenchResult):
        artifact, ran, setting = r.artifact_precision, r.inference_precision, r.setting
    else:
        artifact, ran = normalize_precision(r.precision), r.ran

        def setting(*_keys: str) -> Any:
            return None

    variant: list[str] = []
    tf32 = None
    if r.runtime == "torch":
        ran = normalize_precision(setting("torch_precision")) or ran or artifact
        flag = setting("tf32", "allow_tf32")
        tf32 = flag if isinstance(flag, bool) else None
        if ran == "fp32" and tf32 is True:
            ran = "tf32"
        if setting("channels_last"):
            variant.append("channels-last")
        if setting("cuda_graph"):
            variant.append("CUDA graph")
        if setting("compiled", "compile", "torch_compile"):
            mode = setting("compile_mode")
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


def parity_verdict(doc: ParityResult | Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """("pass" | "fail" | "not evaluated", reasons) of a parity result, recomputed from its numbers and the gates
    it states (``validate.verdict``): the ``passed`` field of the file is not trusted."""
    from ...validate.tolerances import Gates
    from ...validate.verdict import judge_parity_result

    result = doc if isinstance(doc, ParityResult) else ParityResult.from_dict(doc)
    gates = Gates(result.gates.max_miou_drop, result.gates.min_agreement)
    verdict = judge_parity_result(result, gates)
    shown = {"passed": "pass", "failed": "fail"}.get(verdict.status, "not evaluated")
    return shown, (*verdict.failed, *(f"not evaluated: {r}" for r in verdict.not_evaluated))


def _parity_for(bench: BenchResult, ran: str | None, parities: list[Document]) -> tuple[Document | None, str | None]:
    """The parity result that belongs to this bench result, or (None, why) when none or several could."""
    name, kind = Path(bench.artifact).name, device_kind(bench.device)
    candidates = []
    for p in parities:
        d = p.result
        if not isinstance(d, ParityResult):
            continue
        if Path(d.artifact).name != name or (d.runtime or bench.runtime) != bench.runtime:
            continue
        if device_kind(d.device) != kind:
            continue
        if bench.arch and d.arch and bench.arch != d.arch:
            continue
        if bench.num_classes and d.num_classes and bench.num_classes != d.num_classes:
            continue
        if d.static_size and bench.input_size and d.static_size != bench.input_size:
            continue
        if ran and d.ran and ran != d.ran:
            continue
        candidates.append(p)
    exact = [p for p in candidates if p.result.artifact == bench.artifact]
    if len(exact) == 1 or len(candidates) == 1:
        return (exact or candidates)[0], None
    if candidates:
        paths = sorted({p.result.artifact for p in candidates})
        return None, f"several parity results match {name} ({', '.join(paths)}): none joined"
    return None, None


def _unstable(stats: LatencyStats) -> tuple[str, ...]:
    """The stability rule (``validate.latency``) applied to one timing's statistics; () when they are incomplete."""
    from ...validate.latency import timing_stability

    return timing_stability(stats.to_dict()).reasons if stats.complete else ()


def _artifact_size_mib(r: BenchResult, source: Path) -> float | None:
    """The artifact's size: recorded in the result, else the file (relative paths: to the result's folder, or to a
    bundle's root), an OpenVINO IR with its .bin. None: not found here."""
    if r.artifact_bytes is not None:
        return float(r.artifact_bytes) / 2**20
    path = Path(r.artifact)
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


def _row(
    doc: Document, device: tuple[tuple[Any, ...] | None, str, str], parity: Document | None, **timed: Any
) -> ReportRow:
    """The one row builder: the fields every row takes from its result (and from the parity result joined on)."""
    r = doc.result
    artifact, ran, variant, tf32, shown = precision_of(r)
    p = parity.result if parity is not None else r if isinstance(r, ParityResult) else None
    verdict = parity_verdict(p) if isinstance(p, ParityResult) else (None, ())
    bench = r if isinstance(r, BenchResult) else None
    return ReportRow(
        arch=r.arch,
        num_classes=r.num_classes,
        input_size=bench.input_size if bench else r.static_size,  # type: ignore[union-attr]
        batch=bench.batch if bench else None,
        device=device[1],
        device_id=device[0],
        device_kind=device[2],
        runtime=r.runtime or "?",
        artifact=Path(r.artifact).name,
        artifact_precision=artifact,
        inference_precision=ran,
        variant=variant,
        tf32=tf32,
        precision=shown + timed.pop("shown_suffix", ""),
        miou_drop_points=p.miou_drop_points if isinstance(p, ParityResult) else None,
        agreement=p.pixel_agreement if isinstance(p, ParityResult) else None,
        parity=verdict[0],
        failed_gates=verdict[1],
        source=str(doc.path),
        **timed,
    )


def _bench_rows(
    b: Document, r: BenchResult, parities: list[Document], joined: set[int], labels: dict[Any, str]
) -> list[ReportRow]:
    ident, label = identity_of(r)
    labels.setdefault(ident, label)
    ran = precision_of(r)[1]
    threads = r.threads
    parity, why = _parity_for(r, ran, parities)
    if parity is not None:
        joined.add(id(parity))
    audit = r.precision_audit.shown if r.precision_audit else None
    rows = []
    for key, stats in r.timings().items():
        rows.append(
            _row(
                b,
                (ident, label, device_kind(r.device)),
                parity,
                shown_suffix=f", {threads} thread{'s' if threads != 1 else ''}" if threads is not None else "",
                timing=ASYNC_TIMING if stats.asynchronous else TIMINGS[key],  # OpenVINO --hint throughput
                p50_ms=float(stats.p50_ms),
                p99_ms=stats.p99_ms,
                throughput_ips=stats.throughput_ips,
                notes=(*((why,) if why else ()), *(f"device: {f}" for f in r.device_flags)),
                threads=threads,
                unstable=_unstable(stats),
                std_ms=stats.std_ms,
                peak_rss_mib=r.peak_rss_mib,
                model_mib=_artifact_size_mib(r, b.path),
                precision_audit=audit,
            )
        )
    return rows


def build_rows(documents: Iterable[Document | Result | Mapping[str, Any]]) -> tuple[list[ReportRow], list[str]]:
    """Table rows, sorted by model group, device and timing kind, with speed-ups inside each group; and the
    notes (footnote texts) the rows refer to."""
    docs = [as_document(d) for d in documents]
    parities = [d for d in docs if d.kind == "parity"]
    labels: dict[tuple[Any, ...], str] = {}
    joined: set[int] = set()
    raw = [
        row
        for b in docs
        if isinstance(b.result, BenchResult)
        for row in _bench_rows(b, b.result, parities, joined, labels)
    ]
    disambiguate(labels)
    raw = [replace(r, device=labels[r.device_id]) if r.device_id in labels else r for r in raw]
    rows = with_speedups(raw)
    for p in parities:
        if id(p) not in joined:
            kind = device_kind(p.result.device)  # type: ignore[union-attr]
            device = (None, f"{kind} (accuracy only: no bench result for this artifact)", kind)
            rows.append(_row(p, device, None, timing=None, p50_ms=None, p99_ms=None, throughput_ips=None))
    return _with_folders(rows), collect_notes(rows)


def _with_folders(rows: Sequence[ReportRow]) -> list[ReportRow]:
    """Where several results show the same artifact file name (a bundle's model.xml), the folder it is in (its
    target) before the name."""
    names: dict[str, set[str]] = {}
    for r in rows:
        names.setdefault(r.artifact, set()).add(r.source)
    return [
        replace(r, artifact=f"{Path(r.source).parent.name}/{r.artifact}")
        if len(names.get(r.artifact, ())) > 1 and r.source
        else r
        for r in rows
    ]
