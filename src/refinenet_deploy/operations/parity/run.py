"""``validate_parity``: a checkpoint (or a saved reference) and a deployed artifact, one dataset, one report.

The artifact opens in its backend (chosen from the file and its metadata); the PyTorch side is a
``source.ReferenceSource`` chosen once; then one comparison path feeds both to ``validate.parity_engine``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ... import __version__
from ...artifacts import InputPolicy, artifact_precision, read_metadata, sha256_file, utc_now
from ...backends import open_runner, resolve_device, resolve_runtime
from ...enums import Precision, Runtime
from ...environment import package_versions
from ...errors import ModelNotFoundError, UsageError
from ...validate.parity_engine import ParityEngine, ParityReport
from ...validate.reference import fingerprint_samples, is_reference, reference_digest
from ...validate.tolerances import Gates, tolerance_for
from .options import ParityOptions, check_torch_options
from .source import (
    RecordRequest,
    ReferenceSource,
    choose_reference,
    iter_samples,
    normalization_key,
    open_samples,
    reference_settings,
    reference_versions,
    warn_labels,
)

log = logging.getLogger(__name__)


def validate_parity(
    checkpoint: str | Path,
    artifact: str | Path,
    data: str | Path,
    options: ParityOptions | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> ParityReport:
    """Run ``artifact`` and the PyTorch reference on the same inputs of ``data``; return the parity report.

    ``checkpoint`` is a PyTorch checkpoint, or a reference saved with ``save_reference`` (``.npz``): then PyTorch
    is not imported, and the reference must have been made from the same data and settings (else
    ``IncompatibleArtifactError``, exit 7). ``options`` (``ParityOptions``) or the same fields as keywords.

    The report's ``passed`` is False when a gate failed; raising is the caller's choice (the CLI exits 3).
    """
    opts = options if options is not None else ParityOptions(**kwargs)
    artifact, kind = _check_inputs(checkpoint, artifact, opts)
    from_reference = is_reference(checkpoint)
    meta = read_metadata(artifact) if kind != Runtime.TORCH else {}
    ds, n = open_samples(data, opts.split, opts.num_images)
    files = None
    if from_reference or opts.reference_cache is not None or opts.save_reference is not None:
        files = fingerprint_samples(ds.samples[:n], ds.root)
    # A checkpoint artifact needs its reference first (its architecture and normalisation); any other artifact's
    # cache key includes the input shape its backend reports, so its reference is chosen once that backend is open.
    source = choose_reference(checkpoint, threads=opts.threads) if from_reference or kind == Runtime.TORCH else None
    try:
        opts = _augmentation(opts, source)
        if kind == Runtime.TORCH and source is not None:
            backend, meta, precision = _open_checkpoint(artifact, source, opts)
        else:
            backend, meta, precision = _open_artifact(artifact, kind, meta, opts)
        with backend:
            spec = backend.input_specs[0]
            key_settings = _key_settings(kind, meta, spec, source, opts)
            digest = None
            if source is None:
                if files is not None:
                    digest = reference_digest(sha256_file(checkpoint), files, key_settings, reference_versions())
                cache = opts.reference_cache if opts.save_reference is None else None
                source = choose_reference(checkpoint, threads=opts.threads, cache_dir=cache, digest=digest)
            request = RecordRequest(
                checkpoint=checkpoint,
                data=data,
                split=getattr(ds, "split", None),
                files=files or [],
                key_settings=key_settings,
                save_reference=opts.save_reference,
                reference_logits=opts.reference_logits,
                cache_dir=opts.reference_cache if kind != Runtime.TORCH and files is not None else None,
                digest=digest,
            )
            engine, report, written = _compare(
                source, backend, spec, kind, meta, ds, n, precision, opts, request, progress
            )
            executed = Precision.lookup(backend.executed_precision)  # recorded in one spelling
            ran = executed.value if executed is not None else backend.executed_precision
    finally:
        if source is not None:
            source.close()
    warn_labels(engine.labels)
    if opts.save_worst:
        _save_panels(engine, report, opts.worst_dir)
    report.context = _context(checkpoint, artifact, data, ds, kind, meta, backend, source, ran, digest, written)
    art_sha = (meta.get("checkpoint") or {}).get("sha256")
    if art_sha is not None and art_sha != source.checkpoint_sha256:
        log.warning("the artifact's metadata names another checkpoint (sha256 %s...), comparing anyway", art_sha[:12])
    return report


def _check_inputs(checkpoint: str | Path, artifact: str | Path, opts: ParityOptions) -> tuple[Path, Runtime]:
    """The artifact exists, the options apply to it and to the checkpoint (before any work); its runtime."""
    artifact = Path(artifact)
    if not artifact.exists():
        raise ModelNotFoundError(f"artifact not found: {artifact}. Check the path")
    if is_reference(checkpoint) and opts.save_reference is not None:
        raise UsageError("--save-reference needs a checkpoint: this run compares with a saved reference already")
    check_torch_options([artifact], opts.runtime, opts.device, opts.torch_precision)
    return artifact, resolve_runtime(artifact, opts.runtime)


def _save_panels(engine: ParityEngine, report: ParityReport, worst_dir: str | Path | None) -> None:
    """PNG panels of the least-agreeing images; the report's ``worst`` entries name them."""
    from ...validate.panels import save_panels

    paths = save_panels(engine.worst_records(), worst_dir)
    for entry, path in zip(report.worst, paths):
        entry["panel"] = str(path)


