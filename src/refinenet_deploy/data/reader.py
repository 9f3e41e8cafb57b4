"""The dataset reader's common parts: ``Sample``, the ``SegmentationDataset`` base class, the plain image-folder
layout (``ImageFolder``), the checks every listed file passes (regular files only, skipped with a warning
otherwise), ``copy_data_folder`` and the ``dataset.json`` our synthetic datasets write.

Datasets only index file paths at construction; images and labels are read lazily, one sample at a time, by
``__getitem__`` / ``__iter__``.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
from abc import ABC
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WRITE_ERRNOS, DataError, InputReadError, printable, read_json
from .images import read_image, read_label

logger = logging.getLogger("refinenet_deploy.data.datasets")  # one logger name for every reader, as before

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_SPLIT_PREFERENCE = ("val", "train", "trainval")


@dataclass(frozen=True)
class Sample:
    """One dataset entry: a display/output name plus its image and optional label path."""

    name: str
    image_path: Path
    label_path: Path | None


class SegmentationDataset(ABC):
    """Indexed list of :class:`Sample` that reads image/label arrays lazily."""

    root: Path
    samples: list[Sample]
    class_names: tuple[str, ...] | None
    num_classes: int | None
    ignore_index: int = 255

    def __init__(
        self,
        root: Path,
        samples: list[Sample],
        class_names: tuple[str, ...] | None = None,
        ignore_index: int = 255,
    ) -> None:
        self.root = root
        self.samples = samples
        self.class_names = tuple(class_names) if class_names is not None else None
        self.num_classes = len(self.class_names) if self.class_names is not None else None
        self.ignore_index = ignore_index

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Sample, np.ndarray, np.ndarray | None]:
        """Read sample ``index``: ``(sample, uint8 HxWx3 image, uint8 HxW label or None)``."""
        sample = self.samples[index.__index__()]
        image = read_image(sample.image_path)
        label = None
        if sample.label_path is not None:
            label = self.load_label(sample.label_path)
            if label.shape != image.shape[:2]:
                raise DataError(
                    f"image and label sizes differ ({image.shape[1]}x{image.shape[0]} vs "
                    f"{label.shape[1]}x{label.shape[0]}): {sample.image_path} and {sample.label_path}. "
                    "Fix or remove this pair"
                )
        return sample, image, label

    def __iter__(self) -> Iterator[tuple[Sample, np.ndarray, np.ndarray | None]]:
        for i in range(len(self.samples)):
            yield self[i]

    def load_label(self, path: Path) -> np.ndarray:
        """Read one label file as uint8 (H, W) training indices."""
        return read_label(path)

    @property
    def has_labels(self) -> bool:
        """True when every sample has a label file."""
        return bool(self.samples) and all(s.label_path is not None for s in self.samples)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, samples={len(self.samples)}, "
            f"num_classes={self.num_classes}, has_labels={self.has_labels})"
        )


def _is_image_file(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def not_regular(path: Path) -> str | None:
    """Why the readers skip ``path`` (links followed): a dangling symlink, a symlink loop, a FIFO, socket or
    device, an unreadable entry; None for a regular file (and for a folder: walked, not read)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a symbolic link to a missing file" if os.path.islink(path) else "gone"
    except OSError as exc:
        return "a symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or type(exc).__name__)
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"


def _skip(path: Path, why: str) -> None:
    logger.warning("skipping %s: %s, not a regular file", printable(path), why)


def list_dir(directory: Path) -> dict[str, Path]:
    """Map file stem -> path for image files directly inside ``directory`` (first extension wins). Entries that
    are not regular files once links are followed (dangling links, loops, FIFOs) are skipped with a warning."""
    out: dict[str, Path] = {}
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"cannot list directory: {printable(directory)}. Check that it exists and is readable") from exc
    for entry in entries:
        p = Path(entry.path)
        if not _is_image_file(p):
            continue
        why = not_regular(p)
        if why is not None:
            _skip(p, why)
        elif p.is_file():
            out.setdefault(p.stem, p)
    return out


