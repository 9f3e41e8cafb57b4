"""``benchmark``: latency of one artifact on this machine, with the device fingerprint and the protocol.

Glue between ``backends`` (the runner, on the device the artifact runs on), ``validate.timing`` (timing loops)
and ``validate.latency`` (statistics). Every number in the result is labelled compute-only, device-only,
end-to-end or asynchronous throughput, and every setting is recorded as it ran:

- the input size comes from the artifact (static shape, else the size it was exported at) or the checkpoint's
  metadata, else ``input_size`` is required: no silent default, so that reports compare equal sizes;
- precisions are spelled fp32 | tf32 | fp16 | bf16 | int8: ``artifact_precision`` is what the file is,
  ``inference_precision`` what its float parts ran in (OpenVINO: read back from the compiled model);
- the dense-convolution peak runs on the same device and precision as the model, timed on the same clock
  (CUDA events on a GPU), or is not measured (``peak_gmacs`` null, with the reason).
"""

from __future__ import annotations

import io
import logging
import resource
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..artifacts import (
    MAX_PIXELS,
    MAX_SIDE,
    MIN_SIDE,
    InputPolicy,
    artifact_precision,
    probe_output,
    read_metadata,
    utc_now,
    write_json_atomic,
)
from ..backends import open_runner, resolve_device, resolve_runtime
from ..backends.base import BaseRunner
from ..enums import Device, Runtime
from ..environment import collect_environment
from ..errors import DataError, ModelNotFoundError, UsageError
from ..validate.latency import achieved_gmacs, latency_stats, throughput_stats
from ..validate.timing import TimingPlan, compute_step, end_to_end_step, throughput_loop, time_loop

log = logging.getLogger(__name__)

BENCH_SCHEMA = "refinenet-deploy/bench"
BENCH_SCHEMA_VERSION = 2  # 2: artifact_precision/inference_precision, peak_probe object, input_size_source
DEVICES = Device.values()
DEFAULT_ITERATIONS = 100

# Bounds of the numeric options (UsageError, exit 2, naming the bound)
MAX_ITERATIONS = 1_000_000
MAX_WARMUP = 10_000
MIN_DURATION_S, MAX_DURATION_S = 0.1, 3600.0
MAX_BATCH = 256
MAX_BATCH_PIXELS = 4 * MAX_PIXELS  # batch x height x width: 64 Mpx, a 768 MiB FP32 input
MAX_THREADS = 1024
E2E_IMAGES = 16  # readable images --end-to-end cycles through
E2E_SCAN = 256  # files looked at to find them
INFERENCE_PRECISIONS = ("fp32", "fp16", "bf16")


# --------------------------------------------------------------------------------------------- options
def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_bench_options(
    *,
    warmup: int,
    iterations: int | None,
    duration_s: float | None,
    batch: int | None,
    input_size: tuple[int, int] | None,
    threads: int | None,
) -> None:
    """UsageError (exit 2) naming the bound for a numeric option out of range, before any work."""

    def bounded(name: str, value: float | None, low: float, high: float) -> None:
        if value is not None and not (low <= value <= high):
            raise UsageError(f"{name} must be {_num(low)}..{_num(high)}, got {_num(value)}")

    if iterations is not None and duration_s is not None:
        raise UsageError("--iterations and --duration exclude each other. Pass one")
    bounded("--warmup", warmup, 0, MAX_WARMUP)
    bounded("--iterations", iterations, 1, MAX_ITERATIONS)
    bounded("--duration", duration_s, MIN_DURATION_S, MAX_DURATION_S)
    bounded("--batch", batch, 1, MAX_BATCH)
    bounded("--threads", threads, 1, MAX_THREADS)
    if input_size is not None:
        h, w = (int(d) for d in input_size)
        if not all(MIN_SIDE <= d <= MAX_SIDE for d in (h, w)):
            raise UsageError(f"--input-size: each side must be {MIN_SIDE}..{MAX_SIDE} pixels, got {h}x{w}")
        if h * w > MAX_PIXELS:
            raise UsageError(f"--input-size: {h}x{w} is more than {MAX_PIXELS / 1e6:.1f} MP (4096x4096)")
        if (batch or 1) * h * w > MAX_BATCH_PIXELS:
            raise UsageError(
                f"--batch {batch} x {h}x{w} is {(batch or 1) * h * w / 1e6:.0f} Mpx per inference; at most "
                f"{MAX_BATCH_PIXELS / 1e6:.0f} Mpx. Lower --batch or --input-size"
            )


