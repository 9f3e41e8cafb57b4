"""``benchmark``: latency of one artifact on this machine, with the device fingerprint and the protocol.

Glue between ``backends`` (the runner, on the device the artifact runs on), ``validate.timing`` (timing loops)
and ``validate.latency`` (statistics). Every number in the result is labelled compute-only, device-only or
end-to-end.
"""

from __future__ import annotations

import io
import resource
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..artifacts import InputPolicy, artifact_precision, read_metadata, utc_now
from ..backends import open_runner, resolve_device, resolve_runtime
from ..backends.base import BaseRunner
from ..enums import Device, Runtime
from ..environment import collect_environment
from ..errors import UsageError
from ..validate.latency import achieved_gmacs, latency_stats
from ..validate.timing import TimingPlan, compute_step, end_to_end_step, time_loop

BENCH_SCHEMA = "refinenet-deploy/bench"
DEVICES = Device.values()
DEFAULT_ITERATIONS = 100


def _runner(
    artifact: Path,
    runtime: Runtime,
    device: Device,
    threads: int | None,
    hint: str,
    inference_precision: str | None,
    cuda_graph: bool = False,
) -> tuple[BaseRunner, dict[str, Any]]:
    if runtime == Runtime.TORCH:
        runner = open_runner(artifact, runtime.value, device=device.value)
        loaded = runner.loaded
        meta = {
            "arch": loaded.arch,
            "num_classes": loaded.num_classes,
            "normalization": runner.normalization.to_dict(),
            "precision": "fp32",
            "input_format": "nchw-float",
            "head": "logits",
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
    import torch

    from ..models import create_model
    from ..models.complexity import conv_gmac

    with torch.device("meta"):
        model = create_model(arch, num_classes=int(classes))
    return conv_gmac(model, *size)


PROBE_SHAPE = (1, 256, 64, 64)  # dense 3x3 conv, 256 -> 256 channels: 2.416 GMAC per run


def _probe_onnx(path: Path) -> float:
    """Write the dense-conv probe model; return its GMAC."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n, c, h, w = PROBE_SHAPE
    weight = np.random.default_rng(0).standard_normal((c, c, 3, 3)).astype(np.float32) * 0.02
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "weight"], ["output"], pads=[1, 1, 1, 1])],
        "peak_probe",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(PROBE_SHAPE))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(PROBE_SHAPE))],
        [numpy_helper.from_array(weight, "weight")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return n * c * h * w * c * 9 / 1e9


def peak_probe(
    runtime: str, device: str, threads: int | None, hint: str, inference_precision: str | None
) -> float | None:
    """GMAC/s of a dense 3x3 convolution on the same runtime, device and precision settings (median)."""
    import tempfile

    if runtime not in ("onnxruntime", "openvino", "torch") or device not in ("cpu", "gpu", "npu"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.onnx"
        gmac = _probe_onnx(path)
        if runtime == "torch":
            import onnx
            import torch

            from ..backends.torch.runner import TorchRunner

            conv = torch.nn.Conv2d(PROBE_SHAPE[1], PROBE_SHAPE[1], 3, padding=1, bias=False)
            weight = onnx.numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])
            conv.weight.data = torch.from_numpy(weight.copy())
            runner: BaseRunner = TorchRunner(conv, output_names=("output",))
        else:
            runner = open_runner(
                path, runtime, device=device, threads=threads, hint=hint, inference_precision=inference_precision
            )
        x = np.random.default_rng(1).standard_normal(PROBE_SHAPE).astype(np.float32)
        with runner:
            samples = time_loop(
                compute_step(runner, {runner.input_specs[0].name: x}), TimingPlan(warmup=3, iterations=15)
            )
    return gmac / (float(np.median(samples)) / 1e9)


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
    inference_precision: str | None = "f32",
    end_to_end: bool = False,
    data: str | Path | None = None,
    peak: bool = True,
    cuda_graph: bool = False,
) -> dict[str, Any]:
    """Time ``artifact`` (on ``device``: default cpu, gpu for TensorRT engines); returns the versioned JSON-ready
    result. Without ``iterations`` or ``duration_s``, runs ``DEFAULT_ITERATIONS`` timed iterations."""
    if iterations is not None and duration_s is not None:
        raise UsageError("--iterations and --duration exclude each other. Pass one")
    plan = TimingPlan(
        warmup=warmup, iterations=None if duration_s else (iterations or DEFAULT_ITERATIONS), duration_s=duration_s
    )
    artifact = Path(artifact)
    if not artifact.exists():
        raise UsageError(f"artifact not found: {artifact}. Check the path")
    kind = resolve_runtime(artifact, runtime)
    dev = resolve_device(kind, device)
    if threads and kind == Runtime.TORCH:
        import torch

        torch.set_num_threads(threads)
    runner, meta = _runner(artifact, kind, dev, threads, hint, inference_precision, cuda_graph)
    policy = InputPolicy.from_metadata(meta)
    input_format = policy.input_format
    precision = artifact_precision(artifact, meta).value if kind != Runtime.TORCH else "fp32"
    result: dict[str, Any] = {}
    with runner:
        spec = runner.input_specs[0]
        bound = policy.for_input(spec.name, spec.shape)
        if bound.static_size and input_size and tuple(input_size) != bound.static_size:
            h, w = bound.static_size
            raise UsageError(f"this artifact has a static input size {h}x{w}; drop --input-size or pass it")
        size = bound.size_for(tuple(input_size) if input_size else None)
        dims = spec.shape
        n = dims[0] if isinstance(dims[0], int) else (batch or 1)
        if batch and isinstance(dims[0], int) and batch != dims[0]:
            raise UsageError(f"this artifact has a static batch of {dims[0]}; drop --batch or re-export")

        def prepare(image: np.ndarray) -> np.ndarray:
            return bound.to_input(image, batch=n)

        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        inputs = {spec.name: prepare(image)}
        compute = latency_stats(time_loop(compute_step(runner, inputs), plan), batch=n)
        result["compute_only"] = compute.to_dict()
        device_only = device_stats(getattr(runner, "device_times_ms", None), compute.iterations, n)
        if device_only is not None:
            result["device_only"] = device_only
        memory = getattr(runner, "device_memory_mib", None)
        result["device_memory_mib"] = memory() if callable(memory) else None
        if end_to_end:
            from PIL import Image

            frames = [Path(p).read_bytes() for p in _image_files(data)] if data else _jpeg_frames(size, 8)

            def load(i: int) -> np.ndarray:
                decoded = np.asarray(Image.open(io.BytesIO(frames[i])).convert("RGB"))
                if decoded.shape[:2] != size:
                    decoded = np.asarray(Image.fromarray(decoded).resize((size[1], size[0]), Image.BILINEAR))
                return decoded

            step = end_to_end_step(runner, spec.name, load, prepare, len(frames))
            result["end_to_end"] = latency_stats(time_loop(step, plan), batch=n).to_dict()
        executed = getattr(runner, "executed_precision", None)
        runtime_config = dict(getattr(runner, "runtime_config", {}) or {})
    gmac = _gmac(meta, size)
    achieved = achieved_gmacs(gmac, compute) if gmac else None
    # the probe is a float convolution: an INT8 artifact's fraction of it would mix precisions (>100 %)
    float_artifact = precision in ("fp32", "fp16")
    peak_gmacs = (
        peak_probe(kind.value, dev.value, threads, hint, inference_precision) if peak and float_artifact else None
    )
    env = collect_environment()
    return {
        "schema": BENCH_SCHEMA,
        "schema_version": 1,
        "created": utc_now(),
        "tool_version": __version__,
        "artifact": str(artifact),
        "runtime": kind.value,
        "device": str(runner.device),
        "precision": precision,
        "runtime_precision": executed,
        "hint": hint,
        "runtime_config": runtime_config or None,
        "arch": meta.get("arch"),
        "num_classes": meta.get("num_classes"),
        "input_size": list(size),
        "batch": n,
        "input_format": input_format,
        "head": meta.get("head"),
        "protocol": {
            "timing": plan.describe(),
            "compute_only": "runtime call on a fixed, pre-processed input",
            "end_to_end": "JPEG decode + resize + preprocess + infer + copy back + argmax on the host",
            "threads": threads,
        },
        **result,
        "gmac_per_image": gmac,
        "achieved_gmacs": achieved,
        "peak_gmacs": peak_gmacs,
        "peak_probe": "dense 3x3 conv 256->256 at 64x64, same runtime/device/precision, median of 15"
        if peak_gmacs
        else (
            None
            if float_artifact
            else "not measured: no INT8 probe (a float peak would overstate an INT8 model's efficiency)"
        ),
        "fraction_of_peak": achieved / peak_gmacs if achieved and peak_gmacs else None,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "fingerprint": env,
    }


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


def _image_files(data: str | Path) -> list[Path]:
    from ..data.datasets import open_dataset

    ds = open_dataset(data)
    return [s.image_path for s in ds.samples[:16]]
