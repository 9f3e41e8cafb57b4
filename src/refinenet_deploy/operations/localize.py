"""``localize_parity``: run PyTorch and a deployed artifact with the block taps exposed and name the block where
the artifact departs from PyTorch (``rfdeploy parity --localize``).

Wiring only: the taps are ``models.taps``; their tensors in the artifact come from ``backends.taps`` (ONNX, and
OpenVINO through ``backends.openvino.taps``); the metrics and the verdict are ``validate.localize``.

- ONNX (ONNX Runtime): a temporary in-memory copy of the graph with the tap tensors added as graph outputs.
- OpenVINO IR: the tap tensors are added as output ports when the model is read, before compiling.
- TensorRT: an engine's outputs are fixed when it is built, so its taps must be marked as network outputs at build
  time (``backends.tensorrt.taps.mark_tap_outputs``); not available from a finished engine here.

Each image is resized to the artifact's static input size (else kept at its own size) and fed to both sides: the
artifact through its input policy (float NCHW or uint8 NHWC), PyTorch as the normalised float tensor. Only the
first ``images`` images are used (default ``DEFAULT_IMAGES``): activations are dense, a few images give stable
block statistics, and the cost stays bounded.

The PyTorch taps can be saved (``save_taps``) beside a reference, ``REF.taps.npz``: the resized images and the tap
activations, at most ``MAX_TAPS_MIB`` MiB (fewer images are stored when the taps are larger; the count is recorded
and stated), so that ``localize_parity(REF.npz, artifact, ...)`` runs without PyTorch.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import InputPolicy, artifact_precision, read_metadata, utc_now, write_atomic
from ..backends import resolve_runtime
from ..backends.taps import GraphNode, expose_onnx_tensors, onnx_nodes, resolve_taps
from ..data.datasets import open_dataset
from ..data.preprocessing import Normalization, preprocess, resize_image
from ..enums import Runtime
from ..errors import InvalidModelError, ModelNotFoundError, UsageError
from ..validate.localize import Localization, TapStats, ceiling_for, localize, threshold_for
from ..validate.reference import is_reference

log = logging.getLogger(__name__)

DEFAULT_IMAGES = 8
MAX_TAPS_MIB = 256
TAPS_SCHEMA = "refinenet-deploy/localize-taps"
FUSION_NOTE = "taps are extra outputs: the runtime may fuse differently with them"


def taps_path(reference: str | Path) -> Path:
    """Where the taps of a saved reference live: ``REF.npz`` -> ``REF.taps.npz``."""
    reference = Path(reference)
    stem = reference.name[: -len(".npz")] if reference.suffix == ".npz" else reference.name
    return reference.with_name(stem + ".taps.npz")


@dataclass
class LocalizeResult:
    localization: Localization
    artifact: str
    runtime: str
    precision: str
    tensors: dict[str, str]
    source: str
    saved_taps: str | None = None
    saved_images: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "refinenet-deploy/localize",
            "version": 1,
            "created": utc_now(),
            "artifact": self.artifact,
            "runtime": self.runtime,
            "precision": self.precision,
            "reference": self.source,
            **self.localization.to_dict(),
            "tensors": self.tensors,
            "saved_taps": self.saved_taps,
            "saved_taps_images": self.saved_images,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------------------------- reference side
class _LiveTaps:
    """PyTorch: the checkpoint's model with forward hooks on every tap."""

    def __init__(self, checkpoint: str | Path, threads: int | None) -> None:
        from ..models.taps import block_taps
        from .parity import _load

        self.loaded = _load(checkpoint, threads)
        self.norm: Normalization = self.loaded.normalization  # resolved once, by load_model
        self.taps = block_taps(self.loaded.model)
        self.arch = self.loaded.arch

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        from ..models.taps import TapRecorder

        x = torch.from_numpy(preprocess(image, self.norm)[None])
        model = self.loaded.model.eval()
        with torch.no_grad(), TapRecorder(model, self.taps) as rec:
            model(x)
            return rec.take()


