from __future__ import annotations

import json

import numpy as np
import pytest

from refinenet_deploy.data.preprocessing import Normalization, denormalize, preprocess, preprocess_batch
from refinenet_deploy.errors import DataError, UsageError

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _image(h: int = 4, w: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_presets() -> None:
    imn = Normalization.imagenet()
    assert imn.mode == "imagenet" and imn.mean == MEAN and imn.std == STD and imn.scale == pytest.approx(1 / 255)
    s128 = Normalization.scalar128()
    assert (s128.mode, s128.mean, s128.std, s128.scale) == ("scalar128", (128.0,) * 3, (1.0,) * 3, 1.0)
    assert Normalization.from_name("ImageNet") == imn
    assert Normalization.from_name("scalar128") == s128
    with pytest.raises(UsageError, match="unknown normalization"):
        Normalization.from_name("caffe")


def test_imagenet_matches_hand_computation() -> None:
    img = _image()
    out = preprocess(img, Normalization.imagenet())
    assert out.dtype == np.float32 and out.shape == (3, 4, 5)
    for y, x in [(0, 0), (3, 4), (1, 2)]:
        for c in range(3):
            expected = (img[y, x, c] / 255.0 - MEAN[c]) / STD[c]
            assert out[c, y, x] == pytest.approx(expected, abs=1e-6)


def test_imagenet_bit_exact_with_torchvision_convention() -> None:
    torch = pytest.importorskip("torch")
    img = _image(6, 7, seed=1)
    t = torch.from_numpy(img).permute(2, 0, 1).float().div(255)  # ToTensor
    t = t.sub(torch.tensor(MEAN).view(3, 1, 1)).div(torch.tensor(STD).view(3, 1, 1))  # Normalize
    np.testing.assert_array_equal(preprocess(img, Normalization.imagenet()), t.numpy())


def test_scalar128() -> None:
    img = _image()
    out = preprocess(img, Normalization.scalar128())
    np.testing.assert_array_equal(out, img.transpose(2, 0, 1).astype(np.float32) - 128.0)
    assert out[0, 0, 0] == float(img[0, 0, 0]) - 128.0


def test_batch_and_denormalize() -> None:
    norm = Normalization.imagenet()
    imgs = [_image(seed=i) for i in range(3)]
    batch = preprocess_batch(imgs, norm)
    assert batch.shape == (3, 3, 4, 5) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[2], preprocess(imgs[2], norm))
    for n in (norm, Normalization.scalar128()):
        back = denormalize(preprocess(imgs[0], n), n)
        assert back.dtype == np.uint8
        np.testing.assert_array_equal(back, imgs[0])
    with pytest.raises(DataError, match="share one size"):
        preprocess_batch([_image(4, 5), _image(5, 4)], norm)
    with pytest.raises(DataError, match="no images"):
        preprocess_batch([], norm)


def test_preprocess_rejects_bad_input() -> None:
    with pytest.raises(DataError, match="uint8 HxWx3"):
        preprocess(np.zeros((4, 5), np.uint8), Normalization.imagenet())
    with pytest.raises(DataError, match="float32"):
        preprocess(np.zeros((4, 5, 3), np.float32), Normalization.imagenet())


def test_dict_round_trip() -> None:
    for n in (Normalization.imagenet(), Normalization.scalar128()):
        d = json.loads(json.dumps(n.to_dict()))
        assert Normalization.from_dict(d) == n


@pytest.mark.parametrize(
    "patch",
    [
        {"mode": "bgr"},
        {"mean": [1, 2]},
        {"std": [1.0, 0.0, 1.0]},
        {"scale": -1},
        {"scale": "x"},
        {"mean": "abc"},
        {"std": [1.0, float("nan"), 1.0]},
    ],
)
def test_from_dict_rejects_bad_values(patch: dict) -> None:
    d = {**Normalization.imagenet().to_dict(), **patch}
    with pytest.raises(DataError):
        Normalization.from_dict(d)


def test_from_dict_missing_keys() -> None:
    with pytest.raises(DataError, match="missing keys: std, scale"):
        Normalization.from_dict({"mode": "imagenet", "mean": [0, 0, 0]})
    with pytest.raises(DataError):
        Normalization.from_dict([1, 2, 3])  # type: ignore[arg-type]


def test_custom_normalisation_checked_when_made() -> None:
    custom = Normalization.custom((0.2, 0.3, 0.4), (0.5, 0.6, 0.7))
    assert custom.mode == "custom" and custom.scale == pytest.approx(1 / 255)
    assert Normalization.from_dict(custom.to_dict()) == custom
    # a preset's name with other values is what it is: custom
    named = Normalization.from_dict({"mode": "imagenet", "mean": [0.2, 0.3, 0.4], "std": [0.5, 0.6, 0.7], "scale": 1})
    assert named.mode == "custom" and named.mean == (0.2, 0.3, 0.4) and named.scale == 1.0
    assert Normalization.from_dict({"mode": "imagenet", **{k: v for k, v in Normalization.imagenet().to_dict().items()
                                                           if k != "mode"}}).mode == "imagenet"  # fmt: skip
    assert Normalization.from_dict({"mode": "scalar128"}) == Normalization.scalar128()
    assert Normalization.parse("ImageNet") == Normalization.imagenet()
    for bad, needle in [
        (dict(mode="custom", mean=[0, 0, 0], std=[0, 1, 1], scale=1), "std must be positive"),
        (dict(mode="custom", mean=[0, 0], std=[1, 1, 1], scale=1), "3 numbers"),
        (dict(mode="custom", mean=[0, 0, float("inf")], std=[1, 1, 1], scale=1), "finite"),
        (dict(mode="custom", mean=[0, 0, 0], std=[1, 1, 1], scale=0), "scale must be positive"),
        (dict(mode="custom", mean=[0, 0, 0]), "missing keys"),
        (dict(mode="zscore", mean=[0, 0, 0], std=[1, 1, 1], scale=1), "unknown normalization mode"),
    ]:
        with pytest.raises(DataError, match=needle):
            Normalization.from_dict(bad)
    with pytest.raises(DataError, match="std must be positive"):
        Normalization.custom((0, 0, 0), (1, -1, 1))
    with pytest.raises(DataError, match="unknown normalization"):
        Normalization.parse("caffe-bgr")