def normalize_inference_precision(value: str | None) -> str | None:
    """fp32 | fp16 | bf16, with OpenVINO's f32/f16 accepted as aliases; None stays None."""
    if value is None:
        return None
    text = str(value).strip().lower()
    canonical = {"f32": "fp32", "f16": "fp16"}.get(text, text)
    if canonical not in INFERENCE_PRECISIONS:
        raise UsageError(f"unsupported --inference-precision: {value}. Use fp32, bf16 or fp16")
    return canonical


def _checkpoint_size(metadata: dict[str, Any]) -> tuple[int, int] | None:
    """An input size a checkpoint's metadata records (``input_size`` or ``export_size``: [H, W] or 'HxW')."""
    for key in ("input_size", "export_size"):
        value = metadata.get(key)
        if isinstance(value, str):
            parts = value.lower().split("x")
            value = parts if len(parts) == 2 else None
        if isinstance(value, (list, tuple)) and len(value) == 2:
            try:
                h, w = int(value[0]), int(value[1])
            except (TypeError, ValueError):
                continue
            if h > 0 and w > 0:
                return h, w
    return None


# --------------------------------------------------------------------------------------------- runner
def _runner(
    artifact: Path,
    runtime: Runtime,
    device: Device,
    threads: int | None,
    hint: str,
    inference_precision: str | None,
    cuda_graph: bool = False,
    torch_options: dict[str, Any] | None = None,
) -> tuple[BaseRunner, dict[str, Any]]:
    if runtime == Runtime.TORCH:
        runner = open_runner(artifact, runtime.value, device=device.value, **(torch_options or {}))
        loaded = runner.loaded
        raw = loaded.checkpoint.metadata if loaded.checkpoint is not None else {}
        size = _checkpoint_size(raw)
        meta = {
            "arch": loaded.arch,
            "num_classes": loaded.num_classes,
            "normalization": runner.normalization.to_dict(),
            "precision": "fp32",
            "input_format": "nchw-float",
            "head": "logits",
            "export_size": list(size) if size else None,
        }
        return runner, meta
    meta = read_metadata(artifact)
    return open_runner(
        artifact,
        runtime.value,
        threads=threads,
        device=device.value,
        hint=hint,
        inference_precision=inference_precision,
        meta=meta,
        cuda_graph=cuda_graph,
    ), meta


def _gmac(meta: dict[str, Any], size: tuple[int, int]) -> float | None:
    arch, classes = meta.get("arch"), meta.get("num_classes")
    if not arch or not classes:
        return None
    try:
        import torch
    except ImportError:  # a device without torch (a Jetson with only TensorRT): no MAC count
        return None

    from ..models import create_model
    from ..models.complexity import conv_gmac

    with torch.device("meta"):
        model = create_model(arch, num_classes=int(classes))
    return conv_gmac(model, *size)


# --------------------------------------------------------------------------------------------- peak probe
# dense 3x3 conv, 256 -> 256 channels. CPU: 2.416 GMAC per run. GPU: 154.6 GMAC, so a large GPU is not
# measured on launch overhead.
PROBE_SHAPES = {"cpu": (1, 256, 64, 64), "gpu": (16, 256, 128, 128)}
PROBE_WARMUP, PROBE_ITERATIONS = 3, 15


def _probe_gmac(shape: tuple[int, int, int, int]) -> float:
    n, c, h, w = shape
    return n * c * h * w * c * 9 / 1e9


