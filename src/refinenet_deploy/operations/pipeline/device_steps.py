"""The steps of one target (build, parity, bench) and the same-GPU PyTorch baselines, each declared once as a
``CallSpec``: the library call that runs it here and the command printed for the device are generated from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...artifacts import sidecar_path, write_json_atomic
from . import capabilities as caps
from .config import TARGETS, Target
from .outcomes import gates_for
from .spec import (
    BENCH_FLAGS,
    BUILD_TRT_FLAGS,
    CALIBRATION_FLAGS,
    PARITY_FLAGS,
    POSITIONAL,
    CallSpec,
    Flag,
    Step,
)

if TYPE_CHECKING:
    from .steps import StepContext

OUTPUT = Flag("-o")
PROVENANCE = "the provenance string recorded in the sidecar (the CLI records its own command line)"


# the library functions, imported when a step runs (a plan imports no framework)
def _build_engine(*args: Any, **kwargs: Any) -> Any:
    from ..build_trt import build_engine

    return build_engine(*args, **kwargs)


def _convert_openvino(*args: Any, **kwargs: Any) -> Any:
    from ..build_openvino import convert_openvino

    return convert_openvino(*args, **kwargs)


def _validate_parity(*args: Any, **kwargs: Any) -> Any:
    from ..parity import validate_parity

    return validate_parity(*args, **kwargs)


def _benchmark(*args: Any, **kwargs: Any) -> Any:
    from ..bench import benchmark

    return benchmark(*args, **kwargs)


def fallback_kwargs(ctx: StepContext) -> dict[str, Any]:
    """The accuracy-aware fallback's keywords (calibrate, OpenVINO INT8), when a budget is set."""
    cfg = ctx.config
    if cfg.calib_max_miou_drop is None:
        return {}
    return {
        "max_miou_drop": cfg.calib_max_miou_drop,
        "val_data": ctx.layout.calib_val_dir,
        "val_images": cfg.calib_val_images,
    }


def fallback_settings(ctx: StepContext) -> dict[str, Any]:
    cfg = ctx.config
    if cfg.calib_max_miou_drop is None:
        return {}
    return {"max_miou_drop": cfg.calib_max_miou_drop, "val_images": cfg.calib_val_images}


def fallback_inputs(ctx: StepContext) -> dict[str, Path]:
    return {"calib_val": ctx.layout.calib_val_dir} if ctx.config.calib_max_miou_drop is not None else {}


def parity_settings(ctx: StepContext) -> dict[str, Any]:
    return {"num_images": ctx.config.val_images, "scales": [1.0], "flip": False}


# --------------------------------------------------------------------------------------------- specs
def trt_spec(ctx: StepContext, t: Target) -> CallSpec:
    lay = ctx.layout
    kwargs: dict[str, Any] = {
        "precision": t.precision,
        "library": "tensorrt-rtx" if t.device == "rtx" else "tensorrt",
    }
    if t.runtime == "dla":
        kwargs.update(dla_core=0, gpu_fallback=True, input_size=ctx.config.input_size)
    args = (lay.engine_source(t), lay.artifact_for(t))
    spec = CallSpec(_build_engine, ("build", "trt"), args, (POSITIONAL, OUTPUT), kwargs, BUILD_TRT_FLAGS)
    return _with_local(spec, command=(spec.command(lay.rel), PROVENANCE))


def openvino_spec(ctx: StepContext, t: Target) -> CallSpec:
    cfg, lay = ctx.config, ctx.layout
    kwargs: dict[str, Any] = {"precision": t.precision}
    if t.precision == "int8":  # the self-check uses the gate the user set, if any
        kwargs["data"] = lay.calib_dir
        kwargs["num_images"] = cfg.calib_images
        kwargs["min_agreement"] = gates_for(cfg, t).min_agreement if cfg.min_agreement is not None else None
        kwargs.update(fallback_kwargs(ctx))
    args = (lay.onnx, lay.artifact_for(t))
    spec = CallSpec(_convert_openvino, ("build", "openvino"), args, (POSITIONAL, OUTPUT), kwargs, CALIBRATION_FLAGS)
    return _with_local(spec, command=(ctx.command, PROVENANCE))


