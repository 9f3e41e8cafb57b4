"""The reference side of ``parity --localize``: the PyTorch taps, live (forward hooks on the checkpoint's model) or
saved beside a reference (``REF.taps.npz``), and the writer that saves them.

Both sources give the same thing: ``taps``, ``arch``, ``norm`` and ``frames(...)``, the (image, taps) pairs
of the first ``images`` images. Live, each image is resized to the artifact's static input size (else kept at its
own size); saved, the images are the ones stored, and must have the artifact's size.

Saved taps: the resized images and the tap activations, at most ``MAX_TAPS_MIB`` MiB (fewer images are stored when
the taps are larger; the count is recorded and stated), so that ``localize_parity(REF.npz, artifact, ...)`` runs
without PyTorch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...artifacts import utc_now, write_atomic
from ...data.datasets import open_dataset
from ...data.preprocessing import Normalization, preprocess, resize_image
from ...errors import InvalidModelError, UsageError
from .document import TAPS_SCHEMA, TAPS_SCHEMA_VERSION

MAX_TAPS_MIB = 256

Frames = Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]


def taps_path(reference: str | Path) -> Path:
    """Where the taps of a saved reference live: ``REF.npz`` -> ``REF.taps.npz``."""
    reference = Path(reference)
    stem = reference.name[: -len(".npz")] if reference.suffix == ".npz" else reference.name
    return reference.with_name(stem + ".taps.npz")


class LiveTaps:
    """PyTorch: the checkpoint's model with forward hooks on every tap."""

    source = "PyTorch"

    def __init__(self, checkpoint: str | Path, threads: int | None) -> None:
        from ...models import load_model
        from ...models.taps import block_taps

        if threads:
            import torch

            torch.set_num_threads(threads)
        self.loaded = load_model(checkpoint)
        self.norm: Normalization = self.loaded.normalization  # resolved once, by load_model
        self.taps = block_taps(self.loaded.model)
        self.arch = self.loaded.arch

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        from ...models.taps import TapRecorder

        x = torch.from_numpy(preprocess(image, self.norm)[None])
        model = self.loaded.model.eval()
        with torch.no_grad(), TapRecorder(model, self.taps) as rec:
            model(x)
            return rec.take()

    def frames(
        self, data: str | Path | None, split: str | None, images: int, size: tuple[int, int] | None, artifact: str
    ) -> tuple[int, Frames]:
        if data is None:
            raise UsageError("--localize needs --data (the images) unless the reference has saved taps")
        ds = open_dataset(data, split=split)
        count = min(images, len(ds))
        if count == 0:
            raise UsageError("no images were found. Check --data")

        def gen() -> Frames:
            for i in range(count):
                image = resize_image(ds[i][1], size) if size else ds[i][1]
                yield image, self.run(image)

        return count, gen()


class SavedTaps:
    """The taps saved beside a reference (``REF.taps.npz``)."""

    def __init__(self, path: Path) -> None:
        from ...models.taps import Tap

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
        self.source = f"saved taps ({self.count} images)"
        norm = self.manifest.get("normalization")
        self.norm = Normalization.from_dict(norm) if isinstance(norm, dict) else Normalization.imagenet()

    def frames(
        self, data: str | Path | None, split: str | None, images: int, size: tuple[int, int] | None, artifact: str
    ) -> tuple[int, Frames]:
        count = min(images, self.count)

        def gen() -> Frames:
            for i in range(count):
                image = self.npz[f"image/{i}"]
                if size and tuple(image.shape[:2]) != tuple(size):
                    raise UsageError(
                        f"the taps were saved at {image.shape[0]}x{image.shape[1]}; {artifact} takes "
                        f"{size[0]}x{size[1]}. Save the taps with this artifact"
                    )
                yield image, {t.name: self.npz[f"tap/{i}/{t.name}"] for t in self.taps}

        return count, gen()


def open_reference(checkpoint: str | Path, threads: int | None, from_reference: bool) -> LiveTaps | SavedTaps:
    """The taps saved beside a reference (``from_reference``), else PyTorch on the checkpoint."""
    return SavedTaps(taps_path(checkpoint)) if from_reference else LiveTaps(checkpoint, threads)


class TapWriter:
    """Collects images and PyTorch taps in memory up to a size bound, then writes ``REF.taps.npz`` atomically."""

    def __init__(self, path: str | Path, live: LiveTaps, max_mib: float) -> None:
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
            "version": TAPS_SCHEMA_VERSION,
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
