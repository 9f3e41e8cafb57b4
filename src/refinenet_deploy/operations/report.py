"""Reporting, in one place: bench and parity JSON from any number of devices -> one table with charts
(Markdown, or self-contained HTML), and the Markdown rendering of one parity result.

Rows are device x runtime x precision (one per bench file); parity results join on the artifact's file
name. Speed-up is against the PyTorch (torch runtime) row of the same device. The HTML is self-contained
(charts embedded as base64 PNG), so it opens offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import UsageError


@dataclass(frozen=True)
class ReportRow:
    device: str
    artifact: str
    runtime: str
    precision: str
    p50_ms: float | None
    p99_ms: float | None
    fps: float | None
    speedup: float | None
    miou_drop_points: float | None
    agreement: float | None


def device_label(fp: dict[str, Any], device: str) -> str:
    jetson = fp.get("jetson") or {}
    if jetson.get("model"):
        release = (jetson.get("release") or {}).get("jetpack")
        return f"{jetson['model']}" + (f" (JetPack {release})" if release else "")
    if device == "gpu" and fp.get("gpus"):
        return str(fp["gpus"][0])
    cores = fp.get("cpu_affinity") or fp.get("cpu_count")
    return f"{fp.get('cpu', 'CPU')} ({cores} cores)" if cores else str(fp.get("cpu", "CPU"))


def build_rows(documents: Iterable[dict[str, Any]]) -> list[ReportRow]:
    benches, parities = [], {}
    for doc in documents:
        schema = doc.get("schema")
        if schema == "refinenet-deploy/bench":
            benches.append(doc)
        elif schema == "refinenet-deploy/parity":
            parities[Path(doc["artifact"]).name] = doc
        else:
            raise UsageError(f"not a bench or parity JSON (schema {schema!r}). Pass files written by --json")
    baseline: dict[str, float] = {}
    for b in benches:
        if b["runtime"] == "torch":
            baseline[device_label(b["fingerprint"], b["device"])] = b["compute_only"]["p50_ms"]
    rows, used = [], set()
    for b in benches:
        dev = device_label(b["fingerprint"], b["device"])
        name = Path(b["artifact"]).name
        par = parities.get(name)
        used.add(name)
        p50 = b["compute_only"]["p50_ms"]
        precision = b.get("runtime_precision") or b.get("precision") or "fp32"
        rows.append(
            ReportRow(
                dev,
                name,
                b["runtime"],
                precision,
                p50,
                b["compute_only"]["p99_ms"],
                b["compute_only"]["throughput_ips"],
                baseline[dev] / p50 if dev in baseline and p50 else None,
                par.get("miou_drop_points") if par else None,
                par.get("pixel_agreement") if par else None,
            )
        )
    for name, par in parities.items():
        if name not in used:
            rows.append(
                ReportRow(
                    "(accuracy only)",
                    name,
                    par.get("runtime", "?"),
                    par.get("precision", "?"),
                    None,
                    None,
                    None,
                    None,
                    par.get("miou_drop_points"),
                    par.get("pixel_agreement"),
                )
            )
    return sorted(rows, key=lambda r: (r.device, r.p50_ms if r.p50_ms is not None else float("inf")))


HEADER = (
    "device",
    "artifact",
    "runtime",
    "precision",
    "p50 ms",
    "p99 ms",
    "FPS",
    "speed-up vs PyTorch",
    "mIoU drop (pt)",
    "pixel agreement",
)


def _cells(r: ReportRow) -> list[str]:
    def f(v: float | None, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    return [
        r.device,
        r.artifact,
        r.runtime,
        r.precision,
        f(r.p50_ms, ".2f"),
        f(r.p99_ms, ".2f"),
        f(r.fps, ".1f"),
        "n/a" if r.speedup is None else f"{r.speedup:.2f}x",
        f(r.miou_drop_points, ".3f"),
        "n/a" if r.agreement is None else f"{r.agreement:.4%}",
    ]


def to_markdown(rows: list[ReportRow], charts: dict[str, str] | None = None) -> str:
    lines = ["# refinenet-deploy report", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    for title, path in (charts or {}).items():
        lines += ["", f"![{title}]({path})"]
    return "\n".join(lines) + "\n"


def render_charts(rows: list[ReportRow]) -> dict[str, bytes]:
    """PNG bytes: latency by precision per device, and accuracy (mIoU drop) vs latency."""
    matplotlib = require("matplotlib", extra="report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = {}
    timed = [r for r in rows if r.p50_ms is not None]
    if timed:
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.4 * len(timed)))
        labels = [f"{r.device[:28]} | {r.runtime} {r.precision}" for r in timed]
        ax.barh(range(len(timed)), [r.p50_ms for r in timed], color="#4c72b0")
        ax.set_yticks(range(len(timed)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("p50 latency (ms), compute-only")
        ax.set_title("Latency by precision per device")
        fig.tight_layout()
        charts["latency"] = _png(fig)
        plt.close(fig)
    both = [r for r in timed if r.miou_drop_points is not None]
    if both:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter([r.p50_ms for r in both], [r.miou_drop_points for r in both], color="#dd8452")
        for r in both:
            ax.annotate(f"{r.runtime} {r.precision}", (r.p50_ms, r.miou_drop_points), fontsize=7)
        ax.set_xlabel("p50 latency (ms)")
        ax.set_ylabel("mIoU drop vs PyTorch (points)")
        ax.set_title("Accuracy vs latency")
        fig.tight_layout()
        charts["accuracy_vs_latency"] = _png(fig)
        plt.close(fig)
    return charts


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def to_html(rows: list[ReportRow], charts: dict[str, bytes]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>" for r in rows)
    imgs = "".join(
        f'<figure><img alt="{html.escape(k)}" src="data:image/png;base64,'
        f'{base64.b64encode(v).decode()}"><figcaption>{html.escape(k)}</figcaption></figure>'
        for k, v in charts.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>refinenet-deploy report</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}"
        "</style></head><body><h1>refinenet-deploy report</h1>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{imgs}</body></html>\n"
    )


def make_report(inputs: Sequence[str | Path], output: str | Path) -> tuple[Path, list[ReportRow], list[Path]]:
    output = Path(output)
    if output.suffix not in (".md", ".html"):
        raise UsageError(f"report must end in .md or .html: {output}. Pass -o report.html")
    if not inputs:
        raise UsageError("no input JSON files. Pass bench/parity files written with --json")
    docs = []
    for path in inputs:
        try:
            docs.append(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}. Pass JSON files written by bench/parity --json") from exc
    rows = build_rows(docs)
    charts = render_charts(rows)
    chart_paths = []
    for name, png in charts.items():
        p = output.with_name(f"{output.stem}_{name}.png")
        p.write_bytes(png)
        chart_paths.append(p)
    if output.suffix == ".html":
        output.write_text(to_html(rows, charts))
    else:
        output.write_text(to_markdown(rows, {p.stem: p.name for p in chart_paths}))
    return output, rows, chart_paths


def parity_markdown(report: dict[str, Any]) -> str:
    """A Markdown rendering of the parity JSON."""

    def pct(v: float | None, digits: int = 2) -> str:
        return "n/a" if v is None else f"{v * 100:.{digits}f}"

    status = "PASSED" if report["passed"] else "FAILED: " + "; ".join(report["failed_gates"])
    lines = [
        f"# Parity: `{Path(report['artifact']).name}` vs PyTorch `{Path(report['checkpoint']).name}`",
        "",
        f"**{status}** ({report['precision']} gates: |mIoU drop| <= {report['gates']['max_miou_drop']} pt, "
        f"pixel agreement >= {report['gates']['min_agreement'] * 100:.2f} %)",
        "",
        f"{report['num_images']} images from `{report['data']}`, runtime `{report['runtime']}`"
        + (f" (ran in {report['runtime_precision']})" if report.get("runtime_precision") else "")
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


def write_parity_report(
    result: dict[str, Any], *, json_out: str | Path | None = None, markdown_out: str | Path | None = None
) -> list[Path]:
    """Write a parity result as JSON and/or Markdown; returns the files written."""
    written = []
    if json_out is not None:
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n")
        written.append(Path(json_out))
    if markdown_out is not None:
        Path(markdown_out).write_text(parity_markdown(result))
        written.append(Path(markdown_out))
    return written
