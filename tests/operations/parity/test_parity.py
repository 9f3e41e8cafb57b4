"""rfdeploy parity end to end on tiny models: pass, tampered weights fail (exit 3), no labels, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from refinenet_deploy.cli import app
from refinenet_deploy.data.datasets import open_dataset
from refinenet_deploy.data.preprocessing import Normalization, preprocess
from refinenet_deploy.data.synth import write_synth_dataset
from refinenet_deploy.models import create_model
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations.export import ExportSpec, export_onnx
from refinenet_deploy.operations.parity import validate_parity
from refinenet_deploy.operations.report import parity_markdown as report_markdown
from refinenet_deploy.validate.parity_engine import ParityEngine
from refinenet_deploy.validate.tolerances import FP32

from ...models.test_zoo import randomize


@pytest.fixture(autouse=True)
def _private_reference_cache(tmp_path_factory, monkeypatch) -> None:
    """The CLI caches PyTorch references under $XDG_CACHE_HOME: keep the tests' out of the user's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parity")
    data = write_synth_dataset(root / "val", 6, 40, 52, seed=4, split="val")
    model = randomize(create_model("rf_lw_test", num_classes=6), seed=8)
    ckpt = save_safetensors(model.state_dict(), root / "m.safetensors", {"arch": "rf_lw_test"})
    onnx_path = root / "m.onnx"
    export_onnx(ckpt, onnx_path, ExportSpec(input_size=(64, 64), dynamic=True, verify_sizes=((40, 52),)))
    static = root / "static.onnx"
    export_onnx(ckpt, static, ExportSpec(input_size=(48, 48)))
    return {"root": root, "data": data, "ckpt": ckpt, "onnx": onnx_path, "static": static}


def _tamper_onnx(src: Path, dst: Path, amount: float) -> Path:
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and list(init.dims) == [6]:  # classifier bias
            arr = onnx.numpy_helper.to_array(init).copy()
            arr[1] += amount
            init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    onnx.save(model, str(dst))
    return dst


def _reference_logit_bound(setup, num_images: int | None = None) -> float:
    """The documented FP32 bound (validate/tolerances.py), 1e-4 + 1e-5 * max|PyTorch logit|, over the images
    parity compares at scale 1: computed here from the reference model, independently of the engine."""
    model = randomize(create_model("rf_lw_test", num_classes=6), seed=8)
    norm = Normalization.from_dict(json.loads(setup["onnx"].with_suffix(".meta.json").read_text())["normalization"])
    ds = open_dataset(setup["data"])
    scale = 0.0
    for i in range(len(ds) if num_images is None else min(num_images, len(ds))):
        with torch.no_grad():
            logits = model(torch.from_numpy(preprocess(ds[i][1], norm))[None]).numpy()
        scale = max(scale, float(np.abs(logits).max()))
    assert scale > 1e-3  # not a comparison of near-zero logits
    return FP32.atol + FP32.rtol * scale


def _assert_fp32_parity(r, bound: float | None = None) -> None:
    """Passed on the FP32 gates. Exact pixel agreement is not required: which way a numerical tie between two
    classes falls depends on the CPU's kernels (AVX2, AVX-512, AMX), so the documented gates decide."""
    gates = r.gates  # the FP32 defaults: at least 99.9 % of pixels, at most 0.1 mIoU points
    assert r.passed and not r.failed_gates and r.precision == "fp32"
    assert gates.min_agreement >= 0.999 and gates.max_miou_drop <= 0.1
    assert r.agreement.pixel >= gates.min_agreement
    if r.miou_drop_points is not None:
        assert abs(r.miou_drop_points) <= gates.max_miou_drop
    if bound is not None:  # the logits themselves: within the documented FP32 tolerance, not a fixed cap
        assert r.logit_max_abs_error is not None and np.isfinite(r.logit_max_abs_error)
        assert 0.0 <= r.logit_max_abs_error <= bound, (r.logit_max_abs_error, bound)


def test_correct_artifact_passes(setup) -> None:
    r = validate_parity(setup["ckpt"], setup["onnx"], setup["data"])
    d = r.to_dict()
    assert r.passed and d["schema"] == "refinenet-deploy/parity" and d["schema_version"] == 1
    _assert_fp32_parity(r, _reference_logit_bound(setup))
    assert d["num_images"] == 6
    assert d["artifact_from_this_checkpoint"] is True and d["runtime"] == "onnxruntime"
    assert len(d["per_class"]) == 6 and {"reference_iou", "backend_iou", "drop_points"} <= set(d["per_class"][0])


