"""PNG panels for the images where a backend disagrees most with PyTorch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..data.images import colorize


def _fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.NEAREST))


def render_panel(
    image: np.ndarray, label: np.ndarray | None, reference: np.ndarray, backend: np.ndarray, title: str
) -> Image.Image:
    """image | ground truth | PyTorch | backend | disagreement (red on the dimmed image)."""
    size = reference.shape
    img = _fit(image, size)
    gt = colorize(label) if label is not None else np.full((*size, 3), 64, np.uint8)
    diff = (img.astype(np.float32) * 0.35).astype(np.uint8)
    diff[reference != backend] = (255, 40, 40)
    tiles = [img, gt, colorize(reference), colorize(backend), diff]
    names = ["image", "ground truth" if label is not None else "(no labels)", "PyTorch", "backend", "disagreement"]
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widest = max(draw.textlength(n) for n in names)  # each tile at least as wide as its name, plus a margin
    scale = max(1, math.ceil((widest + 12) / size[1]))  # small tiles are enlarged (nearest), never the names cut
    tiles = [np.repeat(np.repeat(t, scale, axis=0), scale, axis=1) for t in tiles]
    h, w = size[0] * scale, size[1] * scale
    header = 18
    width = max(w * len(tiles), int(draw.textlength(title)) + 8)
    canvas = Image.new("RGB", (width, h + header * 2), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill=(0, 0, 0))
    for i, (tile, name) in enumerate(zip(tiles, names)):
        canvas.paste(Image.fromarray(tile), (i * w, header * 2))
        draw.text((i * w + 4, header + 2), name, fill=(0, 0, 0))
    return canvas


def save_panels(records: list, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, r in enumerate(records, start=1):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in r.name)
        path = out / f"{rank:02d}_{safe}.png"
        render_panel(
            r.image, r.label, r.reference, r.backend, f"#{rank} {r.name}: pixel agreement {r.agreement:.2%}"
        ).save(path)
        paths.append(path)
    return paths
