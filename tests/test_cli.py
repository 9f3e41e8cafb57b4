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
