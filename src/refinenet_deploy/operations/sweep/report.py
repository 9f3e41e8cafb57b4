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
from ...results.sweep import CellMeasurement, SweepCell, SweepDocument, SweepPick, SweepRecommendation
from ...validate.pareto import TIE_RULE, SweepPoint, recommend

if TYPE_CHECKING:
    from .run import Sweep, SweepResult, SweepStep

SWEEP_FILE = "sweep.json"
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


def _cell(
    sw: Sweep, step: SweepStep, result: SweepResult, read: CellMeasurement | str, build: list[str] | None
) -> SweepCell:
    """A step's cell: the plan's facts, how its step ended, and its numbers when done (a cell file that does not
    read marks it failed, with why)."""
    target_name, size = step.id.split(":", 1)[1].split("@")
    from ..pipeline.config import TARGETS
    from .steps import reference_cell

    t = TARGETS.get(target_name) or reference_cell().target
    st = result.status.get(step.id)
    status, reason = (st.status, st.reason) if st else ("pending", None)
    measured = read if isinstance(read, CellMeasurement) and status == "done" else None
    if status == "done" and measured is None:
        status, reason = "failed", f"{read}; run the sweep again to re-measure it"
    return SweepCell(
        config=step.id.split(":", 1)[1],
        target=target_name,
        device=t.device,
        runtime=t.runtime,
        precision=str(t.precision),
        size=size,
        requested_size=_requested(sw, size),
        status=status,
        reason=reason,
        commands=list(st.commands) if st and st.status != "done" else [],
        artifact=sw.rel(Path(step.inputs["artifact"])),
        measured=measured,
        build_commands=build,
    )


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


def make_document(sw: Sweep, steps: list[SweepStep], result: SweepResult) -> SweepDocument:
    from .run import read_cell

    rows = []
    for s in steps:
        if s.id.startswith("cell:"):
            build = None if s.id.endswith("@full") else build_commands(steps, s.id, sw.rel)
            rows.append(_cell(sw, s, result, read_cell(s.outputs[0]), build))
    reference = next((r for r in rows if r.size == "full"), None)
    cells = [r for r in rows if r is not reference]
    ref_miou = reference.miou if reference is not None and reference.done else None
    points = [SweepPoint(c.config, c.device, c.measured.miou, c.measured.latency.p50_ms) for c in cells if c.measured]
    s = sw.settings
    recs = recommend(points, reference_miou=ref_miou, max_latency_ms=s.max_latency_ms, max_miou_drop=s.max_miou_drop)
    commands = {c.config: c.build_commands or [] for c in cells}
    return SweepDocument(
        tool_version=__version__,
        updated=utc_now(),
        command=sw.command,
        settings=sw.settings_record(),
        data_path=sw.rel(sw.val_dir),
        data_size=list(sw.data_size()),
        reference=reference,
        cells=cells,
        fronts={r.device: [p.config for p in r.front] for r in recs},
        recommendations=[_recommendation(r, commands, ref_miou) for r in recs],
        tie_rule=TIE_RULE,
        choices=dict(CHOICES),
        ran=list(result.ran),
        up_to_date=list(result.skipped),
    )


def _recommendation(rec: Any, commands: dict[str, list[str]], ref_miou: float | None) -> SweepRecommendation:
    def pick(p: Any) -> SweepPick | None:
        if p is None:
            return None
        point = p.point
        return SweepPick(
            rule=p.rule,
            config=point.config if point else None,
            reason=p.reason,
            miou=point.miou if point else None,
            p50_ms=point.latency_ms if point else None,
            miou_drop_pt=point.drop_pt(ref_miou) if point and ref_miou is not None else None,
            commands=commands.get(point.config, []) if point else [],
        )

    return SweepRecommendation(rec.device, pick(rec.best_within_latency), pick(rec.fastest_within_drop))


