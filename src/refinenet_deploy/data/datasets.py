"""Segmentation datasets: plain image folders, PASCAL VOC and Cityscapes layouts, opened by ``open_dataset`` (which
detects the layout). One module per family (``reader``: the base class and the image folder; ``voc``;
``cityscapes``); their names are re-exported here, where callers import them.

Datasets only index file paths at construction; images and labels are read lazily, one sample at
a time, by ``__getitem__`` / ``__iter__``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import DataError, UsageError
from .cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_LABELID_TO_TRAINID, CityscapesSegmentation
from .reader import (
    IMAGE_EXTENSIONS,
    ImageFolder,
    Sample,
    SegmentationDataset,
    copy_data_folder,
    not_regular,
    read_dataset_json,
)
from .voc import VOC_CLASSES, VOCSegmentation, find_voc_root

__all__ = [
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_LABELID_TO_TRAINID",
    "DATASET_KINDS",
    "IMAGE_EXTENSIONS",
    "VOC_CLASSES",
    "CityscapesSegmentation",
    "ImageFolder",
    "Sample",
    "SegmentationDataset",
    "VOCSegmentation",
    "copy_data_folder",
    "not_regular",
    "open_dataset",
]

logger = logging.getLogger(__name__)

DATASET_KINDS: tuple[str, ...] = ("auto", "folder", "voc", "cityscapes")


def _detect_kind(root: Path) -> str:
    if root.is_file():
        return "folder"
    meta_format = None
    meta_file = root / "dataset.json"
    if meta_file.is_file():
        meta = read_dataset_json(root)
        fmt = meta.get("format") if meta else None
        if fmt in ("folder", "voc", "cityscapes"):
            meta_format = fmt
    if meta_format is not None:
        return meta_format
    if (root / "leftImg8bit").is_dir():
        return "cityscapes"
    if find_voc_root(root) is not None:
        return "voc"
    return "folder"


def open_dataset(root: str | os.PathLike[str], kind: str = "auto", split: str | None = None) -> SegmentationDataset:
    """Open ``root`` as a dataset of ``kind`` (``auto`` detects Cityscapes, VOC, else a folder).

    ``split=None`` picks ``val`` when present, else ``train``/``trainval``/the first available.
    """
    if kind not in DATASET_KINDS:
        raise UsageError(f"unknown dataset kind: {kind!r}. Use one of: {', '.join(DATASET_KINDS)}")
    root_p = Path(root)
    if not root_p.exists():
        raise DataError(f"data path not found: {root_p}. Check the --data path")
    resolved = _detect_kind(root_p) if kind == "auto" else kind
    logger.debug("opening %s as %s dataset", root_p, resolved)
    if resolved == "cityscapes":
        return CityscapesSegmentation(root_p, split=split)
    if resolved == "voc":
        return VOCSegmentation(root_p, split=split)
    if split is not None:
        raise UsageError(
            f"a split was given but {root_p} is a plain image folder: {split!r}. "
            "Drop --split or point --data at a VOC/Cityscapes dataset"
        )
    return ImageFolder(root_p)
