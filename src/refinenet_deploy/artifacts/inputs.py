"""The input policy: how big an artifact's input is (one resolver with stated precedence, never a silent default),
its bounds, its layout, and how an image becomes that input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..data.preprocessing import Normalization, preprocess
from ..errors import DataError, IncompatibleArtifactError, InvalidModelError, UsageError

INPUT_FORMATS = ("nchw-float", "nhwc-uint8")

# Bounds of an image/input size option (--input-size, --size, --crop-size): each side, and the pixel budget.
MIN_SIDE = 16
MAX_SIDE = 8192
MAX_PIXELS = 4096 * 4096


def parse_hw(text: str) -> tuple[int, int]:
    """``'512x384'`` or ``'512,384'`` (H x W) or ``'512'`` (square) -> (512, 384); ValueError saying what is wrong
    otherwise (the caller names the option or config key it came from).

    Bounds: each side ``MIN_SIDE``..``MAX_SIDE`` (16..8192) pixels and at most ``MAX_PIXELS`` (4096x4096) in all,
    so a typo such as ``100000x100000`` is refused before anything allocates memory."""
    parts = str(text).lower().replace("*", "x").replace(",", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"expected HxW such as 512x512, got {text!r}") from None
    if len(dims) == 1:
        dims *= 2
    if len(dims) != 2:
        raise ValueError(f"expected HxW such as 512x512, got {text!r}")
    if not all(MIN_SIDE <= d <= MAX_SIDE for d in dims):
        raise ValueError(f"each side must be {MIN_SIDE}..{MAX_SIDE} pixels, got {text!r}")
    if dims[0] * dims[1] > MAX_PIXELS:
        raise ValueError(
            f"{dims[0]}x{dims[1]} is {dims[0] * dims[1] / 1e6:.0f} MP; at most {MAX_PIXELS / 1e6:.1f} MP "
            "(e.g. 4096x4096) is supported"
        )
    return dims[0], dims[1]


def spatial_size(shape: Sequence[int | None], input_format: str) -> tuple[int, int] | None:
    """(H, W) of an input shape when both are static, for NCHW float or NHWC uint8 layouts."""
    hw = shape[1:3] if input_format == "nhwc-uint8" else shape[2:4]
    return (int(hw[0]), int(hw[1])) if all(isinstance(d, int) and d > 0 for d in hw) else None


def checkpoint_input_size(metadata: Mapping[str, Any]) -> tuple[int, int] | None:
    """The input size a checkpoint's metadata records (``input_size`` or ``export_size``: [H, W] or ``'HxW'``),
    within ``MIN_SIDE..MAX_SIDE``; None when it records none or none that is usable."""
    for key in ("input_size", "export_size"):
        value = metadata.get(key)
        if isinstance(value, str):
            parts = value.lower().split("x")
            value = parts if len(parts) == 2 else None
        if isinstance(value, (list, tuple)) and len(value) == 2 and not any(isinstance(v, bool) for v in value):
            try:
                h, w = int(value[0]), int(value[1])
            except (TypeError, ValueError):
                continue
            if MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE:
                return h, w
    return None


def resolve_input_size(
    requested: Sequence[int] | None = None,
    *,
    static: Sequence[int] | None = None,
    export_size: Sequence[int] | None = None,
    checkpoint_size: Sequence[int] | None = None,
    model_default: Sequence[int] | None = None,
    option: str = "--input-size",
) -> tuple[tuple[int, int], str]:
    """The one input-size rule: ``(H, W)`` and where it came from, never a silent default.

    Precedence: ``requested`` (the explicit argument, ``option``) > ``static`` (the artifact's static input shape;
    a different ``requested`` is a UsageError) > ``export_size`` (the artifact's metadata) > ``checkpoint_size``
    (a checkpoint's metadata, ``checkpoint_input_size``) > ``model_default`` (only where the caller states one: the
    registered architecture's size, for export). Nothing known: UsageError (exit 2) naming ``option``."""
    req = _hw(requested)
    fixed = _hw(static)
    if fixed and req and req != fixed:
        raise UsageError(
            f"this artifact has a static input size {fixed[0]}x{fixed[1]}; drop {option} or pass "
            f"{option} {fixed[0]}x{fixed[1]}"
        )
    for size, source in (
        (req, option),
        (fixed, "the artifact's static input shape"),
        (_hw(export_size), "the artifact's metadata (export size)"),
        (_hw(checkpoint_size), "the checkpoint's metadata"),
        (_hw(model_default), "the architecture's default"),
    ):
        if size:
            return size, source
    raise UsageError(
        f"no input size: the model's input size is dynamic and its metadata records none. Pass {option} HxW "
        f"(e.g. {option} 512x512)"
    )


def _hw(size: Sequence[int] | None) -> tuple[int, int] | None:
    return (int(size[0]), int(size[1])) if size else None


@dataclass(frozen=True)
class InputPolicy:
    """How an image becomes an artifact's input, read from its metadata: layout, normalisation, static size."""

    input_name: str = "input"
    input_format: str = "nchw-float"  # or nhwc-uint8 (the graph normalises)
    static_size: tuple[int, int] | None = None  # (H, W) for static-shape artifacts
    batch: int = 1
    head: str = "logits"  # logits | upsample | argmax
    normalization: Normalization = field(default_factory=Normalization.imagenet)
    export_size: tuple[int, int] | None = None

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], default: Normalization | None = None) -> InputPolicy:
        norm = meta.get("normalization")
        if norm is None:
            normalization = default or Normalization.imagenet()
        else:
            try:
                normalization = Normalization.parse(norm)
            except DataError as exc:
                raise InvalidModelError(f"metadata: {exc.message}. Re-export the model") from None
        input_format = meta.get("input_format") or "nchw-float"
        if input_format not in INPUT_FORMATS:
            raise IncompatibleArtifactError(
                f"unknown input_format {input_format!r} in the metadata. Re-export the model"
            )
        export = meta.get("export_size")
        return cls(
            input_format=input_format,
            head=meta.get("head") or "logits",
            normalization=normalization,
            export_size=(int(export[0]), int(export[1])) if export else None,
        )

    def for_input(self, name: str, shape: Sequence[int | None]) -> InputPolicy:
        """This policy bound to a runner's input spec: its name, static size and batch."""
        batch = shape[0] if shape and isinstance(shape[0], int) else 1
        return replace(self, input_name=name, static_size=spatial_size(shape, self.input_format), batch=batch)

    def size_for(self, requested: tuple[int, int] | None = None, option: str = "--input-size") -> tuple[int, int]:
        """The input size to run at (``resolve_input_size``): ``requested``, else the static size, else the export
        size; a UsageError naming ``option`` when none is known (never a silent default)."""
        return resolve_input_size(requested, static=self.static_size, export_size=self.export_size, option=option)[0]

    def to_input(self, image: np.ndarray, batch: int | None = None) -> np.ndarray:
        """One HxWx3 uint8 RGB image -> the model input (normalised NCHW float, or NHWC uint8), batched."""
        x = image[None] if self.input_format == "nhwc-uint8" else preprocess(image, self.normalization)[None]
        n = batch or self.batch
        return np.ascontiguousarray(np.repeat(x, n, axis=0) if n > 1 else x)
