"""``artifacts.parse_hw`` reads a size with neutral wording (ValueError); each caller names its own option or key,
so the bottom layer knows nothing of the command line and the user still sees one ``error:`` line naming it."""

from __future__ import annotations

import pytest

from refinenet_deploy.artifacts import MAX_PIXELS, MAX_SIDE, MIN_SIDE, parse_hw
from refinenet_deploy.backends.tensorrt.builder import parse_shapes
from refinenet_deploy.cli.options import parse_size
from refinenet_deploy.errors import UsageError
from refinenet_deploy.operations.pipeline.config import validate_settings

BAD = ("100000x100000", "8192x8192", "-5", "8x8", "0x64", "axb", "1x2x3", "", "x")


@pytest.mark.parametrize(
    ("text", "want"), [("32x48", (32, 48)), ("32,48", (32, 48)), ("32*48", (32, 48)), ("64", (64, 64))]
)
def test_spellings(text: str, want: tuple[int, int]) -> None:
    assert parse_hw(text) == want


def test_bounds_are_inclusive() -> None:
    assert parse_hw(f"{MIN_SIDE}x{MAX_SIDE}") == (MIN_SIDE, MAX_SIDE)
    side = int(MAX_PIXELS**0.5)
    assert parse_hw(str(side)) == (side, side)
    with pytest.raises(ValueError, match="MP"):
        parse_hw(f"{side + 1}x{side}")
    with pytest.raises(ValueError, match="each side"):
        parse_hw(f"{MIN_SIDE - 1}x{MIN_SIDE}")


@pytest.mark.parametrize("text", BAD)
def test_bad_sizes_are_a_value_error_naming_no_option(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_hw(text)
    message = str(info.value)
    assert not isinstance(info.value, UsageError) and "--" not in message and "input_size" not in message
    assert repr(text) in message or "MP" in message  # it says what was wrong with the value


@pytest.mark.parametrize("text", BAD)
def test_each_caller_names_its_option(text: str) -> None:
    with pytest.raises(ValueError) as plain:
        parse_hw(text)
    with pytest.raises(UsageError) as cli:
        parse_size(text, "--crop-size")
    assert str(cli.value) == f"--crop-size: {plain.value}" and cli.value.exit_code == 2
    with pytest.raises(UsageError) as config:
        validate_settings({"input_size": text}, "bundle.toml: ")
    assert str(config.value) == f"bundle.toml: input_size: {plain.value}"
    with pytest.raises(UsageError) as shapes:
        parse_shapes(f"{text}:64x64:128x128")
    assert str(shapes.value) == f"--shapes: {plain.value}"
