"""A ``build trt`` request, checked before any work: the paths it reads and writes, the builder options, the source
ONNX's precision against the one asked, the TensorRT library and the input profiles (``EngineJob``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..artifacts import (
    InputPolicy,
    check_output_path,
    load_onnx_artifact,
    onnx_precision,
    probe_output,
    sidecar_path,
)
from ..backends.tensorrt.builder import BuildOptions, Profile, input_profiles
from ..backends.tensorrt.library import TrtLibrary, load_library
from ..calibration.options import AccuracyControl, CalibrationOptions
from ..enums import Precision
from ..errors import UsageError

ENGINE_SUFFIXES = (".engine", ".plan")
CALIBRATORS = ("qdq", "implicit")


def intermediate_onnx_path(output: str | Path) -> Path:
    """Where the ONNX a build made (FP16 conversion, Q/DQ calibration) is kept: ``model.engine.src.onnx`` (its
    metadata travels in its ``metadata_props``; ``model.engine.onnx`` would share the engine's sidecar name)."""
    output = Path(output)
    return output.with_name(output.name + ".src.onnx")


def implicit_cache_path(output: str | Path) -> Path:
    """Where the TensorRT 10.x implicit calibrator keeps its cache: ``model.engine.int8cache``."""
    output = Path(output)
    return output.with_name(output.name + ".int8cache")


@dataclass(frozen=True)
class EngineJob:
    """A checked build request: what ``build_engine`` was asked, with the source ONNX read and the library loaded."""

    model: Path
    output: Path
    data: str | Path | None
    meta: dict[str, Any]
    source: Precision  # the ONNX's precision, from its graph
    want: Precision
    lib: TrtLibrary
    policy: InputPolicy
    profiles: list[Profile]
    options: BuildOptions
    report_path: Path | None
    calibrator: str
    calibration: CalibrationOptions
    accuracy: AccuracyControl
    command: str

    @property
    def needs_calibration(self) -> bool:
        return self.want == Precision.INT8 and self.source == Precision.FP32


def check_request(
    model: Path, output: Path, data: str | Path | None, layer_report: str | Path | None, timing_cache: str | Path | None
) -> Path | None:
    """The input ONNX and every path the build writes (engine, sidecar, layer report, timing cache), probed
    before any work; returns the layer report's path."""
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
    return report_path


def check_options(
    precision: str | None,
    calibrator: str,
    opt_level: int | None,
    workspace_mib: int | None,
    input_size: tuple[int, int] | None,
    shapes: str | None,
) -> None:
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


def read_source(
    model: Path,
    output: Path,
    data: str | Path | None,
    precision: str | None,
    library: str,
    calibrator: str,
    input_size: tuple[int, int] | None,
    shapes: str | None,
    options: BuildOptions,
    report_path: Path | None,
    opts: CalibrationOptions,
    acc: AccuracyControl,
    command: str,
) -> EngineJob:
    """Read the ONNX, check the precision asked against the one its graph holds, load the library and resolve
    the input profiles: the checked job."""
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
    if acc.max_miou_drop is not None and not (needs_calibration and calibrator == "qdq"):
        raise UsageError(
            "--max-miou-drop applies to --int8 from an FP32 ONNX calibrated to Q/DQ (--calibrator qdq); for a "
            "Q/DQ ONNX, give it to 'rfdeploy calibrate'"
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
    options = replace(options, precision=want.value)
    return EngineJob(
        model,
        output,
        data,
        meta,
        source,
        want,
        lib,
        policy,
        profiles,
        options,
        report_path,
        calibrator,
        opts,
        acc,
        command,
    )


def _refuse_collision(path: Path, written: Sequence[Path], what: str) -> None:
    """A secondary output must not be one of the files this build writes itself."""
    for other in written:
        if path.absolute() == other.absolute():
            raise UsageError(f"{what} {path} is also a file this build writes ({other.name}). Choose another path")


__all__ = [
    "CALIBRATORS",
    "ENGINE_SUFFIXES",
    "EngineJob",
    "check_options",
    "check_request",
    "implicit_cache_path",
    "intermediate_onnx_path",
    "read_source",
]
