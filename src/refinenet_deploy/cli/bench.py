"""``rfdeploy bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..operations.bench import DEFAULT_ITERATIONS, benchmark
from .app import app, handle_errors, out
from .options import Threads, parse_size


# --------------------------------------------------------------------------------------------- bench
@app.command("bench")
@handle_errors
def bench_cmd(
    model: Annotated[Path, typer.Argument(help="Artifact: .onnx, OpenVINO .xml, or a checkpoint (PyTorch eager).")],
    runtime: Annotated[str, typer.Option("--runtime", help="auto | onnxruntime | openvino | tensorrt | torch.")] = (
        "auto"
    ),
    device: Annotated[
        str | None, typer.Option("--device", help="cpu | gpu | npu | dla (default: cpu; gpu for TensorRT engines).")
    ] = None,
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Batch (dynamic-batch artifacts).")] = None,
    input_size: Annotated[str | None, typer.Option("--input-size", help="HxW for dynamic artifacts.")] = None,
    warmup: Annotated[int, typer.Option("--warmup", min=0)] = 10,
    iterations: Annotated[
        int | None, typer.Option("--iterations", min=1, help=f"Timed iterations (default {DEFAULT_ITERATIONS}).")
    ] = None,
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
    cuda_graph: Annotated[
        bool, typer.Option("--cuda-graph", help="TensorRT, static shapes: replay one captured CUDA graph per run.")
    ] = False,
) -> None:
    """Latency of one artifact on this device, with the device fingerprint and the timing protocol.

    Examples:
      rfdeploy bench model.onnx --input-size 512x512 --iterations 50 --json cpu-ort.json
      rfdeploy bench model.xml --inference-precision bf16 --hint throughput --duration 20
    """

    size = parse_size(input_size) if input_size else None
    result = benchmark(
        model,
        runtime=runtime,
        device=device,
        batch=batch,
        input_size=size,
        warmup=warmup,
        iterations=iterations,
        duration_s=duration,
        threads=threads,
        hint=hint,
        inference_precision=inference_precision,
        end_to_end=end_to_end,
        data=data,
        peak=peak,
        cuda_graph=cuda_graph,
    )
    if json_out is not None:
        text = json.dumps(result, indent=2)
        if str(json_out) == "-":
            out.print_json(text)
            return
        json_out.write_text(text + "\n")
    table = Table(
        title=f"bench: {model.name} ({result['runtime']}, {result['device']}, {result['precision']}"
        + (f", ran {result['runtime_precision']}" if result.get("runtime_precision") else "")
        + f") {result['input_size'][0]}x{result['input_size'][1]} batch {result['batch']}"
    )
    table.add_column("timing")
    for col in ("mean", "p50", "p90", "p99", "min", "max", "img/s"):
        table.add_column(col, justify="right")
    for label in ("compute_only", "device_only", "end_to_end"):
        s = result.get(label)
        if s:
            table.add_row(
                label.replace("_", "-"),
                *(f"{s[k]:.2f}" for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms")),
                f"{s['throughput_ips']:.1f}",
            )
    out.print(table)
    extra = (
        f"{result['gmac_per_image']:.2f} GMAC/image, {result['achieved_gmacs']:.1f} GMAC/s achieved"
        if (result.get("gmac_per_image"))
        else ""
    )
    if result.get("fraction_of_peak"):
        extra += f" = {result['fraction_of_peak']:.0%} of a {result['peak_gmacs']:.0f} GMAC/s dense-conv peak"
    extra += "; " if extra else ""
    if result.get("device_memory_mib"):
        extra += f"device memory {result['device_memory_mib']:.0f} MiB; "
    out.print(f"{extra}peak RSS {result['peak_rss_mib']:.0f} MiB; {result['protocol']['timing']}", highlight=False)
