"""``rfdeploy bench``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..operations.bench import DEFAULT_ITERATIONS, DEFAULT_MAX_WARMUP, DEFAULT_WARMUP, benchmark
from ..results import BenchResult
from .app import Table, app, err, handle_errors, out
from .options import JsonOut, Threads, parse_size

_COLUMNS = (
    ("mean ms", "mean_ms"),
    ("p50 ms", "p50_ms"),
    ("p90 ms", "p90_ms"),
    ("p99 ms", "p99_ms"),
    ("max ms", "max_ms"),
)


# --------------------------------------------------------------------------------------------- bench
@app.command("bench")
@handle_errors
def bench_cmd(
    model: Annotated[Path, typer.Argument(help="Artifact: .onnx, OpenVINO .xml, .engine, or a checkpoint (PyTorch).")],
    runtime: Annotated[str, typer.Option("--runtime", help="auto | onnxruntime | openvino | tensorrt | torch.")] = (
        "auto"
    ),
    device: Annotated[
        str | None, typer.Option("--device", help="cpu | gpu | npu | dla (default: cpu; gpu for TensorRT engines).")
    ] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Batch (dynamic-batch artifacts), 1..256.")] = None,
    input_size: Annotated[
        str | None,
        typer.Option(
            "--input-size", help="HxW; required unless the artifact or checkpoint records its size (static shape)."
        ),
    ] = None,
    warmup: Annotated[
        int, typer.Option("--warmup", help="Untimed iterations first (the minimum), 0..10000.")
    ] = DEFAULT_WARMUP,
    max_warmup: Annotated[
        int | None,
        typer.Option(
            "--max-warmup",
            help=f"Warm-up goes on until timings settle, at most this many (default max(--warmup, "
            f"{DEFAULT_MAX_WARMUP})); = --warmup for a fixed warm-up.",
        ),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option("--iterations", help=f"Timed iterations, 1..1000000 (default {DEFAULT_ITERATIONS})."),
    ] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="Or: seconds of timing, 0.1..3600.")] = None,
    threads: Threads = None,
    hint: Annotated[
        str,
        typer.Option(
            "--hint",
            help="OpenVINO performance hint: latency (one synchronous request) | throughput (asynchronous "
            "requests, the compiled model's optimal number; reports img/s).",
        ),
    ] = "latency",
    inference_precision: Annotated[
        str | None,
        typer.Option(
            "--inference-precision",
            help="OpenVINO: fp32 | bf16 | fp16 (f32/f16 accepted; default fp32). Refused when the plugin would run "
            "another precision, unless --allow-fallback.",
        ),
    ] = None,
    allow_fallback: Annotated[
        bool,
        typer.Option(
            "--allow-fallback", help="OpenVINO: time what the plugin runs when it cannot honour the precision."
        ),
    ] = False,
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="PyTorch (checkpoints): fp32 (TF32 off) | tf32 | fp16 | bf16 (GPU; on CPU fp32, or bf16 "
            "with native bf16).",
        ),
    ] = "fp32",
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="PyTorch: channels-last memory format.")
    ] = False,
    compile_model: Annotated[
        bool, typer.Option("--compile", help="PyTorch: torch.compile the model (first call timed apart).")
    ] = False,
    compile_mode: Annotated[
        str | None,
        typer.Option("--compile-mode", help="PyTorch: default | reduce-overhead | max-autotune (implies --compile)."),
    ] = None,
    cudnn_benchmark: Annotated[
        bool | None,
        typer.Option(
            "--cudnn-benchmark/--no-cudnn-benchmark",
            help="PyTorch on a GPU: let cuDNN pick the fastest algorithms (default on, recorded).",
        ),
    ] = None,
    end_to_end: Annotated[bool, typer.Option("--end-to-end", help="Also time decode+preprocess+infer+argmax.")] = (
        False
    ),
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Images for --end-to-end (default: synthetic JPEGs); unreadable ones skipped."),
    ] = None,
    json_out: JsonOut = None,
    peak: Annotated[
        bool, typer.Option("--peak/--no-peak", help="Measure a dense-conv peak on the same device and precision.")
    ] = True,
    cuda_graph: Annotated[
        bool,
        typer.Option(
            "--cuda-graph", help="GPU: replay one captured CUDA graph per run (TensorRT static shapes, PyTorch)."
        ),
    ] = False,
) -> None:
    """Latency of one artifact on this device, with the device fingerprint and the timing protocol.

    \b
    Examples:
      rfdeploy bench model.onnx --input-size 512x512 --iterations 50 --json \\
          cpu-ort.json
      rfdeploy bench model.xml --inference-precision bf16 --hint throughput \\
          --duration 20
      rfdeploy bench model.safetensors --device gpu --precision fp16 \\
          --cuda-graph --input-size 512x512
    """

    size = parse_size(input_size) if input_size else None
    result = benchmark(
        model,
        runtime=runtime,
        device=device,
        batch=batch,
        input_size=size,
        warmup=warmup,
        max_warmup=max_warmup,
        iterations=iterations,
        duration_s=duration,
        threads=threads,
        hint=hint,
        inference_precision=inference_precision,
        allow_fallback=allow_fallback,
        end_to_end=end_to_end,
        data=data,
        peak=peak,
        cuda_graph=cuda_graph,
        torch_precision=precision,
        channels_last=channels_last,
        compile=compile_model,
        compile_mode=compile_mode,
        cudnn_benchmark=cudnn_benchmark,
        json_out=json_out,
    )
    if json_out is not None:
        if str(json_out) == "-":
            out.print_json(json.dumps(result.to_dict()))
            return
        err.print(f"wrote {json_out}", markup=False, highlight=False, soft_wrap=True)
    render(result, model.name)


def render(result: BenchResult, name: str) -> None:
    """The timing table (units in every column) and the efficiency line."""
    h, w = result.input_size or (0, 0)
    table = Table(
        title=f"bench: {name} ({result.runtime}, {result.device}, {result.label}) {h}x{w} batch {result.batch}"
    )
    table.add_column("timing", no_wrap=True)
    for title, _ in _COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    table.add_column("img/s", justify="right", no_wrap=True)
    for label, s in result.timings().items():
        shown = label.replace("_", "-")
        if s.requests:
            shown += f" x{s.requests}"
            table.caption = (
                f"{shown}: {s.requests} asynchronous requests in flight; ms per request, img/s over wall time"
            )
        numbers = s.to_dict()
        table.add_row(shown, *(_ms(numbers, k) for _, k in _COLUMNS), f"{s.throughput_ips:.1f}")
    out.print(table)
    out.print("; ".join(_efficiency_parts(result)), highlight=False, markup=False)
    _warnings(result)


def _ms(numbers: dict[str, Any], key: str) -> str:
    return f"{numbers[key]:.2f}" if key in numbers else "n/a"


def _efficiency_parts(result: BenchResult) -> list[str]:
    parts = []
    probe = result.peak_probe or {}
    if result.gmac_per_image:
        achieved = result.achieved_gmacs
        parts.append(
            f"{result.gmac_per_image:.3g} GMAC/image"
            + (f", {achieved:.3g} GMAC/s achieved ({result.achieved_at})" if achieved else "")
        )
    if result.fraction_of_peak and parts and result.peak_gmacs:
        parts[-1] += (
            f" = {result.fraction_of_peak:.0%} of a {result.peak_gmacs:.3g} GMAC/s dense-conv peak "
            f"({probe['runtime']}, {probe['device']}, {probe['precision']})"
        )
    elif "fraction_not_shown" in probe:
        parts.append(f"fraction of peak {probe['fraction_not_shown']}")
    elif probe.get("reason") and "--no-peak" not in probe["reason"]:  # the probe's own record (not a result field)
        parts.append(f"peak {probe['reason']}")
    if result.first_call_ms is not None:
        what = " + ".join(
            name
            for key, name in (("compiled", "torch.compile"), ("cuda_graph", "graph capture"))
            if result.setting(key)
        )
        parts.append(f"first call ({what or 'untimed'}) {result.first_call_ms:.0f} ms")
    if result.device_memory_mib:
        parts.append(f"device memory {result.device_memory_mib:.0f} MiB")
    if result.precision_audit is not None:
        parts.append(f"artifact runs: {result.precision_audit.shown}")
    if result.peak_rss_mib is not None:
        parts.append(f"peak RSS {result.peak_rss_mib:.0f} MiB")
    parts.append(str((result.protocol or {}).get("timing", "timing protocol not recorded")))
    return parts


def _warnings(result: BenchResult) -> None:
    stability = result.timing_stability
    if stability and not result.stable:
        err.print(
            f"warning: UNSTABLE timing ({'; '.join(stability['reasons'])}): the machine may be under load; "
            "rerun on an idle machine before quoting these numbers",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if result.device_flags:
        err.print(f"warning: device: {', '.join(result.device_flags)}", markup=False, highlight=False, soft_wrap=True)
    if result.end_to_end_skipped:
        err.print(
            f"end-to-end: skipped {len(result.end_to_end_skipped)} unreadable image(s): "
            + ", ".join(Path(p).name for p in result.end_to_end_skipped),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
