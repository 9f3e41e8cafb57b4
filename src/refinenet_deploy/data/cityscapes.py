"""Cityscapes layout: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with ``gtFine`` label ids mapped to the 19
train ids."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .images import read_label
from .reader import Sample, SegmentationDataset, pick_split

logger = logging.getLogger("refinenet_deploy.data.datasets")

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)

_CITYSCAPES_TRAIN_LABELIDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)


def _cityscapes_lut() -> np.ndarray:
    lut = np.full(256, 255, dtype=np.uint8)
    for train_id, label_id in enumerate(_CITYSCAPES_TRAIN_LABELIDS):
        lut[label_id] = train_id
    lut.setflags(write=False)
    return lut


#: labelId (0..255; -1 "license plate" wraps to 255) -> trainId (0..18, 255 = ignore).
CITYSCAPES_LABELID_TO_TRAINID: np.ndarray = _cityscapes_lut()


class CityscapesSegmentation(SegmentationDataset):
    """Cityscapes layout: leftImg8bit/<split>/<city>/*_leftImg8bit.png (+ gtFine labelIds).

    Labels are mapped from the 34 labelIds to the 19 train ids (255 = ignore). Without gtFine the
    samples carry no labels.
    """

    IMAGE_SUFFIX = "_leftImg8bit.png"
    LABEL_SUFFIX = "_gtFine_labelIds.png"

    split: str

    def __init__(self, root: str | os.PathLike[str], split: str | None = "val") -> None:
        root_p = Path(root)
        if not root_p.exists():
            raise DataError(f"dataset path not found: {root_p}. Check the --data path")
        image_root = root_p / "leftImg8bit"
        if not image_root.is_dir():
            raise DataError(
                f"not a Cityscapes dataset (no leftImg8bit/ folder): {root_p}. "
                "Point --data at the folder containing leftImg8bit/ and gtFine/"
            )
        available = sorted(d.name for d in image_root.iterdir() if d.is_dir())
        if split is None:
            split = pick_split(available, image_root, "Cityscapes")
        split_dir = image_root / split
        if not split_dir.is_dir():
            listing = ", ".join(available) if available else "none"
            raise DataError(f"Cityscapes split not found: {split_dir}. Available splits: {listing}")
        self.split = split
        label_split = root_p / "gtFine" / split
        with_labels = label_split.is_dir()
        if not with_labels:
            logger.info("no gtFine/%s in %s: Cityscapes images without labels", split, root_p)

        samples: list[Sample] = []
        images = sorted(split_dir.glob(f"*/*{self.IMAGE_SUFFIX}"), key=lambda p: p.relative_to(split_dir).as_posix())
        for img in images:
            base = img.name[: -len(self.IMAGE_SUFFIX)]
            lab: Path | None = None
            if with_labels:
                lab = label_split / img.parent.name / f"{base}{self.LABEL_SUFFIX}"
                if not lab.is_file():
                    raise DataError(f"Cityscapes label not found: {lab}. Restore it or remove the image {img}")
            samples.append(Sample(base, img, lab))
        if not samples:
            raise DataError(
                f"no *{self.IMAGE_SUFFIX} images found in {split_dir}. "
                "Expected leftImg8bit/<split>/<city>/<name>_leftImg8bit.png"
            )
        super().__init__(root_p, samples, CITYSCAPES_CLASSES, 255)
        logger.debug("Cityscapes %s split %s: %d samples", root_p, split, len(samples))

    def load_label(self, path: Path) -> np.ndarray:
        """Read a ``*_gtFine_labelIds.png`` and map it to train ids."""
        return CITYSCAPES_LABELID_TO_TRAINID[read_label(path)]


__all__ = ["CITYSCAPES_CLASSES", "CITYSCAPES_LABELID_TO_TRAINID", "CityscapesSegmentation"]
