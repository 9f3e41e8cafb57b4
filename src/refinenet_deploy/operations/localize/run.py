"""``localize_parity``: run the reference (PyTorch, or its saved taps) and a deployed artifact with the block taps
exposed, and name the block where the artifact departs from PyTorch.

- ONNX (ONNX Runtime): a temporary in-memory copy of the graph with the tap tensors added as graph outputs.
- OpenVINO IR: the tap tensors are added as output ports when the model is read, before compiling.
- TensorRT: an engine's outputs are fixed when it is built, so its taps must be marked as network outputs at build
  time (``backends.tensorrt.taps.mark_tap_outputs``); not available from a finished engine here.

The artifact is fed through its input policy (float NCHW or uint8 NHWC), PyTorch the normalised float tensor of
the same (resized) image. Only the first ``images`` images are used (default ``DEFAULT_IMAGES``): activations are
dense, a few images give stable block statistics, and the cost stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...artifacts import InputPolicy, artifact_precision, read_metadata
from ...backends import resolve_runtime
from ...backends.base import BaseRunner
from ...backends.taps import GraphNode, expose_onnx_tensors, onnx_nodes, resolve_taps
from ...enums import Runtime
from ...environment import has_int8_dot_product
from ...errors import InvalidModelError, ModelNotFoundError, UsageError
from ...validate.localize import TapStats, ceiling_for, localize, threshold_for
from ...validate.reference import is_reference
from .actions import block_actions, keep_float_ranking, nncf_candidates
from .document import LocalizeResult
from .reference import MAX_TAPS_MIB, LiveTaps, SavedTaps, TapWriter, open_reference

DEFAULT_IMAGES = 8
FUSION_NOTE = "taps are extra outputs: the runtime may fuse differently with them"
EMULATED_INT8_NOTE = (
    "this CPU has no VNNI/AMX (AVX2 only): its INT8 kernels sum u8 x s8 products in saturating 16 bits, so a "
    "block's INT8 error here can exceed what a VNNI/AMX CPU or a GPU shows"
)


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
        from ...backends.openvino.taps import ov_nodes, read_ir

        return ov_nodes(read_ir(artifact)), None
    raise UsageError(
        f"--localize runs ONNX (ONNX Runtime) and OpenVINO IR artifacts, not {kind.value}. For TensorRT, build the "
        "engine from the ONNX with the taps marked as outputs (backends.tensorrt.taps) on the device"
    )


def _open_tap_runner(
    artifact: Path, kind: Runtime, model: Any, tensors: Sequence[str], threads: int | None, inference_precision: str
) -> BaseRunner:
    if kind == Runtime.ONNXRUNTIME:
        from ...backends.onnxruntime.runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(expose_onnx_tensors(model, tensors).SerializeToString(), threads=threads)
    from ...backends.openvino import OpenVINORunner
    from ...backends.openvino.taps import model_with_outputs

    build = model_with_outputs(artifact, tensors)
    return OpenVINORunner(build, inference_precision=inference_precision, threads=threads)


def _check_options(images: int, threshold_db: float | None, artifact: Path) -> None:
    if images < 1:
        raise UsageError(f"--localize-images must be at least 1, got {images}")
    if threshold_db is not None and not math.isfinite(threshold_db):
        raise UsageError(f"--localize-threshold must be a number of dB, got {threshold_db}")
    if not artifact.exists():
        raise ModelNotFoundError(f"artifact not found: {artifact}. Check the path")


def _tap_tensors(taps: Sequence[Any], nodes: Sequence[GraphNode], artifact: Path) -> dict[str, str]:
    try:
        return resolve_taps(taps, nodes)
    except KeyError as exc:
        raise InvalidModelError(
            f"{artifact.name}: {exc.args[0]}. --localize needs the node names 'rfdeploy export onnx' writes "
            "(/model/<module>/...); re-export the model with rfdeploy"
        ) from None


def _compare(
    runner: BaseRunner,
    reference: LiveTaps | SavedTaps,
    meta: dict[str, Any],
    tensors: dict[str, str],
    frames_args: tuple[Any, ...],
    writer: TapWriter | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, dict[str, TapStats]]:
    """Feed each image to the (active) runner and accumulate each tap's statistics against the reference."""
    by_tensor: dict[str, list[str]] = {}
    for name, tensor in tensors.items():
        by_tensor.setdefault(tensor, []).append(name)
    spec = runner.input_specs[0]
    policy = InputPolicy.from_metadata(meta, default=reference.norm).for_input(spec.name, spec.shape)
    data, split, images, artifact = frames_args
    count, frames = reference.frames(data, split, images, policy.static_size, artifact)
    stats = {t.name: TapStats() for t in reference.taps}
    for i, (image, ref) in enumerate(frames):
        outputs = runner.infer({spec.name: policy.to_input(image)})
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
    return count, stats


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
    artifact = Path(artifact)
    _check_options(images, threshold_db, artifact)
    kind = resolve_runtime(artifact, runtime)
    nodes, onnx_model = _graph_nodes(artifact, kind)
    meta = read_metadata(artifact)
    precision = artifact_precision(artifact, meta).value
    from_reference = is_reference(checkpoint)
    if from_reference and save_taps is not None:
        raise UsageError("saving taps needs a checkpoint: this run reads taps saved earlier")
    reference = open_reference(checkpoint, threads, from_reference)
    taps = reference.taps
    tensors = _tap_tensors(taps, nodes, artifact)
    writer = TapWriter(save_taps, reference, max_taps_mib) if isinstance(reference, LiveTaps) and save_taps else None
    runner = _open_tap_runner(artifact, kind, onnx_model, sorted(set(tensors.values())), threads, inference_precision)
    with runner:
        frames_args = (data, split, images, artifact.name)
        count, stats = _compare(runner, reference, meta, tensors, frames_args, writer, progress)
        executed = runner.executed_precision
    threshold = threshold_for(precision) if threshold_db is None else float(threshold_db)
    reads = {t.name: t.inputs for t in taps}
    result = localize([t.name for t in taps], reads, stats, threshold, count, ceiling_db=ceiling_for(precision))
    notes = [FUSION_NOTE]
    if kind == Runtime.OPENVINO and executed:
        notes.append(f"OpenVINO ran the float parts in {executed}")
    if precision in ("int8", "mixed"):
        if not has_int8_dot_product():
            notes.append(EMULATED_INT8_NOTE)
        actions = block_actions(
            artifact, kind, nodes, onnx_model, taps, tensors, data=data, split=split, images=images, threads=threads,
            candidates=nncf_candidates(result),
        )  # fmt: skip
        added = {r.name: r.added_db for r in result.rows}
        result.extra["actions"] = actions["blocks"]
        result.extra["keep_float"] = keep_float_ranking(
            actions["blocks"], added, [result.first_below, result.adds_most]
        )
        notes.extend(actions["notes"])
    out = LocalizeResult(result, str(artifact), kind.value, precision, tensors, reference.source, notes=notes)
    if writer is not None:
        path, stored = writer.finish()
        out.saved_taps, out.saved_images = str(path), stored
    return out
