"""Shared fixtures; skips hardware-marked tests when the hardware or package is absent."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

ASSETS = Path(__file__).resolve().parent / "assets"
INVENTORY = ASSETS / "refinenet-state-dict-keys.json"

_REQUIREMENTS = {
    "tensorrt": lambda: importlib.util.find_spec("tensorrt") is not None,
    "openvino": lambda: importlib.util.find_spec("openvino") is not None,
    "trt_rtx": lambda: importlib.util.find_spec("tensorrt_rtx") is not None,
    "gpu": lambda: torch.cuda.is_available(),
    "jetson": lambda: Path("/etc/nv_tegra_release").exists(),
    "dla": lambda: Path("/etc/nv_tegra_release").exists(),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, available in _REQUIREMENTS.items():
        if available():
            continue
        skip = pytest.mark.skip(reason=f"needs {marker}, not available on this machine")
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def inventory() -> dict[str, dict[str, list[int]]]:
    """Key -> shape inventory of five reference variants (21 classes), shipped with the tests."""
    return json.loads(INVENTORY.read_text())


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    torch.set_num_threads(int(os.environ.get("RFDEPLOY_TEST_THREADS", "2")))


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN202
    """Parity's reference cache goes to a temporary folder, never the user's ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