def _probe_weight(channels: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((channels, channels, 3, 3)).astype(np.float32) * 0.02


def _probe_onnx(path: Path, shape: tuple[int, int, int, int] = PROBE_SHAPES["cpu"], dtype: str = "fp32") -> float:
    """Write the dense-conv probe model (FP32, or FP16 tensors for an FP16 artifact); return its GMAC."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = shape[1]
    np_type, onnx_type = (np.float16, TensorProto.FLOAT16) if dtype == "fp16" else (np.float32, TensorProto.FLOAT)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "weight"], ["output"], pads=[1, 1, 1, 1])],
        "peak_probe",
        [helper.make_tensor_value_info("input", onnx_type, list(shape))],
        [helper.make_tensor_value_info("output", onnx_type, list(shape))],
        [numpy_helper.from_array(_probe_weight(c).astype(np_type), "weight")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return _probe_gmac(shape)


def _no_peak(reason: str) -> dict[str, Any]:
    return {"gmacs": None, "reason": reason}


def _torch_probe(device: str, precision: str, channels_last: bool) -> dict[str, Any]:
    """The probe in PyTorch (cuDNN on a GPU, timed with CUDA events; oneDNN on the CPU, host clock)."""
    import torch

    from ..backends.torch.runner import TorchRunner

    gpu = device == "gpu"
    shape = PROBE_SHAPES["gpu" if gpu else "cpu"]
    conv = torch.nn.Conv2d(shape[1], shape[1], 3, padding=1, bias=False)
    conv.weight.data = torch.from_numpy(_probe_weight(shape[1]))
    runner = TorchRunner(
        conv,
        output_names=("output",),
        device="cuda" if gpu else "cpu",
        precision=precision,
        channels_last=channels_last,
    )
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    plan = TimingPlan(warmup=PROBE_WARMUP, iterations=PROBE_ITERATIONS)
    with runner:
        host = time_loop(compute_step(runner, {"input": x}), plan)
        device_ms = list(runner.device_times_ms[-PROBE_ITERATIONS:])
    median_s = float(np.median(device_ms)) / 1e3 if gpu else float(np.median(host)) / 1e9
    gmac = _probe_gmac(shape)
    return {
        "gmacs": gmac / median_s,
        "runtime": "torch",
        "device": device,
        "precision": precision,
        "clock": "CUDA events around the convolution (device time)" if gpu else "perf_counter_ns (host)",
        "shape": list(shape),
        "gmac": gmac,
        "iterations": PROBE_ITERATIONS,
        "statistic": "median",
    }


def peak_probe(
    runtime: str,
    device: str,
    threads: int | None,
    hint: str,
    inference_precision: str | None,
    *,
    artifact_precision: str = "fp32",
    torch_precision: str = "fp32",
    channels_last: bool = False,
) -> dict[str, Any]:
    """GMAC/s of a dense 3x3 convolution on the device the model ran on, in the precision it ran in, on the same
    clock (median). Returns ``{"gmacs": float, ...how it ran}`` or ``{"gmacs": None, "reason": ...}`` where no
    honest peak exists (INT8, a DLA, TensorRT without PyTorch CUDA, ONNX Runtime's CUDA provider)."""
    import tempfile

    if artifact_precision == "int8":
        return _no_peak("not measured: no INT8 probe (a float peak would overstate an INT8 model's efficiency)")
    if runtime == "torch":
        return _torch_probe(device, torch_precision, channels_last)
    if runtime == "tensorrt":
        if device != "gpu":
            return _no_peak(f"not measured: no probe for TensorRT on {device}")
        try:
            import torch
        except ImportError:
            return _no_peak("not measured: the GPU probe runs in PyTorch (CUDA), which is not installed here")
        if not torch.cuda.is_available():
            return _no_peak("not measured: the GPU probe runs in PyTorch, which sees no CUDA GPU here")
        # TensorRT FP32 engines are built with TF32 off (backends.tensorrt.builder): the probe runs strict FP32 too
        return _torch_probe(
            "gpu", artifact_precision if artifact_precision in ("fp32", "fp16", "bf16") else "fp32", False
        )
    if runtime == "onnxruntime" and device != "cpu":
        return _no_peak(
            "not measured: ONNX Runtime CUDA timings include the host<->device copies of every run and there is no "
            "device-side clock to time a copy-free probe against"
        )
    if runtime not in ("onnxruntime", "openvino"):
        return _no_peak(f"not measured: no probe for {runtime}")
    shape = PROBE_SHAPES["gpu" if device == "gpu" else "cpu"]
    dtype = "fp16" if runtime == "onnxruntime" and artifact_precision == "fp16" else "fp32"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.onnx"
        gmac = _probe_onnx(path, shape, dtype)
        runner = open_runner(
            path, runtime, device=device, threads=threads, hint=hint, inference_precision=inference_precision
        )
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float16 if dtype == "fp16" else np.float32)
        plan = TimingPlan(warmup=PROBE_WARMUP, iterations=PROBE_ITERATIONS)
        with runner:
            inputs = {runner.input_specs[0].name: x}
            ran = runner.executed_precision or dtype
            if runtime == "openvino" and hint == "throughput":
                runner.infer(inputs)
                pool = runner.async_pool()  # type: ignore[attr-defined]
                t = throughput_loop(pool, inputs, TimingPlan(warmup=PROBE_WARMUP, iterations=4 * PROBE_ITERATIONS))
                stats = throughput_stats(t.latencies_ns, t.wall_ns, t.requests)
                gmacs, count = gmac * stats.throughput_ips, stats.iterations
                clock = f"asynchronous throughput, {t.requests} requests in flight (wall clock)"
            else:
                samples = time_loop(compute_step(runner, inputs), plan)
                gmacs, count = gmac / (float(np.median(samples)) / 1e9), len(samples)
                clock = "perf_counter_ns (host)"
    return {
        "gmacs": gmacs,
        "runtime": runtime,
        "device": device,
        "precision": ran,
        "clock": clock,
        "shape": list(shape),
        "gmac": gmac,
        "iterations": count,
        "statistic": "median" if "host" in clock else "throughput",
    }


# --------------------------------------------------------------------------------------------- end-to-end frames
def _jpeg_frames(size: tuple[int, int], count: int, seed: int = 0) -> list[bytes]:
    """In-memory JPEG frames for end-to-end timing when no --data is given."""
    from PIL import Image

    from ..data.synth import generate_scene

    frames = []
    for i in range(count):
        image, _ = generate_scene(np.random.default_rng([seed, i]), *size)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=90)
        frames.append(buf.getvalue())
    return frames