class _SavedTaps:
    """The taps saved beside a reference (``REF.taps.npz``)."""

    def __init__(self, path: Path) -> None:
        from ..models.taps import Tap

        if not path.is_file():
            raise UsageError(
                f"{path.name} not found: the reference has no saved taps. Save them with "
                "'rfdeploy parity CKPT ARTIFACT --save-reference REF.npz --localize'"
            )
        try:
            self.npz = np.load(path, allow_pickle=False)
            self.manifest = json.loads(bytes(self.npz["__manifest__"]).decode())
        except Exception as exc:
            raise InvalidModelError(f"{path.name} is not a readable taps file ({exc}). Save the taps again") from exc
        if self.manifest.get("schema") != TAPS_SCHEMA:
            raise InvalidModelError(f"{path.name} is not a taps file (schema {self.manifest.get('schema')!r})")
        self.taps = [
            Tap(t["name"], t["module"], t.get("side", "output"), tuple(t.get("inputs") or ()))
            for t in self.manifest["taps"]
        ]
        self.arch = self.manifest.get("arch")
        self.count = int(self.manifest["images"])

    def image(self, i: int) -> np.ndarray:
        return self.npz[f"image/{i}"]

    def values(self, i: int) -> dict[str, np.ndarray]:
        return {t.name: self.npz[f"tap/{i}/{t.name}"] for t in self.taps}


# --------------------------------------------------------------------------------------------- artifact side
def check_localize_runtimes(artifacts: Sequence[str | Path], runtime: str = "auto") -> None:
    """Before any work (exit 2): --localize runs ONNX Runtime and OpenVINO artifacts."""
    for artifact in artifacts:
        if not Path(artifact).exists():
            continue  # the parity run reports a missing artifact
        kind = resolve_runtime(artifact, runtime)
        if kind not in (Runtime.ONNXRUNTIME, Runtime.OPENVINO):
            _graph_nodes(Path(artifact), kind)  # raises the UsageError that explains it


def _graph_nodes(artifact: Path, kind: Runtime) -> tuple[list[GraphNode], Any]:
    if kind == Runtime.ONNXRUNTIME:
        import onnx

        model = onnx.load(str(artifact))
        return onnx_nodes(model), model
    if kind == Runtime.OPENVINO:
        from ..backends.openvino.taps import ov_nodes, read_ir

        return ov_nodes(read_ir(artifact)), None
    raise UsageError(
        f"--localize runs ONNX (ONNX Runtime) and OpenVINO IR artifacts, not {kind.value}. For TensorRT, build the "
        "engine from the ONNX with the taps marked as outputs (backends.tensorrt.taps) on the device"
    )


def _open_tap_runner(
    artifact: Path, kind: Runtime, model: Any, tensors: Sequence[str], threads: int | None, inference_precision: str
) -> Any:
    if kind == Runtime.ONNXRUNTIME:
        from ..backends.onnxruntime.runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(expose_onnx_tensors(model, tensors).SerializeToString(), threads=threads)
    from ..backends.openvino import OpenVINORunner
    from ..backends.openvino.taps import model_with_outputs

    build = model_with_outputs(artifact, tensors)
    return OpenVINORunner(build, inference_precision=inference_precision, threads=threads)


