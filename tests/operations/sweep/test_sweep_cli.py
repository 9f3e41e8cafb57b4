"""``rfdeploy sweep`` on labelled fakes: the table within 80 columns, --resume, --json, bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.operations.sweep.fakes import FakeBuilds, FakeMeasure, cpu_only
from typer.testing import CliRunner

from refinenet_deploy.cli import app
from refinenet_deploy.operations.pipeline import capabilities as caps


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> FakeMeasure:
    FakeBuilds(monkeypatch)
    monkeypatch.setattr(caps.Capabilities, "detect", classmethod(lambda cls: cpu_only()))
    return FakeMeasure(monkeypatch)


def test_table_fits_80_columns_and_resume_skips(tmp_path: Path, fakes: FakeMeasure, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("COLUMNS", "80")
    folder = tmp_path / "sw"
    argv = ["sweep", "--sizes", "96,192", "--targets", "cpu-openvino-int8,jetson-trt-int8", "-o", str(folder)]
    res = CliRunner().invoke(app, [*argv, "--max-latency-ms", "33"])
    assert res.exit_code == 0, res.output
    table = [line for line in res.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table)
    (row,) = [line for line in table if "jetson-trt-int8@96x128" in line]
    assert row.rstrip("│ ").endswith("P")  # pending, said under the table
    assert "P pending on a device" in res.stdout
    words = [line for line in res.stdout.splitlines() if not line.lstrip().startswith(("rfdeploy ", "# "))]
    assert all(len(line) <= 80 for line in words)  # commands to copy stay one line each
    assert "rfdeploy sweep . --resume" in res.stdout
    assert "best mIoU with p50 <= 33 ms" in res.stdout

    calls = len(fakes.calls)
    res = CliRunner().invoke(app, ["sweep", str(folder), "--resume", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema"] == "refinenet-deploy/sweep" and doc["steps"]["ran"] == []
    assert len(fakes.calls) == calls  # nothing measured again


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "abc"], "--sizes"),
        (["--targets", "cpu-nope"], "unknown target"),
        (["--max-latency-ms", "-1"], "--max-latency-ms"),
        (["--resume"], "--resume needs the sweep folder"),
    ],
)
def test_bad_input_is_one_error_line_exit_2(argv: list[str], message: str, tmp_path: Path, fakes: FakeMeasure) -> None:
    res = CliRunner().invoke(
        app, ["sweep", *argv, "-o", str(tmp_path / "x")] if argv != ["--resume"] else ["sweep", *argv]
    )
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and message in lines[0]
    assert "Traceback" not in res.output
    assert not fakes.calls
