"""ONNX -> OpenVINO IR (``model.xml`` + ``model.bin``) in FP32, FP16 or INT8.

- ``fp32``: ``ov.convert_model`` + ``ov.save_model(compress_to_fp16=False)``.
- ``fp16``: the same with FP16 weight compression (the CPU plugin still computes in its inference
  precision, f32 by our runners' default; GPU/NPU plugins compute in f16).
- ``int8`` from an FP32 ONNX: NNCF post-training quantization on a calibration set drawn with the
  preprocessing recorded in the ONNX metadata (``calibration.nncf``); with ``max_miou_drop``, NNCF with
  accuracy control using our mIoU as its metric.
- ``int8`` from a Q/DQ ONNX (``rfdeploy calibrate``): OpenVINO reads the Q/DQ pairs as FakeQuantize; no
  data needed, and the IR runs the quantization TensorRT would see.

Every IR is checked against its source ONNX (ONNX Runtime) before it is kept: FP32/FP16 on seeded random inputs;
INT8 on real images (NNCF: its calibration images; a Q/DQ ONNX: ``data`` when given, else the calibration images its
``.calibration.json`` names when they are still there, and seeded random noise only as a last resort, labelled as
such: a quantized model is calibrated for images, and noise drives activations outside the calibrated ranges).
The sidecar ``model.xml.meta.json`` carries the ONNX metadata,
the precision, the calibration digest and the OpenVINO/NNCF versions. Writes are atomic.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import (
    ArtifactResult,
    check_output_path,
    load_onnx_artifact,
    onnx_precision,
    sha256_file,
    sidecar,
    staged_artifact,
)
from ..backends.onnxruntime import OnnxRuntimeRunner
from ..backends.openvino import OpenVINORunner, compile_cpu, convert_onnx, ensure_available, save_ir
from ..calibration.options import AccuracyControl, CalibrationOptions, option_groups
from ..enums import Precision
from ..errors import CalibrationError, ExportError, UsageError
from ..validate.compare import argmax_agreement, seeded_inputs
from ..validate.tolerances import FP32, INT8

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "fp16", "int8")
CHECK_IMAGES = 8  # images the INT8 self-check runs on


def precision_from_flags(fp16: bool, int8: bool) -> str:
    """``--fp16`` / ``--int8`` (at most one) -> the precision to build."""
    if fp16 and int8:
        raise UsageError("--fp16 and --int8 exclude each other; pick one")
    return "int8" if int8 else "fp16" if fp16 else "fp32"


def convert_openvino(
    model: str | Path,
    output: str | Path,
    *,
    precision: str = "fp32",
    data: str | Path | None = None,
    calibration: CalibrationOptions | None = None,
    accuracy: AccuracyControl | None = None,
    command: str = "",
    progress: Callable[[int, int], None] | None = None,
    strict_precision: bool = False,
    **kwargs: Any,
) -> ArtifactResult:
    """Write the IR ``output`` (.xml, with its .bin and .meta.json); nothing is left behind on failure.

    ``calibration`` (``CalibrationOptions``: ``num_images``, ``seed``, ``split`` of the NNCF calibration set) and
    ``accuracy`` (``AccuracyControl``), or their fields as keywords. ``min_agreement``: the INT8 self-check's gate
    (default: the INT8 gate, 97 %). With ``max_miou_drop``, NNCF quantizes with accuracy control on ``val_data``.
    The compiled model's runtime graph is audited (``backends.openvino.audit``: each convolution's runtime
    precision on this CPU) and recorded as ``precision_audit``; when the requested precision is not realised (an
    INT8 IR whose convolutions mostly run in float) a warning is logged and recorded, and with ``strict_precision``
    the build fails (ExportError, exit 6) and nothing is written."""
    opts, acc = option_groups(calibration, accuracy, kwargs, function="convert_openvino")
    ensure_available()
    precision = Precision.parse(precision, allowed=[Precision(p) for p in PRECISIONS], option="precision").value
    model, output = Path(model), Path(output)
    proto, meta, source_precision = _load_source(model, output, precision, data, acc)
    qdq = source_precision == Precision.INT8
    ov_model = convert_onnx(model)
    quantization: dict[str, Any] | None = None
    calibration_record: dict[str, Any] | None = None
    check_inputs: list[np.ndarray] | None = None
    check_source: str | None = None
    if precision == "int8" and qdq:
        quantization = {
            "source": "Q/DQ ONNX (QuantizeLinear/DequantizeLinear read as FakeQuantize)",
            "from": meta.get("quantization"),
        }
        calibration_record = meta.get("calibration")
        check_inputs, check_source = _qdq_check_inputs(proto, meta, model, data, opts.seed, opts.split)
    elif precision == "int8":
        ov_model, quantization, calibration_record, check_inputs = _nncf_int8(
            ov_model, proto, model, meta, data, opts, acc, progress
        )
        check_source = f"{len(check_inputs)} calibration images"

    with staged_artifact(output, "ov") as stage:
        save_ir(ov_model, stage.model, compress_to_fp16=precision == "fp16")
        check = _check(stage.model, model, check_inputs, acc.threads, precision, check_source, qdq, acc.min_agreement)
        audit = precision_audit(stage.model, precision, acc.threads)
        if audit.get("warning") and strict_precision:
            raise ExportError(f"--strict-precision: {audit['warning']}. Nothing was written")
        info = sidecar(
            "openvino",
            precision,
            source=meta,
            command=command,
            packages=("openvino", "nncf", "onnx"),
            source_model={"file": model.name, "sha256": sha256_file(model), "precision": str(source_precision)},
            weights="fp16 (compressed)" if precision == "fp16" else ("int8" if precision == "int8" else "fp32"),
            check=check,
            precision_audit=audit,
            **{k: v for k, v in (("quantization", quantization), ("calibration", calibration_record)) if v},
        )
        result = stage.commit(info)
    log.info("wrote %s (%s)", output, precision)
    return result


def _load_source(
    model: Path, output: Path, precision: str, data: str | Path | None, acc: AccuracyControl
) -> tuple[Any, dict[str, Any], Precision]:
    """The source ONNX (graph, metadata, precision read from the graph) after the request is checked against it:
    UsageError (exit 2) for a combination that cannot be built."""
    if not model.is_file() or model.suffix != ".onnx":
        raise UsageError(
            f"not an ONNX file: {model}. Pass a model written by 'rfdeploy export onnx' or 'rfdeploy calibrate'"
        )
    check_output_path(output, ".xml", inputs=[model, data, acc.val_data])
    if acc.min_agreement is not None and precision != "int8":
        raise UsageError("--min-agreement applies to --int8 (the self-check's gate), as a fraction 0-1 or a percentage")
    proto, meta = load_onnx_artifact(model)
    source_precision = onnx_precision(proto)  # from the graph, not the sidecar
    qdq = source_precision == Precision.INT8
    if qdq and precision != "int8":
        raise UsageError(f"{model.name} is a Q/DQ INT8 model; build it with --int8 (or pass the FP32 export)")
    if source_precision == Precision.FP16 and precision != "fp16":
        raise UsageError(f"{model.name} is an FP16 ONNX; build it with --fp16, or pass the FP32 export")
    if precision == "int8" and not qdq:
        if data is None:
            raise UsageError(
                "--int8 needs calibration images: pass --data DIR, or a Q/DQ ONNX from 'rfdeploy calibrate'"
            )
        if source_precision != Precision.FP32:
            raise UsageError(f"{model.name} is {source_precision}; quantize the FP32 export")
    if acc.max_miou_drop is not None and (precision != "int8" or qdq):
        raise UsageError(
            "--max-miou-drop applies to --int8 from an FP32 ONNX (for a Q/DQ ONNX, give it to 'rfdeploy calibrate')"
        )
    return proto, meta, source_precision


def _nncf_int8(
    ov_model: Any,
    proto: Any,
    model: Path,
    meta: dict[str, Any],
    data: str | Path | None,
    opts: CalibrationOptions,
    acc: AccuracyControl,
    progress: Callable[[int, int], None] | None,
) -> tuple[Any, dict[str, Any], dict[str, Any], list[np.ndarray]]:
    """INT8 by NNCF from an FP32 ONNX: the quantized model, its quantization and calibration records, and the
    calibration images the self-check runs on."""
    from ..calibration.dataset import calibration_set_for_model

    cs = calibration_set_for_model(proto, meta, data, num_images=opts.num_images, seed=opts.seed, split=opts.split)
    calibration = {
        "digest": cs.digest(),
        "count": len(cs.files),
        "seed": opts.seed,
        "input_size": list(cs.size),
        "resize_policy": cs.manifest["resize_policy"],
        "skipped": cs.skipped,
        "cache_key": cs.cache_key(sha256_file(model)),
    }
    quantized, quantization = _quantize(ov_model, model, meta, cs, acc, acc.validation_data(data), opts.split, progress)
    check_inputs = [b for b, _ in zip(cs.batches(1), range(CHECK_IMAGES))]
    return quantized, quantization, calibration, check_inputs


def precision_audit(xml: Path, precision: str, threads: int | None = None) -> dict[str, Any]:
    """The effective precision audit of a built IR (compiled as parity and bench run it: an f32 inference
    precision hint) with ``realised`` and, when not, a ``warning`` (also logged)."""
    from ..backends.openvino.audit import audit_ir

    try:
        audit = audit_ir(xml, threads=threads)
    except Exception as exc:  # noqa: BLE001  (the check above compiled it already; an audit failure is recorded)
        return {"error": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__, "realised": None}
    by = audit["by_precision"]
    total = audit["convolutions"]
    warning = None
    if precision == "int8" and total and audit["int8_share"] < 0.5:
        others = ", ".join(f"{n} {k}" for k, n in by.items() if k != "int8")
        warning = (
            f"requested INT8 but {audit['summary']} run in INT8 on {audit['device']} ({others}); "
            f"CPU capabilities: {', '.join(audit['device_capabilities']) or 'unknown'}"
        )
    elif precision == "fp32" and total and by.get("f32", 0) < total:
        warning = f"requested FP32 but {total - by.get('f32', 0)}/{total} convolutions run in another precision"
    audit["realised"] = warning is None
    if warning:
        audit["warning"] = warning
        log.warning("%s", warning)
    return audit


def _quantize(
    ov_model: Any,
    model: Path,
    meta: dict[str, Any],
    cs: Any,
    acc: AccuracyControl,
    val_data: str | Path | None,
    split: str | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[Any, dict[str, Any]]:
    from ..calibration import nncf as nncf_adapter

    info: dict[str, Any] = {
        "producer": "nncf.quantize",
        "preset": "performance (symmetric)",
        "target_device": "CPU",
        "fast_bias_correction": True,
        "subset_size": len(cs.files),
    }
    try:
        with nncf_adapter.nncf_output(show=progress is not None):
            quantized, info = _run_nncf(ov_model, model, meta, cs, acc, val_data, split, info)
    except (UsageError, CalibrationError):
        raise
    except Exception as exc:
        raise ExportError(f"NNCF quantization failed: {str(exc).splitlines()[0][:200]}") from exc
    if progress:
        progress(len(cs.files), len(cs.files))
    return quantized, info


def _run_nncf(
    ov_model: Any,
    model: Path,
    meta: dict[str, Any],
    cs: Any,
    acc: AccuracyControl,
    val_data: str | Path | None,
    split: str | None,
    info: dict[str, Any],
) -> tuple[Any, dict[str, Any]]:
    from ..calibration import nncf as nncf_adapter
    from .accuracy import MiouMetric

    max_drop, val_images, threads = acc.max_miou_drop, acc.val_images, acc.threads

    if max_drop is None:
        quantized = nncf_adapter.quantize_openvino(ov_model, cs)
    else:
        metric = MiouMetric(model, meta, threads=threads)
        try:
            items = nncf_adapter.load_validation_items(val_data, val_images, split)
            quantized = nncf_adapter.quantize_openvino_with_accuracy_control(ov_model, cs, metric, items, max_drop)
            original = metric(compile_cpu(ov_model, threads), items)
            final = metric(compile_cpu(quantized, threads), items)
        finally:
            metric.close()
        info.update(
            {
                "producer": "nncf.quantize_with_accuracy_control",
                "max_miou_drop_points": max_drop,
                "metric": metric.name,
                "validation": {"data": str(val_data), "images": len(items)},
                "fp32_metric": original,
                "int8_metric": final,
                "final_drop_points": original - final,
            }
        )
    return quantized, info


def _qdq_check_inputs(
    proto: Any, meta: dict[str, Any], model: Path, data: str | Path | None, seed: int, split: str | None
) -> tuple[list[np.ndarray] | None, str | None]:
    """Real images for the self-check of a Q/DQ ONNX: ``data`` when given, else the calibration images its
    ``.calibration.json`` names (those still there, unchanged); (None, None) when there are none (then noise)."""
    from ..calibration.dataset import CalibrationSet, calibration_set_for_model

    if data is not None:
        cs = calibration_set_for_model(proto, meta, data, num_images=CHECK_IMAGES, seed=seed, split=split)
        inputs = [b for b, _ in zip(cs.batches(1), range(CHECK_IMAGES))]
        return inputs, f"{len(inputs)} images from --data {data}"
    from ..data.preprocessing import Normalization
    from .calibrate import calibration_manifest_path

    path = calibration_manifest_path(model)
    try:
        manifest = json.loads(path.read_text())
        root = Path(manifest["root"])
        files = [root / f["path"] for f in manifest["files"][: CHECK_IMAGES * 4]]
        shas = [f["sha256"] for f in manifest["files"][: CHECK_IMAGES * 4]]
        present = [f for f, sha in zip(files, shas) if f.is_file() and sha256_file(f) == sha][:CHECK_IMAGES]
        if not present:
            return None, None
        cs = CalibrationSet(
            root,
            present,
            tuple(manifest["input_size"]),
            Normalization.from_dict(manifest["normalization"]),
            manifest["input_format"],
            seed,
            [],
        )
        inputs = list(cs.batches(1))
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    return inputs, f"{len(inputs)} of its calibration images ({path.name})"


def _check_int8(check: dict[str, Any], *, qdq_source: bool, noise: bool, min_agreement: float | None) -> None:
    """Exit 6 when an INT8 IR disagrees with its source below the gate (``min_agreement``, default the INT8 gate),
    naming the likely cause and what to do."""
    from ..environment import has_int8_dot_product

    gate = INT8.min_agreement if min_agreement is None else min_agreement
    agreement = check["argmax_agreement"]
    check["min_agreement"] = gate
    if agreement >= gate:
        return
    what = (
        f"the INT8 IR agrees with {check['against']} on {agreement:.2%} of pixels ({check['inputs']}), below "
        f"the {'INT8 gate' if min_agreement is None else '--min-agreement gate'} of {gate:.2%}; nothing was written"
    )
    lower = "or lower the gate with --min-agreement (a model with random weights agrees less: its classes are close)"
    if not has_int8_dot_product():
        cause = (
            "this CPU has no VNNI/AMX (AVX2 only): OpenVINO's emulated u8 x s8 products overflow on INT8 weights "
            "not prepared for it"
        )
        fix = (
            "build the IR from the FP32 ONNX with --int8 --data DIR (NNCF applies its overflow fix), or run the "
            "Q/DQ ONNX in ONNX Runtime"
            if qdq_source
            else "re-run on a VNNI/AMX CPU, or keep the FP32/FP16 IR"
        )
    elif qdq_source:
        cause = "OpenVINO's INT8 kernels round differently from ONNX Runtime's on this already-calibrated file"
        if noise:
            cause += "; the check ran on random noise, which the calibration never saw"
            fix = f"check on real images with --data DIR, {lower}"
        else:
            fix = (
                "re-calibrate with 'rfdeploy calibrate' (more images, --method, --max-miou-drop to keep sensitive "
                f"layers in float), or build from the FP32 ONNX with --int8 --data DIR, {lower}"
            )
    else:
        cause = "the quantization is too coarse for this model"
        fix = f"use more calibration images, or --max-miou-drop to leave the most sensitive parts in float, {lower}"
    raise ExportError(f"{what}. Likely cause: {cause}", hint=fix)


def _check(
    xml: Path,
    onnx_path: Path,
    inputs: list[np.ndarray] | None,
    threads: int | None,
    precision: str,
    source: str | None = None,
    qdq: bool = False,
    min_agreement: float | None = None,
) -> dict[str, Any]:
    """The IR against its source ONNX (ONNX Runtime CPU): max abs error and argmax agreement."""
    errors, agree, scale = [], [], 0.0
    with OnnxRuntimeRunner(onnx_path, threads=threads) as ref, OpenVINORunner(xml, threads=threads) as ir:
        spec = ref.input_specs[0]
        if inputs is None:
            inputs = seeded_inputs(spec)
            source = (
                "seeded random noise (last resort: no images; pass --data DIR to check on real images)"
                if precision == "int8"
                else "seeded random inputs"
            )
        for x in inputs:
            a = next(iter(ref.infer({spec.name: x}).values()))
            b = next(iter(ir.infer({ir.input_specs[0].name: x}).values()))
            if a.shape != b.shape:
                raise ExportError(f"the IR's output shape {b.shape} differs from the ONNX model's {a.shape}")
            errors.append(float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()))
            agree.append(argmax_agreement(a, b))  # logits: argmax over classes; class maps: equal pixels
            scale = max(scale, float(np.abs(a).max()))
        executed = ir.executed_precision
    check = {
        "against": f"{onnx_path.name} in ONNX Runtime CPU",
        "inputs": source,
        "openvino_precision": executed,
        "max_abs_error": max(errors),
        "argmax_agreement": float(np.mean(agree)),
    }
    if precision == "int8":  # every INT8 build checks itself: below the INT8 agreement gate it is not kept
        _check_int8(check, qdq_source=qdq, noise=str(source).startswith("seeded"), min_agreement=min_agreement)
    if precision == "fp32":  # the IR must compute what the ONNX computes; lower precisions go to parity
        bound = FP32.logits_bound(scale)
        check["tolerance"] = f"max abs error <= {FP32.atol:g} + {FP32.rtol:g} x max|onnx| = {bound:.3g}"
        if check["max_abs_error"] > bound:
            raise ExportError(
                f"the FP32 IR differs from the ONNX model by {check['max_abs_error']:.3g} "
                f"(> {bound:.3g}). Report this with the model and the openvino version"
            )
    return check