# --------------------------------------------------------------------------------------------- the operation
def localize_parity(
    checkpoint: str | Path,
    artifact: str | Path,
    data: str | Path | None = None,
    *,
    runtime: str = "auto",
    split: str | None = None,
    images: int = DEFAULT_IMAGES,
    threshold_db: float | None = None,
    threads: int | None = None,
    inference_precision: str = "f32",
    save_taps: str | Path | None = None,
    max_taps_mib: float = MAX_TAPS_MIB,
    progress: Callable[[int, int], None] | None = None,
) -> LocalizeResult:
    """Per-block comparison of ``artifact`` with PyTorch (``checkpoint``) or with the taps saved beside a reference
    (``checkpoint`` = ``REF.npz``; no PyTorch needed, ``data`` unused). ``threshold_db`` defaults per precision
    (``validate.localize.DEFAULT_THRESHOLD_DB``)."""
    if images < 1:
        raise UsageError(f"--localize-images must be at least 1, got {images}")
    if threshold_db is not None and not math.isfinite(threshold_db):
        raise UsageError(f"--localize-threshold must be a number of dB, got {threshold_db}")
    artifact = Path(artifact)
    if not artifact.exists():
        raise ModelNotFoundError(f"artifact not found: {artifact}. Check the path")
    kind = resolve_runtime(artifact, runtime)
    nodes, onnx_model = _graph_nodes(artifact, kind)
    meta = read_metadata(artifact)
    precision = artifact_precision(artifact, meta).value
    from_reference = is_reference(checkpoint)
    if from_reference and save_taps is not None:
        raise UsageError("saving taps needs a checkpoint: this run reads taps saved earlier")
    saved = _SavedTaps(taps_path(checkpoint)) if from_reference else None
    live = None if from_reference else _LiveTaps(checkpoint, threads)
    taps = saved.taps if saved is not None else live.taps  # type: ignore[union-attr]
    try:
        tensors = resolve_taps(taps, nodes)
    except KeyError as exc:
        raise InvalidModelError(
            f"{artifact.name}: {exc.args[0]}. --localize needs the node names 'rfdeploy export onnx' writes "
            "(/model/<module>/...); re-export the model with rfdeploy"
        ) from None
    by_tensor: dict[str, list[str]] = {}
    for name, tensor in tensors.items():
        by_tensor.setdefault(tensor, []).append(name)

    runner = _open_tap_runner(artifact, kind, onnx_model, list(by_tensor), threads, inference_precision)
    stats = {t.name: TapStats() for t in taps}
    writer = _TapWriter(save_taps, live, max_taps_mib) if save_taps is not None else None
    with runner:
        spec = runner.input_specs[0]
        default_norm = saved_norm(saved) if saved is not None else live.norm  # type: ignore[union-attr]
        policy = InputPolicy.from_metadata(meta, default=default_norm).for_input(spec.name, spec.shape)
        if saved is not None:
            count = min(images, saved.count)
            source = f"saved taps ({saved.count} images)"
            frames: Any = (saved.image(i) for i in range(count))
        else:
            if data is None:
                raise UsageError("--localize needs --data (the images) unless the reference has saved taps")
            ds = open_dataset(data, split=split)
            count = min(images, len(ds))
            if count == 0:
                raise UsageError("no images were found. Check --data")
            frames = (
                resize_image(ds[i][1], policy.static_size) if policy.static_size else ds[i][1] for i in range(count)
            )
            source = "PyTorch"
        for i, image in enumerate(frames):
            if saved is not None and policy.static_size and tuple(image.shape[:2]) != tuple(policy.static_size):
                raise UsageError(
                    f"the taps were saved at {image.shape[0]}x{image.shape[1]}; {artifact.name} takes "
                    f"{policy.static_size[0]}x{policy.static_size[1]}. Save the taps with this artifact"
                )
            ref = saved.values(i) if saved is not None else live.run(image)  # type: ignore[union-attr]
            x = policy.to_input(image)
            outputs = runner.infer({spec.name: x})
            for tensor, names in by_tensor.items():
                value = outputs.get(tensor)
                if value is None:
                    continue
                for name in names:
                    stats[name].add(ref[name], value[:1])
            if writer is not None:
                writer.add(image, ref)
            if progress:
                progress(i + 1, count)
        executed = getattr(runner, "executed_precision", None)
    threshold = threshold_for(precision) if threshold_db is None else float(threshold_db)
    reads = {t.name: t.inputs for t in taps}
    actions = None
    if precision in ("int8", "mixed"):
        actions = block_actions(
            artifact, kind, nodes, onnx_model, taps, tensors, data=data, split=split, images=images, threads=threads
        )
    result = localize([t.name for t in taps], reads, stats, threshold, count, ceiling_db=ceiling_for(precision))
    notes = [FUSION_NOTE]
    if kind == Runtime.OPENVINO and executed:
        notes.append(f"OpenVINO ran the float parts in {executed}")
    if actions is not None:
        result.extra["actions"] = actions["blocks"]
        notes.extend(actions["notes"])
    out = LocalizeResult(result, str(artifact), kind.value, precision, tensors, source, notes=notes)
    if writer is not None:
        path, stored = writer.finish()
        out.saved_taps, out.saved_images = str(path), stored
    return out


def saved_norm(saved: _SavedTaps) -> Normalization:
    norm = saved.manifest.get("normalization")
    return Normalization.from_dict(norm) if isinstance(norm, dict) else Normalization.imagenet()


