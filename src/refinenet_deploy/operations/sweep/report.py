"""The sweep's outputs: ``sweep.json`` (every cell, the fronts, the picks), ``sweep.md`` and ``sweep.html`` with
the front chart (``front.png``, matplotlib, imported only here and only when drawing) and the recommendation with
the commands that build it. The verdicts are computed here from the numbers (``validate.pareto``), never stored
by a step."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import __version__
from ...artifacts import utc_now, write_atomic, write_json_atomic
from ...validate.pareto import TIE_RULE, SweepPoint, recommend
from .result import SWEEP_FILE, SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION

if TYPE_CHECKING:
    from .run import Sweep, SweepResult, SweepStep

CHART_FILE = "front.png"
CHOICES = {
    "onnx": "one dynamic-shape ONNX export, verified against PyTorch at every swept size; ONNX Runtime runs it at "
    "each size",
    "openvino": "one IR per precision converted from that export (INT8: NNCF calibrated once), reshaped to each "
    "size: the static IR measured 6-16 % faster than the dynamic one (benchmarks/sweep_openvino_shapes.py)",
    "tensorrt": "one engine per size (min = opt = max), the engine that would ship: a profile per size in one "
    "engine built as fast and only saved file size (17.0 vs 42.9 MB for 3 sizes, TensorRT-RTX on a CPU, "
    "benchmarks/sweep_trt_profiles.py); built and timed by 'rfdeploy sweep FOLDER --resume' on the device",
}


def _cell_row(sw: Sweep, step: SweepStep, result: SweepResult, doc: dict[str, Any] | None) -> dict[str, Any]:
    target_name, size = step.id.split(":", 1)[1].split("@")
    from ..pipeline.config import TARGETS
    from .steps import reference_cell

    t = TARGETS.get(target_name) or reference_cell().target
    st = result.status.get(step.id)
    row: dict[str, Any] = {
        "config": step.id.split(":", 1)[1],
        "target": target_name,
        "device": t.device,
        "runtime": t.runtime,
        "precision": str(t.precision),
        "size": size,
        "requested_size": _requested(sw, size),
        "status": st.status if st else "pending",
        "reason": st.reason if st else None,
        "commands": list(st.commands) if st and st.status != "done" else [],
        "artifact": sw.rel(Path(step.inputs["artifact"])),
    }
    if row["status"] == "done" and doc is not None:
        row.update({k: v for k, v in doc.items() if k != "cell"})
    elif row["status"] == "done":
        row.update(status="failed", reason="its result file is missing or unreadable; run the sweep again")
    return row


def _requested(sw: Sweep, size: str) -> list[str]:
    if size == "full":
        return ["full"]
    return [c.requested for c in sw.cells() if c.name.endswith("@" + size)][:1] or [size]


def build_commands(steps: list[SweepStep], cell_id: str, rel: Any = str) -> list[str]:
    """The commands that build a cell's artifact, in plan order (its builders' specs), then its benchmark."""
    by_id = {s.id: s for s in steps}
    wanted: set[str] = set()
    todo = list(by_id[cell_id].needs)
    while todo:
        sid = todo.pop()
        if sid in by_id and sid not in wanted:
            wanted.add(sid)
            todo += list(by_id[sid].needs)
    cmds = [c for s in steps if s.id in wanted for c in s.commands]
    cell = by_id[cell_id]
    size = cell.settings["size"]
    bench = f"rfdeploy bench {rel(Path(cell.inputs['artifact']))}"
    return [*cmds, f"{bench} --input-size {size[0]}x{size[1]}" if size else bench]


def make_document(sw: Sweep, steps: list[SweepStep], result: SweepResult) -> dict[str, Any]:
    from .run import _read_cell

    rows = [_cell_row(sw, s, result, _read_cell(s.outputs[0])) for s in steps if s.id.startswith("cell:")]
    reference = next((r for r in rows if r["size"] == "full"), None)
    cells = [r for r in rows if r is not reference]
    for r in cells:
        r["build_commands"] = build_commands(steps, "cell:" + r["config"], sw.rel)
    ref_miou = reference.get("miou") if reference and reference["status"] == "done" else None
    points = [
        SweepPoint(r["config"], r["device"], r["miou"], r["latency"]["p50_ms"])
        for r in cells
        if r["status"] == "done" and r.get("miou") is not None
    ]
    s = sw.settings
    recs = recommend(points, reference_miou=ref_miou, max_latency_ms=s.max_latency_ms, max_miou_drop=s.max_miou_drop)
    commands = {r["config"]: r["build_commands"] for r in cells}
    return {
        "schema": SWEEP_SCHEMA,
        "schema_version": SWEEP_SCHEMA_VERSION,
        "tool_version": __version__,
        "updated": utc_now(),
        "command": sw.command,
        "settings": sw.settings_record(),
        "data": {"path": sw.rel(sw.val_dir), "size": list(sw.data_size())},
        "reference": reference,
        "cells": cells,
        "fronts": {r.device: [p.config for p in r.front] for r in recs},
        "recommendations": [_rec_dict(r, commands, ref_miou) for r in recs],
        "tie_rule": TIE_RULE,
        "choices": CHOICES,
        "steps": {"ran": list(result.ran), "up_to_date": list(result.skipped)},
    }


def _rec_dict(rec: Any, commands: dict[str, list[str]], ref_miou: float | None) -> dict[str, Any]:
    def pick(p: Any) -> dict[str, Any] | None:
        if p is None:
            return None
        cfg = p.point.config if p.point else None
        return {
            "rule": p.rule,
            "config": cfg,
            "reason": p.reason,
            "miou": p.point.miou if p.point else None,
            "p50_ms": p.point.latency_ms if p.point else None,
            "miou_drop_pt": p.point.drop_pt(ref_miou) if p.point and ref_miou is not None else None,
            "commands": commands.get(cfg, []) if cfg else [],
        }

    return {
        "device": rec.device,
        "best_within_latency": pick(rec.best_within_latency),
        "fastest_within_drop": pick(rec.fastest_within_drop),
    }


# --------------------------------------------------------------------------------------------- chart
def draw_front(doc: dict[str, Any]) -> bytes | None:
    """The mIoU-vs-latency chart, one colour per device, the front joined and ringed; None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (device, front) in enumerate(sorted(doc["fronts"].items())):
        rows = [c for c in doc["cells"] if c["device"] == device and c["status"] == "done"]
        colour = f"C{i}"
        ax.scatter(
            [c["latency"]["p50_ms"] for c in rows],
            [c["miou"] * 100 for c in rows],
            color=colour,
            alpha=0.45,
            label=f"{device}: configurations",
        )
        on = sorted((c for c in rows if c["config"] in front), key=lambda c: c["latency"]["p50_ms"])
        ax.plot(
            [c["latency"]["p50_ms"] for c in on],
            [c["miou"] * 100 for c in on],
            "-o",
            color=colour,
            ms=9,
            mfc="none",
            mew=2,
            label=f"{device}: Pareto front",
        )
        for c in on:
            ax.annotate(
                c["config"],
                (c["latency"]["p50_ms"], c["miou"] * 100),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
    ref = doc.get("reference") or {}
    if ref.get("status") == "done":
        ax.axhline(ref["miou"] * 100, color="grey", ls="--", lw=1, label="PyTorch FP32, full resolution")
    budget = doc["settings"].get("max_latency_ms")
    if budget:
        ax.axvline(budget, color="red", ls=":", lw=1, label=f"latency budget {budget:g} ms")
    ax.set_xlabel("latency p50, ms (compute-only, steady state)")
    ax.set_ylabel("mIoU, % (ground truth at label resolution)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------- markdown / html
def _fmt(v: Any, spec: str, none: str = "—") -> str:
    return none if v is None else format(v, spec)


def markdown(doc: dict[str, Any], chart: str | None) -> str:
    lines = ["# Sweep: input size x precision x runtime", ""]
    ref = doc.get("reference") or {}
    size = doc["data"]["size"]
    if ref.get("status") == "done":
        lines.append(
            f"Reference (PyTorch FP32 at the data's full resolution, {size[0]}x{size[1]}): mIoU "
            f"{ref['miou'] * 100:.2f} %, p50 {ref['latency']['p50_ms']:.2f} ms."
        )
    else:
        lines.append(f"Reference (PyTorch FP32): {ref.get('status', 'pending')} ({ref.get('reason')}).")
    lines += [
        "",
        "mIoU is scored against the ground truth at each label's own resolution (the prediction upsampled "
        "back, bilinear, as parity does). Latency: compute-only p50/p99 under the steady-state protocol.",
        "",
    ]
    lines += ["## Recommendation", ""] + _rec_lines(doc) + [""]
    lines += ["## Front", ""] + (
        [f"![Pareto front]({chart})", ""]
        if chart
        else ["(no chart: matplotlib is not installed; pip install 'refinenet-deploy[report]')", ""]
    )
    lines += [
        "| config | status | mIoU % | drop pt | p50 ms | p99 ms | MB | peak memory | front |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    ref_miou = ref.get("miou") if ref.get("status") == "done" else None
    front = {c for f in doc["fronts"].values() for c in f}
    for c in doc["cells"]:
        if c["status"] != "done":
            lines.append(f"| {c['config']} | {c['status']}: {c['reason']} | | | | | | | |")
            continue
        drop = None if ref_miou is None else (ref_miou - c["miou"]) * 100
        lines.append(
            f"| {c['config']} | done | {c['miou'] * 100:.2f} | {_fmt(drop, '.2f')} | {_p50(c)} | "
            f"{c['latency']['p99_ms']:.2f} | {c['model_bytes'] / 1e6:.2f} | {_memory(c)} | "
            f"{'yes' if c['config'] in front else ''} |"
        )
    if any(c["status"] == "done" and c["latency"].get("stable") is False for c in doc["cells"]):
        lines += [
            "",
            "~ : timing flagged unstable (coefficient of variation or p99/p50 over the limits of "
            "validate.latency; the machine may have been under load).",
        ]
    notes = sorted({c["peak_memory"] for c in doc["cells"] if c["status"] == "done" and c["peak_memory_mib"] is None})
    lines += ["", *(f"Peak memory {n}." for n in notes)] if notes else []
    pending = [c for c in doc["cells"] if c["status"] == "pending"]
    if pending:
        lines += ["", "## Pending on a device", "", "Run in the sweep folder, on the device:", "", "```"]
        lines += sorted(
            {cmd for c in pending for cmd in c["commands"]}, key=lambda x: (x.startswith("rfdeploy sweep"), x)
        )
        lines += ["```"]
    lines += ["", "## How the artifacts were reused", ""] + [f"- {k}: {v}" for k, v in doc["choices"].items()]
    lines += ["", f"Ties: {doc['tie_rule']}.", ""]
    return "\n".join(lines)


def _p50(c: dict[str, Any]) -> str:
    return f"{c['latency']['p50_ms']:.2f}" + (" ~" if c["latency"].get("stable") is False else "")


def _memory(c: dict[str, Any]) -> str:
    return "not measured" if c["peak_memory_mib"] is None else f"{c['peak_memory_mib']:.0f} MiB"


def _rec_lines(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for rec in doc["recommendations"]:
        for key in ("best_within_latency", "fastest_within_drop"):
            p = rec[key]
            if p is None:
                what = "--max-latency-ms" if key == "best_within_latency" else "--max-miou-drop"
                lines.append(f"- {rec['device']}: no {what} budget given")
                continue
            if p["config"] is None:
                lines.append(f"- {rec['device']}, {p['rule']}: **{p['reason']}**")
                continue
            lines += [f"- {rec['device']}, {p['rule']}: **{p['config']}** ({p['reason']}). Build it:", "", "  ```"]
            lines += [f"  {c}" for c in p["commands"]] + ["  ```"]
    return lines or ["No configuration was measured."]


def html_page(md_text: str, chart_png: bytes | None) -> str:
    """A self-contained page: the Markdown's text in <pre> blocks per section, the chart inlined."""
    body = []
    for block in md_text.split("\n\n"):
        if block.startswith("![") and chart_png:
            data = base64.b64encode(chart_png).decode()
            body.append(f'<img alt="Pareto front" src="data:image/png;base64,{data}">')
        elif block.startswith("#"):
            level = len(block) - len(block.lstrip("#"))
            first, _, rest = block.partition("\n")
            body.append(f"<h{level}>{html.escape(first.lstrip('# '))}</h{level}>")
            if rest:
                body.append(f"<pre>{html.escape(rest)}</pre>")
        else:
            body.append(f"<pre>{html.escape(block)}</pre>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>rfdeploy sweep</title><style>"
        "body{font-family:sans-serif;max-width:72em;margin:auto}pre{white-space:pre-wrap}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def write_outputs(sw: Sweep, steps: list[SweepStep], result: SweepResult) -> tuple[dict[str, Any], list[Path]]:
    doc = make_document(sw, steps, result)
    png = draw_front(doc)
    files = [write_json_atomic(sw.p(SWEEP_FILE), doc)]
    if png is not None:
        write_atomic(sw.p(CHART_FILE), lambda tmp: tmp.write_bytes(png))
        files.append(sw.p(CHART_FILE))
    md = markdown(doc, CHART_FILE if png is not None else None)
    write_atomic(sw.p("sweep.md"), lambda tmp: tmp.write_text(md))
    write_atomic(sw.p("sweep.html"), lambda tmp: tmp.write_text(html_page(md, png)))
    return doc, [*files, sw.p("sweep.md"), sw.p("sweep.html")]


__all__ = ["CHART_FILE", "build_commands", "draw_front", "html_page", "make_document", "markdown", "write_outputs"]
