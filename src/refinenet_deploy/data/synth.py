"""Procedurally generated semantic-segmentation scenes, written in PASCAL-VOC layout.

Each scene is a randomised background with 2-6 overlapping objects. Every foreground class
has a characteristic *shape* and *texture family*; colours are random per object, so colour
alone never identifies a class:

| index | class      | shape                                   | texture                           |
|-------|------------|-----------------------------------------|-----------------------------------|
| 1     | disc       | filled ellipse (near-circular)          | smooth radial shading + highlight |
| 2     | box        | rotated rectangle                       | hard two-colour stripes           |
| 3     | triangle   | irregular triangle                      | flat colour                       |
| 4     | ring       | elliptical annulus, the hole is see-through | angular two-colour gradient   |
| 5     | cross      | rotated plus sign with thin arms        | rotated checkerboard              |

Backgrounds are linear/radial gradients, low-frequency value noise, or low-contrast
stripe/checker distractors. Labels are the exact object masks (topmost object wins);
illumination, blur and gaussian noise are applied to the image only. Scene ``i`` of a dataset
depends only on ``(seed, i)``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from refinenet_deploy.errors import UsageError, write_failed

__all__ = [
    "SYNTH_CLASSES",
    "SYNTH_PALETTE",
    "generate_scene",
    "scene_name",
    "scene_rng",
    "write_synth_dataset",
]

SYNTH_CLASSES: tuple[str, ...] = ("background", "disc", "box", "triangle", "ring", "cross")

_DISC, _BOX, _TRIANGLE, _RING, _CROSS = 1, 2, 3, 4, 5
_MIN_SIDE = 16
_JPEG_QUALITY = 95
_SPLIT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _voc_palette() -> list[int]:
    """The PASCAL-VOC colour map: bits of the index spread over R, G, B from the MSB down."""
    palette: list[int] = []
    for index in range(256):
        r = g = b = 0
        c = index
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


SYNTH_PALETTE: list[int] = _voc_palette()


# --------------------------------------------------------------------------- helpers


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_size(height: object, width: object) -> None:
    for name, value in (("height", height), ("width", width)):
        if not _is_int(value) or int(value) < _MIN_SIDE:  # type: ignore[call-overload]
            raise UsageError(
                f"synthetic {name} must be an integer >= {_MIN_SIDE}, got {value!r}",
                hint="use e.g. --size 128",
            )


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for scene ``index`` of a dataset with ``seed`` (order independent)."""
    return np.random.default_rng([int(seed), int(index)])


def scene_name(seed: int, index: int) -> str:
    """File stem of scene ``index``: ``synth_<seed>_<index:05d>``."""
    return f"synth_{int(seed)}_{int(index):05d}"


def _pick_colour(rng: np.random.Generator, avoid: np.ndarray | None, min_dist: float) -> np.ndarray:
    """A random RGB colour (float32) whose mean abs distance to ``avoid`` is >= ``min_dist`` if possible."""
    colour = rng.uniform(0.0, 255.0, 3)
    if avoid is not None:
        for _ in range(8):
            if float(np.abs(colour - avoid).mean()) >= min_dist:
                break
            colour = rng.uniform(0.0, 255.0, 3)
    return colour.astype(np.float32)


