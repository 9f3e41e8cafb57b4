"""Option types shared by several commands (``Annotated`` aliases so names and help never drift)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from ..calibration.dataset import DEFAULT_CALIBRATION_IMAGES

# Bounds of the count options (exit 2 outside them, before any work).
MAX_IMAGES = 100_000  # --num-images, --val-images, --num (data synth)
MAX_THREADS = 1024
MAX_SEED = 2**32 - 1


def finite_float(
    minimum: float | None = None, maximum: float | None = None, *, open_min: bool = False
) -> Callable[[float | None], float | None]:
    """A Typer ``callback`` for a float option: refuses nan/inf and values outside [minimum, maximum] (``open_min``:
    (minimum, maximum]) with a one-line usage error (exit 2). None (option not given) passes."""
    low = "" if minimum is None else ("(" if open_min else "[") + f"{minimum:g}"
    high = "" if maximum is None else f"{maximum:g}]"
    interval = f"{low or '(-inf'}, {high or 'inf)'}"

    def check(value: float | None) -> float | None:
        if value is None:
            return None
        bad = not math.isfinite(value)
        bad = bad or (minimum is not None and (value < minimum or (open_min and value == minimum)))
        bad = bad or (maximum is not None and value > maximum)
        if bad:
            raise typer.BadParameter(f"must be a finite number in {interval}, got {value}")
        return value

    return check


def check_count(value: int, what: str, maximum: int, minimum: int = 1) -> int:
    """A count for library callers that bypass Typer: ``minimum..maximum`` or UsageError (exit 2)."""
    from ..errors import UsageError

    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise UsageError(f"{what} must be an integer {minimum}..{maximum}, got {value!r}")
    return value


Arch = Annotated[str, typer.Option("--arch", help="Architecture name, or 'auto' to infer it from the checkpoint keys.")]
NumClasses = Annotated[
    int | None, typer.Option("--num-classes", min=1, help="Class count; default: read from the checkpoint.")
]
DataDir = Annotated[Path, typer.Argument(help="Dataset root: VOC or Cityscapes layout, or a folder of images.")]
Split = Annotated[str | None, typer.Option("--split", help="Dataset split (VOC/Cityscapes); default: val.")]
Seed = Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Random seed.")]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        max=MAX_THREADS,
        help="CPU threads of the runtime that runs the model: PyTorch (set_num_threads), ONNX Runtime (intra-op), "
        "OpenVINO (INFERENCE_NUM_THREADS). Default: each library's own.",
    ),
]
NumImages = Annotated[
    int | None,
    typer.Option(
        "--num-images",
        "--calib-images",
        min=1,
        max=MAX_IMAGES,
        help=f"Calibration images sampled (default: {DEFAULT_CALIBRATION_IMAGES}, or the whole folder when smaller; "
        "the demo's INT8 drop measured flat from 16 to 200).",
    ),
]
ValData = Annotated[
    Path | None,
    typer.Option("--val-data", help="Images (with labels if available) for --max-miou-drop; default: --data."),
]
ValImages = Annotated[
    int, typer.Option("--val-images", min=1, max=MAX_IMAGES, help="Images evaluated for --max-miou-drop.")
]
Int8MinAgreement = Annotated[
    float | None,
    typer.Option(
        "--min-agreement",
        callback=finite_float(0.0, 100.0),
        help="INT8 self-check: min pixel agreement with the FP32 model on the calibration images, 0-1 or percent "
        "(default: the INT8 gate, 97 %); below it, exit 6 and nothing is written.",
    ),
]


JsonOut = Annotated[
    str | None,
    typer.Option(
        "--json",
        metavar="[PATH]",
        help="The result as JSON: alone (or '-') on stdout instead of the table; with PATH, written there.",
    ),
]


def parse_size(value: str, what: str = "--input-size") -> tuple[int, int]:
    """'512x512' or '512' -> (height, width); a usage error (exit 2) naming the option otherwise."""
    from ..artifacts import parse_hw
    from ..errors import UsageError

    try:
        return parse_hw(value)
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None
