"""``rfdeploy build openvino`` and ``rfdeploy build trt``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import _state, build_app, command_line, emit_json, err, handle_errors, out, progress_bar, status_spinner
from .options import (
    MAX_THREADS,
    Int8MinAgreement,
    JsonOut,
    NumImages,
    Seed,
    Split,
    ValData,
    ValImages,
    finite_float,
    parse_size,
)


# --------------------------------------------------------------------------------------------- build openvino
@build_app.command("openvino")
@handle_errors
def build_openvino_cmd(
    model: Annotated[
        Path, typer.Argument(help="ONNX from 'rfdeploy export onnx' (FP32) or 'rfdeploy calibrate' (Q/DQ INT8).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="IR to write: model.xml (+ .bin, .meta.json).")],
    fp16: Annotated[bool, typer.Option("--fp16", help="FP16 weights (compress_to_fp16).")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="INT8: NNCF on --data, or a calibrated Q/DQ ONNX.")] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Images for --int8: NNCF's calibration set; for a Q/DQ ONNX, the self-check's images (default: "
            "the calibration images it names, else noise).",
        ),
    ] = None,
    num_images: NumImages = None,
    min_agreement: Int8MinAgreement = None,
    max_miou_drop: Annotated[
        float | None,
        typer.Option(
            "--max-miou-drop",
            callback=finite_float(0.0, 100.0),
            help="--int8 with NNCF accuracy control: at most this mIoU drop (points, 0-100) vs FP32, measured on "
            "--val-data.",
        ),
    ] = None,
    val_data: ValData = None,
    val_images: ValImages = 100,
    seed: Seed = 0,
    split: Split = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, max=MAX_THREADS, help="CPU threads for the checks.")
    ] = None,
    strict_precision: Annotated[
        bool,
        typer.Option("--strict-precision", help="Exit 6 when the CPU does not run the requested precision."),
    ] = False,
    as_json: JsonOut = None,
) -> None:
    """OpenVINO IR in FP32 (default), FP16 or INT8, checked against the ONNX model before it is kept.

    \b
    Examples:
      rfdeploy build openvino model.onnx -o model.xml
      rfdeploy build openvino model.onnx --int8 --data calib/ -o model.int8.xml
      rfdeploy build openvino model.onnx --int8 --data calib/ --val-data val/ \\
          --max-miou-drop 0.5 -o model.int8.xml
      rfdeploy build openvino model.int8.onnx --int8 -o model.qdq.xml
      rfdeploy build openvino model.int8.onnx --int8 --data val/ \\
          --min-agreement 95 -o model.qdq.xml
      rfdeploy build openvino model.int8.onnx --int8 --strict-precision \\
          -o model.qdq.xml
    """
    from ..calibration.options import AccuracyControl, CalibrationOptions
    from ..operations.build_openvino import convert_openvino, precision_from_flags

    precision = precision_from_flags(fp16, int8)
    calibration = CalibrationOptions(num_images=num_images, seed=seed, split=split)
    accuracy = AccuracyControl(
        max_miou_drop=max_miou_drop,
        val_data=val_data,
        val_images=val_images,
        min_agreement=min_agreement,
        threads=threads,
    )
    with progress_bar() as bar:
        task = bar.add_task(f"building OpenVINO {precision}", total=None, info="")
        res = convert_openvino(
            model,
            output,
            precision=precision,
            data=data,
            calibration=calibration,
            accuracy=accuracy,
            command=command_line(),
            progress=None if _state["quiet"] else lambda i, n: bar.update(task, completed=i, total=n),
            strict_precision=strict_precision,
        )
    err.print(f"wrote {res.path} (+ {res.path.with_suffix('.bin').name}, {res.metadata_path.name})", highlight=False)
    if emit_json(res.metadata, as_json):
        return
    meta = res.metadata
    check = meta["check"]
    out.print(
        f"{res.path}: OpenVINO IR {precision} ({res.path.with_suffix('.bin').stat().st_size / 2**20:.1f} MiB "
        f"weights); vs ONNX on {check['inputs']}: max abs error {check['max_abs_error']:.3g}, argmax "
        f"agreement {check['argmax_agreement']:.2%}",
        highlight=False,
    )
    q = meta.get("quantization") or {}
    if "final_drop_points" in q:
        out.print(
            f"NNCF accuracy control: {q['metric']} {q['fp32_metric']:.2f} % (FP32) -> {q['int8_metric']:.2f} % "
            f"(INT8), drop {q['final_drop_points']:.3f} pt (budget {q['max_miou_drop_points']} pt)",
            highlight=False,
        )
    audit = meta.get("precision_audit") or {}
    if audit.get("summary"):
        runs = ", ".join(f"{k} {n}" for k, n in audit["by_precision"].items())
        out.print(f"runs on {audit['device']}: {audit['summary']} ({runs})", highlight=False)
    if audit.get("warning"):
        err.print(f"warning: {audit['warning']}", highlight=False, soft_wrap=True)
    out.print(f"metadata: {res.metadata_path}", highlight=False)


# --------------------------------------------------------------------------------------------- build trt
@build_app.command("trt")
@handle_errors
def build_trt_cmd(
    model: Annotated[
        Path,
        typer.Argument(help="ONNX: FP32 or FP16 from 'rfdeploy export onnx', or Q/DQ INT8 from 'rfdeploy calibrate'."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Engine to write: model.engine (+ .meta.json).")],
    fp16: Annotated[bool, typer.Option("--fp16", help="FP16: the FP16 ONNX (converted here from an FP32 one).")] = (
        False
    ),
    int8: Annotated[bool, typer.Option("--int8", help="INT8: a Q/DQ ONNX, or calibrate an FP32 one on --data.")] = (
        False
    ),
    data: Annotated[Path | None, typer.Option("--data", help="Calibration images for --int8 from an FP32 ONNX.")] = (
        None
    ),
    num_images: NumImages = None,
    input_size: Annotated[
        str | None,
        typer.Option("--input-size", help="HxW: one fixed size for a dynamic ONNX (min = opt = max; what DLA needs)."),
    ] = None,
    shapes: Annotated[
        str | None,
        typer.Option(
            "--shapes",
            help="MINxMIN:OPTxOPT:MAXxMAX (HxW each) profile for a dynamic ONNX; default: 32x32, the "
            "export size, twice the export size.",
        ),
    ] = None,
    library: Annotated[
        str,
        typer.Option("--library", help="auto (tensorrt if it imports, else tensorrt-rtx) | tensorrt | tensorrt-rtx."),
    ] = "auto",
    workspace: Annotated[
        int | None, typer.Option("--workspace", min=1, max=1 << 22, help="Workspace limit in MiB.")
    ] = None,
    timing_cache: Annotated[
        Path | None,
        typer.Option("--timing-cache", help="Timing cache file, read if present and written back (TensorRT 10/11)."),
    ] = None,
    opt_level: Annotated[
        int | None,
        typer.Option("--opt-level", min=0, max=5, help="Builder optimisation level 0-5 (TensorRT's default 3)."),
    ] = None,
    dla_core: Annotated[
        int | None,
        typer.Option("--dla-core", min=0, help="Build for this DLA core (Jetson; static shapes, FP16/INT8)."),
    ] = None,
    gpu_fallback: Annotated[
        bool,
        typer.Option("--gpu-fallback/--no-gpu-fallback", help="DLA: let unsupported layers run on the GPU (reported)."),
    ] = True,
    version_compatible: Annotated[
        bool, typer.Option("--version-compatible", help="Engine that later TensorRT versions can run (TensorRT 10/11).")
    ] = False,
    hardware_compatible: Annotated[
        bool, typer.Option("--hardware-compatible", help="Engine for any Ampere-or-newer GPU (TensorRT 10/11).")
    ] = False,
    layer_report: Annotated[
        Path | None, typer.Option("--layer-report", help="Write per-layer types and precisions as JSON here.")
    ] = None,
    calibrator: Annotated[
        str,
        typer.Option(
            "--calibrator",
            help="INT8 from an FP32 ONNX: qdq (calibrate to Q/DQ first; every TensorRT) | implicit "
            "(TensorRT 10.x entropy calibrator, e.g. for DLA).",
        ),
    ] = "qdq",
    seed: Seed = 0,
    split: Split = None,
    as_json: JsonOut = None,
    min_agreement: Int8MinAgreement = None,
    strict_precision: Annotated[
        bool,
        typer.Option("--strict-precision", help="Exit 6 when convolutions run FP32 in an --int8 or --fp16 engine."),
    ] = False,
) -> None:
    """TensorRT engine (TensorRT 10/11 on the device; TensorRT-RTX builds without a GPU). Precision comes from the
    ONNX. Exits 6 naming the failing node if TensorRT cannot parse or build it; 4 without a TensorRT library.

    \b
    Examples:
      rfdeploy build trt model.onnx --fp16 -o model.fp16.engine
      rfdeploy build trt model.int8.onnx --int8 --layer-report layers.json -o \\
          model.int8.engine
      rfdeploy build trt model.onnx --int8 --data calib/ --dla-core 0 \\
          --input-size 512x512 -o model.dla.engine
      rfdeploy build trt model.onnx --shapes 256x256:512x512:1024x1024 -o \\
          model.engine
    """
    from ..calibration.options import AccuracyControl, CalibrationOptions
    from ..operations.build_openvino import precision_from_flags
    from ..operations.build_trt import build_engine

    precision = precision_from_flags(fp16, int8)
    size = parse_size(input_size) if input_size else None
    calibration = CalibrationOptions(num_images=num_images, seed=seed, split=split)
    accuracy = AccuracyControl(min_agreement=min_agreement)
    with status_spinner("building") as st:
        res = build_engine(
            model,
            output,
            precision=None if precision == "fp32" else precision,
            data=data,
            input_size=size,
            shapes=shapes,
            library=library,
            workspace_mib=workspace,
            timing_cache=timing_cache,
            opt_level=opt_level,
            dla_core=dla_core,
            gpu_fallback=gpu_fallback,
            version_compatible=version_compatible,
            hardware_compatible=hardware_compatible,
            layer_report=layer_report,
            calibrator=calibrator,
            calibration=calibration,
            accuracy=accuracy,
            command=command_line(),
            progress=(lambda msg: st.update(msg)) if st is not None else None,
            strict_precision=strict_precision,
        )
    kept = res.metadata.get("onnx", {}).get("kept_as")
    err.print(
        f"wrote {res.path} (+ {res.metadata_path.name}{', ' + kept if kept else ''})",
        highlight=False,
    )
    meta = res.metadata
    if meta["precision_audit"].get("warning"):
        err.print(f"warning: {meta['precision_audit']['warning']}", highlight=False, soft_wrap=True)
    if emit_json(meta, as_json):
        return
    trt, build, summary = meta["tensorrt"], meta["build"], meta["layer_report"]["summary"]
    shapes_text = "; ".join(
        f"{s['name']} {'x'.join(map(str, s['min']))}..{'x'.join(map(str, s['opt']))}..{'x'.join(map(str, s['max']))}"
        for s in meta["shapes"]
    )
    out.print(
        f"{res.path}: {trt['generation']} {trt['version']} engine, {meta['precision']} "
        f"({meta['artifact']['bytes'] / 2**20:.1f} MiB, built in {build['seconds']:.1f} s); shapes {shapes_text}",
        highlight=False,
    )
    source = meta["layer_report"]["source"]
    if source == "network":
        out.print(
            f"layers (parsed network, before fusion): {summary['layers']} layers, {summary['convolutions']} "
            f"convolutions ({summary['convolutions_int8']} INT8: Q/DQ input and weights), {summary['quantize']} Q / "
            f"{summary['dequantize']} DQ, {summary['resizes']} resizes, {summary['layers_with_half_outputs']} "
            "with FP16 outputs",
            highlight=False,
        )
    else:
        out.print(
            f"layers (engine inspector): {summary['layers']} fused layers; output formats "
            f"{summary.get('by_output_format')}",
            highlight=False,
        )
    dla = meta.get("dla")
    if dla:
        on_gpu = dla["layers_on_gpu"] or []
        out.print(
            f"DLA core {dla['core']}: {len(on_gpu)} layers fall back to the GPU"
            + (f" ({', '.join(on_gpu[:8])}{', ...' if len(on_gpu) > 8 else ''})" if on_gpu else ""),
            highlight=False,
        )
    device = meta["device"]
    target = (
        "portable: compute capability " + ", ".join(device["compute_capabilities"])
        if device.get("portable")
        else f"{device.get('name')} (compute capability {device.get('compute_capability')})"
    )
    out.print(f"target: {target}", highlight=False)
    audit = meta["precision_audit"]
    runs = ", ".join(f"{k} {n}" for k, n in audit["by_precision"].items())
    out.print(f"precision ({audit['source']}): {audit['summary']} ({runs})", highlight=False)
    # a command to copy: never wrapped by the terminal width (soft wrap keeps it one line)
    out.print(f"trtexec equivalent: {res.trtexec_here}", highlight=False, markup=False, soft_wrap=True)
    out.print(f"metadata: {res.metadata_path}", highlight=False, markup=False, soft_wrap=True)
    if res.layer_report_path:
        err.print(f"wrote {res.layer_report_path}", highlight=False)
