"""TensorRT runner: the compatibility check runs everywhere; the engine test needs TensorRT and a GPU."""

from __future__ import annotations

import sys

import pytest

from refinenet_deploy.backends import open_runner
from refinenet_deploy.backends.tensorrt import check_engine_compatibility
from refinenet_deploy.errors import IncompatibleArtifactError, MissingDependencyError

META = {"tensorrt": {"version": "10.3.0"}, "device": {"name": "Orin", "compute_capability": "8.7"}}


def test_matching_engine_passes() -> None:
    check_engine_compatibility(META, "10.3.0.30", "Orin", "8.7")


def test_other_tensorrt_version_is_refused() -> None:
    with pytest.raises(IncompatibleArtifactError, match="engine built with TensorRT 10.3.0, this runtime is 10.13"):
        check_engine_compatibility(META, "10.13.3", "Orin", "8.7")


def test_version_compatible_engine_runs_forward_not_backward() -> None:
    check_engine_compatibility({**META, "version_compatible": True}, "11.4.1", "Orin", "8.7")
    with pytest.raises(IncompatibleArtifactError):
        check_engine_compatibility(
            {"tensorrt": {"version": "11.4.1"}, "version_compatible": True}, "10.3.0", None, None
        )


def test_other_gpu_is_refused_unless_hardware_compatible() -> None:
    with pytest.raises(IncompatibleArtifactError, match="compute capability 8.7 .*this GPU is 9.0"):
        check_engine_compatibility(META, "10.3.0", "H100", "9.0")
    check_engine_compatibility({**META, "hardware_compatible": True}, "10.3.0", "H100", "9.0")


def test_engine_without_tensorrt_installed_is_exit_4(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 16)
    runner = open_runner(engine)
    assert runner.device == "gpu"  # an engine is a GPU run, never recorded as cpu
    with pytest.raises(MissingDependencyError, match="no TensorRT library is installed") as info:
        runner.activate()
    assert info.value.exit_code == 4 and "[trt]" in info.value.hint
    with pytest.raises(MissingDependencyError, match="'tensorrt' is not installed"):
        open_runner(engine, meta={"tensorrt": {"library": "tensorrt"}}).activate()


def test_engine_without_cuda_python_is_exit_4_and_without_a_gpu_exit_7(tmp_path, monkeypatch) -> None:
    """cuda-python provides the buffers; without it exit 4 naming it, and with it but no GPU/driver, exit 7."""
    pytest.importorskip("tensorrt_rtx")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 16)
    meta = {"tensorrt": {"library": "tensorrt-rtx"}}
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match="cuda-python"):
        open_runner(engine, meta=meta).activate()
    monkeypatch.undo()
    pytest.importorskip("cuda.bindings.runtime")
    from refinenet_deploy.backends.tensorrt.cuda import CudaError

    with pytest.raises(CudaError) as info:  # this machine has no NVIDIA driver
        open_runner(engine, meta=meta).activate()
    assert info.value.exit_code == 7


def test_bench_of_an_engine_is_recorded_on_the_gpu_or_dla() -> None:
    from refinenet_deploy.backends import resolve_device
    from refinenet_deploy.enums import Runtime
    from refinenet_deploy.errors import UsageError

    assert resolve_device(Runtime.TENSORRT) == "gpu" and resolve_device(Runtime.TENSORRT, "dla") == "dla"
    with pytest.raises(UsageError, match="tensorrt runs on gpu or dla, not cpu"):
        resolve_device(Runtime.TENSORRT, "cpu")


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_fp32_engine_passes_parity_and_times_on_the_gpu(tmp_path) -> None:
    """Hardware test (skipped without TensorRT and a GPU): build an FP32 engine with the documented
    TensorRT 10/11 builder API, then parity against PyTorch and a bench with CUDA-event timing."""
    import tensorrt as trt

    from refinenet_deploy.data.synth import write_synth_dataset
    from refinenet_deploy.models.checkpoint import save_safetensors
    from refinenet_deploy.operations.bench import benchmark
    from refinenet_deploy.operations.export import ExportSpec, export_onnx
    from refinenet_deploy.operations.parity import validate_parity

    from ..helpers import default_init_model

    data = write_synth_dataset(tmp_path / "data", 4, 64, 64, seed=2)
    ckpt = save_safetensors(
        default_init_model("rf_lw_test", num_classes=6).state_dict(), tmp_path / "m.safetensors", {"arch": "rf_lw_test"}
    )
    onnx_path = tmp_path / "m.onnx"
    export_onnx(ckpt, onnx_path, ExportSpec(input_size=(64, 64), verify_sizes=()))
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10/11
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), [parser.get_error(i).desc() for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    if hasattr(trt.BuilderFlag, "TF32"):  # strict FP32, judged by the FP32 gates (11.x: strongly typed)
        config.clear_flag(trt.BuilderFlag.TF32)
    engine = tmp_path / "m.engine"
    engine.write_bytes(bytes(builder.build_serialized_network(network, config)))

    report = validate_parity(ckpt, engine, data)
    assert report.passed and report.context["runtime"] == "tensorrt"
    r = benchmark(engine, device="gpu", warmup=2, iterations=5, peak=False)
    assert r["device_only"]["iterations"] == 5 and r["device_memory_mib"] > 0
