"""``validate_parity``: a checkpoint (or a saved reference) and a deployed artifact, one dataset, one report.

Glue between ``models`` (the PyTorch reference), ``backends`` (the backend runner, chosen from the file
and its metadata) and ``validate.parity_engine`` (the engine, which sees only runners).

The PyTorch side can be computed once and reused (``validate.reference``): ``save_reference`` (and
``validate_parity(..., save_reference=REF)``) write it; ``validate_parity(REF.npz, artifact, data)`` compares an
artifact against it without importing PyTorch; with ``reference_cache=DIR`` a live run stores its reference under
its digest and the next run with the same checkpoint, data and settings reuses it (one PyTorch pass for N
artifacts). PyTorch and the models are imported only where the PyTorch side actually runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..artifacts import (
    InputPolicy,
    artifact_precision,
    probe_output,
    read_metadata,
    sha256_file,
    utc_now,
    write_atomic,
    write_json_atomic,
)
from ..backends import open_runner, resolve_runtime
from ..data.datasets import open_dataset
from ..data.preprocessing import Normalization
from ..enums import Precision, Runtime
from ..environment import package_versions
from ..errors import DataError, ModelNotFoundError, OutputWriteError, ParityError, UsageError
from ..validate.metrics import LabelRangeCounter
from ..validate.parity_engine import ParityEngine, ParityReport, Predictor
from ..validate.reference import (
    ReferenceSettings,
    ReferenceWriter,
    SavedReference,
    cache_entry,
    check_reference,
    fingerprint_samples,
    is_reference,
    new_manifest,
    reference_digest,
)
from ..validate.tolerances import Gates, tolerance_for

log = logging.getLogger(__name__)

SCALE_RANGE = (0.25, 4.0)
REFERENCE_PACKAGES = ("torch",)  # the reference's numbers depend on them: part of the cache key


# --------------------------------------------------------------------------------------------- options
def parse_scales(text: str | None) -> tuple[float, ...]:
    """``--multi-scale 0.75,1,1.25`` -> (0.75, 1.0, 1.25); ``None`` -> (1.0,). Finite, within 0.25..4 (exit 2)."""
    if not text:
        return (1.0,)
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        raise UsageError(f"--multi-scale expects comma-separated numbers such as 0.75,1,1.25, got {text!r}") from None
    return check_scales(scales)


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    lo, hi = SCALE_RANGE
    bad = [s for s in scales if not (math.isfinite(s) and lo <= s <= hi)]
    if not scales or bad:
        raise UsageError(f"--multi-scale: each scale must be a number within {lo:g}..{hi:g}, got {list(scales)}")
    if len(set(scales)) != len(scales):
        raise UsageError(f"--multi-scale: a scale is repeated: {list(scales)}")
    return tuple(float(s) for s in scales)


def check_gate_options(max_miou_drop: float | None, min_agreement: float | None) -> float | None:
    """Bounds of the gate options (exit 2); returns ``min_agreement`` as a fraction (it accepts a percentage)."""
    if max_miou_drop is not None and not (math.isfinite(max_miou_drop) and 0 <= max_miou_drop <= 100):
        raise UsageError(f"--max-miou-drop must be within 0..100 (mIoU points), got {max_miou_drop}")
    if min_agreement is None:
        return None
    if not (math.isfinite(min_agreement) and 0 <= min_agreement <= 100):
        raise UsageError(
            f"--min-agreement must be within 0..1 (a fraction) or 0..100 (a percentage), got {min_agreement}"
        )
    return min_agreement / 100 if min_agreement > 1 else min_agreement


def check_parity_outputs(
    *,
    inputs: Sequence[str | Path | None],
    json_out: str | Path | None = None,
    markdown_out: str | Path | None = None,
    worst_dir: str | Path | None = None,
    save_reference: str | Path | None = None,
    data: str | Path | None = None,
) -> None:
    """Probe every output before any work (exit 2): none may be an input (checkpoint, artifact and its sidecar or
    ``.bin``, reference) or lie inside the dataset folder ``data`` (its files are inputs too, and a folder of images
    would read the panels back), a file output may not be a folder, ``--save-worst`` may not be a file, and each
    must be writable. Missing parent folders are created when writing."""
    outputs = [
        (json_out if json_out is not None and str(json_out) != "-" else None, "--json", "file"),
        (markdown_out, "--markdown", "file"),
        (worst_dir, "--save-worst", "dir"),
        (save_reference, "--save-reference", "file"),
    ]
    seen: dict[Path, str] = {}
    for path, what, kind in outputs:
        if path is None:
            continue
        if what == "--save-reference" and not is_reference(path):
            raise UsageError(f"--save-reference must end in .npz: {path}. Pass --save-reference ref.npz")
        if data is not None and Path(data).is_dir() and Path(path).resolve().is_relative_to(Path(data).resolve()):
            raise UsageError(
                f"{what} {path} is inside the dataset {data}: it would change the input. Choose a path outside it"
            )
        probe_output(path, inputs=[*inputs, data], what=what, kind=kind)
        key = Path(path).absolute()
        if key in seen:
            raise UsageError(f"{what} and {seen[key]} are the same path: {path}. Give each output its own path")
        seen[key] = what


# --------------------------------------------------------------------------------------------- pieces
def _dataset(data: str | Path, split: str | None, num_images: int | None) -> tuple[Any, int]:
    ds = open_dataset(data, split=split)
    n = len(ds) if num_images is None else min(num_images, len(ds))
    return ds, n


def _samples(ds: Any, n: int) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
    for i in range(n):
        sample, image, label = ds[i]
        yield sample.name, image, label


def _versions() -> dict[str, str]:
    return {k: v for k, v in package_versions(REFERENCE_PACKAGES).items() if v}


def _normalization_key(meta: dict[str, Any]) -> Any:
    norm = meta.get("normalization")
    return norm if isinstance(norm, dict) else "checkpoint"


def _settings(policy: InputPolicy, scales: Sequence[float], flip: bool, normalization: Any) -> ReferenceSettings:
    return ReferenceSettings(
        scales=tuple(float(s) for s in scales),
        flip=bool(flip),
        static_size=policy.static_size,
        input_format=policy.input_format,
        head=policy.head,
        normalization=normalization,
    )


def _model_info(loaded: Any, normalization: Normalization) -> dict[str, Any]:
    return {
        "arch": loaded.arch,
        "num_classes": loaded.num_classes,
        "class_names": list(loaded.class_names) if loaded.class_names else None,
        "normalization": normalization.to_dict(),
    }


def _load(checkpoint: str | Path, threads: int | None) -> Any:
    """The PyTorch model (imports torch)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    from ..models import load_model

    return load_model(checkpoint)


