"""TensorRT 10.x vs 11.x behaviour of ``build trt``, through a LABELLED TEST DOUBLE (``fake_tensorrt``).

TensorRT 10/11 cannot be installed on this project's machines. The double follows NVIDIA's documented Python API
and raises on the APIs 11.x removed, so these tests check OUR logic: which flags each generation gets, DLA
configuration and its GPU-fallback report, the implicit calibrator (10.x only) and its digest-keyed cache, the
trtexec line. They are not evidence that a TensorRT build works; ``tests/test_build_trt.py`` builds for real with
TensorRT-RTX.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from refinenet_deploy.backends.tensorrt.calibrator import read_cache, write_cache
from refinenet_deploy.backends.tensorrt.library import load_library
from refinenet_deploy.errors import EngineBuildError, UsageError
from refinenet_deploy.operations.build_trt import build_engine
from refinenet_deploy.operations.calibrate import calibrate_onnx
from refinenet_deploy.operations.export import ExportSpec, export_onnx

from ..helpers import tiny_fp32_export
from . import fake_tensorrt


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("double")
    paths = tiny_fp32_export(root, images=6, data_seed=8, model_seed=3)
    qdq = root / "m.int8.onnx"
    calibrate_onnx(paths["fp32"], paths["data"], qdq, num_images=4, producer="onnxruntime", method="max")
    dyn = root / "dyn.onnx"
    export_onnx(
        paths["ckpt"], dyn, ExportSpec(input_size=(48, 48), dynamic=True, verify_sizes=((40, 56),), trt_check=False)
    )
    return {**paths, "qdq": qdq, "dynamic": dyn}


def _install(monkeypatch: pytest.MonkeyPatch, version: str):  # noqa: ANN202
    trt = fake_tensorrt.make(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


def _last_config(trt):  # noqa: ANN001,ANN202
    return trt.builds[-1][1]


def test_the_double_is_what_load_library_picks_and_it_enforces_removals(monkeypatch) -> None:
    trt11 = _install(monkeypatch, "11.1.0")
    lib = load_library("auto")
    assert lib.module is trt11 and lib.name == "tensorrt" and not lib.weakly_typed
    assert not hasattr(trt11.BuilderFlag, "FP16") and not hasattr(trt11, "IInt8EntropyCalibrator2")
    with pytest.raises(AttributeError, match="removed in TensorRT 11"):
        trt11.Builder(None).create_builder_config().int8_calibrator = object()
    trt10 = _install(monkeypatch, "10.16.0")
    assert load_library("tensorrt").weakly_typed and hasattr(trt10.BuilderFlag, "INT8")


@pytest.mark.parametrize(("version", "flags", "trtexec"), [("10.3.0", {"FP16"}, "--fp16"), ("11.1.0", set(), None)])
def test_fp16_flags_only_where_weak_typing_exists(onnx_files, tmp_path, monkeypatch, version, flags, trtexec) -> None:
    trt = _install(monkeypatch, version)
    meta = build_engine(onnx_files["fp32"], tmp_path / "h.engine", precision="fp16").metadata
    config = _last_config(trt)
    assert {f.name for f in config.flags} - {"TF32"} == flags
    assert set(meta["build"]["flags"]) - {"TF32"} == flags
    assert meta["tensorrt"]["generation"] == f"TensorRT {version.split('.')[0]}.x"
    assert meta["tensorrt"]["strongly_typed_only"] == (version.startswith("11"))
    assert meta["onnx"]["made_by"].startswith("refinenet-deploy FP16 conversion")  # precision from the ONNX
    assert meta["trtexec_command"].startswith("trtexec --onnx=h.engine.src.onnx")
    assert (trtexec in meta["trtexec_command"]) if trtexec else ("--fp16" not in meta["trtexec_command"])
    assert meta["device"]["portable"] is False


@pytest.mark.parametrize(("version", "flags"), [("10.16.0", {"FP16", "INT8"}), ("11.4.1", set())])
def test_int8_qdq_flags(onnx_files, tmp_path, monkeypatch, version, flags) -> None:
    trt = _install(monkeypatch, version)
    meta = build_engine(onnx_files["qdq"], tmp_path / "q.engine", precision="int8").metadata
    assert {f.name for f in _last_config(trt).flags} - {"TF32"} == flags
    assert ("--int8" in meta["trtexec_command"]) == bool(flags)


def test_fp32_engines_are_strict_fp32(onnx_files, tmp_path, monkeypatch) -> None:
    trt = _install(monkeypatch, "10.16.0")
    meta = build_engine(onnx_files["fp32"], tmp_path / "f.engine").metadata
    assert trt.BuilderFlag.TF32 not in _last_config(trt).flags and "--noTF32" in meta["trtexec_command"]


def test_implicit_calibrator_on_10x_only(onnx_files, tmp_path, monkeypatch) -> None:
    trt = _install(monkeypatch, "10.16.0")
    engine = tmp_path / "i.engine"
    meta = build_engine(
        onnx_files["fp32"], engine, precision="int8", data=onnx_files["data"], num_images=4, calibrator="implicit"
    ).metadata
    config = _last_config(trt)
    assert isinstance(config.int8_calibrator, trt.IInt8EntropyCalibrator2)
    assert config.calibration_profile is config.profiles[0]
    assert config.int8_calibrator.get_batch_size() == 1
    cal = meta["calibration"]
    assert cal["count"] == 4 and cal["method"].startswith("TensorRT IInt8EntropyCalibrator2")
    assert cal["cache"] == "i.engine.int8cache" and len(cal["cache_key"]) == 64
    _install(monkeypatch, "11.1.0")
    with pytest.raises(UsageError, match="implicit"):
        build_engine(
            onnx_files["fp32"], tmp_path / "j.engine", precision="int8", data=onnx_files["data"], calibrator="implicit"
        )


def test_calibration_cache_is_keyed_by_the_manifest_digest(tmp_path) -> None:
    cache = tmp_path / "m.int8cache"
    assert read_cache(cache, "a" * 64) is None
    write_cache(cache, "a" * 64, b"TRT-10016-EntropyCalibration2\ninput: 3c010a14\n")
    assert read_cache(cache, "a" * 64).startswith(b"TRT-10016")
    assert read_cache(cache, "b" * 64) is None  # another calibration set or model: never reused


def test_dla_needs_static_shapes_and_fp16_or_int8(onnx_files, tmp_path, monkeypatch) -> None:
    _install(monkeypatch, "10.3.0")
    with pytest.raises(UsageError, match="static shapes"):
        build_engine(onnx_files["dynamic"], tmp_path / "d.engine", precision="fp16", dla_core=0)
    with pytest.raises(UsageError, match="FP16 or INT8"):
        build_engine(onnx_files["fp32"], tmp_path / "d.engine", dla_core=0)
    assert not (tmp_path / "d.engine").exists()


def test_dla_build_reports_the_layers_that_fall_back_to_the_gpu(onnx_files, tmp_path, monkeypatch) -> None:
    trt = _install(monkeypatch, "10.3.0")
    meta = build_engine(
        onnx_files["dynamic"], tmp_path / "d.engine", precision="fp16", dla_core=1, input_size=(48, 48)
    ).metadata
    config = _last_config(trt)
    assert config.default_device_type == trt.DeviceType.DLA and config.DLA_core == 1
    assert trt.BuilderFlag.GPU_FALLBACK in config.flags
    on_gpu = meta["dla"]["layers_on_gpu"]
    resizes = [n for n in on_gpu if n.rsplit("/", 1)[-1].startswith("Resize") and "cast" not in n]
    assert len(resizes) == 3  # the three align_corners resizes (the double's DLA rule), and they are reported
    assert meta["dla"]["core"] == 1 and meta["static_shapes"]
    assert "--useDLACore=1 --allowGPUFallback" in meta["trtexec_command"]
    assert "--minShapes=input:1x3x48x48" in meta["trtexec_command"]
    with pytest.raises(EngineBuildError, match="cannot run on the DLA") as info:
        build_engine(onnx_files["qdq"], tmp_path / "e.engine", precision="int8", dla_core=0, gpu_fallback=False)
    assert info.value.exit_code == 6 and not (tmp_path / "e.engine").exists()


def test_compatibility_workspace_opt_level_and_timing_cache(onnx_files, tmp_path, monkeypatch) -> None:
    trt = _install(monkeypatch, "10.16.0")
    cache = tmp_path / "timing.cache"
    meta = build_engine(
        onnx_files["fp32"],
        tmp_path / "c.engine",
        version_compatible=True,
        hardware_compatible=True,
        workspace_mib=256,
        opt_level=5,
        timing_cache=cache,
    ).metadata
    config = _last_config(trt)
    assert trt.BuilderFlag.VERSION_COMPATIBLE in config.flags
    assert config.hardware_compatibility_level == trt.HardwareCompatibilityLevel.AMPERE_PLUS
    assert config.pool_limits[trt.MemoryPoolType.WORKSPACE] == 256 << 20 and config.builder_optimization_level == 5
    assert cache.read_bytes() == b"fake-timing-cache"
    assert meta["version_compatible"] and meta["hardware_compatible"]
    for flag in (
        "--versionCompatible",
        "--hardwareCompatibilityLevel=ampere+",
        "--memPoolSize=workspace:256M",
        "--builderOptimizationLevel=5",
        "--timingCacheFile=timing.cache",
    ):
        assert flag in meta["trtexec_command"]


def test_parse_failure_names_the_node(tmp_path, monkeypatch) -> None:
    import onnx
    from onnx import TensorProto, helper

    _install(monkeypatch, "11.1.0")
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, None])
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], [1, 1, 1, -1])
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["input"], ["r"], name="ok"),
            helper.make_node("Unique", ["r"], ["u"], name="labels_unique"),
            helper.make_node("Reshape", ["u", "shape"], ["y"], name="to_image"),
        ],
        "g",
        [x],
        [y],
        [shape],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "u.onnx"))
    with pytest.raises(EngineBuildError, match="node 'labels_unique' \\(Unique\\)"):
        build_engine(tmp_path / "u.onnx", tmp_path / "u.engine")
