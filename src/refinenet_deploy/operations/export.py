"""torch -> ONNX export that matches PyTorch at every input size, simplified, verified, with provenance.

Exporter choice: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) is the default.
On this model family it exports natively at every opset 13-18 (the dynamo exporter starts at 18 and reaches
older opsets only through the version converter), it takes about a second instead of about a minute, and
after simplification its graph is the smaller of the two (Conv with folded BN, Clip/Relu, MaxPool, Add and
three Resize nodes plus shape arithmetic for dynamic sizes). ``exporter="dynamo"`` remains available.

Every export is verified before anything is written at the output path: ``onnx.checker``, then ONNX Runtime
(CPU) against PyTorch on seeded random images and, with ``data``, real images, at the export size and (for
dynamic models) at other sizes. Simplification is checked the same way against the unsimplified graph and
refused if it changes outputs. Files are written to a temporary folder beside the output and renamed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._optional import require
from ..artifacts import (
    check_output_path,
    checkpoint_input_size,
    embed_onnx_metadata,
    resolve_input_size,
    sidecar,
    staged_artifact,
)
from ..backends.onnxruntime import OnnxRuntimeRunner
from ..backends.torch.exporter import (
    DEFAULT_VERIFY_SIZES,
    EXPORTERS,
    INPUT_FORMATS,
    INPUT_NAME,
    SIMPLIFIERS,
    SUPPORTED_OPSETS,
    ExportSpec,
    fix_static_dims,
    io_spec,
    simplify,
    to_fp16,
    torch_export,
)
from ..data.preprocessing import Normalization, preprocess
from ..errors import ExportError, IncompatibleArtifactError, write_failed
from ..models import DeployModule, LoadedModel, load_model
from ..models.deploy import HEADS
from ..validate.compare import OutputDiff, compare_outputs
from ..validate.tolerances import FP16, FP32, Tolerance

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_VERIFY_SIZES",
    "EXPORTERS",
    "HEADS",
    "INPUT_FORMATS",
    "SIMPLIFIERS",
    "SUPPORTED_OPSETS",
    "ExportResult",
    "ExportSpec",
    "VerificationCase",
    "export_onnx",
    "verification_inputs",
]


@dataclass(frozen=True)
class VerificationCase:
    name: str
    size: tuple[int, int]
    batch: int
    diff: OutputDiff

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.name, "size": list(self.size), "batch": self.batch, **self.diff.to_dict()}


@dataclass
class ExportResult:
    path: Path
    metadata_path: Path
    metadata: dict[str, Any]
    cases: list[VerificationCase] = field(default_factory=list)
    simplification: list[VerificationCase] = field(default_factory=list)


def _random_images(rng: np.random.Generator, batch: int, size: tuple[int, int]) -> np.ndarray:
    """Smooth random colour fields plus noise: closer to photos than white noise, seeded."""
    h, w = size
    coarse = rng.integers(0, 256, size=(batch, max(2, h // 16), max(2, w // 16), 3)).astype(np.float32)
    from PIL import Image

    imgs = [np.asarray(Image.fromarray(c.astype(np.uint8)).resize((w, h), Image.BILINEAR)) for c in coarse]
    noisy = np.stack(imgs).astype(np.float32) + rng.normal(0, 12, size=(batch, h, w, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _to_model_input(images: np.ndarray, spec: ExportSpec, norm: Normalization) -> np.ndarray:
    if spec.input_format == "nhwc-uint8":
        return np.ascontiguousarray(images)
    return np.stack([preprocess(im, norm) for im in images])


def verification_inputs(spec: ExportSpec, norm: Normalization) -> list[tuple[str, np.ndarray]]:
    """Named model inputs: random images at each size to check, plus real images from ``spec.data``."""
    rng = np.random.default_rng(spec.seed)
    sizes = [tuple(spec.input_size)]
    if spec.dynamic:
        sizes += [s for s in spec.verify_sizes if tuple(s) not in sizes]
    batches = [spec.batch] + ([1 if spec.batch > 1 else 2] if spec.dynamic_batch else [])
    cases = []
    for size in sizes:
        for b in batches:
            images = _random_images(rng, b, size)
            cases.append((f"random-{size[0]}x{size[1]}-b{b}", _to_model_input(images, spec, norm)))
    if spec.data:
        from PIL import Image

        from ..data.datasets import open_dataset

        ds = open_dataset(spec.data)
        for i in range(min(spec.num_verify_images, len(ds))):
            sample, image, _ = ds[i]
            if not spec.dynamic:
                h, w = spec.input_size
                image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
            batch = np.repeat(image[None], spec.batch, axis=0)
            cases.append((f"image {i + 1} ({sample.name})", _to_model_input(batch, spec, norm)))
    return cases


def _run_onnx(path: Path, inputs: Sequence[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    try:
        with OnnxRuntimeRunner(path) as runner:
            return [next(iter(runner.infer({INPUT_NAME: x}).values())) for _, x in inputs]
    except IncompatibleArtifactError as exc:  # our own graph failed to load: a conversion failure (exit 6)
        raise ExportError(f"the exported graph does not run in ONNX Runtime: {exc.message}") from exc


def _compare_all(
    refs: Sequence[np.ndarray],
    tests: Sequence[np.ndarray],
    inputs: Sequence[tuple[str, np.ndarray]],
    tol: Tolerance,
    spec: ExportSpec,
) -> list[VerificationCase]:
    cases = []
    for (name, x), ref, test in zip(inputs, refs, tests):
        size = x.shape[1:3] if spec.input_format == "nhwc-uint8" else x.shape[2:4]
        cases.append(
            VerificationCase(name, (int(size[0]), int(size[1])), int(x.shape[0]), compare_outputs(ref, test, tol))
        )
    return cases


def _fail_summary(cases: Sequence[VerificationCase]) -> str:
    bad = [c for c in cases if not c.diff.within_tolerance]
    c = bad[0]
    return (
        f"{len(bad)} of {len(cases)} checks failed, e.g. {c.name}: max abs error {c.diff.max_abs_error:.3g}, "
        f"argmax agreement {c.diff.argmax_agreement:.4%}"
    )


def export_onnx(
    checkpoint: str | Path,
    output: str | Path,
    spec: ExportSpec = ExportSpec(),
    *,
    command: str = "",
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``checkpoint`` to ``output`` (.onnx) with a ``.meta.json`` sidecar; verified, atomic."""
    require("onnx")
    spec.validate()
    output = Path(output)
    check_output_path(output, ".onnx", inputs=[checkpoint, spec.data])
    step = progress or (lambda _msg: None)

    step("loading checkpoint")
    loaded = load_model(checkpoint, arch=spec.arch, num_classes=spec.num_classes)
    size, source = resolve_input_size(
        spec.input_size,
        checkpoint_size=checkpoint_input_size(loaded.checkpoint.metadata) if loaded.checkpoint else None,
        model_default=loaded.cfg.input_size,
    )
    if spec.input_size is None:
        log.info("export size %dx%d (from %s); pass --input-size to choose another", *size, source)
    spec = replace(spec, input_size=size)
    spec.validate()
    norm = loaded.normalization
    module = DeployModule(loaded.model, norm, spec.head, spec.input_format, loaded.num_classes).eval()
    # For a class-map head the reference keeps the upsampled logits, so ties can be told from errors.
    ref_head = "upsample" if spec.head == "argmax" else spec.head
    reference = DeployModule(loaded.model, norm, ref_head, spec.input_format, loaded.num_classes).eval()
    h, w = spec.input_size
    if spec.input_format == "nhwc-uint8":
        dummy = torch.zeros(spec.batch, h, w, 3, dtype=torch.uint8)
    else:
        dummy = torch.zeros(spec.batch, 3, h, w)

    inputs = verification_inputs(spec, norm)
    step("computing PyTorch reference outputs")
    with torch.inference_mode():
        refs = [reference(torch.from_numpy(x)).numpy() for _, x in inputs]

    try:
        return _export_in_tempdir(module, dummy, inputs, refs, loaded, norm, spec, output, command, step)
    except OSError as exc:  # the environment refused a write: exit 2 naming the output, as every writer
        raise write_failed(output, exc) from exc


