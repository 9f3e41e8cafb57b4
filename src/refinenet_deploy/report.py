"""``make_report``: bench/parity JSON files -> Markdown or self-contained HTML, plus PNG charts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .errors import UsageError
from .validate.report import ReportRow, build_rows, render_charts, to_html, to_markdown


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
