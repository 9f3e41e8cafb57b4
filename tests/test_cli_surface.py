"""One surface across commands (issue 19 items 12, 14, 16): names and defaults, where output goes, width."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from refinenet_deploy.artifacts import parse_size
from refinenet_deploy.calibration.dataset import DEFAULT_CALIBRATION_IMAGES
from refinenet_deploy.cli import app
from refinenet_deploy.operations.pipeline.config import DEFAULT_CALIB_IMAGES, PipelineConfig


def _commands() -> dict[str, Any]:
    """Every leaf command (Click objects, as Typer builds them) by its full name ("build trt")."""
    found: dict[str, Any] = {}

    def walk(cmd: Any, prefix: str) -> None:  # noqa: ANN401
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            found[prefix] = cmd

    walk(typer.main.get_command(app), "")
    return found


def _option(command: str, name: str) -> Any:  # noqa: ANN401
    return next(p for p in _commands()[command].params if p.name == name and getattr(p, "opts", None))


def test_one_calibration_size_default_everywhere() -> None:
    assert DEFAULT_CALIBRATION_IMAGES == DEFAULT_CALIB_IMAGES == PipelineConfig().calib_images == 128
    for command, name in (("calibrate", "num_images"), ("build openvino", "num_images"), ("pipeline", "calib_images")):
        help_text = _option(command, name).help or ""
        assert "128" in help_text and "past the knee" not in help_text, (command, help_text)
        assert "300" not in help_text


def test_calibration_options_take_both_spellings() -> None:
    assert {"--calib-images", "--num-images"} <= set(_option("pipeline", "calib_images").opts)
    assert {"--calib-images", "--num-images"} <= set(_option("calibrate", "num_images").opts)
    assert {"--data", "--calib-data"} <= set(_option("calibrate", "data").opts)


def test_threads_help_names_every_runtime_it_sets() -> None:
    text = _option("bench", "threads").help or ""
    assert "PyTorch" in text and "ONNX Runtime" in text and "OpenVINO" in text


@pytest.mark.parametrize("text", ["128,128", "128x128", "128", " 128 , 128 "])
def test_input_size_spellings(text: str) -> None:
    assert parse_size(text.replace(" ", "")) == (128, 128)
