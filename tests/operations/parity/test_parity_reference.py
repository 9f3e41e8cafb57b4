"""Parity from a saved PyTorch reference (no PyTorch where it is compared), the reference cache, labels out of
range, and parity's own option and output checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from refinenet_deploy.artifacts import sha256_file
from refinenet_deploy.cli import app
from refinenet_deploy.data.synth import write_synth_dataset
from refinenet_deploy.models import create_model
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations import parity as parity_ops
from refinenet_deploy.operations.export import ExportSpec, export_onnx
from refinenet_deploy.operations.parity import source as parity_source
from refinenet_deploy.operations.parity import validate_parity
from refinenet_deploy.validate.reference import SavedReference

from ...models.test_zoo import randomize

REPO = Path(__file__).resolve().parents[3]

# Put on PYTHONPATH, this makes torch, modelopt and onnxsim unimportable in a subprocess (and logs every attempt).
BLOCKER = """
import os, sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "modelopt", "onnxsim"):
            with open(os.environ["BLOCKED_LOG"], "a") as fh:
                fh.write(name + "\\n")
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
sys.meta_path.insert(0, _Block())
"""


@pytest.fixture(autouse=True)
def _private_reference_cache(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ref")
    data = write_synth_dataset(root / "val", 5, 40, 52, seed=4, split="val")
    model = randomize(create_model("rf_lw_test", num_classes=6), seed=8)
    ckpt = save_safetensors(model.state_dict(), root / "m.safetensors", {"arch": "rf_lw_test"})
    onnx_path = root / "m.onnx"
    export_onnx(ckpt, onnx_path, ExportSpec(input_size=(64, 64), dynamic=True, verify_sizes=((40, 52),)))
    ref = root / "ref.npz"
    res = CliRunner().invoke(
        app, ["parity", str(ckpt), "--data", str(data), "--save-reference", str(ref), "--reference-logits"]
    )
    assert res.exit_code == 0, res.output
    assert f"wrote {ref} (PyTorch reference of 5 images, with logits)" in res.stderr
    return {"root": root, "data": data, "ckpt": ckpt, "onnx": onnx_path, "ref": ref}


def _cli(*argv: object) -> object:
    return CliRunner().invoke(app, [str(a) for a in argv])


def _metrics(d: dict) -> dict:
    keys = ("num_images", "reference_miou", "backend_miou", "miou_drop_points", "agreement_miou", "pixel_agreement")
    return {k: d[k] for k in (*keys, "boundary_agreement", "logit_max_abs_error", "per_class", "passed")}


def test_reference_file_is_a_safe_npz_with_a_manifest(setup) -> None:
    ref = setup["ref"]
    with np.load(ref, allow_pickle=False) as npz:  # no pickle anywhere: every array loads without it
        arrays = {k: npz[k] for k in npz.files if k != "manifest.json"}
    with zipfile.ZipFile(ref) as zf:
        m = json.loads(zf.read("manifest.json"))
    assert m["schema"] == "refinenet-deploy/parity-reference" and m["tool_version"]
    assert m["checkpoint"]["sha256"] == sha256_file(setup["ckpt"])
    assert m["model"]["arch"] == "rf_lw_test" and m["model"]["num_classes"] == 6 and m["model"]["normalization"]
    assert m["settings"] == {
        "scales": [1.0],
        "flip": False,
        "static_size": None,
        "input_format": "nchw-float",
        "head": "logits",
        "normalization": m["model"]["normalization"],
    }
    files = m["data"]["files"]
    assert len(files) == 5 and m["data"]["labels_sha256"] and m["data"]["images_sha256"]
    for f in files:
        assert f["image_sha256"] == sha256_file(setup["data"] / f["image"])
        assert f["label_sha256"] == sha256_file(setup["data"] / f["label"])
    assert m["has_logits"] and len(arrays) == 10
    assert arrays["map_00000"].shape == (40, 52) and arrays["logits_00000"].dtype == np.float32


def test_parity_from_a_saved_reference_equals_live_parity(setup) -> None:
    live = validate_parity(setup["ckpt"], setup["onnx"], setup["data"]).to_dict()
    saved = validate_parity(setup["ref"], setup["onnx"], setup["data"]).to_dict()
    assert saved["passed"] and saved["reference"]["source"] == "saved reference"
    assert _metrics(saved) == _metrics(live)  # the same numbers: same method, same saved float32 arrays
    assert (
        saved["logit_gate"]["passed"] is True
        and saved["logit_gate"]["worst_error"] == live["logit_gate"]["worst_error"]
    )
    assert saved["checkpoint_sha256"] == live["checkpoint_sha256"] and saved["artifact_from_this_checkpoint"]


def test_a_checkpoint_runs_against_a_saved_reference_on_its_device(setup, tmp_path: Path) -> None:
    """The PyTorch baseline target (gpu-torch-fp16 in a pipeline): the checkpoint itself is the ARTIFACT, run in
    PyTorch at --device/--precision against the FP32 reference saved earlier. Here on the CPU in FP32 it must agree
    exactly; a GPU without CUDA, or --precision on an ONNX artifact, is refused before any work."""
    same = validate_parity(setup["ref"], setup["ckpt"], setup["data"]).to_dict()
    assert same["passed"] and same["runtime"] == "torch" and same["reference"]["source"] == "saved reference"
    assert same["pixel_agreement"] == 1.0 and same["miou_drop_points"] == 0.0
    static = tmp_path / "static.npz"  # what the pipeline saves: a reference at the export's static size
    res = _cli("parity", setup["ckpt"], "--data", setup["data"], "--save-reference", static, "--input-size", "32x48")
    assert res.exit_code == 0, res.stderr
    at_size = validate_parity(static, setup["ckpt"], setup["data"]).to_dict()
    assert at_size["pixel_agreement"] == 1.0 and not at_size["failed_gates"]
    # saved without logits: the FP32 logits gate could not run, which is said and is not a pass (issue 19 item 5)
    assert at_size["passed"] is None and at_size["gates_not_evaluated"][0].startswith("FP32 logits:")
    import torch

    if not torch.cuda.is_available():
        res = _cli("parity", setup["ref"], setup["ckpt"], "--data", setup["data"], "--device", "gpu", "--precision",
                   "fp16")  # fmt: skip
        assert res.exit_code == 7 and "no CUDA GPU" in res.stderr, res.stderr
    res = _cli("parity", setup["ref"], setup["onnx"], "--data", setup["data"], "--precision", "fp16")
    assert res.exit_code == 2 and "runs in onnxruntime as built" in res.stderr, res.stderr
    both = _cli("parity", setup["ref"], setup["ckpt"], setup["onnx"], "--data", setup["data"], "--precision", "bf16")
    assert both.exit_code == 2 and "m.onnx runs in onnxruntime as built" in both.stderr, both.stderr
    assert "parity:" not in both.stdout  # refused before the first MODEL ran
    res = _cli("parity", setup["ref"], setup["onnx"], "--data", setup["data"], "--precision", "fp8")
    assert res.exit_code == 2 and "unsupported --precision: 'fp8'" in res.stderr, res.stderr


def test_parity_from_a_saved_reference_in_an_environment_without_torch(setup, tmp_path: Path) -> None:
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(BLOCKER)
    log = tmp_path / "blocked.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "block"), str(REPO / "src")]),
        "BLOCKED_LOG": str(log),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked by the test" in probe.stderr  # the blocker works
    log.unlink()
    out = tmp_path / "p.json"
    argv = ["parity", setup["ref"], setup["onnx"], "--data", setup["data"], "--json", out]
    proc = subprocess.run(
        [sys.executable, "-c", "from refinenet_deploy.cli import main; main()", *map(str, argv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert not log.exists(), log.read_text()  # nothing even tried to import torch, modelopt or onnxsim
    d = json.loads(out.read_text())
    assert d["passed"] and d["num_images"] == 5 and d["logit_gate"]["passed"] is True
    assert d["reference"]["source"] == "saved reference"
    live = validate_parity(setup["ckpt"], setup["onnx"], setup["data"]).to_dict()
    assert _metrics(d) == _metrics(live)


def test_reference_from_other_data_or_settings_is_refused(setup, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "val"
    shutil.copytree(setup["data"], other)
    img = sorted((other / "JPEGImages").iterdir())[2]
    arr = np.array(Image.open(img))
    arr[0, 0] = 255 - arr[0, 0]
    Image.fromarray(arr).save(img, quality=95)
    res = _cli("parity", setup["ref"], setup["onnx"], "--data", other)
    assert res.exit_code == 7 and "file bytes differ" in res.stderr and f"{img.stem} (image)" in res.stderr
    lab = sorted((other / "SegmentationClass").iterdir())[1]
    shutil.copy(setup["data"] / "JPEGImages" / img.name, img)  # image restored; now a label differs
    a = np.array(Image.open(lab))
    a[0, 0] = (int(a[0, 0]) + 1) % 6
    Image.fromarray(a).save(lab)
    res = _cli("parity", setup["ref"], setup["onnx"], "--data", other)
    assert res.exit_code == 7 and f"{lab.stem} (label)" in res.stderr
    res = _cli("parity", setup["ref"], setup["onnx"], "--data", setup["data"], "--multi-scale", "0.75,1")
    assert res.exit_code == 7 and "scales: reference [1.0], here [0.75, 1.0]" in res.stderr
    res = _cli("parity", setup["ref"], setup["onnx"], "--data", setup["data"], "--flip")
    assert res.exit_code == 7 and "flip: reference False, here True" in res.stderr
    static = tmp_path / "static.onnx"
    export_onnx(setup["ckpt"], static, ExportSpec(input_size=(48, 48)))
    res = _cli("parity", setup["ref"], static, "--data", setup["data"])
    assert res.exit_code == 7 and "input size: reference None, here [48, 48]" in res.stderr
    seven = tmp_path / "seven.onnx"
    shutil.copy(setup["onnx"], seven)
    meta = json.loads(setup["onnx"].with_suffix(".meta.json").read_text())
    (tmp_path / "seven.meta.json").write_text(json.dumps({**meta, "num_classes": 7}))
    res = _cli("parity", setup["ref"], seven, "--data", setup["data"])
    assert res.exit_code == 7 and "classes: reference 6, artifact 7" in res.stderr
    res = _cli("parity", setup["ref"], setup["onnx"], "--data", setup["data"], "--num-images", 3)
    assert res.exit_code == 0, res.stderr  # the first 3 images of the same data: covered by the reference


def test_reference_without_logits_says_the_fp32_gate_needs_them(setup, tmp_path: Path) -> None:
    ref = tmp_path / "maps.npz"
    res = _cli("parity", setup["ckpt"], setup["onnx"], "--data", setup["data"], "--save-reference", ref)
    assert res.exit_code == 0 and f"wrote {ref} (PyTorch reference)" in res.stderr
    assert not SavedReference(ref).has_logits
    res = _cli("parity", ref, setup["onnx"], "--data", setup["data"], "--json", tmp_path / "p.json")
    assert res.exit_code == 0 and "--reference-logits" in res.output
    gate = json.loads((tmp_path / "p.json").read_text())["logit_gate"]
    assert gate["passed"] is None and "--reference-logits" in gate["skipped"]


def test_a_damaged_reference_is_refused(setup, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    res = _cli("parity", bad, setup["onnx"], "--data", setup["data"])
    assert res.exit_code == 5 and "is not a parity reference" in res.stderr


def test_the_cache_makes_n_artifacts_cost_one_pytorch_pass(setup, tmp_path: Path, monkeypatch) -> None:
    loads = []
    real_load = parity_source._load
    monkeypatch.setattr(parity_source, "_load", lambda *a: loads.append(a) or real_load(*a))
    cache = tmp_path / "cache"
    first = _cli("parity", setup["ckpt"], setup["onnx"], "--data", setup["data"], "--reference-cache", cache,
                 "--json", tmp_path / "a.json")  # fmt: skip
    assert first.exit_code == 0 and len(loads) == 1 and "(reference cache)" in first.stderr
    second = _cli("parity", setup["ckpt"], setup["onnx"], "--data", setup["data"], "--reference-cache", cache,
                  "--json", tmp_path / "b.json")  # fmt: skip
    assert second.exit_code == 0 and len(loads) == 1 and "reused the cached PyTorch reference" in second.stderr
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert _metrics(a) == _metrics(b) and b["reference"]["source"] == "cached reference"
    assert len(list(cache.glob("*.npz"))) == 1
    # several artifacts in one call, no cache: still one PyTorch pass
    import shutil

    twin = shutil.copy(setup["onnx"], tmp_path / "twin.onnx")
    shutil.copy(setup["onnx"].with_suffix(".meta.json"), tmp_path / "twin.meta.json")
    loads.clear()
    both = _cli("parity", setup["ckpt"], setup["onnx"], twin, "--data", setup["data"], "--no-reference-cache")
    assert both.exit_code == 0 and len(loads) == 1 and both.stdout.count("PASSED") == 2


def _label_200(src: Path, dst: Path) -> Path:
    import shutil

    data = shutil.copytree(src, dst)
    for i, lab in enumerate(sorted((data / "SegmentationClass").iterdir())[:2]):
        a = np.array(Image.open(lab))
        a[: 3 + i, :4] = 200  # class 200 in a 6-class set
        a[-2:, -2:] = 255  # VOC's ignore index stays ignored
        Image.fromarray(a).save(lab)
    return data


def test_labels_out_of_range_are_counted_warned_and_strict(setup, tmp_path: Path) -> None:
    data = _label_200(setup["data"], tmp_path / "l200")
    res = _cli("parity", setup["ckpt"], setup["onnx"], "--data", data, "--json", tmp_path / "p.json")
    assert res.exit_code == 0, res.stderr
    assert res.stderr.count("outside 0..5") == 1 and "ids 200" in res.stderr and "synth_4_00000" in res.stderr
    counts = json.loads((tmp_path / "p.json").read_text())["labels_out_of_range"]
    assert counts["pixels"] == 3 * 4 + 4 * 4 and counts["images"] == 2 and counts["class_ids"] == {"200": 28}
    strict = _cli("parity", setup["ckpt"], setup["onnx"], "--data", data, "--strict-labels")
    assert strict.exit_code == 5 and "200" in strict.stderr
    ev = _cli("evaluate", setup["ckpt"], "--data", data, "--json")
    assert ev.exit_code == 0 and "ids 200" in ev.stderr
    assert json.loads(ev.stdout)["labels_out_of_range"]["pixels"] == 28
    assert _cli("evaluate", setup["ckpt"], "--data", data, "--strict-labels").exit_code == 5
    clean = _cli("evaluate", setup["ckpt"], "--data", setup["data"], "--strict-labels", "--json")
    assert clean.exit_code == 0 and json.loads(clean.stdout)["labels_out_of_range"]["pixels"] == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [("--multi-scale", v) for v in ("nan", "inf", "1e6", "0", "-1", "1,,2", "1,1")]
    + [("--min-agreement", v) for v in ("250", "-1", "nan", "101")]
    + [("--max-miou-drop", v) for v in ("-1", "nan", "inf", "1000")],
)
def test_numeric_options_out_of_range_exit_2_before_work(setup, monkeypatch, option: str, value: str) -> None:
    monkeypatch.setattr(parity_source, "_load", lambda *a: pytest.fail("work started"))
    res = _cli("parity", setup["ckpt"], setup["onnx"], "--data", setup["data"], option, value)
    assert res.exit_code == 2 and option in res.stderr, res.stderr


def test_outputs_are_probed_before_any_work(setup, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(parity_ops, "compare_artifacts", lambda *a, **k: pytest.fail("work started"))
    monkeypatch.setattr(parity_ops, "save_reference", lambda *a, **k: pytest.fail("work started"))
    ck, onnx_path, data = setup["ckpt"], setup["onnx"], setup["data"]
    before = {p: sha256_file(p) for p in (ck, onnx_path, onnx_path.with_suffix(".meta.json"), setup["ref"])}
    base = ["parity", ck, onnx_path, "--data", data]
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        ([*base, "--json", ck], "would overwrite the input"),
        ([*base, "--json", onnx_path], "would overwrite the input"),
        ([*base, "--markdown", onnx_path.with_suffix(".meta.json")], "would overwrite the input"),
        (["parity", setup["ref"], onnx_path, "--data", data, "--json", setup["ref"]], "would overwrite the input"),
        ([*base, "--save-reference", ck.with_suffix(".npz"), "--json", ck.with_suffix(".npz")], "same path"),
        ([*base, "--json", tmp_path], "is a folder"),
        ([*base, "--save-worst", 2, a_file], "is a file, not a folder"),
        ([*base, "--json", a_file / "p.json"], "is a file, not a folder"),
        ([*base, "--save-reference", tmp_path / "ref.zip"], "must end in .npz"),
        ([*base, "--save-worst", 0, tmp_path / "w"], "--save-worst"),
        (["parity", ck, "--data", data], "nothing to do"),
        (["parity", ck, "--data", data, "--save-reference", tmp_path / "r.npz", "--json", tmp_path / "p.json"],
         "ARTIFACT"),
        ([*base, "--reference-logits"], "--save-reference"),
        ([*base, "--save-worst", 1, data], "inside the dataset"),
        ([*base, "--save-worst", 1, data / "JPEGImages"], "inside the dataset"),
        ([*base, "--markdown", data / "dataset.json"], "inside the dataset"),
    ]  # fmt: skip
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        cases.append(([*base, "--json", ro / "p.json"], "cannot write"))
    for argv, words in cases:
        res = _cli(*argv)
        assert res.exit_code == 2 and words in res.stderr, (argv, res.stderr)
    assert {p: sha256_file(p) for p in before} == before  # the inputs are unchanged


def test_json_into_a_missing_folder_is_created_and_announced(setup, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "p.json"
    md = tmp_path / "new" / "p.md"
    res = _cli("parity", setup["ref"], setup["onnx"], "--data", setup["data"], "--num-images", 2, "--json", out,
               "--markdown", md)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert json.loads(out.read_text())["num_images"] == 2 and md.read_text().startswith("# Parity")
    assert f"wrote {out}" in res.stderr and f"wrote {md}" in res.stderr


def _rewrite_reference(src: Path, dst: Path, edit) -> None:  # noqa: ANN001
    """Copy a reference, passing its manifest (a dict) and arrays through ``edit`` (hostile variants)."""
    with zipfile.ZipFile(src) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "manifest.json"}
    manifest, arrays = edit(manifest, arrays)
    np.savez(dst, **arrays)
    with zipfile.ZipFile(dst, "a") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))


@pytest.mark.parametrize(
    ("case", "edit", "words"),
    [
        ("manifest-list", lambda m, a: ([1, 2], a), "is not a parity reference"),
        ("no-model", lambda m, a: ({k: v for k, v in m.items() if k != "model"}, a), "model must be an object"),
        ("classes-string", lambda m, a: ({**m, "model": {**m["model"], "num_classes": "6"}}, a), "num_classes"),
        ("scales-nan", lambda m, a: ({**m, "settings": {**m["settings"], "scales": ["x"]}}, a), "settings.scales"),
        ("images-missing", lambda m, a: ({**m, "images": None}, a), "images must be"),
        ("map-out-of-range", lambda m, a: (m, {**a, "map_00000": a["map_00000"] * 0 + 200}), "map_00000"),
        ("map-object", lambda m, a: (m, {**a, "map_00000": np.array([{"x": 1}], dtype=object)}), "map_00000"),
        ("logits-classes", lambda m, a: (m, {**a, "logits_00000": a["logits_00000"][..., :2, :, :]}), "logits_00000"),
    ],
)
def test_a_hostile_reference_is_refused_in_one_line(setup, tmp_path: Path, case: str, edit, words: str) -> None:  # noqa: ANN001
    bad = tmp_path / f"{case}.npz"
    _rewrite_reference(setup["ref"], bad, edit)
    before = sha256_file(bad)
    res = _cli("parity", bad, setup["onnx"], "--data", setup["data"])
    assert res.exit_code == 5, (res.exit_code, res.stderr)
    assert res.stderr.startswith("error: ") and words in res.stderr and "Traceback" not in res.stderr
    assert sha256_file(bad) == before and sorted(p.name for p in tmp_path.iterdir()) == [bad.name]


def test_a_killed_reference_writer_leaves_nothing_for_the_next_run(setup, tmp_path: Path) -> None:
    """A SIGKILL mid-write leaves the writer's staging file (``.NAME.staging.PID.rfdeploy.tmp``); the next writer
    to the same folder removes it, because its process is gone."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".r.npz.staging.{int(dead.stdout)}.rfdeploy.tmp"
    stale.write_bytes(b"half a zip")
    out = tmp_path / "r.npz"
    res = _cli("parity", setup["ckpt"], "--data", setup["data"], "--save-reference", out, "--no-reference-cache")
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]
