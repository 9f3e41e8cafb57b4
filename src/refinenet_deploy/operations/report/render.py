"""The report as Markdown or as self-contained HTML (charts embedded as base64 PNG, so it opens offline; the Markdown
links PNGs written beside it), the HTML of a Markdown summary, and the Markdown of one parity result."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...results import ParityResult, normalize_precision
from .charts import CHART_CAPTIONS
from .rows import ReportRow, parity_verdict


@dataclass
class Report:
    """The table, its footnotes and the header facts found in the inputs."""

    rows: list[ReportRow]
    notes: list[str]
    header: dict[str, list[str]] = field(default_factory=dict)
    charts_skipped: str | None = None
    preamble: str = ""  # Markdown shown first (a pipeline bundle's summary and pending commands)


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
        r.precision + (f"; {r.precision_audit}" if r.precision_audit else ""),
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


def parity_markdown(report: ParityResult | Mapping[str, Any]) -> str:
    """A Markdown rendering of a parity result (typed, or its JSON object)."""
    r = report if isinstance(report, ParityResult) else ParityResult.from_dict(report)

    def pct(v: float | None, digits: int = 2) -> str:
        return "n/a" if v is None else f"{v * 100:.{digits}f} %"

    shown, reasons = parity_verdict(r)
    status = {"pass": "PASSED", "fail": "FAILED"}.get(shown, "NOT EVALUATED") + (
        ": " + "; ".join(reasons) if reasons else ""
    )
    lines = [
        f"# Parity: `{Path(r.artifact).name}` vs PyTorch `{Path(str(r.checkpoint)).name}`",
        "",
        f"**{status}** ({normalize_precision(r.precision)} gates: |mIoU drop| <= "
        f"{r.gates.max_miou_drop} pt, pixel agreement >= {r.gates.min_agreement * 100:.2f} %)",
        "",
        f"{r.num_images} images from `{r.data}`, runtime `{r.runtime}`"
        + (f" (ran in {r.ran})" if r.ran else "")
        + f", TTA scales {r.tta_scales}, flip {r.tta_flip}.",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| PyTorch mIoU | {pct(r.reference_miou)} |",
        f"| backend mIoU | {pct(r.backend_miou)} |",
        f"| mIoU drop (pt) | {_fmt(r.miou_drop_points, '.3f')} |",
        f"| agreement mIoU (backend vs PyTorch) | {pct(r.agreement_miou)} |",
        f"| pixel agreement | {pct(r.pixel_agreement, 3)} |",
        f"| boundary agreement ({r.boundary_width_px} px band) | {pct(r.boundary_agreement, 3)} |",
        f"| logit max abs error | {_fmt(r.logit_max_abs_error)} |",
        f"| logit mean abs error | {_fmt(r.logit_mean_abs_error)} |",
        "",
        "| class | PyTorch IoU | backend IoU | drop (pt) | agreement IoU |",
        "|---|---:|---:|---:|---:|",
    ]
    for c in r.per_class or []:
        drop = "n/a" if c["drop_points"] is None else f"{c['drop_points']:.2f}"
        lines.append(
            f"| {c['class']} | {pct(c['reference_iou'])} | {pct(c['backend_iou'])} | {drop} | "
            f"{pct(c['agreement_iou'])} |"
        )
    if r.worst:
        lines += ["", "Lowest agreement: " + ", ".join(f"{w['name']} ({w['pixel_agreement']:.2%})" for w in r.worst)]
    return "\n".join(lines) + "\n"


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "n/a" if v is None else format(v, spec)