def _mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel blend ``c1 + t * (c2 - c1)``; ``t`` is (h, w), result (h, w, 3) float32."""
    return c1[None, None, :] + t[..., None].astype(np.float32) * (c2 - c1)[None, None, :]


# --------------------------------------------------------------------------- background


def _background(rng: np.random.Generator, h: int, w: int, px: float) -> np.ndarray:
    """A float32 (h, w, 3) background: gradient, value noise, or stripe/checker distractor."""
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    m = float(min(h, w))
    c1 = _pick_colour(rng, None, 0.0)
    c2 = _pick_colour(rng, c1, 40.0)
    kind = int(rng.choice(5, p=[0.22, 0.18, 0.26, 0.17, 0.17]))

    if kind == 1:  # radial gradient
        cy, cx = rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w
        radius = rng.uniform(0.5, 1.5) * m
        t = np.clip(np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / radius, 0.0, 1.0)
        return _mix(c1, c2, t)
    if kind == 2:  # low-frequency value noise, two octaves
        gh, gw = (int(v) for v in rng.integers(2, 6, size=2))
        coarse = rng.uniform(0, 255, (gh + 1, gw + 1, 3)).astype(np.uint8)
        base = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), np.float32)
        fine = rng.uniform(-1, 1, (2 * gh + 2, 2 * gw + 2, 1)).astype(np.float32)
        fine_u8 = ((fine[..., 0] + 1) * 127.5).astype(np.uint8)
        fine_up = np.asarray(Image.fromarray(fine_u8).resize((w, h), Image.Resampling.BILINEAR), np.float32)
        amp = rng.uniform(0, 35)
        return base + (fine_up[..., None] / 127.5 - 1.0) * amp

    # linear gradient; also the base of the distractor textures
    angle = rng.uniform(0, 2 * math.pi)
    q = xx * math.cos(angle) + yy * math.sin(angle)
    corners = [x * math.cos(angle) + y * math.sin(angle) for x in (0, w) for y in (0, h)]
    lo, hi = min(corners), max(corners)
    if kind == 0:
        return _mix(c1, c2, (q - lo) / (hi - lo))
    strength = rng.uniform(0.15, 0.6)  # distractors: weak gradient, low-contrast pattern
    base = _mix(c1, c1 + (c2 - c1) * strength, (q - lo) / (hi - lo))
    c3 = _pick_colour(rng, None, 0.0)
    contrast = rng.uniform(0.15, 0.45)
    period = max(3.0, rng.uniform(4.0, 18.0) * px)
    angle2 = rng.uniform(0, math.pi)
    a = xx * math.cos(angle2) + yy * math.sin(angle2)
    if kind == 3:  # soft sinusoidal stripes
        t = 0.5 + 0.5 * np.sin(a * (2 * math.pi / period) + rng.uniform(0, 2 * math.pi))
    else:  # checker
        b = -xx * math.sin(angle2) + yy * math.cos(angle2)
        t = (np.floor(a / period) + np.floor(b / period)) % 2.0
    return base + contrast * t[..., None].astype(np.float32) * (c3 - c1)[None, None, :]


# --------------------------------------------------------------------------- objects


def _draw_object(rng: np.random.Generator, canvas: np.ndarray, label: np.ndarray, cls: int, px: float) -> None:
    """Draw one object of class ``cls`` onto ``canvas``/``label`` in place (topmost wins)."""
    h, w = label.shape
    half = 0.5 * rng.uniform(0.12, 0.5) * min(h, w)
    cy, cx = rng.uniform(-0.05, 1.05) * h, rng.uniform(-0.05, 1.05) * w
    theta = rng.uniform(0, 2 * math.pi)
    reach = half * 1.5 + 1.0
    y0, y1 = max(0, int(math.floor(cy - reach))), min(h, int(math.ceil(cy + reach)) + 1)
    x0, x1 = max(0, int(math.floor(cx - reach))), min(w, int(math.ceil(cx + reach)) + 1)
    if y0 >= y1 or x0 >= x1:
        return
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + np.float32(0.5 - cy)
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + np.float32(0.5 - cx)
    cos_t, sin_t = np.float32(math.cos(theta)), np.float32(math.sin(theta))
    u = dx * cos_t + dy * sin_t  # object-local coordinates
    v = dy * cos_t - dx * sin_t

    if cls == _DISC:
        a, b = half, half * rng.uniform(0.65, 1.0)
        nu, nv = u / a, v / b
        mask = nu * nu + nv * nv <= 1.0
    elif cls == _BOX:
        a, b = half, half * rng.uniform(0.4, 1.0)
        mask = (np.abs(u) <= a) & (np.abs(v) <= b)
    elif cls == _TRIANGLE:
        angles = np.arange(3) * (2 * math.pi / 3) + rng.uniform(-0.35, 0.35, 3)
        radii = half * rng.uniform(0.8, 1.05, 3)
        vu, vv = radii * np.cos(angles), radii * np.sin(angles)
        inside_pos = np.ones(u.shape, bool)
        inside_neg = np.ones(u.shape, bool)
        for i in range(3):
            j = (i + 1) % 3
            edge = (vu[j] - vu[i]) * (v - vv[i]) - (vv[j] - vv[i]) * (u - vu[i])
            inside_pos &= edge >= 0
            inside_neg &= edge <= 0
        mask = inside_pos | inside_neg
    elif cls == _RING:
        a, b = half, half * rng.uniform(0.8, 1.0)
        inner = rng.uniform(0.45, 0.75)
        nu, nv = u / a, v / b
        rho2 = nu * nu + nv * nv
        mask = (rho2 <= 1.0) & (rho2 >= inner * inner)
    elif cls == _CROSS:
        a1, a2 = half, half * rng.uniform(0.75, 1.0)
        t = half * rng.uniform(0.18, 0.34)
        au, av = np.abs(u), np.abs(v)
        mask = ((au <= a1) & (av <= t)) | ((au <= t) & (av <= a2))
    else:  # pragma: no cover - internal misuse
        raise ValueError(f"unknown synthetic class {cls}")
    if not mask.any():
        return

    region = canvas[y0:y1, x0:x1]
    under = region[mask].mean(axis=0)
    c1 = _pick_colour(rng, under, 55.0)
    if cls == _DISC:
        dark = c1 * np.float32(rng.uniform(0.2, 0.5))
        hu, hv = rng.uniform(-0.45, 0.45, 2)
        dist = np.sqrt((nu - hu) ** 2 + (nv - hv) ** 2) / (1.0 + math.hypot(hu, hv))
        tex = _mix(dark, c1, 1.0 - np.clip(dist, 0.0, 1.0) ** 1.5)
    elif cls == _BOX:
        c2 = _pick_colour(rng, c1, 60.0)
        period = max(3.0, rng.uniform(3.0, 7.0) * px)
        axis = int(rng.integers(3))
        q = u if axis == 0 else v if axis == 1 else (u + v) * np.float32(math.sqrt(0.5))
        duty = rng.uniform(0.35, 0.65)
        tex = _mix(c1, c2, ((q / period + rng.uniform(0, 1)) % 1.0) < duty)
    elif cls == _TRIANGLE:
        tex = np.broadcast_to(c1, (*u.shape, 3))
    elif cls == _RING:
        c2 = _pick_colour(rng, c1, 50.0)
        phi = np.arctan2(nv, nu)
        tex = _mix(c1, c2, 0.5 + 0.5 * np.cos(phi + rng.uniform(0, 2 * math.pi)))
    else:  # cross
        c2 = _pick_colour(rng, c1, 60.0)
        cell = max(2.5, rng.uniform(2.5, 6.0) * px)
        ou, ov = rng.uniform(0, cell, 2)
        tex = _mix(c1, c2, (np.floor((u + ou) / cell) + np.floor((v + ov) / cell)) % 2.0)

    region[mask] = tex[mask]
    label[y0:y1, x0:x1][mask] = cls


# --------------------------------------------------------------------------- scenes


def generate_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One random scene: image uint8 (H, W, 3) RGB and label uint8 (H, W) with values 0..5."""
    _check_size(height, width)
    h, w = int(height), int(width)
    px = min(h, w) / 128.0  # texture periods are tuned for 128 px and scale with the image
    canvas = _background(rng, h, w, px)
    label = np.zeros((h, w), np.uint8)
    count = int(rng.integers(2, 7))
    for cls in rng.integers(1, len(SYNTH_CLASSES), size=count):
        _draw_object(rng, canvas, label, int(cls), px)

    if rng.random() < 0.5:  # smooth illumination change across the frame
        angle = rng.uniform(0, 2 * math.pi)
        yy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
        xx = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
        ramp = xx * np.float32(math.cos(angle)) + yy * np.float32(math.sin(angle))
        canvas *= (1.0 + np.float32(rng.uniform(0.1, 0.5)) * ramp)[..., None]

    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.35:
        radius = float(rng.uniform(0.4, 1.2))
        image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))
    sigma = float(rng.uniform(0.0, 8.0))
    if sigma > 0.5:
        noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
        image = np.clip(image + noise + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image), label