def copy_data_folder(src: Path, dest: Path) -> list[tuple[Path, str]]:
    """Copy a data folder as the readers see it into ``dest`` (a new folder): regular files, links followed;
    hidden names (``.*``) left out as the readers leave them out; dangling symlinks, symlink loops, FIFOs,
    sockets and devices skipped with a warning, as the readers skip them; a link to a folder already being copied
    (a loop) skipped too. Returns what was skipped and why. A file that cannot be read is DataError (exit 5); a
    write the environment refuses is an ``OSError`` for the caller's staging to report."""
    skipped: list[tuple[Path, str]] = []
    active: set[str] = set()

    def walk(folder: Path, out: Path) -> None:
        real = os.path.realpath(folder)
        if real in active:
            skipped.append((folder, "a link to a folder it is inside (a loop)"))
            _skip(folder, skipped[-1][1])
            return
        active.add(real)
        out.mkdir(exist_ok=True)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise DataError(f"cannot list the data folder {printable(folder)}: {exc.strerror}") from exc
        for entry in entries:
            if entry.name.startswith("."):
                continue
            p = Path(entry.path)
            why = not_regular(p)
            if why is not None:
                skipped.append((p, why))
                _skip(p, why)
            elif p.is_dir():
                walk(p, out / entry.name)
            else:
                try:
                    with open(p, "rb") as source, open(out / entry.name, "wb") as target:
                        shutil.copyfileobj(source, target, 1 << 20)
                except OSError as exc:
                    if exc.filename == str(out / entry.name) or exc.errno in WRITE_ERRNOS - {
                        errno.EACCES,
                        errno.EPERM,
                    }:
                        raise
                    raise DataError(
                        f"cannot read {printable(p)} in the data folder: {exc.strerror}. Fix its permissions or "
                        "remove it"
                    ) from exc
        active.discard(real)

    walk(src, dest)
    return skipped


class ImageFolder(SegmentationDataset):
    """All images under a folder (or one image file), sorted by relative path; no labels.

    Hidden files and folders (names starting with ``.``) are skipped. Sample names are the relative
    path without extension (``sub/img``), or with it where two files would share a name.
    """

    def __init__(self, root: str | os.PathLike[str], recursive: bool = True) -> None:
        root_p = Path(root)
        if not root_p.exists():
            raise DataError(f"data path not found: {root_p}. Check the --data path")
        if root_p.is_file():
            if not _is_image_file(root_p):
                raise DataError(f"not an image file: {root_p}. Use one of: {', '.join(sorted(IMAGE_EXTENSIONS))}")
            super().__init__(root_p, [Sample(root_p.stem, root_p, None)])
            return
        files = [p for p in (root_p.rglob("*") if recursive else root_p.iterdir()) if _is_image_file(p)]
        files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(root_p).parts)]
        regular = []
        for p in files:
            why = not_regular(p)
            if why is not None:
                _skip(p, why)
            elif p.is_file():
                regular.append(p)
        rels = sorted((p.relative_to(root_p) for p in regular), key=lambda r: r.as_posix())
        if not rels:
            raise DataError(f"no images found in {root_p}. Point --data at a folder with .jpg/.png images")
        stems = [r.with_suffix("").as_posix() for r in rels]
        counts: dict[str, int] = {}
        for s in stems:
            counts[s] = counts.get(s, 0) + 1
        samples = [Sample(s if counts[s] == 1 else r.as_posix(), root_p / r, None) for s, r in zip(stems, rels)]
        super().__init__(root_p, samples)
        logger.debug("image folder %s: %d images", root_p, len(samples))


def pick_split(available: list[str], root: Path, kind: str) -> str:
    if not available:
        raise DataError(f"no {kind} splits found in {root}. Check the dataset layout")
    for s in _SPLIT_PREFERENCE:
        if s in available:
            return s
    return min(available)


def read_dataset_json(*dirs: Path) -> dict[str, Any] | None:
    """Load the first ``dataset.json`` found in ``dirs`` (written by our synthetic datasets)."""
    for d in dirs:
        f = d / "dataset.json"
        if f.exists() or f.is_symlink():
            why = not_regular(f)
            if why is not None:  # skipped, as every other entry that is not a regular file
                _skip(f, why)
                continue
            try:
                meta = read_json(f)
            except (OSError, ValueError, InputReadError) as exc:  # bad JSON, too deep or large, not a regular file
                reason = getattr(exc, "message", None) or str(exc)
                raise DataError(
                    f"cannot parse dataset metadata: {printable(f)}. Fix or delete the file ({printable(reason)})"
                ) from exc
            if not isinstance(meta, dict):
                raise DataError(f"dataset metadata must be a JSON object: {f}. Fix or delete the file")
            return meta
    return None


def meta_classes(meta: dict[str, Any] | None, root: Path) -> tuple[str, ...] | None:
    if meta is None or "classes" not in meta:
        return None
    classes = meta["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise DataError(
            f"'classes' in dataset.json must be a non-empty list of names: {root}. Fix or delete dataset.json"
        )
    return tuple(classes)


def meta_ignore_index(meta: dict[str, Any] | None, root: Path, default: int = 255) -> int:
    if meta is None or "ignore_index" not in meta:
        return default
    value = meta["ignore_index"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise DataError(f"'ignore_index' in dataset.json must be an integer 0..255: {root}. Fix or delete dataset.json")
    return value


__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolder",
    "Sample",
    "SegmentationDataset",
    "copy_data_folder",
    "list_dir",
    "meta_classes",
    "meta_ignore_index",
    "not_regular",
    "pick_split",
    "read_dataset_json",
]
