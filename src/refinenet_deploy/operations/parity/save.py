"""``save_reference``: the PyTorch side of parity computed once and saved (``validate.reference``), with no
artifact, to compare artifacts with later (``validate_parity(REF.npz, artifact, data)``), where PyTorch may be
missing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...artifacts import InputPolicy, sha256_file
from ...errors import UsageError
from ...validate.metrics import LabelRangeCounter
from ...validate.parity_engine import Predictor
from ...validate.reference import ReferenceWriter, fingerprint_samples, is_reference, new_manifest
from . import source
from .options import ParityOptions


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
    options: ParityOptions | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> SavedReferenceResult:
    """Compute the PyTorch side of parity once and save it to ``output``, with no artifact: the checkpoint's own
    normalisation, NCHW float input, logits (kept if ``reference_logits``), at each image's size or ``input_size``
    (a static-shape artifact's). ``options`` (``ParityOptions``: ``split``, ``num_images``, ``scales``, ``flip``,
    ``input_size``, ``reference_logits``, ``threads``) or the same fields as keywords."""
    opts = options if options is not None else ParityOptions(save_reference=output, **kwargs)
    scales = opts.scales if opts.scales is not None else (1.0,)
    flip = bool(opts.flip)
    if is_reference(checkpoint):
        raise UsageError("--save-reference needs a checkpoint, not a saved reference. Copy the reference instead")
    ds, n = source.open_samples(data, opts.split, opts.num_images)
    if n == 0:
        raise UsageError("no images were found. Check --data and --num-images")
    files = fingerprint_samples(ds.samples[:n], ds.root)
    loaded = source._load(checkpoint, opts.threads)
    norm = loaded.normalization
    policy = InputPolicy(normalization=norm, static_size=tuple(opts.input_size) if opts.input_size else None)
    predictor = Predictor(policy, scales=scales, flip=flip)
    manifest = new_manifest(
        checkpoint=checkpoint,
        checkpoint_sha256=loaded.checkpoint.sha256 if loaded.checkpoint else sha256_file(checkpoint),
        model=source.model_info(loaded, norm),
        settings=source.reference_settings(policy, scales, flip, norm.to_dict()),
        key_settings=source.reference_settings(policy, scales, flip, "checkpoint"),
        files=files,
        data=data,
        split=getattr(ds, "split", None),
        versions=source.reference_versions(),
    )
    writer = ReferenceWriter(output, manifest, with_logits=opts.reference_logits)
    labels = LabelRangeCounter(loaded.num_classes, getattr(ds, "ignore_index", 255))
    try:
        with source.open_reference_runner(loaded, policy) as runner:
            for i, (name, image, label) in enumerate(source.iter_samples(ds, n)):
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
    source.warn_labels(labels)
    return SavedReferenceResult(Path(output), n, final["digest"], final["has_logits"], labels.summary())
