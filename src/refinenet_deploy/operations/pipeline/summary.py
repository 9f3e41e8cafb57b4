"""The pipeline's final table: per target its status, p50, speed-up vs PyTorch on the same model, mIoU drop and
agreement. Speed-ups are only computed against a PyTorch run of the same model, input size and batch on the same
host and device kind; otherwise the cell says there is no baseline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

COLUMNS = ("target", "status", "p50 ms", "vs PyTorch", "mIoU drop pt", "agreement")


def _p50(bench: dict[str, Any] | None) -> float | None:
    return ((bench or {}).get("compute_only") or {}).get("p50_ms")


def _host(bench: dict[str, Any]) -> tuple[Any, ...]:
    """The device a result was measured on, by the report's rule (one rule for both tables)."""
    from ..report import device_identity

    return device_identity(bench.get("fingerprint"), str(bench.get("device") or "cpu"))[0]


def same_model(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("arch", "num_classes", "input_size", "batch")
    return all(a.get(k) == b.get(k) for k in keys) and _host(a) == _host(b)


def speedup(bench: dict[str, Any] | None, baselines: Sequence[dict[str, Any]]) -> tuple[float | None, str]:
    p50 = _p50(bench)
    if bench is None or p50 is None:
        return None, "—"
    for base in baselines:
        if same_model(bench, base) and _p50(base):
            return _p50(base) / p50, f"{_p50(base) / p50:.2f}x"
    return None, "no baseline"


def summary_rows(outcomes: Sequence[Any], baselines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for o in outcomes:
        parity = o.parity or {}
        p50 = _p50(o.bench)
        _, speed = speedup(o.bench, baselines) if o.bench else (None, "—")
        drop = parity.get("miou_drop_points")
        agreement = parity.get("pixel_agreement")
        predicted = o.predicted or {}
        if o.status == "pending on device" and predicted.get("miou_drop_points") is not None:
            over = " over the gate" if predicted.get("over_gate") else ""
            drop_cell = f"{predicted['miou_drop_points']:.3f} (CPU-predicted{over})"
        else:
            drop_cell = f"{drop:.3f}" if drop is not None else "—"
        rows.append(
            {
                "target": o.target.name,
                "status": o.status,
                "p50 ms": f"{p50:.2f}" if p50 is not None else "—",
                "vs PyTorch": speed,
                "mIoU drop pt": drop_cell,
                "agreement": f"{agreement * 100:.2f} %" if agreement is not None else "—",
                "reason": o.reason,
                "commands": o.commands,
                "predicted_over_gate": predicted.get("over_gate") or [],
            }
        )
    return rows


def summary_markdown(outcomes: Sequence[Any], baseline: dict[str, Any] | None, rel: Callable[[Any], str] = str) -> str:
    rows = summary_rows(outcomes, [baseline] if baseline else [])
    lines = [
        "# Deployment bundle",
        "",
        "Speed-up: against PyTorch FP32 on the same model, input size and batch on the same host and device "
        "(compute-only p50); 'no baseline' where there is none. mIoU drop and agreement: parity against the "
        "saved PyTorch reference.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    if baseline:
        base = _p50(baseline)
        size = "x".join(str(s) for s in baseline.get("input_size") or [])
        lines += [
            "",
            f"PyTorch baseline: {baseline.get('arch')} at {size} on {baseline.get('device')}, "
            f"p50 {base:.2f} ms (compute-only)."
            if base
            else "",
        ]
    notes = [r for r in rows if r["status"] != "done"]
    if notes:
        lines += [
            "",
            "## Not done here",
            "",
            "Pending targets: run these commands in the bundle folder on that device.",
            "",
        ]
        for r in notes:
            lines.append(f"- **{r['target']}**: {r['status']}" + (f" ({r['reason']})" if r["reason"] else ""))
            for why in r.get("predicted_over_gate") or []:
                lines.append(f"  - predicted on this CPU, already over the gate: {why}")
            for c in r["commands"] or []:
                lines.append(f"  - `{c}`")
    return "\n".join(lines) + "\n"
