"""PyTorch runner: the FP32 reference every backend is compared with (named torch_runner, not torch)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from ..base import BaseRunner, TensorSpec


class TorchRunner(BaseRunner):
    """Runs an ``nn.Module`` (or a builder of one) in eval mode under ``torch.inference_mode``."""

    name = "torch"

    def __init__(
        self,
        model: torch.nn.Module | Callable[[], torch.nn.Module],
        *,
        input_name: str = "input",
        output_names: tuple[str, ...] = ("logits",),
        input_dtype: np.dtype = np.dtype(np.float32),
        device: str = "cpu",
    ) -> None:
        super().__init__()
        self._model = model
        self._input_name = input_name
        self._output_names = output_names
        self._input_dtype = np.dtype(input_dtype)
        self._device = device
        self.module: torch.nn.Module | None = None
        self.device_times_ms: list[float] = []  # CUDA runs only: GPU time of each forward (CUDA events)

    def _activate(self) -> list[TensorSpec]:
        model = self._model if isinstance(self._model, torch.nn.Module) else self._model()
        self.module = model.eval().to(self._device)
        if self._device.startswith("cuda"):
            self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            torch.cuda.reset_peak_memory_stats()
        return [TensorSpec(self._input_name, self._input_dtype, (None, None, None, None))]

    def _infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(inputs[self._input_name])).to(self._device)
        cuda = self._device.startswith("cuda")
        with torch.inference_mode():
            if cuda:
                self._events[0].record()
            out = self.module(x)
            if cuda:
                self._events[1].record()
        outs = out if isinstance(out, (tuple, list)) else (out,)
        result = {name: t.cpu().numpy() for name, t in zip(self._output_names, outs)}  # .cpu() synchronises
        if cuda:
            torch.cuda.synchronize()
            self.device_times_ms.append(self._events[0].elapsed_time(self._events[1]))  # model only, on the GPU
        return result

    def device_memory_mib(self) -> float | None:
        """Peak CUDA memory allocated by PyTorch since activation (None on the CPU)."""
        return torch.cuda.max_memory_allocated() / 2**20 if self._device.startswith("cuda") else None

    def _deactivate(self) -> None:
        self.module = None
