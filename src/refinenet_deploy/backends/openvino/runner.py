"""OpenVINO runner (CPU by default; GPU/NPU plugins when present).

The CPU plugin on CPUs with AVX512_BF16/AMX silently runs an FP32 IR in bf16 unless the inference
precision hint is set, so the runner sets it explicitly (``f32`` by default) and records what ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..._optional import require
from ...errors import IncompatibleArtifactError, UsageError
from ..base import BaseRunner, TensorSpec

PRECISIONS = ("f32", "bf16", "f16")
HINTS = ("latency", "throughput")


class OpenVINORunner(BaseRunner):
    name = "openvino"

    def __init__(
        self,
        model: str | Path | Callable[[], Any],
        *,
        device: str = "CPU",
        inference_precision: str | None = "f32",
        hint: str = "latency",
        threads: int | None = None,
    ) -> None:
        super().__init__()
        if inference_precision is not None and inference_precision not in PRECISIONS:
            raise UsageError(f"unsupported --inference-precision: {inference_precision}. Use f32, bf16 or f16")
        if hint not in HINTS:
            raise UsageError(f"unsupported --hint: {hint}. Use latency or throughput")
        self._model, self.ov_device, self.hint = model, device.upper(), hint
        self.device = device.lower()
        self.requested_precision, self.threads = inference_precision, threads
        self.executed_precision: str | None = None
        self.runtime_config: dict[str, str] = {}
        self.compiled = None
        self._request = None

    def _activate(self) -> list[TensorSpec]:
        ov = require("openvino", extra="openvino")
        core = ov.Core()
        try:
            model = self._model() if callable(self._model) else core.read_model(str(self._model))
        except Exception as exc:
            raise IncompatibleArtifactError(
                f"OpenVINO cannot read {self._model}: {str(exc).splitlines()[0][:200]}. "
                "Check the .xml/.bin pair and the openvino version"
            ) from exc
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.hint.upper()}
        if self.requested_precision:
            config["INFERENCE_PRECISION_HINT"] = self.requested_precision
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        try:
            self.compiled = core.compile_model(model, self.ov_device, config)
        except Exception as exc:
            raise IncompatibleArtifactError(
                f"OpenVINO cannot compile the model for {self.ov_device}: {str(exc).splitlines()[0][:200]}"
            ) from exc
        ran = self.compiled.get_property("INFERENCE_PRECISION_HINT")  # what the plugin actually uses
        self.executed_precision = ran.to_string() if hasattr(ran, "to_string") else str(ran).lower()
        self.runtime_config = {}
        for key in ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING"):
            try:  # what the plugin chose for the hint (recorded so timings can be compared with benchmark_app)
                self.runtime_config[key] = str(self.compiled.get_property(key))
            except Exception:  # noqa: BLE001,S112  (not every device plugin has every property)
                continue
        self._request = self.compiled.create_infer_request()
        specs = []
        for port in self.compiled.inputs:
            shape = port.get_partial_shape()
            dims = tuple(int(d.get_length()) if d.is_static else None for d in shape)
            specs.append(TensorSpec(port.get_any_name(), np.dtype(port.get_element_type().to_dtype()), dims))
        return specs

    def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._request.infer(dict(inputs))
        return {port.get_any_name(): np.asarray(value) for port, value in results.items()}

    def _deactivate(self) -> None:
        self._request = None
        self.compiled = None


class CompiledModelRunner:
    """The runner protocol's ``infer`` over an already compiled ``ov.CompiledModel`` (what NNCF's accuracy
    control hands to its validation function)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self.request.infer(dict(inputs))
        return {port.get_any_name(): np.asarray(value) for port, value in results.items()}
