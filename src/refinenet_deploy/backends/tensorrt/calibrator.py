"""TensorRT 10.x implicit INT8 calibration (``IInt8EntropyCalibrator2``), offered for DLA INT8 builds on 10.x.

Deprecated by NVIDIA since 10.1 and removed in 11.x and TensorRT-RTX, where INT8 comes from a Q/DQ ONNX (our
``calibrate``, the default everywhere). The calibration cache is keyed by the calibration set's manifest digest and
the model's hash (``CalibrationSet.cache_key``): a cache made from other images or another model is never reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputReadError, read_json
from .library import TrtLibrary


def cache_key_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".key.json")


def read_cache(cache: Path, key: str) -> bytes | None:
    """The cache's bytes if it was written for ``key``; None otherwise (TensorRT then calibrates afresh)."""
    side = cache_key_path(cache)
    if not cache.is_file() or not side.is_file():
        return None
    try:
        recorded = read_json(side, max_depth=8).get("cache_key")
    except (OSError, ValueError, AttributeError, InputReadError):
        return None  # unreadable, not a regular file, junk: calibrate afresh
    return cache.read_bytes() if recorded == key else None


def write_cache(cache: Path, key: str, data: bytes) -> None:
    from ...artifacts import write_atomic, write_json_atomic

    write_atomic(cache, lambda tmp: tmp.write_bytes(data))
    write_json_atomic(cache_key_path(cache), {"cache_key": key, "format": "TensorRT INT8 calibration cache"})


def make_entropy_calibrator(
    lib: TrtLibrary, batches: Callable[[], Iterator[np.ndarray]], cache: Path, key: str, batch_size: int = 1
) -> Any:
    """An ``IInt8EntropyCalibrator2`` fed from ``batches()`` (device copies through cuda-python); the subclass is
    made here so that importing this module needs no TensorRT."""
    trt = lib.module
    if not lib.weakly_typed:
        from ...errors import UsageError

        raise UsageError(f"{lib.describe()['generation']} has no implicit INT8 calibrator; use --calibrator qdq")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._iter = batches()
            self._buffer: Any = None
            self.batches_fed = 0

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._iter, None)
            if batch is None:
                return None
            from . import cuda

            if self._buffer is None:
                self._buffer = cuda.DeviceBuffer()
                self._stream = cuda.Stream()
            array = np.ascontiguousarray(batch)
            ptr = self._buffer.ensure(array.nbytes)
            self._stream.copy_to_device(ptr, array)
            self._stream.synchronize()
            self.batches_fed += 1
            return [ptr]

        def read_calibration_cache(self) -> bytes | None:
            return read_cache(cache, key)

        def write_calibration_cache(self, data: Any) -> None:
            write_cache(cache, key, bytes(data))

    return EntropyCalibrator()
