"""PyTorch runner: the FP32 reference every backend is compared with (named torch_runner, not torch), and PyTorch
as deployed on a GPU (``precision`` fp32 | tf32 | fp16 | bf16, ``channels_last``, ``compile``).

Precisions:

- ``fp32``: IEEE FP32. On CUDA, TF32 is switched off for matmuls and cuDNN convolutions
  (``torch.backends.cuda.matmul.allow_tf32 = False``, ``torch.backends.cudnn.allow_tf32 = False``) while the runner
  is active, and the previous flags are restored by ``deactivate()``.
- ``tf32``: FP32 tensors with both TF32 flags on (CUDA, compute capability 8.0 or newer).
- ``fp16`` / ``bf16``: the network's weights are cast (``module.to(dtype)``) and its input is cast before it runs,
  as a user shipping a half-precision PyTorch model does (no autocast: autocast re-casts the weights on every
  forward, which a deployment does not pay). A ``models.DeployModule``'s in-graph normalisation of uint8 frames
  stays in FP32; its network runs in ``dtype``. Outputs come back as FP32 (argmax heads as their integer type).
  fp16 needs CUDA; bf16 runs on CUDA GPUs with bf16 support, and on CPUs with native bf16 (AVX512-BF16 or AMX).

How it runs on a GPU (each recorded in ``runtime_config``, with the torch and cuDNN versions):

- ``cudnn_benchmark`` (default on for CUDA): cuDNN times its convolution algorithms on the first call of each shape
  and keeps the fastest, as a GPU user running one static shape would; the previous flag is restored by
  ``deactivate()``. It does not apply to the CPU.
- ``cuda_graph``: the forward pass is captured once per input shape into a ``torch.cuda.CUDAGraph`` (after a few
  warm-up calls on a side stream, as PyTorch's documentation prescribes) and replayed on every inference; the
  input is copied into the graph's static buffer first (outside the CUDA events, like the host copy). At batch 1
  a RefineNet is launch-bound, so a graph is what a GPU deployment of PyTorch uses. CUDA only.
- ``compile`` with ``compile_mode`` (``default`` | ``reduce-overhead`` | ``max-autotune``): ``torch.compile``;
  ``reduce-overhead`` replays CUDA graphs of its own, so it is not combined with ``cuda_graph``, and it needs CUDA.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...enums import Device, Precision
from ...errors import UsageError
from ..base import BaseRunner, TensorSpec

if TYPE_CHECKING:
    from ...data.preprocessing import Normalization
    from ...models import LoadedModel

TORCH_PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
GRAPH_WARMUP = 3  # eager calls on a side stream before a capture (cuDNN picks its algorithms there)
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def cpu_supports_bf16() -> bool:
    """Native bf16 on this CPU (AVX512-BF16 or AMX-BF16), as oneDNN's bf16 kernels need."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # older or newer torch without the probe: read the CPU flags
        from ...environment import cpu_info

        return bool({"avx512_bf16", "amx_bf16"} & set(cpu_info()["isa"]))


def check_torch_precision(
    precision: str,
    device: str,
    *,
    bf16_supported: bool | None = None,
    compute_capability: tuple[int, int] | None = None,
) -> str:
    """The canonical spelling of ``precision``; UsageError (exit 2) when it cannot run on ``device`` ("cpu" or
    "cuda"), with the reason.

    ``bf16_supported`` / ``compute_capability`` default to asking this machine (passed explicitly in tests)."""
    precision = Precision.parse(precision, allowed=[Precision(p) for p in TORCH_PRECISIONS], option="--precision").value
    cuda = device.startswith("cuda")
    if not cuda:
        if precision in ("tf32", "fp16"):
            raise UsageError(
                f"--precision {precision} runs PyTorch on a CUDA GPU only. Pass --device gpu, "
                "or --precision fp32 (or bf16 on a CPU with AVX512-BF16/AMX) on the CPU"
            )
        if precision == "bf16":
            if bf16_supported is None:
                bf16_supported = cpu_supports_bf16()
            if not bf16_supported:
                raise UsageError(
                    "--precision bf16: this CPU has no native bf16 (no avx512_bf16/amx_bf16); PyTorch would emulate "
                    "it, which times an emulation, not a deployment. Use --precision fp32"
                )
        return precision
    if precision in ("tf32", "bf16"):
        cc = compute_capability if compute_capability is not None else torch.cuda.get_device_capability()
        if tuple(cc) < (8, 0):
            raise UsageError(
                f"--precision {precision} needs an Ampere or newer GPU (compute capability 8.0+); this one is "
                f"{cc[0]}.{cc[1]}. Use --precision fp32 or fp16"
            )
    return precision