def test_static_artifact_uses_the_resize_policy(setup) -> None:
    r = validate_parity(setup["ckpt"], setup["static"], setup["data"], num_images=2)
    assert r.passed and r.policy["static_size"] == [48, 48]
    assert r.policy["resize"].startswith("bilinear")


def test_slightly_tampered_weights_fail_the_gate(setup, tmp_path: Path) -> None:
    bad = _tamper_onnx(setup["onnx"], tmp_path / "tampered.onnx", amount=0.2)
    r = validate_parity(setup["ckpt"], bad, setup["data"])
    assert not r.passed
    assert 0.5 < r.agreement.pixel < 0.999  # slightly: most pixels still agree
    assert any(g.startswith("pixel agreement") for g in r.failed_gates)


def test_fp32_logits_gate_catches_tampered_weights_that_barely_move_the_class_map(setup, tmp_path: Path) -> None:
    """One 1x1 conv scaled by (1 + 0.35 N(0,1)) noise: far beyond float32 rounding, yet almost every pixel keeps
    its class. An FP32 artifact that differs that much computes something else: exit 3."""
    tampered = tmp_path / "t.onnx"
    model = onnx.load(str(setup["onnx"]))
    convs = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        w = onnx.numpy_helper.to_array(init)
        if init.name in convs and w.ndim == 4 and w.shape[2:] == (1, 1):
            init.CopyFrom(
                onnx.numpy_helper.from_array((w * (1 + 0.35 * rng.standard_normal(w.shape))).astype(w.dtype), init.name)
            )
            break
    onnx.save(model, str(tampered))
    r = validate_parity(setup["ckpt"], tampered, setup["data"], min_agreement=0.9, max_miou_drop=5.0)
    d = r.to_dict()
    assert not r.passed and d["logit_gate"]["passed"] is False
    assert any(g.startswith("FP32 logits differ") for g in r.failed_gates)
    assert d["logit_gate"]["worst_error"] > d["logit_gate"]["bound_there"] > 0
    good = validate_parity(setup["ckpt"], setup["onnx"], setup["data"]).to_dict()
    assert good["passed"] and good["logit_gate"]["passed"] and good["logit_gate"]["worst_error"] >= 0
    res = CliRunner().invoke(
        app,
        [
            "parity",
            str(setup["ckpt"]),
            str(tampered),
            "--data",
            str(setup["data"]),
            "--min-agreement",
            "0.9",
            "--max-miou-drop",
            "5",
        ],
    )
    assert res.exit_code == 3 and "FP32 logits differ" in res.output


def test_tampered_checkpoint_with_torch_runtime(setup, tmp_path: Path) -> None:
    model = randomize(create_model("rf_lw_test", num_classes=6), seed=8)
    with torch.no_grad():
        model.clf_conv.bias[1] += 0.2
    other = save_safetensors(model.state_dict(), tmp_path / "other.safetensors", {"arch": "rf_lw_test"})
    assert validate_parity(setup["ckpt"], setup["ckpt"], setup["data"], num_images=2).passed
    assert not validate_parity(setup["ckpt"], other, setup["data"]).passed


def test_label_free_folder_gives_agreement_and_does_not_pass_the_miou_gate(setup, tmp_path: Path) -> None:
    """Issue 19 item 5: with no labels the mIoU gate is not evaluated; that is said, and is not a pass. The
    agreement gates still apply (a tampered artifact still fails)."""
    r = validate_parity(setup["ckpt"], setup["onnx"], setup["data"] / "JPEGImages")
    d = r.to_dict()
    assert d["has_labels"] is False and d["reference_miou"] is None and d["miou_drop_points"] is None
    assert r.passed is None and d["passed"] is None and d["verdict"] == "not evaluated"
    assert not r.failed_gates and d["gates_not_evaluated"] == ["mIoU drop: no labels"]
    assert r.agreement.pixel >= r.gates.min_agreement  # the agreement gate ran and held
    assert r.logit_max_abs_error is not None and r.logit_max_abs_error <= _reference_logit_bound(setup)
    unlabelled = str(setup["data"] / "JPEGImages")
    res = CliRunner().invoke(app, ["parity", str(setup["ckpt"]), str(setup["onnx"]), "--data", unlabelled])
    assert res.exit_code == 0, res.stderr  # nothing failed: not exit 3
    assert "PASSED" not in res.stdout and "NOT EVALUATED" in res.stdout
    assert "not evaluated: mIoU drop: no labels (does not count as passed)" in res.stdout
    bad = _tamper_onnx(setup["onnx"], tmp_path / "bad.onnx", amount=0.2)
    tampered = validate_parity(setup["ckpt"], bad, setup["data"] / "JPEGImages")
    assert tampered.passed is False and any("pixel agreement" in f for f in tampered.failed_gates)


