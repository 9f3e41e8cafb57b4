"""The pipeline's final table: per target its status, p50, speed-ups vs PyTorch on the same model and device, mIoU
drop and agreement. Speed-ups are only computed against a PyTorch run of the same model, input size and batch on the
same host and device kind (``results.speedup_of``, the report's device rule); otherwise the cell says there is no
baseline. Two columns: against PyTorch FP32 (strict: TF32 off on a GPU) and, on a GPU, against PyTorch at its best
there (fp16 replayed from a CUDA graph; ``capabilities.GPU_BASELINES``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...results.bench import BenchResult, speedup_of
from ...results.device import device_identity

COLUMNS = ("target", "status", "p50 ms", "vs PT fp32", "vs PT best", "mIoU drop pt", "agreement")


def _host(bench: BenchResult) -> tuple[Any, ...]:
    """The device a result was measured on, by the report's rule (one rule for both tables)."""
    return device_identity(bench.fingerprint, bench.device or "cpu")[0]


def same_model(a: BenchResult, b: BenchResult) -> bool:
    keys = ("arch", "num_classes", "input_size", "batch")
    return all(getattr(a, k) == getattr(b, k) for k in keys) and _host(a) == _host(b)


def speedup(bench: BenchResult | None, baselines: Sequence[BenchResult]) -> tuple[float | None, str]:
    """Against the first baseline of the same model on the same device (the caller orders them by the rule)."""
    if bench is None:
        return None, "—"
    for base in baselines:
        value = speedup_of(base.p50_ms, bench.p50_ms) if same_model(bench, base) else None
        if value is not None:
            unstable = not base.stable
            return value, f"{value:.2f}x" + ("!" if unstable else "")
    return None, "no baseline"


def summary_rows(
    outcomes: Sequence[Any],
    baselines: Sequence[BenchResult],
    gpu_baselines: Mapping[str, BenchResult] | None = None,
) -> list[dict[str, Any]]:
    """``baselines``: PyTorch FP32 results (the CPU host's); ``gpu_baselines``: the same-GPU ones by name
    (gpu-torch-fp32, gpu-torch-best)."""
    gpu_baselines = gpu_baselines or {}
    fp32 = [*baselines, *([gpu_baselines["gpu-torch-fp32"]] if "gpu-torch-fp32" in gpu_baselines else [])]
    best = [gpu_baselines["gpu-torch-best"]] if "gpu-torch-best" in gpu_baselines else []
    rows = []
    for o in outcomes:
        parity, bench = o.parity, o.bench
        p50 = bench.p50_ms if bench is not None else None
        _, speed = speedup(bench, fp32)
        gpu = o.target.device in ("gpu", "rtx", "jetson")
        _, speed_best = speedup(bench, best) if gpu else (None, "—")
        drop = parity.miou_drop_points if parity is not None else None
        agreement = parity.pixel_agreement if parity is not None else None
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
    baseline: BenchResult | None,
    rel: Callable[[Any], str] = str,
    gpu_baselines: Mapping[str, BenchResult] | None = None,
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
    if baseline is not None:
        size = "x".join(str(s) for s in baseline.input_size or [])
        lines += [
            "",
            f"PyTorch baseline: {baseline.arch} at {size} on {baseline.device}, "
            f"p50 {baseline.p50_ms:.2f} ms (compute-only).",
        ]
    for name, gpu_doc in gpu_baselines.items():
        where = gpu_doc.gpus or "the GPU"
        lines += ["", f"Same-GPU baseline {name} ({gpu_doc.label}) on {where}: p50 {gpu_doc.p50_ms:.2f} ms."]
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
