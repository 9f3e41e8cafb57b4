"""The plan: the steps a bundle needs, in order. Shared steps (checkpoint, data, export, reference, FP16 and Q/DQ
ONNX) here; each target's steps and the PyTorch baselines in ``device_steps``.

Each step declares its inputs, settings and outputs (its key); the settings of a step stay what earlier versions
recorded, so an unchanged bundle stays up to date.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...artifacts import read_metadata, sidecar_path, staged_dir
from ...errors import UsageError
from . import capabilities as caps
from . import device_steps as dev
from .config import CALIB_GUIDANCE, FEW_CALIB_IMAGES, PipelineConfig
from .layout import BASELINE, PREDICTOR, BundleLayout
from .spec import CALIBRATION_FLAGS, POSITIONAL, CallSpec, Flag, Step

Progress = Callable[[str], None]
NEEDS_TORCH = "needs PyTorch (pip install 'refinenet-deploy[export]')"


@dataclass(frozen=True)
class StepContext:
    """What every step factory reads: the bundle's layout (and its config), this machine, and the callbacks."""

    layout: BundleLayout
    here: caps.Capabilities
    command: str = ""
    progress: Progress = lambda _msg: None  # noqa: E731
    warn: Progress = lambda _msg: None  # noqa: E731

    @property
    def config(self) -> PipelineConfig:
        return self.layout.config


def plan(ctx: StepContext) -> list[Step]:
    cfg, targets = ctx.config, ctx.config.target_list
    steps = [checkpoint_step(ctx)]
    steps.append(data_step(ctx, "val", cfg.data, cfg.synth_val_images, seed=cfg.seed + 7, split="val"))
    if any(t.precision == "int8" for t in targets) and cfg.calib_data is None:
        steps.append(data_step(ctx, "calib", None, cfg.synth_calib_images, seed=cfg.seed + 11, split="train"))
    steps += [export_step(ctx), reference_step(ctx)]
    if any(t.precision == "fp16" and t.device in ("gpu", "jetson") and t.engine for t in targets):
        steps.append(fp16_step(ctx))
    if any(t.precision == "int8" and t.runtime != "openvino" for t in targets):
        steps.append(calibrate_step(ctx))
    for t in targets:
        steps += dev.target_steps(ctx, t)
    names = {t.name for t in targets}
    if any(t.precision == "int8" and t.device != "cpu" for t in targets) and PREDICTOR not in names:
        steps.append(dev.predict_step(ctx))
    if caps.has_torch():
        steps.append(dev.bench_step(ctx, BASELINE, ctx.layout.checkpoint, device="cpu"))
    if any(t.device == "gpu" for t in targets):
        steps += [dev.gpu_baseline_step(ctx, name) for name in caps.GPU_BASELINES]
    return steps


def copy_checkpoint(src: Path, dest: Path) -> None:
    if not src.is_file():
        raise UsageError(f"checkpoint not found: {src}")
    with staged_dir(dest.parent, "copy") as tmp:
        tmp.mkdir()
        if dest.parent.is_dir():
            for f in dest.parent.iterdir():
                if f.name != dest.name:
                    shutil.copy2(f, tmp / f.name)
        shutil.copyfile(src, tmp / dest.name)


def checkpoint_step(ctx: StepContext) -> Step:
    src, dest = ctx.layout.source_checkpoint, ctx.layout.checkpoint
    return Step(
        "checkpoint",
        f"copy the checkpoint {src.name} into the bundle",
        {"checkpoint": src},
        {},
        [dest],
        lambda: copy_checkpoint(src, dest),
    )


def data_step(ctx: StepContext, name: str, source: str | None, num: int, *, seed: int, split: str) -> Step:
    out = ctx.layout.p("data", name)
    h, w = ctx.config.input_size
    if source is not None:
        src = Path(source)

        def copy() -> None:
            if not src.is_dir():
                raise UsageError(f"--data: not a folder: {src}")
            from ...data.datasets import copy_data_folder

            with staged_dir(out, "copy") as tmp:
                skipped = copy_data_folder(src, tmp)  # what the readers read; the rest skipped with a warning
            if skipped:
                ctx.warn(
                    f"{name} data: skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} that "
                    "are not regular files (see the warnings above)"
                )

        return Step(f"data:{name}", f"copy the {name} images into the bundle", {"data": src}, {}, [out], copy)

    def synth() -> None:
        from ...data.synth import write_synth_dataset

        with staged_dir(out, "synth") as tmp:
            write_synth_dataset(tmp, num, h, w, seed, split=split)

    settings = {"num": num, "size": [h, w], "seed": seed, "split": split}
    return Step(f"data:{name}", f"synthesise {num} {name} scenes ({h}x{w}, seed {seed})", {}, settings, [out], synth)


