"""Option types shared by several commands (``Annotated`` aliases so names and help never drift)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Arch = Annotated[str, typer.Option("--arch", help="Architecture name, or 'auto' to infer it from the checkpoint keys.")]
NumClasses = Annotated[
    int | None, typer.Option("--num-classes", min=1, help="Class count; default: read from the checkpoint.")
]
DataDir = Annotated[Path, typer.Argument(help="Dataset root: VOC or Cityscapes layout, or a folder of images.")]
Split = Annotated[str | None, typer.Option("--split", help="Dataset split (VOC/Cityscapes); default: val.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
Threads = Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for PyTorch.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def parse_size(value: str, what: str = "--input-size") -> tuple[int, int]:
    """'512x512' or '512' -> (height, width); a usage error (exit 2) naming the option otherwise."""
    from ..artifacts import parse_size as parse

    return parse(value, what)
