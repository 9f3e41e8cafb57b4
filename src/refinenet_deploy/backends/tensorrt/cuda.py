"""CUDA through NVIDIA's cuda-python bindings (``cuda.bindings.runtime``; ``cuda.cudart`` on cuda-python < 12.6):
device buffers, pinned host buffers, streams, events and graphs, with errors raised as exceptions.

No PyTorch: a Jetson or an inference box with TensorRT, numpy and cuda-python can run engines. Every call of the
bindings returns ``(error, *values)``; ``check`` turns a non-zero error into ``CudaError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._optional import require
from ...errors import IncompatibleArtifactError


class CudaError(IncompatibleArtifactError):
    """A CUDA runtime call failed (exit 7: the artifact cannot run in this environment)."""


def cudart() -> Any:
    """The CUDA runtime bindings module; MissingDependencyError (exit 4) naming the ``trt`` extra without it."""
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart as legacy  # cuda-python < 12.6 (removed in 13.0)

        return legacy
    except ImportError:
        return require("cuda.bindings.runtime", extra="trt", package="cuda-python")


def check(result: Any) -> Any:
    """``(err, *values)`` -> ``None``, the value, or the values; raises ``CudaError`` when ``err`` is not success."""
    if not isinstance(result, tuple):
        result = (result,)
    err, values = result[0], result[1:]
    code = int(getattr(err, "value", err))
    if code != 0:
        rt = cudart()
        name = rt.cudaGetErrorName(err)[1]
        text = name.decode() if isinstance(name, bytes) else str(name)
        raise CudaError(f"CUDA error {code} ({text}). Check the GPU, its driver and the CUDA version")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "9.0"
    total_memory_mib: float
    driver_version: str
    runtime_version: str


def _version(encoded: int) -> str:
    return f"{encoded // 1000}.{(encoded % 1000) // 10}"


def gpu_info(device: int = 0) -> GpuInfo:
    """The GPU a runner will use; ``CudaError`` (exit 7) when there is none."""
    rt = cudart()
    count = check(rt.cudaGetDeviceCount())
    if not count:
        raise CudaError("no CUDA GPU is visible here. TensorRT engines need an NVIDIA GPU (or a Jetson)")
    props = check(rt.cudaGetDeviceProperties(device))
    raw = props.name
    name = raw.split(b"\0", 1)[0].decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return GpuInfo(
        name=name,
        compute_capability=f"{props.major}.{props.minor}",
        total_memory_mib=props.totalGlobalMem / 2**20,
        driver_version=_version(check(rt.cudaDriverGetVersion())),
        runtime_version=_version(check(rt.cudaRuntimeGetVersion())),
    )


class DeviceBuffer:
    """``nbytes`` of device memory, grown on demand, freed with ``free``."""

    def __init__(self, nbytes: int = 0) -> None:
        self.ptr, self.nbytes = 0, 0
        if nbytes:
            self.ensure(nbytes)

    def ensure(self, nbytes: int) -> int:
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(check(cudart().cudaMalloc(max(int(nbytes), 1))))
            self.nbytes = int(nbytes)
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFree(self.ptr))
        self.ptr, self.nbytes = 0, 0


class HostBuffer:
    """Pinned (page-locked) host memory viewed as a numpy array: fast copies, and what graph capture needs."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = max(int(nbytes), 1)
        self.ptr = int(check(cudart().cudaMallocHost(self.nbytes)))
        import ctypes

        self._raw = np.ctypeslib.as_array((ctypes.c_uint8 * self.nbytes).from_address(self.ptr))

    def view(self, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return self._raw[:count].view(dtype).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFreeHost(self.ptr))
            self.ptr = 0


class Stream:
    def __init__(self) -> None:
        self.handle = check(cudart().cudaStreamCreate())

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def synchronize(self) -> None:
        check(cudart().cudaStreamSynchronize(self.handle))

    def copy_to_device(self, dst: int, src: np.ndarray) -> None:
        rt = cudart()
        check(
            rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.handle)
        )

    def copy_to_host(self, dst: np.ndarray, src: int) -> None:
        rt = cudart()
        check(
            rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.handle)
        )

    def destroy(self) -> None:
        if self.handle is not None:
            check(cudart().cudaStreamDestroy(self.handle))
            self.handle = None


class EventTimer:
    """Two CUDA events around work on a stream: GPU milliseconds between them."""

    def __init__(self) -> None:
        rt = cudart()
        self.start, self.end = check(rt.cudaEventCreate()), check(rt.cudaEventCreate())

    def record_start(self, stream: Stream) -> None:
        check(cudart().cudaEventRecord(self.start, stream.handle))

    def record_end(self, stream: Stream) -> None:
        check(cudart().cudaEventRecord(self.end, stream.handle))

    def elapsed_ms(self) -> float:
        return float(check(cudart().cudaEventElapsedTime(self.start, self.end)))

    def destroy(self) -> None:
        rt = cudart()
        for ev in (self.start, self.end):
            check(rt.cudaEventDestroy(ev))


class Graph:
    """A CUDA graph captured from the work launched on a stream, replayed with one launch."""

    def __init__(self, stream: Stream) -> None:
        self.stream, self.exec = stream, None
        self._graph = None

    def __enter__(self) -> Graph:
        rt = cudart()
        check(rt.cudaStreamBeginCapture(self.stream.handle, rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal))
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        rt = cudart()
        graph = check(rt.cudaStreamEndCapture(self.stream.handle))
        if exc_type is None:
            self._graph = graph
            self.exec = check(rt.cudaGraphInstantiate(graph, 0))

    def launch(self) -> None:
        check(cudart().cudaGraphLaunch(self.exec, self.stream.handle))

    def destroy(self) -> None:
        rt = cudart()
        if self.exec is not None:
            check(rt.cudaGraphExecDestroy(self.exec))
            self.exec = None
        if self._graph is not None:
            check(rt.cudaGraphDestroy(self._graph))
            self._graph = None


def memory_used_mib() -> float:
    """Device memory in use on the current GPU (all processes), from ``cudaMemGetInfo``."""
    free, total = check(cudart().cudaMemGetInfo())
    return (total - free) / 2**20
