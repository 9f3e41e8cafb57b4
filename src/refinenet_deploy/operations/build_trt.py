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
import os
import shlex
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import (
    ArtifactResult,
    InputPolicy,
    check_output_path,
    load_onnx_artifact,
    onnx_precision,
    probe_output,
    sha256_file,
    sidecar,
    sidecar_path,
    staged_artifact,
    write_json_atomic,
)
from ..backends.onnxruntime import OnnxRuntimeRunner
from ..backends.tensorrt.audit import audit_layer_report
from ..backends.tensorrt.builder import (
    BuildOptions,
    BuildOutcome,
    Profile,
    build_engine_plan,
    engine_layers,
    input_profiles,
    parse_shapes,
)
from ..backends.tensorrt.library import TrtLibrary, load_library
from ..backends.tensorrt.runner import RTX_COMPUTE_CAPABILITIES
from ..enums import Precision
from ..errors import EngineBuildError, UsageError
from ..validate.compare import argmax_agreement, seeded_inputs
from ..validate.tolerances import FP16

log = logging.getLogger(__name__)
ENGINE_SUFFIXES = (".engine", ".plan")
CALIBRATORS = ("qdq", "implicit")


@dataclass
class EngineResult(ArtifactResult):
    layer_report: dict[str, Any] = field(default_factory=dict)
    layer_report_path: Path | None = None
    trtexec_here: str = ""  # the trtexec line with paths that work from the current directory


def intermediate_onnx_path(output: str | Path) -> Path:
    """Where the ONNX a build made (FP16 conversion, Q/DQ calibration) is kept: ``model.engine.src.onnx`` (its
    metadata travels in its ``metadata_props``; ``model.engine.onnx`` would share the engine's sidecar name)."""
    output = Path(output)
    return output.with_name(output.name + ".src.onnx")


# --------------------------------------------------------------------------------------------- shapes
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


# --------------------------------------------------------------------------------------------- records
def paths_from(folder: Path, *paths: Path | None) -> list[str | None]:
    """``paths`` relative to ``folder`` (a trtexec line that works when run there), or absolute when that is
    shorter to trust (another drive)."""
    out: list[str | None] = []
    for p in paths:
        if p is None:
            out.append(None)
            continue
        try:
            out.append(os.path.relpath(Path(p).resolve(), Path(folder).resolve()))
        except ValueError:
            out.append(str(Path(p).resolve()))
    return out


def _trtexec(
    lib: TrtLibrary,
    onnx: Path,
    engine: Path,
    profiles: Sequence[Profile],
    options: BuildOptions,
    timing: Path | None,
    folder: Path,
) -> str:
    """The trtexec line for ``onnx`` -> ``engine``, its paths relative to ``folder``."""
    onnx_rel, engine_rel, cache_rel = paths_from(folder, onnx, engine, timing)
    return trtexec_command(lib, str(onnx_rel), str(engine_rel), profiles, options, timing_cache=cache_rel)