# --------------------------------------------------------------------------------------------- chart
def draw_front(doc: SweepDocument) -> bytes | None:
    """The mIoU-vs-latency chart, one colour per device, the front joined and ringed; None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (device, front) in enumerate(sorted(doc.fronts.items())):
        points = [
            (c.config, m.latency.p50_ms, m.miou * 100) for c in doc.cells if c.device == device and (m := c.measured)
        ]
        colour = f"C{i}"
        ax.scatter(
            [ms for _, ms, _ in points],
            [miou for _, _, miou in points],
            color=colour,
            alpha=0.45,
            label=f"{device}: configurations",
        )
        on = sorted((p for p in points if p[0] in front), key=lambda p: p[1])
        ax.plot(
            [ms for _, ms, _ in on],
            [miou for _, _, miou in on],
            "-o",
            color=colour,
            ms=9,
            mfc="none",
            mew=2,
            label=f"{device}: Pareto front",
        )
        for config, ms, miou in on:
            ax.annotate(config, (ms, miou), fontsize=7, xytext=(4, 4), textcoords="offset points")
    if doc.reference_miou is not None:
        ax.axhline(doc.reference_miou * 100, color="grey", ls="--", lw=1, label="PyTorch FP32, full resolution")
    budget = doc.settings.get("max_latency_ms")
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


def markdown(doc: SweepDocument, chart: str | None) -> str:
    lines = ["# Sweep: input size x precision x runtime", ""]
    ref, ref_miou = doc.reference, doc.reference_miou
    size = doc.data_size
    if ref is not None and ref.measured is not None:
        lines.append(
            f"Reference (PyTorch FP32 at the data's full resolution, {size[0]}x{size[1]}): mIoU "
            f"{ref.measured.miou * 100:.2f} %, p50 {ref.measured.latency.p50_ms:.2f} ms."
        )
    else:
        status, reason = (ref.status, ref.reason) if ref is not None else ("pending", None)
        lines.append(f"Reference (PyTorch FP32): {status} ({reason}).")
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
    front = doc.on_front()
    for c in doc.cells:
        m = c.measured
        if m is None:
            lines.append(f"| {c.config} | {c.status}: {c.reason} | | | | | | | |")
            continue
        drop = None if ref_miou is None else (ref_miou - m.miou) * 100
        lines.append(
            f"| {c.config} | done | {m.miou * 100:.2f} | {_fmt(drop, '.2f')} | {_p50(m)} | "
            f"{m.latency.p99_ms:.2f} | {m.model_bytes / 1e6:.2f} | {_memory(m)} | "
            f"{'yes' if c.config in front else ''} |"
        )
    if any(m.latency.stable is False for c in doc.cells if (m := c.measured)):
        lines += [
            "",
            "~ : timing flagged unstable (coefficient of variation or p99/p50 over the limits of "
            "validate.latency; the machine may have been under load).",
        ]
    notes = sorted({m.peak_memory for c in doc.cells if (m := c.measured) and m.peak_memory_mib is None})
    lines += ["", *(f"Peak memory {n}." for n in notes)] if notes else []
    pending = [c for c in doc.cells if c.status == "pending"]
    if pending:
        lines += ["", "## Pending on a device", "", "Run in the sweep folder, on the device:", "", "```"]
        lines += sorted({cmd for c in pending for cmd in c.commands}, key=lambda x: (x.startswith("rfdeploy sweep"), x))
        lines += ["```"]
    lines += ["", "## How the artifacts were reused", ""] + [f"- {k}: {v}" for k, v in doc.choices.items()]
    lines += ["", f"Ties: {doc.tie_rule}.", ""]
    return "\n".join(lines)


def _p50(m: CellMeasurement) -> str:
    return f"{m.latency.p50_ms:.2f}" + (" ~" if m.latency.stable is False else "")


def _memory(m: CellMeasurement) -> str:
    return "not measured" if m.peak_memory_mib is None else f"{m.peak_memory_mib:.0f} MiB"


def _rec_lines(doc: SweepDocument) -> list[str]:
    lines: list[str] = []
    for rec in doc.recommendations:
        for rule, p in rec.picks():
            if p is None:
                what = "--max-latency-ms" if rule == "best_within_latency" else "--max-miou-drop"
                lines.append(f"- {rec.device}: no {what} budget given")
                continue
            if p.config is None:
                lines.append(f"- {rec.device}, {p.rule}: **{p.reason}**")
                continue
            lines += [f"- {rec.device}, {p.rule}: **{p.config}** ({p.reason}). Build it:", "", "  ```"]
            lines += [f"  {c}" for c in p.commands] + ["  ```"]
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


def write_outputs(sw: Sweep, steps: list[SweepStep], result: SweepResult) -> tuple[SweepDocument, list[Path]]:
    doc = make_document(sw, steps, result)
    png = draw_front(doc)
    files = [doc.write(sw.p(SWEEP_FILE), write_json_atomic)]
    if png is not None:
        write_atomic(sw.p(CHART_FILE), lambda tmp: tmp.write_bytes(png))
        files.append(sw.p(CHART_FILE))
    md = markdown(doc, CHART_FILE if png is not None else None)
    write_atomic(sw.p("sweep.md"), lambda tmp: tmp.write_text(md))
    write_atomic(sw.p("sweep.html"), lambda tmp: tmp.write_text(html_page(md, png)))
    return doc, [*files, sw.p("sweep.md"), sw.p("sweep.html")]


__all__ = [
    "CHART_FILE",
    "SWEEP_FILE",
    "build_commands",
    "draw_front",
    "html_page",
    "make_document",
    "markdown",
    "write_outputs",
]
