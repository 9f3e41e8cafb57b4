"""Accuracy-aware INT8 fallback: part naming, Q/DQ bypass surgery, the greedy search, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from refinenet_deploy.calibration.fallback import (
    QDQ_OPS,
    Score,
    dequantize_nodes,
    model_parts,
    node_part,
    search_fallback,
)
from refinenet_deploy.cli import app
from refinenet_deploy.operations.calibrate import calibrate_onnx

from ..helpers import tiny_fp32_export


@pytest.mark.parametrize(
    ("name", "op", "part"),
    [
        ("/model/layer3/layer3.1/conv2/Conv", "Conv", "backbone.layer3"),
        ("/model/conv1/Conv", "Conv", "backbone.stem"),
        ("/model/maxpool/MaxPool", "MaxPool", "backbone.stem"),
        ("/model/mflow_conv_g2_pool/mflow_conv_g2_pool.1/Conv", "Conv", "crp.mflow_conv_g2_pool"),
        ("/model/crp3/crp3.0/Conv", "Conv", "crp.crp3"),
        ("/model/clf_conv/Conv", "Conv", "classifier"),
        ("/model/segm/Conv", "Conv", "classifier"),
        ("/model/Resize_1", "Resize", "resizes"),
        ("/model/p_ims1d2_outl2_dimred/Conv", "Conv", "decoder.p_ims1d2_outl2_dimred"),
        ("/model/conv_adapt3/Conv", "Conv", "decoder.conv_adapt3"),
        ("/model/Add_2", "Add", None),  # top-level sums take their input's part
        ("/model/relu_1/Relu", "Relu", None),  # the shared ReLU too (stem in ResNets, decoder sums)
    ],
)
def test_node_part(name: str, op: str, part: str | None) -> None:
    assert node_part(name, op) == part


@pytest.fixture(scope="module")
def qdq(tmp_path_factory) -> dict[str, Path]:
    setup = tiny_fp32_export(tmp_path_factory.mktemp("fallback"), images=6, data_seed=3, model_seed=2)
    setup["int8"] = setup["root"] / "m.int8.onnx"
    calibrate_onnx(setup["fp32"], setup["data"], setup["int8"], num_images=6)
    return setup


def _run(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_parts_cover_the_network(qdq) -> None:
    parts = model_parts(onnx.load(str(qdq["int8"])))
    assert {"classifier", "resizes"} <= set(parts)
    assert any(p.startswith("backbone.") for p in parts) and any(p.startswith("crp.") for p in parts)
    names = [n for nodes in parts.values() for n in nodes]
    assert len(names) == len(set(names))  # every quantized node in exactly one part


def test_everything_in_float_is_the_fp32_model(qdq) -> None:
    q, f = onnx.load(str(qdq["int8"])), onnx.load(str(qdq["fp32"]))
    all_nodes = [n for nodes in model_parts(q).values() for n in nodes]
    back = dequantize_nodes(q, f, all_nodes)
    assert not any(n.op_type in QDQ_OPS for n in back.graph.node)  # dead Q/DQ pruned
    onnx.checker.check_model(back)
    x = np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)
    np.testing.assert_array_equal(_run(back, x), _run(qdq["fp32"], x))  # original float weights, bit-exact
    assert np.abs(_run(q, x) - _run(qdq["fp32"], x)).max() > 0  # while the Q/DQ model does differ


def test_one_part_in_float_keeps_the_rest_quantized(qdq) -> None:
    q, f = onnx.load(str(qdq["int8"])), onnx.load(str(qdq["fp32"]))
    parts = model_parts(q)
    back = dequantize_nodes(q, f, parts["classifier"])
    count = lambda m: sum(n.op_type == "DequantizeLinear" for n in m.graph.node)  # noqa: E731
    assert 0 < count(back) < count(q)
    assert "classifier" not in model_parts(back) and "resizes" in model_parts(back)
    x = np.random.default_rng(1).standard_normal((1, 3, 48, 48)).astype(np.float32)
    assert _run(back, x).shape == _run(q, x).shape


def test_search_order_and_stop_with_a_fake_evaluator(qdq) -> None:
    """A fake evaluator (labelled as such): the drop is the sum of per-part costs still quantized."""
    q, f = onnx.load(str(qdq["int8"])), onnx.load(str(qdq["fp32"]))
    parts = model_parts(q)
    cost = {p: 0.01 for p in parts}
    cost.update({"classifier": 0.5, "resizes": 0.3})

    def fake_evaluate(model: onnx.ModelProto) -> Score:
        left = model_parts(model)
        d = sum(cost[p] for p in left if set(left[p]) == set(parts[p]))  # part fully quantized
        return Score(drop=d, disagreement=d)

    budget = sum(cost.values()) - 0.75
    res = search_fallback(q, f, fake_evaluate, max_drop=budget)
    assert res.parts == ["classifier", "resizes"]  # the two most sensitive, in order, then stop
    assert res.final_drop <= budget < res.initial_drop
    assert res.sensitivity["classifier"] == pytest.approx(0.5)
    assert len(res.history) == 2 and res.evaluations == 1 + len(parts) + 2
    untouched = search_fallback(q, f, fake_evaluate, max_drop=10.0)
    assert untouched.parts == [] and untouched.model is q


def test_cli_max_miou_drop_fits_and_is_recorded(qdq, tmp_path: Path) -> None:
    """Label-free validation images: the budget is on agreement with FP32; 0 forces real fallbacks."""
    images = tmp_path / "plain"
    images.mkdir()
    for p in sorted((qdq["data"] / "JPEGImages").iterdir())[:4]:
        shutil.copy(p, images / p.name)
    out = tmp_path / "m.fb.onnx"
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            str(qdq["fp32"]),
            "--data",
            str(qdq["data"]),
            "--num-images",
            "6",
            "--max-miou-drop",
            "0",
            "--val-data",
            str(images),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "m.fb.meta.json").read_text())
    fb = meta["fallback"]
    assert "agreement" in fb["metric"] and fb["validation"]["images"] == 4
    assert fb["initial_drop_points"] > 0 and fb["final_drop_points"] <= 0.0
    assert fb["fallback_parts"] and fb["fallback_node_count"] > 0 and "left in float" in res.output
    model = onnx.load(str(out))
    assert len(model_parts(model)) == len(model_parts(onnx.load(str(qdq["int8"])))) - len(fb["fallback_parts"])


def test_negative_budget_is_a_usage_error(qdq, tmp_path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            str(qdq["fp32"]),
            "--data",
            str(qdq["data"]),
            "--max-miou-drop",
            "-1",
            "-o",
            str(tmp_path / "x.onnx"),
        ],
    )
    assert res.exit_code == 2 and "--max-miou-drop" in res.output
    assert not list(tmp_path.iterdir())
