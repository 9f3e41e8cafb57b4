"""``rfdeploy models, doctor, inspect: what the zoo and this machine have."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import Table, app, emit_json, handle_errors, out
from .options import Arch, JsonOut, NumClasses, parse_size


# --------------------------------------------------------------------------------------------- models
@app.command("models")
@handle_errors
def models_cmd(
    pattern: Annotated[str, typer.Argument(help="Shell-style filter, e.g. 'rf_lw*'.")] = "*",
    size: Annotated[str, typer.Option("--size", help="Input size for the GMAC column, HxW.")] = "512x512",
    num_classes: Annotated[int, typer.Option("--num-classes", min=1, help="Classes for the counts.")] = 21,
    all_: Annotated[bool, typer.Option("--all", help="Include the tiny *_test models.")] = False,
    as_json: JsonOut = None,
) -> None:
    """List the model zoo: name, family, backbone, parameters, GMAC.

    \b
    Example: rfdeploy models 'rf_lw*' --size 1024x2048
    """
    from ..models.complexity import describe_models

    h, w = parse_size(size, "--size")
    rows = describe_models(pattern, height=h, width=w, num_classes=num_classes, include_test=all_)
    if emit_json([r.__dict__ for r in rows], as_json):
        return
    table = Table(title=f"RefineNet model zoo ({num_classes} classes, GMAC at {h}x{w})")
    table.add_column("name", no_wrap=True)
    table.add_column("family", no_wrap=True)
    table.add_column("backbone", no_wrap=True)
    table.add_column("parameters", justify="right", no_wrap=True)
    table.add_column("GMAC", justify="right", no_wrap=True)
    wide = out.width >= 110
    if wide:
        table.add_column("description", overflow="fold")
    for r in rows:
        cells = [r.name, r.family, r.backbone, f"{r.parameters:,}", f"{r.gmac:.2f}"]
        table.add_row(*cells, *([r.description] if wide else []))
    out.print(table)


# --------------------------------------------------------------------------------------------- doctor
@app.command("doctor")
@handle_errors
def doctor_cmd(as_json: JsonOut = None) -> None:
    """Report the environment: Python, PyTorch, ONNX, runtimes, TensorRT libraries and CPU features.

    \b
    Example: rfdeploy doctor --json
    """
    from ..operations.doctor import diagnose

    env = diagnose()
    if emit_json(env, as_json):
        return
    table = Table(title="rfdeploy doctor", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for key, value in env.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    out.print(table)


# --------------------------------------------------------------------------------------------- inspect
@app.command("inspect")
@handle_errors
def inspect_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint file (.pth, .pth.tar, .pt, .safetensors).")],
    arch: Arch = "auto",
    num_classes: NumClasses = None,
    as_json: JsonOut = None,
) -> None:
    """Load a checkpoint strictly and say what it is: architecture, classes, wrapper, SHA-256.

    \b
    Example: rfdeploy inspect rf_lw50_voc.pth.tar
    """
    from ..models import load_model

    loaded = load_model(checkpoint, arch=arch, num_classes=num_classes)
    info = {
        "checkpoint": str(checkpoint),
        "arch": loaded.arch,
        "num_classes": loaded.num_classes,
        "class_names": list(loaded.class_names) if loaded.class_names else None,
        "normalization": loaded.normalization.to_dict(),
        "wrapper": loaded.checkpoint.wrapper if loaded.checkpoint else None,
        "sha256": loaded.checkpoint.sha256 if loaded.checkpoint else None,
        "tensors": len(loaded.checkpoint.state_dict) if loaded.checkpoint else None,
    }
    if emit_json(info, as_json):
        return
    table = Table(title=f"{checkpoint.name}: loads strictly", show_header=False)
    for key, value in info.items():
        table.add_row(key, str(value))
    out.print(table)
