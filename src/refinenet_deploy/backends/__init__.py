"""One package per runtime, as Polygraphy's ``backend/{onnxrt,trt,...}``: its builder (where there is one) and
its runner, all behind the ``BaseRunner`` protocol.

| package | builder | runner |
|---|---|---|
| ``torch`` | torch -> ONNX graph (``exporter``) | ``TorchRunner`` (checkpoints, the PyTorch reference) |
| ``onnxruntime`` | | ``OnnxRuntimeRunner`` (.onnx: FP32, FP16, Q/DQ INT8) |
| ``openvino`` | ONNX -> IR (``builder``) | ``OpenVINORunner`` (.xml) |
| ``tensorrt`` | | ``TensorRTRunner`` (.engine) |

Backends are imported only inside their own packages, when a runner or builder for them is used, so the core
installs and runs without any of them. ``open_runner`` is the one way in: it picks the runtime from the file,
checks the device against what that runtime can run on, and returns a runner that is not yet activated.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..enums import RUNTIME_DEVICES, Device, Runtime
from ..errors import UsageError, regular_file
from .base import BaseRunner, TensorSpec

RUNTIMES = ("auto", *Runtime.values())
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".safetensors", ".ckpt", ".bin")


def detect_runtime(artifact: str | Path) -> Runtime:
    """The runtime an artifact needs, from its file name."""
    name = Path(artifact).name.lower()
    if name.endswith(".onnx"):
        return Runtime.ONNXRUNTIME
    if name.endswith(".xml"):
        return Runtime.OPENVINO
    if name.endswith((".engine", ".plan", ".trt")):
        return Runtime.TENSORRT
    if name.endswith(CHECKPOINT_SUFFIXES):
        return Runtime.TORCH
    raise UsageError(
        f"cannot tell the runtime of {Path(artifact).name}. Pass --runtime "
        "(onnxruntime for .onnx, openvino for .xml, tensorrt for .engine, torch for checkpoints)"
    )


def resolve_runtime(artifact: str | Path, runtime: str = "auto") -> Runtime:
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime: {runtime}. Use one of {', '.join(RUNTIMES)}")
    return detect_runtime(artifact) if runtime == "auto" else Runtime(runtime)


def resolve_device(runtime: Runtime, device: str | None = None) -> Device:
    """``device`` checked against what ``runtime`` can run on; ``None`` is the runtime's default (cpu, or gpu
    for TensorRT engines)."""
    allowed = RUNTIME_DEVICES[runtime]
    if device is None:
        return allowed[0]
    if device not in Device.values():
        raise UsageError(f"unknown --device: {device}. Use one of {', '.join(Device.values())}")
    if device not in allowed:
        raise UsageError(f"{runtime} runs on {' or '.join(allowed)}, not {device}. Pass --device {allowed[0]}")
    return Device(device)


def check_runtime_options(
    kind: Runtime,
    device: Device,
    *,
    cuda_graph: bool = False,
    torch_precision: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,  # noqa: A002
    compile_mode: str | None = None,
    cudnn_benchmark: bool | None = None,
) -> None:
    """UsageError (exit 2) for an option that does not apply to this runtime and device: options are refused,
    never ignored. PyTorch's own GPU-only options are checked by its runner (``check_torch_gpu_options``)."""
    if cuda_graph and kind not in (Runtime.TENSORRT, Runtime.TORCH):
        raise UsageError(
            f"--cuda-graph replays a CUDA graph of a TensorRT engine or of a checkpoint on a GPU, not of {kind}. "
            "Drop --cuda-graph"
        )
    if cuda_graph and kind == Runtime.TENSORRT and device == Device.DLA:
        raise UsageError("--cuda-graph: DLA engines are not captured into CUDA graphs. Drop --cuda-graph")
    torch_only = {
        "--precision": torch_precision != "fp32",
        "--channels-last": channels_last,
        "--compile": compile,
        "--compile-mode": compile_mode is not None,
        "--cudnn-benchmark": cudnn_benchmark is not None,
    }
    given = [name for name, on in torch_only.items() if on]
    if kind != Runtime.TORCH and given:
        raise UsageError(
            f"{'/'.join(given)} set how a checkpoint runs in PyTorch, not {kind}. "
            "Drop them (an artifact's precision is fixed when it is built)"
        )


