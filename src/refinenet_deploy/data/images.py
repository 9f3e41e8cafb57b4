"""Robust image and label readers returning plain numpy arrays.

``read_image`` always returns uint8 (H, W, 3) RGB, whatever the file's mode (grayscale, palette,
alpha, CMYK, 16-bit, EXIF-rotated). ``read_label`` returns uint8 (H, W) class indices, also from
labels that were re-saved as RGB with the VOC colour map.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

__all__ = ["colorize", "read_image", "read_label", "voc_colormap"]

logger = logging.getLogger(__name__)

_16BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_VOC_BORDER = 255
_alpha_warned: set[str] = set()


def voc_colormap(n: int = 256) -> np.ndarray:
    """The standard PASCAL VOC bitwise colour map as uint8 (n, 3); index 255 is (224, 224, 192)."""
    if not 0 < n <= 256:
        raise ValueError(f"voc_colormap supports 1..256 entries, got {n}")
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


_VOC_CMAP = voc_colormap(256)
_VOC_CMAP.setflags(write=False)
# The bitwise map is injective, so every colour maps back to exactly one index.
_COLOR_TO_INDEX: dict[int, int] = {(int(r) << 16) | (int(g) << 8) | int(b): i for i, (r, g, b) in enumerate(_VOC_CMAP)}


def colorize(label: np.ndarray, colormap: np.ndarray | None = None) -> np.ndarray:
    """Class-index map (H, W) -> uint8 (H, W, 3) using the VOC colour map (or ``colormap``)."""
    lab = np.asarray(label)
    if lab.ndim != 2:
        raise ValueError(f"colorize expects an (H, W) label, got shape {lab.shape}")
    cmap = _VOC_CMAP if colormap is None else np.asarray(colormap, dtype=np.uint8)
    if lab.size and (lab.min() < 0 or lab.max() >= len(cmap)):
        raise ValueError(f"label values must be in 0..{len(cmap) - 1}, got {lab.min()}..{lab.max()}")
    return cmap[lab.astype(np.intp, copy=False)]


def _open(path: str | os.PathLike[str], what: str) -> tuple[Path, Image.Image]:
    """Open and fully decode ``path`` (EXIF orientation applied), mapping failures to DataError."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{what} not found: {p}. Check the path")
    if p.is_dir():
        raise DataError(f"{what} path is a directory: {p}. Pass an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                img.load()
                out = ImageOps.exif_transpose(img)
                if out is None:  # pragma: no cover - only with in_place=True
                    out = img.copy()
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"{what} is too large (possible decompression bomb): {p}. "
            f"Downscale it below {Image.MAX_IMAGE_PIXELS} pixels"
        ) from exc
    except UnidentifiedImageError as exc:
        raise DataError(f"not a readable {what} file: {p}. Check it is a valid JPEG/PNG/BMP/TIFF/WebP image") from exc
    except PermissionError as exc:
        raise DataError(f"cannot read {what}: {p}. Permission denied; check file permissions") from exc
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise DataError(f"{what} file is truncated or corrupt: {p}. Re-export or re-download it ({exc})") from exc
    return p, out


