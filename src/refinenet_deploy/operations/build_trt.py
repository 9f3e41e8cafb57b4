"""``build_engine``: an ONNX model -> a TensorRT engine (``model.engine``) with its sidecar and a layer report.

Precision comes from the ONNX, as TensorRT 11 and TensorRT-RTX require:
- ``fp16``: an FP16 ONNX is used as it is; an FP32 one is converted (FP16 tensors, FP32 inputs/outputs, the same
  conversion ``export onnx --fp16`` does) and checked against it in ONNX Runtime before the build;
- ``int8``: a Q/DQ ONNX is used as it is; an FP32 one is calibrated first (``calibrate`` on ``data``), or, on
  TensorRT 10.x, calibrated implicitly by TensorRT's entropy calibrator (``calibrator="implicit"``, for DLA);
- no flag: whatever the ONNX holds.
On TensorRT 10.x the matching weak-typing flags are added (``backends.tensorrt.builder``).

The layer report says which layers really run in which precision: from ``IEngineInspector`` where the engine can be
deserialised (a supported GPU is present), else from the parsed network definition (each layer's type, dtypes and
whether Q/DQ surrounds it), and it says which of the two it used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import (
    ArtifactResult,
    sha256_file,
    sidecar,
    staged_artifact,
    write_json_atomic,
)
from ..backends.onnxruntime import OnnxRuntimeRunner
from ..backends.tensorrt.audit import audit_layer_report
from ..backends.tensorrt.builder import (
    BuildOptions,
    BuildOutcome,
    build_engine_plan,
    parse_shapes,
)
from ..backends.tensorrt.library import TrtLibrary
from ..calibration.options import AccuracyControl, CalibrationOptions, option_groups
from ..enums import Precision
from ..errors import EngineBuildError
from ..validate.compare import argmax_agreement, seeded_inputs
from ..validate.tolerances import FP16
from .trt_records import (
    layer_report as layer_report_of,
)
from .trt_records import (
    paths_from,
    rebuild_command,
    summarize_layers,
    target_device,
    trtexec_command,
    trtexec_for,
)
from .trt_request import (
    CALIBRATORS,
    ENGINE_SUFFIXES,
    EngineJob,
    check_options,
    check_request,
    implicit_cache_path,
    intermediate_onnx_path,
    read_source,
)

log = logging.getLogger(__name__)


@dataclass
class EngineResult(ArtifactResult):
    layer_report: dict[str, Any] = field(default_factory=dict)
    layer_report_path: Path | None = None
    trtexec_here: str = ""  # the trtexec line with paths that work from the current directory


# --------------------------------------------------------------------------------------------- precision
def fp16_onnx(model: Path, out: Path) -> dict[str, Any]:
    """FP16 ONNX from an FP32 one (FP32 inputs/outputs), checked against it in ONNX Runtime on seeded inputs."""
    import onnx

    from ..backends.graph import to_fp16

    onnx.save(to_fp16(onnx.load(str(model))), str(out))
    agreements = []
    with OnnxRuntimeRunner(model) as ref, OnnxRuntimeRunner(out) as half:
        spec = ref.input_specs[0]
        for x in seeded_inputs(spec):
            a = next(iter(ref.infer({spec.name: x}).values()))
            b = next(iter(half.infer({spec.name: x}).values()))
            agreements.append(argmax_agreement(a, b))
    agreement = float(np.mean(agreements))
    if agreement < FP16.min_agreement:
        raise EngineBuildError(
            f"the FP16 conversion of {model.name} agrees with it on {agreement:.2%} of pixels "
            f"(< {FP16.min_agreement:.1%}); nothing was built",
            hint="export with 'rfdeploy export onnx --fp16' and check it with parity",
        )
    return {
        "made_by": "refinenet-deploy FP16 conversion (onnxconverter-common, FP32 I/O)",
        "argmax_agreement_vs_fp32_onnx": agreement,
        "inputs": "2 seeded random inputs, ONNX Runtime CPU",
    }


# --------------------------------------------------------------------------------------------- the operation
def build_engine(
    model: str | Path,
    output: str | Path,
    *,
    precision: str | None = None,
    data: str | Path | None = None,
    input_size: tuple[int, int] | None = None,
    shapes: str | None = None,
    library: str = "auto",
    workspace_mib: int | None = None,
    timing_cache: str | Path | None = None,
    opt_level: int | None = None,
    dla_core: int | None = None,
    gpu_fallback: bool = True,
    version_compatible: bool = False,
    hardware_compatible: bool = False,
    layer_report: str | Path | None = None,
    calibrator: str = "qdq",
    calibration: CalibrationOptions | None = None,
    accuracy: AccuracyControl | None = None,
    command: str = "",
    progress: Callable[[str], None] | None = None,
    strict_precision: bool = False,
    **kwargs: Any,
) -> EngineResult:
    """Write ``output`` (a serialized engine) and its ``.meta.json``; parser/builder failures exit 6 and leave
    nothing behind. ``precision``: ``fp16``, ``int8`` or None (what the ONNX holds).

    INT8 from an FP32 ONNX calibrates on ``data`` first: ``calibration`` (``CalibrationOptions``: ``num_images``,
    ``seed``, ``split``, ``producer``, ...) and ``accuracy`` (``AccuracyControl``: the self-check's
    ``min_agreement``, a ``max_miou_drop`` fallback), or their fields as keywords."""
    opts, acc = option_groups(calibration, accuracy, kwargs, function="build_engine")
    step = progress or (lambda _msg: None)
    model, output = Path(model), Path(output)
    report_path = check_request(model, output, data, layer_report, timing_cache)
    check_options(precision, calibrator, opt_level, workspace_mib, input_size, shapes)
    timing = Path(timing_cache) if timing_cache else None
    options = BuildOptions(
        precision="fp32",  # the ONNX's, set by read_source
        workspace_mib=workspace_mib,
        opt_level=opt_level,
        timing_cache=timing,
        dla_core=dla_core,
        gpu_fallback=gpu_fallback,
        version_compatible=version_compatible,
        hardware_compatible=hardware_compatible,
    )
    job = read_source(
        model,
        output,
        data,
        precision,
        library,
        calibrator,
        input_size,
        shapes,
        options,
        report_path,
        opts,
        acc,
        command,
    )
    result, report, onnx_source, options = _write_engine(job, step, strict_precision)
    if report_path is not None:
        write_json_atomic(report_path, report)
    log.info("wrote %s (%s, %s)", output, job.lib.name, job.want)
    here = trtexec_for(job.lib, onnx_source, output, job.profiles, options, timing, Path.cwd())
    return EngineResult(result.path, result.metadata_path, result.metadata, report, report_path, here)


def _write_engine(
    job: EngineJob, step: Callable[[str], None], strict_precision: bool = False
) -> tuple[ArtifactResult, dict[str, Any], Path, BuildOptions]:
    """Build and commit the engine with its sidecar (and the ONNX it was built from, when made here); returns the
    result, the layer report, where the built-from ONNX is kept, and the build options used."""
    model, output = job.model, job.output
    with staged_artifact(output, "trt") as stage:
        onnx_used, onnx_record, calibration_record, options = _prepare_onnx(job, stage.dir, step)
        onnx_record["sha256"] = sha256_file(onnx_used)
        onnx_source = model if onnx_used == model else intermediate_onnx_path(output)  # where it is kept
        onnx_record["source"] = {"file": model.name, "sha256": sha256_file(model), "precision": str(job.source)}

        step(f"building the engine ({job.lib.describe()['generation']} {job.lib.version}, {job.want})")
        outcome = build_engine_plan(job.lib, onnx_used, job.profiles, options)
        stage.model.write_bytes(outcome.plan)
        report = layer_report_of(job.lib, outcome, job.want.value)
        audit = audit_layer_report(report, job.want.value, strict=strict_precision)  # strict: exit 6, nothing written
        info = _engine_sidecar(job, options, outcome, report, onnx_record, calibration_record, onnx_source)
        info["precision_audit"] = audit
        kept = {} if onnx_used == model else {onnx_used: intermediate_onnx_path(output)}
        if kept:
            info["onnx"]["kept_as"] = intermediate_onnx_path(output).name
        result = stage.commit(info, files=kept)
    return result, report, onnx_source, options


def _prepare_onnx(
    job: EngineJob, folder: Path, step: Callable[[str], None]
) -> tuple[Path, dict[str, Any], dict[str, Any] | None, BuildOptions]:
    """The ONNX TensorRT builds (the given one, its FP16 conversion or its Q/DQ calibration, written in ``folder``),
    its record, the calibration record and the build options (with the implicit calibrator where it applies)."""
    model, meta = job.model, job.meta
    onnx_used, onnx_record = model, {"file": model.name, "made_by": "given"}
    calibration, options = meta.get("calibration"), job.options
    if job.want == Precision.FP16 and job.source == Precision.FP32:
        step("converting the ONNX to FP16")
        onnx_used = folder / f"{model.stem}.fp16.onnx"
        onnx_record = {"file": onnx_used.name, **fp16_onnx(model, onnx_used)}
        embed_metadata(
            onnx_used, sidecar("onnx", Precision.FP16, source=meta, command=job.command, conversion=onnx_record)
        )
    elif job.needs_calibration and job.calibrator == "qdq":
        from .calibrate import calibrate_onnx

        producer = job.calibration.producer
        step(f"calibrating INT8 Q/DQ ({producer}) on {job.data}")
        onnx_used = folder / f"{model.stem}.int8.onnx"
        # the calibration's INT8 self-check (min_agreement) exits 6 below its gate
        calibrated = calibrate_onnx(model, job.data, onnx_used, job.calibration, job.accuracy, command=job.command)
        calibration = calibrated.metadata["calibration"]
        embed_metadata(onnx_used, calibrated.metadata)
        onnx_record = {
            "file": onnx_used.name,
            "made_by": f"rfdeploy calibrate ({producer})",
            "quantization": calibrated.metadata["quantization"],
            "check": calibrated.metadata["check"],
        }
    elif job.needs_calibration:
        options, calibration = _implicit_calibrator(
            job.lib, model, meta, job.data, job.calibration, job.output, options
        )
        onnx_record["made_by"] = "given (FP32; TensorRT 10.x implicit entropy calibration)"
    return onnx_used, onnx_record, calibration, options


def _engine_sidecar(
    job: EngineJob,
    options: BuildOptions,
    outcome: BuildOutcome,
    report: dict[str, Any],
    onnx_record: dict[str, Any],
    calibration: dict[str, Any] | None,
    onnx_source: Path,
) -> dict[str, Any]:
    output, timing = job.output, options.timing_cache
    return sidecar(
        "tensorrt",
        job.want,
        source=job.meta,
        command=job.command,
        packages=("onnx", "onnxruntime", "cuda-python"),
        tensorrt=job.lib.describe(),
        device=target_device(job.lib, options),
        onnx=onnx_record,
        calibration=calibration,
        shapes=[p.to_dict() for p in job.profiles],
        static_shapes=all(p.static for p in job.profiles),
        build={
            "seconds": round(outcome.seconds, 3),
            "flags": outcome.flags,
            "workspace_mib": options.workspace_mib,
            "opt_level": options.opt_level,
            "timing_cache": str(timing) if timing else None,
            "warnings": outcome.warnings,
        },
        version_compatible=options.version_compatible,
        hardware_compatible=options.hardware_compatible,
        dla={"core": options.dla_core, "gpu_fallback": options.gpu_fallback, "layers_on_gpu": outcome.dla_gpu_fallback}
        if options.dla_core is not None
        else None,
        layer_report={
            "source": report["source"],
            "summary": report["summary"],
            "file": job.report_path.name if job.report_path else None,
        },
        # run in the engine's folder: paths relative to it (the sidecar travels with the engine)
        trtexec_command=trtexec_for(job.lib, onnx_source, output, job.profiles, options, timing, output.parent),
        trtexec_runs_in="the engine's folder",
        rebuild_command=rebuild_command(
            job.model, output, job.want, job.profiles, options, job.policy.input_format == "nhwc-uint8", job.data
        ),
    )


def embed_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Write ``meta`` into an intermediate ONNX's ``metadata_props``, so the copy kept beside the engine
    (``MODEL.engine.src.onnx``) says what it is."""
    import onnx

    from ..artifacts import embed_onnx_metadata

    model = onnx.load(str(path))
    embed_onnx_metadata(model, meta)
    onnx.save(model, str(path))