def parity_spec(ctx: StepContext, t: Target | None, artifact: Path, out: Path, device: str) -> CallSpec:
    """Parity of ``artifact`` against the saved reference, judged with the bundle's gates (``t`` None: the CPU
    prediction of the device INT8 targets)."""
    cfg, lay = ctx.config, ctx.layout
    kwargs: dict[str, Any] = {"num_images": cfg.val_images}
    if t is not None:
        kwargs.update(caps.parity_device_kwargs(t, device))
    kwargs.update(max_miou_drop=cfg.max_miou_drop, min_agreement=cfg.min_agreement)  # the gates travel with it
    args, arg_flags = (lay.reference, artifact, lay.val_dir), (POSITIONAL, POSITIONAL, Flag("--data"))
    return CallSpec(_validate_parity, ("parity",), args, arg_flags, kwargs, PARITY_FLAGS, cli_only=("--json", out))


def bench_spec(ctx: StepContext, artifact: Path, out: Path, device: str, options: dict[str, Any]) -> CallSpec:
    cfg = ctx.config
    kwargs = {"device": device, "input_size": cfg.input_size, **options}
    kwargs.update(warmup=cfg.warmup, iterations=cfg.iterations)
    return CallSpec(_benchmark, ("bench",), (artifact,), (POSITIONAL,), kwargs, BENCH_FLAGS, cli_only=("--json", out))


def _with_local(spec: CallSpec, **local: tuple[Any, str]) -> CallSpec:
    from dataclasses import replace

    return replace(
        spec,
        local={k: v for k, (v, _) in local.items()},
        local_reasons={k: why for k, (_, why) in local.items()},
    )


# --------------------------------------------------------------------------------------------- steps
def target_steps(ctx: StepContext, t: Target) -> list[Step]:
    steps: list[Step] = []
    artifact = ctx.layout.artifact_for(t)
    if t.runtime == "openvino":
        steps.append(openvino_step(ctx, t))
    elif t.engine:
        steps.append(trt_step(ctx, t))
    device = caps.DEVICE_OF[t.device]
    steps.append(parity_step(ctx, t, artifact, device))
    steps.append(bench_step(ctx, t.name, artifact, device=device, target=t))
    return steps


def _run_spec(spec: CallSpec) -> dict[str, Any]:
    spec.call()
    return {}


def openvino_step(ctx: StepContext, t: Target) -> Step:
    cfg, lay = ctx.config, ctx.layout
    out = lay.artifact_for(t)
    spec = openvino_spec(ctx, t)
    inputs = {"onnx": lay.onnx}
    settings: dict[str, Any] = {"precision": t.precision}
    if t.precision == "int8":
        inputs["calib"] = lay.calib_dir
        settings["num_images"] = cfg.calib_images
        settings["min_agreement"] = cfg.min_agreement
        settings.update(fallback_settings(ctx))
        inputs.update(fallback_inputs(ctx))
    return Step(
        f"build:{t.name}",
        f"build the OpenVINO IR ({t.precision})",
        inputs,
        settings,
        [out, out.with_suffix(".bin"), sidecar_path(out)],
        lambda: _run_spec(spec),
        target=t.name,
        blocked=None if caps.has_module("openvino") else "needs OpenVINO (pip install 'refinenet-deploy[openvino]')",
        commands=[spec.command(lay.rel)],
        spec=spec,
    )


def trt_step(ctx: StepContext, t: Target) -> Step:
    lay = ctx.layout
    out, spec = lay.artifact_for(t), trt_spec(ctx, t)
    return Step(
        f"build:{t.name}",
        f"build the {'TensorRT-RTX' if t.device == 'rtx' else 'TensorRT'} engine ({t.precision})",
        {"onnx": lay.engine_source(t)},
        {"precision": t.precision, "runtime": t.runtime, "device": t.device},
        [out, sidecar_path(out)],
        lambda: _run_spec(spec),
        target=t.name,
        blocked=ctx.here.why_cannot_build(t),
        commands=[spec.command(lay.rel)],
        spec=spec,
    )


