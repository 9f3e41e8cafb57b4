"""Rendering of ``rfdeploy parity --localize``: one library call per artifact, an 80-column table, JSON, a chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from .app import err, out, progress_bar


def run_localize(
    checkpoint: Path,
    artifact: Path,
    data: Path,
    *,
    runtime: str,
    split: str | None,
    images: int,
    threshold_db: float | None,
    threads: int | None,
    inference_precision: str,
    save_reference: Path | None,
    json_out: Path | None,
) -> dict[str, Any]:
    """Run ``localize_parity`` (saving the taps beside ``save_reference``), write ``json_out``; the result dict."""
    from ..artifacts import write_json_atomic
    from ..operations.localize import localize_parity, taps_path

    with progress_bar() as bar:
        task = bar.add_task(f"localize {artifact.name}", total=images, info="")
        result = localize_parity(
            checkpoint,
            artifact,
            data,
            runtime=runtime,
            split=split,
            images=images,
            threshold_db=threshold_db,
            threads=threads,
            inference_precision=inference_precision,
            save_taps=taps_path(save_reference) if save_reference is not None else None,
            progress=lambda i, n: bar.update(task, completed=i, total=n),
        )
    d = result.to_dict()
    if result.saved_taps:
        err.print(
            f"wrote {result.saved_taps} (PyTorch taps of {result.saved_images} images, for --localize without PyTorch)",
            highlight=False,
            soft_wrap=True,
        )
    if json_out is not None and str(json_out) == "-":
        out.print_json(json.dumps(d, indent=2))
    elif json_out is not None:
        err.print(f"wrote {write_json_atomic(json_out, d)}", highlight=False, soft_wrap=True)
    return d


def _num(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def print_localize(d: dict[str, Any]) -> None:
    """The per-block table (fits 80 columns) and the verdict."""
    table = Table(
        title=f"blocks: {Path(d['artifact']).name} ({d['runtime']}, {d['precision']}) vs {d['reference']}, "
        f"{d['images']} images",
        width=80,
    )
    table.add_column("block", no_wrap=True, max_width=24)
    for col in ("SQNR dB", "cosine", "max err/range", "adds dB"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    first, most = d.get("first_below_threshold"), d.get("adds_most_error")
    for b in d["blocks"]:
        flag = []
        if b["block"] == first:
            flag.append("first")
        if b["block"] == most:
            flag.append("most")
        if not flag and b["below_threshold"]:
            flag.append("low")
        table.add_row(
            b["block"],
            _num(b["sqnr_db"], ".1f"),
            _num(b["cosine"], ".4f"),
            _num(b["max_rel_err"], ".2e"),
            _num(b["added_db"], ".1f"),
            ",".join(flag),
        )
    out.print(table)
    threshold = d["threshold_sqnr_db"]
    added = {b["block"]: b["added_db"] for b in d["blocks"]}
    most_text = f"{most} (+{added[most]:.1f} dB)" if most else "none adds >= 6 dB"
    if first is None:
        out.print(f"no block below {threshold:g} dB SQNR; adds the most: {most_text}", highlight=False)
    else:
        out.print(f"first below {threshold:g} dB SQNR: {first}; adds the most: {most_text}", highlight=False)
    actions = d.get("actions") or {}
    if actions:
        _print_actions(d, actions)
    for note in d.get("notes") or []:
        out.print(f"note: {note}", highlight=False)


def _print_actions(d: dict[str, Any], actions: dict[str, Any]) -> None:
    """The blocks worth keeping in float, as the library ranks them (``keep_float``)."""
    ranked = d.get("keep_float") or []
    if not ranked:
        return
    table = Table(title="keep in float (ModelOpt nodes_to_exclude = NNCF ignored_scope patterns)", width=80)
    table.add_column("block", no_wrap=True)
    table.add_column("mIoU rec. pt", justify="right", no_wrap=True)
    table.add_column("pattern", overflow="fold")
    for name in ranked:
        a = actions[name]
        rec = a.get("miou_recovered_points")
        pats = a["modelopt_nodes_to_exclude"]
        pattern = pats[0] if len(pats) == 1 else f"{len(pats)} node names (JSON)"
        table.add_row(name, "n/a" if rec is None else f"{rec:.2f}", pattern)
    out.print(table)
    out.print(
        f"TensorRT / ONNX: rfdeploy calibrate FP32.onnx --keep-float {ranked[0]} ... (strongly typed build)",
        highlight=False,
    )


def write_chart(results: list[dict[str, Any]], path: Path) -> None:
    """SQNR along the network's depth, one line per artifact (needs matplotlib; a warning without it)."""
    from ..artifacts import write_atomic
    from ..errors import MissingDependencyError
    from ..operations.localize import sqnr_chart

    try:
        png = sqnr_chart(results)
    except MissingDependencyError:
        err.print("warning: no chart: matplotlib is not installed (pip install 'refinenet-deploy[report]')")
        return
    written = write_atomic(path, lambda tmp: tmp.write_bytes(png))
    err.print(f"wrote {written}", highlight=False, soft_wrap=True)
