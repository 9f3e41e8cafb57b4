"""``rfdeploy pipeline`` end to end on the demo checkpoint (small settings): the bundle, its manifest, skipping
unchanged steps, targets pending on a device with the commands that finish them, merging a result made
elsewhere, and resuming after a SIGKILL."""

from __future__ import annotations

import html
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refinenet_deploy.artifacts import sha256_file, sidecar_path
from refinenet_deploy.operations.pipeline import Pipeline, make_config
from refinenet_deploy.operations.pipeline.capabilities import has_module

pytestmark = pytest.mark.slow

TARGETS = "cpu-onnxruntime-fp32,cpu-onnxruntime-int8,cpu-openvino-fp32,jetson-trt-int8,gpu-trt-fp16,gpu-torch-fp16"
SMALL = {
    "targets": TARGETS,
    "input_size": "64x64",
    "synth_val_images": 6,
    "synth_calib_images": 8,
    "calib_images": 8,
    "warmup": 1,
    "iterations": 3,
    "max_miou_drop": 5.0,  # 6 images at 64x64: an INT8 mIoU moves by ~2 pt either way (the demo gates at 1.0)
}


def run(bundle: Path, **overrides) -> object:
    cfg = make_config({}, {**SMALL, **overrides})
    return Pipeline(cfg, bundle).run()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("pipeline") / "bundle"
    result = run(path)
    return path, result


def statuses(result) -> dict[str, str]:  # noqa: ANN001
    return {o.target.name: o.status for o in result.outcomes}


def test_cpu_targets_finish_and_device_targets_are_pending(bundle) -> None:  # noqa: ANN001
    path, result = bundle
    st = statuses(result)
    assert st["cpu-onnxruntime-fp32"] == st["cpu-onnxruntime-int8"] == st["cpu-openvino-fp32"] == "done"
    for name in ("jetson-trt-int8", "gpu-trt-fp16", "gpu-torch-fp16"):
        assert st[name] == "pending on device"
    # what this machine could make for them is in the bundle
    for rel in ("models/model.onnx", "models/model.fp16.onnx", "models/model.int8.onnx", "reference.npz"):
        assert (path / rel).exists(), rel
    jetson = next(o for o in result.outcomes if o.target.name == "jetson-trt-int8")
    assert any(c.startswith("rfdeploy build trt models/model.int8.onnx --int8") for c in jetson.commands)
    assert any(
        c.startswith("rfdeploy parity reference.npz targets/jetson-trt-int8/model.engine") for c in jetson.commands
    )
    assert jetson.commands[-1].startswith("rfdeploy pipeline --resume")
    assert jetson.predicted and jetson.predicted["miou_drop_points"] is not None
    gpu16 = next(o for o in result.outcomes if o.target.name == "gpu-trt-fp16")
    assert any("models/model.fp16.onnx --fp16" in c for c in gpu16.commands)
    assert result.exit_code == 0


def test_manifest_hashes_match_and_paths_are_relative(bundle) -> None:  # noqa: ANN001
    path, _ = bundle
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["artifacts"]
    for entry in manifest["artifacts"]:
        assert not Path(entry["path"]).is_absolute() and ".." not in entry["path"]
        assert sha256_file(path / entry["path"]) == entry["sha256"], entry["path"]
    onnx = next(e for e in manifest["artifacts"] if e["path"] == "models/model.onnx")
    assert onnx["provenance"]["tool"] == "refinenet-deploy"
    parity = next(e for e in manifest["artifacts"] if e["path"] == "targets/cpu-onnxruntime-int8/parity.json")
    assert parity["gates"]["passed"] is True
    assert manifest["targets"]["jetson-trt-int8"]["status"] == "pending on device"
    assert manifest["targets"]["jetson-trt-int8"]["commands"]
    report = (path / "report.md").read_text()
    assert "jetson-trt-int8" in report and "pending on device" in report


def test_second_run_skips_every_step(bundle) -> None:  # noqa: ANN001
    path, first = bundle
    t0 = time.perf_counter()
    again = run(path)
    elapsed = time.perf_counter() - t0
    assert again.ran == [], again.ran
    assert set(again.skipped) >= set(first.ran)
    print(f"second run: {elapsed:.1f} s")


