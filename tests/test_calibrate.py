"""rfdeploy calibrate: a symmetric per-channel Q/DQ INT8 ONNX that ONNX Runtime and OpenVINO run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from refinenet_deploy.calibration.qdq import calibrate_onnx
from refinenet_deploy.cli import app
from refinenet_deploy.errors import CalibrationError, UsageError
from refinenet_deploy.parity import validate_parity

from .helpers import tiny_fp32_export


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    setup = tiny_fp32_export(tmp_path_factory.mktemp("calib"), images=8, data_seed=5, model_seed=1)
    setup["int8"] = setup["root"] / "m.int8.onnx"
    calibrate_onnx(setup["fp32"], setup["data"], setup["int8"], num_images=8)
    return setup


def test_qdq_is_symmetric_per_channel_int8(setup) -> None:
    model = onnx.load(str(setup["int8"]))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 10 and "DequantizeLinear" in ops
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                   and len(n.input) > 2 and n.input[2] in inits]
    assert zero_points and all(zp.dtype == np.int8 and not zp.any() for zp in zero_points)  # zero point 0
    per_channel = [n for n in model.graph.node if n.op_type == "DequantizeLinear"
                   and n.input[1] in inits and inits[n.input[1]].ndim == 1 and inits[n.input[1]].size > 1]
    assert per_channel  # conv weights carry one scale per output channel


def test_metadata_and_manifest(setup) -> None:
    meta = json.loads((setup["root"] / "m.int8.meta.json").read_text())
    assert meta["precision"] == "int8" and meta["arch"] == "rf_lw_mbv2_test"
    assert meta["calibration"]["count"] == 8 and len(meta["calibration"]["digest"]) == 64
    assert 0.0 <= meta["check"]["argmax_agreement_vs_fp32_on_calibration_images"] <= 1.0
    manifest = json.loads((setup["root"] / "m.int8.calibration.json").read_text())
    assert len(manifest["files"]) == 8 and all(len(f["sha256"]) == 64 for f in manifest["files"])


def test_parity_of_int8_uses_int8_gates(setup) -> None:
    r = validate_parity(setup["ckpt"], setup["int8"], setup["data"])
    assert r.precision == "int8" and r.gates.max_miou_drop == 1.0
    assert r.logit_max_abs_error > 0  # INT8 really changes the numbers


@pytest.mark.openvino
def test_openvino_runs_the_qdq_model(setup) -> None:
    import openvino as ov

    compiled = ov.Core().compile_model(str(setup["int8"]), "CPU")
    out = compiled(np.zeros((1, 3, 48, 48), np.float32))[0]
    assert out.shape == (1, 6, 12, 12)


def test_bad_inputs_leave_nothing(setup, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unsupported --method"):
        calibrate_onnx(setup["fp32"], setup["data"], tmp_path / "x.onnx", method="kl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="no images found"):
        calibrate_onnx(setup["fp32"], tmp_path / "empty", tmp_path / "x.onnx")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"not a png")
    res = CliRunner().invoke(app, ["calibrate", str(setup["fp32"]), "--data", str(tmp_path / "junk"), "-o",
                                   str(tmp_path / "x.onnx")])
    assert res.exit_code == 5 and "no readable calibration images" in res.stderr
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob(".x*"))


def test_modelopt_producer_writes_symmetric_qdq(setup) -> None:
    out = setup["root"] / "m.mo.onnx"
    res = calibrate_onnx(setup["fp32"], setup["data"], out, num_images=8, producer="modelopt")
    assert res.metadata["quantization"]["producer"] == "modelopt.onnx.quantization.quantize"
    model = onnx.load(str(out))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    qs = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert len(qs) > 10
    zps = [inits[n.input[2]] for n in qs if len(n.input) > 2 and n.input[2] in inits]
    assert all(not zp.any() for zp in zps)  # symmetric: zero point 0 (or omitted, which means 0)
    assert not any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)  # FP32 kept
    r = validate_parity(setup["ckpt"], out, setup["data"], max_miou_drop=100, min_agreement=0)
    assert r.precision == "int8" and r.logit_max_abs_error > 0


def test_modelopt_producer_rejects_percentile(setup, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="entropy or max"):
        calibrate_onnx(setup["fp32"], setup["data"], tmp_path / "x.onnx", producer="modelopt", method="percentile")
    assert not list(tmp_path.iterdir())


def test_onnxruntime_entropy_is_refused_with_the_reason(setup, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["calibrate", str(setup["fp32"]), "--data", str(setup["data"]), "--producer",
                                   "onnxruntime", "--method", "entropy", "-o", str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and "min/max in effect" in res.stderr and "--producer modelopt" in res.stderr
    assert not list(tmp_path.iterdir())


def test_onnxruntime_producer_still_works(setup) -> None:
    out = setup["root"] / "m.ort.onnx"
    res = calibrate_onnx(setup["fp32"], setup["data"], out, num_images=8, producer="onnxruntime")
    assert res.metadata["quantization"]["method"] == "max"
    assert res.metadata["quantization"]["producer"] == "onnxruntime.quantization.quantize_static"


def test_modelopt_reader_streams_one_image_at_a_time(setup) -> None:
    from refinenet_deploy.calibration.dataset import build_calibration_set
    from refinenet_deploy.calibration.qdq import _StreamingReader
    from refinenet_deploy.data.preprocessing import Normalization

    cs = build_calibration_set(setup["data"], size=(48, 48), normalization=Normalization.imagenet(), num_images=5)
    reader = _StreamingReader(cs, "input")
    first = reader.get_first()["input"]
    assert first.shape == (1, 3, 48, 48)
    seen = []
    while (item := reader.get_next()) is not None:
        seen.append(item["input"])
    assert len(seen) == 5 and np.array_equal(seen[0], first)  # get_first does not consume
    reader.rewind()
    assert np.array_equal(reader.get_next()["input"], first)