def _augmentation(opts: ParityOptions, source: ReferenceSource | None) -> ParityOptions:
    """Test-time scales and flip: the options', else a saved reference's, else (1.0,) and no flip."""
    saved = source.settings if source is not None else {}
    scales = opts.scales if opts.scales is not None else tuple(saved.get("scales") or (1.0,))
    flip = opts.flip if opts.flip is not None else bool(saved.get("flip"))
    return replace(opts, scales=tuple(scales), flip=bool(flip))


def _open_checkpoint(artifact: Path, source: ReferenceSource, opts: ParityOptions) -> tuple[Any, dict[str, Any], str]:
    """A checkpoint artifact's PyTorch runner (not yet active), its metadata and the precision whose gates apply:
    it runs as the reference was made (a saved one's input format, head and static size), at ``torch_precision``
    on ``device``."""
    from ...backends.torch import open_checkpoint

    meta: dict[str, Any] = {}
    if source.settings:
        meta = {"input_format": source.settings.get("input_format"), "head": source.settings.get("head")}
    policy = InputPolicy.from_metadata(meta, default=source.normalization)
    device = resolve_device(Runtime.TORCH, opts.device)
    backend = open_checkpoint(artifact, policy=policy, arch=source.info["arch"], device=device)
    backend.configure(precision=opts.torch_precision)
    meta = {**meta, "num_classes": backend.loaded.num_classes}
    return backend, meta, Precision(opts.torch_precision).value  # tf32 is judged by the fp16 gates


def _open_artifact(
    artifact: Path, kind: Runtime, meta: dict[str, Any], opts: ParityOptions
) -> tuple[Any, dict[str, Any], str]:
    """A deployed artifact's runner (not yet active), its metadata and the precision whose gates apply (OpenVINO:
    what runs, so an FP32 IR asked to infer in bf16 or fp16 meets those gates)."""
    hint = opts.inference_precision
    backend = open_runner(artifact, kind.value, threads=opts.threads, inference_precision=hint, meta=meta)
    precision = artifact_precision(artifact, meta)
    if kind == Runtime.OPENVINO and precision == Precision.FP32 and hint in (Precision.BF16, Precision.FP16):
        precision = Precision(hint)
    return backend, meta, precision.value


def _key_settings(
    kind: Runtime, meta: dict[str, Any], spec: Any, source: ReferenceSource | None, opts: ParityOptions
) -> Any:
    """The settings the reference's cache key (and a saved reference's manifest) names."""
    if kind == Runtime.TORCH:
        policy = InputPolicy.from_metadata(meta, default=source.normalization)  # type: ignore[union-attr]
        return reference_settings(policy, opts.scales, bool(opts.flip), "checkpoint")
    bound = InputPolicy.from_metadata(meta).for_input(spec.name, spec.shape)
    return reference_settings(bound, opts.scales, bool(opts.flip), normalization_key(meta))