def check_torch_gpu_options(
    device: str,
    *,
    cuda_graph: bool,
    cudnn_benchmark: bool | None,
    compile: bool,
    compile_mode: str | None,  # noqa: A002
) -> None:
    """UsageError (exit 2) for a GPU-only option on the CPU or an impossible combination: never ignored."""
    if compile_mode is not None and compile_mode not in COMPILE_MODES:
        raise UsageError(f"unknown --compile-mode: {compile_mode}. Use one of {', '.join(COMPILE_MODES)}")
    if compile_mode is not None and not compile:
        raise UsageError("--compile-mode sets how torch.compile runs. Add --compile")
    if device.startswith("cuda"):
        if cuda_graph and compile_mode == "reduce-overhead":
            raise UsageError(
                "--cuda-graph with --compile-mode reduce-overhead: that mode replays CUDA graphs of its own. "
                "Drop one of them"
            )
        return
    if cuda_graph:
        raise UsageError("--cuda-graph captures the model on a CUDA GPU. Pass --device gpu, or drop --cuda-graph")
    if cudnn_benchmark is not None:
        raise UsageError(
            "--cudnn-benchmark/--no-cudnn-benchmark set cuDNN on a CUDA GPU. Pass --device gpu, or drop it"
        )
    if compile_mode == "reduce-overhead":
        raise UsageError("--compile-mode reduce-overhead replays CUDA graphs: GPU only. Use default or max-autotune")


