"""Session fixtures for the hostile-input corpus: one tiny model, built once, through the CLI itself.

``rf_lw_mbv2_test`` (6 classes, random weights) saved as safetensors with full metadata, exported with
``rfdeploy export onnx`` (static 48x48), a 4-image labelled synthetic set from ``rfdeploy data synth``, a Q/DQ INT8
ONNX from ``rfdeploy calibrate``, an OpenVINO IR, and bench/parity JSON for the report cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .corpus import Fixtures, build_fixtures


@pytest.fixture(scope="session")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return build_fixtures(tmp_path_factory.mktemp("hostile-fixtures"))


@pytest.fixture
def work(fx: Fixtures, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder holding a copy of every fixture file; the test runs with it as cwd."""
    dest = tmp_path / "w"
    shutil.copytree(fx.root, dest)
    monkeypatch.chdir(dest)
    return dest