def _open_reference_runner(loaded: Any, policy: InputPolicy) -> Any:
    from ..backends.torch import open_checkpoint

    return open_checkpoint(loaded, policy=policy)


def _open_cached(cache_dir: str | Path | None, digest: str, need_logits: bool) -> SavedReference | None:
    if cache_dir is None:
        return None
    path = cache_entry(cache_dir, digest)
    if not path.is_file():
        return None
    ref = None
    try:
        ref = SavedReference(path)
        ref.verify()  # every array read once: a damaged entry is found here, not halfway through the run
    except Exception as exc:  # a damaged cache entry is recomputed, never trusted
        if ref is not None:
            ref.close()
        log.warning("discarding the damaged cached reference %s (%s); computing it again", path, exc)
        return None  # the live run writes a fresh entry over it
    if ref.digest != digest or (need_logits and not ref.has_logits):
        ref.close()
        return None
    return ref


def _class_names(info: dict[str, Any], meta: dict[str, Any], ds: Any) -> tuple[str, ...]:
    names = info.get("class_names") or meta.get("class_names") or ds.class_names
    if not names or len(names) != info["num_classes"]:
        names = tuple(str(i) for i in range(info["num_classes"]))
    return tuple(names)


def _warn_labels(summary_counter: LabelRangeCounter) -> None:
    message = summary_counter.message()
    if message:
        log.warning("%s. Check the dataset's class count, or pass --strict-labels to fail", message)


