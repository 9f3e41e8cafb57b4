"""The ``rfdeploy`` command line: checks options, calls one library function, renders the result."""

from __future__ import annotations

import functools
import json
import logging
import shlex
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .cli_options import Arch, DataDir, JsonOut, NumClasses, Seed, Split, Threads, parse_size
from .errors import RefineNetDeployError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

out = Console()
err = Console(stderr=True)
_state = {"debug": False, "quiet": False}

app = typer.Typer(
    name="rfdeploy",
    help="RefineNet / Light-Weight RefineNet checkpoints to ONNX, TensorRT and OpenVINO, "
    "with IoU parity against PyTorch and latency per device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(help="Datasets: synthetic scenes for demos and tests.", no_args_is_help=True)
app.add_typer(data_app, name="data")
export_app = typer.Typer(help="Export a checkpoint to a deployable format.", no_args_is_help=True)
app.add_typer(export_app, name="export")
build_app = typer.Typer(help="Build a runtime artifact from an ONNX model.", no_args_is_help=True)
app.add_typer(build_app, name="build")


def handle_errors(fn: F) -> F:
    """Map library errors to ``error: ...`` on stderr and their exit code; traceback only with --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RefineNetDeployError as exc:
            if _state["debug"]:
                err.print_exception()
            err.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False, soft_wrap=True)
            if exc.hint:
                err.print(f"hint: {exc.hint}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted", markup=False)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"rfdeploy {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or info logs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Info logs on stderr.")] = False,
) -> None:
    _state["debug"], _state["quiet"] = debug, quiet
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    from rich.logging import RichHandler

    logging.basicConfig(level=level, format="%(message)s", force=True,
                        handlers=[RichHandler(console=err, show_time=False, show_path=debug)])


def _progress():  # noqa: ANN202  (rich.progress.Progress, imported lazily)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    TextColumn("{task.fields[info]}"), console=err, transient=False,
                    disable=_state["quiet"] or not err.is_terminal)


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["rfdeploy", *sys.argv[1:]])


# --------------------------------------------------------------------------------------------- models
@app.command("models")
@handle_errors
def models_cmd(
    pattern: Annotated[str, typer.Argument(help="Shell-style filter, e.g. 'rf_lw*'.")] = "*",
    size: Annotated[str, typer.Option("--size", help="Input size for the GMAC column, HxW.")] = "512x512",
    num_classes: Annotated[int, typer.Option("--num-classes", min=1, help="Classes for the counts.")] = 21,
    all_: Annotated[bool, typer.Option("--all", help="Include the tiny *_test models.")] = False,
    as_json: JsonOut = False,
) -> None:
    """List the model zoo: name, family, backbone, parameters, GMAC.

    Example: rfdeploy models 'rf_lw*' --size 1024x2048
    """
    from .models.complexity import describe_models

    h, w = parse_size(size)
    rows = describe_models(pattern, height=h, width=w, num_classes=num_classes, include_test=all_)
    if as_json:
        out.print_json(json.dumps([r.__dict__ for r in rows]))
        return
    table = Table(title=f"RefineNet model zoo ({num_classes} classes, GMAC at {h}x{w})")
    table.add_column("name", no_wrap=True)
    table.add_column("family", no_wrap=True)
    table.add_column("backbone", no_wrap=True)
    table.add_column("parameters", justify="right", no_wrap=True)
    table.add_column("GMAC", justify="right", no_wrap=True)
    wide = out.width >= 110
    if wide:
        table.add_column("description", overflow="fold")
    for r in rows:
        cells = [r.name, r.family, r.backbone, f"{r.parameters:,}", f"{r.gmac:.2f}"]
        table.add_row(*cells, *([r.description] if wide else []))
    out.print(table)


# --------------------------------------------------------------------------------------------- doctor
@app.command("doctor")
@handle_errors
def doctor_cmd(as_json: JsonOut = False) -> None:
    """Report the environment: Python, PyTorch, ONNX, runtimes and CPU features.

    Example: rfdeploy doctor --json
    """
    from .environment import collect_environment

    env = collect_environment()
    if as_json:
        out.print_json(json.dumps(env))
        return
    table = Table(title="rfdeploy doctor", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for key, value in env.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    out.print(table)


# --------------------------------------------------------------------------------------------- inspect
@app.command("inspect")
@handle_errors
def inspect_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint file (.pth, .pth.tar, .pt, .safetensors).")],
    arch: Arch = "auto",
    num_classes: NumClasses = None,
    as_json: JsonOut = False,
) -> None:
    """Load a checkpoint strictly and say what it is: architecture, classes, wrapper, SHA-256.

    Example: rfdeploy inspect rf_lw50_voc.pth.tar
    """
    from .models import load_model

    loaded = load_model(checkpoint, arch=arch, num_classes=num_classes)
    info = {
        "checkpoint": str(checkpoint), "arch": loaded.arch, "num_classes": loaded.num_classes,
        "class_names": list(loaded.class_names) if loaded.class_names else None,
        "normalization": loaded.normalization, "wrapper": loaded.checkpoint.wrapper if loaded.checkpoint else None,
        "sha256": loaded.checkpoint.sha256 if loaded.checkpoint else None,
        "tensors": len(loaded.checkpoint.state_dict) if loaded.checkpoint else None,
    }
    if as_json:
        out.print_json(json.dumps(info))
        return
    table = Table(title=f"{checkpoint.name}: loads strictly", show_header=False)
    for key, value in info.items():
        table.add_row(key, str(value))
    out.print(table)


# --------------------------------------------------------------------------------------------- data
@data_app.command("synth")
@handle_errors
def data_synth_cmd(
    out_dir: Annotated[Path, typer.Argument(help="Output folder (must be new or empty).")],
    num: Annotated[int, typer.Option("--num", min=1, help="Number of scenes.")] = 200,
    size: Annotated[str, typer.Option("--size", help="Image size HxW.")] = "128x128",
    seed: Seed = 0,
    split: Annotated[str, typer.Option("--split", help="Split name written to ImageSets/Segmentation.")] = "train",
) -> None:
    """Write a VOC-layout dataset of procedurally generated scenes (deterministic for a seed).

    Example: rfdeploy data synth data/synth-val --num 200 --size 128x128 --seed 2 --split val
    """
    from .data.synth import SYNTH_CLASSES, write_synth_dataset

    h, w = parse_size(size)
    with _progress() as bar:
        task = bar.add_task("synthesising", total=num, info="")
        write_synth_dataset(out_dir, num, h, w, seed, split=split,
                            progress=lambda i, n: bar.update(task, completed=i))
    err.print(f"wrote {num} scenes ({h}x{w}, {len(SYNTH_CLASSES)} classes, seed {seed}) to {out_dir}",
              highlight=False)


# --------------------------------------------------------------------------------------------- train
@app.command("train")
@handle_errors
def train_cmd(
    data: DataDir,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for last.pt, best.pt, model.safetensors.")],
    val: Annotated[Path | None, typer.Option("--val", help="Validation dataset (mIoU per epoch).")] = None,
    arch: Annotated[str, typer.Option("--arch", help="Architecture to train.")] = "rf_lw_mbv2",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW, poly decay).")] = 2e-3,
    crop_size: Annotated[int | None, typer.Option("--crop-size", help="Square crop; default: image side.")] = None,
    seed: Seed = 0,
    threads: Threads = None,
    fp16_weights: Annotated[
        bool, typer.Option("--fp16-weights/--fp32-weights", help="Storage precision of the final file.")
    ] = True,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last.pt.")] = False,
) -> None:
    """Train a model on a labelled dataset; writes OUT/model.safetensors with its metadata.

    Example: rfdeploy train data/synth-train --val data/synth-val --epochs 20 -o runs/demo
    """
    from .training import TrainConfig, train

    cfg = TrainConfig(data=str(data), val_data=str(val) if val else None, out_dir=str(out_dir), arch=arch,
                      epochs=epochs, batch_size=batch_size, lr=lr, crop_size=crop_size, seed=seed,
                      threads=threads, fp16_weights=fp16_weights, command=_command_line())
    with _progress() as bar:
        task = bar.add_task("epoch 1", total=None, info="")

        def report(p: Any) -> None:
            if p.kind == "step":
                bar.update(task, description=f"epoch {p.epoch}/{p.epochs}", completed=p.step, total=p.steps,
                           info=f"loss {p.loss:.3f} lr {p.lr:.2e}")
            else:
                miou = "" if p.val_miou is None else f" val mIoU {p.val_miou:.4f}"
                err.print(f"epoch {p.epoch}/{p.epochs}: loss {p.loss:.4f}{miou} ({p.seconds:.0f} s)", highlight=False)

        result = train(cfg, progress=report, resume=resume)
    best = "n/a" if result.best_miou is None else f"{result.best_miou:.4f}"
    out.print(f"checkpoint: {result.checkpoint}  best val mIoU: {best}", highlight=False)


# --------------------------------------------------------------------------------------------- evaluate
@app.command("evaluate")
@handle_errors
def evaluate_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint file.")],
    data: Annotated[Path, typer.Option("--data", help="Labelled dataset (VOC or Cityscapes layout).")],
    split: Split = None,
    arch: Arch = "auto",
    num_classes: NumClasses = None,
    threads: Threads = None,
    as_json: JsonOut = False,
) -> None:
    """mIoU of a PyTorch checkpoint on a labelled dataset (logits upsampled to label size, then argmax).

    Example: rfdeploy evaluate demo/rf_lw_mbv2_synth.safetensors --data synth-val
    """
    from .evaluation import evaluate_checkpoint

    with _progress() as bar:
        task = bar.add_task("evaluating", total=None, info="")
        res = evaluate_checkpoint(checkpoint, data, split=split, arch=arch, num_classes=num_classes,
                                  threads=threads, progress=lambda i, n: bar.update(task, completed=i, total=n))
    if as_json:
        out.print_json(json.dumps(res))
        return
    table = Table(title=f"{Path(checkpoint).name} on {data} ({res['num_images']} images): mIoU {res['miou']:.4f}")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in zip(res["class_names"], res["iou"]):
        table.add_row(name, "absent" if iou is None else f"{iou:.4f}")
    out.print(table)


# --------------------------------------------------------------------------------------------- export onnx
@export_app.command("onnx")
@handle_errors
def export_onnx_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.pth, .pth.tar, .pt, .safetensors).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .onnx path (+ .meta.json sidecar).")],
    arch: Arch = "auto",
    num_classes: NumClasses = None,
    input_size: Annotated[str, typer.Option("--input-size", help="Export (trace) size HxW.")] = "512x512",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Batch size of the exported graph.")] = 1,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="Symbolic height and width.")] = False,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="Symbolic batch (with --dynamic).")] = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset, 13-18.")] = 17,
    simplify: Annotated[str, typer.Option("--simplify", help="onnxsim | onnxslim | none.")] = "onnxsim",
    head: Annotated[str, typer.Option("--head", help="logits (1/4 res) | upsample | argmax (class map).")] = "logits",
    input_format: Annotated[
        str, typer.Option("--input-format", help="nchw-float (normalised) | nhwc-uint8 (RGB frames).")
    ] = "nchw-float",
    fp16: Annotated[bool, typer.Option("--fp16", help="FP16 weights/compute, FP32 inputs and outputs.")] = False,
    exporter: Annotated[str, typer.Option("--exporter", help="torchscript (default) | dynamo (opset >= 18).")] = (
        "torchscript"
    ),
    data: Annotated[
        Path | None, typer.Option("--data", help="Also verify on real images from this folder/dataset.")
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Export to ONNX, simplify, verify against PyTorch in ONNX Runtime, write provenance.

    Exits 6 (and writes nothing) if the ONNX model does not match PyTorch within tolerance.

    Examples:
      rfdeploy export onnx rf_lw50_voc.pth.tar --dynamic -o rf_lw50.onnx
      rfdeploy export onnx demo.safetensors --head argmax --input-format nhwc-uint8 --input-size 480x640 -o cam.onnx
    """
    from .export.onnx import ExportSpec, export_onnx

    spec = ExportSpec(arch=arch, num_classes=num_classes, input_size=parse_size(input_size), batch=batch,
                      dynamic=dynamic, dynamic_batch=dynamic_batch, opset=opset, simplify=simplify, head=head,
                      input_format=input_format, fp16=fp16, exporter=exporter, data=str(data) if data else None)
    with err.status("exporting", spinner="dots") if err.is_terminal and not _state["quiet"] else nullcontext() as st:
        result = export_onnx(checkpoint, output, spec, command=_command_line(),
                             progress=(lambda msg: st.update(msg)) if st is not None else None)
    if as_json:
        out.print_json(json.dumps(result.metadata))
        return
    meta = result.metadata
    table = Table(title=f"{result.path} ({meta['arch']}, {meta['num_classes']} classes, {meta['precision']}, "
                  f"head {meta['head']}, opset {meta['opset']})")
    table.add_column("ONNX Runtime vs PyTorch", no_wrap=True, overflow="ellipsis", max_width=32)
    for col in ("size", "max abs err", "max rel err", "argmax agree", "ok"):
        table.add_column(col, justify="right", no_wrap=True)
    for c in result.cases:
        d = c.diff
        table.add_row(c.name, f"{c.size[0]}x{c.size[1]}", f"{d.max_abs_error:.2e}", f"{d.max_rel_error:.2e}",
                      f"{d.argmax_agreement:.4%}", "yes" if d.within_tolerance else "NO")
    out.print(table)
    if result.simplification:
        worst = max(c.diff.max_abs_error for c in result.simplification)
        out.print(f"{meta['simplifier']}: simplified graph equals the unsimplified one on all "
                  f"{len(result.simplification)} checks (max abs diff {worst:.2e})", highlight=False)
    io_in, io_out = meta["inputs"][0], meta["outputs"][0]
    out.print(f"input  {io_in['name']}: {io_in['dtype']} {io_in['shape']}\noutput {io_out['name']}: "
              f"{io_out['dtype']} {io_out['shape']}\nmetadata: {result.metadata_path}", highlight=False)


# --------------------------------------------------------------------------------------------- parity
@build_app.command("openvino")
@handle_errors
def build_openvino_cmd(
    model: Annotated[Path, typer.Argument(help="ONNX from 'rfdeploy export onnx' (FP32) or 'rfdeploy calibrate' "
                                               "(Q/DQ INT8).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="IR to write: model.xml (+ .bin, .meta.json).")],
    fp16: Annotated[bool, typer.Option("--fp16", help="FP16 weights (compress_to_fp16).")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="INT8: NNCF on --data, or a calibrated Q/DQ ONNX.")] = False,
    data: Annotated[Path | None, typer.Option("--data", help="Calibration images for --int8 (folder, VOC, "
                                                              "Cityscapes, synthetic).")] = None,
    num_images: Annotated[int, typer.Option("--num-images", min=1, help="Images sampled for calibration.")] = 300,
    max_miou_drop: Annotated[float | None, typer.Option(
        "--max-miou-drop", help="--int8 with NNCF accuracy control: at most this mIoU drop (points) vs FP32, "
        "measured on --val-data.")] = None,
    val_data: Annotated[Path | None, typer.Option(
        "--val-data", help="Images (with labels if available) for --max-miou-drop; default: --data.")] = None,
    val_images: Annotated[int, typer.Option("--val-images", min=1, help="Images for --max-miou-drop.")] = 100,
    seed: Seed = 0,
    split: Split = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for the checks.")] = None,
) -> None:
    """OpenVINO IR in FP32 (default), FP16 or INT8, checked against the ONNX model before it is kept.

    Examples:
      rfdeploy build openvino model.onnx -o model.xml
      rfdeploy build openvino model.onnx --int8 --data calib/ -o model.int8.xml
      rfdeploy build openvino model.onnx --int8 --data calib/ --val-data val/ --max-miou-drop 0.5 -o model.int8.xml
      rfdeploy build openvino model.int8.onnx --int8 -o model.qdq.xml
    """
    from .export.openvino import convert_openvino

    if fp16 and int8:
        raise UsageError("--fp16 and --int8 exclude each other; pick one")
    precision = "int8" if int8 else "fp16" if fp16 else "fp32"
    with _progress() as bar:
        task = bar.add_task(f"building OpenVINO {precision}", total=None, info="")
        res = convert_openvino(model, output, precision=precision, data=data, num_images=num_images, seed=seed,
                               split=split, max_miou_drop=max_miou_drop, val_data=val_data, val_images=val_images,
                               threads=threads, command=_command_line(),
                               progress=lambda i, n: bar.update(task, completed=i, total=n))
    meta = res.metadata
    check = meta["check"]
    out.print(f"{res.path}: OpenVINO IR {precision} ({res.path.with_suffix('.bin').stat().st_size / 2**20:.1f} MiB "
              f"weights); vs ONNX on {check['inputs']}: max abs error {check['max_abs_error']:.3g}, argmax "
              f"agreement {check['argmax_agreement']:.2%}", highlight=False)
    q = meta.get("quantization") or {}
    if "final_drop_points" in q:
        out.print(f"NNCF accuracy control: {q['metric']} {q['fp32_metric']:.2f} (FP32) -> {q['int8_metric']:.2f} "
                  f"(INT8), drop {q['final_drop_points']:.3f} pt (budget {q['max_miou_drop_points']} pt)",
                  highlight=False)
    out.print(f"metadata: {res.metadata_path}", highlight=False)


@app.command("parity")
@handle_errors
def parity_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="The PyTorch checkpoint the artifact came from (reference).")],
    model: Annotated[Path, typer.Argument(help="Deployed artifact: .onnx (FP32, FP16, Q/DQ INT8), .xml, checkpoint.")],
    data: Annotated[Path, typer.Option("--data", help="Images: VOC/Cityscapes layout (labels) or a plain folder.")],
    split: Split = None,
    num_images: Annotated[int | None, typer.Option("--num-images", min=1, help="First N images.")] = None,
    runtime: Annotated[str, typer.Option("--runtime", help="auto | onnxruntime | openvino | tensorrt | torch.")] = (
        "auto"
    ),
    max_miou_drop: Annotated[
        float | None, typer.Option("--max-miou-drop", help="Gate: max |mIoU drop| in points (default per precision).")
    ] = None,
    min_agreement: Annotated[
        float | None, typer.Option("--min-agreement", help="Gate: min pixel agreement, 0-1 or percent.")
    ] = None,
    multi_scale: Annotated[
        str | None, typer.Option("--multi-scale", help="Test-time scales for both sides, e.g. 0.75,1,1.25.")
    ] = None,
    flip: Annotated[bool, typer.Option("--flip", help="Test-time horizontal flip for both sides.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here ('-': stdout).")] = None,
    markdown_out: Annotated[Path | None, typer.Option("--markdown", help="Write a Markdown report here.")] = None,
    save_worst: Annotated[
        tuple[int, Path] | None, typer.Option("--save-worst", help="K DIR: PNG panels of the K least-agreeing images.")
    ] = None,
    threads: Threads = None,
    inference_precision: Annotated[
        str, typer.Option("--inference-precision", help="OpenVINO: f32 | bf16 | f16 (recorded as run).")
    ] = "f32",
) -> None:
    """Prove the deployed model still segments like PyTorch: mIoU drop, agreement, gates (exit 3 on failure).

    Examples:
      rfdeploy parity demo.safetensors demo.onnx --data synth-val
      rfdeploy parity rf_lw50_voc.pth.tar rf_lw50.int8.onnx --data VOC2012 --num-images 500 --save-worst 8 worst/
    """
    from .errors import ParityError
    from .parity import report_markdown, validate_parity

    scales = (1.0,)
    if multi_scale:
        try:
            scales = tuple(float(s) for s in multi_scale.split(","))
        except ValueError:
            raise typer.BadParameter(f"expected comma-separated numbers, got {multi_scale!r}") from None
    k, worst_dir = save_worst if save_worst else (0, None)
    with _progress() as bar:
        task = bar.add_task("parity", total=num_images, info="")
        report = validate_parity(checkpoint, model, data, runtime=runtime, split=split, num_images=num_images,
                                 max_miou_drop=max_miou_drop, min_agreement=min_agreement, scales=scales, flip=flip,
                                 save_worst=k, worst_dir=worst_dir, threads=threads,
                                 inference_precision=inference_precision,
                                 progress=lambda i, n: bar.update(task, completed=i, total=n))
    result = report.to_dict()
    if json_out is not None:
        text = json.dumps(result, indent=2)
        if str(json_out) == "-":
            out.print_json(text)
        else:
            json_out.write_text(text + "\n")
    if markdown_out is not None:
        markdown_out.write_text(report_markdown(result))
    if str(json_out) != "-":
        _print_parity(result)
    if not report.passed:
        raise ParityError("parity gate failed: " + "; ".join(report.failed_gates),
                          hint="see the report; --save-worst K DIR shows where the backend disagrees")


