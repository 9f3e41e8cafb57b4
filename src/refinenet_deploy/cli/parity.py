"""``rfdeploy parity."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UsageError
from .app import Table, app, err, handle_errors, out, progress_bar
from .options import JsonOut, Split, Threads, parse_size


@app.command("parity")
@handle_errors
def parity_cmd(
    checkpoint: Annotated[
        Path,
        typer.Argument(help="The PyTorch checkpoint the artifact came from, or a reference saved by --save-reference."),
    ],
    models: Annotated[
        list[Path] | None,
        typer.Argument(help="Deployed artifact(s): .onnx (FP32, FP16, Q/DQ INT8), .xml, checkpoint."),
    ] = None,
    data: Annotated[
        Path, typer.Option("--data", help="Images: VOC/Cityscapes layout (labels) or a plain folder.")
    ] = ...,  # type: ignore[assignment]
    split: Split = None,
    num_images: Annotated[int | None, typer.Option("--num-images", min=1, help="First N images.")] = None,
    runtime: Annotated[str, typer.Option("--runtime", help="auto | onnxruntime | openvino | tensorrt | torch.")] = (
        "auto"
    ),
    max_miou_drop: Annotated[
        float | None,
        typer.Option("--max-miou-drop", help="Gate: max |mIoU drop| in points, 0-100 (default per precision)."),
    ] = None,
    min_agreement: Annotated[
        float | None, typer.Option("--min-agreement", help="Gate: min pixel agreement, 0-1 or percent (0-100).")
    ] = None,
    multi_scale: Annotated[
        str | None,
        typer.Option("--multi-scale", help="Test-time scales (0.25-4) for both sides, e.g. 0.75,1,1.25."),
    ] = None,
    flip: Annotated[
        bool | None,
        typer.Option("--flip/--no-flip", help="Test-time horizontal flip for both sides."),
    ] = None,
    json_out: JsonOut = None,
    markdown_out: Annotated[Path | None, typer.Option("--markdown", help="Write a Markdown report here.")] = None,
    save_worst: Annotated[
        tuple[int, Path] | None, typer.Option("--save-worst", help="K DIR: PNG panels of the K least-agreeing images.")
    ] = None,
    threads: Threads = None,
    inference_precision: Annotated[
        str,
        typer.Option("--inference-precision", help="OpenVINO: fp32 | bf16 | fp16 (f32/f16/half accepted)."),
    ] = "fp32",
    save_reference: Annotated[
        Path | None,
        typer.Option("--save-reference", help="Also save the PyTorch side (.npz) to compare artifacts with later."),
    ] = None,
    reference_logits: Annotated[
        bool, typer.Option("--reference-logits", help="Save the logits too (the FP32 logits gate needs them).")
    ] = False,
    input_size: Annotated[
        str | None, typer.Option("--input-size", help="Reference without artifact: a static input size HxW.")
    ] = None,
    reference_cache: Annotated[
        Path | None,
        typer.Option(
            "--reference-cache", help="Cache folder of PyTorch references [$XDG_CACHE_HOME/refinenet-deploy]."
        ),
    ] = None,
    no_reference_cache: Annotated[
        bool, typer.Option("--no-reference-cache", help="Always run PyTorch; cache nothing.")
    ] = False,
    strict_labels: Annotated[
        bool, typer.Option("--strict-labels", help="Exit 5 when labels have class ids outside the model's classes.")
    ] = False,
    device: Annotated[
        str | None,
        typer.Option("--device", help="A checkpoint ARTIFACT: run it in PyTorch on cpu | gpu (the reference: FP32)."),
    ] = None,
    precision: Annotated[
        str,
        typer.Option("--precision", help="A checkpoint ARTIFACT: PyTorch precision fp32 | tf32 | fp16 | bf16."),
    ] = "fp32",
    localize: Annotated[
        bool, typer.Option("--localize", help="Also name the block where the artifact departs from PyTorch.")
    ] = False,
    localize_threshold: Annotated[
        float | None,
        typer.Option("--localize-threshold", help="SQNR (dB) below which a block is flagged [per precision]."),
    ] = None,
    localize_images: Annotated[
        int, typer.Option("--localize-images", help="Images the --localize pass uses (the first N).")
    ] = 8,
    localize_json: Annotated[
        Path | None, typer.Option("--localize-json", help="Write the per-block JSON here ('-': stdout).")
    ] = None,
    localize_chart: Annotated[
        Path | None, typer.Option("--localize-chart", help="PNG: SQNR along the depth, one line per artifact.")
    ] = None,
) -> None:
    """Prove the deployed model still segments like PyTorch: mIoU drop, agreement, gates (exit 3 on failure).

    The PyTorch side can be saved once (--save-reference REF.npz) and compared with artifacts on a machine
    without PyTorch (rfdeploy parity REF.npz ARTIFACT); live runs cache it, so N artifacts cost one PyTorch pass.

    \b
    Examples:
      rfdeploy parity demo.safetensors demo.onnx --data synth-val
      rfdeploy parity rf_lw50_voc.pth.tar rf_lw50.int8.onnx --data VOC2012 \\
          --num-images 500 --save-worst 8 worst/
      rfdeploy parity demo.safetensors --data synth-val --save-reference \\
          ref.npz --reference-logits
      rfdeploy parity ref.npz demo.onnx demo.int8.onnx --data synth-val
      rfdeploy parity ref.npz demo.safetensors --device gpu --precision fp16 \\
          --data synth-val
      rfdeploy parity demo.safetensors demo.int8.onnx --data synth-val \\
          --localize --localize-chart sqnr.png
      rfdeploy parity ref.npz demo.xml --data synth-val --localize \\
          --localize-json blocks.json
    """
    from ..operations.parity import (
        ParityOptions,
        check_parity_outputs,
        check_request,
        compare_artifacts,
        parse_scales,
        raise_for_comparison,
        raise_for_labels,
        resolve_reference_cache,
    )
    from ..operations.parity import save_reference as save_reference_only
    from ..validate.reference import default_cache_dir

    models = list(models or [])
    scales = parse_scales(multi_scale) if multi_scale is not None else None
    k, worst_dir = save_worst if save_worst else (0, None)
    options = ParityOptions(
        runtime=runtime,
        split=split,
        num_images=num_images,
        scales=scales,
        flip=flip,
        max_miou_drop=max_miou_drop,
        min_agreement=min_agreement,
        save_worst=k,
        worst_dir=worst_dir,
        threads=threads,
        inference_precision=inference_precision,
        device=device,
        torch_precision=precision,
        input_size=parse_size(input_size, "--input-size") if input_size is not None else None,
        save_reference=save_reference,
        reference_logits=reference_logits,
        strict_labels=strict_labels,
    )
    check_request(checkpoint, models, options, reports=json_out is not None or markdown_out is not None or k > 0)
    _check_localize(models, runtime, localize, localize_threshold, localize_json, localize_chart, localize_images)
    inputs = [checkpoint, *models]
    check_parity_outputs(
        inputs=inputs,
        json_out=json_out,
        markdown_out=markdown_out,
        worst_dir=worst_dir,
        save_reference=save_reference,
        data=data,
    )
    cache, unusable = resolve_reference_cache(
        reference_cache, disabled=no_reference_cache, inputs=inputs, default=default_cache_dir()
    )
    if unusable is not None:
        err.print(
            f"warning: no reference cache ({unusable}); pass --reference-cache DIR", highlight=False, soft_wrap=True
        )

    if not models:
        with progress_bar() as bar:
            task = bar.add_task("reference", total=num_images, info="")
            saved = save_reference_only(
                checkpoint, data, save_reference, options, progress=lambda i, n: bar.update(task, completed=i, total=n)
            )
        logits = "with logits" if saved.has_logits else "class maps only"
        err.print(
            f"wrote {saved.path} (PyTorch reference of {saved.num_images} images, {logits})",
            highlight=False,
            soft_wrap=True,
        )
        raise_for_labels(saved.labels_out_of_range, options.strict_labels)
        return

    localized_all: list[dict[str, Any]] = []

    @contextmanager
    def track(model: Path) -> Iterator[Callable[[int, int], None]]:
        with progress_bar() as bar:
            task = bar.add_task(f"parity {model.name}", total=num_images, info="")
            yield lambda i, n: bar.update(task, completed=i, total=n)

    def render(index: int, model: Path, report: Any) -> None:
        _announce_reference(report.context.get("reference") or {})
        result = report.to_dict()
        if localize:
            from .localize import run_localize

            result["localize"] = run_localize(
                checkpoint,
                model,
                data,
                runtime=runtime,
                split=split,
                images=localize_images,
                threshold_db=localize_threshold,
                threads=threads,
                inference_precision=options.inference_precision,
                save_reference=save_reference if index == 0 else None,
                json_out=localize_json,
            )
            localized_all.append(result["localize"])
        _render_result(result, report, json_out, markdown_out, worst_dir, localize)

    reports = compare_artifacts(
        checkpoint, models, data, replace(options, reference_cache=cache), track=track, on_report=render
    )
    if localize_chart is not None and localized_all:
        from .localize import write_chart

        write_chart(localized_all, localize_chart)
    raise_for_comparison(reports, strict_labels=options.strict_labels)


def _check_localize(
    models: list[Path],
    runtime: str,
    localize: bool,
    threshold: float | None,
    json_out: Path | None,
    chart: Path | None,
    images: int,
) -> None:
    """``--localize`` and its options (exit 2, before any work)."""
    if (threshold is not None or json_out is not None or chart is not None) and not localize:
        raise UsageError("--localize-threshold, --localize-json and --localize-chart apply to --localize; add it")
    if localize and not models:
        raise UsageError("--localize compares an ARTIFACT with PyTorch: pass an ARTIFACT")
    if images < 1:
        raise UsageError(f"--localize-images must be at least 1, got {images}")
    if json_out is not None and len(models) > 1 and str(json_out) != "-":
        raise UsageError("--localize-json takes one artifact; run parity once per artifact")
    if localize:
        from ..operations.localize import check_localize_runtimes

        check_localize_runtimes(models, runtime)


def _render_result(
    result: dict[str, Any],
    report: Any,
    json_out: Path | None,
    markdown_out: Path | None,
    worst_dir: Path | None,
    localize: bool,
) -> None:
    """One artifact's result: JSON on stdout (``--json -``) or the tables, and the files written."""
    from ..operations.parity import write_parity_outputs

    if json_out is not None and str(json_out) == "-":
        out.print_json(json.dumps(result, indent=2))
    for path in write_parity_outputs(
        result, json_out=None if str(json_out) == "-" else json_out, markdown_out=markdown_out
    ):
        err.print(f"wrote {path}", highlight=False, soft_wrap=True)
    if report.worst and worst_dir is not None:
        err.print(f"wrote {len(report.worst)} panels to {worst_dir}", highlight=False, soft_wrap=True)
    if str(json_out) != "-":
        _print_parity(result)
        if localize:
            from .localize import print_localize

            print_localize(result["localize"])


