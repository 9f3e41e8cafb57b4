"""The device-side install: `pip install refinenet-deploy` with the core dependencies only (no PyTorch, ModelOpt,
OpenVINO or TensorRT) runs `bench`, `parity` from a saved reference, `report` and `pipeline --resume`; a command that
needs an extra exits 4 naming it. Builds a wheel of this checkout, installs it into a fresh virtual environment
(core dependencies from the package index or the pip cache) and runs the flow there on a bundle made here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from refinenet_deploy.operations.pipeline import Pipeline, make_config

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
EXTRAS_ONLY = ("torch", "modelopt", "openvino", "nncf", "onnxsim", "tensorrt", "tensorrt_rtx", "matplotlib")


def _venv_with_core(root: Path) -> Path:
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
    )
    env_dir = root / "core-env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    wheel = next(wheels.glob("refinenet_deploy-*.whl"))
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True)
    if proc.returncode != 0:
        if "No matching distribution" in proc.stderr or "Could not fetch" in proc.stderr:
            pytest.skip(f"the package index is not reachable: {proc.stderr.strip().splitlines()[-1]}")
        raise AssertionError(proc.stderr[-3000:])
    return py


def test_core_install_runs_the_device_side_flow(tmp_path: Path) -> None:
    # a bundle made here, with PyTorch: one CPU target and the saved reference
    bundle = tmp_path / "bundle"
    settings = {
        "targets": "cpu-onnxruntime-fp32",
        "input_size": "64x64",
        "synth_val_images": 4,
        "warmup": 1,
        "iterations": 2,
    }
    first = Pipeline(make_config({}, settings), bundle).run()
    assert first.exit_code == 0 and first.outcomes[0].status == "done"

    py = _venv_with_core(tmp_path)
    exe = py.parent / "rfdeploy"
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    installed = {d["name"].lower() for d in json.loads(listed.stdout)}
    assert not installed & {"torch", "nvidia-modelopt", "openvino", "nncf", "onnxsim", "tensorrt", "matplotlib"}
    probe = f"import importlib.util as u; print([m for m in {EXTRAS_ONLY!r} if u.find_spec(m)])"
    assert subprocess.run([str(py), "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def rf(*args: str, cwd: Path = bundle) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)

    # the device-side flow, inside the bundle (relative paths)
    b = rf("bench", "models/model.onnx", "--warmup", "1", "--iterations", "2", "--json", "dev-bench.json")
    assert b.returncode == 0, b.stderr[-2000:]
    p = rf("parity", "reference.npz", "models/model.onnx", "--data", "data/val", "--json", "dev-parity.json")
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads((bundle / "dev-parity.json").read_text())["pixel_agreement"] > 0.99
    r = rf("report", "dev-bench.json", "dev-parity.json", "-o", "dev-report.md")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (bundle / "dev-report.md").is_file()

    # pipeline --resume redoes the target's parity and bench without PyTorch (their results removed here)
    shutil.rmtree(bundle / "targets" / "cpu-onnxruntime-fp32")
    res = rf("pipeline", "--resume", ".")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["targets"]["cpu-onnxruntime-fp32"]["status"] == "done"
    assert (bundle / "targets" / "cpu-onnxruntime-fp32" / "parity.json").is_file()

    # what needs an extra says which one, exit 4
    e = rf("export", "onnx", "checkpoint/rf_lw_mbv2_synth.safetensors", "-o", str(tmp_path / "x.onnx"))
    assert e.returncode == 4, (e.returncode, e.stderr)
    assert "refinenet-deploy[export]" in e.stderr and "Traceback" not in e.stderr
    assert not (tmp_path / "x.onnx").exists()