def _print_parity(r: dict[str, Any]) -> None:
    def pct(v: float | None, d: int = 2) -> str:
        return "n/a" if v is None else f"{v * 100:.{d}f}"

    table = Table(title=f"parity: {Path(r['artifact']).name} ({r['runtime']}, {r['precision']}) vs PyTorch, "
                  f"{r['num_images']} images")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [("PyTorch mIoU", pct(r["reference_miou"])), ("backend mIoU", pct(r["backend_miou"])),
            ("mIoU drop (pt)", "n/a" if r["miou_drop_points"] is None else f"{r['miou_drop_points']:.3f}"),
            ("agreement mIoU", pct(r["agreement_miou"])), ("pixel agreement", pct(r["pixel_agreement"], 3)),
            ("boundary agreement", pct(r["boundary_agreement"], 3)),
            ("logit max abs error", "n/a" if r["logit_max_abs_error"] is None else f"{r['logit_max_abs_error']:.3g}")]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    classes = Table(title="per class")
    for col in ("class", "PyTorch IoU", "backend IoU", "drop (pt)", "agreement IoU"):
        classes.add_column(col, justify="left" if col == "class" else "right")
    for c in r["per_class"]:
        classes.add_row(c["class"], pct(c["reference_iou"]), pct(c["backend_iou"]),
                        "n/a" if c["drop_points"] is None else f"{c['drop_points']:.2f}", pct(c["agreement_iou"]))
    out.print(classes)
    gates = r["gates"]
    verdict = "PASSED" if r["passed"] else "FAILED"
    out.print(f"{verdict}: gates for {r['precision']}: |mIoU drop| <= {gates['max_miou_drop']} pt, pixel agreement "
              f">= {gates['min_agreement'] * 100:.2f} %", highlight=False)