def _image_files(data: str | Path) -> list[Path]:
    from ..data.datasets import open_dataset

    ds = open_dataset(data)
    return [s.image_path for s in ds.samples[:E2E_SCAN]]


def readable_frames(data: str | Path, count: int = E2E_IMAGES) -> tuple[list[bytes], list[str]]:
    """The encoded bytes of up to ``count`` images of ``data`` that decode (``data.images.read_image``), and the
    names of the files skipped as unreadable (each logged as a warning). DataError (exit 5) if none decodes."""
    from ..data.images import read_image

    frames: list[bytes] = []
    skipped: list[str] = []
    files = _image_files(data)
    for path in files:
        if len(frames) >= count:
            break
        try:
            read_image(path)
            frames.append(Path(path).read_bytes())
        except (DataError, OSError) as exc:
            skipped.append(str(path))
            log.warning("skipping unreadable image %s: %s", path, getattr(exc, "message", exc))
    if not frames:
        raise DataError(
            f"--data {data}: none of its {len(files)} image(s) could be read"
            + (f" (skipped: {', '.join(Path(p).name for p in skipped[:5])}{', ...' if len(skipped) > 5 else ''})")
            + ". Check the images, or drop --data to time synthetic JPEG frames"
        )
    return frames, skipped


def _decode(frame: bytes, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(frame)) as img:
        decoded = np.asarray((ImageOps.exif_transpose(img) or img).convert("RGB"))
    if decoded.shape[:2] != size:
        decoded = np.asarray(Image.fromarray(decoded).resize((size[1], size[0]), Image.BILINEAR))
    return decoded


# --------------------------------------------------------------------------------------------- labels
def precision_label(result: dict[str, Any]) -> str:
    """What a result's row says about precision, without contradiction: ``int8 artifact, float parts fp32``,
    ``fp16 artifact, ran fp32``, ``fp16, channels-last, compiled`` (PyTorch), or just ``fp32``."""
    artifact, ran = result.get("artifact_precision"), result.get("inference_precision")
    config = result.get("runtime_config") or {}
    if result.get("runtime") == "torch":
        label = ran or "fp32"
        extras = [
            name for key, name in (("channels_last", "channels-last"), ("compiled", "compiled")) if config.get(key)
        ]
        return ", ".join([label, *extras])
    fallback = result.get("precision_fallback")
    note = f" ({fallback['requested']} requested, not available)" if fallback else ""
    if artifact == "int8":
        return "int8 artifact" + (f", float parts {ran}" if ran else "") + note
    if ran and artifact and ran != artifact:
        return f"{artifact} artifact, ran {ran}{note}"
    return str(artifact or ran or "precision not recorded") + note


