"""TensorRT runner for serialized engines (TensorRT 10.x and 11.x name-based tensor API).

Written against NVIDIA's documented API (``deserialize_cuda_engine``, ``num_io_tensors``,
``get_tensor_name/mode/dtype``, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``), which
both 10.x and 11.x keep. Device buffers are PyTorch CUDA tensors, so no pycuda/cuda-python is needed.
NOT verified on hardware by this project: TensorRT cannot be installed on its machines (see README).

Before deserializing, the engine's ``.meta.json`` (if present) is compared with the running TensorRT
version and GPU: engines are tied to both, and a mismatch is an ``IncompatibleArtifactError`` (exit 7)
with a clear message instead of a crash inside TensorRT.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import IncompatibleArtifactError
from .base import BaseRunner, TensorSpec


def check_engine_compatibility(meta: Mapping[str, Any], trt_version: str, gpu_name: str | None,
                               compute_capability: str | None) -> None:
    """Raise IncompatibleArtifactError when an engine's sidecar names another TensorRT or GPU.

    Version-compatible engines (``version_compatible: true`` in the sidecar) may run on a newer major
    TensorRT of the same or a later series (10.x engines on an 11.x runtime), never the reverse.
    """
    built = (meta.get("tensorrt") or {}).get("version") or meta.get("tensorrt_version")
    if built:
        b_major, r_major = int(str(built).split(".")[0]), int(trt_version.split(".")[0])
        same = str(built).split(".")[:2] == trt_version.split(".")[:2]
        if not same and not (meta.get("version_compatible") and r_major >= b_major):
            raise IncompatibleArtifactError(
                f"engine built with TensorRT {built}, this runtime is {trt_version}. Rebuild the engine on this "
                "device with 'rfdeploy build trt'")
    want_cc = (meta.get("device") or {}).get("compute_capability")
    if want_cc and compute_capability and want_cc != compute_capability and not meta.get("hardware_compatible"):
        raise IncompatibleArtifactError(
            f"engine built for compute capability {want_cc} ({(meta.get('device') or {}).get('name')}), this GPU "
            f"is {compute_capability} ({gpu_name}). Rebuild the engine on this device")


class TensorRTRunner(BaseRunner):
    name = "tensorrt"

    def __init__(self, engine_path: str | Path, *, meta: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.engine_path = Path(engine_path)
        self.meta = dict(meta or {})
        self.engine = self.context = self.stream = None
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self.device_times_ms: list[float] = []  # one per infer(): GPU time between CUDA events

    def _activate(self) -> list[TensorSpec]:
        trt = require("tensorrt", extra="trt")
        torch = require("torch")
        if not torch.cuda.is_available():
            raise IncompatibleArtifactError("TensorRT engines need an NVIDIA GPU; PyTorch sees none here")
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        check_engine_compatibility(self.meta, trt.__version__, props.name, f"{props.major}.{props.minor}")
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise IncompatibleArtifactError(f"TensorRT could not deserialize {self.engine_path.name}. Rebuild it "
                                            "on this device with this TensorRT version")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        torch.cuda.reset_peak_memory_stats()
        specs = []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self._inputs.append(name)
                shape = tuple(None if d < 0 else int(d) for d in self.engine.get_tensor_shape(name))
                specs.append(TensorSpec(name, np.dtype(trt.nptype(self.engine.get_tensor_dtype(name))), shape))
            else:
                self._outputs.append(name)
        self._trt = trt
        return specs

    def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        keep = []
        with torch.cuda.stream(self.stream):
            for name in self._inputs:
                host = torch.from_numpy(np.ascontiguousarray(inputs[name]))
                dev = host.to("cuda", non_blocking=True)
                keep.append(dev)
                self.context.set_input_shape(name, tuple(dev.shape))
                self.context.set_tensor_address(name, dev.data_ptr())
            outs = {}
            for name in self._outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                dtype = torch.from_numpy(np.empty(0, self._trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
                outs[name] = torch.empty(shape, dtype=dtype, device="cuda")
                self.context.set_tensor_address(name, outs[name].data_ptr())
            self._events[0].record(self.stream)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise IncompatibleArtifactError(f"TensorRT failed to run {self.engine_path.name}")
            self._events[1].record(self.stream)
            host_outs = {k: v.to("cpu", non_blocking=True) for k, v in outs.items()}
        self.stream.synchronize()  # results are complete before they are returned (and timed)
        self.device_times_ms.append(self._events[0].elapsed_time(self._events[1]))  # CUDA events: engine only
        return {k: v.numpy() for k, v in host_outs.items()}

    def device_memory_mib(self) -> float:
        """Peak CUDA memory of this process's buffers (PyTorch allocator) plus the engine's activation memory."""
        import torch

        engine_bytes = getattr(self.engine, "device_memory_size_v2", None)  # TensorRT 10+; 11 removed the v1 name
        return (torch.cuda.max_memory_allocated() + int(engine_bytes or 0)) / 2**20

    def _deactivate(self) -> None:
        self.context = self.engine = self.stream = None
