"""Where parity's PyTorch side comes from, chosen once per run (``choose_reference``):

| source | when | PyTorch |
|---|---|---|
| ``SavedSource`` ("saved reference") | the first argument is a ``.npz`` saved with ``save_reference`` | not imported |
| ``SavedSource`` ("cached reference") | an earlier live run cached a reference under this run's digest | not imported |
| ``LiveSource`` ("PyTorch") | otherwise: the checkpoint runs beside the artifact, and may be recorded | imported |

Each gives the comparison the same things: the model's description (``info``), its default normalisation, the
settings a saved side was made with, a compatibility check, the predictions the engine compares with, and what the
report records about it. Also the small pieces parity and ``save_reference`` share (dataset, settings, loading).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...artifacts import InputPolicy, sha256_file
from ...data.datasets import open_dataset
from ...data.preprocessing import Normalization
from ...environment import package_versions
from ...errors import OutputWriteError, UsageError
from ...validate.metrics import LabelRangeCounter
from ...validate.reference import (
    ReferenceSettings,
    ReferenceWriter,
    SavedReference,
    cache_entry,
    is_reference,
    new_manifest,
)
from ...validate.reference_check import check_reference
from ...validate.tolerances import tolerance_for

log = logging.getLogger(__name__)

REFERENCE_PACKAGES = ("torch",)  # the reference's numbers depend on them: part of the cache key


# --------------------------------------------------------------------------------------------- shared pieces
def open_samples(data: str | Path, split: str | None, num_images: int | None) -> tuple[Any, int]:
    """The dataset and how many of its images the run reads."""
    ds = open_dataset(data, split=split)
    n = len(ds) if num_images is None else min(num_images, len(ds))
    return ds, n


def iter_samples(ds: Any, n: int) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
    for i in range(n):
        sample, image, label = ds[i]
        yield sample.name, image, label


def reference_versions() -> dict[str, str]:
    return {k: v for k, v in package_versions(REFERENCE_PACKAGES).items() if v}


def normalization_key(meta: dict[str, Any]) -> Any:
    norm = meta.get("normalization")
    return norm if isinstance(norm, dict) else "checkpoint"


def reference_settings(
    policy: InputPolicy, scales: Sequence[float], flip: bool, normalization: Any
) -> ReferenceSettings:
    return ReferenceSettings(
        scales=tuple(float(s) for s in scales),
        flip=bool(flip),
        static_size=policy.static_size,
        input_format=policy.input_format,
        head=policy.head,
        normalization=normalization,
    )


def model_info(loaded: Any, normalization: Normalization) -> dict[str, Any]:
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
    from ...models import load_model

    return load_model(checkpoint)


def open_reference_runner(loaded: Any, policy: InputPolicy) -> Any:
    from ...backends.torch import open_checkpoint

    return open_checkpoint(loaded, policy=policy)


def warn_labels(counter: LabelRangeCounter) -> None:
    message = counter.message()
    if message:
        log.warning("%s. Check the dataset's class count, or pass --strict-labels to fail", message)


# --------------------------------------------------------------------------------------------- recording
@dataclass
class Recorder:
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


@dataclass(frozen=True)
class RecordRequest:
    """Where a live reference is recorded: a ``--save-reference`` file and/or the cache entry of ``digest``."""

    checkpoint: str | Path
    data: str | Path
    split: str | None
    files: list[dict[str, Any]]
    key_settings: ReferenceSettings
    save_reference: str | Path | None = None
    reference_logits: bool = False
    cache_dir: str | Path | None = None
    digest: str | None = None


# --------------------------------------------------------------------------------------------- sources
class ReferenceSource:
    """The PyTorch side of one parity run (see the module's table)."""

    label = ""
    info: dict[str, Any]

    @property
    def normalization(self) -> Normalization:
        """The reference's own normalisation: the default where an artifact's metadata states none."""
        return Normalization.from_dict(self.info["normalization"])

    @property
    def settings(self) -> dict[str, Any]:
        """The settings a saved side was made with ({} for a live one)."""
        return {}

    @property
    def checkpoint_sha256(self) -> str | None:
        raise NotImplementedError

    def checkpoint_name(self, checkpoint: str | Path) -> str | None:
        return str(checkpoint)

    def check(self, *, files: list[dict[str, Any]], settings: ReferenceSettings, meta: dict[str, Any],
              all_images: bool, precision: str, head: str) -> None:  # fmt: skip
        """Refuse a reference that cannot be compared with this artifact and these settings."""

    def recorder(self, request: RecordRequest, settings: ReferenceSettings) -> Recorder | None:
        return None

    def predictions(self, policy: InputPolicy) -> Any:
        """A context manager giving what the engine compares with (a runner, or saved predictions)."""
        raise NotImplementedError

    def describe(self, digest: str | None, written: Sequence[Path]) -> dict[str, Any]:
        """The report's ``reference`` entry."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds open."""


class SavedSource(ReferenceSource):
    """A reference saved with ``save_reference``, or found in the cache (``label="cached reference"``)."""

    def __init__(self, ref: SavedReference, label: str = "saved reference") -> None:
        self.ref, self.label = ref, label
        self.info = ref.model

    @property
    def settings(self) -> dict[str, Any]:
        return self.ref.settings

    @property
    def checkpoint_sha256(self) -> str | None:
        return (self.ref.manifest.get("checkpoint") or {}).get("sha256")

    def checkpoint_name(self, checkpoint: str | Path) -> str | None:
        if self.label == "cached reference":
            return str(checkpoint)
        return (self.ref.manifest.get("checkpoint") or {}).get("file")

    def check(self, *, files: list[dict[str, Any]], settings: ReferenceSettings, meta: dict[str, Any],
              all_images: bool, precision: str, head: str) -> None:  # fmt: skip
        check_reference(
            self.ref, files=files, settings=settings, num_classes=meta.get("num_classes"), all_images=all_images
        )
        logits_gate = precision == "fp32" and head != "argmax" and tolerance_for(precision).atol is not None
        if logits_gate and not self.ref.has_logits:
            log.warning(
                "the reference %s has no logits: the FP32 logits gate does not run. Save the reference with "
                "--reference-logits to run it",
                self.ref.path.name,
            )

    @contextmanager
    def predictions(self, policy: InputPolicy) -> Iterator[SavedReference]:
        yield self.ref

    def describe(self, digest: str | None, written: Sequence[Path]) -> dict[str, Any]:
        return {
            "source": self.label,
            "path": str(self.ref.path),
            "digest": self.ref.digest,
            "has_logits": self.ref.has_logits,
            "saved_to": [str(p) for p in written],
        }

    def close(self) -> None:
        self.ref.close()


class LiveSource(ReferenceSource):
    """The checkpoint, loaded in PyTorch and run beside the artifact on the same inputs."""

    label = "PyTorch"

    def __init__(self, checkpoint: str | Path, threads: int | None) -> None:
        self.loaded = _load(checkpoint, threads)
        self.info = model_info(self.loaded, self.loaded.normalization)

    @property
    def normalization(self) -> Normalization:
        return self.loaded.normalization

    @property
    def checkpoint_sha256(self) -> str | None:
        return self.loaded.checkpoint.sha256 if self.loaded.checkpoint else None

    def check(self, *, files: list[dict[str, Any]], settings: ReferenceSettings, meta: dict[str, Any],
              all_images: bool, precision: str, head: str) -> None:  # fmt: skip
        if meta.get("num_classes") not in (None, self.info["num_classes"]):
            raise UsageError(
                f"the artifact has {meta['num_classes']} classes, the checkpoint {self.info['num_classes']}. "
                "Compare an artifact with the checkpoint it was exported from"
            )

    def recorder(self, request: RecordRequest, settings: ReferenceSettings) -> Recorder | None:
        if request.save_reference is None and (request.cache_dir is None or request.digest is None):
            return None
        ckpt = request.checkpoint
        manifest = new_manifest(
            checkpoint=ckpt,
            checkpoint_sha256=self.loaded.checkpoint.sha256 if self.loaded.checkpoint else sha256_file(ckpt),
            model=self.info,
            settings=settings,
            key_settings=request.key_settings,
            files=request.files,
            data=request.data,
            split=request.split,
            versions=reference_versions(),
        )
        writers = []
        if request.save_reference is not None:
            writers.append(ReferenceWriter(request.save_reference, manifest, with_logits=request.reference_logits))
        cache = None
        if request.cache_dir is not None and request.digest is not None:
            try:
                cache = ReferenceWriter(cache_entry(request.cache_dir, request.digest), manifest, with_logits=True)
                writers.append(cache)
            except OutputWriteError as exc:
                log.warning("not caching the PyTorch reference: %s", exc.message)
        return Recorder(writers, cache)

    @contextmanager
    def predictions(self, policy: InputPolicy) -> Iterator[Any]:
        with open_reference_runner(self.loaded, policy) as runner:
            yield runner

    def describe(self, digest: str | None, written: Sequence[Path]) -> dict[str, Any]:
        return {
            "source": self.label,
            "path": None,
            "digest": digest,
            "has_logits": True,
            "saved_to": [str(p) for p in written],
        }


def _open_cached(cache_dir: str | Path, digest: str, need_logits: bool) -> SavedReference | None:
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


def choose_reference(
    checkpoint: str | Path,
    *,
    threads: int | None = None,
    cache_dir: str | Path | None = None,
    digest: str | None = None,
) -> ReferenceSource:
    """The one choice of a run's PyTorch side: a saved ``.npz`` ``checkpoint``; else the cache entry of ``digest``
    in ``cache_dir`` (when both are given and the entry is sound); else the checkpoint loaded in PyTorch."""
    if is_reference(checkpoint):
        return SavedSource(SavedReference(checkpoint))
    if cache_dir is not None and digest is not None:
        cached = _open_cached(cache_dir, digest, need_logits=True)
        if cached is not None:
            log.info("reusing the cached PyTorch reference %s", cached.path)
            return SavedSource(cached, label="cached reference")
    return LiveSource(checkpoint, threads)
