"""``rfdeploy export onnx."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import Table, command_line, emit_json, err, export_app, handle_errors, out, status_spinner
from .options import Arch, JsonOut, NumClasses, parse_size


# --------------------------------------------------------------------------------------------- export onnx
@export_app.command("onnx")
@handle_errors
def export_onnx_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.pth, .pth.tar, .pt, .safetensors).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .onnx path (+ .meta.json sidecar).")],
    arch: Arch = "auto",
    num_classes: NumClasses = None,
    input_size: Annotated[
        str | None,
        typer.Option(
            "--input-size",
            help="Export (trace) size HxW. Default: the checkpoint metadata's input size, else the architecture's "
            "(512x512 for the released models).",
        ),
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=256, help="Batch size of the exported graph (1-256).")
    ] = 1,
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
    trt_check: Annotated[
        bool,
        typer.Option(
            "--trt-check/--no-trt-check",
            help="Also parse and build the ONNX with TensorRT when a TensorRT library "
            "is installed (TensorRT-RTX builds on a CPU).",
        ),
    ] = True,
    as_json: JsonOut = None,
) -> None:
    """Export to ONNX, simplify, verify against PyTorch in ONNX Runtime, write provenance.

    Exits 6 (and writes nothing) if the ONNX model does not match PyTorch within tolerance.

    \b
    Examples:
      rfdeploy export onnx rf_lw50_voc.pth.tar --dynamic -o rf_lw50.onnx
      rfdeploy export onnx demo.safetensors --head argmax --input-format \\
          nhwc-uint8 --input-size 480x640 -o cam.onnx
    """
    from ..operations.export import ExportSpec, export_onnx

    spec = ExportSpec(
        arch=arch,
        num_classes=num_classes,
        input_size=parse_size(input_size) if input_size else None,
        batch=batch,
        dynamic=dynamic,
        dynamic_batch=dynamic_batch,
        opset=opset,
        simplify=simplify,
        head=head,
        input_format=input_format,
        fp16=fp16,
        exporter=exporter,
        data=str(data) if data else None,
        trt_check=trt_check,
    )
    with status_spinner("exporting") as st:
        result = export_onnx(
            checkpoint,
            output,
            spec,
            command=command_line(),
            progress=(lambda msg: st.update(msg)) if st is not None else None,
        )
    err.print(f"wrote {result.path} (+ {result.metadata_path.name})", highlight=False)
    if emit_json(result.metadata, as_json):
        return
    _print_export(result)
    meta = result.metadata
    io_in, io_out = meta["inputs"][0], meta["outputs"][0]
    out.print(
        f"input  {io_in['name']}: {io_in['dtype']} {io_in['shape']}\noutput {io_out['name']}: "
        f"{io_out['dtype']} {io_out['shape']}\nmetadata: {result.metadata_path}",
        highlight=False,
        soft_wrap=True,  # paths stay whole
    )


def _print_export(result) -> None:  # noqa: ANN001  (ExportResult)
    """The verification table (folds, never cuts, at 80 columns) and the simplifier/TensorRT lines."""
    meta = result.metadata
    table = Table(
        title=f"{result.path} ({meta['arch']}, {meta['num_classes']} classes, {meta['precision']}, "
        f"head {meta['head']}, opset {meta['opset']}): ONNX Runtime vs PyTorch, max abs/rel logit error and "
        "argmax agreement"
    )
    widest = max((len(c.name) for c in result.cases), default=8)
    table.add_column("case", min_width=min(widest, 24))  # a case name stays whole
    for col in ("size", "max abs", "max rel", "argmax", "ok"):  # short headers: the table fits 80 columns
        table.add_column(col, justify="right")
    for c in result.cases:
        d = c.diff
        table.add_row(
            c.name,
            f"{c.size[0]}x{c.size[1]}",
            f"{d.max_abs_error:.2e}",
            f"{d.max_rel_error:.2e}",
            f"{d.argmax_agreement:.4%}",
            "yes" if d.within_tolerance else "NO",
        )
    out.print(table)
    if result.simplification:
        worst = max(c.diff.max_abs_error for c in result.simplification)
        out.print(
            f"{meta['simplifier']}: simplified graph equals the unsimplified one on all "
            f"{len(result.simplification)} checks (max abs diff {worst:.2e})",
            highlight=False,
        )
    trt = meta["verification"].get("tensorrt")
    if trt:
        out.print(
            f"{trt['library']} {trt['version']}: parses and builds ({trt['layers']} layers, "
            f"{trt['build_seconds']:.1f} s)",
            highlight=False,
        )
