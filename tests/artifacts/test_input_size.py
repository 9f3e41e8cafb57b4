"""One input-size resolver (``artifacts.resolve_input_size``): stated precedence, never a silent 512x512."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from refinenet_deploy.artifacts import InputPolicy, checkpoint_input_size, read_metadata, resolve_input_size
from refinenet_deploy.backends.tensorrt.builder import input_profiles
from refinenet_deploy.calibration.dataset import calibration_set_for_model
from refinenet_deploy.data.synth import write_synth_dataset
from refinenet_deploy.errors import UsageError
from refinenet_deploy.models import create_model
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations.export import ExportSpec, export_onnx


def _image_model(h: int | str, w: int | str) -> onnx.ModelProto:
    """An identity image model with input (1, 3, h, w): ints are static, strings symbolic."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, h, w])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, h, w])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["out"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_precedence_and_sources() -> None:
    assert resolve_input_size((64, 96), export_size=(32, 32)) == ((64, 96), "--input-size")
    assert resolve_input_size(None, static=(48, 48), export_size=(32, 32))[0] == (48, 48)
    assert resolve_input_size((48, 48), static=(48, 48))[0] == (48, 48)
    assert resolve_input_size(None, export_size=[32, 40], checkpoint_size=(64, 64)) == (
        (32, 40),
        "the artifact's metadata (export size)",
    )
    assert resolve_input_size(None, checkpoint_size=(64, 64), model_default=(512, 512))[0] == (64, 64)
    assert resolve_input_size(None, model_default=(512, 512)) == ((512, 512), "the architecture's default")
    with pytest.raises(UsageError, match="static input size 48x48; drop --input-size"):
        resolve_input_size((64, 64), static=(48, 48))


def test_nothing_known_is_a_usage_error_naming_the_option_not_512x512() -> None:
    with pytest.raises(UsageError, match="Pass --input-size HxW") as exc:
        resolve_input_size(None)
    assert exc.value.exit_code == 2
    with pytest.raises(UsageError, match="--input-size"):
        InputPolicy().size_for()  # a dynamic artifact whose metadata records no export size
    assert InputPolicy(export_size=(32, 48)).size_for() == (32, 48)
    assert InputPolicy(static_size=(16, 16), export_size=(32, 48)).size_for() == (16, 16)


def test_checkpoint_input_size() -> None:
    assert checkpoint_input_size({"input_size": "64x96"}) == (64, 96)
    assert checkpoint_input_size({"export_size": [32, 48]}) == (32, 48)
    for bad in ({"input_size": "big"}, {"input_size": [0, 64]}, {"input_size": [True, 64]}, {}):
        assert checkpoint_input_size(bad) is None


def test_tensorrt_profile_of_a_dynamic_onnx_needs_a_size() -> None:
    dynamic = _image_model("h", "w")
    with pytest.raises(UsageError, match="--input-size"):
        input_profiles(dynamic, "nchw-float", {})  # was: opt 512x512, silently
    (p,) = input_profiles(dynamic, "nchw-float", {"export_size": [64, 80]})
    assert p.opt == (1, 3, 64, 80) and p.max == (1, 3, 128, 160)
    (p,) = input_profiles(dynamic, "nchw-float", {}, input_size=(48, 48))
    assert p.min == p.opt == p.max == (1, 3, 48, 48)
    (p,) = input_profiles(_image_model(32, 32), "nchw-float", {})
    assert p.static and p.opt == (1, 3, 32, 32)


def test_calibration_size_of_a_dynamic_onnx(tmp_path: Path) -> None:
    data = write_synth_dataset(tmp_path / "d", 2, 24, 24, seed=0)
    dynamic = _image_model("h", "w")
    with pytest.raises(UsageError, match="--input-size"):
        calibration_set_for_model(dynamic, {}, data)  # was: 512x512, silently
    assert calibration_set_for_model(dynamic, {"export_size": [32, 32]}, data).size == (32, 32)
    assert calibration_set_for_model(dynamic, {}, data, input_size=(16, 24)).size == (16, 24)
    assert calibration_set_for_model(_image_model(16, 16), {}, data).size == (16, 16)


def test_export_size_from_checkpoint_metadata_else_the_architecture(tmp_path: Path) -> None:
    sd = create_model("rf_lw_test", num_classes=3).state_dict()
    with_size = save_safetensors(sd, tmp_path / "a.safetensors", {"arch": "rf_lw_test", "input_size": [32, 48]})
    plain = save_safetensors(sd, tmp_path / "b.safetensors", {"arch": "rf_lw_test"})
    spec = ExportSpec(simplify="none", trt_check=False, verify_sizes=())
    export_onnx(with_size, tmp_path / "a.onnx", spec)
    assert read_metadata(tmp_path / "a.onnx")["export_size"] == [32, 48]
    export_onnx(plain, tmp_path / "b.onnx", spec)
    assert read_metadata(tmp_path / "b.onnx")["export_size"] == [64, 64]  # rf_lw_test's registered size
    export_onnx(with_size, tmp_path / "c.onnx", ExportSpec(input_size=(16, 16), simplify="none", trt_check=False))
    assert np.array_equal(read_metadata(tmp_path / "c.onnx")["export_size"], [16, 16])
