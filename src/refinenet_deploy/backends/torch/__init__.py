"""PyTorch: the runner for checkpoints (the FP32 reference every backend is compared with) and the torch -> ONNX
exporter. ``torch`` is imported only when this package is used."""

from __future__ import annotations

from typing import Any

from ...enums import Device
from ...errors import IncompatibleArtifactError


def open_checkpoint(
    checkpoint: Any,
    *,
    device: Device = Device.CPU,
    policy: Any = None,
    arch: str = "auto",
    num_classes: int | None = None,
) -> Any:
    """A ``TorchRunner`` of a checkpoint (a path, or a ``models.LoadedModel``) wrapped as deployed (``policy``: an
    ``artifacts.InputPolicy``; default: the checkpoint's own normalisation, NCHW float input, logits).
    ``runner.loaded`` is the ``LoadedModel`` and ``runner.normalization`` the normalisation it applies."""
    import numpy as np
    import torch

    from ...models import DeployModule, LoadedModel, load_model
    from .runner import CheckpointRunner

    if device == Device.GPU and not torch.cuda.is_available():
        raise IncompatibleArtifactError(
            "--device gpu: PyTorch sees no CUDA GPU here. Use --device cpu, "
            "or a CUDA build of torch on a machine with an NVIDIA GPU"
        )
    loaded = (
        checkpoint
        if isinstance(checkpoint, LoadedModel)
        else load_model(checkpoint, arch=arch, num_classes=num_classes)
    )
    norm = policy.normalization if policy is not None else loaded.normalization
    input_format = policy.input_format if policy is not None else "nchw-float"
    head = policy.head if policy is not None else "logits"
    module = DeployModule(loaded.model, norm, head, input_format, loaded.num_classes)
    return CheckpointRunner(
        module,
        loaded=loaded,
        normalization=norm,
        input_dtype=np.uint8 if input_format == "nhwc-uint8" else np.float32,
        device="cuda" if device == Device.GPU else "cpu",
    )


__all__ = ["open_checkpoint"]
