"""``benchmark``: latency of one artifact on this machine, with the device fingerprint and the protocol.

Glue between ``backends`` (the runner, on the device the artifact runs on), ``validate.timing`` (the steady-state
timing loops) and ``validate.latency`` (statistics, stability). Every number in the result is labelled
compute-only, device-only, end-to-end or asynchronous throughput, and every setting is recorded as it ran:

- the input size comes from the artifact (static shape, else the size it was exported at) or the checkpoint's
  metadata, else ``input_size`` is required: no silent default, so that reports compare equal sizes;
- precisions are spelled fp32 | tf32 | fp16 | bf16 | int8: ``artifact_precision`` is what the file is,
  ``inference_precision`` what its float parts ran in (OpenVINO: read back from the compiled model);
- warm-up runs until the timings settle (or a cap), and is recorded; a timing whose CV or tail is over the stated
  limits is flagged unstable (``timing_stability``);
- on a GPU (or a Jetson) the device's clocks, temperature, power and throttle reasons are read before and after
  (``device_state``), and throttling is flagged;
- the dense-convolution peak runs on the same device and precision as the model, timed on the same clock
  (CUDA events on a GPU), or is not measured (``peak_gmacs`` null, with the reason).
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from ...artifacts import (
    InputPolicy,
    artifact_precision,
    checkpoint_input_size,
    probe_output,
    read_metadata,
    resolve_input_size,
    sha256_file,
    utc_now,
    write_json_atomic,
)
from ...backends import open_runner, resolve_device, resolve_runtime
from ...backends.base import BaseRunner
from ...enums import Device, Runtime
from ...environment import collect_environment
from ...errors import ModelNotFoundError, UsageError
from ...results import BENCH_SCHEMA_VERSION, TIMINGS, BenchResult, BuildResult, LatencyStats, PrecisionAudit
from ...telemetry import read_device_state, summarize
from ...validate.latency import achieved_gmacs, latency_stats, throughput_stats, timing_stability
from ...validate.timing import TimingPlan, compute_step, end_to_end_step, throughput_loop, timed_run
from .frames import decode_frame, jpeg_frames, readable_frames
from .options import BenchOptions, check_bench_options
from .peak import fraction_of_peak, no_peak, peak_probe
from .result import device_stats

log = logging.getLogger(__name__)


def _runner(artifact: Path, kind: Runtime, dev: Device, opts: BenchOptions) -> tuple[BaseRunner, dict[str, Any]]:
    """The (inactive) runner and the metadata the input policy is read from: the artifact's sidecar, or for a
    checkpoint what its loaded model says (PyTorch options reach only a checkpoint: ``_check_applicable``)."""
    torch = kind == Runtime.TORCH
    meta = None if torch else read_metadata(artifact)
    runner = open_runner(
        artifact,
        kind.value,
        device=dev.value,
        threads=opts.threads,
        hint=opts.hint,
        inference_precision=opts.inference_precision or "fp32",
        meta=meta,
        cuda_graph=opts.cuda_graph,
        torch_precision=opts.torch_precision,
        channels_last=opts.channels_last,
        compile=opts.compile,
        compile_mode=opts.compile_mode,
        cudnn_benchmark=opts.cudnn_benchmark,
    )
    if meta is not None:
        return runner, meta
    loaded = runner.loaded
    size = checkpoint_input_size(loaded.checkpoint.metadata if loaded.checkpoint is not None else {})
    return runner, {
        "arch": loaded.arch,
        "num_classes": loaded.num_classes,
        "normalization": runner.normalization.to_dict(),
        "precision": "fp32",
        "input_format": "nchw-float",
        "head": "logits",
        "export_size": list(size) if size else None,
    }


def _gmac(meta: dict[str, Any], size: tuple[int, int]) -> float | None:
    arch, classes = meta.get("arch"), meta.get("num_classes")
    if not arch or not classes:
        return None
    try:
        import torch
    except ImportError:  # a device without torch (a Jetson with only TensorRT): no MAC count
        return None

    from ...models import create_model
    from ...models.complexity import conv_gmac

    with torch.device("meta"):
        model = create_model(arch, num_classes=int(classes))
    return conv_gmac(model, *size)


def _check_applicable(kind: Runtime, opts: BenchOptions) -> None:
    """Options that do not apply to this runtime are exit 2, never ignored."""
    if kind != Runtime.OPENVINO and opts.inference_precision not in (None, "fp32"):
        raise UsageError(
            f"--inference-precision sets OpenVINO's precision hint, not {kind}'s. "
            + ("Use --precision for PyTorch" if kind == Runtime.TORCH else "Drop it")
        )
    if opts.hint != "latency" and kind != Runtime.OPENVINO:
        raise UsageError(f"--hint is OpenVINO's performance hint, not {kind}'s. Drop it")
    # the PyTorch and CUDA-graph options are checked by open_runner (check_runtime_options), before any work


@dataclass
class _Bound:
    """The input the model is timed on: its name, size (and where the size came from), batch and preparation."""

    name: str
    size: tuple[int, int]
    size_source: str
    batch: int
    policy: Any
    input_format: str


def _bind_input(runner: BaseRunner, policy: InputPolicy, kind: Runtime, opts: BenchOptions) -> _Bound:
    spec = runner.input_specs[0]
    bound = policy.for_input(spec.name, spec.shape)
    torch = kind == Runtime.TORCH  # a checkpoint's recorded size comes in as its policy's export size
    size, source = resolve_input_size(
        opts.input_size,
        static=bound.static_size,
        export_size=None if torch else bound.export_size,
        checkpoint_size=bound.export_size if torch else None,
    )
    dims = spec.shape
    n = dims[0] if isinstance(dims[0], int) else (opts.batch or 1)
    if opts.batch and isinstance(dims[0], int) and opts.batch != dims[0]:
        raise UsageError(f"this artifact has a static batch of {dims[0]}; drop --batch or re-export")
    check_bench_options(warmup=0, iterations=None, duration_s=None, batch=n, input_size=size, threads=None)
    return _Bound(spec.name, size, source, n, bound, policy.input_format)


def _check_fallback(runner: BaseRunner, dev: Device, opts: BenchOptions) -> dict[str, Any] | None:
    """OpenVINO compiled another precision than requested: refused unless ``allow_fallback`` (then recorded)."""
    if not runner.precision_fallback:
        return None
    want, ran = opts.inference_precision or "fp32", runner.executed_precision
    if not opts.allow_fallback:
        raise UsageError(
            f"--inference-precision {want}: OpenVINO's {dev.value.upper()} plugin compiled the model in "
            f"{ran} (INFERENCE_PRECISION_HINT read back), e.g. a CPU without bf16 units (avx512_bf16/"
            f"amx_bf16). Pass --inference-precision {ran}, or --allow-fallback to time {ran} and record it"
        )
    log.warning("--inference-precision %s is not available here: timing %s (recorded)", want, ran)
    return {"requested": want, "ran": ran}


@dataclass
class _Timings:
    """What the timing loops measured, as the document records it."""

    compute: Any = None  # LatencyStats | ThroughputStats
    fields: dict[str, Any] = field(default_factory=dict)
    warmup: Any = None  # WarmupRecord (None in throughput mode)
    skipped: list[str] = field(default_factory=list)


def _plan(opts: BenchOptions) -> TimingPlan:
    return TimingPlan(
        warmup=opts.warmup,
        iterations=opts.timed_iterations,
        duration_s=opts.duration_s,
        max_warmup=opts.warmup_cap,
    )


def _time(runner: BaseRunner, b: _Bound, opts: BenchOptions, throughput_mode: bool) -> _Timings:
    plan, t = _plan(opts), _Timings()

    def prepare(image: np.ndarray) -> np.ndarray:
        return b.policy.to_input(image, batch=b.batch)

    image = np.random.default_rng(0).integers(0, 256, size=(*b.size, 3), dtype=np.uint8)
    inputs = {b.name: prepare(image)}
    if opts.compile or opts.cuda_graph:
        t0 = time.perf_counter_ns()
        runner.infer(inputs)  # torch.compile compiles, a CUDA graph is captured, on the first call: not timed
        t.fields["first_call_ms"] = (time.perf_counter_ns() - t0) / 1e6
    if throughput_mode:
        runner.infer(inputs)  # checks the input against the model once (async submissions do not)
        pool = runner.async_pool()
        s = throughput_loop(pool, inputs, plan)
        t.compute = throughput_stats(s.latencies_ns, s.wall_ns, s.requests, batch=b.batch)
        t.fields["compute_only"] = {
            **t.compute.to_dict(),
            "mode": f"asynchronous: {s.requests} infer requests in flight (AsyncInferQueue); throughput_ips over "
            "wall time, *_ms are each request's own latency (InferRequest.latency)",
        }
    else:
        run = timed_run(compute_step(runner, inputs), plan)
        t.compute, t.warmup = latency_stats(run.samples_ns, batch=b.batch), run.warmup
        t.fields["compute_only"] = t.compute.to_dict()
        device_only = device_stats(runner.device_times_ms, t.compute.iterations, b.batch)
        if device_only is not None:
            t.fields["device_only"] = device_only
    t.fields["device_memory_mib"] = runner.device_memory_mib()
    if opts.end_to_end:
        frames, t.skipped = readable_frames(opts.data) if opts.data else (jpeg_frames(b.size, 8), [])
        step = end_to_end_step(runner, b.name, lambda i: decode_frame(frames[i], b.size), prepare, len(frames))
        t.fields["end_to_end"] = latency_stats(timed_run(step, plan).samples_ns, batch=b.batch).to_dict()
    return t


def _stability(t: _Timings) -> dict[str, Any]:
    """The stability of the number a report quotes (device-only where there is one, else compute-only)."""
    verdict = timing_stability(t.fields.get("device_only") or t.fields["compute_only"]).to_dict()
    verdict["of"] = "device_only" if "device_only" in t.fields else "compute_only"
    if not verdict["stable"]:
        log.warning(
            "unstable timing (%s): %s. The machine may be under load; rerun on an idle machine",
            verdict["of"],
            "; ".join(verdict["reasons"]),
        )
    return verdict


def _ran_precision(kind: Runtime, ran: str | None, art_precision: str) -> str | None:
    if kind == Runtime.TORCH:
        return ran
    if ran is None and kind == Runtime.ONNXRUNTIME:
        ran = "fp32" if art_precision == "int8" else art_precision  # ORT computes Q/DQ models' float parts in fp32
    elif ran is None and art_precision != "int8":
        ran = art_precision
    return None if ran == "int8" else ran  # an engine's sidecar names the artifact, not what its float parts ran in


def _efficiency(
    kind: Runtime,
    dev: Device,
    opts: BenchOptions,
    meta: dict[str, Any],
    b: _Bound,
    t: _Timings,
    ran: str | None,
    art_precision: str,
    throughput_mode: bool,
) -> dict[str, Any]:
    """GMAC/image, GMAC/s achieved (on the clock the peak uses), the peak probe and the fraction of it."""
    gmac = _gmac(meta, b.size)
    if not gmac:
        achieved = None
    elif throughput_mode:
        achieved = achieved_gmacs(gmac, t.compute)
    else:
        p50_ms = (t.fields.get("device_only") or t.fields["compute_only"])["p50_ms"]
        achieved = gmac * b.batch / (p50_ms / 1000.0)
    if opts.peak:
        probe = peak_probe(
            kind.value,
            dev.value,
            opts.threads,
            opts.hint,
            opts.inference_precision or "fp32",
            artifact_precision=art_precision,
            torch_precision=opts.torch_precision,
            channels_last=opts.channels_last,
        )
    else:
        probe = no_peak("not measured: --no-peak")
    if probe.get("gmacs") is not None and probe.get("precision") not in (ran, None):
        probe = no_peak(f"not measured: the probe ran {probe.get('precision')}, the model {ran}")
    fraction, why_not = fraction_of_peak(achieved, probe.get("gmacs"))
    if why_not:
        probe = {**probe, "fraction_not_shown": why_not}
    return {
        "gmac_per_image": gmac,
        "achieved_gmacs": achieved,
        "achieved_at": (
            None
            if achieved is None
            else "throughput"
            if throughput_mode
            else "p50 of device_only (CUDA events)"
            if "device_only" in t.fields
            else "p50 of compute_only"
        ),
        "peak_gmacs": probe.get("gmacs"),
        "peak_probe": probe,
        "fraction_of_peak": fraction,
    }


def benchmark(
    artifact: str | Path,
    options: BenchOptions | None = None,
    *,
    json_out: str | Path | None = None,
    **kwargs: Any,
) -> BenchResult:
    """Time ``artifact`` (on ``options.device``: default cpu, gpu for TensorRT engines); returns the result
    (``BenchResult``; written to ``json_out``, probed before any work, with ``BenchResult.write``). ``options``
    or the same fields as keywords (``BenchOptions``). Without ``iterations`` or ``duration_s``, runs
    ``DEFAULT_ITERATIONS`` timed iterations after a steady-state warm-up.

    ``input_size`` is required unless the artifact has a static size, or its metadata (or the checkpoint's) records
    the size it was made for. ``inference_precision`` (OpenVINO, default fp32): a request the plugin cannot honour
    (bf16 on a CPU without bf16 units) is refused (UsageError) unless ``allow_fallback``, which records what ran.
    ``torch_precision`` / ``channels_last`` / ``compile`` (``compile_mode``) / ``cuda_graph`` /
    ``cudnn_benchmark``: how a checkpoint runs in PyTorch; options that do not apply are refused."""
    opts = options if options is not None else BenchOptions(**kwargs)
    artifact = Path(artifact)
    if not artifact.exists():
        raise ModelNotFoundError(f"artifact not found: {artifact}. Check the path")
    if json_out is not None and str(json_out) != "-":
        probe_output(json_out, inputs=[artifact, opts.data], what="--json")
    kind = resolve_runtime(artifact, opts.runtime)
    dev = resolve_device(kind, opts.device)
    _check_applicable(kind, opts)
    if opts.threads and kind == Runtime.TORCH:
        import torch

        torch.set_num_threads(opts.threads)
    runner, meta = _runner(artifact, kind, dev, opts)
    throughput_mode = kind == Runtime.OPENVINO and opts.hint == "throughput"
    before = read_device_state(dev.value)
    with runner:
        b = _bind_input(runner, InputPolicy.from_metadata(meta), kind, opts)
        fallback = _check_fallback(runner, dev, opts)
        t = _time(runner, b, opts, throughput_mode)
        runtime_config = dict(runner.runtime_config or {})
        ran = runner.executed_precision
    device_state = summarize(before, read_device_state(dev.value))
    art_precision = "fp32" if kind == Runtime.TORCH else artifact_precision(artifact, meta).value
    ran = _ran_precision(kind, ran, art_precision)
    result = _document(artifact, kind, runner, opts, meta, b, t, ran, art_precision, runtime_config, throughput_mode)
    result.precision_fallback = fallback
    result.device_state = device_state
    if device_state and device_state.get("throttled"):
        log.warning("the device throttled during the run: %s", ", ".join(device_state["flags"]))
    efficiency = _efficiency(kind, dev, opts, meta, b, t, ran, art_precision, throughput_mode)
    result = replace(result, **efficiency)
    result.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.fingerprint = collect_environment()
    if opts.end_to_end:
        result.end_to_end_skipped = t.skipped
    result.label = result.precision_label()
    if json_out is not None and str(json_out) != "-":
        result.write(json_out, write_json_atomic)
    return result


def _protocol(opts: BenchOptions, t: _Timings, gpu: bool, throughput_mode: bool) -> dict[str, Any]:
    plan = _plan(opts)
    if throughput_mode:
        requests = t.compute.requests
        timing = (
            f"{max(plan.warmup, requests) if plan.warmup else 0} warm-up submissions, then "
            f"{requests} asynchronous requests kept in flight "
            + (f"for {plan.duration_s} s" if plan.duration_s else f"until {plan.iterations} were started")
            + "; throughput over the wall time, latency per request"
        )
    else:
        timing = plan.describe(device_sync=gpu, warmup=t.warmup)
    return {
        "timing": timing,
        "warmup": t.warmup.to_dict() if t.warmup is not None else None,
        "compute_only": "runtime call on a fixed, pre-processed input",
        "end_to_end": "JPEG decode + resize + preprocess + infer + copy back + argmax on the host",
        "threads": opts.threads,
        "device_synchronised": gpu,
    }


def _document(
    artifact: Path,
    kind: Runtime,
    runner: BaseRunner,
    opts: BenchOptions,
    meta: dict[str, Any],
    b: _Bound,
    t: _Timings,
    ran: str | None,
    art_precision: str,
    runtime_config: dict[str, Any],
    throughput_mode: bool,
) -> dict[str, Any]:
    dev = runner.device
    timings = {k: LatencyStats.from_dict(t.fields[k], "bench", k) for k in TIMINGS if k in t.fields}
    return BenchResult(
        schema_version=BENCH_SCHEMA_VERSION,
        created=utc_now(),
        tool_version=__version__,
        artifact=str(artifact),
        artifact_sha256=sha256_file(artifact),  # what was measured: the pipeline's imports check it
        runtime=kind.value,
        device=dev.value,
        artifact_precision=art_precision,
        inference_precision=ran,
        requested_inference_precision=(opts.inference_precision or "fp32") if kind == Runtime.OPENVINO else None,
        hint=opts.hint if kind == Runtime.OPENVINO else None,
        runtime_config=runtime_config or None,
        arch=meta.get("arch"),
        num_classes=meta.get("num_classes"),
        input_size=b.size,
        input_size_source=b.size_source,
        batch=b.batch,
        input_format=b.input_format,
        head=meta.get("head"),
        protocol=_protocol(opts, t, dev in (Device.GPU, Device.DLA), throughput_mode),
        first_call_ms=t.fields.get("first_call_ms"),
        device_memory_mib=t.fields.get("device_memory_mib"),
        timing_stability=_stability(t) if not throughput_mode else None,
        precision_audit=_precision_audit(meta),
        **timings,
    )


def _precision_audit(meta: dict[str, Any]) -> PrecisionAudit | None:
    """The artifact's precision audit, from its sidecar (an OpenVINO IR built by ``build openvino``)."""
    if "format" not in meta:  # no sidecar (a checkpoint, or an artifact made elsewhere)
        return None
    return BuildResult.from_dict(meta, "the artifact's metadata").precision_audit
