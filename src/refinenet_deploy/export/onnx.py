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
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from .._optional import require
from ..data.preprocessing import Normalization, preprocess
from ..environment import package_versions
from ..errors import ExportError, IncompatibleArtifactError, RefineNetDeployError, UsageError
from ..models import LoadedModel, load_model
from ..models.layers import upsample_logits
from ..validate.compare import OutputDiff, compare_outputs
from ..validate.tolerances import FP16, FP32, Tolerance
from .metadata import ONNX_METADATA_KEY, SCHEMA_VERSION, sidecar_path, utc_now, write_json_atomic

log = logging.getLogger(__name__)

HEADS = ("logits", "upsample", "argmax")
INPUT_FORMATS = ("nchw-float", "nhwc-uint8")
SIMPLIFIERS = ("onnxsim", "onnxslim", "none")
EXPORTERS = ("torchscript", "dynamo")
SUPPORTED_OPSETS = range(13, 19)
INPUT_NAME = "input"
DEFAULT_VERIFY_SIZES: tuple[tuple[int, int], ...] = ((375, 500), (468, 625))


@dataclass(frozen=True)
class ExportSpec:
    """What to export; the CLI's options one-to-one."""

    arch: str = "auto"
    num_classes: int | None = None
    input_size: tuple[int, int] = (512, 512)
    batch: int = 1
    dynamic: bool = False
    dynamic_batch: bool = False
    opset: int = 17
    simplify: str = "onnxsim"
    head: str = "logits"
    input_format: str = "nchw-float"
    fp16: bool = False
    exporter: str = "torchscript"
    data: str | None = None
    verify_sizes: tuple[tuple[int, int], ...] = DEFAULT_VERIFY_SIZES
    num_verify_images: int = 4
    seed: int = 0

    def validate(self) -> None:
        choices = ((self.head, HEADS, "--head"), (self.input_format, INPUT_FORMATS, "--input-format"),
                   (self.simplify, SIMPLIFIERS, "--simplify"), (self.exporter, EXPORTERS, "--exporter"))
        for value, allowed, what in choices:
            if value not in allowed:
                raise UsageError(f"unsupported {what}: {value}. Use one of {', '.join(allowed)}")
        if self.opset not in SUPPORTED_OPSETS:
            first, last = SUPPORTED_OPSETS.start, SUPPORTED_OPSETS.stop - 1
            raise UsageError(f"unsupported opset: {self.opset}. Use {first}-{last}")
        if self.exporter == "dynamo" and self.opset < 18:
            raise UsageError(f"the dynamo exporter needs opset >= 18, got {self.opset}. Use --opset 18 or the default "
                             "exporter")
        if min(self.input_size) < 16 or self.batch < 1:
            raise UsageError(f"input size must be at least 16x16 and batch >= 1, got {self.input_size}, {self.batch}")
        if self.dynamic_batch and not self.dynamic:
            raise UsageError("--dynamic-batch needs --dynamic. Add --dynamic")

    @property
    def output_name(self) -> str:
        return "labels" if self.head == "argmax" else "logits"

    @property
    def precision(self) -> str:
        return "fp16" if self.fp16 else "fp32"


def label_dtype(num_classes: int) -> torch.dtype:
    """Smallest integer type for the argmax head that TensorRT/OpenVINO/ONNX Runtime all accept."""
    return torch.uint8 if num_classes <= 256 else torch.int32


