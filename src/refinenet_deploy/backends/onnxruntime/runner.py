"""ONNX Runtime runner (CPU by default). Also runs Q/DQ INT8 models, so the INT8 accuracy TensorRT will
see can be predicted on a CPU-only machine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ...errors import IncompatibleArtifactError, MissingDependencyError
from ..base import BaseRunner, TensorSpec

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


class OnnxRuntimeRunner(BaseRunner):
    name = "onnxruntime"

    def __init__(
        self,
        model: str | Path | bytes | Callable[[], bytes],
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int | None = None,
        require: str | None = None,
    ) -> None:
        super().__init__()
        self._model = model
        self._providers = list(providers)
        self._threads = threads
        self._require = require  # a provider that must really run (ORT falls back to the CPU silently otherwise)
        self.session = None

    def _activate(self) -> list[TensorSpec]:
        import onnxruntime as ort

        model = self._model() if callable(self._model) else self._model
        opts = ort.SessionOptions()
        if self._threads:
            opts.intra_op_num_threads = self._threads
        opts.log_severity_level = 3
        source = str(model) if isinstance(model, Path) else model
        try:
            self.session = ort.InferenceSession(source, sess_options=opts, providers=self._providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad models
            raise IncompatibleArtifactError(
                f"ONNX Runtime cannot load the model: {str(exc).splitlines()[0][:200]}. "
                "Check the file and the onnxruntime version"
            ) from exc
        ran = list(self.session.get_providers())
        if self._require and self._require not in ran:
            self.session = None
            raise MissingDependencyError(
                f"ONNX Runtime could not start {self._require} (it fell back to {', '.join(ran)}). Check that the "
                "CUDA and cuDNN libraries onnxruntime-gpu needs are installed and match its version",
                hint="requirements: https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html",
            )
        self.runtime_config = {"providers": ran, "intra_op_num_threads": self._threads}
        self.executed_precision = None  # what the graph computes in: read by the caller from the graph itself
        specs = []
        for i in self.session.get_inputs():
            dims = tuple(d if isinstance(d, int) else None for d in i.shape)
            specs.append(TensorSpec(i.name, np.dtype(_ORT_TYPES.get(i.type, np.float32)), dims))
        return specs

    def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, dict(inputs))))

    def _deactivate(self) -> None:
        self.session = None