def trtexec_command(
    lib: TrtLibrary,
    onnx_name: str,
    engine_name: str,
    profiles: Sequence[Profile],
    options: BuildOptions,
    timing_cache: str | None = None,
) -> str:
    """The equivalent trtexec (or ``tensorrt_rtx``) command line for the installed generation. The paths are used as
    given: pass them relative to the folder the line is meant to run in (``paths_from``)."""
    args = [lib.trtexec, f"--onnx={onnx_name}", f"--saveEngine={engine_name}"]
    if lib.weakly_typed and options.precision in ("fp16", "int8"):
        args.append("--fp16")
    if lib.weakly_typed and options.precision == "int8":
        args.append("--int8")
    dynamic = [p for p in profiles if not p.static] or ([p for p in profiles] if options.dla_core is not None else [])
    for flag, attr in (("--minShapes", "min"), ("--optShapes", "opt"), ("--maxShapes", "max")):
        if dynamic:
            args.append(f"{flag}=" + ",".join(f"{p.name}:{'x'.join(map(str, getattr(p, attr)))}" for p in dynamic))
    if options.workspace_mib:
        args.append(f"--memPoolSize=workspace:{options.workspace_mib}M")
    if options.opt_level is not None:
        args.append(f"--builderOptimizationLevel={options.opt_level}")
    if options.timing_cache is not None and not lib.is_rtx:
        args.append(f"--timingCacheFile={timing_cache or options.timing_cache.name}")
    if options.dla_core is not None:
        args.append(f"--useDLACore={options.dla_core}")
        if options.gpu_fallback:
            args.append("--allowGPUFallback")
    if options.version_compatible:
        args.append("--versionCompatible")
    if options.hardware_compatible:
        args.append("--hardwareCompatibilityLevel=ampere+")
    if options.precision == "fp32":
        args.append("--noTF32")
    if options.detailed_profiling:
        args.append("--profilingVerbosity=detailed")
    return " ".join(shlex.quote(a) for a in args)


def _target_device(lib: TrtLibrary, options: BuildOptions) -> dict[str, Any]:
    """What the engine is tied to: the GPU it was built on (TensorRT), or RTX's portable set."""
    from ..environment import host_fingerprint, nvidia_gpus

    if lib.is_rtx:
        return {
            "portable": True,
            "compute_capabilities": list(RTX_COMPUTE_CAPABILITIES),
            "note": "TensorRT-RTX ahead-of-time build: runs on its supported GPUs (Ampere and newer RTX-class, "
            "Blackwell), specialised on the first run",
        }
    target: dict[str, Any] = {"portable": False}
    gpus = nvidia_gpus()
    if gpus:
        target.update(name=gpus[0]["name"], compute_capability=gpus[0]["compute_capability"], driver=gpus[0]["driver"])
    else:
        try:
            from ..backends.tensorrt import cuda

            info = cuda.gpu_info()
            target.update(name=info.name, compute_capability=info.compute_capability, driver=info.driver_version)
        except Exception:  # noqa: BLE001  (no GPU visible: recorded as unknown)
            target["name"] = None
    jetson = host_fingerprint().get("jetson")
    if jetson:
        target["jetson"] = jetson
    if options.dla_core is not None:
        target["dla_core"] = options.dla_core
    return target


def summarize_layers(layers: Sequence[dict[str, Any]], source: str) -> dict[str, Any]:
    """Counts a reader can check at a glance: layers by type, Q/DQ pairs, convolutions and which run in INT8."""
    by_type = Counter(str(layer.get("type")) for layer in layers)
    summary: dict[str, Any] = {"layers": len(layers), "by_type": dict(sorted(by_type.items()))}
    if source == "network":
        convs = [layer for layer in layers if layer.get("type") == "CONVOLUTION"]
        summary.update(
            quantize=by_type.get("QUANTIZE", 0),
            dequantize=by_type.get("DEQUANTIZE", 0),
            convolutions=len(convs),
            convolutions_int8=sum(1 for c in convs if c.get("fed_by_dequantize")),
            resizes=by_type.get("RESIZE", 0),
            layers_with_half_outputs=sum(1 for layer in layers if "HALF" in layer.get("outputs", [])),
        )
    else:
        precisions = Counter()
        for layer in layers:
            text = " ".join(layer.get("outputs") or [])
            for key in ("Int8", "FP16", "FP32", "Half", "Float"):
                if key.lower() in text.lower():
                    precisions[key] += 1
                    break
        summary["by_output_format"] = dict(precisions)
    return summary


