"""The ``Runner`` protocol shared by every backend.

A runner takes an object or a zero-argument builder, builds in ``activate()``, frees in ``deactivate()``,
and maps named NumPy inputs to named NumPy outputs. ``BaseRunner`` checks the state and the inputs'
names, dtypes and shapes against ``input_specs`` (``None`` in a shape = dynamic), so one parity/latency
path serves all backends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..enums import Device
from ..errors import UsageError


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]  # None: dynamic dimension

    def check(self, array: np.ndarray) -> None:
        if array.dtype != self.dtype:
            raise UsageError(f"input '{self.name}' has dtype {array.dtype}, the model expects {self.dtype}")
        if len(array.shape) != len(self.shape) or any(
            want is not None and want != got for want, got in zip(self.shape, array.shape)
        ):
            want = "x".join("?" if d is None else str(d) for d in self.shape)
            raise UsageError(
                f"input '{self.name}' has shape {'x'.join(map(str, array.shape))}, the model expects {want}"
            )


class BaseRunner(ABC):
    """Lifecycle and input checking; subclasses implement ``_activate``, ``_infer``, ``_deactivate``.

    The whole contract a caller may rely on, with defaults for runtimes that have nothing to say (callers never
    probe with ``getattr``):

    - ``device``: where it runs (an ``enums.Device``), set by each runner from its own settings;
    - ``executed_precision`` / ``runtime_config``: what ran, filled in by ``_activate``;
    - ``device_times_ms``: one device-side time per ``infer`` (CUDA events), empty where there is no device clock;
    - ``device_memory_mib()``: peak device memory, None where not measured;
    - ``precision_fallback``: True when the runtime compiled another precision than the one requested;
    - ``async_pool()``: asynchronous requests in flight (OpenVINO); others raise ``UsageError``.
    """

    name = "runner"

    def __init__(self) -> None:
        self.is_active = False
        self.device = Device.CPU
        self._input_specs: tuple[TensorSpec, ...] = ()
        # what ran, filled in by ``_activate``: the precision the float parts compute in (fp32, fp16, bf16; None when
        # the runtime does not say), and the runtime's own settings (providers, streams, flags) for the record
        self.executed_precision: str | None = None
        self.runtime_config: dict[str, Any] = {}
        self.device_times_ms: list[float] = []
        self.precision_fallback = False

    def device_memory_mib(self) -> float | None:
        """Peak device memory of the runs so far (MiB); None where the runtime has no device memory to report."""
        return None

    def async_pool(self, jobs: int | None = None) -> Any:
        """A pool of asynchronous infer requests (``jobs``, ``submit``, ``wait_all``, ``latencies_ms``)."""
        raise UsageError(f"{self.name} has no asynchronous requests (throughput mode is OpenVINO's)")

    def __enter__(self) -> BaseRunner:
        self.activate()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.deactivate()

    def activate(self) -> None:
        if self.is_active:
            return
        self._input_specs = tuple(self._activate())
        self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    @property
    def input_specs(self) -> tuple[TensorSpec, ...]:
        self._require_active()
        return self._input_specs

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; ``inputs`` must name every model input with the right dtype and shape."""
        self._require_active()
        names = {s.name for s in self._input_specs}
        if set(inputs) != names:
            raise UsageError(f"inputs {sorted(inputs)} do not match the model's {sorted(names)}")
        for spec in self._input_specs:
            spec.check(inputs[spec.name])
        return self._infer(inputs)

    def _require_active(self) -> None:
        if not self.is_active:
            raise RuntimeError(f"{self.name} runner is not active: call activate() or use it as a context manager")

    @abstractmethod
    def _activate(self) -> list[TensorSpec]:
        """Build the backend session/engine; return the input specs."""

    @abstractmethod
    def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _deactivate(self) -> None: ...