@dataclass
class _Recorder:
    """Fans the live reference's predictions out to the writers (a --save-reference file, the cache)."""

    writers: list[ReferenceWriter]
    cache: ReferenceWriter | None = None  # best effort: a cache that cannot be written is dropped with a warning

    def __call__(self, name: str, class_map: np.ndarray, raw: np.ndarray | None) -> None:
        for w in list(self.writers):
            try:
                w.add(name, class_map, raw)
            except OutputWriteError as exc:
                self._drop_cache(w, exc)

    def _drop_cache(self, writer: ReferenceWriter, exc: OutputWriteError) -> None:
        if writer is not self.cache:
            raise exc
        writer.abort()
        self.writers.remove(writer)
        self.cache = None
        log.warning("not caching the PyTorch reference: %s", exc.message)

    def finish(self) -> list[Path]:
        written = []
        for w in list(self.writers):
            try:
                w.finish()
            except OutputWriteError as exc:
                self._drop_cache(w, exc)
                continue
            written.append(w.output)
        return written

    def abort(self) -> None:
        for w in self.writers:
            w.abort()


# --------------------------------------------------------------------------------------------- parity
def check_torch_options(models: Sequence[str | Path], runtime: str, device: str | None, precision: str) -> None:
    """Refuse (exit 2, before any work) ``--device``/``--precision`` for MODELs that are not checkpoints: those
    options set how a checkpoint runs in PyTorch; an artifact runs as it was built."""
    if device in (None, "cpu") and precision == "fp32":
        return
    for model in models:
        kind = resolve_runtime(model, runtime)
        if kind != Runtime.TORCH:
            raise UsageError(
                f"--device/--precision run a checkpoint in PyTorch; {Path(model).name} runs in {kind.value} as built. "
                "Drop them, or run parity once per kind of MODEL"
            )