class _TapWriter:
    """Collects images and PyTorch taps in memory up to a size bound, then writes ``REF.taps.npz`` atomically."""

    def __init__(self, path: str | Path, live: Any, max_mib: float) -> None:
        self.path, self.live, self.max_bytes = Path(path), live, int(max_mib * 2**20)
        self.arrays: dict[str, np.ndarray] = {}
        self.count = 0
        self.bytes = 0
        self.full = False

    def add(self, image: np.ndarray, taps: dict[str, np.ndarray]) -> None:
        if self.full:
            return
        size = image.nbytes + sum(v.astype(np.float32).nbytes for v in taps.values())
        if self.bytes + size > self.max_bytes:
            self.full = True
            return
        self.arrays[f"image/{self.count}"] = np.ascontiguousarray(image)
        for name, value in taps.items():
            self.arrays[f"tap/{self.count}/{name}"] = value.astype(np.float32)
        self.count += 1
        self.bytes += size

    def finish(self) -> tuple[Path, int]:
        if self.count == 0:
            raise UsageError(
                f"the taps of one image exceed --localize-max-mib ({self.max_bytes / 2**20:.0f} MiB); raise it"
            )
        manifest = {
            "schema": TAPS_SCHEMA,
            "version": 1,
            "created": utc_now(),
            "arch": self.live.arch,
            "normalization": self.live.norm.to_dict(),
            "images": self.count,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "taps": [t.to_dict() for t in self.live.taps],
        }
        arrays = {"__manifest__": np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8), **self.arrays}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        write_atomic(self.path, write)
        return self.path, self.count


