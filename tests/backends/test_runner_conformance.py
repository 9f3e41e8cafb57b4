"""Runner conformance: every runner that can run here obeys the same protocol (``BaseRunner``).

Parametrised over the runners, not one copied test per backend: the same input gives the same outputs within
the FP32 tolerance (against the PyTorch runner of the same checkpoint), bad inputs are refused with a
``UsageError`` naming the problem, and the life cycle (activate, context manager, deactivate) is enforced.
The TensorRT runner joins where TensorRT and a GPU exist (marked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refinenet_deploy.artifacts import InputPolicy, read_metadata
from refinenet_deploy.backends import BaseRunner, open_runner
from refinenet_deploy.enums import Device
from refinenet_deploy.errors import UsageError
from refinenet_deploy.validate.compare import compare_outputs
from refinenet_deploy.validate.tolerances import FP32

from ..helpers import tiny_fp32_export

RUNNERS = [
    "torch",
    "onnxruntime",
    pytest.param("openvino", marks=pytest.mark.openvino),
    pytest.param("tensorrt", marks=[pytest.mark.tensorrt, pytest.mark.gpu]),
]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("conformance")
    paths = tiny_fp32_export(root, images=2, data_seed=5, model_seed=17)
    return {"ckpt": paths["ckpt"], "onnx": paths["fp32"], "root": root}


@pytest.fixture(scope="module")
def openvino_xml(artifacts: dict[str, Path]) -> Path:
    """Built once by the fixture (not by whichever test runs first), only for the tests that run on OpenVINO."""
    from refinenet_deploy.operations.build_openvino import convert_openvino

    return convert_openvino(artifacts["onnx"], artifacts["root"] / "m.xml").path


@pytest.fixture(scope="module")
def tensorrt_engine(artifacts: dict[str, Path]) -> Path:
    from refinenet_deploy.operations.build_trt import build_engine

    return build_engine(artifacts["onnx"], artifacts["root"] / "m.engine").path


@pytest.fixture
def artifact(kind: str, artifacts: dict[str, Path], request: pytest.FixtureRequest) -> Path:
    """The artifact ``kind`` runs: the fixture's checkpoint or ONNX model, or the module's IR or engine."""
    if kind == "torch":
        return artifacts["ckpt"]
    if kind == "onnxruntime":
        return artifacts["onnx"]
    return request.getfixturevalue({"openvino": "openvino_xml", "tensorrt": "tensorrt_engine"}[kind])


def _runner(artifact: Path, artifacts: dict[str, Path]) -> BaseRunner:
    policy = InputPolicy.from_metadata(read_metadata(artifacts["onnx"]))
    return open_runner(artifact, policy=policy)


def _input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 48, 48)).astype(np.float32)


@pytest.fixture(scope="module")
def reference(artifacts: dict[str, Path]) -> np.ndarray:
    with _runner(artifacts["ckpt"], artifacts) as ref:
        return next(iter(ref.infer({"input": _input()}).values()))


@pytest.mark.parametrize("kind", RUNNERS)
def test_same_input_same_output_within_fp32_tolerance(
    kind: str, artifact: Path, artifacts: dict[str, Path], reference: np.ndarray
) -> None:
    with _runner(artifact, artifacts) as runner:
        spec = runner.input_specs[0]
        out = runner.infer({spec.name: _input()})
        again = runner.infer({spec.name: _input()})
    ((name, logits),) = out.items()
    assert logits.shape == reference.shape == (1, 6, 12, 12)
    diff = compare_outputs(reference, logits, FP32)
    assert diff.within_tolerance, diff
    np.testing.assert_array_equal(again[name], logits)  # deterministic for one input
    # a different input gives a different output: the runner really computes
    with _runner(artifact, artifacts) as runner:
        other = next(iter(runner.infer({spec.name: _input(seed=1)}).values()))
    assert np.abs(other - logits).max() > 1e-3


@pytest.mark.parametrize("kind", RUNNERS)
def test_input_validation(kind: str, artifact: Path, artifacts: dict[str, Path]) -> None:
    with _runner(artifact, artifacts) as runner:
        spec = runner.input_specs[0]
        assert spec.name == "input" and spec.dtype == np.float32 and len(spec.shape) == 4
        with pytest.raises(UsageError, match="do not match"):
            runner.infer({"image": _input()})
        with pytest.raises(UsageError, match="dtype"):
            runner.infer({spec.name: _input().astype(np.float64)})
        with pytest.raises(UsageError, match="shape"):
            runner.infer({spec.name: _input()[0]})  # rank 3
        if all(isinstance(d, int) for d in spec.shape):
            with pytest.raises(UsageError, match="shape"):
                runner.infer({spec.name: np.zeros((1, 3, 40, 48), np.float32)})


@pytest.mark.parametrize("kind", RUNNERS)
def test_life_cycle(kind: str, artifact: Path, artifacts: dict[str, Path]) -> None:
    runner = _runner(artifact, artifacts)
    assert not runner.is_active and isinstance(runner.device, Device)
    with pytest.raises(RuntimeError, match="not active"):
        runner.infer({"input": _input()})
    with pytest.raises(RuntimeError, match="not active"):
        _ = runner.input_specs
    with runner as same:
        assert same is runner and runner.is_active
        runner.activate()  # idempotent
        assert runner.is_active
        runner.infer({runner.input_specs[0].name: _input()})
    assert not runner.is_active
    with pytest.raises(RuntimeError, match="not active"):
        runner.infer({"input": _input()})
    runner.deactivate()  # idempotent when inactive
    with runner:  # can be activated again
        assert runner.infer({runner.input_specs[0].name: _input()})


def test_each_runner_records_the_device_it_was_opened_for(artifacts: dict[str, Path]) -> None:
    """The device is the runner's own (set from its settings), never attached from outside; built, not activated,
    so the GPU and DLA spellings are checked here too."""
    from refinenet_deploy.backends.onnxruntime import CUDA_PROVIDER, OnnxRuntimeRunner
    from refinenet_deploy.backends.openvino import OpenVINORunner
    from refinenet_deploy.backends.tensorrt import TensorRTRunner
    from refinenet_deploy.backends.torch import open_checkpoint
    from refinenet_deploy.data.preprocessing import Normalization
    from refinenet_deploy.models import LoadedModel

    onnx = artifacts["onnx"]
    assert OnnxRuntimeRunner(onnx).device is Device.CPU
    assert OnnxRuntimeRunner(onnx, providers=[CUDA_PROVIDER]).device is Device.GPU  # from its providers
    assert OpenVINORunner(onnx, device="CPU").device is Device.CPU
    assert OpenVINORunner(onnx, device="GPU.1").device is Device.GPU  # OpenVINO's device index is not ours
    assert TensorRTRunner(onnx, device="gpu").device is Device.GPU
    assert TensorRTRunner(onnx, device=Device.DLA).device is Device.DLA
    with pytest.raises(UsageError, match="unsupported --device: 'tpu'"):
        TensorRTRunner(onnx, device="tpu")
    with pytest.raises(UsageError, match="cpu"):  # an engine runs on a GPU or a DLA, never records a CPU
        TensorRTRunner(onnx, device="cpu")
    torch_runner = open_checkpoint(artifacts["ckpt"])
    assert torch_runner.device is Device.CPU
    assert isinstance(torch_runner.loaded, LoadedModel) and isinstance(torch_runner.normalization, Normalization)
    for path in (artifacts["ckpt"], onnx):  # through open_runner, which sets no attribute of its own
        assert open_runner(path, device="cpu").device is Device.CPU
