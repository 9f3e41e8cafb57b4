"""The dense-convolution peak a model's achieved GMAC/s is compared with: run on the device the model ran on, in
the precision (and memory layout) it ran in, on the same clock, or not measured (``gmacs`` None, with the reason).
A fraction of peak over 1 means the probe did not bound this run, and is not shown (``fraction_of_peak``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...backends import open_runner
from ...validate.latency import throughput_stats
from ...validate.timing import TimingPlan, compute_step, throughput_loop, time_loop

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


def no_peak(reason: str) -> dict[str, Any]:
    return {"gmacs": None, "reason": reason}


def _torch_probe(device: str, precision: str, channels_last: bool) -> dict[str, Any]:
    """The probe in PyTorch (cuDNN on a GPU, timed with CUDA events; oneDNN on the CPU, host clock)."""
    import torch

    from ...backends.torch.runner import TorchRunner

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
        return no_peak("not measured: no INT8 probe (a float peak would overstate an INT8 model's efficiency)")
    if runtime == "torch":
        return _torch_probe(device, torch_precision, channels_last)
    if runtime == "tensorrt":
        if device != "gpu":
            return no_peak(f"not measured: no probe for TensorRT on {device}")
        try:
            import torch
        except ImportError:
            return no_peak("not measured: the GPU probe runs in PyTorch (CUDA), which is not installed here")
        if not torch.cuda.is_available():
            return no_peak("not measured: the GPU probe runs in PyTorch, which sees no CUDA GPU here")
        # TensorRT FP32 engines are built with TF32 off (backends.tensorrt.builder): the probe runs strict FP32 too
        return _torch_probe(
            "gpu", artifact_precision if artifact_precision in ("fp32", "fp16", "bf16") else "fp32", False
        )
    if runtime == "onnxruntime" and device != "cpu":
        return no_peak(
            "not measured: ONNX Runtime CUDA timings include the host<->device copies of every run and there is no "
            "device-side clock to time a copy-free probe against"
        )
    if runtime not in ("onnxruntime", "openvino"):
        return no_peak(f"not measured: no probe for {runtime}")
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


def fraction_of_peak(achieved: float | None, peak_gmacs: float | None) -> tuple[float | None, str | None]:
    """``achieved / peak`` and None, or None and why it is not shown: a fraction over 1 means the probe is not a
    bound for this run (another layout, fusion or threading than the probe's), never a model beating the peak."""
    if not achieved or not peak_gmacs:
        return None, None
    fraction = achieved / peak_gmacs
    if fraction > 1.0:
        return None, (
            f"not shown: the model ran at {achieved:.3g} GMAC/s, above the probe's {peak_gmacs:.3g} GMAC/s, so the "
            "probe does not bound this run"
        )
    return fraction, None