def validate_parity(
    checkpoint: str | Path,
    artifact: str | Path,
    data: str | Path,
    *,
    runtime: str = "auto",
    split: str | None = None,
    num_images: int | None = None,
    max_miou_drop: float | None = None,
    min_agreement: float | None = None,
    scales: Sequence[float] | None = None,
    flip: bool | None = None,
    save_worst: int = 0,
    worst_dir: str | Path | None = None,
    threads: int | None = None,
    inference_precision: str | None = "fp32",
    progress: Callable[[int, int], None] | None = None,
    save_reference: str | Path | None = None,
    reference_logits: bool = False,
    reference_cache: str | Path | None = None,
    device: str | None = None,
    torch_precision: str = "fp32",
) -> ParityReport:
    """Run ``artifact`` and the PyTorch reference on the same inputs; return the parity report.

    ``checkpoint`` is a PyTorch checkpoint, or a reference saved with ``save_reference`` (``.npz``): then PyTorch
    is not imported, and the reference must have been made from the same data and settings (else
    ``IncompatibleArtifactError``, exit 7). ``scales``/``flip`` default to (1.0,)/False, or to the saved
    reference's. ``save_reference``: also write the live reference there (with logits if ``reference_logits``).
    ``reference_cache``: a folder where live references are cached by digest and reused.
    ``device`` and ``torch_precision`` (fp32 | tf32 | fp16 | bf16) run a checkpoint ``artifact`` in PyTorch on that
    device at that precision (the PyTorch FP16 GPU baseline, against an FP32 reference); the reference stays FP32.

    The report's ``passed`` is False when a gate failed; raising is the caller's choice (the CLI exits 3).
    """
    min_agreement = check_gate_options(max_miou_drop, min_agreement)
    if scales is not None:
        scales = check_scales(scales)
    if save_worst < 0 or (save_worst and worst_dir is None):
        raise UsageError("--save-worst needs a count of at least 1 and a folder: --save-worst K DIR")
    artifact = Path(artifact)
    if not artifact.exists():
        raise ModelNotFoundError(f"artifact not found: {artifact}. Check the path")
    from_reference = is_reference(checkpoint)
    if from_reference and save_reference is not None:
        raise UsageError("--save-reference needs a checkpoint: this run compares with a saved reference already")
    check_torch_options([artifact], runtime, device, torch_precision)
    kind = resolve_runtime(artifact, runtime)
    meta = read_metadata(artifact) if kind != Runtime.TORCH else {}
    ds, n = _dataset(data, split, num_images)

    saved: SavedReference | None = SavedReference(checkpoint) if from_reference else None
    if saved is not None:
        if scales is None:
            scales = tuple(saved.settings.get("scales") or (1.0,))
        if flip is None:
            flip = bool(saved.settings.get("flip"))
    scales = tuple(scales) if scales is not None else (1.0,)
    flip = bool(flip)
    if saved is not None:
        info = saved.model
        default_norm = Normalization.from_dict(info["normalization"])
    files = None
    if saved is not None or reference_cache is not None or save_reference is not None:
        files = fingerprint_samples(ds.samples[:n], ds.root)

    loaded = None
    source = "saved reference" if saved is not None else "PyTorch"
    if kind == Runtime.TORCH:
        if saved is None:
            loaded = _load(checkpoint, threads)
            default_norm = loaded.normalization
            info = _model_info(loaded, default_norm)
        else:  # the checkpoint runs as the reference was made: its input format, head and (below) static size
            meta = {"input_format": saved.settings.get("input_format"), "head": saved.settings.get("head")}
        policy = InputPolicy.from_metadata(meta, default=default_norm)
        key_settings = _settings(policy, scales, flip, "checkpoint")
        from ..backends import resolve_device
        from ..backends.torch import open_checkpoint

        backend = open_checkpoint(
            artifact, policy=policy, arch=info["arch"], device=resolve_device(Runtime.TORCH, device)
        )
        backend.configure(precision=torch_precision)
        meta = {**meta, "num_classes": backend.loaded.num_classes}
        precision = torch_precision  # tf32 is judged by the fp16 gates (tolerance_for)
    else:
        backend = open_runner(artifact, kind.value, threads=threads, inference_precision=inference_precision, meta=meta)
        precision = artifact_precision(artifact, meta).value
        hint = Precision.lookup(inference_precision)
        if kind == Runtime.OPENVINO and precision == "fp32" and hint in (Precision.BF16, Precision.FP16):
            precision = hint.value  # what runs sets the gates
    defaults = tolerance_for(precision).gates
    gates = Gates(
        max_miou_drop=defaults.max_miou_drop if max_miou_drop is None else max_miou_drop,
        min_agreement=defaults.min_agreement if min_agreement is None else min_agreement,
    )

    recorder: _Recorder | None = None
    reference_runner = None
    digest: str | None = None
    written: list[Path] = []
    with backend:
        spec = backend.input_specs[0]
        if saved is None and kind != Runtime.TORCH:
            bound = InputPolicy.from_metadata(meta).for_input(spec.name, spec.shape)
            key_settings = _settings(bound, scales, flip, _normalization_key(meta))
            if files is not None:
                digest = reference_digest(sha256_file(checkpoint), files, key_settings, _versions())
            if reference_cache is not None and digest is not None and save_reference is None:
                saved = _open_cached(reference_cache, digest, need_logits=True)
                if saved is not None:
                    source = "cached reference"
                    info = saved.model
                    default_norm = Normalization.from_dict(info["normalization"])
                    log.info("reusing the cached PyTorch reference %s", saved.path)
            if saved is None:
                loaded = _load(checkpoint, threads)
                default_norm = loaded.normalization
                info = _model_info(loaded, default_norm)
        policy = InputPolicy.from_metadata(meta, default=default_norm).for_input(spec.name, spec.shape)
        if kind == Runtime.TORCH and saved is not None and saved.settings.get("static_size"):
            policy = replace(policy, static_size=tuple(int(v) for v in saved.settings["static_size"]))
        settings = _settings(policy, scales, flip, policy.normalization.to_dict())
        if saved is None and meta.get("num_classes") not in (None, info["num_classes"]):
            raise UsageError(
                f"the artifact has {meta['num_classes']} classes, the checkpoint {info['num_classes']}. "
                "Compare an artifact with the checkpoint it was exported from"
            )
        if saved is not None:
            check_reference(
                saved,
                files=files or [],
                settings=settings,
                num_classes=meta.get("num_classes"),
                all_images=num_images is None,
            )
            if (
                precision == "fp32"
                and policy.head != "argmax"
                and tolerance_for(precision).atol is not None
                and not saved.has_logits
            ):
                log.warning(
                    "the reference %s has no logits: the FP32 logits gate does not run. Save the reference with "
                    "--reference-logits to run it",
                    saved.path.name,
                )
            reference: Any = saved
        else:
            reference_runner = _open_reference_runner(loaded, policy)
            reference = reference_runner
            if files is not None and (save_reference is not None or reference_cache is not None):
                manifest = new_manifest(
                    checkpoint=checkpoint,
                    checkpoint_sha256=loaded.checkpoint.sha256 if loaded.checkpoint else sha256_file(checkpoint),
                    model=info,
                    settings=settings,
                    key_settings=key_settings,
                    files=files,
                    data=data,
                    split=getattr(ds, "split", None),
                    versions=_versions(),
                )
                writers = []
                if save_reference is not None:
                    writers.append(ReferenceWriter(save_reference, manifest, with_logits=reference_logits))
                cache = None
                if reference_cache is not None and kind != Runtime.TORCH:
                    try:
                        cache = ReferenceWriter(cache_entry(reference_cache, digest), manifest, with_logits=True)
                        writers.append(cache)
                    except OutputWriteError as exc:
                        log.warning("not caching the PyTorch reference: %s", exc.message)
                recorder = _Recorder(writers, cache)
        names = _class_names(info, meta, ds)
        engine = ParityEngine(
            reference,
            backend,
            num_classes=info["num_classes"],
            class_names=names,
            policy=policy,
            precision=precision,
            gates=gates,
            scales=scales,
            flip=flip,
            save_worst=save_worst,
            ignore_index=getattr(ds, "ignore_index", 255),
            record=recorder,
        )
        try:
            if reference_runner is not None:
                with reference_runner:
                    report = engine.run(_samples(ds, n), progress=(lambda i: progress(i, n)) if progress else None)
            else:
                report = engine.run(_samples(ds, n), progress=(lambda i: progress(i, n)) if progress else None)
            if recorder is not None:
                written = recorder.finish()
        except BaseException:
            if recorder is not None:
                recorder.abort()
            raise
        finally:
            if saved is not None:
                saved.close()
        executed = getattr(backend, "executed_precision", None)
        spelled = Precision.lookup(executed)  # recorded in one spelling: fp32, fp16, bf16, tf32
        executed = spelled.value if spelled is not None else executed
    _warn_labels(engine.labels)
    if save_worst:
        from ..validate.panels import save_panels

        paths = save_panels(engine.worst_records(), worst_dir)
        for entry, path in zip(report.worst, paths):
            entry["panel"] = str(path)
    if saved is not None:
        ckpt_sha = (saved.manifest.get("checkpoint") or {}).get("sha256")
    else:
        ckpt_sha = loaded.checkpoint.sha256 if loaded.checkpoint else None
    art_sha = (meta.get("checkpoint") or {}).get("sha256")
    report.context = {
        "created": utc_now(),
        "tool_version": __version__,
        "checkpoint": str(checkpoint) if not from_reference else (saved.manifest.get("checkpoint") or {}).get("file"),  # type: ignore[union-attr]
        "checkpoint_sha256": ckpt_sha,
        "arch": info["arch"],
        "artifact": str(artifact),
        "artifact_sha256": sha256_file(artifact) if artifact.is_file() else None,
        "runtime": kind.value,
        "device": str(backend.device),
        "jetson": _on_jetson(),
        "runtime_precision": executed,
        "artifact_from_this_checkpoint": None if art_sha is None else art_sha == ckpt_sha,
        "data": str(data),
        "split": getattr(ds, "split", None),
        "reference": {
            "source": source,
            "path": str(saved.path) if saved is not None else None,
            "digest": saved.digest if saved is not None else digest,
            "has_logits": saved.has_logits if saved is not None else True,
            "saved_to": [str(p) for p in written],
        },
        "versions": {k: v for k, v in package_versions(("torch", "onnxruntime", "openvino", "tensorrt")).items() if v},
    }
    if art_sha is not None and art_sha != ckpt_sha:
        log.warning("the artifact's metadata names another checkpoint (sha256 %s...), comparing anyway", art_sha[:12])
    return report