# --------------------------------------------------------------------------------------------- benchmark
def benchmark(
    artifact: str | Path,
    *,
    runtime: str = "auto",
    device: str | None = None,
    batch: int | None = None,
    input_size: tuple[int, int] | None = None,
    warmup: int = 10,
    iterations: int | None = None,
    duration_s: float | None = None,
    threads: int | None = None,
    hint: str = "latency",
    inference_precision: str | None = None,
    allow_fallback: bool = False,
    end_to_end: bool = False,
    data: str | Path | None = None,
    peak: bool = True,
    cuda_graph: bool = False,
    torch_precision: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,  # noqa: A002  (named as the CLI option --compile)
    json_out: str | Path | None = None,
) -> dict[str, Any]:
    """Time ``artifact`` (on ``device``: default cpu, gpu for TensorRT engines); returns the versioned JSON-ready
    result (and writes it to ``json_out``, probed before any work). Without ``iterations`` or ``duration_s``, runs
    ``DEFAULT_ITERATIONS`` timed iterations.

    ``input_size`` is required unless the artifact has a static size, or its metadata (or the checkpoint's) records
    the size it was made for. ``inference_precision`` (OpenVINO, default fp32): a request the plugin cannot honour
    (bf16 on a CPU without bf16 units) is refused (UsageError) unless ``allow_fallback``, which records what ran.
    ``torch_precision`` / ``channels_last`` / ``compile``: how a checkpoint runs in PyTorch."""
    check_bench_options(
        warmup=warmup,
        iterations=iterations,
        duration_s=duration_s,
        batch=batch,
        input_size=input_size,
        threads=threads,
    )
    plan = TimingPlan(
        warmup=warmup, iterations=None if duration_s else (iterations or DEFAULT_ITERATIONS), duration_s=duration_s
    )
    artifact = Path(artifact)
    if not artifact.exists():
        raise ModelNotFoundError(f"artifact not found: {artifact}. Check the path")
    if json_out is not None and str(json_out) != "-":
        probe_output(json_out, inputs=[artifact, data], what="--json")
    if data is not None and not end_to_end:
        raise UsageError("--data is the image folder for --end-to-end. Add --end-to-end or drop --data")
    kind = resolve_runtime(artifact, runtime)
    dev = resolve_device(kind, device)
    requested = normalize_inference_precision(inference_precision)
    if kind != Runtime.OPENVINO and requested not in (None, "fp32"):
        raise UsageError(
            f"--inference-precision sets OpenVINO's precision hint, not {kind}'s. "
            + ("Use --precision for PyTorch" if kind == Runtime.TORCH else "Drop it")
        )
    if hint not in ("latency", "throughput"):
        raise UsageError(f"unsupported --hint: {hint}. Use latency or throughput")
    if hint != "latency" and kind != Runtime.OPENVINO:
        raise UsageError(f"--hint is OpenVINO's performance hint, not {kind}'s. Drop it")
    if threads and kind == Runtime.TORCH:
        import torch

        torch.set_num_threads(threads)
    torch_options = {"torch_precision": torch_precision, "channels_last": channels_last, "compile": compile}
    if kind != Runtime.TORCH and (torch_precision != "fp32" or channels_last or compile):
        raise UsageError(
            f"--precision/--channels-last/--compile set how a checkpoint runs in PyTorch, not {kind}. "
            "Drop them (an artifact's precision is fixed when it is built)"
        )
    runner, meta = _runner(artifact, kind, dev, threads, hint, requested or "fp32", cuda_graph, torch_options)
    policy = InputPolicy.from_metadata(meta)
    input_format = policy.input_format
    art_precision = artifact_precision(artifact, meta).value if kind != Runtime.TORCH else "fp32"
    gpu = dev in (Device.GPU, Device.DLA)
    throughput_mode = kind == Runtime.OPENVINO and hint == "throughput"
    result: dict[str, Any] = {}
    skipped: list[str] = []
    with runner:
        spec = runner.input_specs[0]
        bound = policy.for_input(spec.name, spec.shape)
        if bound.static_size and input_size and tuple(input_size) != bound.static_size:
            h, w = bound.static_size
            raise UsageError(f"this artifact has a static input size {h}x{w}; drop --input-size or pass it")
        if bound.static_size:
            size, size_source = bound.static_size, "static shape of the artifact"
        elif input_size:
            size, size_source = (int(input_size[0]), int(input_size[1])), "--input-size"
        elif bound.export_size:
            what = "checkpoint" if kind == Runtime.TORCH else "artifact"
            size, size_source = bound.export_size, f"{what} metadata"
        else:
            what = (
                "the checkpoint's metadata records no input size"
                if kind == Runtime.TORCH
                else ("this artifact has a dynamic input size and its metadata records no export size")
            )
            raise UsageError(f"{what}. Pass --input-size HxW (e.g. --input-size 512x512)")
        dims = spec.shape
        n = dims[0] if isinstance(dims[0], int) else (batch or 1)
        if batch and isinstance(dims[0], int) and batch != dims[0]:
            raise UsageError(f"this artifact has a static batch of {dims[0]}; drop --batch or re-export")
        check_bench_options(warmup=warmup, iterations=None, duration_s=None, batch=n, input_size=size, threads=None)
        ran = runner.executed_precision
        if kind == Runtime.OPENVINO and getattr(runner, "precision_fallback", False):
            want = requested or "fp32"
            if not allow_fallback:
                raise UsageError(
                    f"--inference-precision {want}: OpenVINO's {dev.value.upper()} plugin compiled the model in "
                    f"{ran} (INFERENCE_PRECISION_HINT read back), e.g. a CPU without bf16 units (avx512_bf16/"
                    f"amx_bf16). Pass --inference-precision {ran}, or --allow-fallback to time {ran} and record it"
                )
            log.warning("--inference-precision %s is not available here: timing %s (recorded)", want, ran)
            result["precision_fallback"] = {"requested": want, "ran": ran}

        def prepare(image: np.ndarray) -> np.ndarray:
            return bound.to_input(image, batch=n)

        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        inputs = {spec.name: prepare(image)}
        if compile:
            import time

            t0 = time.perf_counter_ns()
            runner.infer(inputs)  # torch.compile compiles on the first call: kept out of the timed iterations
            result["first_call_ms"] = (time.perf_counter_ns() - t0) / 1e6
        if throughput_mode:
            runner.infer(inputs)  # checks the input against the model once (async submissions do not)
            pool = runner.async_pool()  # type: ignore[attr-defined]
            t = throughput_loop(pool, inputs, plan)
            compute = throughput_stats(t.latencies_ns, t.wall_ns, t.requests, batch=n)
            result["compute_only"] = {
                **compute.to_dict(),
                "mode": f"asynchronous: {t.requests} infer requests in flight (AsyncInferQueue); throughput_ips over "
                "wall time, *_ms are each request's own latency (InferRequest.latency)",
            }
        else:
            compute = latency_stats(time_loop(compute_step(runner, inputs), plan), batch=n)
            result["compute_only"] = compute.to_dict()
        device_only = device_stats(getattr(runner, "device_times_ms", None), compute.iterations, n)
        if device_only is not None and not throughput_mode:
            result["device_only"] = device_only
        memory = getattr(runner, "device_memory_mib", None)
        result["device_memory_mib"] = memory() if callable(memory) else None
        if end_to_end:
            if data:
                frames, skipped = readable_frames(data)
            else:
                frames = _jpeg_frames(size, 8)

            def load(i: int) -> np.ndarray:
                return _decode(frames[i], size)

            step = end_to_end_step(runner, spec.name, load, prepare, len(frames))
            result["end_to_end"] = latency_stats(time_loop(step, plan), batch=n).to_dict()
        runtime_config = dict(runner.runtime_config or {})
    if kind == Runtime.TORCH:
        ran = runner.executed_precision
    elif ran is None and kind == Runtime.ONNXRUNTIME:
        ran = "fp32" if art_precision == "int8" else art_precision  # ORT computes Q/DQ models' float parts in fp32
    elif ran is None and art_precision != "int8":
        ran = art_precision
    if ran == "int8":
        ran = None  # an engine's sidecar names the artifact; what its float parts ran in is not recorded
    gmac = _gmac(meta, size)
    # the peak's clock: CUDA events where the model has device times (PyTorch CUDA, TensorRT), else its own
    if not gmac:
        achieved = None
    elif throughput_mode:
        achieved = achieved_gmacs(gmac, compute)
    else:
        p50_ms = (result.get("device_only") or result["compute_only"])["p50_ms"]
        achieved = gmac * n / (p50_ms / 1000.0)
    if peak:
        probe = peak_probe(
            kind.value,
            dev.value,
            threads,
            hint,
            requested or "fp32",
            artifact_precision=art_precision,
            torch_precision=torch_precision,
            channels_last=channels_last,
        )
    else:
        probe = _no_peak("not measured: --no-peak")
    if probe.get("gmacs") is not None and probe.get("precision") not in (ran, None):
        probe = _no_peak(f"not measured: the probe ran {probe.get('precision')}, the model {ran}")
    peak_gmacs = probe.get("gmacs")
    env = collect_environment()
    doc = {
        "schema": BENCH_SCHEMA,
        "schema_version": BENCH_SCHEMA_VERSION,
        "created": utc_now(),
        "tool_version": __version__,
        "artifact": str(artifact),
        "runtime": kind.value,
        "device": str(runner.device),
        "precision": art_precision,  # schema 1 name of artifact_precision
        "artifact_precision": art_precision,
        "inference_precision": ran,
        "runtime_precision": ran,  # schema 1 name of inference_precision
        "requested_inference_precision": (requested or "fp32") if kind == Runtime.OPENVINO else None,
        "hint": hint if kind == Runtime.OPENVINO else None,
        "runtime_config": runtime_config or None,
        "arch": meta.get("arch"),
        "num_classes": meta.get("num_classes"),
        "input_size": list(size),
        "input_size_source": size_source,
        "batch": n,
        "input_format": input_format,
        "head": meta.get("head"),
        "protocol": {
            "timing": (
                f"{max(plan.warmup, compute.requests) if plan.warmup else 0} warm-up submissions, then "
                f"{compute.requests} asynchronous requests kept in flight "
                + (f"for {plan.duration_s} s" if plan.duration_s else f"until {plan.iterations} were started")
                + "; throughput over the wall time, latency per request"
                if throughput_mode
                else plan.describe(device_sync=gpu)
            ),
            "compute_only": "runtime call on a fixed, pre-processed input",
            "end_to_end": "JPEG decode + resize + preprocess + infer + copy back + argmax on the host",
            "threads": threads,
            "device_synchronised": gpu,
        },
        **result,
        "gmac_per_image": gmac,
        "achieved_gmacs": achieved,
        "achieved_at": (
            None
            if achieved is None
            else "throughput"
            if throughput_mode
            else "p50 of device_only (CUDA events)"
            if "device_only" in result
            else "p50 of compute_only"
        ),
        "peak_gmacs": peak_gmacs,
        "peak_probe": probe,
        "fraction_of_peak": achieved / peak_gmacs if achieved and peak_gmacs else None,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "fingerprint": env,
    }
    if end_to_end:
        doc["end_to_end_skipped"] = skipped
    doc["label"] = precision_label(doc)
    if json_out is not None and str(json_out) != "-":
        write_json_atomic(json_out, doc)
    return doc


def device_stats(device_times_ms: list[float] | None, timed: int, batch: int) -> dict[str, Any] | None:
    """Latency statistics of the GPU-side times (CUDA events) of the last ``timed`` inferences.

    GPU runners record one time per ``infer``; the first ones belong to the warm-up and are dropped, so
    these are the same iterations as the host-side compute-only numbers."""
    if not device_times_ms or len(device_times_ms) < timed:
        return None
    ns = [int(t * 1e6) for t in device_times_ms[-timed:]]
    return {
        **latency_stats(ns, batch=batch).to_dict(),
        "clock": "CUDA events around the model/engine on its stream (excludes host copies)",
    }
