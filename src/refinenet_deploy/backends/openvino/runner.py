"""OpenVINO runner (CPU by default; GPU/NPU plugins when present).

The CPU plugin on CPUs with AVX512_BF16/AMX silently runs an FP32 IR in bf16 unless the inference
precision hint is set, so the runner sets it explicitly (``fp32`` by default) and records what the compiled
model says it uses (``INFERENCE_PRECISION_HINT`` read back), spelled fp32 | fp16 | bf16 (OpenVINO's f32/f16 are
accepted as input aliases). On a CPU without bf16 units a ``bf16`` request compiles to fp32: the runner records
fp32 and ``precision_fallback``; refusing or warning is the caller's choice.

``async_pool()`` gives the throughput mode: an ``AsyncInferQueue`` with the compiled model's optimal number of
infer requests, as ``benchmark_app`` runs the throughput hint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..._optional import require
from ...enums import Device, Precision
from ...errors import IncompatibleArtifactError, InvalidModelError, UsageError
from ..base import BaseRunner, TensorSpec

PRECISIONS = ("fp32", "bf16", "fp16")
_INFERENCE_PRECISIONS = tuple(Precision(p) for p in PRECISIONS)
HINTS = ("latency", "throughput")
CONFIG_KEYS = (
    "PERFORMANCE_HINT",
    "NUM_STREAMS",
    "INFERENCE_NUM_THREADS",
    "ENABLE_CPU_PINNING",
    "ENABLE_HYPER_THREADING",
    "OPTIMAL_NUMBER_OF_INFER_REQUESTS",
)


def normalize_precision(value: str | None) -> str | None:
    """Any spelling ``Precision.parse`` accepts of fp32, bf16 or fp16 (``f16``, ``half``, ...) -> ``fp32`` |
    ``bf16`` | ``fp16``; None stays None; UsageError (exit 2) otherwise."""
    if value is None:
        return None
    return Precision.parse(value, allowed=_INFERENCE_PRECISIONS, option="--inference-precision").value


def ov_precision_name(element_type: Any) -> str | None:
    """An OpenVINO element type (or its string) as fp32 | fp16 | bf16; None when the plugin leaves it open."""
    text = element_type.to_string() if hasattr(element_type, "to_string") else str(element_type)
    found = Precision.lookup(text)
    return found.value if found in _INFERENCE_PRECISIONS else None


class AsyncPool:
    """``n`` infer requests in an ``ov.AsyncInferQueue``; each completion appends the request's own latency
    (``InferRequest.latency``, ms, as benchmark_app reports it) to ``latencies_ms``."""

    def __init__(self, compiled: Any, jobs: int) -> None:
        import openvino as ov

        self.jobs = int(jobs)
        self.latencies_ms: list[float] = []
        self._queue = ov.AsyncInferQueue(compiled, self.jobs)
        self._queue.set_callback(lambda request, _userdata: self.latencies_ms.append(float(request.latency)))

    def submit(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Start one inference on the next idle request (blocks while all are busy)."""
        self._queue.start_async(dict(inputs))

    def wait_all(self) -> None:
        self._queue.wait_all()


def check_ir_files(xml: Path) -> None:
    """Refuse (InvalidModelError, exit 5) an ``.xml`` that is not an OpenVINO IR, or one without its ``.bin``, before
    OpenVINO reads it (its frontends would otherwise try other formats and log their parse errors to stderr). Only
    the root element is parsed."""
    import xml.etree.ElementTree as ET

    try:
        with open(xml, "rb") as fh:
            _, root = next(ET.iterparse(fh, events=("start",)))
    except (ET.ParseError, StopIteration, UnicodeDecodeError) as exc:
        raise InvalidModelError(
            f"{xml.name} is not an OpenVINO IR (not well-formed XML: {str(exc)[:80]}). Build one with "
            "'rfdeploy build openvino'"
        ) from None
    except OSError as exc:
        raise InvalidModelError(f"cannot read {xml}: {exc.strerror}. Check the path") from None
    if root.tag != "net":
        raise InvalidModelError(
            f"{xml.name} is not an OpenVINO IR (root element <{root.tag[:40]}>, not <net>). Build one with "
            "'rfdeploy build openvino'"
        )
    if not xml.with_suffix(".bin").is_file():
        raise InvalidModelError(
            f"{xml.name}: its weights file {xml.with_suffix('.bin').name} is missing. Copy the .xml and .bin together"
        )


