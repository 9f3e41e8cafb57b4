"""Reporting: bench and parity results from any number of devices -> one table with charts (Markdown, or
self-contained HTML), and the Markdown of one parity result. One job per module:

| module | job |
|---|---|
| ``documents`` | inputs checked, non-result rfdeploy files skipped, results read as typed documents, header facts |
| ``rows`` | ``ReportRow``, ``build_rows``: one row per timing, parity joined on, the verdict recomputed |
| ``baselines`` | the PyTorch baseline of each row and its speed-up (``results.speedup_of``) |
| ``render`` | Markdown and HTML (the table, a bundle's summary, one parity result) |
| ``charts`` | latency bars and accuracy-vs-latency (matplotlib, the ``report`` extra) |
| ``write`` | ``write_report`` / ``write_reports``: outputs checked first, written atomically |

Inputs are checked before any work: every known non-result rfdeploy file (sidecars, calibration manifests, a
bundle's ``manifest.json``/``pipeline.json``, models, references, reports) is skipped with a note; anything else
that is not a bench or parity JSON this version reads is refused (exit 5) naming the file and the field."""

from __future__ import annotations

from ...results import device_identity, known_schema_versions, normalize_precision
from .baselines import ASYNC_TIMING, choose_baseline
from .charts import CHART_CAPTIONS, CHART_NAMES, RUNTIME_COLORS, chart_label, render_charts
from .documents import NON_RESULT_SUFFIXES, Document, non_result_kind, read_documents, summarize_inputs
from .render import HEADER, Report, markdown_to_html, parity_markdown, summary_page, to_html, to_markdown
from .rows import ReportRow, build_rows, parity_verdict, precision_of
from .write import REPORT_SUFFIXES, ReportResult, chart_paths, write_report, write_reports

__all__ = [
    "ASYNC_TIMING",
    "CHART_CAPTIONS",
    "CHART_NAMES",
    "HEADER",
    "NON_RESULT_SUFFIXES",
    "REPORT_SUFFIXES",
    "RUNTIME_COLORS",
    "Document",
    "Report",
    "ReportResult",
    "ReportRow",
    "build_rows",
    "chart_label",
    "chart_paths",
    "choose_baseline",
    "device_identity",
    "known_schema_versions",
    "markdown_to_html",
    "non_result_kind",
    "normalize_precision",
    "parity_markdown",
    "parity_verdict",
    "precision_of",
    "read_documents",
    "render_charts",
    "summarize_inputs",
    "summary_page",
    "to_html",
    "to_markdown",
    "write_report",
    "write_reports",
]
