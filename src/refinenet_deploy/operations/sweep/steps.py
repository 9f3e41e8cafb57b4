"""The sweep's steps, in order: each declares its inputs, settings and outputs (its key), what it needs first,
and, where this machine cannot run it, why and the command that does it elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...artifacts import sidecar_path
from ..pipeline import capabilities as caps
from ..pipeline.config import TARGETS, Target
from . import build as _build
from .run import REFERENCE, Cell, SweepStep, unreadable_cell

if TYPE_CHECKING:
    from .run import Sweep

NEEDS_TORCH = "needs PyTorch (pip install 'refinenet-deploy[export]')"
QDQ_PRODUCER = "modelopt"  # as 'rfdeploy calibrate'; onnxruntime where modelopt is not installed


def plan_steps(sw: Sweep) -> list[SweepStep]:
    s, targets = sw.settings, sw.settings.target_list
    cells = sw.cells()
    steps = [_checkpoint_step(sw), _data_step(sw, "val", s.data, seed=s.seed + 7, split="val")]
    if any(t.precision == "int8" for t in targets) and s.calib_data is None:
        steps.append(_data_step(sw, "calib", None, seed=s.seed + 11, split="train"))
    steps.append(_export_step(sw, cells))
    if any(t.precision == "int8" and t.runtime != "openvino" for t in targets):
        steps.append(_calibrate_step(sw))
    for t in targets:
        if t.runtime == "openvino":
            steps.append(_openvino_step(sw, t))
    for cell in cells:
        if cell.target.engine:
            steps.append(_engine_step(sw, cell))
        elif cell.target.runtime == "openvino":
            steps.append(_reshape_step(sw, cell))
    steps.append(_cell_step(sw, reference_cell()))
    steps += [_cell_step(sw, cell) for cell in cells]
    return steps


def _reference_target() -> Target:
    return Target("cpu", "torch", "fp32", "PyTorch FP32 on this CPU at the data's full resolution (the reference)")


def _checkpoint_step(sw: Sweep) -> SweepStep:
    src = sw.source_checkpoint
    return SweepStep(
        "checkpoint",
        f"copy the checkpoint {src.name}",
        {"checkpoint": src},
        {},
        [sw.checkpoint],
        lambda: sw.copy_file(src, sw.checkpoint),
    )


def _data_step(sw: Sweep, name: str, source: str | None, *, seed: int, split: str) -> SweepStep:
    out = sw.p("data", name)
    if source is not None:
        src = Path(source)
        return SweepStep(
            f"data:{name}", f"copy the {name} images", {"data": src}, {}, [out], lambda: sw.copy_data(src, out)
        )
    num = sw.settings.val_images if name == "val" else sw.settings.calib_images
    settings = {"num": num, "seed": seed, "split": split, "size": list(_demo_size())}
    return SweepStep(
        f"data:{name}",
        f"synthesise {num} {name} scenes",
        {},
        settings,
        [out],
        lambda: sw.synth_data(out, num, seed, split),
    )


def _demo_size() -> tuple[int, int]:
    from .plan import DEMO_DATA_SIZE

    return DEMO_DATA_SIZE


def export_sizes(cells: list[Cell]) -> tuple[tuple[int, int], tuple[tuple[int, int], ...]]:
    """The export size (the largest swept, by pixels) and the other sizes it is verified at."""
    sizes = sorted({c.size for c in cells if c.size is not None}, key=lambda hw: (hw[0] * hw[1], hw))
    return sizes[-1], tuple(sizes[:-1])


def export_build(sw: Sweep, cells: list[Cell]) -> _build.BuildSpec:
    size, verify = export_sizes(cells)
    return _build.export_spec(
        sw.checkpoint, sw.onnx, export_size=size, verify_sizes=verify, data=sw.val_dir, rel=sw.rel, command=sw.command
    )


def _export_step(sw: Sweep, cells: list[Cell]) -> SweepStep:
    spec = export_build(sw, cells)
    size, verify = export_sizes(cells)
    return SweepStep(
        "export",
        f"export one dynamic-shape ONNX (verified at {len(verify) + 1} sizes)",
        {"checkpoint": sw.checkpoint, "val": sw.val_dir},
        {"dynamic": True, "export_size": list(size), "verify_sizes": [list(v) for v in verify]},
        [sw.onnx, sidecar_path(sw.onnx)],
        spec.run,
        needs=("checkpoint", "data:val"),
        blocked=None if caps.has_torch() else NEEDS_TORCH,
        commands=[spec.command],
    )


def calibrate_build(sw: Sweep) -> _build.BuildSpec:
    producer = QDQ_PRODUCER if caps.has_module("modelopt") else "onnxruntime"
    return _build.calibrate_spec(
        sw.onnx,
        sw.calib_dir,
        sw.onnx_int8,
        num_images=sw.settings.calib_images,
        producer=producer,
        rel=sw.rel,
        command=sw.command,
    )


def _calibrate_step(sw: Sweep) -> SweepStep:
    from ..calibrate import calibration_manifest_path

    spec = calibrate_build(sw)
    return SweepStep(
        "calibrate",
        "the Q/DQ INT8 ONNX (ONNX Runtime INT8 and TensorRT INT8 targets)",
        {"onnx": sw.onnx, "calib": sw.calib_dir},
        {"num_images": sw.settings.calib_images, "producer": spec.argv[spec.argv.index("--producer") + 1]},
        [sw.onnx_int8, sidecar_path(sw.onnx_int8), calibration_manifest_path(sw.onnx_int8)],
        spec.run,
        needs=("export", "data:calib"),
        commands=[spec.command],
    )


def openvino_build(sw: Sweep, t: Target) -> _build.BuildSpec:
    out = sw.artifact_for(t, None)
    calib = sw.calib_dir if t.precision == "int8" else None
    return _build.openvino_spec(
        sw.onnx,
        out,
        precision=t.precision,
        calib=calib,
        num_images=sw.settings.calib_images,
        rel=sw.rel,
        threads=sw.settings.threads,
        command=sw.command,
    )


def _openvino_step(sw: Sweep, t: Target) -> SweepStep:
    spec = openvino_build(sw, t)
    out = sw.artifact_for(t, None)
    inputs = {"onnx": sw.onnx, **({"calib": sw.calib_dir} if t.precision == "int8" else {})}
    settings: dict[str, Any] = {"precision": t.precision, "dynamic": True}
    if t.precision == "int8":
        settings["num_images"] = sw.settings.calib_images
    return SweepStep(
        f"build:{t.name}",
        f"one OpenVINO IR ({t.precision}, dynamic H/W) for every size",
        inputs,
        settings,
        [out, out.with_suffix(".bin"), sidecar_path(out)],
        spec.run,
        needs=("export", "data:calib"),
        blocked=None if caps.has_module("openvino") else "needs OpenVINO (pip install 'refinenet-deploy[openvino]')",
        commands=[spec.command],
    )


def _reshape_step(sw: Sweep, cell: Cell) -> SweepStep:
    t, ir = cell.target, sw.artifact_for(cell.target, None)
    out = sw.artifact_for(t, cell.size)
    spec = _build.static_ir_spec(ir, out, size=cell.size, rel=sw.rel, command=sw.command)
    return SweepStep(
        f"build:{cell.name}",
        f"the {t.precision} IR reshaped to {cell.size[0]}x{cell.size[1]} (static: measured faster than dynamic)",
        {"ir": ir, "bin": ir.with_suffix(".bin")},
        {"size": list(cell.size)},
        [out, out.with_suffix(".bin"), sidecar_path(out)],
        spec.run,
        needs=(f"build:{t.name}",),
        blocked=None if caps.has_module("openvino") else "needs OpenVINO (pip install 'refinenet-deploy[openvino]')",
        commands=[spec.command],
    )


def engine_build(sw: Sweep, cell: Cell) -> _build.BuildSpec:
    t = cell.target
    source = sw.onnx_int8 if t.precision == "int8" else sw.onnx
    return _build.engine_spec(
        source,
        sw.artifact_for(t, cell.size),
        precision=t.precision,
        size=cell.size,
        library="tensorrt-rtx" if t.device == "rtx" else "tensorrt",
        dla=t.runtime == "dla",
        rel=sw.rel,
        command=sw.command,
    )


def _engine_step(sw: Sweep, cell: Cell) -> SweepStep:
    spec = engine_build(sw, cell)
    out = sw.artifact_for(cell.target, cell.size)
    source = sw.onnx_int8 if cell.target.precision == "int8" else sw.onnx
    return SweepStep(
        f"build:{cell.name}",
        f"the engine for {cell.name} (one per size)",
        {"onnx": source},
        {"precision": cell.target.precision, "size": list(cell.size), "runtime": cell.target.runtime},
        [out, sidecar_path(out)],
        spec.run,
        needs=("calibrate",) if cell.target.precision == "int8" else ("export",),
        blocked=sw.here.why_cannot_build(cell.target),
        commands=[spec.command],
    )


def _cell_step(sw: Sweep, cell: Cell) -> SweepStep:
    t = cell.target
    artifact = sw.artifact_for(t, cell.size)
    device = caps.DEVICE_OF[t.device]
    if t.runtime == "torch":
        needs, blocked = ("checkpoint", "data:val"), None if caps.has_torch() else NEEDS_TORCH
    else:
        builder = {"onnxruntime": "calibrate" if t.precision == "int8" else "export"}
        needs = ("data:val", builder.get(t.runtime, f"build:{cell.name}"))
        blocked = sw.here.why_cannot_run(t)
    s = sw.settings
    return SweepStep(
        f"cell:{cell.name}",
        f"mIoU at label resolution and latency of {cell.name}",
        {"artifact": artifact, "val": sw.val_dir},
        {
            "size": None if cell.size is None else list(cell.size),
            "device": device,
            "val_images": s.val_images,
            "warmup": s.warmup,
            "max_warmup": s.max_warmup,
            "iterations": s.iterations,
            "threads": s.threads,
        },
        [sw.cell_json(cell)],
        lambda: sw.measure(cell, device),
        needs=needs,
        blocked=blocked,
        unreadable=lambda: unreadable_cell(sw.cell_json(cell)),
    )


def reference_cell() -> Cell:
    return Cell(TARGETS.get(REFERENCE) or _reference_target(), "full", None)


__all__ = ["export_sizes", "plan_steps", "reference_cell"]