class TorchRunner(BaseRunner):
    """Runs an ``nn.Module`` (or a builder of one) in eval mode under ``torch.inference_mode``."""

    name = "torch"

    def __init__(
        self,
        model: torch.nn.Module | Callable[[], torch.nn.Module],
        *,
        input_name: str = "input",
        output_names: tuple[str, ...] = ("logits",),
        input_dtype: np.dtype = np.dtype(np.float32),
        device: str = "cpu",
        precision: str = "fp32",
        channels_last: bool = False,
        compile: bool = False,  # noqa: A002  (the torch.compile switch, named as the CLI option)
        compile_mode: str | None = None,
        cuda_graph: bool = False,
        cudnn_benchmark: bool | None = None,
    ) -> None:
        super().__init__()
        if precision != "fp32":
            precision = check_torch_precision(precision, device)
        check_torch_gpu_options(
            device, cuda_graph=cuda_graph, cudnn_benchmark=cudnn_benchmark, compile=compile, compile_mode=compile_mode
        )
        self._model = model
        self._input_name = input_name
        self._output_names = output_names
        self._input_dtype = np.dtype(input_dtype)
        self._device = device
        self.device = Device.GPU if device.startswith("cuda") else Device.CPU
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.compile_mode = compile_mode
        self.cuda_graph = cuda_graph
        self.cudnn_benchmark = cudnn_benchmark
        self.module: torch.nn.Module | None = None
        self._saved_flags: tuple[bool, bool, bool] | None = None
        self._hooks: list[Any] = []
        self._graph: tuple[Any, ...] | None = None  # (shape, CUDAGraph, static input, static outputs)
        self.graph_captures = 0  # how many times a graph was captured (one per new input shape)

    def configure(
        self,
        *,
        precision: str = "fp32",
        channels_last: bool = False,
        compile: bool = False,  # noqa: A002
        compile_mode: str | None = None,
        cuda_graph: bool = False,
        cudnn_benchmark: bool | None = None,
    ) -> None:
        """Set how the next ``activate()`` runs the model (checked here: UsageError when it cannot run)."""
        if precision != "fp32":
            precision = check_torch_precision(precision, self._device)
        check_torch_gpu_options(
            self._device,
            cuda_graph=cuda_graph,
            cudnn_benchmark=cudnn_benchmark,
            compile=compile,
            compile_mode=compile_mode,
        )
        self.precision, self.channels_last, self.compile = precision, channels_last, compile
        self.compile_mode, self.cuda_graph, self.cudnn_benchmark = compile_mode, cuda_graph, cudnn_benchmark

    @property
    def cuda(self) -> bool:
        return self._device.startswith("cuda")

    def _set_flags(self) -> tuple[bool | None, bool | None]:
        """Apply the precision's TF32 flags and cudnn.benchmark (CUDA only); remember the old ones. Returns the
        TF32 flag and the cudnn.benchmark flag in effect (None on the CPU, where neither applies)."""
        if not self.cuda:
            return None, None
        self._saved_flags = (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
        )
        on = self.precision == "tf32"
        bench = True if self.cudnn_benchmark is None else bool(self.cudnn_benchmark)
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on
        torch.backends.cudnn.benchmark = bench
        return on, bench

    def _restore_flags(self) -> None:
        if self._saved_flags is not None:
            (
                torch.backends.cuda.matmul.allow_tf32,
                torch.backends.cudnn.allow_tf32,
                torch.backends.cudnn.benchmark,
            ) = self._saved_flags
            self._saved_flags = None

    def _network(self, module: torch.nn.Module) -> torch.nn.Module:
        """The part that runs in the reduced precision: a DeployModule's network (its uint8 normalisation stays
        FP32), else the whole module."""
        from ...models.deploy import DeployModule

        return module.model if isinstance(module, DeployModule) else module

    def _activate(self) -> list[TensorSpec]:
        model = self._model if isinstance(self._model, torch.nn.Module) else self._model()
        dtype = _DTYPES.get(self.precision)
        if (dtype is not None or self.channels_last) and isinstance(self._model, torch.nn.Module):
            model = copy.deepcopy(model)  # cast a copy: the caller's module (a parity reference) stays fp32
        module = model.eval().to(self._device)
        net = self._network(module)
        if dtype is not None:
            net.to(dtype)
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        if dtype is not None or self.channels_last:

            def cast(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
                return tuple(self._prepare(a) for a in args)

            self._hooks.append(net.register_forward_pre_hook(cast))
        tf32, cudnn_benchmark = self._set_flags()
        if self.compile:
            mode = self.compile_mode or "default"
            self.module = torch.compile(module) if mode == "default" else torch.compile(module, mode=mode)
        else:
            self.module = module
        if self.cuda:
            self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            torch.cuda.reset_peak_memory_stats()
        self._graph = None
        self.graph_captures = 0
        self.executed_precision = self.precision
        self.runtime_config = {
            "torch_precision": self.precision,
            "tf32": tf32,
            "cudnn_benchmark": cudnn_benchmark,
            "cuda_graph": self.cuda_graph,
            "channels_last": self.channels_last,
            "compiled": self.compile,
            "compile_mode": (self.compile_mode or "default") if self.compile else None,
            "cast": "weights and input cast (module.to(dtype)), outputs returned as fp32"
            if dtype is not None
            else None,
            "torch": torch.__version__,
            "cudnn": torch.backends.cudnn.version() if self.cuda else None,
            "gpu": torch.cuda.get_device_name() if self.cuda else None,
        }
        return [TensorSpec(self._input_name, self._input_dtype, (None, None, None, None))]

    def _prepare(self, x: Any) -> Any:
        """A float tensor in the run's dtype and memory format (other tensors as they are)."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            return x
        dtype = _DTYPES.get(self.precision)
        if dtype is not None and x.dtype != dtype:
            x = x.to(dtype)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _capture(self, x: torch.Tensor) -> tuple[Any, ...]:
        """Capture the forward pass for ``x``'s shape into a CUDA graph (warm-up on a side stream first)."""
        static_in = x.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(GRAPH_WARMUP):
                self.module(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            static_out = self.module(static_in)
        self.graph_captures += 1
        return tuple(x.shape), graph, static_in, static_out

    def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # the copy to the device and the cast happen before the first event: device time is the model's
        x = self._prepare(torch.from_numpy(np.ascontiguousarray(inputs[self._input_name])).to(self._device))
        cuda = self.cuda
        if self.cuda_graph:
            if self._graph is None or self._graph[0] != tuple(x.shape):
                self._graph = self._capture(x)
            _, graph, static_in, out = self._graph
            static_in.copy_(x)
            self._events[0].record()
            graph.replay()
            self._events[1].record()
        else:
            with torch.inference_mode():
                if cuda:
                    self._events[0].record()
                out = self.module(x)
                if cuda:
                    self._events[1].record()
        outs = out if isinstance(out, (tuple, list)) else (out,)
        result = {  # .cpu() synchronises
            name: (t.float() if t.is_floating_point() and t.dtype != torch.float32 else t).cpu().numpy()
            for name, t in zip(self._output_names, outs)
        }
        if cuda:
            torch.cuda.synchronize()
            self.device_times_ms.append(self._events[0].elapsed_time(self._events[1]))  # model only, on the GPU
        return result

    def device_memory_mib(self) -> float | None:
        """Peak CUDA memory allocated by PyTorch since activation (None on the CPU)."""
        return torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None

    def _deactivate(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self._graph = None
        self._restore_flags()
        self.module = None


class CheckpointRunner(TorchRunner):
    """A ``TorchRunner`` of a loaded checkpoint, wrapped as deployed: it also holds the ``LoadedModel``
    (``loaded``: arch, classes, checkpoint metadata) and the ``Normalization`` its wrapper applies."""

    def __init__(
        self, model: torch.nn.Module, *, loaded: LoadedModel, normalization: Normalization, **options: Any
    ) -> None:
        super().__init__(model, **options)
        self.loaded = loaded
        self.normalization = normalization