class DeployModule(nn.Module):
    """The network as deployed: optional in-graph preprocessing of camera frames, the model, a head."""

    def __init__(self, model: nn.Module, norm: Normalization, head: str = "logits",
                 input_format: str = "nchw-float", num_classes: int = 21) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.input_format = input_format
        self.out_dtype = label_dtype(num_classes)
        self.register_buffer("scale", torch.tensor(float(norm.scale)))
        self.register_buffer("mean", torch.tensor(norm.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(norm.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_format == "nhwc-uint8":  # RGB uint8 HWC frame -> normalised NCHW float, in the graph
            x = (x.permute(0, 3, 1, 2).float() * self.scale - self.mean) / self.std
        logits = self.model(x)
        if self.head == "logits":
            return logits
        logits = upsample_logits(logits, x.shape[-2:])
        return logits if self.head == "upsample" else logits.argmax(1).to(self.out_dtype)


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


def check_output_path(output: Path, suffix: str) -> None:
    """Fail early (UsageError, exit 2) on an output path that cannot be written, before any work is done."""
    if output.suffix != suffix:
        raise UsageError(f"output must end in {suffix}: {output}. Pass -o model{suffix}")
    parent = output.parent
    if not parent.is_dir():
        raise UsageError(f"output folder does not exist: {parent}. Create it first")
    for path in (output, sidecar_path(output)):
        if path.is_dir():
            raise UsageError(f"output path is a folder: {path}. Pass a file name such as model{suffix}")
    try:  # a real write probe: os.access says yes to root even on read-only mounts
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{output.stem}.probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to the output folder: {parent} ({exc.strerror}). "
                         "Choose a writable -o path") from exc


def _normalization(loaded: LoadedModel) -> Normalization:
    meta = loaded.checkpoint.metadata.get("normalization") if loaded.checkpoint else None
    if isinstance(meta, dict) and "mean" in meta:
        return Normalization.from_dict(meta)
    return Normalization.from_name(loaded.normalization)


def _dynamic_axes(spec: ExportSpec) -> dict[str, dict[int, str]] | None:
    if not spec.dynamic:
        return None
    axes_in = {1: "height", 2: "width"} if spec.input_format == "nhwc-uint8" else {2: "height", 3: "width"}
    if spec.head == "argmax":
        axes_out = {1: "height", 2: "width"}
    elif spec.head == "upsample":
        axes_out = {2: "height", 3: "width"}
    else:
        axes_out = {2: "out_height", 3: "out_width"}
    if spec.dynamic_batch:
        axes_in[0] = axes_out[0] = "batch"
    return {INPUT_NAME: axes_in, spec.output_name: axes_out}


def _torch_export(module: nn.Module, dummy: torch.Tensor, path: Path, spec: ExportSpec) -> None:
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if spec.exporter == "torchscript":
                torch.onnx.export(module, (dummy,), str(path), opset_version=spec.opset, input_names=[INPUT_NAME],
                                  output_names=[spec.output_name], dynamic_axes=_dynamic_axes(spec),
                                  do_constant_folding=True, dynamo=False)
            else:
                shapes = None
                axes = _dynamic_axes(spec)
                if axes:
                    shapes = {"x": {i: torch.export.Dim(n, min=16 if n != "batch" else 1, max=8192)
                                    for i, n in axes[INPUT_NAME].items()}}
                torch.onnx.export(module, (dummy,), str(path), opset_version=spec.opset, input_names=[INPUT_NAME],
                                  output_names=[spec.output_name], dynamic_shapes=shapes, dynamo=True,
                                  external_data=False)
    except RefineNetDeployError:
        raise
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed: {str(exc).splitlines()[0][:200]}. "
                          "Try another --opset or --exporter") from exc


def _simplify(model: Any, simplifier: str) -> Any:
    if simplifier == "onnxsim":
        onnxsim = require("onnxsim", hint="pip install onnxsim, or use --simplify onnxslim (pure Python)")
        try:
            simplified, ok = onnxsim.simplify(model)
        except Exception as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ExportError(f"onnxsim failed: {first}. Use --simplify onnxslim or none") from exc
        if not ok:
            raise ExportError("onnxsim's own check says the simplified model differs. Use --simplify onnxslim or none")
        return simplified
    onnxslim = require("onnxslim", hint="pip install onnxslim, or use --simplify none")
    try:
        return onnxslim.slim(model)
    except Exception as exc:
        raise ExportError(f"onnxslim failed: {str(exc).splitlines()[0][:200]}. Use --simplify onnxsim or none") from exc


def _preprocessing_nodes(model: Any) -> list[str]:
    """Nodes between the graph input and the first Conv: the in-graph uint8 -> float normalisation."""
    inputs = {i.name for i in model.graph.input}
    reached, names = set(inputs), []
    for node in model.graph.node:  # graph nodes are topologically sorted
        if node.op_type == "Conv":
            break
        if any(i in reached for i in node.input):
            names.append(node.name)
            reached.update(node.output)
    return names


def _ensure_float32_outputs(model: Any) -> None:
    """Append Cast(to FLOAT) to any FP16 graph output (the converter leaves some behind, e.g. after Resize)."""
    import onnx
    from onnx import TensorProto, helper

    for out in model.graph.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT16:
            continue
        inner = out.name + "_fp16"
        for node in model.graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
        model.graph.node.append(helper.make_node("Cast", [inner], [out.name], to=TensorProto.FLOAT,
                                                 name=f"{out.name}_to_float32"))
        out.type.tensor_type.elem_type = TensorProto.FLOAT
    onnx.checker.check_model(model)


def _to_fp16(model: Any) -> Any:
    """Float tensors to FP16 with FP32 inputs/outputs. Resize (and the converter's other unsafe ops) and the
    in-graph input normalisation stay FP32."""
    float16 = require("onnxconverter_common.float16", package="onnxconverter-common")
    try:
        converted = float16.convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False,
                                                     node_block_list=_preprocessing_nodes(model))
        _ensure_float32_outputs(converted)
        return converted
    except Exception as exc:
        raise ExportError(f"FP16 conversion failed: {str(exc).splitlines()[0][:200]}. Export FP32 instead") from exc


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
    from ..runtimes.onnxruntime import OnnxRuntimeRunner

    try:
        with OnnxRuntimeRunner(path) as runner:
            return [next(iter(runner.infer({INPUT_NAME: x}).values())) for _, x in inputs]
    except IncompatibleArtifactError as exc:  # our own graph failed to load: a conversion failure (exit 6)
        raise ExportError(f"the exported graph does not run in ONNX Runtime: {exc.message}") from exc


