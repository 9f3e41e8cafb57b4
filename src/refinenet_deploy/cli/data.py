"""``rfdeploy data synth, train, evaluate: datasets and the PyTorch side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .app import Table, app, command_line, data_app, emit_json, err, handle_errors, out, progress_bar
from .options import MAX_IMAGES, Arch, DataDir, JsonOut, NumClasses, Seed, Split, Threads, finite_float, parse_size


# --------------------------------------------------------------------------------------------- data
@data_app.command("synth")
@handle_errors
def data_synth_cmd(
    out_dir: Annotated[Path, typer.Argument(help="Output folder (must be new or empty).")],
    num: Annotated[int, typer.Option("--num", min=1, max=MAX_IMAGES, help="Number of scenes.")] = 200,
    size: Annotated[str, typer.Option("--size", help="Image size HxW.")] = "128x128",
    seed: Seed = 0,
    split: Annotated[str, typer.Option("--split", help="Split name written to ImageSets/Segmentation.")] = "train",
    as_json: JsonOut = None,
) -> None:
    """Write a VOC-layout dataset of procedurally generated scenes (deterministic for a seed).

    \b
    Example: rfdeploy data synth data/synth-val --num 200 --size 128x128 \\
          --seed 2 --split val
    """
    from ..artifacts import probe_output
    from ..data.synth import SYNTH_CLASSES, write_synth_dataset

    h, w = parse_size(size, "--size")
    probe_output(out_dir, what="output folder", kind="dir")
    with progress_bar() as bar:
        task = bar.add_task("synthesising", total=num, info="")
        write_synth_dataset(out_dir, num, h, w, seed, split=split, progress=lambda i, n: bar.update(task, completed=i))
    err.print(f"wrote {num} scenes ({h}x{w}, {len(SYNTH_CLASSES)} classes, seed {seed}) to {out_dir}", highlight=False)
    emit_json({"folder": str(out_dir), "num": num, "size": [h, w], "seed": seed, "split": split}, as_json)


# --------------------------------------------------------------------------------------------- train
@app.command("train")
@handle_errors
def train_cmd(
    data: DataDir,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for last.pt, best.pt, model.safetensors.")],
    val: Annotated[Path | None, typer.Option("--val", help="Validation dataset (mIoU per epoch).")] = None,
    arch: Annotated[str, typer.Option("--arch", help="Architecture to train.")] = "rf_lw_mbv2",
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=10_000)] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=4096)] = 16,
    lr: Annotated[
        float,
        typer.Option(
            "--lr", callback=finite_float(0.0, 10.0, open_min=True), help="Peak learning rate (AdamW, poly decay)."
        ),
    ] = 2e-3,
    crop_size: Annotated[
        int | None, typer.Option("--crop-size", min=16, max=8192, help="Square crop (16-8192); default: image side.")
    ] = None,
    seed: Seed = 0,
    threads: Threads = None,
    fp16_weights: Annotated[
        bool, typer.Option("--fp16-weights/--fp32-weights", help="Storage precision of the final file.")
    ] = True,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last.pt.")] = False,
    as_json: JsonOut = None,
) -> None:
    """Train a model on a labelled dataset; writes OUT/model.safetensors with its metadata.

    \b
    Example: rfdeploy train data/synth-train --val data/synth-val --epochs 20 \\
          -o runs/demo
    """
    from ..operations.training import TrainConfig, train

    cfg = TrainConfig(
        data=str(data),
        val_data=str(val) if val else None,
        out_dir=str(out_dir),
        arch=arch,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        crop_size=crop_size,
        seed=seed,
        threads=threads,
        fp16_weights=fp16_weights,
        command=command_line(),
    )
    with progress_bar() as bar:
        task = bar.add_task("epoch 1", total=None, info="")

        def report(p: Any) -> None:
            if p.kind == "step":
                bar.update(
                    task,
                    description=f"epoch {p.epoch}/{p.epochs}",
                    completed=p.step,
                    total=p.steps,
                    info=f"loss {p.loss:.3f} lr {p.lr:.2e}",
                )
            else:
                miou = "" if p.val_miou is None else f" val mIoU {p.val_miou * 100:.2f} %"
                err.print(f"epoch {p.epoch}/{p.epochs}: loss {p.loss:.4f}{miou} ({p.seconds:.0f} s)", highlight=False)

        result = train(cfg, progress=report, resume=resume)
    beside = [p.name for p in (result.checkpoint.parent / n for n in ("last.pt", "best.pt")) if p.is_file()]
    err.print(f"wrote {result.checkpoint}" + (f" (+ {', '.join(beside)})" if beside else ""), highlight=False)
    doc = {"checkpoint": str(result.checkpoint), "best_miou": result.best_miou, "epochs_run": result.epochs_run}
    if emit_json({**doc, "history": result.history}, as_json):
        return
    best = "not measured (no --val)" if result.best_miou is None else f"{result.best_miou * 100:.2f} %"
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
    as_json: JsonOut = None,
    strict_labels: Annotated[
        bool, typer.Option("--strict-labels", help="Exit 5 when labels have class ids outside the model's classes.")
    ] = False,
) -> None:
    """mIoU of a PyTorch checkpoint on a labelled dataset (logits upsampled to label size, then argmax).

    Label ids outside the classes (other than the ignore index 255) are counted and reported, not scored.

    \b
    Example: rfdeploy evaluate demo/rf_lw_mbv2_synth.safetensors --data synth-val
    """
    from ..operations.evaluation import evaluate_checkpoint

    with progress_bar() as bar:
        task = bar.add_task("evaluating", total=None, info="")
        res = evaluate_checkpoint(
            checkpoint,
            data,
            split=split,
            arch=arch,
            num_classes=num_classes,
            threads=threads,
            progress=lambda i, n: bar.update(task, completed=i, total=n),
            strict_labels=strict_labels,
        )
    if emit_json(res, as_json):
        return
    miou = f"{res['miou'] * 100:.2f} %"
    table = Table(title=f"{Path(checkpoint).name} on {data} ({res['num_images']} images): mIoU {miou}")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in zip(res["class_names"], res["iou"]):
        table.add_row(name, "absent" if iou is None else f"{iou * 100:.2f} %")
    out.print(table)
    labels = res["labels_out_of_range"]
    if labels["pixels"]:
        out.print(f"labels out of range: {labels['pixels']} pixels in {labels['images']} image(s) not scored")
