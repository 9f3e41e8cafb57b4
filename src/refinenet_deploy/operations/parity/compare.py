"""``compare_artifacts``: one checkpoint (or saved reference), several artifacts, one PyTorch pass.

Each artifact is compared by ``validate_parity``; with several artifacts and no reference cache, the live PyTorch
reference is cached in a temporary folder for the run, so N artifacts still cost one PyTorch pass. A
``--save-reference`` file is written by the first comparison."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...validate.parity_engine import ParityReport
from ...validate.reference import is_reference
from .options import ParityOptions
from .run import validate_parity

Progress = Callable[[int, int], None]


def compare_artifacts(
    checkpoint: str | Path,
    artifacts: Sequence[str | Path],
    data: str | Path,
    options: ParityOptions | None = None,
    *,
    track: Callable[[Path], AbstractContextManager[Progress | None]] | None = None,
    on_report: Callable[[int, Path, ParityReport], None] | None = None,
    **kwargs: Any,
) -> list[ParityReport]:
    """Compare every artifact with ``checkpoint`` on ``data``, in order; return their reports. ``options``
    (``ParityOptions``) or the same fields as keywords. ``track(artifact)``: a context manager around each
    comparison giving its progress callback (``(done, total)``); ``on_report(index, artifact, report)``: called
    as each comparison ends (the CLI renders there), before the next starts."""
    opts = options if options is not None else ParityOptions(**kwargs)
    from_reference = is_reference(checkpoint)
    reports = []
    with tempfile.TemporaryDirectory(prefix="rfdeploy-parity-") as tmp:
        cache = opts.reference_cache
        if cache is None and len(artifacts) > 1 and not from_reference:
            cache = Path(tmp)  # several artifacts, no cache: still one PyTorch pass
        for index, artifact in enumerate(map(Path, artifacts)):
            run = replace(opts, reference_cache=None if from_reference else cache)
            if index:  # the first comparison saves the reference
                run = replace(run, save_reference=None, reference_logits=False)
            with track(artifact) if track is not None else nullcontext(None) as progress:
                report = validate_parity(checkpoint, artifact, data, run, progress=progress)
            _forget_temporary(report, Path(tmp))
            reports.append(report)
            if on_report is not None:
                on_report(index, artifact, report)
    return reports


def _forget_temporary(report: ParityReport, tmp: Path) -> None:
    """The run's temporary cache is gone when it ends: the report does not name it."""
    ref = report.context.get("reference")
    if isinstance(ref, dict) and ref.get("saved_to"):
        ref["saved_to"] = [p for p in ref["saved_to"] if Path(p).parent != tmp]
