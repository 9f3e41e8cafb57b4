"""What a parity run leaves behind and how it ends: the JSON/Markdown report (``write_parity_outputs``) and the
typed errors a caller raises from the reports (``raise_for_labels``, exit 5; ``raise_for_gates`` and
``raise_for_comparison``, exit 3)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...artifacts import write_atomic, write_json_atomic
from ...errors import DataError, ParityError
from ...validate.parity_engine import ParityReport


def write_parity_outputs(
    result: dict[str, Any], *, json_out: str | Path | None = None, markdown_out: str | Path | None = None
) -> list[Path]:
    """Write a parity result as JSON and/or Markdown, atomically (missing parent folders are created)."""
    from ..report import parity_markdown

    written = []
    if json_out is not None:
        written.append(write_json_atomic(json_out, result))
    if markdown_out is not None:
        text = parity_markdown(result)
        written.append(write_atomic(markdown_out, lambda tmp: tmp.write_text(text)))
    return written


def raise_for_labels(summary: dict[str, Any], strict: bool) -> None:
    """``--strict-labels``: exit 5 (``DataError``) when labels had class ids outside the model's classes."""
    if strict and summary.get("pixels"):
        files = summary.get("files") or []
        raise DataError(
            f"{summary['pixels']} labelled pixels in {summary['images']} image(s) have class ids "
            f"{', '.join(summary.get('class_ids') or {})} outside 0..{summary['num_classes'] - 1}: "
            f"{', '.join(files[:5])}{' ...' if summary['images'] > 5 else ''}",
            hint="fix the labels or the class count; without --strict-labels they are counted and not scored",
        )


def raise_for_gates(report: ParityReport) -> None:
    """Exit 3 (``ParityError``) when a gate failed (a gate that could not be evaluated is not a failure, nor a pass:
    the report says so)."""
    if report.failed_gates:
        raise ParityError(
            "parity gate failed: " + "; ".join(report.failed_gates),
            hint="see the report; --save-worst K DIR shows where the backend disagrees",
        )


def raise_for_comparison(reports: Sequence[ParityReport], *, strict_labels: bool = False) -> None:
    """How a run over one or more artifacts ends: exit 5 for labels out of range under ``strict_labels``, then exit
    3 when a gate failed (one artifact: ``raise_for_gates``; several: one error naming each failing artifact)."""
    for report in reports:
        raise_for_labels(report.labels_out_of_range, strict_labels)
    failed = [r for r in reports if r.failed_gates]
    if len(reports) == 1:
        raise_for_gates(reports[0])
    elif failed:
        raise ParityError(
            "parity gate failed for "
            + "; ".join(f"{Path(r.context['artifact']).name}: {', '.join(r.failed_gates)}" for r in failed),
            hint="run parity on that artifact alone with --save-worst K DIR to see where it disagrees",
        )