# --------------------------------------------------------------------------------------------- bench
@app.command("bench")
@handle_errors
def bench_cmd(
    model: Annotated[Path, typer.Argument(help="Artifact: .onnx, OpenVINO .xml, or a checkpoint (PyTorch eager).")],
    runtime: Annotated[str, typer.Option("--runtime", help="auto | onnxruntime | openvino | tensorrt | torch.")] = (
        "auto"
    ),
    device: Annotated[str, typer.Option("--device", help="cpu | gpu | npu | dla.")] = "cpu",
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Batch (dynamic-batch artifacts).")] = None,
    input_size: Annotated[str | None, typer.Option("--input-size", help="HxW for dynamic artifacts.")] = None,
    warmup: Annotated[int, typer.Option("--warmup", min=0)] = 10,
    iterations: Annotated[int | None, typer.Option("--iterations", min=1, help="Timed iterations (default 100).")] = (
        None
    ),
    duration: Annotated[float | None, typer.Option("--duration", min=0.1, help="Or: seconds of timing.")] = None,
    threads: Threads = None,
    hint: Annotated[str, typer.Option("--hint", help="OpenVINO performance hint: latency | throughput.")] = "latency",
    inference_precision: Annotated[
        str, typer.Option("--inference-precision", help="OpenVINO: f32 | bf16 | f16 (recorded as run).")
    ] = "f32",
    end_to_end: Annotated[bool, typer.Option("--end-to-end", help="Also time decode+preprocess+infer+argmax.")] = (
        False
    ),
    data: Annotated[Path | None, typer.Option("--data", help="Images for --end-to-end (default: synthetic JPEGs).")] = (
        None
    ),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON result here ('-': stdout).")] = None,
    peak: Annotated[bool, typer.Option("--peak/--no-peak", help="Measure a dense-conv peak for efficiency.")] = True,
) -> None:
    """Latency of one artifact on this device, with the device fingerprint and the timing protocol.

    Examples:
      rfdeploy bench model.onnx --input-size 512x512 --iterations 50 --json cpu-ort.json
      rfdeploy bench model.xml --inference-precision bf16 --hint throughput --duration 20
    """
    from .bench import benchmark

    size = parse_size(input_size) if input_size else None
    result = benchmark(model, runtime=runtime, device=device, batch=batch, input_size=size, warmup=warmup,
                       iterations=None if duration else (iterations or 100), duration_s=duration, threads=threads,
                       hint=hint, inference_precision=inference_precision, end_to_end=end_to_end, data=data,
                       peak=peak)
    if json_out is not None:
        text = json.dumps(result, indent=2)
        if str(json_out) == "-":
            out.print_json(text)
            return
        json_out.write_text(text + "\n")
    table = Table(title=f"bench: {model.name} ({result['runtime']}, {result['device']}, {result['precision']}"
                  + (f", ran {result['runtime_precision']}" if result.get("runtime_precision") else "")
                  + f") {result['input_size'][0]}x{result['input_size'][1]} batch {result['batch']}")
    table.add_column("timing")
    for col in ("mean", "p50", "p90", "p99", "min", "max", "img/s"):
        table.add_column(col, justify="right")
    for label in ("compute_only", "device_only", "end_to_end"):
        s = result.get(label)
        if s:
            table.add_row(label.replace("_", "-"), *(f"{s[k]:.2f}" for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms",
                                                                                "min_ms", "max_ms")),
                          f"{s['throughput_ips']:.1f}")
    out.print(table)
    extra = f"{result['gmac_per_image']:.2f} GMAC/image, {result['achieved_gmacs']:.1f} GMAC/s achieved" if (
        result.get("gmac_per_image")) else ""
    if result.get("fraction_of_peak"):
        extra += f" = {result['fraction_of_peak']:.0%} of a {result['peak_gmacs']:.0f} GMAC/s dense-conv peak"
    extra += "; " if extra else ""
    if result.get("device_memory_mib"):
        extra += f"device memory {result['device_memory_mib']:.0f} MiB; "
    out.print(f"{extra}peak RSS {result['peak_rss_mib']:.0f} MiB; {result['protocol']['timing']}", highlight=False)


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
    from .report import make_report

    path, rows, charts = make_report(inputs, output)
    out.print(f"{path}: {len(rows)} rows" + (f", charts {', '.join(str(c) for c in charts)}" if charts else ""),
              highlight=False)