def _on_jetson() -> bool:
    """Whether this machine is a Jetson (a result records the kind of device it ran on: a bundle's target is)."""
    from ..jetson import jetson_fingerprint

    return jetson_fingerprint() is not None


# --------------------------------------------------------------------------------------------- reference only
@dataclass
class SavedReferenceResult:
    """What ``save_reference`` wrote."""

    path: Path
    num_images: int
    digest: str
    has_logits: bool
    labels_out_of_range: dict[str, Any]


def save_reference(
    checkpoint: str | Path,
    data: str | Path,
    output: str | Path,
    *,
    split: str | None = None,
    num_images: int | None = None,
    scales: Sequence[float] | None = None,
    flip: bool = False,
    input_size: tuple[int, int] | None = None,
    reference_logits: bool = False,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SavedReferenceResult:
    """Compute the PyTorch side of parity once and save it (``validate.reference``), with no artifact: the
    checkpoint's own normalisation, NCHW float input, logits, at each image's size or ``input_size`` (a
    static-shape artifact's). Compare artifacts with it later: ``validate_parity(output, artifact, data)``."""
    scales = check_scales(scales) if scales is not None else (1.0,)
    if is_reference(checkpoint):
        raise UsageError("--save-reference needs a checkpoint, not a saved reference. Copy the reference instead")
    ds, n = _dataset(data, split, num_images)
    if n == 0:
        raise UsageError("no images were found. Check --data and --num-images")
    files = fingerprint_samples(ds.samples[:n], ds.root)
    loaded = _load(checkpoint, threads)
    norm = loaded.normalization
    policy = InputPolicy(normalization=norm, static_size=tuple(input_size) if input_size else None)
    predictor = Predictor(policy, scales=scales, flip=flip)
    settings = _settings(policy, scales, flip, norm.to_dict())
    manifest = new_manifest(
        checkpoint=checkpoint,
        checkpoint_sha256=loaded.checkpoint.sha256 if loaded.checkpoint else sha256_file(checkpoint),
        model=_model_info(loaded, norm),
        settings=settings,
        key_settings=_settings(policy, scales, flip, "checkpoint"),
        files=files,
        data=data,
        split=getattr(ds, "split", None),
        versions=_versions(),
    )
    writer = ReferenceWriter(output, manifest, with_logits=reference_logits)
    labels = LabelRangeCounter(loaded.num_classes, getattr(ds, "ignore_index", 255))
    try:
        with _open_reference_runner(loaded, policy) as runner:
            for i, (name, image, label) in enumerate(_samples(ds, n)):
                if label is not None:
                    labels.add(name, label)
                class_map, raw = predictor.predict(runner, image, label.shape if label is not None else image.shape[:2])
                writer.add(name, class_map, raw)
                if progress:
                    progress(i + 1, n)
        final = writer.finish(labels_out_of_range=labels.summary())
    except BaseException:
        writer.abort()
        raise
    _warn_labels(labels)
    return SavedReferenceResult(Path(output), n, final["digest"], final["has_logits"], labels.summary())


# --------------------------------------------------------------------------------------------- results
def write_parity_outputs(
    result: dict[str, Any], *, json_out: str | Path | None = None, markdown_out: str | Path | None = None
) -> list[Path]:
    """Write a parity result as JSON and/or Markdown, atomically (missing parent folders are created)."""
    from .report import parity_markdown

    written = []
    if json_out is not None:
        written.append(write_json_atomic(json_out, result))
    if markdown_out is not None:
        text = parity_markdown(result)
        written.append(write_atomic(markdown_out, lambda tmp: tmp.write_text(text)))
    return written


def raise_for_labels(summary: dict[str, Any], strict: bool) -> None:
    """``--strict-labels``: exit 5 (``DataError``) when labels had class ids outside the model's classes."""
    if strict and summary.get("pixels"):
        files = summary.get("files") or []
        raise DataError(
            f"{summary['pixels']} labelled pixels in {summary['images']} image(s) have class ids "
            f"{', '.join(summary.get('class_ids') or {})} outside 0..{summary['num_classes'] - 1}: "
            f"{', '.join(files[:5])}{' ...' if summary['images'] > 5 else ''}",
            hint="fix the labels or the class count; without --strict-labels they are counted and not scored",
        )


def raise_for_gates(report: ParityReport) -> None:
    """Exit 3 (``ParityError``) when a gate failed (a gate that could not be evaluated is not a failure, nor a pass:
    the report says so)."""
    if report.failed_gates:
        raise ParityError(
            "parity gate failed: " + "; ".join(report.failed_gates),
            hint="see the report; --save-worst K DIR shows where the backend disagrees",
        )