def _implicit_calibrator(
    lib: TrtLibrary,
    model: Path,
    meta: dict[str, Any],
    data: str | Path | None,
    opts: CalibrationOptions,
    output: Path,
    options: BuildOptions,
) -> tuple[BuildOptions, dict[str, Any]]:
    from ..backends.tensorrt.calibrator import make_entropy_calibrator
    from ..calibration.dataset import calibration_set_for_model

    cs = calibration_set_for_model(model, meta, data, num_images=opts.num_images, seed=opts.seed, split=opts.split)
    key = cs.cache_key(sha256_file(model))
    cache = implicit_cache_path(output)
    calib = make_entropy_calibrator(lib, lambda: cs.batches(1), cache, key)
    record = {
        "digest": cs.digest(),
        "count": len(cs.files),
        "seed": opts.seed,
        "input_size": list(cs.size),
        "method": "TensorRT IInt8EntropyCalibrator2 (implicit, TensorRT 10.x)",
        "cache": cache.name,
        "cache_key": key,
    }
    return replace(options, calibrator=calib), record


__all__ = [
    "CALIBRATORS",
    "ENGINE_SUFFIXES",
    "EngineResult",
    "build_engine",
    "intermediate_onnx_path",
    "parse_shapes",
    "paths_from",
    "summarize_layers",
    "trtexec_command",
]