# --------------------------------------------------------------------------------------------- calibrate
@app.command("calibrate")
@handle_errors
def calibrate_cmd(
    model: Annotated[Path, typer.Argument(help="FP32 ONNX written by 'rfdeploy export onnx'.")],
    data: Annotated[Path, typer.Option("--data", help="Calibration images: folder, VOC, Cityscapes or synthetic.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Q/DQ INT8 ONNX to write (+ .meta.json).")],
    method: Annotated[str | None, typer.Option(
        "--method", help="modelopt: entropy (default) | max; onnxruntime: max (default) | percentile.")] = None,
    num_images: Annotated[int, typer.Option("--num-images", min=1, help="Images sampled for calibration.")] = 300,
    producer: Annotated[str, typer.Option(
        "--producer", help="Q/DQ producer: modelopt (NVIDIA ModelOpt ONNX PTQ; the better IoU here) | "
        "onnxruntime (quantize_static; streams the set).")] = "modelopt",
    max_miou_drop: Annotated[float | None, typer.Option(
        "--max-miou-drop", help="Accuracy-aware fallback: leave the most sensitive parts (backbone stages, CRP "
        "blocks, classifier, resizes) in float until the mIoU drop vs FP32 (points) fits.")] = None,
    val_data: Annotated[Path | None, typer.Option(
        "--val-data", help="Images (with labels if available) for --max-miou-drop; default: --data.")] = None,
    val_images: Annotated[int, typer.Option("--val-images", min=1,
                                            help="Images evaluated per --max-miou-drop trial.")] = 100,
    seed: Seed = 0,
    split: Split = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for ONNX Runtime.")] = None,
) -> None:
    """Explicit-quantization INT8 (symmetric Q/DQ, per-channel weights) that TensorRT, ONNX Runtime and
    OpenVINO run.

    Example: rfdeploy calibrate model.onnx --data calib-images/ --num-images 300 -o model.int8.onnx

    Example: rfdeploy calibrate model.onnx --data calib/ --val-data val/ --max-miou-drop 0.5 -o model.int8.onnx
    """
    from .calibration.qdq import calibrate_onnx

    with _progress() as bar:
        task = bar.add_task("calibrating", total=None, info="")
        res = calibrate_onnx(model, data, output, method=method, num_images=num_images, seed=seed, split=split,
                             producer=producer, max_miou_drop=max_miou_drop, val_data=val_data,
                             val_images=val_images, threads=threads, command=_command_line(),
                             progress=lambda i, n: bar.update(task, completed=i, total=n),
                             report=lambda msg: None if _state["quiet"] else err.print(msg, highlight=False))
    cal = res.metadata["calibration"]
    used = res.metadata["quantization"]["method"]
    out.print(f"{res.path}: INT8 Q/DQ ({producer}, {used}, {cal['count']} images, digest {cal['digest'][:12]}); "
              f"argmax agreement with FP32 on calibration images "
              f"{res.metadata['check']['argmax_agreement_vs_fp32_on_calibration_images']:.2%}", highlight=False)
    fb = res.metadata.get("fallback")
    if fb is not None:
        parts = ", ".join(fb["fallback_parts"]) or "none"
        out.print(f"mIoU drop vs FP32 on {fb['validation']['images']} images: {fb['initial_drop_points']:.3f} pt "
                  f"fully quantized -> {fb['final_drop_points']:.3f} pt (budget {fb['max_miou_drop_points']} pt); "
                  f"left in float: {parts} ({fb['fallback_node_count']} nodes)", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
