"""The demo checkpoint is package data: inside the package, listed in pyproject's package-data, so a wheel has it."""

from __future__ import annotations

import sys
from pathlib import Path

import refinenet_deploy
from refinenet_deploy.operations.pipeline.run import DEMO_CHECKPOINT  # the public path, re-exported from layout

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[3]


def test_demo_checkpoint_ships_inside_the_package() -> None:
    package = Path(refinenet_deploy.__file__).resolve().parent
    assert DEMO_CHECKPOINT.is_file() and DEMO_CHECKPOINT.resolve().is_relative_to(package)
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    rel = DEMO_CHECKPOINT.resolve().relative_to(package)
    assert any(rel.match(pattern) for pattern in data["refinenet_deploy"]), data
    # the checkout's demo/ path (README, make demo) still names the same file
    assert (ROOT / "demo" / DEMO_CHECKPOINT.name).resolve() == DEMO_CHECKPOINT.resolve()
