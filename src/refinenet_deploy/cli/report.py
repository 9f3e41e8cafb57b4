"""``rfdeploy report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app, emit_json, err, handle_errors, out
from .options import JsonOut


# --------------------------------------------------------------------------------------------- report
@app.command("report")
@handle_errors
def report_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="bench and parity JSON files, from any devices.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="report.md (+ PNG charts beside it) or report.html (self-contained).")
    ],
    as_json: JsonOut = None,
) -> None:
    """One table across devices: p50/p99 (ms), throughput (img/s), speed-up against the PyTorch row of the same
    model, input size, batch and device, mIoU drop, pixel agreement and parity gates; plus charts.

    Files rfdeploy writes that are not results (sidecars, calibration manifests, a bundle's manifest.json and
    pipeline.json, models, references, reports, charts) are skipped with a note; any other file that is not a
    bench or parity JSON is refused (exit 5).

    \b
    Charts need matplotlib:
      pip install 'refinenet-deploy[report]'

    \b
    Example: rfdeploy report cpu-*.json jetson-*.json parity-*.json -o report.html
    """
    from ..operations.report import write_report

    result = write_report(inputs, output)
    for note in result.skipped:
        err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    if result.charts_skipped:
        err.print(f"note: charts skipped: {result.charts_skipped}", markup=False, highlight=False, soft_wrap=True)
    for path in result.written:
        err.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    from dataclasses import asdict

    doc = {"rows": [asdict(r) for r in result.rows], "skipped": result.skipped, "written": result.written}
    if emit_json(doc, as_json):
        return
    timed = sum(r.timing is not None for r in result.rows)
    out.print(
        f"{len(result.rows)} rows ({timed} timed, {len(result.rows) - timed} accuracy only)",
        highlight=False,
        soft_wrap=True,
    )