def _warn_alpha(p: Path, alpha: np.ndarray) -> None:
    """Warn (once per file per process) when a non-opaque alpha channel is discarded."""
    if alpha.size == 0 or int(alpha.min()) == 255:
        return
    key = str(p.resolve())
    if key in _alpha_warned:
        return
    _alpha_warned.add(key)
    logger.warning("image has transparency, alpha channel dropped (not composited): %s", p)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read any supported image file as a uint8 (H, W, 3) RGB array.

    EXIF orientation is applied; grayscale is replicated; palette, CMYK, YCbCr and 1-bit are
    converted; alpha is dropped (with a warning if it is not fully opaque); 16-bit data is
    reduced to 8 bits (``>> 8``). Float images are refused.
    """
    p, img = _open(path, "image")
    mode = img.mode
    try:
        if mode == "RGB":
            return np.array(img, dtype=np.uint8)
        if mode == "L":
            return _gray_to_rgb(np.array(img, dtype=np.uint8))
        if mode == "P":
            if "transparency" in img.info:
                mode, img = "RGBA", img.convert("RGBA")
            else:
                return np.array(img.convert("RGB"), dtype=np.uint8)
        elif mode in ("PA", "RGBa"):
            mode, img = "RGBA", img.convert("RGBA")
        elif mode == "La":
            mode, img = "LA", img.convert("LA")
        if mode == "RGBA":
            arr = np.array(img, dtype=np.uint8)
            _warn_alpha(p, arr[:, :, 3])
            return np.ascontiguousarray(arr[:, :, :3])
        if mode == "LA":
            arr = np.array(img, dtype=np.uint8)
            _warn_alpha(p, arr[:, :, 1])
            return _gray_to_rgb(arr[:, :, 0])
        if mode == "RGBX":
            return np.ascontiguousarray(np.array(img, dtype=np.uint8)[:, :, :3])
        if mode in _16BIT_MODES:
            arr = np.asarray(img).astype(np.uint16, copy=False)
            return _gray_to_rgb((arr >> 8).astype(np.uint8))
        if mode == "I":
            arr = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
            return _gray_to_rgb((arr >> 8).astype(np.uint8))
        if mode == "F":
            raise DataError(f"floating-point images are not supported: {p}. Convert it to an 8-bit RGB PNG or JPEG")
        # CMYK, YCbCr, 1, LAB, HSV, ...: let Pillow convert.
        return np.array(img.convert("RGB"), dtype=np.uint8)
    except DataError:
        raise
    except (ValueError, OSError) as exc:
        raise DataError(f"unsupported image mode {mode!r}: {p}. Convert it to an 8-bit RGB PNG or JPEG") from exc


def _rgb_label_to_index(p: Path, rgb: np.ndarray) -> np.ndarray:
    codes = (rgb[:, :, 0].astype(np.uint32) << 16) | (rgb[:, :, 1].astype(np.uint32) << 8) | rgb[:, :, 2]
    uniq, inverse = np.unique(codes.ravel(), return_inverse=True)
    lut = np.empty(len(uniq), dtype=np.uint8)
    for k, code in enumerate(uniq.tolist()):
        idx = _COLOR_TO_INDEX.get(code)
        if idx is None:
            colour = ((code >> 16) & 255, (code >> 8) & 255, code & 255)
            raise DataError(
                f"label colour {colour} is not in the VOC colour map: {p}. "
                "Save labels as palette (mode P) or grayscale PNGs of class indices"
            )
        lut[k] = idx
    return lut[inverse].reshape(codes.shape)


def read_label(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a segmentation label as uint8 (H, W) class indices (255 = ignore/border for VOC).

    Palette PNGs give their raw indices; grayscale gives its values; RGB(A) labels are mapped back
    through the VOC colour map; 16-bit labels must hold values below 256.
    """
    p, img = _open(path, "label")
    mode = img.mode
    if mode in ("P", "L"):
        return np.array(img, dtype=np.uint8)
    if mode == "1":
        return np.array(img).astype(np.uint8)
    if mode == "LA":
        return np.ascontiguousarray(np.array(img, dtype=np.uint8)[:, :, 0])
    if mode == "PA":
        return np.ascontiguousarray(np.array(img.getchannel(0), dtype=np.uint8))
    if mode in ("RGB", "RGBA", "RGBX"):
        return _rgb_label_to_index(p, np.array(img, dtype=np.uint8)[:, :, :3])
    if mode in _16BIT_MODES or mode == "I":
        arr = np.asarray(img).astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= 256):
            raise DataError(
                f"label values {arr.min()}..{arr.max()} do not fit in 0..255: {p}. "
                "Save labels as 8-bit class-index PNGs"
            )
        return arr.astype(np.uint8)
    raise DataError(
        f"unsupported label mode {mode!r}: {p}. Save labels as palette (mode P) or grayscale PNGs of class indices"
    )
