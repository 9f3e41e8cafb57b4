"""Datasets (image folder, VOC, Cityscapes), image reading, preprocessing and synthetic scenes."""

from .datasets import CityscapesSegmentation, ImageFolder, Sample, SegmentationDataset, VOCSegmentation, open_dataset
from .images import read_image, read_label
from .preprocessing import Normalization, preprocess, preprocess_batch

__all__ = [
    "CityscapesSegmentation",
    "ImageFolder",
    "Normalization",
    "Sample",
    "SegmentationDataset",
    "VOCSegmentation",
    "open_dataset",
    "preprocess",
    "preprocess_batch",
    "read_image",
    "read_label",
]