def write_parity(ctx: StepContext, spec: CallSpec, artifact: Path, out: Path, target: str | None) -> dict[str, Any]:
    """Run a parity spec and write its result into the bundle, paths relative to it."""
    lay = ctx.layout
    report = spec.call()
    doc = report.to_dict()
    doc["artifact"] = lay.rel(artifact)
    doc["data"] = lay.rel(lay.val_dir)
    if isinstance(doc.get("reference"), dict) and doc["reference"].get("path"):
        doc["reference"]["path"] = lay.rel(Path(doc["reference"]["path"]))
    if target is not None:
        doc["target"] = target
    write_json_atomic(out, doc)
    return {"passed": report.passed}


def parity_step(ctx: StepContext, t: Target, artifact: Path, device: str) -> Step:
    lay = ctx.layout
    out = lay.parity_json(t.name)
    spec = parity_spec(ctx, t, artifact, out, device)
    return Step(
        f"parity:{t.name}",
        "parity against the PyTorch reference",
        {"reference": lay.reference, "artifact": artifact, "val": lay.val_dir},
        {**parity_settings(ctx), "gates": [ctx.config.max_miou_drop, ctx.config.min_agreement]},
        [out],
        lambda: write_parity(ctx, spec, artifact, out, t.name),
        target=t.name,
        blocked=ctx.here.why_cannot_run(t),
        commands=[spec.command(lay.rel)],
        spec=spec,
    )


def predict_step(ctx: StepContext) -> Step:
    """The Q/DQ ONNX that the device INT8 targets build from, run in ONNX Runtime on this CPU against the
    reference: their accuracy predicted before anyone flashes a device (when cpu-onnxruntime-int8 is not a
    target; its parity is the same measurement)."""
    lay = ctx.layout
    out = lay.predicted_parity
    spec = parity_spec(ctx, None, lay.onnx_int8, out, "cpu")

    def run() -> dict[str, Any]:
        write_parity(ctx, spec, lay.onnx_int8, out, None)
        return {}

    return Step(
        "predict:int8",
        "predict the device INT8 targets' accuracy: the Q/DQ ONNX in ONNX Runtime on this CPU",
        {"reference": lay.reference, "artifact": lay.onnx_int8, "val": lay.val_dir},
        {**parity_settings(ctx), "gates": [ctx.config.max_miou_drop, ctx.config.min_agreement]},
        [out],
        run,
        optional=True,
        commands=[spec.command(lay.rel)],
        spec=spec,
    )


def bench_step(
    ctx: StepContext,
    name: str,
    artifact: Path,
    *,
    device: str,
    target: Target | None = None,
    kwargs: dict[str, Any] | None = None,
) -> Step:
    cfg, lay = ctx.config, ctx.layout
    out = lay.bench_json(name)
    options = kwargs if kwargs is not None else caps.bench_device_kwargs(target, device)
    spec = bench_spec(ctx, artifact, out, device, options)

    def run() -> dict[str, Any]:
        doc = spec.call().to_dict()
        doc["artifact"] = lay.rel(artifact)
        doc["target"] = name
        write_json_atomic(out, doc)
        return {}

    return Step(
        f"bench:{name}",
        "latency" + (" of the PyTorch baseline" if target is None else ""),
        {"artifact": artifact},
        {
            "input_size": list(cfg.input_size),
            "warmup": cfg.warmup,
            "iterations": cfg.iterations,
            "device": device,
            **({"options": options} if options else {}),
        },
        [out],
        run,
        target=target.name if target else None,
        blocked=ctx.here.why_cannot_run(target) if target else None,
        commands=[spec.command(lay.rel)],
        spec=spec,
    )


def gpu_baseline_step(ctx: StepContext, name: str) -> Step:
    """A same-GPU PyTorch baseline (``caps.GPU_BASELINES``): run where the GPU targets run."""
    step = bench_step(ctx, name, ctx.layout.checkpoint, device="gpu", kwargs=caps.GPU_BASELINES[name])
    step.title = f"latency of {caps.GPU_BASELINE_TITLES[name]}"
    step.blocked = ctx.here.why_cannot_run(TARGETS["gpu-torch-fp16"])
    step.baseline = True
    return step