# --------------------------------------------------------------------------------------------- the operation
def build_engine(
    model: str | Path,
    output: str | Path,
    *,
    precision: str | None = None,
    data: str | Path | None = None,
    num_images: int | None = None,
    seed: int = 0,
    split: str | None = None,
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
    producer: str = "modelopt",
    command: str = "",
    progress: Callable[[str], None] | None = None,
    min_agreement: float | None = None,
    strict_precision: bool = False,
) -> EngineResult:
    """Write ``output`` (a serialized engine) and its ``.meta.json``; parser/builder failures exit 6 and leave
    nothing behind. ``precision``: ``fp16``, ``int8`` or None (what the ONNX holds)."""
    step = progress or (lambda _msg: None)
    model, output = Path(model), Path(output)
    if not model.is_file() or model.suffix != ".onnx":
        raise UsageError(
            f"not an ONNX file: {model}. Pass a model written by 'rfdeploy export onnx' or 'rfdeploy calibrate'"
        )
    inputs = [model, data]
    check_output_path(output, ENGINE_SUFFIXES, inputs=inputs)
    written = [output, sidecar_path(output), intermediate_onnx_path(output), implicit_cache_path(output)]
    report_path = Path(layer_report) if layer_report else None
    if report_path is not None:
        if report_path.suffix != ".json":
            raise UsageError(f"--layer-report must be a .json file: {report_path}")
        probe_output(report_path, inputs=inputs, what="--layer-report")
        _refuse_collision(report_path, written, "--layer-report")
    if timing_cache is not None:
        probe_output(timing_cache, inputs=[model, data, report_path], what="--timing-cache")
        _refuse_collision(Path(timing_cache), written, "--timing-cache")
    if precision not in (None, "fp16", "int8"):
        raise UsageError(f"unsupported precision: {precision}. Use --fp16 or --int8 (or neither)")
    if calibrator not in CALIBRATORS:
        raise UsageError(
            f"unknown --calibrator: {calibrator}. Use qdq (a Q/DQ ONNX, every TensorRT) or implicit (TensorRT 10.x)"
        )
    if opt_level is not None and not 0 <= opt_level <= 5:
        raise UsageError(f"--opt-level must be 0-5, got {opt_level}")
    if workspace_mib is not None and workspace_mib < 1:
        raise UsageError(f"--workspace must be at least 1 MiB, got {workspace_mib}")
    if input_size and shapes:
        raise UsageError(
            "--input-size and --shapes exclude each other: --input-size fixes one size, --shapes gives a range"
        )

    proto, meta = load_onnx_artifact(model)
    source = onnx_precision(proto)  # from the graph, not the sidecar
    want = Precision(precision) if precision else source
    if source == Precision.INT8 and want != Precision.INT8:
        raise UsageError(f"{model.name} is a Q/DQ INT8 model; build it with --int8 (or pass the FP32 export)")
    if source == Precision.FP16 and want != Precision.FP16:
        raise UsageError(f"{model.name} is an FP16 ONNX; build it with --fp16, or pass the FP32 export")
    needs_calibration = want == Precision.INT8 and source == Precision.FP32
    if needs_calibration and data is None:
        raise UsageError(
            "--int8 from an FP32 ONNX needs calibration images: pass --data DIR, or a Q/DQ ONNX from "
            "'rfdeploy calibrate'"
        )
    lib = load_library(library)
    if calibrator == "implicit" and not (needs_calibration and lib.weakly_typed):
        raise UsageError(
            "--calibrator implicit is TensorRT 10.x's entropy calibrator for --int8 from an FP32 ONNX "
            f"(with --data); {lib.describe()['generation']} takes a Q/DQ ONNX"
        )
    policy = InputPolicy.from_metadata(meta)
    profiles = input_profiles(proto, policy.input_format, meta, input_size, shapes)
    del proto
    timing = Path(timing_cache) if timing_cache else None
    options = BuildOptions(
        precision=want.value,
        workspace_mib=workspace_mib,
        opt_level=opt_level,
        timing_cache=timing,
        dla_core=dla_core,
        gpu_fallback=gpu_fallback,
        version_compatible=version_compatible,
        hardware_compatible=hardware_compatible,
    )

    with staged_artifact(output, "trt") as stage:
        onnx_used, onnx_record, calibration = model, {"file": model.name, "made_by": "given"}, meta.get("calibration")
        if want == Precision.FP16 and source == Precision.FP32:
            step("converting the ONNX to FP16")
            onnx_used = stage.dir / f"{model.stem}.fp16.onnx"
            onnx_record = {"file": onnx_used.name, **fp16_onnx(model, onnx_used)}
            embed_metadata(
                onnx_used, sidecar("onnx", Precision.FP16, source=meta, command=command, conversion=onnx_record)
            )
        elif needs_calibration and calibrator == "qdq":
            from .calibrate import calibrate_onnx

            step(f"calibrating INT8 Q/DQ ({producer}) on {data}")
            onnx_used = stage.dir / f"{model.stem}.int8.onnx"
            calibrated = calibrate_onnx(
                model,
                data,
                onnx_used,
                num_images=num_images,
                seed=seed,
                split=split,
                producer=producer,
                command=command,
                min_agreement=min_agreement,  # the calibration's INT8 self-check (exit 6 below it)
            )
            calibration = calibrated.metadata["calibration"]
            embed_metadata(onnx_used, calibrated.metadata)
            onnx_record = {
                "file": onnx_used.name,
                "made_by": f"rfdeploy calibrate ({producer})",
                "quantization": calibrated.metadata["quantization"],
                "check": calibrated.metadata["check"],
            }
        elif needs_calibration:
            options, calibration = _implicit_calibrator(
                lib, model, meta, data, num_images, seed, split, output, options
            )
            onnx_record["made_by"] = "given (FP32; TensorRT 10.x implicit entropy calibration)"
        onnx_record["sha256"] = sha256_file(onnx_used)
        onnx_source = model if onnx_used == model else intermediate_onnx_path(output)  # where it is kept
        onnx_record["source"] = {"file": model.name, "sha256": sha256_file(model), "precision": str(source)}

        step(f"building the engine ({lib.describe()['generation']} {lib.version}, {want})")
        outcome = build_engine_plan(lib, onnx_used, profiles, options)
        stage.model.write_bytes(outcome.plan)
        report = _layer_report(lib, outcome, want.value)
        audit = audit_layer_report(report, want.value, strict=strict_precision)  # strict: exit 6, nothing written
        info = sidecar(
            "tensorrt",
            want,
            source=meta,
            command=command,
            packages=("onnx", "onnxruntime", "cuda-python"),
            tensorrt=lib.describe(),
            device=_target_device(lib, options),
            onnx=onnx_record,
            calibration=calibration,
            shapes=[p.to_dict() for p in profiles],
            static_shapes=all(p.static for p in profiles),
            build={
                "seconds": round(outcome.seconds, 3),
                "flags": outcome.flags,
                "workspace_mib": workspace_mib,
                "opt_level": opt_level,
                "timing_cache": str(timing) if timing else None,
                "warnings": outcome.warnings,
            },
            version_compatible=version_compatible,
            hardware_compatible=hardware_compatible,
            dla={"core": dla_core, "gpu_fallback": gpu_fallback, "layers_on_gpu": outcome.dla_gpu_fallback}
            if dla_core is not None
            else None,
            precision_audit=audit,
            layer_report={
                "source": report["source"],
                "summary": report["summary"],
                "file": report_path.name if report_path else None,
            },
            # run in the engine's folder: paths relative to it (the sidecar travels with the engine)
            trtexec_command=_trtexec(lib, onnx_source, output, profiles, options, timing, output.parent),
            trtexec_runs_in="the engine's folder",
            rebuild_command=_rebuild_command(
                model, output, want, profiles, options, policy.input_format == "nhwc-uint8", data
            ),
        )
        kept = {} if onnx_used == model else {onnx_used: intermediate_onnx_path(output)}
        if kept:
            info["onnx"]["kept_as"] = intermediate_onnx_path(output).name
        result = stage.commit(info, files=kept)
    if report_path is not None:
        write_json_atomic(report_path, report)
    log.info("wrote %s (%s, %s)", output, lib.name, want)
    here = _trtexec(lib, onnx_source, output, profiles, options, timing, Path.cwd())
    return EngineResult(result.path, result.metadata_path, result.metadata, report, report_path, here)


