"""TensorRT runner: the compatibility check runs everywhere; the engine test needs TensorRT and a GPU."""

from __future__ import annotations

import sys

import pytest

from refinenet_deploy.errors import IncompatibleArtifactError, MissingDependencyError
from refinenet_deploy.runtimes import open_runner
from refinenet_deploy.runtimes.tensorrt import check_engine_compatibility

META = {"tensorrt": {"version": "10.3.0"}, "device": {"name": "Orin", "compute_capability": "8.7"}}


def test_matching_engine_passes() -> None:
    check_engine_compatibility(META, "10.3.0.30", "Orin", "8.7")


def test_other_tensorrt_version_is_refused() -> None:
    with pytest.raises(IncompatibleArtifactError, match="engine built with TensorRT 10.3.0, this runtime is 10.13"):
        check_engine_compatibility(META, "10.13.3", "Orin", "8.7")


def test_version_compatible_engine_runs_forward_not_backward() -> None:
    check_engine_compatibility({**META, "version_compatible": True}, "11.4.1", "Orin", "8.7")
    with pytest.raises(IncompatibleArtifactError):
        check_engine_compatibility({"tensorrt": {"version": "11.4.1"}, "version_compatible": True}, "10.3.0", None,
                                   None)


def test_other_gpu_is_refused_unless_hardware_compatible() -> None:
    with pytest.raises(IncompatibleArtifactError, match="compute capability 8.7 .*this GPU is 9.0"):
        check_engine_compatibility(META, "10.3.0", "H100", "9.0")
    check_engine_compatibility({**META, "hardware_compatible": True}, "10.3.0", "H100", "9.0")


def test_engine_without_tensorrt_installed_is_exit_4(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 16)
    runner = open_runner(engine)
    with pytest.raises(MissingDependencyError, match="'tensorrt' is not installed") as info:
        runner.activate()
    assert info.value.exit_code == 4

