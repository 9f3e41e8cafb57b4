"""TensorRT runner for serialized engines: TensorRT 10.x, 11.x or TensorRT-RTX, with cuda-python (no PyTorch).

Name-based I/O (``num_io_tensors``, ``get_tensor_name/mode/dtype``, ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``), which 10.x, 11.x and RTX all keep; dynamic shapes within the engine's profile; optional
CUDA-graph replay for static shapes. Device buffers, streams, events and graphs come from cuda-python
(``backends.tensorrt.cuda``), so a Jetson or an inference box with TensorRT and numpy can bench and check parity.

Before deserialising, the engine's sidecar is compared with the running library, its version and the GPU
(``check_engine_compatibility``): a mismatch is exit 7 with the command that rebuilds the engine, instead of a
crash inside TensorRT. NOT verified on hardware by this project: see the README's "Verified on" table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...enums import Device
from ...errors import IncompatibleArtifactError
from ..base import BaseRunner, TensorSpec
from .library import TrtLibrary, load_library

# TensorRT-RTX runs on these compute capabilities (TENSORRT.md; an H100, 9.0, refused its engines).
# Where a TensorRT-RTX engine runs (NVIDIA's TensorRT-RTX 1.5-1.7 support matrix): portable engines on compute
# capability 8.6 (Ampere RTX), 8.9 (Ada), 12.0 and 12.1 (Blackwell; 12.1 experimental in 1.5). 7.5 (Turing) runs
# only engines built for it specifically, which this tool does not build. Not 8.0 (A100), not 8.7 (Jetson Orin), not
# 9.0 (Hopper: an H100 refused CPU- and GPU-built engines alike, shared/reference/TENSORRT.md).
RTX_COMPUTE_CAPABILITIES = ("8.6", "8.9", "12.0", "12.1")
RTX_FACTS = (
    "TensorRT-RTX engines are built here without a GPU and run on RTX-class GPUs of compute capability 8.6, 8.9, "
    "12.0 and 12.1 (7.5 only with device-specific engines); not on Hopper (9.0), A100 (8.0) or Jetson Orin (8.7). "
    "NVIDIA's support matrix lists TensorRT-RTX INT8 as weight-only (GEMM; 1.7 adds weight-only INT8 "
    "convolutions) and describes it as optimised for 16-bit: an activation-Q/DQ (INT8) network builds, but INT8 "
    "activation kernels are not documented, so its layers may run in FP16/FP32 on the GPU (check the engine's "
    "layer report there)"
)
_DTYPES = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "BF16": None,
}


def _rebuild_hint(meta: Mapping[str, Any]) -> str:
    cmd = meta.get("rebuild_command")
    return f"rebuild it on this device: {cmd}" if cmd else "rebuild it on this device with 'rfdeploy build trt'"


def check_engine_compatibility(
    meta: Mapping[str, Any],
    trt_version: str,
    gpu_name: str | None,
    compute_capability: str | None,
    library: str | None = None,
) -> None:
    """Raise IncompatibleArtifactError (exit 7) when an engine's sidecar names another library, TensorRT version
    or GPU than this machine has.

    Version-compatible engines (``version_compatible: true``) may run on a newer major TensorRT of the same or a
    later series (10.x engines on an 11.x runtime), never the reverse. Hardware-compatible engines
    (``hardware_compatible: true``, Ampere+) run on any GPU of compute capability 8.0 or newer. TensorRT-RTX
    engines run on the compute capabilities their sidecar lists (its portable set by default).
    """
    built_info = meta.get("tensorrt") or {}
    built = built_info.get("version") or meta.get("tensorrt_version")
    built_library = built_info.get("library")
    hint = _rebuild_hint(meta)
    if built_library and library and built_library != library:
        raise IncompatibleArtifactError(
            f"engine built with {built_library} {built or ''}, this machine runs "
            f"{library} {trt_version}: the two cannot load each other's engines",
            hint=hint,
        )
    if built:
        b_major, r_major = int(str(built).split(".")[0]), int(trt_version.split(".")[0])
        same = str(built).split(".")[:2] == trt_version.split(".")[:2]
        if not same and not (meta.get("version_compatible") and r_major >= b_major):
            raise IncompatibleArtifactError(
                f"engine built with TensorRT {built}, this runtime is {trt_version}. Rebuild the engine on this "
                "device with 'rfdeploy build trt'",
                hint=hint,
            )
    target = meta.get("device") or {}
    if not compute_capability:
        return
    if target.get("portable") or built_library == "tensorrt-rtx":
        allowed = target.get("compute_capabilities") or list(RTX_COMPUTE_CAPABILITIES)
        major = compute_capability.split(".")[0]
        if compute_capability not in allowed and not (major == "12" and any(a.startswith("12.") for a in allowed)):
            raise IncompatibleArtifactError(
                f"this TensorRT-RTX engine runs on compute capability {', '.join(allowed)}; this GPU ({gpu_name}) is "
                f"{compute_capability}",
                hint="TensorRT-RTX supports RTX-class Ampere (8.6), Ada and Blackwell GPUs; on other "
                "GPUs build with TensorRT (--library tensorrt) on the device",
            )
        return
    want_cc = target.get("compute_capability")
    if want_cc and want_cc != compute_capability:
        if meta.get("hardware_compatible") and float(compute_capability) >= 8.0:
            return
        raise IncompatibleArtifactError(
            f"engine built for compute capability {want_cc} ({target.get('name')}), this GPU "
            f"is {compute_capability} ({gpu_name}). Rebuild the engine on this device",
            hint=hint,
        )


def _np_dtype(trt: Any, dtype: Any) -> np.dtype:
    nptype = getattr(trt, "nptype", None)
    if nptype is not None:
        try:
            return np.dtype(nptype(dtype))
        except (TypeError, KeyError):
            pass
    mapped = _DTYPES.get(getattr(dtype, "name", str(dtype)))
    if mapped is None:
        raise IncompatibleArtifactError(f"engine tensor type {dtype} has no numpy equivalent; export FP32/FP16 I/O")
    return np.dtype(mapped)


class TensorRTRunner(BaseRunner):
    name = "tensorrt"

    def __init__(
        self,
        engine_path: str | Path,
        *,
        meta: Mapping[str, Any] | None = None,
        device: str = "gpu",
        library: str | None = None,
        cuda_graph: bool = False,
        dla_core: int | None = None,
    ) -> None:
        super().__init__()
        self.engine_path = Path(engine_path)
        self.meta = dict(meta or {})
        self.device = Device.parse(device, option="--device", allowed=(Device.GPU, Device.DLA))
        self.library = library or (self.meta.get("tensorrt") or {}).get("library") or "auto"
        self.cuda_graph = cuda_graph
        self.dla_core = dla_core if dla_core is not None else (0 if device == "dla" else None)
        self.engine = self.context = self.stream = None
        self.device_times_ms: list[float] = []  # one per infer(): GPU time between CUDA events
        self.runtime_config: dict[str, Any] = {}
        self._buffers: dict[str, Any] = {}
        self._host: dict[str, Any] = {}
        self._pinned: list[Any] = []
        self._graph: Any = None
        self._graph_shapes: dict[str, tuple[int, ...]] | None = None

    def _activate(self) -> list[TensorSpec]:
        lib: TrtLibrary = load_library(self.library)
        from . import cuda

        trt = lib.module
        gpu = cuda.gpu_info()
        check_engine_compatibility(self.meta, lib.version, gpu.name, gpu.compute_capability, lib.name)
        from .builder import _make_logger

        self._logger = _make_logger(trt)
        self._runtime = trt.Runtime(self._logger)
        if self.dla_core is not None:
            self._runtime.DLA_core = int(self.dla_core)
        self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            logged = self._logger.messages("ERROR", "INTERNAL_ERROR")
            raise IncompatibleArtifactError(
                f"{lib.name} {lib.version} could not deserialize {self.engine_path.name}"
                + (f": {logged[-1].splitlines()[0][:200]}" if logged else ""),
                hint=_rebuild_hint(self.meta),
            )
        self.context = self.engine.create_execution_context()
        self.stream = cuda.Stream()
        self._timer = cuda.EventTimer()
        self._trt, self._lib, self._cuda = trt, lib, cuda
        self._inputs, self._outputs = [], []
        specs = []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            dtype = _np_dtype(trt, self.engine.get_tensor_dtype(name))
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self._inputs.append((name, dtype))
                shape = tuple(None if d < 0 else int(d) for d in self.engine.get_tensor_shape(name))
                specs.append(TensorSpec(name, dtype, shape))
            else:
                self._outputs.append((name, dtype))
            self._buffers[name] = cuda.DeviceBuffer()
        static = all(d is not None for s in specs for d in s.shape)
        if self.cuda_graph and not static:
            raise IncompatibleArtifactError("CUDA-graph replay needs a static-shape engine; drop --cuda-graph")
        self.runtime_config = {
            "library": lib.name,
            "library_version": lib.version,
            "gpu": gpu.name,
            "compute_capability": gpu.compute_capability,
            "driver": gpu.driver_version,
            "cuda_runtime": gpu.runtime_version,
            "cuda_graph": self.cuda_graph,
            "dla_core": self.dla_core,
        }
        self.executed_precision = self.meta.get("precision")
        return specs

    # -- inference -------------------------------------------------------------------------------------------
    def _bind(self, inputs: Mapping[str, np.ndarray]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Set input shapes and every tensor address; returns the output shapes and dtypes."""
        for name, _ in self._inputs:
            x = inputs[name]
            if not self.context.set_input_shape(name, tuple(x.shape)):
                raise IncompatibleArtifactError(
                    f"input '{name}' shape {tuple(x.shape)} is outside the engine's "
                    "optimisation profile. Rebuild with a wider --shapes"
                )
            self.context.set_tensor_address(name, self._buffers[name].ensure(x.nbytes))
        outs = {}
        for name, dtype in self._outputs:
            shape = tuple(int(d) for d in self.context.get_tensor_shape(name))
            nbytes = int(np.prod(shape)) * dtype.itemsize
            self.context.set_tensor_address(name, self._buffers[name].ensure(nbytes))
            outs[name] = (shape, dtype)
        return outs

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self.stream.ptr):
            raise IncompatibleArtifactError(f"TensorRT failed to run {self.engine_path.name}")

    def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.cuda_graph:
            return self._infer_graph(inputs)
        outs = self._bind(inputs)
        for name, _ in self._inputs:
            self.stream.copy_to_device(self._buffers[name].ptr, np.ascontiguousarray(inputs[name]))
        self._timer.record_start(self.stream)
        self._enqueue()
        self._timer.record_end(self.stream)
        results = {name: np.empty(shape, dtype) for name, (shape, dtype) in outs.items()}
        for name, arr in results.items():
            self.stream.copy_to_host(arr, self._buffers[name].ptr)
        self.stream.synchronize()  # results are complete before they are returned (and timed)
        self.device_times_ms.append(self._timer.elapsed_ms())
        return results

    def _infer_graph(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Static shapes: copies in pinned buffers, the engine launch captured once as a CUDA graph, then replayed."""
        cuda = self._cuda
        if self._graph is None:
            outs = self._bind(inputs)
            wanted = {name: (inputs[name].shape, inputs[name].dtype) for name, _ in self._inputs}
            wanted.update(outs)
            for name, (shape, dtype) in wanted.items():
                pinned = cuda.HostBuffer(int(np.prod(shape)) * np.dtype(dtype).itemsize)
                self._pinned.append(pinned)
                self._host[name] = pinned.view(dtype, shape)
            self._enqueue()  # one launch before capture: TensorRT allocates what it defers
            self.stream.synchronize()
            with cuda.Graph(self.stream) as graph:
                self._enqueue()
            self._graph, self._graph_outputs = graph, list(outs)
        for name, _ in self._inputs:
            np.copyto(self._host[name], inputs[name])
            self.stream.copy_to_device(self._buffers[name].ptr, self._host[name])
        self._timer.record_start(self.stream)
        self._graph.launch()
        self._timer.record_end(self.stream)
        for name in self._graph_outputs:
            self.stream.copy_to_host(self._host[name], self._buffers[name].ptr)
        self.stream.synchronize()
        self.device_times_ms.append(self._timer.elapsed_ms())
        return {name: self._host[name].copy() for name in self._graph_outputs}

    def device_memory_mib(self) -> float:
        """The engine's activation memory plus this runner's I/O buffers."""
        engine_bytes = getattr(self.engine, "device_memory_size_v2", None)  # 10.1+; 11 removed the v1 name
        if engine_bytes is None:
            engine_bytes = getattr(self.engine, "device_memory_size", 0)
        return (int(engine_bytes or 0) + sum(b.nbytes for b in self._buffers.values())) / 2**20

    def _deactivate(self) -> None:
        if self._graph is not None:
            self._graph.destroy()
            self._graph = None
        for buf in self._buffers.values():
            buf.free()
        for pinned in self._pinned:
            pinned.free()
        self._buffers, self._host, self._pinned = {}, {}, []
        if self.stream is not None:
            self._timer.destroy()
            self.stream.destroy()
        self.context = self.engine = self.stream = None


__all__ = ["RTX_COMPUTE_CAPABILITIES", "RTX_FACTS", "TensorRTRunner", "check_engine_compatibility"]