def _compare_all(refs: Sequence[np.ndarray], tests: Sequence[np.ndarray], inputs: Sequence[tuple[str, np.ndarray]],
                 tol: Tolerance, spec: ExportSpec) -> list[VerificationCase]:
    cases = []
    for (name, x), ref, test in zip(inputs, refs, tests):
        size = x.shape[1:3] if spec.input_format == "nhwc-uint8" else x.shape[2:4]
        cases.append(VerificationCase(name, (int(size[0]), int(size[1])), int(x.shape[0]),
                                      compare_outputs(ref, test, tol)))
    return cases


def _fail_summary(cases: Sequence[VerificationCase]) -> str:
    bad = [c for c in cases if not c.diff.within_tolerance]
    c = bad[0]
    return (f"{len(bad)} of {len(cases)} checks failed, e.g. {c.name}: max abs error {c.diff.max_abs_error:.3g}, "
            f"argmax agreement {c.diff.argmax_agreement:.4%}")


def export_onnx(checkpoint: str | Path, output: str | Path, spec: ExportSpec = ExportSpec(), *,
                command: str = "", progress: Callable[[str], None] | None = None) -> ExportResult:
    """Export ``checkpoint`` to ``output`` (.onnx) with a ``.meta.json`` sidecar; verified, atomic."""
    require("onnx")
    spec.validate()
    output = Path(output)
    check_output_path(output, ".onnx")
    step = progress or (lambda _msg: None)

    step("loading checkpoint")
    loaded = load_model(checkpoint, arch=spec.arch, num_classes=spec.num_classes)
    norm = _normalization(loaded)
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
    except OSError as exc:
        raise ExportError(f"cannot write {output}: {exc.strerror or exc}. Check disk space and permissions") from exc


def _export_in_tempdir(module: nn.Module, dummy: torch.Tensor, inputs: list[tuple[str, np.ndarray]],
                       refs: list[np.ndarray], loaded: LoadedModel, norm: Normalization, spec: ExportSpec,
                       output: Path, command: str, step: Callable[[str], None]) -> ExportResult:
    import onnx

    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.stem}.export-") as tmpdir:
        tmp = Path(tmpdir)
        raw_path = tmp / "raw.onnx"
        step(f"exporting ({spec.exporter}, opset {spec.opset})")
        _torch_export(module, dummy, raw_path, spec)
        model = onnx.load(str(raw_path))
        _fix_static_dims(model, spec, loaded.num_classes)
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:
            raise ExportError(f"onnx.checker rejected the exported graph: {str(exc).splitlines()[0][:200]}") from exc

        simplification: list[VerificationCase] = []
        if spec.simplify != "none":
            step(f"simplifying ({spec.simplify})")
            raw_outs = _run_onnx(raw_path, inputs)
            model = _simplify(model, spec.simplify)
            simp_path = tmp / "simplified.onnx"
            onnx.save(model, str(simp_path))
            simplification = _compare_all(raw_outs, _run_onnx(simp_path, inputs), inputs, FP32, spec)
            if not all(c.diff.within_tolerance for c in simplification):
                raise ExportError(f"{spec.simplify} changed the model's outputs ({_fail_summary(simplification)}). "
                                  "Refusing to write it; use --simplify none or the other simplifier")
        if spec.fp16:
            step("converting to FP16")
            model = _to_fp16(model)

        final_tmp = tmp / "final.onnx"
        onnx.save(model, str(final_tmp))
        step("verifying against PyTorch (ONNX Runtime CPU)")
        tol = FP16 if spec.fp16 else FP32
        cases = _compare_all(refs, _run_onnx(final_tmp, inputs), inputs, tol, spec)
        if not all(c.diff.within_tolerance for c in cases):
            raise ExportError(f"exported model does not match PyTorch within tolerance ({_fail_summary(cases)}); "
                              "nothing was written", hint="re-run with --debug, or try another --opset/--exporter")

        meta = _metadata(loaded, norm, spec, model, cases, simplification, tol, command)
        del model.metadata_props[:]
        for key, value in _metadata_props(meta).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(final_tmp))
        side_tmp = write_json_atomic(tmp / "meta.json", meta)
        meta_path = sidecar_path(output)
        os.replace(final_tmp, output)
        try:
            os.replace(side_tmp, meta_path)
        except OSError:
            output.unlink(missing_ok=True)  # never leave a model without its provenance
            raise
    log.info("wrote %s and %s", output, meta_path)
    return ExportResult(output, meta_path, meta, cases, simplification)