def export_step(ctx: StepContext) -> Step:
    lay = ctx.layout
    h, w = ctx.config.input_size
    settings = {"arch": ctx.config.arch, "input_size": [h, w], "simplify": "auto", "verify_images": 4}

    def run() -> dict[str, Any]:
        from ...backends.torch.exporter import ExportSpec
        from ..export import export_onnx

        spec = ExportSpec(
            arch=ctx.config.arch,
            input_size=(h, w),
            data=str(lay.val_dir),
            trt_check=False,  # the pipeline builds its engines itself
        )
        export_onnx(lay.checkpoint, lay.onnx, spec, command=ctx.command)
        return {}

    return Step(
        "export",
        f"export the ONNX at {h}x{w}, verified against PyTorch",
        {"checkpoint": lay.checkpoint, "val": lay.val_dir},
        settings,
        [lay.onnx, sidecar_path(lay.onnx)],
        run,
        blocked=None if caps.has_torch() else NEEDS_TORCH,
    )


def reference_step(ctx: StepContext) -> Step:
    lay = ctx.layout

    def run() -> dict[str, Any]:
        from ..parity import save_reference

        save_reference(
            lay.checkpoint,
            lay.val_dir,
            lay.reference,
            num_images=ctx.config.val_images,
            input_size=ctx.config.input_size,
            reference_logits=True,
        )
        return {}

    return Step(
        "reference",
        "the PyTorch reference on the validation images (computed once; parity on devices reads it)",
        {"checkpoint": lay.checkpoint, "val": lay.val_dir},
        {**dev.parity_settings(ctx), "input_size": list(ctx.config.input_size)},
        [lay.reference],
        run,
        blocked=None if caps.has_torch() else NEEDS_TORCH,
    )


def fp16_step(ctx: StepContext) -> Step:
    lay = ctx.layout

    def run() -> dict[str, Any]:
        from ...artifacts import sidecar, staged_artifact
        from ...enums import Precision
        from ..build_trt import embed_metadata, fp16_onnx

        with staged_artifact(lay.onnx_fp16, "fp16") as stage:
            record = fp16_onnx(lay.onnx, stage.model)
            meta = sidecar(
                "onnx", Precision.FP16, source=read_metadata(lay.onnx), command=ctx.command, conversion=record
            )
            embed_metadata(stage.model, meta)
            stage.commit(meta)
        return record

    return Step(
        "onnx:fp16",
        "the FP16 ONNX (FP32 inputs/outputs) that TensorRT builds strongly typed",
        {"onnx": lay.onnx},
        {},
        [lay.onnx_fp16, sidecar_path(lay.onnx_fp16)],
        run,
        blocked=None if caps.has_module("onnxconverter_common") else "needs onnxconverter-common ([export])",
    )


def _calibrate_onnx(*args: Any, **kwargs: Any) -> Any:
    from ..calibrate import calibrate_onnx

    return calibrate_onnx(*args, **kwargs)


def calibrate_spec(ctx: StepContext) -> CallSpec:
    cfg, lay = ctx.config, ctx.layout
    kwargs = {
        "num_images": cfg.calib_images,
        "producer": cfg.calib_producer,
        "method": cfg.calib_method,
        "min_agreement": cfg.min_agreement,  # the self-check uses the gate the user set, if any
        **dev.fallback_kwargs(ctx),
    }
    return CallSpec(
        _calibrate_onnx,
        ("calibrate",),
        (lay.onnx, lay.calib_dir, lay.onnx_int8),
        (POSITIONAL, Flag("--data"), dev.OUTPUT),
        kwargs,
        CALIBRATION_FLAGS,
        local={"command": ctx.command, "report": ctx.progress},
        local_reasons={"command": dev.PROVENANCE, "report": "progress messages, shown by the CLI itself"},
    )


def calibrate_step(ctx: StepContext) -> Step:
    cfg, lay = ctx.config, ctx.layout
    spec = calibrate_spec(ctx)

    def run() -> dict[str, Any]:
        if cfg.calib_images < FEW_CALIB_IMAGES:
            ctx.warn(f"{cfg.calib_images} calibration images (default {FEW_CALIB_IMAGES}): {CALIB_GUIDANCE}")
        spec.call()
        return {}

    from ..calibrate import calibration_manifest_path

    what = f"{cfg.calib_producer}, {cfg.calib_method or 'its default method'}, {cfg.calib_images} images"
    if cfg.calib_max_miou_drop is not None:
        what += f", float fallback to at most {cfg.calib_max_miou_drop:g} pt"
    return Step(
        "calibrate",
        f"the Q/DQ INT8 ONNX ({what})",
        {"onnx": lay.onnx, "calib": lay.calib_dir, **dev.fallback_inputs(ctx)},
        {
            "num_images": cfg.calib_images,
            "producer": cfg.calib_producer,
            "method": cfg.calib_method,
            "min_agreement": cfg.min_agreement,
            **dev.fallback_settings(ctx),
        },
        [lay.onnx_int8, sidecar_path(lay.onnx_int8), calibration_manifest_path(lay.onnx_int8)],
        run,
        blocked=None if caps.has_module("modelopt") or cfg.calib_producer == "onnxruntime" else "needs nvidia-modelopt",
        commands=[spec.command(lay.rel)],
        spec=spec,
    )