def sqnr_chart(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """A PNG of SQNR (dB) along the network's depth, one line per artifact (``LocalizeResult.to_dict()`` each), with
    the threshold; MissingDependencyError (exit 4) without matplotlib."""
    import io

    from .._optional import require

    matplotlib = require("matplotlib", extra="report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    names: list[str] = []
    for r in results:
        blocks = r["blocks"]
        if len(blocks) > len(names):
            names = [b["block"] for b in blocks]
        ys = [b["sqnr_db"] if b["sqnr_db"] is not None else float("nan") for b in blocks]
        ax.plot(range(len(ys)), ys, marker="o", label=f"{Path(r['artifact']).name} ({r['runtime']})")
        ax.axhline(r["threshold_sqnr_db"], linestyle="--", linewidth=0.8, color="grey")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=70, fontsize=7)
    ax.set_ylabel("SQNR vs PyTorch (dB)")
    ax.set_title("block by block: SQNR along the depth (dashed: threshold)")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return write_atomic(path, lambda tmp: tmp.write_bytes(buf.getvalue()))


# --------------------------------------------------------------------------------------------- what to do about it
def block_actions(
    artifact: Path,
    kind: Runtime,
    nodes: Sequence[GraphNode],
    onnx_model: Any,
    taps: Sequence[Any],
    tensors: dict[str, str],
    *,
    data: str | Path | None,
    split: str | None = None,
    images: int = DEFAULT_IMAGES,
    threads: int | None = None,
) -> dict[str, Any]:
    """For an INT8 artifact, per block: the exclusion that keeps it in float in each tool and, for a Q/DQ ONNX
    whose FP32 source sits beside it, the mIoU (points) recovered when only this block's nodes read float inputs
    (``calibration.fallback.dequantize_nodes``, scored by the fallback's evaluator on the first ``images``
    images). Returns ``{"blocks": {block: {...}}, "notes": [...]}``."""
    import re

    from ..backends.taps import block_nodes
    from ..calibration.fallback import QDQ_OPS
    from ..models.taps import onnx_scope

    inputs = [n.name for n in nodes if n.op == "Parameter"]
    if onnx_model is not None:
        inputs = [i.name for i in onnx_model.graph.input]
    members = block_nodes(nodes, tensors, inputs)
    modules = {t.name: t for t in taps}
    blocks: dict[str, dict[str, Any]] = {}
    for name, names in members.items():
        tap = modules[name]
        scope = onnx_scope(tap.module) + "/"
        named = [n for n in names if n.startswith("/")]  # OpenVINO's own weight-decompression ops (Convert_123)
        in_scope = tap.side == "output" and named and all(n.startswith(scope) for n in named)
        patterns = [re.escape(scope) + ".*"] if in_scope else [re.escape(n) for n in names]
        blocks[name] = {
            "nodes": len(names),
            "modelopt_nodes_to_exclude": patterns,
            "nncf_ignored_scope": {"patterns": patterns},
            "tensorrt": f"calibrate --keep-float {name} (the block's Q/DQ removed; build strongly typed)",
            "miou_recovered_points": None,
        }
    notes = []
    has_qdq = onnx_model is not None and any(n.op_type in QDQ_OPS for n in onnx_model.graph.node)
    if kind != Runtime.ONNXRUNTIME or not has_qdq:
        notes.append("mIoU recovered per block: measured for Q/DQ ONNX artifacts only (re-quantize to try an IR)")
        return {"blocks": blocks, "notes": notes}
    fp32 = _fp32_source(artifact)
    if fp32 is None or data is None:
        why = "no --data" if fp32 is not None else "its FP32 source model is not beside it (sidecar source_model)"
        notes.append(f"mIoU recovered per block not measured: {why}")
        return {"blocks": blocks, "notes": notes}
    recovered = miou_recovered(onnx_model, fp32, {b: members[b] for b in blocks}, data, split, images, threads)
    for name, value in recovered.items():
        blocks[name]["miou_recovered_points"] = value
    return {"blocks": blocks, "notes": notes}


def _fp32_source(artifact: Path) -> Path | None:
    from ..artifacts import sha256_file

    source = read_metadata(artifact).get("source_model") or {}
    if not source.get("file"):
        return None
    path = artifact.parent / Path(source["file"]).name
    if not path.is_file() or (source.get("sha256") and sha256_file(path) != source["sha256"]):
        return None
    return path


def miou_recovered(
    qdq: Any,
    fp32_path: Path,
    blocks: dict[str, list[str]],
    data: str | Path,
    split: str | None,
    images: int,
    threads: int | None,
) -> dict[str, float | None]:
    """``{block: drop(fully quantized) - drop(only this block in float)}`` in mIoU points (the fallback's metric:
    vs ground truth with labels, else disagreement with FP32), one evaluation per block."""
    import onnx

    from ..calibration.fallback import dequantize_nodes, model_parts
    from .accuracy import MiouDropEvaluator

    fp32 = onnx.load(str(fp32_path))
    quantized = {n for part in model_parts(qdq).values() for n in part}
    evaluate = MiouDropEvaluator(fp32_path, data, num_images=images, split=split, threads=threads)
    try:
        first = evaluate(qdq).drop
        out: dict[str, float | None] = {}
        for name, nodes in blocks.items():
            chosen = [n for n in nodes if n in quantized]
            if not chosen:
                out[name] = 0.0
                continue
            out[name] = round(first - evaluate(dequantize_nodes(qdq, fp32, chosen)).drop, 4)
        return out
    finally:
        evaluate.close()


def keep_float_nodes(fp32: Any, meta: dict[str, Any], blocks: Sequence[str]) -> list[str]:
    """The FP32 graph's node names of ``blocks`` (``calibrate --keep-float``): what a Q/DQ producer must leave
    unquantized. The architecture comes from the model's metadata (``arch``); UsageError for an unknown block."""
    from ..models.taps import taps_for_arch

    arch = meta.get("arch")
    if not arch:
        raise UsageError("--keep-float needs the model's architecture: pass the ONNX 'rfdeploy export onnx' wrote")
    taps = taps_for_arch(arch, **(meta.get("arch_kwargs") or {}))
    known = [t.name for t in taps]
    unknown = [b for b in blocks if b not in known]
    if unknown:
        raise UsageError(f"--keep-float: unknown block {', '.join(unknown)} for {arch}. Blocks: {', '.join(known)}")
    from ..backends.taps import block_nodes

    nodes = onnx_nodes(fp32)
    try:
        tensors = resolve_taps(taps, nodes)
    except KeyError as exc:
        raise UsageError(f"--keep-float: {exc.args[0]}. Re-export the model with rfdeploy") from None
    members = block_nodes(nodes, tensors, [i.name for i in fp32.graph.input])
    return [n for b in blocks for n in members[b]]
