"""What calibration may be asked: two frozen groups of options, each checked once in ``__post_init__`` and built
alike by ``rfdeploy calibrate``, ``rfdeploy build openvino``/``trt`` and the pipeline's configuration.

- ``CalibrationOptions``: which calibration images (count, seed, split) and how the Q/DQ producer quantizes them
  (producer, method, nodes or blocks left in float).
- ``AccuracyControl``: how the INT8 result is held to account: the mIoU-drop budget of the accuracy-aware fallback
  (or NNCF accuracy control) and the images it is measured on, the INT8 self-check's agreement gate, and the CPU
  threads the checks run with.

A bad value is a ``UsageError`` (exit 2) naming the option, before any work; a calibration-image count below 1
stays the ``CalibrationError`` (exit 5) the calibration set raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import CalibrationError, UsageError
from .qdq import PRODUCERS, check_method

MAX_CALIBRATION_IMAGES = 100_000  # --num-images, as the CLI and the pipeline config bound it
MAX_VALIDATION_IMAGES = 1_000_000  # --val-images / [calibration] val_images
MAX_SEED = 2**32 - 1
MAX_THREADS = 1024


def _integer(value: Any, option: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{option} must be an integer {low}..{high}, got {value!r}")
    return value


def _names(value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # one name, never its characters
        return (value,)
    return tuple(value)


def parse_blocks(text: str | None) -> tuple[str, ...]:
    """``--keep-float B1,B2`` -> ``("B1", "B2")``; None -> (); a value with no names is a UsageError."""
    if text is None:
        return ()
    blocks = tuple(b.strip() for b in text.split(",") if b.strip())
    if not blocks:
        raise UsageError("--keep-float needs block names such as refinenet4.crp,classifier")
    return blocks


@dataclass(frozen=True)
class CalibrationOptions:
    """Which calibration images and how they are quantized. ``method`` is resolved to the producer's default when
    None (``calibration.qdq.check_method``); ``keep_float`` names blocks as ``parity --localize`` prints them,
    ``exclude_nodes`` names ONNX nodes; both are left in float."""

    num_images: int | None = None  # None: DEFAULT_CALIBRATION_IMAGES, or the whole folder when smaller
    seed: int = 0
    split: str | None = None
    producer: str = "modelopt"
    method: str | None = None
    exclude_nodes: tuple[str, ...] = ()
    keep_float: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.num_images is not None:
            if not isinstance(self.num_images, bool) and isinstance(self.num_images, int) and self.num_images < 1:
                raise CalibrationError(f"the number of calibration images must be at least 1, got {self.num_images}")
            _integer(self.num_images, "--num-images", 1, MAX_CALIBRATION_IMAGES)
        _integer(self.seed, "--seed", 0, MAX_SEED)
        if self.producer not in PRODUCERS:
            raise UsageError(f"unsupported --producer: {self.producer}. Use one of {', '.join(PRODUCERS)}")
        object.__setattr__(self, "method", check_method(self.producer, self.method))
        object.__setattr__(self, "exclude_nodes", _names(self.exclude_nodes))
        object.__setattr__(self, "keep_float", _names(self.keep_float))


@dataclass(frozen=True)
class AccuracyControl:
    """How an INT8 result is held to account. ``max_miou_drop`` (mIoU points vs FP32, measured on ``val_images``
    of ``val_data``, default: the calibration images) turns on the accuracy-aware fallback (Q/DQ) or NNCF
    accuracy control (OpenVINO). ``min_agreement`` is the INT8 self-check's gate, given as a fraction 0-1 or a
    percentage 0-100 and kept as a fraction (None: the INT8 gate of ``validate.tolerances``)."""

    max_miou_drop: float | None = None
    val_data: str | Path | None = None
    val_images: int = 100
    val_split: str | None = None
    min_agreement: float | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        drop = self.max_miou_drop
        if drop is not None and (isinstance(drop, bool) or not isinstance(drop, (int, float)) or not drop >= 0):
            raise UsageError(f"--max-miou-drop must be >= 0 (points of mIoU), got {drop}")
        agreement = self.min_agreement
        if agreement is not None:
            if isinstance(agreement, bool) or not isinstance(agreement, (int, float)) or not 0 <= agreement <= 100:
                raise UsageError(f"--min-agreement must be 0-1 or a percentage 0-100, got {agreement}")
            object.__setattr__(self, "min_agreement", agreement / 100 if agreement > 1 else float(agreement))
        _integer(self.val_images, "--val-images", 1, MAX_VALIDATION_IMAGES)
        if self.threads is not None:
            _integer(self.threads, "--threads", 1, MAX_THREADS)

    @property
    def enabled(self) -> bool:
        """Whether the mIoU-drop budget (fallback search or NNCF accuracy control) applies."""
        return self.max_miou_drop is not None

    def validation_data(self, calibration_data: str | Path | None) -> str | Path | None:
        """The images the drop is measured on: ``val_data``, else the calibration images."""
        return self.val_data or calibration_data


def option_groups(
    calibration: CalibrationOptions | None,
    accuracy: AccuracyControl | None,
    kwargs: Mapping[str, Any],
    *,
    function: str,
) -> tuple[CalibrationOptions, AccuracyControl]:
    """The two groups for a library call that takes them as objects or as keyword arguments (the fields' names).
    A group given as an object takes no keywords of its own; an unknown keyword is a TypeError, as Python's."""
    groups: list[Any] = []
    rest = dict(kwargs)
    for given, cls in ((calibration, CalibrationOptions), (accuracy, AccuracyControl)):
        mine = {f.name: rest.pop(f.name) for f in fields(cls) if f.name in rest}
        if given is not None and mine:
            raise TypeError(f"{function}() got {cls.__name__} and its fields as keywords: {', '.join(mine)}")
        groups.append(given if given is not None else cls(**mine))
    if rest:
        raise TypeError(f"{function}() got unexpected keyword arguments: {', '.join(sorted(rest))}")
    return groups[0], groups[1]


__all__ = [
    "AccuracyControl",
    "CalibrationOptions",
    "MAX_CALIBRATION_IMAGES",
    "MAX_VALIDATION_IMAGES",
    "option_groups",
    "parse_blocks",
]
