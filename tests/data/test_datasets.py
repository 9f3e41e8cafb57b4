from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refinenet_deploy.data.datasets import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_LABELID_TO_TRAINID,
    VOC_CLASSES,
    CityscapesSegmentation,
    ImageFolder,
    Sample,
    VOCSegmentation,
    open_dataset,
)
from refinenet_deploy.data.images import voc_colormap
from refinenet_deploy.errors import DataError, UsageError


def _save_rgb(path: Path, h: int = 4, w: int = 6, value: int = 0, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path, format=fmt)


def _save_label(path: Path, arr: np.ndarray, palette: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr.astype(np.uint8), "P" if palette else "L")
    if palette:
        img.putpalette(voc_colormap().ravel().tolist())
    img.save(path)


def _make_voc(root: Path, splits: dict[str, list[str]], h: int = 4, w: int = 6) -> Path:
    names = sorted({n for ids in splits.values() for n in ids})
    for i, name in enumerate(names):
        _save_rgb(root / "JPEGImages" / f"{name}.jpg", h, w, value=10 * i)
        lab = np.full((h, w), i % 21, np.uint8)
        lab[0, 0] = 255
        _save_label(root / "SegmentationClass" / f"{name}.png", lab)
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True, exist_ok=True)
    for split, ids in splits.items():
        (sets / f"{split}.txt").write_text("".join(f"{n}\n" for n in ids))
    return root


# ------------------------------------------------------------------ ImageFolder


def test_image_folder_sorted_recursive(tmp_path: Path) -> None:
    _save_rgb(tmp_path / "b.png")
    _save_rgb(tmp_path / "A.JPG", fmt="JPEG")
    _save_rgb(tmp_path / "sub" / "c.jpeg", fmt="JPEG")
    _save_rgb(tmp_path / "sub" / "deeper" / "d.webp")
    _save_rgb(tmp_path / ".hidden" / "e.png")
    (tmp_path / "notes.txt").write_text("x")
    ds = ImageFolder(tmp_path)
    assert [s.name for s in ds.samples] == ["A", "b", "sub/c", "sub/deeper/d"]
    assert not ds.has_labels and ds.num_classes is None and ds.class_names is None
    assert len(ds) == 4
    sample, image, label = ds[2]
    assert sample == Sample("sub/c", tmp_path / "sub" / "c.jpeg", None)
    assert image.shape == (4, 6, 3) and label is None
    assert [s.name for s, _, _ in ds] == ["A", "b", "sub/c", "sub/deeper/d"]
    assert ds[-1][0].name == "sub/deeper/d"

    flat = ImageFolder(tmp_path, recursive=False)
    assert [s.name for s in flat.samples] == ["A", "b"]


def test_image_folder_name_collision_keeps_extension(tmp_path: Path) -> None:
    _save_rgb(tmp_path / "x.png")
    _save_rgb(tmp_path / "x.jpg", fmt="JPEG")
    _save_rgb(tmp_path / "y.png")
    assert [s.name for s in ImageFolder(tmp_path).samples] == ["x.jpg", "x.png", "y"]


def test_image_folder_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images found in .*Point --data"):
        ImageFolder(tmp_path)
    with pytest.raises(DataError, match="not found"):
        ImageFolder(tmp_path / "missing")


def test_image_folder_single_file(tmp_path: Path) -> None:
    _save_rgb(tmp_path / "one.png")
    ds = open_dataset(tmp_path / "one.png")
    assert isinstance(ds, ImageFolder) and [s.name for s in ds.samples] == ["one"]


def test_streaming_reads_lazily(tmp_path: Path) -> None:
    _save_rgb(tmp_path / "a.png")
    (tmp_path / "b.png").write_text("corrupt")
    ds = ImageFolder(tmp_path)  # construction does not decode anything
    assert ds[0][1].shape == (4, 6, 3)
    with pytest.raises(DataError, match=r"b\.png"):
        ds[1]


# ------------------------------------------------------------------ VOC


def test_voc_default_classes(tmp_path: Path) -> None:
    root = _make_voc(tmp_path / "VOC2012", {"train": ["2007_000001", "2007_000002"], "val": ["2007_000003"]})
    ds = VOCSegmentation(root)
    assert ds.split == "val" and ds.class_names == VOC_CLASSES and ds.num_classes == 21
    assert ds.ignore_index == 255 and ds.has_labels
    sample, image, label = ds[0]
    assert sample.name == "2007_000003" and sample.image_path.suffix == ".jpg"
    assert image.shape == (4, 6, 3) and label is not None and label.shape == (4, 6)
    assert label[0, 0] == 255 and label[1, 1] == 2
    train = VOCSegmentation(root, split="train")
    assert [s.name for s in train.samples] == ["2007_000001", "2007_000002"]


def test_voc_dataset_json_classes(tmp_path: Path) -> None:
    root = _make_voc(tmp_path / "synth", {"train": ["s0", "s1"]})
    classes = ["background", "sky", "road"]
    (root / "dataset.json").write_text(json.dumps({"format": "voc", "classes": classes}))
    ds = open_dataset(root)
    assert isinstance(ds, VOCSegmentation)
    assert ds.split == "train"  # val absent -> train
    assert ds.class_names == tuple(classes) and ds.num_classes == 3


