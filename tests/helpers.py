"""Shared test set-up: a tiny random-weight model exported to FP32 ONNX, with synthetic data beside it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from refinenet_deploy.data.synth import write_synth_dataset
from refinenet_deploy.models import create_model
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations.export import ExportSpec, export_onnx

from .models.test_zoo import randomize

# Fixtures that GPU-marked tests share export with the simplifier this machine has: a stock GPU machine (PyTorch,
# onnx, onnxruntime) may have no onnxsim, and a hardware test must run there, not error at set-up.
AVAILABLE_SIMPLIFIER = "onnxsim" if importlib.util.find_spec("onnxsim") is not None else "none"


def tiny_fp32_export(root: Path, *, images: int, data_seed: int, model_seed: int) -> dict[str, Path]:
    """``rf_lw_mbv2_test`` (6 classes, random weights and BN statistics) as a static 48x48 ONNX, plus a VOC
    layout synthetic dataset of ``images`` 48x48 scenes: root, data, ckpt and fp32 paths."""
    data = write_synth_dataset(root / "data", images, 48, 48, seed=data_seed)
    model = randomize(create_model("rf_lw_mbv2_test", num_classes=6), seed=model_seed)
    ckpt = save_safetensors(model.state_dict(), root / "m.safetensors", {"arch": "rf_lw_mbv2_test"})
    fp32 = root / "m.onnx"
    export_onnx(ckpt, fp32, ExportSpec(input_size=(48, 48)))
    return {"root": root, "data": data, "ckpt": ckpt, "fp32": fp32}


def default_init_model(name: str, *, num_classes: int, seed: int = 0) -> torch.nn.Module:
    """``create_model`` with its default initialisation, drawn from a local seed instead of the global torch RNG
    (whose state depends on which tests ran before, e.g. training seeds it): the same weights in any test order.
    The global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(name, num_classes=num_classes)
