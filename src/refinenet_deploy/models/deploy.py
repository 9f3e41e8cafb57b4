"""The network as deployed: optional in-graph preprocessing of camera frames, the model, and a head."""

from __future__ import annotations

import torch
from torch import nn

from ..data.preprocessing import Normalization
from .layers import upsample_logits

HEADS = ("logits", "upsample", "argmax")


def label_dtype(num_classes: int) -> torch.dtype:
    """Smallest integer type for the argmax head that TensorRT/OpenVINO/ONNX Runtime all accept."""
    return torch.uint8 if num_classes <= 256 else torch.int32


class DeployModule(nn.Module):
    """Normalise (``nhwc-uint8`` input) -> model -> head (logits at 1/4, upsampled logits, or a class map).

    For ``nhwc-uint8`` the uint8 frame is cast to float first, before the layout change and the normalisation:
    TensorRT accepts a uint8 tensor only as a network input that is cast right away.
    The class-map head ends in a Cast of the argmax (uint8 up to 256 classes, else int32).
    """

    def __init__(
        self,
        model: nn.Module,
        norm: Normalization,
        head: str = "logits",
        input_format: str = "nchw-float",
        num_classes: int = 21,
    ) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.input_format = input_format
        self.out_dtype = label_dtype(num_classes)
        self.register_buffer("scale", torch.tensor(float(norm.scale)))
        self.register_buffer("mean", torch.tensor(norm.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(norm.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_format == "nhwc-uint8":  # RGB uint8 HWC frame -> normalised NCHW float, in the graph
            x = (x.float().permute(0, 3, 1, 2) * self.scale - self.mean) / self.std
        logits = self.model(x)
        if self.head == "logits":
            return logits
        logits = upsample_logits(logits, x.shape[-2:])
        return logits if self.head == "upsample" else logits.argmax(1).to(self.out_dtype)