def test_changed_setting_redoes_only_what_depends_on_it(tmp_path: Path, bundle) -> None:  # noqa: ANN001
    path, _ = bundle
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    again = run(copy, iterations=4, targets="cpu-onnxruntime-fp32")
    assert again.ran == ["bench:cpu-onnxruntime-fp32", "bench:cpu-torch-fp32"]


def jetson_result(bundle: Path, **changes) -> Path:  # noqa: ANN003
    """Hand-made stand-ins (test doubles, labelled) for what ``jetson-trt-int8``'s commands write on a Jetson: the
    engine with its sidecar, and parity/bench JSON recording that engine's SHA-256, TensorRT on the Jetson's GPU,
    INT8 and the bundle's reference. ``changes`` edit the parity JSON."""
    target = bundle / "targets" / "jetson-trt-int8"
    target.mkdir(parents=True, exist_ok=True)
    engine = target / "model.engine"
    engine.write_bytes(b"stand-in for the engine built on the Jetson (test double)")
    shutil.copyfile(bundle / "models" / "model.int8.meta.json", sidecar_path(engine))
    source = bundle / "targets" / "cpu-onnxruntime-int8"
    parity = json.loads((source / "parity.json").read_text())
    parity.update(
        {
            "note": "hand-made test result standing in for a Jetson run",
            "runtime": "tensorrt",
            "device": "gpu",
            "jetson": True,
            "artifact_sha256": sha256_file(engine),
            "artifact": "targets/jetson-trt-int8/model.engine",
            **changes,
        }
    )
    bench = json.loads((source / "bench.json").read_text())
    bench.update(
        note="hand-made test result standing in for a Jetson run",
        runtime="tensorrt",
        device="gpu",
        artifact_sha256=sha256_file(engine),  # a bench records what it measured, as the parity does
    )
    bench["fingerprint"] = {**bench.get("fingerprint", {}), "jetson": {"model": "stand-in"}}
    (target / "parity.json").write_text(json.dumps(parity))
    (target / "bench.json").write_text(json.dumps(bench))
    return target


def test_result_made_elsewhere_is_merged_on_resume(tmp_path: Path, bundle) -> None:  # noqa: ANN001
    path, _ = bundle
    copy = tmp_path / "moved"  # the bundle travels: relative paths only
    shutil.copytree(path, copy)
    target = jetson_result(copy)
    engine = target / "model.engine"
    engine.rename(tmp_path / "engine")
    without_engine = run(copy)  # the results alone: the engine they came from is not in the bundle
    assert statuses(without_engine)["jetson-trt-int8"] == "pending on device"
    (tmp_path / "engine").rename(engine)
    result = run(copy)
    assert statuses(result)["jetson-trt-int8"] == "done"
    assert {"build:jetson-trt-int8", "parity:jetson-trt-int8", "bench:jetson-trt-int8"} <= set(result.imported)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["targets"]["jetson-trt-int8"]["status"] == "done"
    assert manifest["targets"]["jetson-trt-int8"]["p50_ms"] is not None
    assert manifest["targets"]["jetson-trt-int8"]["gates_passed"] is True
    assert "jetson-trt-int8" in (copy / "report.md").read_text()


@pytest.mark.parametrize(
    ("what", "change", "words"),
    [
        ("the issue's case: an ONNX Runtime result", {"runtime": "onnxruntime", "device": "cpu"}, "onnxruntime"),
        ("another file", {"artifact_sha256": "0" * 64}, "SHA-256"),
        ("not on a Jetson", {"jetson": False}, "did not run on a Jetson"),
        ("another precision", {"precision": "fp16"}, "fp16"),
        ("another reference", {"reference": {"digest": "f" * 64}}, "reference"),
        ("an older rfdeploy", {"artifact_sha256": None}, "SHA-256"),
        ("not a whole parity result", {"pixel_agreement": "high"}, "not a parity result from rfdeploy"),
    ],
)
def test_a_result_of_something_else_is_not_imported(tmp_path: Path, bundle, what, change, words) -> None:  # noqa: ANN001
    """Issue 19 item 1: a parity JSON put into a target's folder is imported only when it measured that target's
    artifact (SHA-256), runtime, device kind and precision, from the bundle's reference."""
    path, _ = bundle
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    jetson_result(copy, **change)
    warnings: list[str] = []
    result = Pipeline(make_config({}, SMALL), copy, warn=warnings.append).run()
    assert statuses(result)["jetson-trt-int8"] == "pending on device", what
    assert "parity:jetson-trt-int8" not in result.imported
    assert any("parity.json" in w and words in w for w in warnings), warnings
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["targets"]["jetson-trt-int8"]["gates_passed"] is None


