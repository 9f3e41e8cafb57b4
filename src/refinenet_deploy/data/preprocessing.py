"""Input normalization: uint8 HxWx3 RGB images to float32 CHW tensors and back.

Two conventions are supported:

* ``imagenet``: ``(x / 255 - mean) / std`` with the torchvision ImageNet statistics, computed in
  float32 exactly like ``ToTensor()`` followed by ``Normalize(mean, std)``.
* ``scalar128``: the original MatConvNet RefineNet, ``x - 128`` with no scaling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError, UsageError

__all__ = ["NORMALIZATION_MODES", "Normalization", "denormalize", "preprocess", "preprocess_batch", "resize_image"]

NORMALIZATION_MODES: tuple[str, ...] = ("imagenet", "scalar128")

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalization:
    """How raw pixels are turned into network input: ``((image * scale) - mean) / std``."""

    mode: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float

    @classmethod
    def imagenet(cls) -> Normalization:
        """RGB in [0, 1] normalized with the ImageNet mean/std (torchvision convention)."""
        return cls("imagenet", _IMAGENET_MEAN, _IMAGENET_STD, 1.0 / 255.0)

    @classmethod
    def scalar128(cls) -> Normalization:
        """The original MatConvNet RefineNet input: ``x - 128`` on 0..255 RGB."""
        return cls("scalar128", (128.0, 128.0, 128.0), (1.0, 1.0, 1.0), 1.0)

    @classmethod
    def from_name(cls, name: str) -> Normalization:
        """Build a preset by name (``imagenet`` or ``scalar128``)."""
        key = str(name).strip().lower()
        if key == "imagenet":
            return cls.imagenet()
        if key == "scalar128":
            return cls.scalar128()
        raise UsageError(f"unknown normalization: {name!r}. Use one of: {', '.join(NORMALIZATION_MODES)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (inverse of :meth:`from_dict`)."""
        return {
            "mode": self.mode,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "scale": float(self.scale),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Normalization:
        """Rebuild from :meth:`to_dict` output; raises :class:`DataError` on a malformed dict."""
        if not isinstance(d, Mapping):
            raise DataError(f"normalization must be a mapping, got: {type(d).__name__}. Re-export the artifact")
        missing = [k for k in ("mode", "mean", "std", "scale") if k not in d]
        if missing:
            raise DataError(f"normalization is missing keys: {', '.join(missing)}. Expected mode, mean, std and scale")
        mode = d["mode"]
        if mode not in NORMALIZATION_MODES:
            raise DataError(f"unknown normalization mode: {mode!r}. Use one of: {', '.join(NORMALIZATION_MODES)}")
        mean = _triple(d["mean"], "mean")
        std = _triple(d["std"], "std")
        if any(v <= 0.0 for v in std):
            raise DataError(f"normalization std must be positive: {list(std)}. Fix the std values")
        scale = _finite(d["scale"], "scale")
        if scale <= 0.0:
            raise DataError(f"normalization scale must be positive: {scale}. Fix the scale value")
        return cls(mode, mean, std, scale)


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"normalization {what} must be a number: {value!r}. Fix the {what} value")
    out = float(value)
    if not math.isfinite(out):
        raise DataError(f"normalization {what} must be finite: {value!r}. Fix the {what} value")
    return out


def _triple(value: Any, what: str) -> tuple[float, float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        raise DataError(f"normalization {what} must be 3 numbers (R, G, B): {value!r}. Fix the {what} value")
    a, b, c = (_finite(v, what) for v in value)
    return (a, b, c)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise DataError(f"expected a uint8 HxWx3 RGB image, got: {desc}. Read images with read_image()")


def preprocess(image: np.ndarray, norm: Normalization) -> np.ndarray:
    """uint8 HxWx3 RGB -> float32 (3, H, W), ``((image * scale) - mean) / std`` in float32.

    A scale of ``1/k`` for integer ``k`` (e.g. 1/255) is applied as a division by ``k`` so the
    result is bit-identical to torchvision's ``ToTensor()`` + ``Normalize``.
    """
    _check_image(image)
    x = np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32)
    if norm.scale != 1.0:
        inv = 1.0 / norm.scale
        if abs(inv - round(inv)) < 1e-6:
            x /= np.float32(round(inv))
        else:
            x *= np.float32(norm.scale)
    mean = np.asarray(norm.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(norm.std, dtype=np.float32).reshape(3, 1, 1)
    x -= mean
    x /= std
    return x


def preprocess_batch(images: Sequence[np.ndarray], norm: Normalization) -> np.ndarray:
    """Stack equally sized uint8 HxWx3 images into a float32 (N, 3, H, W) batch."""
    if len(images) == 0:
        raise DataError("cannot build a batch: no images. Pass at least one image")
    for img in images:
        _check_image(img)
    shapes = sorted({img.shape[:2] for img in images})
    if len(shapes) > 1:
        raise DataError(f"images in a batch must share one size, got: {shapes}. Resize them or use batch size 1")
    h, w = shapes[0]
    out = np.empty((len(images), 3, h, w), dtype=np.float32)
    for i, img in enumerate(images):
        out[i] = preprocess(img, norm)
    return out


def denormalize(chw: np.ndarray, norm: Normalization) -> np.ndarray:
    """Invert :func:`preprocess` for visualisation: float (3, H, W) -> uint8 HxWx3 (rounded, clipped)."""
    arr = np.asarray(chw)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise DataError(f"expected a (3, H, W) array, got shape: {arr.shape}. Pass one preprocessed image")
    mean = np.asarray(norm.mean, dtype=np.float64).reshape(3, 1, 1)
    std = np.asarray(norm.std, dtype=np.float64).reshape(3, 1, 1)
    x = (arr.astype(np.float64) * std + mean) / norm.scale
    return np.clip(np.rint(x), 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an HxWx3 uint8 image to ``size`` (H, W); the same array when it already has that size."""
    if image.shape[:2] == tuple(size):
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
