"""``rfdeploy pipeline``: a checkpoint to a validated deployment bundle, resumable, finished on each device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..calibration.dataset import DEFAULT_CALIBRATION_IMAGES
from .app import Table, _state, app, command_line, emit_json, err, handle_errors, out, steps_line
from .options import JsonOut

DEFAULT_BUNDLE = Path("rfdeploy-bundle")
DEFAULT_CALIB_IMAGES = DEFAULT_CALIBRATION_IMAGES  # one default for calibrate, build and pipeline


@app.command("pipeline")
@handle_errors
def pipeline_cmd(
    config: Annotated[
        Path | None,
        typer.Argument(help="TOML config (same settings as the options), or a bundle folder to resume."),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Checkpoint (default: the bundled demo model).")
    ] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Architecture, or auto (from the checkpoint).")] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled validation images (default: synthetic, made here).")
    ] = None,
    calib_data: Annotated[
        Path | None, typer.Option("--calib-data", help="Calibration images for INT8 (default: synthetic).")
    ] = None,
    calib_images: Annotated[
        int | None,
        typer.Option(
            "--calib-images",
            "--num-images",
            min=1,
            max=100_000,
            help=f"Calibration images used (default {DEFAULT_CALIB_IMAGES}, as calibrate; the demo's INT8 drop "
            "measured flat from 16 to 200).",
        ),
    ] = None,
    targets: Annotated[
        str | None,
        typer.Option(
            "--targets",
            help="Comma-separated targets (e.g. cpu-openvino-int8,gpu-trt-fp16) or groups: cpu, demo, all.",
        ),
    ] = None,
    input_size: Annotated[str | None, typer.Option("--input-size", help="HxW the models are built for.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=f"Bundle folder (default: {DEFAULT_BUNDLE}).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a bundle with its own settings (on a device: finish it).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Redo every step, even unchanged ones.")] = False,
    as_json: JsonOut = None,
) -> None:
    """Export, calibrate, build, check parity and benchmark every target into one bundle, with a report and a
    manifest. Steps are keyed by their inputs: a second run skips what did not change. Targets this machine cannot
    finish are left "pending on device" with the commands that finish them.

    \b
    Examples:
      # the demo: bundled checkpoint, synthetic data
      rfdeploy pipeline
      rfdeploy pipeline --checkpoint model.pth --data val/ --calib-data \\
          calib/ --targets cpu,gpu-trt-int8 -o out/
      rfdeploy pipeline deploy.toml -o out/
      # on the GPU machine or the Jetson
      rfdeploy pipeline --resume out/
    """
    from ..errors import CheckpointError, DataError
    from ..operations.pipeline import Pipeline, load_bundle_config, load_config, make_config
    from ..operations.pipeline.layout import check_bundle_path

    file_settings: dict = {}
    bundle = output
    if resume and config is not None and not config.exists():
        raise DataError(f"--resume {config}: no such bundle folder. Pass the folder a pipeline wrote (its -o)")
    if config is not None and config.is_dir():
        if bundle is not None and bundle.resolve() != config.resolve():
            raise typer.BadParameter("give the bundle once: as the argument or as -o")
        bundle, resume = config, True
    elif config is not None:
        file_settings = load_config(config)
    bundle = bundle or DEFAULT_BUNDLE
    if resume:
        file_settings = {**load_bundle_config(bundle), **file_settings}
    overrides = {
        "checkpoint": str(checkpoint) if checkpoint else None,
        "arch": arch,
        "data": str(data) if data else None,
        "calib_data": str(calib_data) if calib_data else None,
        "calib_images": calib_images,
        "targets": targets,
        "input_size": input_size,
    }
    cfg = make_config(file_settings, overrides)
    for what, path in (("--checkpoint", checkpoint), ("--data", data), ("--calib-data", calib_data)):
        if path is not None and not path.exists():
            error = CheckpointError if what == "--checkpoint" else DataError
            raise error(f"{what} {path}: not found. Check the path")  # a missing input is exit 5, like elsewhere
    if cfg.checkpoint is None and not resume:
        from ..operations.pipeline.layout import DEMO_CHECKPOINT

        if not DEMO_CHECKPOINT.is_file():
            raise CheckpointError(
                f"no --checkpoint given, and the demo checkpoint {DEMO_CHECKPOINT} is missing from this install. "
                "Reinstall refinenet-deploy, or pass --checkpoint"
            )
    check_bundle_path(bundle, [checkpoint, data, calib_data, None if resume else config])

    def progress(msg: str) -> None:
        if not _state["quiet"]:
            err.print(msg, markup=False, highlight=False, soft_wrap=True)

    def warn(msg: str) -> None:
        err.print(f"warning: {msg}", markup=False, highlight=False, soft_wrap=True)

    result = Pipeline(cfg, bundle, force=force, progress=progress, warn=warn, command=command_line()).run()
    import json

    if not emit_json(json.loads(result.manifest.read_text()), as_json):  # the manifest: targets, verdicts, files
        _print_summary(result)
    code = result.exit_code
    if result.shared_error is not None:
        err.print(
            f"error: step {result.failed_step}: {result.shared_error.message}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    elif code == 3:
        failed = [o.target.name for o in result.outcomes if o.status == "failed gate"]
        err.print(
            f"error: parity gate failed for {', '.join(failed)} (see {bundle}/report.md)", markup=False, soft_wrap=True
        )
    elif code:
        failed = [o for o in result.outcomes if o.error is not None]
        err.print(
            f"error: {failed[0].target.name}: {failed[0].error.message}", markup=False, highlight=False, soft_wrap=True
        )
    raise typer.Exit(code)


_SHORT = {"agreement": "agree"}  # headers whose one word would be folded at 80 columns


def _print_summary(result) -> None:  # noqa: ANN001  (PipelineResult)
    from ..operations.pipeline.summary import COLUMNS, summary_rows

    rows = summary_rows(result.outcomes, [result.baseline] if result.baseline else [], result.gpu_baselines)
    table = Table(title=f"bundle {result.bundle}", title_justify="left")
    # a speed-up column no row has a value in (no GPU target measured yet) is left out: 80 columns are few
    columns = [c for c in COLUMNS if c != "vs PT best" or any(r[c] not in ("—", "no baseline") for r in rows)]
    for c in columns:
        left = c in ("target", "status")
        table.add_column(_SHORT.get(c, c), justify="left" if left else "right", no_wrap=left)
    predicted = False
    for r in rows:
        style = {"done": None, "pending on device": "yellow"}.get(r["status"], "red")
        cells = {c: str(r[c]) for c in columns}
        if r["status"] == "pending on device":
            cells["status"] = "pending"  # on device: the lines under the table say which and how
        drop = cells.get("mIoU drop pt", "")
        if "(CPU-predicted" in drop:  # the words go under the table: a narrow cell would fold them mid-word
            predicted = True
            cells["mIoU drop pt"] = drop.split(" (", 1)[0] + (" p!" if "over the gate" in drop else " p")
        table.add_row(*(cells[c] for c in columns), style=style)
    out.print(table)
    if predicted:
        out.print(
            "p : predicted on this CPU (the same Q/DQ ONNX in ONNX Runtime); p! : already over the gate",
            highlight=False,
        )
    if any(str(r[c]).endswith("x!") for r in rows for c in ("vs PT fp32", "vs PT best")):
        out.print("x! : against a baseline whose timing was flagged unstable (machine under load?)", highlight=False)
    for r in rows:
        if r["status"] == "pending on device":
            out.print(
                f"{r['target']}: pending on device: {r['reason']}. On that device, run in the bundle:",
                highlight=False,
            )
            for why in r.get("predicted_over_gate") or []:
                out.print(f"  predicted on this CPU, already over the gate: {why}", markup=False, highlight=False)
            for c in r["commands"]:  # commands to copy: one line each, never wrapped or cut
                out.print(f"  {c}", markup=False, highlight=False, soft_wrap=True)
        elif r["status"] != "done" and r["reason"]:
            out.print(f"{r['target']}: {r['status']}: {r['reason']}", markup=False, highlight=False)
    counts = steps_line(len(result.ran), len(result.skipped))
    if result.imported:
        counts += f", {len(result.imported)} results imported"
    err.print(counts, highlight=False)
    written = [*result.report, result.manifest]
    err.print("wrote " + ", ".join(str(p) for p in written), highlight=False, markup=False, soft_wrap=True)