def _export_in_tempdir(
    module: nn.Module,
    dummy: torch.Tensor,
    inputs: list[tuple[str, np.ndarray]],
    refs: list[np.ndarray],
    loaded: LoadedModel,
    norm: Normalization,
    spec: ExportSpec,
    output: Path,
    command: str,
    step: Callable[[str], None],
) -> ExportResult:
    import onnx

    with staged_artifact(output, "export") as stage:
        raw_path = stage.dir / "raw.onnx"
        step(f"exporting ({spec.exporter}, opset {spec.opset})")
        torch_export(module, dummy, raw_path, spec)
        model = onnx.load(str(raw_path))
        fix_static_dims(model, spec, loaded.num_classes)
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:
            raise ExportError(f"onnx.checker rejected the exported graph: {str(exc).splitlines()[0][:200]}") from exc

        simplification: list[VerificationCase] = []
        if spec.simplify != "none":
            step(f"simplifying ({spec.simplify})")
            raw_outs = _run_onnx(raw_path, inputs)
            model = simplify(model, spec.simplify)
            simp_path = stage.dir / "simplified.onnx"
            onnx.save(model, str(simp_path))
            simplification = _compare_all(raw_outs, _run_onnx(simp_path, inputs), inputs, FP32, spec)
            if not all(c.diff.within_tolerance for c in simplification):
                raise ExportError(
                    f"{spec.simplify} changed the model's outputs ({_fail_summary(simplification)}). "
                    "Refusing to write it; use --simplify none or the other simplifier"
                )
        if spec.fp16:
            step("converting to FP16")
            model = to_fp16(model)

        onnx.save(model, str(stage.model))
        step("verifying against PyTorch (ONNX Runtime CPU)")
        tol = FP16 if spec.fp16 else FP32
        cases = _compare_all(refs, _run_onnx(stage.model, inputs), inputs, tol, spec)
        if not all(c.diff.within_tolerance for c in cases):
            raise ExportError(
                f"exported model does not match PyTorch within tolerance ({_fail_summary(cases)}); nothing was written",
                hint="re-run with --debug, or try another --opset/--exporter",
            )

        meta = _metadata(loaded, norm, spec, model, cases, simplification, tol, command)
        if spec.trt_check:
            trt_check = tensorrt_check(stage.model, model, spec, step)
            if trt_check is not None:
                meta["verification"]["tensorrt"] = trt_check
        embed_onnx_metadata(model, meta)
        onnx.save(model, str(stage.model))
        result = stage.commit(meta)
    log.info("wrote %s and %s", result.path, result.metadata_path)
    return ExportResult(result.path, result.metadata_path, result.metadata, cases, simplification)


