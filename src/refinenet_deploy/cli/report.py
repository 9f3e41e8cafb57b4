"""``rfdeploy report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app, handle_errors, out


# --------------------------------------------------------------------------------------------- report
@app.command("report")
@handle_errors
def report_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="bench and parity JSON files, from any devices.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="report.md or report.html (+ PNG charts beside).")],
) -> None:
    """One table across devices (p50/p99, FPS, speed-up vs PyTorch, mIoU drop, agreement) and charts.

    Example: rfdeploy report cpu-*.json jetson-*.json parity-*.json -o report.html
    """
    from ..operations.report import make_report

    path, rows, charts = make_report(inputs, output)
    out.print(
        f"{path}: {len(rows)} rows" + (f", charts {', '.join(str(c) for c in charts)}" if charts else ""),
        highlight=False,
    )
