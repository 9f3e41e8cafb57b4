"""Calibration sets: images drawn from a dataset, preprocessed exactly as the model's metadata says.

Policy (documented, applied identically everywhere): each image is resized so that it covers the model's
input size (bilinear, keeping the aspect ratio), then centre-cropped to that size. ``num_images`` are
sampled without replacement with a seeded permutation. The manifest records every file with its SHA-256,
the preprocessing, the shape and the sampling; its digest keys every cache (together with the model's
hash), so a changed set or model never reuses a stale cache. Images are read one at a time: memory is
bounded by one batch, whatever the set size.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..artifacts import InputPolicy, resolve_input_size, sha256_file, spatial_size
from ..data.datasets import open_dataset
from ..data.images import read_image
from ..data.preprocessing import Normalization, preprocess
from ..errors import CalibrationError, DataError

log = logging.getLogger(__name__)
RESIZE_POLICY = "resize to cover (bilinear, aspect kept), then centre crop"


def fit_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to cover ``size`` keeping the aspect ratio, then centre-crop to exactly ``size``."""
    h, w = image.shape[:2]
    th, tw = size
    scale = max(th / h, tw / w)
    nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
    if (nh, nw) != (h, w):
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
    y0, x0 = (nh - th) // 2, (nw - tw) // 2
    return np.ascontiguousarray(image[y0 : y0 + th, x0 : x0 + tw])


@dataclass
class CalibrationSet:
    """A manifest plus a streaming reader of preprocessed batches."""

    root: Path
    files: list[Path]
    size: tuple[int, int]
    normalization: Normalization
    input_format: str
    seed: int
    skipped: list[str]

    @property
    def manifest(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "files": [
                {
                    "path": str(p.relative_to(self.root)) if p.is_relative_to(self.root) else str(p),
                    "sha256": sha256_file(p),
                }
                for p in self.files
            ],
            "count": len(self.files),
            "input_size": list(self.size),
            "input_format": self.input_format,
            "normalization": self.normalization.to_dict(),
            "resize_policy": RESIZE_POLICY,
            "sampling": {"seed": self.seed, "method": "seeded permutation without replacement"},
            "skipped": self.skipped,
        }

    def digest(self, manifest: dict[str, Any] | None = None) -> str:
        """SHA-256 over the manifest minus the root folder (moving the set does not change it)."""
        m = dict(manifest or self.manifest)
        m.pop("root", None)
        return hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()

    def cache_key(self, model_sha256: str) -> str:
        return hashlib.sha256(f"{self.digest()}:{model_sha256}".encode()).hexdigest()

    def batches(self, batch_size: int = 1) -> Iterator[np.ndarray]:
        """Preprocessed arrays, ``batch_size`` images at a time (NCHW float32, or NHWC uint8)."""
        buf: list[np.ndarray] = []
        for path in self.files:
            image = fit_to(read_image(path), self.size)
            buf.append(image if self.input_format == "nhwc-uint8" else preprocess(image, self.normalization))
            if len(buf) == batch_size:
                yield np.stack(buf)
                buf = []
        if buf:
            yield np.stack(buf)


# Images drawn when the user does not ask for a number: one default for calibrate, build and pipeline. Measured
# (benchmarks/calibration_size.py, demo model, 128x128, AVX2-only EPYC): the mean INT8 mIoU drop was 0.20-0.32 pt
# for every size from 16 to 200 images (no knee); 128 leaves room for real data, which varies more.
DEFAULT_CALIBRATION_IMAGES = 128


def build_calibration_set(
    data: str | Path,
    *,
    size: tuple[int, int],
    normalization: Normalization,
    input_format: str = "nchw-float",
    num_images: int | None = None,
    seed: int = 0,
    split: str | None = None,
) -> CalibrationSet:
    """Sample ``num_images`` readable images from ``data`` (None: up to ``DEFAULT_CALIBRATION_IMAGES``, and a
    smaller folder is used whole without a warning); unreadable ones are skipped with a warning naming them."""
    asked = num_images is not None
    num_images = DEFAULT_CALIBRATION_IMAGES if num_images is None else int(num_images)
    if num_images < 1:
        raise CalibrationError(f"the number of calibration images must be at least 1, got {num_images}")
    try:
        ds = open_dataset(data, split=split)
    except DataError as exc:
        raise CalibrationError(f"calibration data: {exc.message}", hint=exc.hint) from exc
    order = np.random.default_rng(seed).permutation(len(ds))
    files, skipped = [], []
    for idx in order:
        if len(files) >= num_images:
            break
        path = ds.samples[int(idx)].image_path
        try:
            read_image(path)  # validate now (decode), so a set never contains a file that fails later
        except DataError as exc:
            log.warning("skipping calibration image: %s", exc.message)
            skipped.append(str(path))
            continue
        files.append(path)
    if not files:
        raise CalibrationError(
            f"no readable calibration images in {data} ({len(skipped)} skipped). Point --data at a folder of RGB images"
        )
    if asked and len(files) < num_images:
        log.warning("calibration set has %d images, fewer than the %d asked for", len(files), num_images)
    return CalibrationSet(
        Path(getattr(ds, "root", data)), files, tuple(size), normalization, input_format, seed, skipped
    )


def calibration_set_for_model(
    model: Any,
    meta: dict[str, Any],
    data: str | Path,
    *,
    num_images: int | None = None,
    seed: int = 0,
    split: str | None = None,
    input_size: tuple[int, int] | None = None,
    option: str = "--input-size",
) -> CalibrationSet:
    """A calibration set with the preprocessing and input size recorded for an exported ONNX model (a path or
    an already loaded ``onnx.ModelProto``): its static size, else (dynamic shape) ``input_size``, else its
    metadata's export size (``resolve_input_size``); none of these is a UsageError."""
    import onnx

    policy = InputPolicy.from_metadata(meta)
    graph = (model if isinstance(model, onnx.ModelProto) else onnx.load(str(model), load_external_data=False)).graph
    dims = [d.dim_value or None for d in graph.input[0].type.tensor_type.shape.dim]
    static = spatial_size(dims, policy.input_format)
    size, _ = resolve_input_size(input_size, static=static, export_size=policy.export_size, option=option)
    return build_calibration_set(
        data,
        size=size,
        normalization=policy.normalization,
        input_format=policy.input_format,
        num_images=num_images,
        seed=seed,
        split=split,
    )