# --------------------------------------------------------------------------- dataset


def _save_atomic(img: Image.Image, path: Path, fmt: str, **params: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        img.save(tmp, format=fmt, **params)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_dataset_args(num: object, height: object, width: object, seed: object, split: object) -> None:
    if not _is_int(num) or int(num) < 1:  # type: ignore[call-overload]
        raise UsageError(f"number of synthetic images must be an integer >= 1, got {num!r}")
    _check_size(height, width)
    if not _is_int(seed) or int(seed) < 0:  # type: ignore[call-overload]
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(split, str) or not _SPLIT_RE.match(split):
        raise UsageError(
            f"bad split name {split!r}",
            hint="use letters, digits, '_', '-' or '.', e.g. 'train' or 'val'",
        )


def write_synth_dataset(
    out: str | Path,
    num: int,
    height: int,
    width: int,
    seed: int,
    split: str = "train",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``num`` scenes as a PASCAL-VOC layout dataset under ``out`` and return ``out``.

    Files: ``JPEGImages/<name>.jpg``, ``SegmentationClass/<name>.png`` (palette PNG),
    ``ImageSets/Segmentation/<split>.txt`` and, written last, ``dataset.json``.
    """
    _check_dataset_args(num, height, width, seed, split)
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"output path is not a folder: {out}", hint="choose a new folder")
        if any(out.iterdir()):
            raise UsageError(
                f"output folder is not empty: {out}",
                hint="choose a new folder, or delete this one first",
            )
    num, height, width, seed = int(num), int(height), int(width), int(seed)
    existed = out.exists()
    missing = [p for p in (out, *out.absolute().parents) if not p.exists()]
    ok = False
    try:
        try:
            _write_scenes(out, num, height, width, seed, split, progress)
        except OSError as exc:  # no space, a file-size limit, a quota, a permission: exit 2 naming the file
            raise write_failed(exc.filename or out, exc) from exc
        ok = True
    finally:
        if not ok:  # a failed or interrupted run leaves no half-written dataset and no empty folders
            import shutil

            if existed:
                for child in out.iterdir():
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
            else:
                shutil.rmtree(out, ignore_errors=True)
            for folder in missing[1:]:
                try:
                    folder.rmdir()
                except OSError:
                    break
    return out


def _write_scenes(
    out: Path, num: int, height: int, width: int, seed: int, split: str, progress: Callable[[int, int], None] | None
) -> None:
    jpeg_dir = out / "JPEGImages"
    label_dir = out / "SegmentationClass"
    sets_dir = out / "ImageSets" / "Segmentation"
    for folder in (jpeg_dir, label_dir, sets_dir):
        folder.mkdir(parents=True, exist_ok=True)

    names: list[str] = []
    for i in range(num):
        name = scene_name(seed, i)
        image, label = generate_scene(scene_rng(seed, i), height, width)
        _save_atomic(Image.fromarray(image), jpeg_dir / f"{name}.jpg", "JPEG", quality=_JPEG_QUALITY)
        label_img = Image.fromarray(label)
        label_img.putpalette(SYNTH_PALETTE)
        _save_atomic(label_img, label_dir / f"{name}.png", "PNG")
        names.append(name)
        if progress is not None:
            progress(i + 1, num)

    _write_text_atomic(sets_dir / f"{split}.txt", "".join(f"{n}\n" for n in names))
    meta = {
        "format": "voc",
        "generator": "refinenet_deploy.synth",
        "version": 1,
        "classes": list(SYNTH_CLASSES),
        "num_images": num,
        "size": [height, width],
        "seed": seed,
        "split": split,
    }
    _write_text_atomic(out / "dataset.json", json.dumps(meta, indent=2) + "\n")
