"""``calibrate_onnx``: an FP32 ONNX and calibration images -> a Q/DQ INT8 ONNX with its sidecar.

Wires the calibration layer (calibration set, Q/DQ producer, fallback search) with the accuracy checks
(``operations.accuracy``) and the artifact layer. The producers work on a copy of the input in the staging
folder: the input ONNX is never written to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..artifacts import (
    ArtifactResult,
    check_output_path,
    copy_model_files,
    load_onnx_artifact,
    onnx_precision,
    probe_output,
    sha256_file,
    sidecar,
    sidecar_path,
    staged_artifact,
)
from ..backends.onnxruntime import OnnxRuntimeRunner
from ..calibration.dataset import CalibrationSet, calibration_set_for_model
from ..calibration.options import AccuracyControl, CalibrationOptions, option_groups
from ..calibration.qdq import quantize_qdq
from ..enums import Precision
from ..errors import ExportError, UsageError
from ..validate.compare import argmax_agreement
from ..validate.tolerances import INT8

log = logging.getLogger(__name__)


def calibration_manifest_path(output: str | Path) -> Path:
    """``model.int8.onnx`` -> ``model.int8.calibration.json`` (the calibration set's manifest)."""
    output = Path(output)
    return output.with_name(output.stem + ".calibration.json")


def calibrate_onnx(
    model: str | Path,
    data: str | Path,
    output: str | Path,
    options: CalibrationOptions | None = None,
    accuracy: AccuracyControl | None = None,
    *,
    command: str = "",
    progress: Callable[[int, int], None] | None = None,
    report: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> ArtifactResult:
    """Write ``output`` (Q/DQ INT8 ONNX) and its ``.meta.json``; atomic, nothing left behind on failure.

    ``options`` (``CalibrationOptions``) and ``accuracy`` (``AccuracyControl``), or their fields as keywords
    (``num_images=``, ``producer=``, ``max_miou_drop=``, ...).

    ``keep_float``: block names (``models.taps``, as ``parity --localize`` prints them) whose nodes are left
    unquantized (added to ``exclude_nodes``; unknown names are a UsageError listing the valid ones).

    With ``max_miou_drop`` (mIoU points against the FP32 model on ``val_data``, default: the calibration
    folder), the most sensitive parts of the network are left in float until the drop fits
    (``calibration.fallback``); the result records which parts fell back and the drop measured.

    Every result checks itself: the INT8 model's argmax agreement with the FP32 model on the calibration images
    (ONNX Runtime, CPU) must reach ``min_agreement`` (default: the INT8 gate, 97 %), else ExportError (exit 6)
    naming the likely cause, and nothing is written.
    """
    opts, acc = option_groups(options, accuracy, kwargs, function="calibrate_onnx")
    require("onnxruntime.quantization", package="onnxruntime")
    model, output = Path(model), Path(output)
    proto, meta = _load_fp32(model, output, [model, data, acc.val_data])
    input_name = proto.graph.input[0].name
    exclude_nodes = _excluded_nodes(proto, meta, opts)
    cs = calibration_set_for_model(proto, meta, data, num_images=opts.num_images, seed=opts.seed, split=opts.split)
    del proto
    manifest = cs.manifest
    model_sha = sha256_file(model)

    with staged_artifact(output, "calib") as stage:
        source = stage.dir / "source.onnx"  # the producers get a copy: the input is never written to
        copy_model_files(model, source)  # with its external data, if it has any
        quantization = quantize_qdq(
            source,
            stage.model,
            cs,
            producer=opts.producer,
            method=opts.method,
            exclude_nodes=exclude_nodes,
            progress=progress,
        )
        fallback = None
        if acc.enabled:
            fallback = _fallback(source, meta, stage.model, acc.validation_data(data), acc, report)
        agreement = _agreement(source, stage.model, cs, input_name)
        gate = INT8.min_agreement if acc.min_agreement is None else acc.min_agreement
        _check_agreement(agreement, gate, opts.producer)
        quantization = {**quantization, **_quantization_record(opts, exclude_nodes)}
        check = {
            "argmax_agreement_vs_fp32_on_calibration_images": agreement,
            "min_agreement": gate,
            "runtime": "onnxruntime CPU",
        }
        info = _calibration_sidecar(model, meta, model_sha, cs, manifest, opts, quantization, check, command)
        if fallback is not None:
            info["fallback"] = fallback
        result = stage.commit(info, extra={calibration_manifest_path(output): manifest})
    log.info("wrote %s (argmax agreement with FP32 %.4f)", output, agreement)
    return result


def _load_fp32(model: Path, output: Path, inputs: list[Any]) -> tuple[Any, dict[str, Any]]:
    """The FP32 ONNX to calibrate (graph and metadata), after the output paths are probed; UsageError otherwise."""
    if not model.is_file() or model.suffix != ".onnx":
        raise UsageError(f"not an ONNX file: {model}. Pass the model written by 'rfdeploy export onnx'")
    check_output_path(output, ".onnx", inputs=inputs)
    probe_output(calibration_manifest_path(output), inputs=inputs, what="-o (calibration manifest)")
    proto, meta = load_onnx_artifact(model)
    precision = onnx_precision(proto)  # from the graph, never from the sidecar
    if precision == Precision.INT8:
        raise UsageError(
            f"{model.name} is already quantized (QuantizeLinear/DequantizeLinear nodes in the graph"
            + (f", although its metadata says {meta.get('precision')}" if meta.get("precision") != "int8" else "")
            + "); calibrate the FP32 export"
        )
    if precision != Precision.FP32:
        raise UsageError(f"{model.name} is {precision}; calibrate the FP32 export")
    return proto, meta


def _excluded_nodes(proto: Any, meta: dict[str, Any], opts: CalibrationOptions) -> list[str]:
    """``exclude_nodes`` plus the nodes of the ``keep_float`` blocks."""
    if not opts.keep_float:
        return list(opts.exclude_nodes)
    from .localize import keep_float_nodes

    return [*opts.exclude_nodes, *keep_float_nodes(proto, meta, list(opts.keep_float))]


def _check_agreement(agreement: float, gate: float, producer: str) -> None:
    """ExportError (exit 6) when the INT8 model agrees with the FP32 one below ``gate``, naming what to try."""
    if agreement >= gate:
        return
    raise ExportError(
        f"the INT8 model agrees with the FP32 model on {agreement:.2%} of pixels of the calibration images, "
        f"below the INT8 gate of {gate * 100:g}%; nothing was written. Likely causes: calibration images "
        "unlike the deployment data, or layers too sensitive for INT8. Calibrate on representative images, try "
        "--producer "
        + ("onnxruntime" if producer == "modelopt" else "modelopt")
        + ", or keep sensitive parts in float with --max-miou-drop"
    )


def _quantization_record(opts: CalibrationOptions, exclude_nodes: list[str]) -> dict[str, Any]:
    return {
        "format": "QDQ",
        "activations": "int8 symmetric (zero point 0)",
        "weights": "int8 symmetric per-channel",
        "method": opts.method,
        "excluded_nodes": exclude_nodes,
        **({"kept_float_blocks": list(opts.keep_float)} if opts.keep_float else {}),
    }


def _calibration_sidecar(
    model: Path,
    meta: dict[str, Any],
    model_sha: str,
    cs: CalibrationSet,
    manifest: dict[str, Any],
    opts: CalibrationOptions,
    quantization: dict[str, Any],
    check: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    return sidecar(
        "onnx",
        Precision.INT8,
        source=meta,
        command=command,
        packages=("onnx", "onnxruntime", "nvidia-modelopt"),
        source_model={"file": model.name, "sha256": model_sha},
        quantization=quantization,
        calibration={
            "digest": cs.digest(manifest),
            "count": len(cs.files),
            "seed": opts.seed,
            "input_size": list(cs.size),
            "resize_policy": manifest["resize_policy"],
            "skipped": manifest["skipped"],
            "cache_key": cs.cache_key(model_sha),
        },
        check=check,
    )


def _fallback(
    model: Path,
    meta: dict[str, Any],
    qdq_path: Path,
    data: str | Path,
    acc: AccuracyControl,
    report: Callable[[str], None] | None,
) -> dict[str, Any]:
    import onnx

    from ..calibration.fallback import search_fallback
    from .accuracy import MiouDropEvaluator

    evaluator = MiouDropEvaluator(
        model, data, meta=meta, num_images=acc.val_images, split=acc.val_split, threads=acc.threads
    )
    try:
        result = search_fallback(onnx.load(str(qdq_path)), onnx.load(str(model)), evaluator, acc.max_miou_drop, report)
    finally:
        evaluator.close()
    onnx.save(result.model, str(qdq_path))
    return {**result.to_dict(), "validation": {"data": str(data), "images": evaluator.count}}


def _agreement(fp32: Path, int8: Path, cs: CalibrationSet, input_name: str, limit: int = 16) -> float:
    """Argmax agreement of the INT8 model with the FP32 model on up to ``limit`` calibration images."""
    agree = []
    with OnnxRuntimeRunner(fp32) as a, OnnxRuntimeRunner(int8) as b:
        for i, batch in enumerate(cs.batches(1)):
            if i >= limit:
                break
            ra = next(iter(a.infer({input_name: batch}).values()))
            rb = next(iter(b.infer({input_name: batch}).values()))
            agree.append(argmax_agreement(ra, rb))
    return float(np.mean(agree))


__all__ = ["AccuracyControl", "CalibrationOptions", "calibrate_onnx", "calibration_manifest_path", "sidecar_path"]
