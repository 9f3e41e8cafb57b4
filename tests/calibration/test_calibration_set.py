"""Calibration sets: manifest digests, sampling, the resize/crop policy, bad files, streaming."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refinenet_deploy.calibration.dataset import build_calibration_set, fit_to
from refinenet_deploy.data.preprocessing import Normalization
from refinenet_deploy.errors import CalibrationError


def _folder(tmp_path: Path, n: int = 6) -> Path:
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40 + i, 60, 3), dtype=np.uint8)).save(root / f"im{i}.png")
    return root


def _build(root: Path, **kw):
    return build_calibration_set(root, size=(32, 32), normalization=Normalization.imagenet(), **kw)


def test_manifest_digest_changes_when_one_image_changes(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    a = _build(root, num_images=6)
    before = a.digest()
    assert _build(root, num_images=6).digest() == before  # deterministic
    img = np.asarray(Image.open(root / "im3.png")).copy()
    img[0, 0] ^= 1  # one pixel of one image
    Image.fromarray(img).save(root / "im3.png")
    assert _build(root, num_images=6).digest() != before
    assert a.cache_key("model-a") != a.cache_key("model-b")


def test_seeded_sampling(tmp_path: Path) -> None:
    root = _folder(tmp_path, 10)
    a, b, c = _build(root, num_images=4, seed=1), _build(root, num_images=4, seed=1), _build(root, num_images=4, seed=2)
    assert a.files == b.files and a.files != c.files and len(a.files) == 4
    assert a.manifest["sampling"]["seed"] == 1 and a.manifest["resize_policy"].startswith("resize to cover")


def test_fit_to_covers_then_crops() -> None:
    img = np.zeros((40, 100, 3), np.uint8)
    img[:, 50:] = 255
    out = fit_to(img, (32, 32))
    assert out.shape == (32, 32, 3)
    assert out[:, 0].max() < 128 < out[:, -1].min()  # centre crop keeps the middle (left dark, right bright)


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path: Path, caplog) -> None:
    root = _folder(tmp_path, 3)
    (root / "broken.jpg").write_bytes(b"not an image")
    Image.fromarray(np.zeros((8, 8), np.float32), mode="F").save(root / "float.tif")
    with caplog.at_level(logging.WARNING):
        cs = _build(root, num_images=10)
    assert len(cs.files) == 3 and len(cs.skipped) == 2
    assert "broken.jpg" in caplog.text and "float.tif" in caplog.text


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="no images found"):
        _build(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_bytes(b"x")
    with pytest.raises(CalibrationError, match="no readable calibration images"):
        _build(tmp_path / "junk")


def test_batches_stream_in_model_layout(tmp_path: Path) -> None:
    root = _folder(tmp_path, 5)
    cs = _build(root, num_images=5)
    batches = cs.batches(batch_size=2)
    first = next(batches)  # a generator: nothing beyond this batch has been read
    assert first.shape == (2, 3, 32, 32) and first.dtype == np.float32
    assert [b.shape[0] for b in batches] == [2, 1]
    nhwc = build_calibration_set(
        root, size=(16, 24), normalization=Normalization.imagenet(), input_format="nhwc-uint8", num_images=2
    )
    assert next(nhwc.batches(2)).shape == (2, 16, 24, 3)