def implicit_cache_path(output: str | Path) -> Path:
    """Where the TensorRT 10.x implicit calibrator keeps its cache: ``model.engine.int8cache``."""
    output = Path(output)
    return output.with_name(output.name + ".int8cache")


def _refuse_collision(path: Path, written: Sequence[Path], what: str) -> None:
    """A secondary output must not be one of the files this build writes itself."""
    for other in written:
        if path.absolute() == other.absolute():
            raise UsageError(f"{what} {path} is also a file this build writes ({other.name}). Choose another path")


def embed_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Write ``meta`` into an intermediate ONNX's ``metadata_props``, so the copy kept beside the engine
    (``MODEL.engine.src.onnx``) says what it is."""
    import onnx

    from ..artifacts import embed_onnx_metadata

    model = onnx.load(str(path))
    embed_onnx_metadata(model, meta)
    onnx.save(model, str(path))


def _layer_report(lib: TrtLibrary, outcome: BuildOutcome, precision: str) -> dict[str, Any]:
    layers = engine_layers(lib, outcome.plan)
    if layers is not None:
        source, rows = "engine", layers
        why = "IEngineInspector of the built engine: fused layers, their formats/precisions and tactics"
    else:
        source, rows = "network", outcome.network_layers
        why = (
            "the parsed network definition: the engine cannot be deserialised here (no GPU this library "
            "supports), so these are TensorRT's layers before fusion, with their dtypes and Q/DQ neighbours"
        )
    return {
        "source": source,
        "explanation": why,
        "library": lib.name,
        "library_version": lib.version,
        "precision": precision,
        "summary": summarize_layers(rows, source),
        "layers": list(rows),
    }


def _rebuild_command(
    model: Path,
    output: Path,
    want: Precision,
    profiles: Sequence[Profile],
    options: BuildOptions,
    nhwc: bool,
    data: str | Path | None,
) -> str:
    args = ["rfdeploy", "build", "trt", model.name]
    if want != Precision.FP32:
        args.append(f"--{want.value}")
    if data is not None and want == Precision.INT8:
        args += ["--data", str(data)]
    dynamic = [p for p in profiles if not p.static]
    if dynamic:
        p = dynamic[0]
        hw = [(s[1], s[2]) if nhwc else (s[2], s[3]) for s in (p.min, p.opt, p.max)]
        args += ["--shapes", ":".join(f"{h}x{w}" for h, w in hw)]
    if options.dla_core is not None:
        args += ["--dla-core", str(options.dla_core)]
    args += ["-o", output.name]
    return " ".join(shlex.quote(a) for a in args)


def _implicit_calibrator(
    lib: TrtLibrary,
    model: Path,
    meta: dict[str, Any],
    data: str | Path,
    num_images: int | None,
    seed: int,
    split: str | None,
    output: Path,
    options: BuildOptions,
) -> tuple[BuildOptions, dict[str, Any]]:
    from dataclasses import replace

    from ..backends.tensorrt.calibrator import make_entropy_calibrator
    from ..calibration.dataset import calibration_set_for_model

    cs = calibration_set_for_model(model, meta, data, num_images=num_images, seed=seed, split=split)
    key = cs.cache_key(sha256_file(model))
    cache = implicit_cache_path(output)
    calib = make_entropy_calibrator(lib, lambda: cs.batches(1), cache, key)
    record = {
        "digest": cs.digest(),
        "count": len(cs.files),
        "seed": seed,
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
    "parse_shapes",
    "summarize_layers",
    "trtexec_command",
]