def _recording(runner, seen: list[np.ndarray]):
    """Wraps a real runner's ``infer`` so the test sees every input it received (the runner is unchanged)."""
    infer = runner.infer

    def recorded(inputs):
        seen.append(np.array(next(iter(inputs.values()))))
        return infer(inputs)

    runner.infer = recorded
    return runner


def test_tta_multiscale_and_flip(setup, monkeypatch) -> None:
    seen: dict[str, list[np.ndarray]] = {"reference": [], "backend": []}
    real_init = ParityEngine.__init__

    def recording_init(self, reference, backend, **kw):  # the engine gets the real runners, observed
        real_init(self, _recording(reference, seen["reference"]), _recording(backend, seen["backend"]), **kw)

    monkeypatch.setattr(ParityEngine, "__init__", recording_init)
    r = validate_parity(setup["ckpt"], setup["onnx"], setup["data"], num_images=2, scales=(0.75, 1.0, 1.25), flip=True)
    assert r.passed and r.tta == {"scales": [0.75, 1.0, 1.25], "flip": True}
    # every image (40x52) ran at each scale, plain and mirrored, on both sides: 2 images x 3 scales x 2
    want = [(30, 39), (30, 39), (40, 52), (40, 52), (50, 65), (50, 65)] * 2
    for side, inputs in seen.items():
        assert [x.shape[-2:] for x in inputs] == want, side
        for plain, mirrored in zip(inputs[::2], inputs[1::2]):
            assert not np.array_equal(plain, mirrored)
            np.testing.assert_array_equal(mirrored, plain[..., ::-1], err_msg=side)
    for a, b in zip(seen["reference"], seen["backend"]):
        np.testing.assert_array_equal(a, b)  # the same input arrays on both sides


def test_cli_exit_3_json_markdown_and_panels(setup, tmp_path: Path) -> None:
    bad = _tamper_onnx(setup["onnx"], tmp_path / "bad.onnx", amount=0.2)
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "parity",
            str(setup["ckpt"]),
            str(bad),
            "--data",
            str(setup["data"]),
            "--json",
            str(tmp_path / "p.json"),
            "--markdown",
            str(tmp_path / "p.md"),
            "--save-worst",
            "2",
            str(tmp_path / "worst"),
        ],
    )
    assert res.exit_code == 3, res.stderr
    error = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and error[0].startswith("error: parity gate failed: ") and "pixel agreement" in error[0]
    for written in ("p.json", "p.md"):  # every written file is announced
        assert f"wrote {tmp_path / written}" in res.stderr
    assert f"wrote 2 panels to {tmp_path / 'worst'}" in res.stderr
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["passed"] is False and report["failed_gates"]
    assert "FAILED" in (tmp_path / "p.md").read_text()
    panels = sorted((tmp_path / "worst").glob("*.png"))
    assert len(panels) == 2 and [w["panel"] for w in report["worst"]] == [str(p) for p in panels]
    ok = runner.invoke(
        app, ["parity", str(setup["ckpt"]), str(setup["onnx"]), "--data", str(setup["data"]), "--min-agreement", "99.9"]
    )
    assert ok.exit_code == 0, ok.stderr
    assert "PASSED" in ok.stdout


def test_markdown_renders(setup) -> None:
    md = report_markdown(validate_parity(setup["ckpt"], setup["onnx"], setup["data"], num_images=2).to_dict())
    assert md.startswith("# Parity: `m.onnx` vs PyTorch `m.safetensors`") and "| pixel agreement |" in md
    assert np.isfinite(float(md.split("| pixel agreement | ")[1].split(" % |")[0]))  # a percentage, with its sign


@pytest.mark.openvino
def test_openvino_ir_parity_and_recorded_precision(setup, tmp_path: Path) -> None:
    import openvino as ov

    xml = tmp_path / "m.xml"
    ov.save_model(ov.convert_model(str(setup["onnx"])), str(xml), compress_to_fp16=False)
    r = validate_parity(setup["ckpt"], xml, setup["data"], num_images=3)
    assert r.passed and r.context["runtime"] == "openvino"
    assert r.context["runtime_precision"] == "fp32"  # the runner pins the f32 hint and records what ran
    _assert_fp32_parity(r, _reference_logit_bound(setup, num_images=3))
