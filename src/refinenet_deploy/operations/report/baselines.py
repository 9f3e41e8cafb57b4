"""Speed-ups inside each comparable group. Rows are grouped by model (architecture and classes), input size and
batch; inside a group, the speed-up of a row is against that group's PyTorch row **on the same device** (host/GPU
fingerprint + device kind) and the same timing kind. The baseline is the strict PyTorch fp32 row (TF32 off) when
there is one; otherwise the row used is named in a footnote, and a row with no PyTorch row beside it says so instead
of borrowing one. The ratio itself is ``results.speedup_of`` (the one rule)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...results import TIMINGS, speedup_of

if TYPE_CHECKING:
    from .rows import ReportRow

# requests kept in flight (OpenVINO throughput hint): p50 is one request's latency under load, not comparable
# with a synchronous call, so it is a timing kind of its own
ASYNC_TIMING = "async throughput"


def disambiguate(labels: dict[tuple[Any, ...], str]) -> None:
    """Two different devices with the same label (same CPU model, other ISA or host) get a short tag each."""
    by_label: dict[str, list[tuple[Any, ...]]] = {}
    for ident, label in labels.items():
        by_label.setdefault(label, []).append(ident)
    for label, idents in by_label.items():
        if len(idents) > 1:
            for ident in idents:
                tag = hashlib.sha256(repr(ident).encode()).hexdigest()[:6]
                labels[ident] = f"{label} [host {tag}]"


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


def _no_baseline(r: ReportRow, torch_rows: Sequence[ReportRow]) -> str | None:
    """Why ``r`` has no speed-up, or None when it has a PyTorch row to compare with."""
    if r.group is None:
        missing = "model (arch)" if not r.arch else "input size"
        return f"no PyTorch baseline: the bench JSON does not record the {missing}"
    if torch_rows:
        return None
    if r.timing == ASYNC_TIMING:
        return (
            "no PyTorch baseline: an asynchronous throughput run (requests in flight) has no synchronous "
            "PyTorch counterpart; compare its img/s"
        )
    return (
        "no PyTorch baseline: no PyTorch result with the same model, input size, batch and timing kind on this device"
    )


def with_speedups(rows: list[ReportRow]) -> list[ReportRow]:
    """Every row with its speed-up (or the note saying why it has none), sorted for the table."""
    groups: dict[tuple[Any, ...], list[ReportRow]] = {}
    for r in rows:
        if r.group is not None:
            groups.setdefault((r.group, r.device_id, r.timing), []).append(r)
    out = []
    for r in rows:
        notes = r.notes
        if r.unstable:
            notes = (*notes, f"unstable timing: {'; '.join(r.unstable)} (machine under load?)")
        peers = groups.get((r.group, r.device_id, r.timing), []) if r.group is not None else []
        torch_rows = [t for t in peers if t.runtime == "torch"]
        why = _no_baseline(r, torch_rows)
        if why is not None:
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
    return sorted(out, key=_order)


def _order(r: ReportRow) -> tuple[Any, ...]:
    timing_order = [*TIMINGS.values(), ASYNC_TIMING]
    return (
        r.group is None,
        (r.group[0], r.group[1] or 0, r.group[2], r.group[3]) if r.group else ("", 0, (0, 0), 0),
        r.device,
        timing_order.index(r.timing) if r.timing in timing_order else 9,
        r.runtime != "torch",
        r.p50_ms if r.p50_ms is not None else float("inf"),
    )


def collect_notes(rows: Sequence[ReportRow]) -> list[str]:
    notes: list[str] = []
    for r in rows:
        for n in r.notes:
            if n not in notes:
                notes.append(n)
    return notes