def _fix_static_dims(model: Any, spec: ExportSpec, num_classes: int) -> None:
    """The TorchScript exporter leaves some static output dims symbolic: pin batch and class count."""
    outputs = model.graph.output
    if not spec.dynamic_batch:
        for value in (*model.graph.input, *outputs):
            value.type.tensor_type.shape.dim[0].dim_value = spec.batch
    if spec.head != "argmax":
        for value in outputs:
            value.type.tensor_type.shape.dim[1].dim_value = num_classes


def _io_spec(value_info: Any) -> dict[str, Any]:
    import onnx

    t = value_info.type.tensor_type
    dims = [d.dim_param or d.dim_value for d in t.shape.dim]
    return {"name": value_info.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": dims}


def _metadata(loaded: LoadedModel, norm: Normalization, spec: ExportSpec, model: Any,
              cases: list[VerificationCase], simplification: list[VerificationCase], tol: Tolerance,
              command: str) -> dict[str, Any]:
    versions = package_versions(("torch", "onnx", "onnxruntime", "onnxsim", "onnxslim", "onnxconverter-common"))
    ckpt = loaded.checkpoint
    return {
        "format": "refinenet-deploy/onnx",
        "schema_version": SCHEMA_VERSION,
        "tool_version": __version__,
        "created": utc_now(),
        "command": command,
        "arch": loaded.arch,
        "num_classes": loaded.num_classes,
        "class_names": list(loaded.class_names) if loaded.class_names else None,
        "normalization": norm.to_dict(),
        "input_format": spec.input_format,
        "head": spec.head,
        "precision": spec.precision,
        "opset": spec.opset,
        "exporter": spec.exporter,
        "simplifier": spec.simplify,
        "dynamic": spec.dynamic,
        "dynamic_batch": spec.dynamic_batch,
        "export_size": list(spec.input_size),
        "batch": spec.batch,
        "inputs": [_io_spec(i) for i in model.graph.input],
        "outputs": [_io_spec(o) for o in model.graph.output],
        "checkpoint": {"file": ckpt.path.name if ckpt else None, "sha256": ckpt.sha256 if ckpt else None,
                       "wrapper": ckpt.wrapper if ckpt else None},
        "versions": {k: v for k, v in versions.items() if v},
        "verification": {
            "runtime": "onnxruntime CPUExecutionProvider",
            "reference": "PyTorch FP32 eager",
            "tolerance": {"atol": tol.atol, "rtol": tol.rtol, "min_argmax_agreement": tol.min_agreement},
            "cases": [c.to_dict() for c in cases],
            "simplification": [c.to_dict() for c in simplification],
            "passed": all(c.diff.within_tolerance for c in cases),
        },
    }


def _metadata_props(meta: dict[str, Any]) -> dict[str, str]:
    import json

    plain = {k: meta[k] for k in ("arch", "num_classes", "input_format", "head", "precision", "tool_version")}
    props = {f"{ONNX_METADATA_KEY}.{k}": str(v) for k, v in plain.items()}
    props[ONNX_METADATA_KEY] = json.dumps(meta)
    return props

