"""``rfdeploy sweep``: sizes x precisions x runtimes, the Pareto front per device and the pick within budgets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import Table, _state, app, command_line, emit_json, err, handle_errors, out, steps_line
from .options import JsonOut

if TYPE_CHECKING:
    from ..results.sweep import SweepDocument

DEFAULT_FOLDER = Path("rfdeploy-sweep")


@app.command("sweep")
@handle_errors
def sweep_cmd(
    source: Annotated[
        Path | None,
        typer.Argument(help="Checkpoint (default: the demo model), or with --resume the sweep folder."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled validation images (default: synthetic).")
    ] = None,
    calib_data: Annotated[Path | None, typer.Option("--calib-data", help="Calibration images for INT8.")] = None,
    sizes: Annotated[
        str | None, typer.Option("--sizes", help="Short sides (aspect kept) or HxW, comma-separated; x32.")
    ] = None,
    targets: Annotated[
        str | None, typer.Option("--targets", help="Targets or groups (cpu: every CPU target), comma-separated.")
    ] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option("--max-latency-ms", help="Latency budget (p50, ms): best mIoU within it.")
    ] = None,
    max_miou_drop: Annotated[
        float | None, typer.Option("--max-miou-drop", help="mIoU budget (points vs PyTorch FP32): fastest within.")
    ] = None,
    val_images: Annotated[int | None, typer.Option("--val-images", help="Validation images scored.")] = None,
    iterations: Annotated[int | None, typer.Option("--iterations", help="Timed iterations per cell.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for every runtime.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Pipeline TOML file; its [sweep] table holds these settings.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help=f"Folder (default {DEFAULT_FOLDER}).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a sweep folder (on a device: finish it).")] = False,
    as_json: JsonOut = None,
) -> None:
    """Measure mIoU (at the label's resolution) and latency for every size x target, draw the Pareto front per
    device and pick the best mIoU within --max-latency-ms and the fastest within --max-miou-drop. Steps are
    keyed: a second run skips them; device targets stay pending with the commands that finish them.

    \b
    Examples:
      rfdeploy sweep --sizes 96,128,192 --targets cpu --max-latency-ms 33
      rfdeploy sweep model.pth --data val/ --calib-data calib/ \\
          --sizes 256,384,512 --targets cpu,jetson-trt-int8 -o sweep/
      rfdeploy sweep sweep/ --resume   # on the Jetson
    """
    from ..errors import CheckpointError, DataError, UsageError
    from ..operations.sweep import Sweep, load_folder_settings, load_sweep_config, make_settings

    folder = output
    file_settings: dict[str, Any] = {}
    if resume:
        if source is None and output is None:
            raise UsageError("--resume needs the sweep folder: rfdeploy sweep FOLDER --resume")
        if source is not None and output is not None and source.resolve() != output.resolve():
            raise UsageError("give the sweep folder once: as the argument or as -o")
        folder = source or output
        file_settings = load_folder_settings(folder)
    elif source is not None and source.is_dir():
        raise UsageError(f"{source} is a folder; to continue a sweep add --resume, else pass a checkpoint file")
    if config is not None:
        file_settings = {**file_settings, **load_sweep_config(config)}
    for what, path in (("checkpoint", None if resume else source), ("--data", data), ("--calib-data", calib_data)):
        if path is not None and not path.exists():
            error = CheckpointError if what == "checkpoint" else DataError
            raise error(f"{what} {path}: not found. Check the path")
    overrides = {
        "checkpoint": None if resume or source is None else str(source),
        "data": str(data) if data else None,
        "calib_data": str(calib_data) if calib_data else None,
        "sizes": sizes,
        "targets": targets,
        "max_latency_ms": max_latency_ms,
        "max_miou_drop": max_miou_drop,
        "val_images": val_images,
        "iterations": iterations,
        "threads": threads,
    }
    settings = make_settings(file_settings, overrides)
    folder = folder or DEFAULT_FOLDER
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {folder}: a file, not a folder. Choose a folder")

    def progress(msg: str) -> None:
        if not _state["quiet"]:
            err.print(msg, markup=False, highlight=False, soft_wrap=True)

    def warn(msg: str) -> None:
        err.print(f"warning: {msg}", markup=False, highlight=False, soft_wrap=True)

    result = Sweep(settings, folder, progress=progress, warn=warn, command=command_line()).run()
    document = result.document
    if document is None:  # a run always writes one; a bug otherwise
        raise RuntimeError("the sweep wrote no document")
    if not emit_json(document.to_dict(), as_json):
        print_sweep(document)
    err.print(
        f"{steps_line(len(result.ran), len(result.skipped))}; wrote " + ", ".join(str(p) for p in result.files),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(result.exit_code)


def print_sweep(doc: SweepDocument) -> None:
    """The cells as a table within 80 columns, the front marked, then the picks and pending commands."""
    front, ref_miou = doc.on_front(), doc.reference_miou
    table = Table(title="sweep (mIoU at label resolution; p50/p99 compute-only)", title_justify="left")
    for name in ("config", "mIoU %", "drop pt", "p50 ms", "p99 ms", "MB", "F"):
        table.add_column(name, justify="left" if name in ("config", "F") else "right", no_wrap=name == "config")
    rows = [doc.reference, *doc.cells] if doc.reference is not None else doc.cells
    for c in rows:
        m = c.measured
        if m is None:
            mark = "X" if c.status == "failed" else "P"  # the words go under the table: 80 columns
            table.add_row(c.config, "—", "—", "—", "—", "—", mark, style="yellow" if mark == "P" else "red")
            continue
        drop = "ref" if c is doc.reference else ("—" if ref_miou is None else f"{(ref_miou - m.miou) * 100:.2f}")
        table.add_row(
            c.config,
            f"{m.miou * 100:.2f}",
            drop,
            f"{m.latency.p50_ms:.1f}" + ("~" if m.latency.stable is False else ""),
            f"{m.latency.p99_ms:.1f}",
            f"{m.model_bytes / 1e6:.1f}",
            "*" if c.config in front else "",
        )
    out.print(table)
    out.print("F: * on its device's Pareto front, P pending on a device, X failed", highlight=False)
    if any(m.latency.stable is False for c in rows if (m := c.measured)):
        out.print("~ : timing flagged unstable (CV or tail over the limits; machine under load?)", highlight=False)
    for rec in doc.recommendations:
        for _, pick in rec.picks():
            if pick is None:
                continue
            out.print(f"{rec.device}, {pick.rule}:", markup=False, highlight=False)
            out.print(f"  -> {pick.config or pick.reason}", markup=False, highlight=False)
            for cmd in pick.commands:
                out.print(f"  {cmd}", markup=False, highlight=False, soft_wrap=True)
    pending = sorted({cmd for c in doc.cells if c.status == "pending" for cmd in c.commands})
    if pending:
        out.print("pending on a device; there, in the sweep folder, run:", highlight=False)
        for cmd in sorted(pending, key=lambda x: x.startswith("rfdeploy sweep")):
            out.print(f"  {cmd}", markup=False, highlight=False, soft_wrap=True)
    for c in rows:
        if c.status == "failed":
            out.print(f"{c.config}: failed: {c.reason}", markup=False, highlight=False)
