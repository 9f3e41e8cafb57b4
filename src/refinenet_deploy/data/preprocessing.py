"""Input normalization: uint8 HxWx3 RGB images to float32 CHW tensors and back.

``Normalization`` is ``((image * scale) - mean) / std`` per RGB channel. Two presets, plus any custom values:

* ``imagenet``: ``(x / 255 - mean) / std`` with the torchvision ImageNet statistics, computed in
  float32 exactly like ``ToTensor()`` followed by ``Normalize(mean, std)``.
* ``scalar128``: the original MatConvNet RefineNet, ``x - 128`` with no scaling.
* ``custom``: a checkpoint's own mean, std and scale (e.g. from its training code's metadata).

Every ``Normalization`` is checked when it is made: 3 finite means, 3 finite positive stds, a finite positive
scale (``DataError``, exit 5). The mode is a label: values that differ from a preset's are ``custom``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError, UsageError

__all__ = [
    "NORMALIZATION_MODES",
    "NORMALIZATION_PRESETS",
    "Normalization",
    "denormalize",
    "preprocess",
    "preprocess_batch",
    "resize_image",
]

NORMALIZATION_PRESETS: tuple[str, ...] = ("imagenet", "scalar128")
NORMALIZATION_MODES: tuple[str, ...] = (*NORMALIZATION_PRESETS, "custom")

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_PRESET_VALUES: dict[str, tuple[tuple[float, ...], tuple[float, ...], float]] = {
    "imagenet": (_IMAGENET_MEAN, _IMAGENET_STD, 1.0 / 255.0),
    "scalar128": ((128.0, 128.0, 128.0), (1.0, 1.0, 1.0), 1.0),
}


@dataclass(frozen=True)
class Normalization:
    """How raw pixels are turned into network input: ``((image * scale) - mean) / std``, checked when made."""

    mode: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float

    def __post_init__(self) -> None:
        if self.mode not in NORMALIZATION_MODES:
            raise DataError(
                f"unknown normalization mode: {str(self.mode)[:40]!r}. Use one of: {', '.join(NORMALIZATION_MODES)}"
            )
        mean = _triple(self.mean, "mean")
        std = _triple(self.std, "std")
        if any(v <= 0.0 for v in std):
            raise DataError(f"normalization std must be positive: {list(std)}. Fix the std values")
        scale = _finite(self.scale, "scale")
        if scale <= 0.0:
            raise DataError(f"normalization scale must be positive: {scale}. Fix the scale value")
        preset = _PRESET_VALUES.get(self.mode)
        mode = self.mode if preset is None or preset == (mean, std, scale) else "custom"
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "scale", scale)

    @classmethod
    def imagenet(cls) -> Normalization:
        """RGB in [0, 1] normalized with the ImageNet mean/std (torchvision convention)."""
        return cls("imagenet", *_PRESET_VALUES["imagenet"])  # type: ignore[arg-type]

    @classmethod
    def scalar128(cls) -> Normalization:
        """The original MatConvNet RefineNet input: ``x - 128`` on 0..255 RGB."""
        return cls("scalar128", *_PRESET_VALUES["scalar128"])  # type: ignore[arg-type]

    @classmethod
    def custom(cls, mean: Sequence[float], std: Sequence[float], scale: float = 1.0 / 255.0) -> Normalization:
        """Any mean/std/scale (checked); labelled ``custom`` unless the values are a preset's."""
        return cls("custom", mean, std, scale)  # type: ignore[arg-type]

    @classmethod
    def from_name(cls, name: str) -> Normalization:
        """Build a preset by name (``imagenet`` or ``scalar128``); UsageError (exit 2) otherwise."""
        key = str(name).strip().lower()
        if key in _PRESET_VALUES:
            return cls(key, *_PRESET_VALUES[key])  # type: ignore[arg-type]
        raise UsageError(f"unknown normalization: {name!r}. Use one of: {', '.join(NORMALIZATION_PRESETS)}")

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
        """Rebuild from :meth:`to_dict` output; raises :class:`DataError` on a malformed dict.

        ``{"mode": "imagenet"}`` alone names a preset; otherwise ``mean``, ``std`` and ``scale`` are all needed
        and are what is used (the mode becomes ``custom`` when they are not the preset's)."""
        if not isinstance(d, Mapping):
            raise DataError(f"normalization must be a mapping, got: {type(d).__name__}. Re-export the artifact")
        mode = d.get("mode", "custom")
        if not isinstance(mode, str) or mode not in NORMALIZATION_MODES:
            raise DataError(
                f"unknown normalization mode: {str(mode)[:40]!r}. Use one of: {', '.join(NORMALIZATION_MODES)}"
            )
        values = ("mean", "std", "scale")
        if mode in _PRESET_VALUES and not set(values) & set(d):
            return cls.from_name(mode)
        missing = [k for k in values if k not in d]
        if missing:
            raise DataError(f"normalization is missing keys: {', '.join(missing)}. Expected mode, mean, std and scale")
        return cls(mode, d["mean"], d["std"], d["scale"])

    @classmethod
    def parse(cls, value: Any) -> Normalization:
        """A preset name or a mean/std/scale mapping (what metadata records) -> Normalization; DataError otherwise."""
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, str) and value.strip().lower() in _PRESET_VALUES:
            return cls.from_name(value)
        raise DataError(
            f"unknown normalization {str(value)[:60]!r}. Use one of: {', '.join(NORMALIZATION_PRESETS)}, or a "
            "mapping with mode, mean, std and scale"
        )


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
