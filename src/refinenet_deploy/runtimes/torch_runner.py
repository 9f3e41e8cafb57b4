"""PyTorch runner: the FP32 reference every backend is compared with (named torch_runner, not torch)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from .base import BaseRunner, TensorSpec


class TorchRunner(BaseRunner):
    """Runs an ``nn.Module`` (or a builder of one) in eval mode under ``torch.inference_mode``."""

    name = "torch"

    def __init__(self, model: torch.nn.Module | Callable[[], torch.nn.Module], *, input_name: str = "input",
                 output_names: tuple[str, ...] = ("logits",), input_dtype: np.dtype = np.dtype(np.float32),
                 device: str = "cpu") -> None:
        super().__init__()
        self._model = model
        self._input_name = input_name
        self._output_names = output_names
        self._input_dtype = np.dtype(input_dtype)
        self._device = device
        self.module: torch.nn.Module | None = None

    def _activate(self) -> list[TensorSpec]:
        model = self._model if isinstance(self._model, torch.nn.Module) else self._model()
        self.module = model.eval().to(self._device)
        return [TensorSpec(self._input_name, self._input_dtype, (None, None, None, None))]

    def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(inputs[self._input_name])).to(self._device)
        with torch.inference_mode():
            out = self.module(x)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return {name: t.cpu().numpy() for name, t in zip(self._output_names, outs)}

    def _deactivate(self) -> None:
        self.module = None
