"""Effective precision audit after 'build trt' (``backends.tensorrt.audit``): the rule on hand-written layer rows
(fakes, labelled), then real TensorRT-RTX builds on this CPU-only machine, where the engine never deserialises, so
the audit comes from the parsed network and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from refinenet_deploy.artifacts import read_metadata, sidecar_path
from refinenet_deploy.backends.tensorrt.audit import audit_layer_report, convolution_precisions
from refinenet_deploy.cli import app
from refinenet_deploy.errors import EngineBuildError
from refinenet_deploy.operations.trt_records import summarize_layers

from ..helpers import tiny_fp32_export


# --------------------------------------------------------------------------------------------- the rule (fake rows)
def _net(*convs: tuple[str, bool, str]) -> dict:
    """A fake network layer report: (name, input and weights from Q/DQ, output dtype) per convolution."""
    layers: list[dict] = [{"name": "q", "type": "QUANTIZE"}, {"name": "dq", "type": "DEQUANTIZE"}]
    for name, dq, out in convs:
        layers.append({"name": name, "type": "CONVOLUTION", "fed_by_dequantize": dq, "weights_from_dequantize": dq,
                       "outputs": [out]})  # fmt: skip
    return {"source": "network", "layers": layers}


def test_int8_with_an_fp32_convolution_warns_and_strict_raises() -> None:
    report = _net(("a", True, "FLOAT"), ("b", True, "FLOAT"), ("clf", False, "FLOAT"))
    audit = audit_layer_report(report, "int8")
    assert audit["by_precision"] == {"fp32": 1, "int8": 2} and audit["summary"] == "INT8 convolutions: 2/3"
    assert audit["realised"] is False and "1/3 convolution layers are FP32 in the network (clf)" in audit["warning"]
    with pytest.raises(EngineBuildError, match="--strict-precision: requested INT8") as info:
        audit_layer_report(report, "int8", strict=True)
    assert info.value.exit_code == 6
    full = audit_layer_report(_net(("a", True, "FLOAT"), ("b", True, "FLOAT")), "int8", strict=True)
    assert full["realised"] is True and full["int8_share"] == 1.0 and "warning" not in full


def test_fp16_requested_but_fp32_network_warns_and_fp32_never_does() -> None:
    fp32_net = _net(("a", False, "FLOAT"), ("b", False, "FLOAT"))
    assert "requested FP16" in audit_layer_report(fp32_net, "fp16")["warning"]
    assert audit_layer_report(fp32_net, "fp32")["realised"] is True
    half = audit_layer_report(_net(("a", False, "HALF"), ("b", False, "HALF")), "fp16")
    assert half["by_precision"] == {"fp16": 2} and half["realised"] is True


def test_engine_inspector_rows_are_read_by_output_format() -> None:
    """Fake IEngineInspector rows (fused layers, formats as TensorRT prints them)."""
    layers = [
        {"name": "conv1 + relu", "type": "CaskConvolution", "outputs": ["Int8 NC/32HW32"]},
        {"name": "conv2", "type": "CaskConvolution", "outputs": ["Float NCHW"]},
        {"name": "resize", "type": "Resize", "outputs": ["Float NCHW"]},
        {"name": "conv3", "type": "CaskGemmConvolution", "outputs": ["Half NC/8HW8"]},
    ]
    audit = convolution_precisions(layers, "engine")
    assert audit["by_precision"] == {"fp16": 1, "fp32": 1, "int8": 1} and audit["fp32_layers"] == ["conv2"]
    warned = audit_layer_report({"source": "engine", "layers": layers}, "int8")
    assert "1/3 convolution layers run FP32 (conv2)" in warned["warning"]


# --------------------------------------------------------------------------------------------- real builds (RTX)
@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("tensorrt_rtx")
    from refinenet_deploy.operations.calibrate import calibrate_onnx

    root = tmp_path_factory.mktemp("trt-audit")
    paths = tiny_fp32_export(root, images=4, data_seed=4, model_seed=21)
    kw = {"num_images": 4, "producer": "onnxruntime", "method": "max", "min_agreement": 0.0}  # random weights
    calibrate_onnx(paths["fp32"], paths["data"], root / "q.onnx", **kw)
    calibrate_onnx(paths["fp32"], paths["data"], root / "kf.onnx", keep_float=["classifier"], **kw)
    return {**paths, "qdq": root / "q.onnx", "keep_float": root / "kf.onnx"}


def _build(*args: str):
    return CliRunner().invoke(app, ["build", "trt", *args])


@pytest.mark.trt_rtx
def test_qdq_engine_audit_is_recorded_from_the_network(setup, tmp_path: Path) -> None:
    engine = tmp_path / "q.engine"
    res = _build(str(setup["qdq"]), "--int8", "-o", str(engine))
    assert res.exit_code == 0, res.output
    audit = read_metadata(engine)["precision_audit"]
    assert audit["source"] == "network" and "does not deserialise here" in audit["explanation"]
    n = audit["convolutions"]
    assert n > 10 and audit["by_precision"] == {"int8": n} and audit["realised"] is True
    assert f"precision (network): INT8 convolutions: {n}/{n}" in res.output and "warning" not in res.output
    fp32 = tmp_path / "f.engine"
    assert _build(str(setup["fp32"]), "-o", str(fp32)).exit_code == 0
    plain = read_metadata(fp32)["precision_audit"]
    assert plain["by_precision"] == {"fp32": n} and plain["int8_share"] == 0.0 and plain["realised"] is True


@pytest.mark.trt_rtx
def test_int8_engine_with_a_float_block_warns_and_strict_exits_6(setup, tmp_path: Path) -> None:
    """Planted: the classifier kept in float in the Q/DQ ONNX, so that engine has an FP32 convolution."""
    engine = tmp_path / "kf.engine"
    res = _build(str(setup["keep_float"]), "--int8", "-o", str(engine))
    assert res.exit_code == 0, res.output
    audit = read_metadata(engine)["precision_audit"]
    assert audit["realised"] is False and audit["by_precision"]["fp32"] >= 1
    assert audit["fp32_layers"] == ["/model/segm/Conv"]  # rf_lw_mbv2's classifier: float weights, Q/DQ'd input
    assert "warning: requested INT8 but INT8 convolutions:" in res.output
    strict = tmp_path / "s.engine"
    res = _build(str(setup["keep_float"]), "--int8", "--strict-precision", "-o", str(strict))
    assert res.exit_code == 6 and "--strict-precision" in res.output
    assert not strict.exists() and not sidecar_path(strict).exists()


def test_layer_summary_counts_int8_convolutions_by_the_audits_rule() -> None:
    """A convolution whose input comes from a DequantizeLinear but whose weights are float runs FP32: the build's
    layer summary does not count it as INT8 (it used to count every convolution fed by a Dequantize)."""
    layers = _net(("a", True, "FLOAT"), ("clf", False, "FLOAT"))["layers"]
    layers.append({"name": "half_q", "type": "CONVOLUTION", "fed_by_dequantize": True, "weights_from_dequantize": False,
                   "outputs": ["FLOAT"]})  # fmt: skip
    summary = summarize_layers(layers, "network")
    assert summary["convolutions"] == 3 and summary["convolutions_int8"] == 1
    assert audit_layer_report({"source": "network", "layers": layers}, "int8")["summary"] == "INT8 convolutions: 1/3"
