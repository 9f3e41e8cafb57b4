"""ONNX Runtime runner (CPU by default). Also runs Q/DQ INT8 models, so the INT8 accuracy TensorRT will
see can be predicted on a CPU-only machine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ...enums import Device
from ...errors import IncompatibleArtifactError, InvalidModelError, MissingDependencyError
from ..base import BaseRunner, TensorSpec

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


CUDA_PROVIDER = "CUDAExecutionProvider"
GPU_PROVIDERS = (CUDA_PROVIDER, "TensorrtExecutionProvider")


class OnnxRuntimeRunner(BaseRunner):
    name = "onnxruntime"

    def __init__(
        self,
        model: str | Path | bytes | Callable[[], bytes],
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int | None = None,
        require: str | None = None,
        image_model: bool = False,
    ) -> None:
        super().__init__()
        # where the first provider runs: a GPU for CUDA and TensorRT, the CPU otherwise
        gpu = bool(providers) and providers[0] in GPU_PROVIDERS
        self.device = Device.GPU if gpu else Device.CPU
        self._model = model
        self._providers = list(providers)
        self._threads = threads
        self._require = require  # a provider that must really run (ORT falls back to the CPU silently otherwise)
        self._image_model = image_model  # a user's artifact: one rank-4 image input and an output, or exit 5
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
            try:
                self.session = ort.InferenceSession(source, sess_options=opts, providers=self._providers)
            except Exception:
                inline = _with_external_data(model) if isinstance(model, Path) else None
                if inline is None:
                    raise
                self.session = ort.InferenceSession(inline, sess_options=opts, providers=self._providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad models
            if isinstance(model, Path):
                _diagnose(model)  # a missing external data file, or a file that is not an ONNX: exit 5 naming it
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
        self._check_graph(specs)
        return specs

    def _check_graph(self, specs: list[TensorSpec]) -> None:
        """A model without outputs, or (for a user's image model) without exactly one rank-4 input, is refused
        before any work: InvalidModelError (exit 5) naming the file."""
        name = Path(self._model).name if isinstance(self._model, (str, Path)) else "the model"
        problem = None
        if not self.session.get_outputs():
            problem = "has no graph output"
        elif self._image_model and len(specs) != 1:
            problem = f"has {len(specs)} graph inputs; an image model has one"
        elif self._image_model and len(specs[0].shape) != 4:
            problem = (
                f"input {specs[0].name!r} has rank {len(specs[0].shape)}; an image model takes a rank-4 tensor "
                "(N, 3, H, W) or (N, H, W, 3)"
            )
        if problem:
            self.session = None
            raise InvalidModelError(f"{name} {problem}. Pass an image model exported by 'rfdeploy export onnx'")

    def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, dict(inputs))))

    def _deactivate(self) -> None:
        self.session = None


def _with_external_data(path: Path) -> bytes | None:
    """The model with its external data read in, as bytes, when ONNX Runtime could not load it from the path (its
    shape inference cannot read small external tensors such as a Resize's scales) and it fits in one protobuf;
    None when the model has no external data (the failure is something else) or is too large."""
    import onnx

    from ...artifacts import INLINE_LIMIT_BYTES, check_external_data, load_onnx

    files = check_external_data(load_onnx(path), path)
    if not files or path.stat().st_size + sum(f.stat().st_size for f in files) > INLINE_LIMIT_BYTES:
        return None
    model = onnx.load(str(path), load_external_data=True)
    return model.SerializeToString()


def _diagnose(path: Path) -> None:
    """Why ONNX Runtime could not load ``path``, when the reason is the file rather than the runtime: it is not an
    ONNX model, or an external data file it refers to is missing (InvalidModelError, exit 5, naming the file)."""
    from ...artifacts import check_external_data, load_onnx

    check_external_data(load_onnx(path), path)