def _announce_reference(ref: dict[str, Any]) -> None:
    for path in ref.get("saved_to") or []:
        what = "reference cache" if Path(path).name.startswith(str(ref.get("digest"))) else "PyTorch reference"
        err.print(f"wrote {path} ({what})", highlight=False, soft_wrap=True)
    if ref.get("source") == "cached reference":
        err.print(f"reused the cached PyTorch reference {ref.get('path')}", highlight=False, soft_wrap=True)


def _print_parity(r: dict[str, Any]) -> None:
    def pct(v: float | None, d: int = 2) -> str:
        return "n/a" if v is None else f"{v * 100:.{d}f} %"

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
    logits = r.get("logit_gate")
    rules = [f"|mIoU drop| <= {gates['max_miou_drop']} pt", f"pixel agreement >= {gates['min_agreement'] * 100:.2f} %"]
    if logits and logits.get("passed") is not None:
        rules.append("FP32 logits within 1e-4 + 1e-5 x max|logit|")
    verdict = {True: "PASSED", False: "FAILED"}.get(r["passed"], "NOT EVALUATED")
    out.print(f"{verdict}: gates for {r['precision']}: {', '.join(rules)}", highlight=False)
    for reason in r.get("failed_gates") or []:
        out.print(f"  failed: {reason}", highlight=False)
    for reason in r.get("gates_not_evaluated") or []:
        out.print(f"  not evaluated: {reason} (does not count as passed)", highlight=False)
    labels = r.get("labels_out_of_range") or {}
    if labels.get("pixels"):
        out.print(
            f"labels out of range: {labels['pixels']} pixels in {labels['images']} image(s) not scored",
            highlight=False,
        )