def open_runner(
    artifact: str | Path,
    runtime: str = "auto",
    *,
    device: str | None = None,
    threads: int | None = None,
    hint: str = "latency",
    inference_precision: str | None = "fp32",
    meta: Mapping[str, Any] | None = None,
    policy: Any = None,
    cuda_graph: bool = False,
    torch_precision: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,  # noqa: A002  (named as the CLI option --compile)
    compile_mode: str | None = None,
    cudnn_benchmark: bool | None = None,
) -> BaseRunner:
    """A (not yet activated) runner for an artifact or a checkpoint.

    ``device`` defaults to what the runtime runs on first (cpu; gpu for engines); each runner records it
    (``runner.device``). For a checkpoint, ``policy`` (an ``artifacts.InputPolicy``) sets the deploy wrapper's
    normalisation, input format and head, so that the PyTorch side computes what an artifact computes.
    ``cuda_graph``: TensorRT engines with static shapes, and checkpoints on a CUDA GPU, replay one captured CUDA
    graph per inference (refused elsewhere: exit 2, never ignored).
    ``inference_precision`` (OpenVINO: fp32 | fp16 | bf16, f32/f16 accepted) sets the float parts' precision hint.
    ``torch_precision`` (fp32 | tf32 | fp16 | bf16), ``channels_last`` and ``compile`` (torch.compile) set how a
    checkpoint runs in PyTorch (see ``backends.torch.runner``), with ``compile_mode`` and ``cudnn_benchmark`` (GPU);
    a precision or option the device cannot run is a UsageError.
    """
    kind = resolve_runtime(artifact, runtime)
    dev = resolve_device(kind, device)
    for path in (Path(artifact), *([Path(artifact).with_suffix(".bin")] if kind == Runtime.OPENVINO else [])):
        if path.exists() or path.is_symlink():
            regular_file(path, "model file")  # a FIFO would block the runtime's open() forever
    check_runtime_options(
        kind,
        dev,
        cuda_graph=cuda_graph,
        torch_precision=torch_precision,
        channels_last=channels_last,
        compile=compile,
        compile_mode=compile_mode,
        cudnn_benchmark=cudnn_benchmark,
    )
    if kind == Runtime.ONNXRUNTIME:
        from .onnxruntime import open_onnxruntime

        runner: BaseRunner = open_onnxruntime(artifact, dev, threads=threads)
    elif kind == Runtime.OPENVINO:
        from .openvino import OpenVINORunner

        runner = OpenVINORunner(
            Path(artifact),
            device=dev.value.upper(),
            hint=hint,
            threads=threads,
            inference_precision=inference_precision,
        )
    elif kind == Runtime.TENSORRT:
        from ..artifacts import read_metadata
        from .tensorrt import TensorRTRunner

        runner = TensorRTRunner(
            Path(artifact), meta=read_metadata(artifact) if meta is None else meta, device=dev, cuda_graph=cuda_graph
        )
    else:
        from .torch import open_checkpoint

        runner = open_checkpoint(artifact, device=dev, policy=policy)
        runner.configure(
            precision=torch_precision,
            channels_last=channels_last,
            compile=compile,
            compile_mode=compile_mode,
            cuda_graph=cuda_graph,
            cudnn_benchmark=cudnn_benchmark,
        )
    return runner


__all__ = [
    "CHECKPOINT_SUFFIXES",
    "RUNTIMES",
    "BaseRunner",
    "TensorSpec",
    "check_runtime_options",
    "detect_runtime",
    "open_runner",
    "resolve_device",
    "resolve_runtime",
]
