"""CLI: exit codes, one-line errors, no tracebacks, tables (typer's CliRunner, stderr kept separate)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch
from typer.testing import CliRunner

from refinenet_deploy import __version__
from refinenet_deploy.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout


def test_models_table_and_json() -> None:
    result = runner.invoke(app, ["models", "rf_lw*", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"rf_lw50", "rf_lw101", "rf_lw152", "rf_lw_mbv2"}
    assert rows["rf_lw50"]["parameters"] == 27_357_525
    assert abs(rows["rf_lw_mbv2"]["gmac"] - 8.58) < 0.01
    table = runner.invoke(app, ["models"])
    assert table.exit_code == 0 and "rf101_cascade2" in table.stdout


class _Exploit:
    def __reduce__(self):
        return (os.system, ("true",))


def test_hostile_checkpoint_exit_5_one_line(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": _Exploit()}))
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 5
    assert result.stderr.startswith("error: refusing to load evil.pth")
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_inspect_reports_arch(tmp_path: Path) -> None:
    path = tmp_path / "m.pth.tar"
    torch.save(
        {
            "segmenter": {
                f"module.{k}": v
                for k, v in __import__("refinenet_deploy.models", fromlist=["create_model"])
                .create_model("rf_lw_test", num_classes=4)
                .state_dict()
                .items()
            }
        },
        path,
    )
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["arch"] == "rf_lw_test" and info["num_classes"] == 4 and info["wrapper"] == "segmenter"


def test_missing_checkpoint_exit_5() -> None:
    result = runner.invoke(app, ["inspect", "does-not-exist.pth"])
    assert result.exit_code == 5 and "checkpoint not found" in result.stderr


def test_usage_error_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "x"), "--size", "big"])
    assert result.exit_code == 2


def test_data_synth_and_nonempty_output(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = runner.invoke(app, ["data", "synth", str(out), "--num", "3", "--size", "32x48", "--seed", "5"])
    assert result.exit_code == 0, result.stderr
    assert len(list((out / "JPEGImages").glob("*.jpg"))) == 3
    again = runner.invoke(app, ["data", "synth", str(out), "--num", "3"])
    assert again.exit_code == 2 and "not empty" in again.stderr


def test_doctor_json() -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0
    env = json.loads(result.stdout)
    assert env["torch"].startswith(torch.__version__.split("+")[0])


# --------------------------------------------------------------------------------------------- hostile inputs (#14)
def _qdq_onnx(path: Path, *, rank: int = 4, outputs: bool = True) -> Path:
    """A tiny hand-built ONNX: Q/DQ on a (1, 3, 32, 32) input (``rank`` 2: a (1, 3) input), no exporter needed."""
    import onnx
    from onnx import TensorProto, helper

    shape = [1, 3, 32, 32] if rank == 4 else [1, 3]
    inits = [
        helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
        helper.make_tensor("z", TensorProto.INT8, [], [0]),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"], name="q"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["logits"], name="dq"),
    ]
    outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)] if outputs else []
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)], outs, inits
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _one_line_error(result, code: int) -> str:  # noqa: ANN001
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("hint:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def test_usage_errors_are_one_line(capsys) -> None:  # noqa: ANN001
    from refinenet_deploy.cli.app import run

    for argv, needle in (
        (["calibrate"], "Missing argument"),
        (["calibrate", "m.onnx", "--data", "d", "-o", "o.onnx", "--num-images", "abc"], "--num-images"),
        (["calibrate", "--bogus"], "No such option"),
        (["train", "d", "-o", "out", "--lr", "nan"], "--lr"),
        (["export", "onnx", "c.pth", "-o", "c.onnx", "--batch", "0"], "--batch"),
    ):
        assert run(app, argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert run(app, ["export", "onnx", "--help"]) == 0
    assert "--input-size" in capsys.readouterr().out


def test_size_and_number_bounds_exit_2(tmp_path: Path) -> None:
    from refinenet_deploy.cli.options import parse_size
    from refinenet_deploy.errors import UsageError

    assert parse_size("32x48") == (32, 48) and parse_size("4096") == (4096, 4096)
    for bad in ("100000x100000", "8192x8192", "-5", "8x8", "0x64", "axb", "1x2x3"):
        try:
            parse_size(bad)
        except UsageError:
            continue
        raise AssertionError(bad)
    for argv in (
        ["data", "synth", str(tmp_path / "s"), "--size", "100000x100000"],
        ["data", "synth", str(tmp_path / "s"), "--num", "0"],
        ["export", "onnx", "c.pth", "-o", str(tmp_path / "c.onnx"), "--input-size", "100000x100000"],
        ["train", str(tmp_path), "-o", str(tmp_path / "r"), "--crop-size", "-5"],
        ["train", str(tmp_path), "-o", str(tmp_path / "r"), "--epochs", "0"],
        ["train", str(tmp_path), "-o", str(tmp_path / "r"), "--lr", "inf"],
        ["calibrate", "m.onnx", "--data", "d", "-o", "o.onnx", "--max-miou-drop", "nan"],
        ["calibrate", "m.onnx", "--data", "d", "-o", "o.onnx", "--seed", "-1"],
    ):
        assert runner.invoke(app, argv).exit_code == 2, argv
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


def test_corrupt_and_foreign_onnx_exit_5_naming_the_file(tmp_path: Path) -> None:
    good = _qdq_onnx(tmp_path / "q.onnx")
    cases = {
        "random.onnx": (os.urandom(4096), 5),
        "truncated.onnx": (good.read_bytes()[:40], 5),
        "empty.onnx": (b"", 5),
    }
    for name, (content, _code) in cases.items():
        (tmp_path / name).write_bytes(content)
    _qdq_onnx(tmp_path / "rank2.onnx", rank=2)
    _qdq_onnx(tmp_path / "noout.onnx", outputs=False)
    cases.update({"rank2.onnx": (None, 5), "noout.onnx": (None, 5)})
    for name, (_, code) in cases.items():
        out = tmp_path / f"{name}.int8.onnx"
        result = runner.invoke(app, ["calibrate", str(tmp_path / name), "--data", str(tmp_path), "-o", str(out)])
        assert name in _one_line_error(result, code)
        assert not out.exists()
    for sidecar, expect in (
        ("[1, 2]", "not an object"),
        ("{not json", "not valid JSON"),
        ('{"export_size": "big"}', "export_size"),
    ):
        (tmp_path / "q.meta.json").write_text(sidecar)
        result = runner.invoke(app, ["calibrate", str(good), "--data", str(tmp_path), "-o", str(tmp_path / "o.onnx")])
        assert expect in _one_line_error(
            result, 5
        )  # a corrupt sidecar is a bad model (5), an unknown schema a mismatch (7)


def test_calibrate_refuses_qdq_whatever_the_sidecar_says_and_output_equal_to_input(tmp_path: Path) -> None:
    model = _qdq_onnx(tmp_path / "q.onnx")
    (tmp_path / "q.meta.json").write_text(json.dumps({"precision": "fp32", "schema_version": 2}))
    before = model.read_bytes()
    result = runner.invoke(app, ["calibrate", str(model), "--data", str(tmp_path), "-o", str(tmp_path / "o.onnx")])
    assert "already quantized" in _one_line_error(result, 2)
    for out in (model, tmp_path / "q.meta.json"):
        target = out if out.suffix == ".onnx" else tmp_path / "q.onnx"
        result = runner.invoke(app, ["calibrate", str(model), "--data", str(tmp_path), "-o", str(target)])
        assert "would overwrite the input" in _one_line_error(result, 2)
    assert model.read_bytes() == before


def test_secondary_outputs_probed_before_work(tmp_path: Path) -> None:
    model = _qdq_onnx(tmp_path / "q.onnx")
    (tmp_path / "folder.json").mkdir()
    result = runner.invoke(
        app,
        [
            "build",
            "trt",
            str(model),
            "--int8",
            "--layer-report",
            str(tmp_path / "folder.json"),
            "-o",
            str(tmp_path / "m.engine"),
        ],
    )
    assert "--layer-report" in _one_line_error(result, 2)
    result = runner.invoke(
        app,
        [
            "build",
            "trt",
            str(model),
            "--int8",
            "--layer-report",
            str(tmp_path / "q.meta.json"),
            "-o",
            str(tmp_path / "m.engine"),
        ],
    )
    assert "would overwrite the input" in _one_line_error(result, 2)
    (tmp_path / "ir.bin").mkdir()
    result = runner.invoke(app, ["build", "openvino", str(model), "--int8", "-o", str(tmp_path / "ir.xml")])
    assert result.exit_code in (2, 4), result.stderr  # 4 only where openvino is not installed
    if result.exit_code == 2:
        assert "is a folder" in _one_line_error(result, 2)
    assert not (tmp_path / "m.engine").exists() and not (tmp_path / "ir.xml").exists()


def test_stale_staging_folders_of_dead_runs_are_removed_live_ones_kept(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    from refinenet_deploy.artifacts import OWNER_FILE, staged_artifact, write_json_atomic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    host = socket.gethostname()
    stale = tmp_path / ".m.export-dead"
    live = tmp_path / ".m.calib-live"
    foreign = tmp_path / ".m.trt-other"
    for folder, pid, where in ((stale, dead.pid, host), (live, os.getppid(), host), (foreign, dead.pid, "elsewhere")):
        folder.mkdir()
        (folder / "big.onnx").write_bytes(b"x" * 1000)
        (folder / OWNER_FILE).write_text(json.dumps({"tool": "refinenet-deploy", "pid": pid, "host": where}))
    stale_tmp = tmp_path / f".m.json.{dead.pid}.rfdeploy.tmp"
    stale_tmp.write_text("{")
    write_json_atomic(tmp_path / "other.json", {"a": 1})
    assert not stale.exists() and not stale_tmp.exists()
    assert live.exists() and foreign.exists()
    with staged_artifact(tmp_path / "m.onnx", "export") as stage:
        record = json.loads((stage.dir / OWNER_FILE).read_text())
        assert record["pid"] == os.getpid() and record["host"] == host
    assert not stage.dir.exists()


def test_checkpoint_values_and_metadata_checked_at_load(tmp_path: Path) -> None:
    from refinenet_deploy.models import create_model
    from refinenet_deploy.models.checkpoint import save_safetensors

    sd = create_model("rf_lw_test", num_classes=4).state_dict()
    key = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim == 4)
    cases = {
        "nan": ({**sd, key: torch.full_like(sd[key], float("nan"))}, {}, key),
        "int": ({**sd, key: sd[key].to(torch.int32)}, {}, key),
        "std0": (sd, {"normalization": {"mode": "imagenet", "mean": [0, 0, 0], "std": [0, 1, 1], "scale": 1}}, "std"),
        "stdneg": (
            sd,
            {"normalization": {"mode": "imagenet", "mean": [0, 0, 0], "std": [-1, 1, 1], "scale": 1}},
            "std",
        ),
        "unknown": (sd, {"normalization": "zscore"}, "zscore"),
    }
    for name, (state, meta, needle) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_safetensors(state, path, {"arch": "rf_lw_test", **meta})
        result = runner.invoke(app, ["inspect", str(path)])
        assert needle in _one_line_error(result, 5), name
    # a custom normalisation is what such metadata is for: accepted, and reported with its values
    custom = {"mode": "custom", "mean": [0.2, 0.3, 0.4], "std": [0.5, 0.6, 0.7], "scale": 1 / 255}
    path = tmp_path / "custom.safetensors"
    save_safetensors(sd, path, {"arch": "rf_lw_test", "normalization": custom})
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["normalization"] == custom
    # a missing classifier weight: reported missing, its bias not called mis-shaped
    clf = next(k for k in sd if k.endswith(".weight") and sd[k].shape[0] == 4 and sd[k].ndim == 4)
    path = tmp_path / "missing.safetensors"
    save_safetensors({k: v for k, v in sd.items() if k != clf}, path, {"arch": "rf_lw_test"})
    line = _one_line_error(runner.invoke(app, ["inspect", str(path), "--arch", "rf_lw_test"]), 5)
    assert "missing" in line and "mis-shaped" not in line


def test_train_resume_bad_state_and_no_empty_folder(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert runner.invoke(app, ["data", "synth", str(data), "--num", "4", "--size", "32x32"]).exit_code == 0
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"model": {}, "optimizer": {}}, out / "last.pt")
    args = ["train", str(data), "-o", str(out), "--arch", "rf_lw_mbv2_test", "--epochs", "1", "--batch-size", "2"]
    assert "'epoch' is missing" in _one_line_error(runner.invoke(app, [*args, "--resume"]), 5)
    (out / "last.pt").write_bytes(pickle.dumps({"model": _Exploit()}))
    line = _one_line_error(runner.invoke(app, [*args, "--resume"]), 5)
    assert "allow-list" in line and "weights_only" not in line
    missing = tmp_path / "new" / "run"
    bad = ["train", str(tmp_path / "nodata"), "-o", str(missing), "--epochs", "1"]
    assert runner.invoke(app, bad).exit_code == 5
    assert not (tmp_path / "new").exists()


def test_steps_line_counts_in_english() -> None:
    from refinenet_deploy.cli.app import steps_line

    assert steps_line(1, 4) == "1 step ran, 4 up to date"
    assert steps_line(0, 5) == "0 steps ran, 5 up to date"
    assert steps_line(7, 0) == "7 steps ran, 0 up to date"