def tensorrt_check(path: Path, model: Any, spec: ExportSpec, step: Callable[[str], None]) -> dict[str, Any] | None:
    """Parse and build the exported ONNX with the installed TensorRT library (TensorRT-RTX builds on a CPU), at
    builder optimisation level 0 (the quickest build: this checks that it builds, not how fast it runs); None when
    no TensorRT library imports. A parse or build failure is an ExportError (exit 6) naming the node."""
    from ..backends.tensorrt.builder import BuildOptions, build_engine_plan, input_profiles
    from ..backends.tensorrt.library import load_library
    from ..errors import EngineBuildError, MissingDependencyError

    try:
        lib = load_library("auto")
    except MissingDependencyError:
        return None
    step(f"checking that {lib.describe()['generation']} parses and builds it")
    meta = {"export_size": list(spec.input_size), "batch": spec.batch}
    profiles = input_profiles(model, spec.input_format, meta)
    try:
        outcome = build_engine_plan(
            lib, path, profiles, BuildOptions(precision=spec.precision, opt_level=0, detailed_profiling=False)
        )
    except EngineBuildError as exc:
        raise ExportError(
            f"the exported ONNX does not build with {lib.name} {lib.version}: {exc.message}",
            hint="pass --no-trt-check to export for other runtimes anyway",
        ) from exc
    return {
        "library": lib.name,
        "version": lib.version,
        "parsed": True,
        "built": True,
        "layers": len(outcome.network_layers),
        "build_seconds": round(outcome.seconds, 3),
        "shapes": [p.to_dict() for p in profiles],
    }


def _metadata(
    loaded: LoadedModel,
    norm: Normalization,
    spec: ExportSpec,
    model: Any,
    cases: list[VerificationCase],
    simplification: list[VerificationCase],
    tol: Tolerance,
    command: str,
) -> dict[str, Any]:
    ckpt = loaded.checkpoint
    return sidecar(
        "onnx",
        spec.precision,
        command=command,
        packages=("torch", "onnx", "onnxruntime", "onnxsim", "onnxslim", "onnxconverter-common"),
        arch=loaded.arch,
        num_classes=loaded.num_classes,
        class_names=list(loaded.class_names) if loaded.class_names else None,
        normalization=norm.to_dict(),
        input_format=spec.input_format,
        head=spec.head,
        opset=spec.opset,
        exporter=spec.exporter,
        simplifier=spec.simplify,
        dynamic=spec.dynamic,
        dynamic_batch=spec.dynamic_batch,
        export_size=list(spec.input_size),
        batch=spec.batch,
        inputs=[io_spec(i) for i in model.graph.input],
        outputs=[io_spec(o) for o in model.graph.output],
        checkpoint={
            "file": ckpt.path.name if ckpt else None,
            "sha256": ckpt.sha256 if ckpt else None,
            "wrapper": ckpt.wrapper if ckpt else None,
        },
        verification={
            "runtime": "onnxruntime CPUExecutionProvider",
            "reference": "PyTorch FP32 eager",
            "tolerance": {"atol": tol.atol, "rtol": tol.rtol, "min_argmax_agreement": tol.min_agreement},
            "cases": [c.to_dict() for c in cases],
            "simplification": [c.to_dict() for c in simplification],
            "passed": all(c.diff.within_tolerance for c in cases),
        },
    )
