"""``rfdeploy pipeline`` refusals that must happen before anything is written: bad inputs exit with their code
and leave no bundle behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from refinenet_deploy.cli import app


def _run(tmp_path: Path, *argv: str):  # noqa: ANN202
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        return CliRunner().invoke(app, ["pipeline", *argv])
    finally:
        os.chdir(cwd)


def test_a_corrupt_checkpoint_is_refused_before_the_bundle_exists(tmp_path: Path) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    res = _run(tmp_path, "--checkpoint", "junk.safetensors", "-o", "b")
    assert res.exit_code == 5 and res.stderr.startswith("error: cannot read safetensors file junk.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.safetensors"]


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (("--resume", "nobundle"), 5, "no such bundle folder"),
        (("missing.toml",), 5, "config file not found: missing.toml"),
        (("--checkpoint", "nope.pth"), 5, "--checkpoint nope.pth: not found"),
        (("--targets", "cpu,warp-drive"), 2, "unknown target 'warp-drive'"),
        (("--input-size", "100000x100000"), 2, "16..8192"),
        (("--calib-images", "0"), 2, "--calib-images"),
        (("-o", "afile"), 2, "is a file, not a folder"),
    ],
)
def test_refusals_exit_with_their_code_and_write_nothing(tmp_path: Path, argv, code, words) -> None:  # noqa: ANN001
    (tmp_path / "afile").write_text("x")
    res = _run(tmp_path, *argv)
    assert res.exit_code == code, res.stderr
    assert res.stderr.startswith("error: ") and words in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_bundle_inside_its_data_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "ck.safetensors").write_bytes(b"never read: refused before")
    res = _run(tmp_path, "--checkpoint", "ck.safetensors", "--data", "d", "-o", "d/bundle")
    assert res.exit_code == 2 and "inside the input folder d" in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ck.safetensors", "d"]