def test_an_imported_verdict_is_recomputed_with_the_bundles_gates(tmp_path: Path, bundle) -> None:  # noqa: ANN001
    """Issue 19 item 1: the device judged 0.576 pt at its default 1.0 pt and wrote passed: true; the bundle's gate
    is 0.5 pt, so the target failed its gate, like a CPU target with the same number would."""
    path, _ = bundle
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    jetson_result(
        copy, miou_drop_points=0.576, passed=True, failed_gates=[], gates={"max_miou_drop": 1.0, "min_agreement": 0.97}
    )
    result = run(copy, max_miou_drop=0.5)
    jetson = next(o for o in result.outcomes if o.target.name == "jetson-trt-int8")
    assert jetson.status == "failed gate" and "0.576 pt > max 0.500 pt" in jetson.reason
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["targets"]["jetson-trt-int8"]["gates_passed"] is False
    assert manifest["targets"]["jetson-trt-int8"]["gates"]["max_miou_drop"] == 0.5
    entry = next(e for e in manifest["artifacts"] if e["path"] == "targets/jetson-trt-int8/parity.json")
    assert entry["gates"]["passed"] is False and entry["gates"]["gates"]["max_miou_drop"] == 0.5
    assert result.exit_code == 3


def test_calibration_method_and_fallback_run_inside_the_pipeline(tmp_path: Path, bundle) -> None:  # noqa: ANN001
    """Issue 19 item 8: [calibration] method and max_miou_drop reach the Q/DQ model (and only the steps that use
    them are redone)."""
    path, _ = bundle
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    result = run(copy, calib_method="max", calib_max_miou_drop=5.0, calib_val_images=4)
    assert "calibrate" in result.ran and "export" not in result.ran
    meta = json.loads((copy / "models" / "model.int8.meta.json").read_text())
    assert meta["quantization"]["method"] == "max"
    assert meta["fallback"]["validation"]["images"] == 4
    assert statuses(result)["cpu-onnxruntime-int8"] in ("done", "failed gate")


def test_pending_device_commands_carry_the_bundles_gates(tmp_path: Path, bundle) -> None:  # noqa: ANN001
    """Issue 19 item 1: the printed parity command judges on the device with the bundle's gates."""
    path, _ = bundle
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    result = run(copy, max_miou_drop=0.5, min_agreement=0.98)
    for o in result.outcomes:
        for command in o.commands:
            if command.startswith("rfdeploy parity"):
                assert "--max-miou-drop 0.5 --min-agreement 0.98" in command, command


def test_every_device_int8_target_gets_the_cpu_prediction(tmp_path: Path, bundle) -> None:  # noqa: ANN001
    """Issue 19 item 4: without cpu-onnxruntime-int8 among the targets, a device INT8 target is still predicted
    from the Q/DQ model in ONNX Runtime here, and a prediction already over the gate is flagged."""
    path, _ = bundle
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    result = run(copy, targets="cpu-onnxruntime-fp32,jetson-trt-int8")
    jetson = next(o for o in result.outcomes if o.target.name == "jetson-trt-int8")
    assert jetson.predicted and jetson.predicted["miou_drop_points"] is not None
    assert jetson.predicted["result"] == "predicted/int8-onnxruntime-cpu.parity.json"
    assert jetson.predicted["over_gate"] == []
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["targets"]["jetson-trt-int8"]["predicted_on_cpu"]["miou_drop_points"] is not None
    drop = abs(jetson.predicted["miou_drop_points"])
    assert drop > 0.01  # seeded: INT8 moves the demo's mIoU on these 6 images
    strict = run(copy, targets="cpu-onnxruntime-fp32,jetson-trt-int8", max_miou_drop=round(drop / 2, 3))
    jetson = next(o for o in strict.outcomes if o.target.name == "jetson-trt-int8")
    assert jetson.status == "pending on device"
    assert jetson.predicted["over_gate"] and "mIoU" in jetson.predicted["over_gate"][0]
    report = (copy / "report.md").read_text()
    assert "CPU-predicted over the gate" in report and "already over the gate" in report


