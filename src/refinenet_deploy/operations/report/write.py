"""Writing a report: the output checked before any work, the inputs read and checked, the table and the charts
built, and the report (and, for Markdown, its PNG charts) written atomically; an earlier report's charts that no
longer match are removed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...artifacts import check_output_path, ensure_parent, probe_output, remove_created, write_atomic
from ...errors import DataError, MissingDependencyError, UsageError
from ..localize.chart import localize_documents, sqnr_chart
from . import charts
from .charts import CHART_NAMES
from .documents import read_documents, summarize_inputs
from .render import Report, to_html, to_markdown
from .rows import ReportRow, build_rows

REPORT_SUFFIXES = (".md", ".html")


@dataclass
class ReportResult:
    """What ``write_report`` did: the report, the chart files beside it, every file written, and the notes
    (skipped sidecars, skipped charts) the CLI shows."""

    output: Path
    rows: list[ReportRow]
    charts: list[Path]
    written: list[Path]
    skipped: list[str]
    charts_skipped: str | None


def chart_paths(output: Path) -> list[Path]:
    """Where the PNG charts of a Markdown report go (an HTML report embeds them and writes none)."""
    return [output.with_name(f"{output.stem}_{name}.png") for name in CHART_NAMES] if output.suffix == ".md" else []


def write_report(inputs: Sequence[str | Path], output: str | Path, *, preamble: str = "") -> ReportResult:
    """Check ``output`` (before any work), read and check ``inputs``, build the table and the charts, and write
    the report (and, for Markdown, its PNG charts) atomically. Raises UsageError (exit 2) for a bad output or
    no inputs, DataError (exit 5) for an input that is not a bench/parity result this version reads (or only
    sidecars). ``preamble``: Markdown shown before the table (in HTML too): a pipeline bundle's summary."""
    return write_reports(inputs, [output], preamble=preamble)[0]


def write_reports(
    inputs: Sequence[str | Path], outputs: Sequence[str | Path], *, preamble: str = ""
) -> list[ReportResult]:
    """``write_report`` to several outputs (a pipeline's ``report.md`` and ``report.html``): every output checked
    first, the inputs read and the table and charts built once, then each written; on a failure none is left."""
    paths = [Path(o) for o in outputs]
    if not inputs:
        raise UsageError("no input JSON files. Pass bench/parity files written with --json")
    for output in paths:
        _check_output(output, inputs)
    docs, skipped = read_documents(inputs)
    if not docs:
        names = ", ".join(str(Path(i)) for i in inputs)
        raise DataError(
            f"no bench or parity result among the inputs: {names} (artifact sidecars only)",
            hint="pass the files written by 'rfdeploy bench --json' or 'parity --json'",
        )
    rows, notes = build_rows(docs)
    report = Report(rows, notes, summarize_inputs(docs), preamble=preamble)
    try:
        images = charts.render_charts(rows)
        localized = localize_documents(d.result.to_dict() for d in docs if d.kind == "parity")
        if localized:  # parity --localize results: SQNR along the depth, one line per artifact
            images["sqnr"] = sqnr_chart(localized)
    except MissingDependencyError:
        images = {}
        report.charts_skipped = "matplotlib is not installed (pip install 'refinenet-deploy[report]')"
    results: list[ReportResult] = []
    try:
        for output in paths:
            written, chart_files = _write_one(report, images, output)
            results.append(ReportResult(output, rows, chart_files, written, skipped, report.charts_skipped))
    except BaseException:
        for done in results:
            for path in done.written:
                path.unlink(missing_ok=True)
        raise
    return results


def _check_output(output: Path, inputs: Sequence[str | Path]) -> None:
    if output.suffix not in REPORT_SUFFIXES:
        raise UsageError(f"report must end in .md or .html: {output}. Pass -o report.html")
    check_output_path(output, REPORT_SUFFIXES, inputs=list(inputs), what="-o")
    pngs = chart_paths(output)
    if pngs:
        probe_output(pngs[0], inputs=list(inputs), what="-o (chart)", companions=pngs[1:])


def _write_one(report: Report, images: dict[str, bytes], output: Path) -> tuple[list[Path], list[Path]]:
    """One report file (and, for Markdown, its charts), atomically: (every file written, the chart files)."""
    written: list[Path] = []
    chart_files: list[Path] = []
    created = ensure_parent(output)
    try:
        for name, png in images.items() if output.suffix == ".md" else ():  # HTML: embedded, no files
            path = output.with_name(f"{output.stem}_{name}.png")
            write_atomic(path, lambda tmp, png=png: tmp.write_bytes(png))
            written.append(path)
            chart_files.append(path)
        text = (
            to_html(report, images)
            if output.suffix == ".html"
            else to_markdown(report, {p.stem: p.name for p in chart_files})
        )
        write_atomic(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        written.append(output)
        for old in set(chart_paths(output)) - set(chart_files):  # an earlier report's charts: no longer true
            old.unlink(missing_ok=True)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        remove_created(created)
        raise
    return written, chart_files
