"""End-to-end frames: the encoded images ``bench --end-to-end`` decodes each iteration (``--data`` or synthetic
JPEGs made in memory)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from ...errors import DataError

log = logging.getLogger(__name__)

E2E_IMAGES = 16  # readable images --end-to-end cycles through
E2E_SCAN = 256  # files looked at to find them


def jpeg_frames(size: tuple[int, int], count: int, seed: int = 0) -> list[bytes]:
    """In-memory JPEG frames for end-to-end timing when no --data is given."""
    from PIL import Image

    from ...data.synth import generate_scene

    frames = []
    for i in range(count):
        image, _ = generate_scene(np.random.default_rng([seed, i]), *size)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=90)
        frames.append(buf.getvalue())
    return frames


def _image_files(data: str | Path) -> list[Path]:
    from ...data.datasets import open_dataset

    ds = open_dataset(data)
    return [s.image_path for s in ds.samples[:E2E_SCAN]]


def readable_frames(data: str | Path, count: int = E2E_IMAGES) -> tuple[list[bytes], list[str]]:
    """The encoded bytes of up to ``count`` images of ``data`` that decode (``data.images.read_image``), and the
    names of the files skipped as unreadable (each logged as a warning). DataError (exit 5) if none decodes."""
    from ...data.images import read_image

    frames: list[bytes] = []
    skipped: list[str] = []
    files = _image_files(data)
    for path in files:
        if len(frames) >= count:
            break
        try:
            read_image(path)
            frames.append(Path(path).read_bytes())
        except (DataError, OSError) as exc:
            skipped.append(str(path))
            log.warning("skipping unreadable image %s: %s", path, getattr(exc, "message", exc))
    if not frames:
        raise DataError(
            f"--data {data}: none of its {len(files)} image(s) could be read"
            + (f" (skipped: {', '.join(Path(p).name for p in skipped[:5])}{', ...' if len(skipped) > 5 else ''})")
            + ". Check the images, or drop --data to time synthetic JPEG frames"
        )
    return frames, skipped


def decode_frame(frame: bytes, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(frame)) as img:
        decoded = np.asarray((ImageOps.exif_transpose(img) or img).convert("RGB"))
    if decoded.shape[:2] != size:
        decoded = np.asarray(Image.fromarray(decoded).resize((size[1], size[0]), Image.BILINEAR))
    return decoded
