"""The pipeline's final table: per target its status, p50, speed-ups vs PyTorch on the same model and device, mIoU
drop and agreement. Speed-ups are only computed against a PyTorch run of the same model, input size and batch on the
same host and device kind (``validate.speedup``, the report's device rule); otherwise the cell says there is no
baseline. Two columns: against PyTorch FP32 (strict: TF32 off on a GPU) and, on a GPU, against PyTorch at its best
there (fp16 replayed from a CUDA graph; ``capabilities.GPU_BASELINES``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...validate.speedup import p50_ms as _p50
from ...validate.speedup import speedup_of

COLUMNS = ("target", "status", "p50 ms", "vs PT fp32", "vs PT best", "mIoU drop pt", "agreement")


def _host(bench: dict[str, Any]) -> tuple[Any, ...]:
    """The device a result was measured on, by the report's rule (one rule for both tables)."""
    from ..report import device_identity

    return device_identity(bench.get("fingerprint"), str(bench.get("device") or "cpu"))[0]


def same_model(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("arch", "num_classes", "input_size", "batch")
    return all(a.get(k) == b.get(k) for k in keys) and _host(a) == _host(b)


def speedup(bench: dict[str, Any] | None, baselines: Sequence[dict[str, Any]]) -> tuple[float | None, str]:
    """Against the first baseline of the same model on the same device (the caller orders them by the rule)."""
    p50 = _p50(bench)
    if bench is None or p50 is None:
        return None, "—"
    for base in baselines:
        value = speedup_of(_p50(base), p50) if same_model(bench, base) else None
        if value is not None:
            unstable = not ((base.get("timing_stability") or {}).get("stable", True))
            return value, f"{value:.2f}x" + ("!" if unstable else "")
    return None, "no baseline"


def summary_rows(
    outcomes: Sequence[Any],
    baselines: Sequence[dict[str, Any]],
    gpu_baselines: Mapping[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """``baselines``: PyTorch FP32 results (the CPU host's); ``gpu_baselines``: the same-GPU ones by name
    (gpu-torch-fp32, gpu-torch-best)."""
    gpu_baselines = gpu_baselines or {}
    fp32 = [*baselines, *([gpu_baselines["gpu-torch-fp32"]] if "gpu-torch-fp32" in gpu_baselines else [])]
    best = [gpu_baselines["gpu-torch-best"]] if "gpu-torch-best" in gpu_baselines else []
    rows = []
    for o in outcomes:
        parity = o.parity or {}
        p50 = _p50(o.bench)
        _, speed = speedup(o.bench, fp32) if o.bench else (None, "—")
        gpu = o.target.device in ("gpu", "rtx", "jetson")
        _, speed_best = speedup(o.bench, best) if o.bench and gpu else (None, "—")
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
                "vs PT fp32": speed,
                "vs PT best": speed_best,
                "mIoU drop pt": drop_cell,
                "agreement": f"{agreement * 100:.2f} %" if agreement is not None else "—",
                "reason": o.reason,
                "commands": o.commands,
                "predicted_over_gate": predicted.get("over_gate") or [],
            }
        )
    return rows


def summary_markdown(
    outcomes: Sequence[Any],
    baseline: dict[str, Any] | None,
    rel: Callable[[Any], str] = str,
    gpu_baselines: Mapping[str, dict[str, Any]] | None = None,
) -> str:
    gpu_baselines = gpu_baselines or {}
    rows = summary_rows(outcomes, [baseline] if baseline else [], gpu_baselines)
    lines = [
        "# Deployment bundle",
        "",
        "Speed-up (compute-only p50), only against PyTorch on the same model, input size and batch on the same host "
        "and device: 'vs PT fp32' against PyTorch FP32 (TF32 off on a GPU), 'vs PT best' (GPU targets) against "
        "PyTorch's fastest configuration on that GPU (fp16 replayed from a CUDA graph); 'no baseline' where there "
        "is none. mIoU drop and agreement: parity against the saved PyTorch reference.",
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
    for name, doc in gpu_baselines.items():
        base, gpus = _p50(doc), (doc.get("runtime_config") or {}).get("gpu")
        if base:
            lines += ["", f"Same-GPU baseline {name} ({doc.get('label')}) on {gpus or 'the GPU'}: p50 {base:.2f} ms."]
    if any(str(r[c]).endswith("x!") for r in rows for c in ("vs PT fp32", "vs PT best")):
        lines += ["", "x! : against a baseline whose timing was flagged unstable (CV or p99/p50 over the limits)."]
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