def test_a_non_result_file_is_not_imported(tmp_path: Path, bundle) -> None:  # noqa: ANN001
    path, _ = bundle
    copy = tmp_path / "junk"
    shutil.copytree(path, copy)
    target = copy / "targets" / "gpu-trt-fp16"
    target.mkdir(parents=True, exist_ok=True)
    (target / "parity.json").write_text("[]")
    (target / "bench.json").write_text('{"schema": "something-else"}')
    result = run(copy)
    assert statuses(result)["gpu-trt-fp16"] == "pending on device"


@pytest.mark.skipif(not has_module("openvino"), reason="needs OpenVINO")
def test_sigkill_mid_run_then_resume_gives_the_same_bundle(tmp_path: Path, bundle) -> None:  # noqa: ANN001
    path, _ = bundle
    killed = tmp_path / "killed"
    argv = [sys.executable, "-m", "refinenet_deploy", "pipeline", "-o", str(killed)]
    for key, value in SMALL.items():
        if key in ("targets", "input_size", "calib_images"):
            argv += [f"--{key.replace('_', '-')}", str(value)]
    cfg = {k: v for k, v in SMALL.items() if k not in ("targets", "input_size", "calib_images")}
    toml = tmp_path / "small.toml"
    toml.write_text(
        f"[synth]\nval_images = {cfg['synth_val_images']}\ncalib_images = {cfg['synth_calib_images']}\n"
        f"[bench]\nwarmup = {cfg['warmup']}\niterations = {cfg['iterations']}\n"
        f"[gates]\nmax_miou_drop = {cfg['max_miou_drop']}\n"
    )
    argv.insert(4, str(toml))
    log = tmp_path / "first-run.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=fh)
    state = killed / ".pipeline" / "state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # kill while the INT8 model is being made
        if state.is_file() and '"export"' in state.read_text():
            time.sleep(1.0)
            break
        time.sleep(0.2)
    assert proc.poll() is None, f"the first run ended before it could be killed:\n{log.read_text()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Traceback" not in resumed.stderr
    left = [p for p in killed.rglob(".*") if p.name not in (".pipeline", "state.json")]
    assert not [p for p in left if p.name != "lock" and ".pipeline" not in p.parts], left
    assert not (killed / ".pipeline" / "lock").exists()
    manifest = json.loads((killed / "manifest.json").read_text())
    reference = json.loads((path / "manifest.json").read_text())
    assert {t: v["status"] for t, v in manifest["targets"].items()} == {
        t: v["status"] for t, v in reference["targets"].items()
    }
    files = {e["path"] for e in manifest["artifacts"]}
    assert files == {e["path"] for e in reference["artifacts"]}
    for entry in manifest["artifacts"]:
        assert sha256_file(killed / entry["path"]) == entry["sha256"], entry["path"]
    import onnx  # the same network (the file's metadata records when and by which command it was made)

    made = [onnx.load(str(b / "models/model.onnx")).graph.SerializeToString() for b in (killed, path)]
    assert made[0] == made[1]


def test_device_results_from_older_inputs_are_not_used(tmp_path: Path, bundle) -> None:  # noqa: ANN001
    """A device result imported for one ONNX is not taken for another: when the shared inputs change (here the
    calibration size, so a new Q/DQ model), the imported engine and results are refused and the target is pending."""
    path, _ = bundle
    copy = tmp_path / "stale"
    shutil.copytree(path, copy)
    jetson_result(copy)  # hand-made stand-ins (test doubles), as above
    assert statuses(run(copy))["jetson-trt-int8"] == "done"
    changed = run(copy, calib_images=6)  # a new INT8 ONNX: the engine and its results are now stale
    assert statuses(changed)["jetson-trt-int8"] == "pending on device"
    assert "calibrate" in changed.ran


def test_report_html_has_the_bundle_summary_and_pending_commands(bundle) -> None:  # noqa: ANN001
    """Issue 19 item 9: report.html, the file a lead opens, shows what report.md shows first: the bundle's table
    and, per pending target, the commands that finish it."""
    path, result = bundle
    page = (path / "report.html").read_text()
    assert "<h1>Deployment bundle</h1>" in page and "<table class='summary'>" in page
    for o in result.outcomes:
        assert f"<td>{o.target.name}</td>" in page
        for command in o.commands:
            assert f"<code>{html.escape(command)}</code>" in page, command
    assert page.index("Deployment bundle") < page.index("refinenet-deploy report</h1>")
    md = (path / "report.md").read_text()
    assert md.startswith("# Deployment bundle") and md.count("# refinenet-deploy report") == 1
