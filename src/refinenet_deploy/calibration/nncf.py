"""NNCF adapters: post-training INT8 quantization of an OpenVINO model on our calibration set, optionally
with accuracy control driven by our mIoU.

- ``quantize_openvino``: ``nncf.quantize`` with the performance preset (symmetric activations and weights,
  what the CPU plugin's INT8 kernels want), fast bias correction, statistics on the whole calibration set.
- ``quantize_openvino_with_accuracy_control``: ``nncf.quantize_with_accuracy_control``; NNCF reverts the
  most sensitive layers to float until the metric drop is at most ``max_drop``. The metric is mIoU in
  points on validation images (``operations.accuracy.MiouMetric``): against the ground truth when they have
  labels, else the agreement mIoU with the FP32 ONNX model's predictions (computed once, with ONNX Runtime).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from .dataset import CalibrationSet

log = logging.getLogger(__name__)


class _Batches:
    """A re-iterable view of a calibration set (NNCF iterates it more than once), one image per item."""

    def __init__(self, cs: CalibrationSet) -> None:
        self.cs = cs

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.cs.batches(1)

    def __len__(self) -> int:
        return len(self.cs.files)


@contextmanager
def nncf_output(show: bool) -> Iterator[None]:
    """NNCF draws rich progress bars on stdout: send them to stderr (``show``) or nowhere, so stdout keeps only
    results and ``-q`` silences every bar."""
    if show:
        with redirect_stdout(sys.stderr):
            yield
        return
    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        yield


def _nncf() -> Any:
    return require("nncf", extra="openvino")


def quantize_openvino(model: Any, cs: CalibrationSet, ignored_patterns: Sequence[str] = ()) -> Any:
    """INT8 OpenVINO model from an FP32 one (``ov.Model`` in, ``ov.Model`` out); ``ignored_patterns``: node-name
    regular expressions left in float (NNCF ``ignored_scope``; a pattern that matches nothing is allowed)."""
    nncf = _nncf()
    extra = {"ignored_scope": nncf.IgnoredScope(patterns=list(ignored_patterns), validate=False)}
    return nncf.quantize(
        model,
        nncf.Dataset(_Batches(cs)),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(cs.files),
        fast_bias_correction=True,
        **(extra if ignored_patterns else {}),
    )


def load_validation_items(data: str | Path, num_images: int, split: str | None = None) -> list[tuple]:
    """(name, image, label) for the first ``num_images`` samples (NNCF indexes them, so they are kept)."""
    from ..data.datasets import open_dataset

    ds = open_dataset(data, split=split)
    items = []
    for i in range(min(num_images, len(ds))):
        sample, image, label = ds[i]
        items.append((sample.name, image, label))
    return items


def quantize_openvino_with_accuracy_control(
    model: Any, cs: CalibrationSet, metric: Any, items: list[tuple], max_drop: float
) -> Any:
    """INT8 with NNCF accuracy control: at most ``max_drop`` points of ``metric`` lost. ``metric(compiled, items)``
    is NNCF's validation function and ``metric.model_input(item)`` its transform (``operations.accuracy``)."""
    nncf = _nncf()
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    return nncf.quantize_with_accuracy_control(
        model,
        nncf.Dataset(_Batches(cs)),
        nncf.Dataset(items, metric.model_input),
        metric,
        max_drop=max_drop,
        drop_type=nncf.DropType.ABSOLUTE,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(cs.files),
        fast_bias_correction=True,
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(max_num_iterations=30),
    )