def _gates(precision: str, opts: ParityOptions) -> Gates:
    defaults = tolerance_for(precision).gates
    return Gates(
        max_miou_drop=defaults.max_miou_drop if opts.max_miou_drop is None else opts.max_miou_drop,
        min_agreement=defaults.min_agreement if opts.min_agreement is None else opts.min_agreement,
    )


def _class_names(info: dict[str, Any], meta: dict[str, Any], ds: Any) -> tuple[str, ...]:
    names = info.get("class_names") or meta.get("class_names") or ds.class_names
    if not names or len(names) != info["num_classes"]:
        names = tuple(str(i) for i in range(info["num_classes"]))
    return tuple(names)


def _compare(
    source: ReferenceSource,
    backend: Any,
    spec: Any,
    kind: Runtime,
    meta: dict[str, Any],
    ds: Any,
    n: int,
    precision: str,
    opts: ParityOptions,
    request: RecordRequest,
    progress: Callable[[int, int], None] | None,
) -> tuple[ParityEngine, ParityReport, list[Path]]:
    """The one comparison path: the input policy both sides get, the source's check, the engine's run."""
    policy = InputPolicy.from_metadata(meta, default=source.normalization).for_input(spec.name, spec.shape)
    if kind == Runtime.TORCH and source.settings.get("static_size"):
        policy = replace(policy, static_size=tuple(int(v) for v in source.settings["static_size"]))
    settings = reference_settings(policy, opts.scales, bool(opts.flip), policy.normalization.to_dict())
    source.check(
        files=request.files,
        settings=settings,
        meta=meta,
        all_images=opts.num_images is None,
        precision=precision,
        head=policy.head,
    )
    recorder = source.recorder(request, settings)
    try:
        with source.predictions(policy) as reference:
            engine = ParityEngine(
                reference,
                backend,
                num_classes=source.info["num_classes"],
                class_names=_class_names(source.info, meta, ds),
                policy=policy,
                precision=precision,
                gates=_gates(precision, opts),
                scales=opts.scales,
                flip=bool(opts.flip),
                save_worst=opts.save_worst,
                ignore_index=getattr(ds, "ignore_index", 255),
                record=recorder,
            )
            report = engine.run(iter_samples(ds, n), progress=(lambda i: progress(i, n)) if progress else None)
        written = recorder.finish() if recorder is not None else []
    except BaseException:
        if recorder is not None:
            recorder.abort()
        raise
    return engine, report, written


def _context(
    checkpoint: str | Path,
    artifact: Path,
    data: str | Path,
    ds: Any,
    kind: Runtime,
    meta: dict[str, Any],
    backend: Any,
    source: ReferenceSource,
    ran: str | None,
    digest: str | None,
    written: list[Path],
) -> dict[str, Any]:
    """Where the report's numbers come from: inputs, checksums, the machine, what ran, the reference."""
    ckpt_sha = source.checkpoint_sha256
    art_sha = (meta.get("checkpoint") or {}).get("sha256")
    return {
        "created": utc_now(),
        "tool_version": __version__,
        "checkpoint": source.checkpoint_name(checkpoint),
        "checkpoint_sha256": ckpt_sha,
        "arch": source.info["arch"],
        "artifact": str(artifact),
        "artifact_sha256": sha256_file(artifact) if artifact.is_file() else None,
        "runtime": kind.value,
        "device": str(backend.device),
        "jetson": _on_jetson(),
        "runtime_precision": ran,
        "artifact_from_this_checkpoint": None if art_sha is None else art_sha == ckpt_sha,
        "data": str(data),
        "split": getattr(ds, "split", None),
        "reference": source.describe(digest, written),
        "versions": {k: v for k, v in package_versions(("torch", "onnxruntime", "openvino", "tensorrt")).items() if v},
    }


def _on_jetson() -> bool:
    """Whether this machine is a Jetson (a result records the kind of device it ran on: a bundle's target is)."""
    from ...jetson import jetson_fingerprint

    return jetson_fingerprint() is not None
