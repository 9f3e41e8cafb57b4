"""``rfdeploy calibrate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import _state, app, command_line, emit_json, err, handle_errors, out, progress_bar
from .options import MAX_THREADS, Int8MinAgreement, JsonOut, NumImages, Seed, Split, ValData, ValImages, finite_float


# --------------------------------------------------------------------------------------------- calibrate
@app.command("calibrate")
@handle_errors
def calibrate_cmd(
    model: Annotated[Path, typer.Argument(help="FP32 ONNX written by 'rfdeploy export onnx'.")],
    data: Annotated[
        Path, typer.Option("--data", "--calib-data", help="Calibration images: folder, VOC, Cityscapes or synthetic.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Q/DQ INT8 ONNX to write (+ .meta.json).")],
    method: Annotated[
        str | None,
        typer.Option("--method", help="modelopt: entropy (default) | max; onnxruntime: max (default) | percentile."),
    ] = None,
    num_images: NumImages = None,
    producer: Annotated[
        str,
        typer.Option(
            "--producer",
            help="Q/DQ producer: modelopt (NVIDIA ModelOpt ONNX PTQ; the better IoU here) | "
            "onnxruntime (quantize_static; streams the set).",
        ),
    ] = "modelopt",
    max_miou_drop: Annotated[
        float | None,
        typer.Option(
            "--max-miou-drop",
            callback=finite_float(0.0, 100.0),
            help="Accuracy-aware fallback: leave the most sensitive parts (backbone stages, CRP "
            "blocks, classifier, resizes) in float until the mIoU drop vs FP32 (points, 0-100) fits.",
        ),
    ] = None,
    val_data: ValData = None,
    val_images: ValImages = 100,
    seed: Seed = 0,
    split: Split = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, max=MAX_THREADS, help="CPU threads for ONNX Runtime.")
    ] = None,
    min_agreement: Int8MinAgreement = None,
    keep_float: Annotated[
        str | None,
        typer.Option("--keep-float", help="Blocks to leave in float, as parity --localize names them: B1,B2."),
    ] = None,
    as_json: JsonOut = None,
) -> None:
    """Explicit-quantization INT8 (symmetric Q/DQ, per-channel weights) that TensorRT, ONNX Runtime and
    OpenVINO run.

    \b
    Example: rfdeploy calibrate model.onnx --data calib-images/ --num-images \\
          300 -o model.int8.onnx

    \b
    Example: rfdeploy calibrate model.onnx --data calib/ --val-data val/ \\
          --max-miou-drop 0.5 -o model.int8.onnx

    \b
    Example: rfdeploy calibrate model.onnx --data calib/ \\
          --keep-float refinenet4.crp,classifier -o model.int8.onnx
    """
    from ..calibration.options import AccuracyControl, CalibrationOptions, parse_blocks
    from ..operations.calibrate import calibrate_onnx

    options = CalibrationOptions(
        num_images=num_images,
        seed=seed,
        split=split,
        producer=producer,
        method=method,
        keep_float=parse_blocks(keep_float),
    )
    accuracy = AccuracyControl(
        max_miou_drop=max_miou_drop,
        val_data=val_data,
        val_images=val_images,
        min_agreement=min_agreement,
        threads=threads,
    )
    with progress_bar() as bar:
        task = bar.add_task("calibrating", total=None, info="")
        res = calibrate_onnx(
            model,
            data,
            output,
            options,
            accuracy,
            command=command_line(),
            progress=lambda i, n: bar.update(task, completed=i, total=n),
            report=lambda msg: None if _state["quiet"] else err.print(msg, highlight=False),
        )
    from ..operations.calibrate import calibration_manifest_path

    err.print(
        f"wrote {res.path} (+ {res.metadata_path.name}, {calibration_manifest_path(res.path).name})", highlight=False
    )
    if emit_json(res.metadata, as_json):
        return
    cal = res.metadata["calibration"]
    used = res.metadata["quantization"]["method"]
    out.print(
        f"{res.path}: INT8 Q/DQ ({producer}, {used}, {cal['count']} images, digest {cal['digest'][:12]}); "
        f"argmax agreement with FP32 on calibration images "
        f"{res.metadata['check']['argmax_agreement_vs_fp32_on_calibration_images']:.2%}",
        highlight=False,
    )
    fb = res.metadata.get("fallback")
    if fb is not None:
        parts = ", ".join(fb["fallback_parts"]) or "none"
        out.print(
            f"mIoU drop vs FP32 on {fb['validation']['images']} images: {fb['initial_drop_points']:.3f} pt "
            f"fully quantized -> {fb['final_drop_points']:.3f} pt (budget {fb['max_miou_drop_points']} pt); "
            f"left in float: {parts} ({fb['fallback_node_count']} nodes)",
            highlight=False,
        )