class OpenVINORunner(BaseRunner):
    name = "openvino"

    def __init__(
        self,
        model: str | Path | Callable[[], Any],
        *,
        device: str = "CPU",
        inference_precision: str | None = "fp32",
        hint: str = "latency",
        threads: int | None = None,
    ) -> None:
        super().__init__()
        inference_precision = normalize_precision(inference_precision)
        if hint not in HINTS:
            raise UsageError(f"unsupported --hint: {hint}. Use latency or throughput")
        self._model, self.ov_device, self.hint = model, device.upper(), hint
        self.device = Device.parse(self.ov_device.split(".")[0].lower(), option="--device")  # GPU.1 -> gpu
        self.requested_precision, self.threads = inference_precision, threads
        self.precision_fallback = False  # True when the compiled model runs another precision than requested
        self.compiled = None
        self._request = None

    def _activate(self) -> list[TensorSpec]:
        ov = require("openvino", extra="openvino")
        core = ov.Core()
        ir = not callable(self._model) and Path(self._model).suffix.lower() == ".xml"  # else an ONNX, or built here
        if ir:
            check_ir_files(Path(self._model))
        try:
            if callable(self._model):
                model = self._model()
            elif ir:
                model = core.read_model(str(self._model), str(Path(self._model).with_suffix(".bin")))
            else:
                model = core.read_model(str(self._model))
        except Exception as exc:
            raise IncompatibleArtifactError(
                f"OpenVINO cannot read {self._model}: {str(exc).splitlines()[0][:200]}. "
                "Check the .xml/.bin pair and the openvino version"
            ) from exc
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.hint.upper()}
        if self.requested_precision:
            config["INFERENCE_PRECISION_HINT"] = Precision(self.requested_precision).openvino
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        try:
            self.compiled = core.compile_model(model, self.ov_device, config)
        except Exception as exc:
            raise IncompatibleArtifactError(
                f"OpenVINO cannot compile the model for {self.ov_device}: {str(exc).splitlines()[0][:200]}"
            ) from exc
        try:  # what the plugin actually uses for the float parts
            self.executed_precision = ov_precision_name(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        except Exception:  # noqa: BLE001  (a plugin without the property: unknown, recorded as None)
            self.executed_precision = None
        self.runtime_config = {}
        for key in CONFIG_KEYS:
            try:  # what the plugin chose for the hint (recorded so timings can be compared with benchmark_app)
                self.runtime_config[key] = str(self.compiled.get_property(key))
            except Exception:  # noqa: BLE001,S112  (not every device plugin has every property)
                continue
        self.runtime_config["requested_inference_precision"] = self.requested_precision
        self.runtime_config["INFERENCE_PRECISION_HINT"] = self.executed_precision
        self.precision_fallback = bool(
            self.requested_precision and self.executed_precision and self.executed_precision != self.requested_precision
        )
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

    def optimal_requests(self) -> int:
        """The compiled model's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` (1 when the plugin does not say)."""
        self._require_active()
        try:
            return max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except Exception:  # noqa: BLE001
            return 1

    def async_pool(self, jobs: int | None = None) -> AsyncPool:
        """An ``AsyncPool`` of ``jobs`` requests (default: the compiled model's optimal number); recorded in
        ``runtime_config["infer_requests"]``."""
        self._require_active()
        pool = AsyncPool(self.compiled, jobs or self.optimal_requests())
        self.runtime_config["infer_requests"] = pool.jobs
        return pool

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
