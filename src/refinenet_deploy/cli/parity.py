"""``rfdeploy parity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .app import app, handle_errors, out, progress_bar
from .options import Split, Threads


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
    from ..operations.parity import parse_scales, raise_for_gates, validate_parity
    from ..operations.report import write_parity_report

    scales = parse_scales(multi_scale)
    k, worst_dir = save_worst if save_worst else (0, None)
    with progress_bar() as bar:
        task = bar.add_task("parity", total=num_images, info="")
        report = validate_parity(
            checkpoint,
            model,
            data,
            runtime=runtime,
            split=split,
            num_images=num_images,
            max_miou_drop=max_miou_drop,
            min_agreement=min_agreement,
            scales=scales,
            flip=flip,
            save_worst=k,
            worst_dir=worst_dir,
            threads=threads,
            inference_precision=inference_precision,
            progress=lambda i, n: bar.update(task, completed=i, total=n),
        )
    result = report.to_dict()
    if json_out is not None and str(json_out) == "-":
        out.print_json(json.dumps(result, indent=2))
    write_parity_report(result, json_out=None if str(json_out) == "-" else json_out, markdown_out=markdown_out)
    if str(json_out) != "-":
        _print_parity(result)
    raise_for_gates(report)


def _print_parity(r: dict[str, Any]) -> None:
    def pct(v: float | None, d: int = 2) -> str:
        return "n/a" if v is None else f"{v * 100:.{d}f}"

    table = Table(
        title=f"parity: {Path(r['artifact']).name} ({r['runtime']}, {r['precision']}) vs PyTorch, "
        f"{r['num_images']} images"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("PyTorch mIoU", pct(r["reference_miou"])),
        ("backend mIoU", pct(r["backend_miou"])),
        ("mIoU drop (pt)", "n/a" if r["miou_drop_points"] is None else f"{r['miou_drop_points']:.3f}"),
        ("agreement mIoU", pct(r["agreement_miou"])),
        ("pixel agreement", pct(r["pixel_agreement"], 3)),
        ("boundary agreement", pct(r["boundary_agreement"], 3)),
        ("logit max abs error", "n/a" if r["logit_max_abs_error"] is None else f"{r['logit_max_abs_error']:.3g}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    classes = Table(title="per class")
    for col in ("class", "PyTorch IoU", "backend IoU", "drop (pt)", "agreement IoU"):
        classes.add_column(col, justify="left" if col == "class" else "right")
    for c in r["per_class"]:
        classes.add_row(
            c["class"],
            pct(c["reference_iou"]),
            pct(c["backend_iou"]),
            "n/a" if c["drop_points"] is None else f"{c['drop_points']:.2f}",
            pct(c["agreement_iou"]),
        )
    out.print(classes)
    gates = r["gates"]
    verdict = "PASSED" if r["passed"] else "FAILED"
    logits = r.get("logit_gate")
    out.print(
        f"{verdict}: gates for {r['precision']}: |mIoU drop| <= {gates['max_miou_drop']} pt, pixel agreement "
        f">= {gates['min_agreement'] * 100:.2f} %"
        + (", FP32 logits within 1e-4 + 1e-5 x max|logit|" if logits else ""),
        highlight=False,
    )
