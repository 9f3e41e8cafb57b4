"""PASCAL VOC layout: ``JPEGImages/``, ``SegmentationClass/``, ``ImageSets/Segmentation/<split>.txt``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import DataError
from .reader import (
    Sample,
    SegmentationDataset,
    list_dir,
    meta_classes,
    meta_ignore_index,
    pick_split,
    read_dataset_json,
)

logger = logging.getLogger("refinenet_deploy.data.datasets")

VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def _is_voc_root(d: Path) -> bool:
    return (d / "ImageSets" / "Segmentation").is_dir() or (
        (d / "JPEGImages").is_dir() and (d / "SegmentationClass").is_dir()
    )


def find_voc_root(root: Path) -> Path | None:
    """``root`` itself, ``root/VOC2012`` or ``root/VOCdevkit/VOC2012`` (or a single other VOC* dir)."""
    if _is_voc_root(root):
        return root
    for base in (root, root / "VOCdevkit"):
        if not base.is_dir():
            continue
        if _is_voc_root(base / "VOC2012"):
            return base / "VOC2012"
        others = sorted(d for d in base.glob("VOC*") if d.is_dir() and _is_voc_root(d))
        if others:
            return others[-1]
    return None


class VOCSegmentation(SegmentationDataset):
    """PASCAL VOC layout: JPEGImages/, SegmentationClass/, ImageSets/Segmentation/<split>.txt.

    ``root`` may be the VOC2012 folder, VOCdevkit/, or the folder containing VOCdevkit/. With
    ``split=None`` the split is chosen automatically (val, then train, then trainval); a layout
    without ImageSets/Segmentation then uses every image that has a label.
    """

    split: str | None

    def __init__(self, root: str | os.PathLike[str], split: str | None = "val") -> None:
        given = Path(root)
        if not given.exists():
            raise DataError(f"dataset path not found: {given}. Check the --data path")
        voc = find_voc_root(given)
        if voc is None:
            raise DataError(
                f"not a VOC dataset (no JPEGImages/ and SegmentationClass/): {given}. Point --data at VOCdevkit/VOC2012"
            )
        meta = read_dataset_json(voc, given)
        classes = meta_classes(meta, voc) or VOC_CLASSES
        ignore = meta_ignore_index(meta, voc)
        image_dir, label_dir = voc / "JPEGImages", voc / "SegmentationClass"
        images = list_dir(image_dir) if image_dir.is_dir() else {}
        labels = list_dir(label_dir) if label_dir.is_dir() else {}

        split_dir = voc / "ImageSets" / "Segmentation"
        available = sorted(p.stem for p in split_dir.glob("*.txt")) if split_dir.is_dir() else []
        if split is None and not available:
            ids = sorted(n for n in labels if n in images)
            self.split = None
        else:
            if split is None:
                split = pick_split(available, split_dir, "VOC")
            split_file = split_dir / f"{split}.txt"
            if not split_file.is_file():
                listing = ", ".join(available) if available else "none"
                raise DataError(f"VOC split file not found: {split_file}. Available splits: {listing}")
            ids = self._read_ids(split_file)
            self.split = split

        samples: list[Sample] = []
        for name in ids:
            img = images.get(name)
            if img is None:
                raise DataError(
                    f"image for VOC id {name!r} not found: {image_dir / (name + '.jpg')}. "
                    "Restore the file or remove the id from the split list"
                )
            lab = labels.get(name)
            if lab is None:
                raise DataError(
                    f"label for VOC id {name!r} not found: {label_dir / (name + '.png')}. "
                    "Restore the file or remove the id from the split list"
                )
            samples.append(Sample(name, img, lab))
        if not samples:
            raise DataError(f"VOC split {self.split or 'all'} has no samples: {voc}. Check the split list")
        super().__init__(voc, samples, classes, ignore)
        logger.debug("VOC %s split %s: %d samples, %d classes", voc, self.split, len(samples), len(classes))

    @staticmethod
    def _read_ids(split_file: Path) -> list[str]:
        try:
            lines = split_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read VOC split file: {split_file}. Check the file ({exc})") from exc
        ids: list[str] = []
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                ids.append(line.split()[0])
        return ids


__all__ = ["VOC_CLASSES", "VOCSegmentation", "find_voc_root"]