def test_voc_found_inside_vocdevkit(tmp_path: Path) -> None:
    _make_voc(tmp_path / "VOCdevkit" / "VOC2012", {"val": ["a"], "trainval": ["a"]})
    for root in (tmp_path, tmp_path / "VOCdevkit"):
        ds = open_dataset(root)
        assert isinstance(ds, VOCSegmentation)
        assert ds.root == tmp_path / "VOCdevkit" / "VOC2012" and ds.split == "val"


def test_voc_missing_split_lists_available(tmp_path: Path) -> None:
    root = _make_voc(tmp_path, {"train": ["a"], "trainval": ["a"]})
    with pytest.raises(DataError, match=r"test\.txt.*Available splits: train, trainval"):
        VOCSegmentation(root, split="test")
    assert open_dataset(root).split == "train"  # type: ignore[attr-defined]


def test_voc_missing_label(tmp_path: Path) -> None:
    root = _make_voc(tmp_path, {"val": ["a", "b"]})
    (root / "SegmentationClass" / "b.png").unlink()
    with pytest.raises(DataError, match=r"label for VOC id 'b'.*b\.png"):
        VOCSegmentation(root)


def test_voc_size_mismatch_names_both_files(tmp_path: Path) -> None:
    root = _make_voc(tmp_path, {"val": ["a"]})
    _save_label(root / "SegmentationClass" / "a.png", np.zeros((5, 6), np.uint8))
    ds = VOCSegmentation(root)
    with pytest.raises(DataError, match=r"sizes differ.*a\.jpg and .*a\.png"):
        ds[0]


def test_voc_without_split_files(tmp_path: Path) -> None:
    _save_rgb(tmp_path / "JPEGImages" / "a.jpg", fmt="JPEG")
    _save_rgb(tmp_path / "JPEGImages" / "b.jpg", fmt="JPEG")
    _save_label(tmp_path / "SegmentationClass" / "a.png", np.zeros((4, 6), np.uint8))
    ds = open_dataset(tmp_path)
    assert isinstance(ds, VOCSegmentation) and [s.name for s in ds.samples] == ["a"]


# ------------------------------------------------------------------ Cityscapes


def _make_cityscapes(root: Path, with_gt: bool = True) -> None:
    for split, city, frame in [
        ("val", "frankfurt", "000000_000294"),
        ("val", "lindau", "000001_000019"),
        ("train", "aachen", "000000_000019"),
    ]:
        base = f"{city}_{frame}"
        _save_rgb(root / "leftImg8bit" / split / city / f"{base}_leftImg8bit.png")
        if with_gt:
            lab = np.array([[7, 26, 0, 33, 1, 255]] * 4, np.uint8)
            _save_label(root / "gtFine" / split / city / f"{base}_gtFine_labelIds.png", lab, palette=False)


def test_cityscapes_lut() -> None:
    lut = CITYSCAPES_LABELID_TO_TRAINID
    assert lut.shape == (256,) and lut.dtype == np.uint8
    assert (lut[7], lut[8], lut[26], lut[33], lut[0], lut[255]) == (0, 1, 13, 18, 255, 255)
    assert sorted(set(lut.tolist()) - {255}) == list(range(19))
    assert len(CITYSCAPES_CLASSES) == 19 and CITYSCAPES_CLASSES[13] == "car"


def test_cityscapes_mapping(tmp_path: Path) -> None:
    _make_cityscapes(tmp_path)
    ds = open_dataset(tmp_path)
    assert isinstance(ds, CityscapesSegmentation)
    assert ds.split == "val" and ds.num_classes == 19 and ds.has_labels
    assert [s.name for s in ds.samples] == ["frankfurt_000000_000294", "lindau_000001_000019"]
    _, image, label = ds[0]
    assert image.shape == (4, 6, 3)
    assert label is not None
    np.testing.assert_array_equal(label[0], [0, 13, 255, 18, 255, 255])
    assert len(open_dataset(tmp_path, split="train")) == 1


def test_cityscapes_without_gtfine(tmp_path: Path) -> None:
    _make_cityscapes(tmp_path, with_gt=False)
    ds = CityscapesSegmentation(tmp_path)
    assert not ds.has_labels and ds[1][2] is None


def test_cityscapes_bad_split(tmp_path: Path) -> None:
    _make_cityscapes(tmp_path)
    with pytest.raises(DataError, match="Available splits: train, val"):
        CityscapesSegmentation(tmp_path, split="test")


# ------------------------------------------------------------------ open_dataset


def test_open_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        open_dataset(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="unknown dataset kind"):
        open_dataset(tmp_path, kind="coco")
    _save_rgb(tmp_path / "a.png")
    assert isinstance(open_dataset(tmp_path), ImageFolder)
    with pytest.raises(UsageError, match="split"):
        open_dataset(tmp_path, split="val")
    with pytest.raises(DataError, match="not a VOC dataset"):
        open_dataset(tmp_path, kind="voc")
    with pytest.raises(DataError, match="not a Cityscapes dataset"):
        open_dataset(tmp_path, kind="cityscapes")


def test_open_dataset_forced_folder_on_voc(tmp_path: Path) -> None:
    _make_voc(tmp_path, {"val": ["a"]})
    ds = open_dataset(tmp_path, kind="folder")
    assert isinstance(ds, ImageFolder) and len(ds) == 2  # the jpg and the label png
