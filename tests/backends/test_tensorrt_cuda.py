"""The TensorRT runner's CUDA side on a real GPU (marked ``gpu``; needs cuda-python): buffers, pinned memory,
streams, CUDA events, CUDA-graph capture and replay, and the runner's bind/infer/graph paths.

TensorRT itself cannot be installed on this project's machines, and TensorRT-RTX refuses their GPUs (H100/H200,
compute capability 9.0). So the engine here is a LABELLED TEST DOUBLE of TensorRT's runtime objects
(``IdentityEngine``): its ``execute_async_v3`` enqueues a real ``cudaMemcpyAsync`` from the input buffer to the
output buffer on the runner's stream. Everything the runner does with CUDA is real; what TensorRT would compute
is not tested here.
"""

from __future__ import annotations

import enum
import sys
import types

import numpy as np
import pytest

pytestmark = pytest.mark.gpu
cudart = pytest.importorskip("cuda.bindings.runtime")

from refinenet_deploy.backends.tensorrt import cuda  # noqa: E402
from refinenet_deploy.backends.tensorrt.runner import TensorRTRunner  # noqa: E402


def test_gpu_info_and_memory() -> None:
    info = cuda.gpu_info()
    major, minor = (int(v) for v in info.compute_capability.split("."))
    assert info.name and major >= 5 and minor >= 0 and info.total_memory_mib > 1024
    assert info.driver_version and info.runtime_version
    assert cuda.memory_used_mib() > 0


def test_round_trip_events_and_graph_replay() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 64, 64)).astype(np.float32)
    stream, dev, timer = cuda.Stream(), cuda.DeviceBuffer(x.nbytes), cuda.EventTimer()
    back = np.full_like(x, np.nan)  # poisoned: every element must be written
    timer.record_start(stream)
    stream.copy_to_device(dev.ptr, x)
    stream.copy_to_host(back, dev.ptr)
    timer.record_end(stream)
    stream.synchronize()
    np.testing.assert_array_equal(back, x)
    assert timer.elapsed_ms() >= 0.0
    # a graph of H2D + D2H with pinned buffers, replayed with fresh data each time
    pin_in, pin_out = cuda.HostBuffer(x.nbytes), cuda.HostBuffer(x.nbytes)
    a, b = pin_in.view(np.float32, x.shape), pin_out.view(np.float32, x.shape)
    with cuda.Graph(stream) as graph:
        stream.copy_to_device(dev.ptr, a)
        stream.copy_to_host(b, dev.ptr)
    for seed in (1, 2):
        fresh = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
        np.copyto(a, fresh)
        b.fill(np.nan)
        graph.launch()
        stream.synchronize()
        np.testing.assert_array_equal(b, fresh)
    graph.destroy()
    for obj in (pin_in, pin_out, dev, stream, timer):
        obj.free() if hasattr(obj, "free") else obj.destroy()


def test_cuda_errors_raise_with_exit_7() -> None:
    with pytest.raises(cuda.CudaError) as info:
        cuda.check(cudart.cudaFree(12345))  # not a device pointer
    assert info.value.exit_code == 7


# --------------------------------------------------------------------------------------------- runner
def _identity_tensorrt(static: bool) -> types.ModuleType:
    """TEST DOUBLE of the ``tensorrt`` runtime objects: one input, one output = a device copy of the input."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.16.0"
    trt.TensorIOMode = enum.Enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    trt.DataType = enum.Enum("DataType", ["FLOAT", "HALF"])
    trt.nptype = lambda dtype: {trt.DataType.FLOAT: np.float32, trt.DataType.HALF: np.float16}[dtype]
    shape = (1, 3, 32, 48) if static else (1, 3, -1, -1)

    class ILogger:
        def __init__(self) -> None:
            pass

    class Context:
        def __init__(self) -> None:
            self.shape, self.addresses, self.launches = shape, {}, 0

        def set_input_shape(self, name: str, shape_: tuple) -> bool:
            self.shape = tuple(shape_)
            return all(s > 0 for s in shape_) and shape_[1] == 3

        def get_tensor_shape(self, name: str) -> tuple:
            return self.shape

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addresses[name] = int(ptr)
            return True

        def execute_async_v3(self, stream: int) -> bool:
            nbytes = int(np.prod(self.shape)) * 4
            kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
            err = cudart.cudaMemcpyAsync(self.addresses["output"], self.addresses["input"], nbytes, kind, stream)[0]
            self.launches += 1
            return int(err) == 0

    class Engine:
        num_io_tensors = 2
        device_memory_size_v2 = 1 << 20

        def get_tensor_name(self, i: int) -> str:
            return ("input", "output")[i]

        def get_tensor_mode(self, name: str):  # noqa: ANN201
            return trt.TensorIOMode.INPUT if name == "input" else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str):  # noqa: ANN201
            return trt.DataType.FLOAT

        def get_tensor_shape(self, name: str) -> tuple:
            return shape

        def create_execution_context(self) -> Context:
            self.context = Context()
            return self.context

    class Runtime:
        def __init__(self, logger: object) -> None:
            pass

        def deserialize_cuda_engine(self, plan: bytes) -> Engine:
            return Engine()

    trt.ILogger, trt.Runtime = ILogger, Runtime
    return trt


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_runner_binds_copies_times_and_replays(tmp_path, monkeypatch, cuda_graph: bool) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", _identity_tensorrt(static=True))
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"identity")
    with TensorRTRunner(engine, meta={"tensorrt": {"library": "tensorrt"}}, cuda_graph=cuda_graph) as runner:
        assert runner.device == "gpu" and runner.input_specs[0].shape == (1, 3, 32, 48)
        for seed in range(3):
            x = np.random.default_rng(seed).standard_normal((1, 3, 32, 48)).astype(np.float32)
            out = runner.infer({"input": x})["output"]
            np.testing.assert_array_equal(out, x)
        assert len(runner.device_times_ms) == 3 and all(t >= 0 for t in runner.device_times_ms)
        assert runner.device_memory_mib() > 1.0
        assert runner.runtime_config["cuda_graph"] is cuda_graph and runner.runtime_config["gpu"]


def test_runner_dynamic_shapes_grow_buffers(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", _identity_tensorrt(static=False))
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"identity")
    with TensorRTRunner(engine, meta={"tensorrt": {"library": "tensorrt"}}) as runner:
        assert runner.input_specs[0].shape == (1, 3, None, None)
        for h, w in ((16, 16), (64, 80), (32, 32)):
            x = np.random.default_rng(h).standard_normal((1, 3, h, w)).astype(np.float32)
            np.testing.assert_array_equal(runner.infer({"input": x})["output"], x)
    with pytest.raises(Exception, match="CUDA-graph replay needs a static-shape engine"):
        TensorRTRunner(engine, meta={"tensorrt": {"library": "tensorrt"}}, cuda_graph=True).activate()


def test_bench_of_an_engine_reports_gpu_device_time(tmp_path, monkeypatch) -> None:
    from refinenet_deploy.operations.bench import benchmark

    monkeypatch.setitem(sys.modules, "tensorrt", _identity_tensorrt(static=True))
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"identity")
    r = benchmark(engine, warmup=2, iterations=5, peak=False, cuda_graph=True)
    assert r["runtime"] == "tensorrt" and r["device"] == "gpu"  # never recorded as a CPU run
    assert r["runtime_config"]["cuda_graph"] is True
    assert r["device_only"]["iterations"] == 5 and "CUDA events" in r["device_only"]["clock"]
    assert r["compute_only"]["iterations"] == 5 and r["device_memory_mib"] > 1.0
