"""ONNX export: matches PyTorch at every size, heads, input formats, opsets, FP16, provenance, atomicity."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from refinenet_deploy.artifacts import read_metadata as read_artifact_metadata
from refinenet_deploy.artifacts import sidecar_path
from refinenet_deploy.data.preprocessing import Normalization, preprocess
from refinenet_deploy.errors import CheckpointError, ExportError, UsageError
from refinenet_deploy.models import create_model, list_models
from refinenet_deploy.models.checkpoint import save_safetensors, sha256_file
from refinenet_deploy.models.layers import upsample_logits
from refinenet_deploy.operations import export as onnx_export
from refinenet_deploy.operations.export import ExportSpec, export_onnx
from refinenet_deploy.validate.compare import compare_class_maps, compare_outputs
from refinenet_deploy.validate.tolerances import FP16, FP32, Tolerance

from ..models.reference_forward import mbv2_forward
from ..models.test_zoo import randomize

SMALL = ((33, 47), (75, 101))  # verification sizes for tests: odd, not multiples of 32


def _ckpt(tmp_path: Path, name: str = "rf_lw_test", num_classes: int = 4, seed: int = 0, **meta) -> Path:
    model = randomize(create_model(name, num_classes=num_classes), seed=seed)
    path = tmp_path / f"{name}.safetensors"
    save_safetensors(model.state_dict(), path, {"arch": name, **meta})
    return path


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _image(h: int, w: int, seed: int) -> np.ndarray:
    """A seeded RGB uint8 image (white noise over smooth colour fields), HxWx3."""
    rng = np.random.default_rng(seed)
    coarse = np.kron(rng.integers(0, 256, (math.ceil(h / 8), math.ceil(w / 8), 3)), np.ones((8, 8, 1)))[:h, :w]
    return np.clip(coarse + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix in (".onnx", ".json"))


def _fp32_bound(scale: float) -> float:
    """The documented FP32 bound (validate/tolerances.py) for a reference whose largest |logit| is ``scale``.

    Float32 summation order differs between CPU kernels (AVX2, AVX-512, AMX) and grows with the activations'
    scale, so FP32 outputs are judged with this bound only, never with a fixed absolute cap."""
    return FP32.atol + FP32.rtol * scale


def _assert_fp32_match(ref: np.ndarray, got: np.ndarray) -> None:
    """``got`` equals the reference logits ``ref`` within the documented FP32 tolerance (not vacuously)."""
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.isfinite(got).all() and np.isfinite(ref).all()
    scale = float(np.abs(ref).max())
    assert scale > 1e-3  # the comparison is not between two near-zero tensors
    diff = compare_outputs(ref, got, FP32)
    assert diff.within_tolerance, diff
    assert diff.max_abs_error <= _fp32_bound(scale), (diff.max_abs_error, _fp32_bound(scale))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=[] if n.endswith("_test") or n == "rf_lw_mbv2" else [pytest.mark.slow])
        for n in list_models(include_test=True)
    ],
)
def test_every_zoo_model_exports_dynamic_and_verifies(name: str, tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, name, num_classes=5)
    out = tmp_path / "m.onnx"
    res = export_onnx(ckpt, out, ExportSpec(input_size=(64, 64), dynamic=True, verify_sizes=SMALL))
    assert res.metadata["verification"]["passed"]
    assert {tuple(c.size) for c in res.cases} == {(64, 64), *SMALL}
    if importlib.util.find_spec("tensorrt") or importlib.util.find_spec("tensorrt_rtx"):  # TensorRT parses + builds
        check = res.metadata["verification"]["tensorrt"]
        assert check["parsed"] and check["built"] and check["layers"] > 10
    # Judged with the documented tolerance only: max|onnx - torch| <= 1e-4 + 1e-5 * max|torch|. No extra
    # absolute cap: RF-152 / RF-101 2-scale reach 3.05e-4 / 3.41e-4 on AVX2-only CPUs, within that bound.
    for c in res.cases:
        d = c.diff
        assert d.elements > 0 and math.isfinite(d.max_abs_error) and math.isfinite(d.max_rel_error)
        assert d.within_tolerance, (c.name, d)
        scale = d.max_abs_error / d.max_rel_error if d.max_rel_error else 0.0  # max|torch| of this case
        assert d.max_abs_error <= _fp32_bound(scale), (c.name, d.max_abs_error, _fp32_bound(scale))
        assert d.argmax_agreement >= FP32.min_agreement
    # and independently of the export's own check: the file on disk against PyTorch at an odd size
    model = randomize(create_model(name, num_classes=5), seed=0)
    x = torch.from_numpy(preprocess(_image(75, 101, seed=3), Normalization.imagenet()))[None]
    with torch.no_grad():
        ref = model(x).numpy()
    _assert_fp32_match(ref, _run(out, x.numpy()))


WRAPPERS = {
    "flat.pth.tar": lambda sd: sd,
    "segmenter.pth.tar": lambda sd: {"segmenter": {f"module.{k}": v for k, v in sd.items()}},
    "model.pth": lambda sd: {"model": sd},
    "state_dict.pt": lambda sd: {"state_dict": sd},
    "weights.pth": lambda sd: {"weights": sd, "model_metadata": {"source": "repack"}},
    "legacy_2018.pth.tar": lambda sd: sd,  # saved with the pre-1.6 (non-zip) serialization below
    "no_num_batches_tracked.pth": lambda sd: {k: v for k, v in sd.items() if "num_batches_tracked" not in k},
}


@pytest.fixture(scope="module")
def mbv2_ref() -> torch.nn.Module:
    return randomize(create_model("rf_lw_mbv2", num_classes=21), seed=11)


@pytest.mark.parametrize("fname", sorted(WRAPPERS))
def test_reference_checkpoints_export_dynamic_and_match_reference(fname: str, mbv2_ref, tmp_path: Path) -> None:
    path = tmp_path / fname
    torch.save(WRAPPERS[fname](mbv2_ref.state_dict()), path, _use_new_zipfile_serialization="legacy" not in fname)
    out = tmp_path / "m.onnx"
    export_onnx(path, out, ExportSpec(input_size=(64, 64), dynamic=True, verify_sizes=SMALL))
    sd = mbv2_ref.state_dict()
    for h, w in ((97, 131), (45, 70)):
        x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(h))
        with torch.no_grad():
            ref = mbv2_forward(sd, x).numpy()
        got = _run(out, x.numpy())
        assert got.shape == (1, 21, math.ceil(h / 4), math.ceil(w / 4))
        _assert_fp32_match(ref, got)


def test_argmax_head_equals_pytorch_upsampled_argmax(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, "rf_lw_mbv2_test", num_classes=5, seed=2)
    out = tmp_path / "argmax.onnx"
    export_onnx(ckpt, out, ExportSpec(input_size=(64, 64), dynamic=True, head="argmax", verify_sizes=SMALL))
    model = randomize(create_model("rf_lw_mbv2_test", num_classes=5), seed=2)
    for seed, (h, w) in enumerate(((75, 101), (64, 64), (120, 90))):
        x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            logits = upsample_logits(model(x), (h, w)).numpy()
        got = _run(out, x.numpy())
        assert got.dtype == np.uint8 and got.shape == (1, h, w)
        # equal to PyTorch's upsampled argmax, except at numerical ties (top-2 logits within FP32.atol): which
        # way a tie falls depends on the CPU's kernels, so no agreement figure beyond the documented one
        diff = compare_class_maps(logits, got, FP32)
        assert diff.within_tolerance and diff.max_rel_error == 0.0  # no disagreement that is not a tie
        assert diff.argmax_agreement >= FP32.min_agreement


def test_upsample_head_and_nhwc_uint8_input(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, "rf_lw_test", num_classes=3, seed=4)
    out = tmp_path / "cam.onnx"
    res = export_onnx(ckpt, out, ExportSpec(input_size=(48, 64), head="upsample", input_format="nhwc-uint8"))
    assert res.metadata["inputs"][0] == {"name": "input", "dtype": "uint8", "shape": [1, 48, 64, 3]}
    frame = np.random.default_rng(0).integers(0, 256, size=(1, 48, 64, 3), dtype=np.uint8)
    model = randomize(create_model("rf_lw_test", num_classes=3), seed=4)
    x = torch.from_numpy(preprocess(frame[0], Normalization.imagenet()))[None]
    with torch.no_grad():
        expected = upsample_logits(model(x), (48, 64)).numpy()
    _assert_fp32_match(expected, _run(out, frame))


@pytest.mark.parametrize("opset", [13, 14, 15, 16, 17, 18])
def test_opsets_13_to_18(opset: int, tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path)
    out = tmp_path / "m.onnx"
    export_onnx(ckpt, out, ExportSpec(input_size=(64, 64), dynamic=True, opset=opset, verify_sizes=SMALL[:1]))
    assert onnx.load(str(out)).opset_import[0].version == opset


def test_simplified_and_unsimplified_agree(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, "rf_lw_mbv2_test", seed=5)
    outs = {}
    for simp in ("none", "onnxsim", "onnxslim"):
        path = tmp_path / f"{simp}.onnx"
        export_onnx(ckpt, path, ExportSpec(input_size=(64, 64), dynamic=True, simplify=simp, verify_sizes=SMALL))
        outs[simp] = _run(path, np.random.default_rng(1).standard_normal((1, 3, 75, 101)).astype(np.float32))
    nodes = {s: len(onnx.load(str(tmp_path / f"{s}.onnx")).graph.node) for s in outs}
    assert nodes["onnxsim"] < nodes["none"]
    # different graphs may run different kernels (fusions): judged like the export's own simplifier check
    _assert_fp32_match(outs["none"], outs["onnxsim"])
    _assert_fp32_match(outs["none"], outs["onnxslim"])


@pytest.mark.parametrize("head", ["logits", "upsample", "argmax"])
@pytest.mark.parametrize("input_format", ["nchw-float", "nhwc-uint8"])
def test_fp16_export_keeps_io_types(head: str, input_format: str, tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, "rf_lw_mbv2_test", seed=6)
    out = tmp_path / "m16.onnx"
    res = export_onnx(
        ckpt,
        out,
        ExportSpec(
            input_size=(64, 64), dynamic=True, fp16=True, verify_sizes=SMALL, head=head, input_format=input_format
        ),
    )
    model = onnx.load(str(out))
    want_in = onnx.TensorProto.UINT8 if input_format == "nhwc-uint8" else onnx.TensorProto.FLOAT
    want_out = onnx.TensorProto.UINT8 if head == "argmax" else onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == want_in
    assert model.graph.output[0].type.tensor_type.elem_type == want_out
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert res.metadata["precision"] == "fp16"
    cases = res.metadata["verification"]["cases"]
    assert cases and all(c["argmax_agreement"] >= FP16.min_agreement for c in cases)


def test_dynamic_batch(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path)
    out = tmp_path / "m.onnx"
    res = export_onnx(
        ckpt, out, ExportSpec(input_size=(64, 64), dynamic=True, dynamic_batch=True, batch=2, verify_sizes=SMALL[:1])
    )
    assert {c.batch for c in res.cases} == {1, 2}
    assert _run(out, np.zeros((3, 3, 40, 40), np.float32)).shape == (3, 4, 10, 10)


def test_provenance_sidecar_and_metadata_props(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, class_names=["bg", "a", "b", "c"])
    out = tmp_path / "m.onnx"
    export_onnx(ckpt, out, ExportSpec(input_size=(64, 64)), command="rfdeploy export onnx x")
    side = json.loads(sidecar_path(out).read_text())
    assert sidecar_path(out).name == "m.meta.json"
    for key in (
        "arch",
        "num_classes",
        "class_names",
        "normalization",
        "input_format",
        "head",
        "opset",
        "checkpoint",
        "exporter",
        "verification",
        "provenance",
        "artifact",
    ):
        assert key in side
    assert side["format"] == "refinenet-deploy/onnx" and side["schema_version"] == 2
    assert side["checkpoint"]["sha256"] == sha256_file(ckpt)
    assert side["class_names"] == ["bg", "a", "b", "c"] and side["arch"] == "rf_lw_test"
    prov = side["provenance"]
    assert prov["versions"]["onnx"] == onnx.__version__ and prov["command"] == "rfdeploy export onnx x"
    assert prov["tool"] == "refinenet-deploy" and prov["tool_version"] and prov["host"]["cpu"]
    assert side["artifact"] == {"file": "m.onnx", "sha256": sha256_file(out), "bytes": out.stat().st_size}
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["refinenet_deploy.arch"] == "rf_lw_test"
    assert json.loads(props["refinenet_deploy"])["checkpoint"]["sha256"] == side["checkpoint"]["sha256"]
    sidecar_path(out).unlink()
    assert read_artifact_metadata(out)["arch"] == "rf_lw_test"  # falls back to metadata_props


def test_verification_on_real_images(tmp_path: Path) -> None:
    from refinenet_deploy.data.synth import write_synth_dataset

    data = write_synth_dataset(tmp_path / "synth", 3, 40, 56, seed=9)
    ckpt = _ckpt(tmp_path, num_classes=6)
    res = export_onnx(ckpt, tmp_path / "m.onnx", ExportSpec(input_size=(64, 64), data=str(data)))
    assert sum(c.name.startswith("image") for c in res.cases) == 3


# ----------------------------------------------------------------------------- bad input leaves nothing behind
def test_truncated_checkpoint_leaves_no_file(tmp_path: Path) -> None:
    ckpt = tmp_path / "bad.pth"
    torch.save(create_model("rf_lw_test").state_dict(), ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    out = tmp_path / "m.onnx"
    with pytest.raises(CheckpointError):
        export_onnx(ckpt, out)
    assert _leftovers(tmp_path) == []


def test_wrong_arch_and_class_count(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path)
    with pytest.raises(CheckpointError, match="does not fit rf_lw_mbv2_test"):
        export_onnx(ckpt, tmp_path / "m.onnx", ExportSpec(arch="rf_lw_mbv2_test"))
    with pytest.raises(CheckpointError, match="class-count mismatch"):
        export_onnx(ckpt, tmp_path / "m.onnx", ExportSpec(num_classes=9))
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "spec,match",
    [
        (ExportSpec(opset=11), "unsupported opset: 11"),
        (ExportSpec(opset=19), "unsupported opset: 19"),
        (ExportSpec(head="softmax"), "unsupported --head"),
        (ExportSpec(dynamic_batch=True), "--dynamic-batch needs --dynamic"),
        (ExportSpec(exporter="dynamo", opset=17), "dynamo exporter needs opset >= 18"),
    ],
)
def test_bad_options(spec: ExportSpec, match: str, tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path)
    with pytest.raises(UsageError, match=match):
        export_onnx(ckpt, tmp_path / "m.onnx", spec)


def test_unwritable_output(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path)
    with pytest.raises(UsageError, match="must end in .onnx"):
        export_onnx(ckpt, tmp_path / "m.txt")
    (tmp_path / "d.meta.json").mkdir()
    with pytest.raises(UsageError, match="d.meta.json is a folder"):
        export_onnx(ckpt, tmp_path / "d.onnx")
    assert not (tmp_path / "d.onnx").exists()
    unwritable = Path("/sys/rfdeploy-test.onnx")  # read-only even for root
    if Path("/sys").is_dir():
        with pytest.raises(UsageError, match="cannot write in"):
            export_onnx(ckpt, unwritable)


def test_mismatch_with_pytorch_exits_6_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    """An impossible tolerance (test double for a numerically broken export) must refuse to write."""
    monkeypatch.setattr(onnx_export, "FP32", Tolerance(atol=0.0, rtol=0.0, min_agreement=1.0))
    ckpt = _ckpt(tmp_path)
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="does not match PyTorch within tolerance") as info:
        export_onnx(ckpt, out, ExportSpec(input_size=(64, 64), simplify="none"))
    assert info.value.exit_code == 6
    assert _leftovers(tmp_path) == []


def test_simplifier_that_changes_outputs_is_refused(tmp_path: Path, monkeypatch) -> None:
    """Fake simplifier (test double): perturbs the classifier bias, which our check must catch."""
    real = onnx_export.simplify

    def corrupting(model, simplifier):
        model = real(model, simplifier)
        for init in model.graph.initializer:
            if list(init.dims) == [4] and init.data_type == onnx.TensorProto.FLOAT:  # the classifier bias
                arr = onnx.numpy_helper.to_array(init) + 0.5
                init.CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), init.name))
        return model

    monkeypatch.setattr(onnx_export, "simplify", corrupting)
    ckpt = _ckpt(tmp_path)
    with pytest.raises(ExportError, match="changed the model's outputs"):
        export_onnx(ckpt, tmp_path / "m.onnx", ExportSpec(input_size=(64, 64)))
    assert _leftovers(tmp_path) == []


def test_cli_export_and_exit_codes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from refinenet_deploy.cli import app

    ckpt = _ckpt(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(
        app, ["export", "onnx", str(ckpt), "--input-size", "64x64", "--dynamic", "-o", str(tmp_path / "m.onnx")]
    )
    assert ok.exit_code == 0, ok.stderr
    assert "random-375x500-b1" in ok.stdout and "onnxsim: simplified graph equals" in ok.stdout
    bad = runner.invoke(app, ["export", "onnx", str(ckpt), "--opset", "9", "-o", str(tmp_path / "x.onnx")])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: unsupported opset: 9")
    missing = runner.invoke(app, ["export", "onnx", str(tmp_path / "nope.pth"), "-o", str(tmp_path / "y.onnx")])
    assert missing.exit_code == 5 and not (tmp_path / "y.onnx").exists()
    if Path("/sys").is_dir():
        ro = runner.invoke(app, ["export", "onnx", str(ckpt), "-o", "/sys/m.onnx"])
        assert ro.exit_code == 2 and ro.stderr.startswith("error: -o /sys/m.onnx: cannot write in /sys")
        assert "Traceback" not in ro.stderr


def test_missing_simplifier_is_exit_4(tmp_path: Path, monkeypatch) -> None:
    import sys

    from refinenet_deploy.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "onnxsim", None)  # as on a platform where onnxsim does not install
    ckpt = _ckpt(tmp_path)
    with pytest.raises(MissingDependencyError, match="'onnxsim' is not installed") as info:
        export_onnx(ckpt, tmp_path / "m.onnx", ExportSpec(input_size=(64, 64)))
    assert info.value.exit_code == 4 and "--simplify onnxslim" in info.value.hint
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_dynamo_exporter(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path)
    res = export_onnx(
        ckpt,
        tmp_path / "d.onnx",
        ExportSpec(input_size=(64, 64), dynamic=True, opset=18, exporter="dynamo", verify_sizes=SMALL),
    )
    assert res.metadata["exporter"] == "dynamo" and res.metadata["verification"]["passed"]
