"""A checkpoint's own normalisation is resolved once (``load_model``) and every path feeds the model the same tensor:
export (the ONNX's documented preprocessing, and its in-graph one for nhwc-uint8), evaluate, parity and bench."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from refinenet_deploy.artifacts import InputPolicy, read_metadata
from refinenet_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner
from refinenet_deploy.data.datasets import open_dataset
from refinenet_deploy.data.synth import write_synth_dataset
from refinenet_deploy.models import create_model, load_model
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations.bench import benchmark
from refinenet_deploy.operations.evaluation import evaluate_checkpoint
from refinenet_deploy.operations.export import ExportSpec, export_onnx
from refinenet_deploy.operations.parity import validate_parity

from ..models.test_zoo import randomize

H, W = 40, 52
MEAN, STD = (0.2, 0.3, 0.4), (0.5, 0.6, 0.7)
CASES = {
    # the reproduction: a preset's name with the checkpoint's own values (exported with them, evaluated
    # with ImageNet's before)
    "imagenet-named": {"mode": "imagenet", "mean": list(MEAN), "std": list(STD), "scale": 255},
    # a custom normalisation (refused with exit 5 before)
    "custom": {"mode": "custom", "mean": list(MEAN), "std": list(STD), "scale": 1 / 255},
}


def _by_hand(image: np.ndarray, scale: float) -> np.ndarray:
    x = image.transpose(2, 0, 1).astype(np.float64) * scale
    return ((x - np.reshape(MEAN, (3, 1, 1))) / np.reshape(STD, (3, 1, 1)))[None]


@pytest.fixture
def capture(monkeypatch) -> dict[str, list[np.ndarray]]:
    """What the PyTorch model's forward and ONNX Runtime's infer receive, per call."""
    seen: dict[str, list[np.ndarray]] = {"torch": [], "onnx": []}
    cls = type(create_model("rf_lw_test", num_classes=6))
    forward = cls.forward
    infer = OnnxRuntimeRunner._infer

    def record_forward(self, x):  # noqa: ANN001, ANN202
        if x.device.type != "meta":  # not bench's GMAC count
            seen["torch"].append(x.detach().float().contiguous().numpy().copy())
        return forward(self, x)

    def record_infer(self, inputs):  # noqa: ANN001, ANN202
        seen["onnx"].extend(np.array(v, copy=True) for v in inputs.values())
        return infer(self, inputs)

    monkeypatch.setattr(cls, "forward", record_forward)
    monkeypatch.setattr(OnnxRuntimeRunner, "_infer", record_infer)
    return seen


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_path_feeds_the_model_the_checkpoints_own_normalisation(tmp_path: Path, capture, case: str) -> None:
    norm_meta = CASES[case]
    data = write_synth_dataset(tmp_path / "val", 2, H, W, seed=3, split="val")
    model = randomize(create_model("rf_lw_test", num_classes=6), seed=5)
    ckpt = save_safetensors(
        model.state_dict(), tmp_path / "m.safetensors", {"arch": "rf_lw_test", "normalization": norm_meta}
    )
    # export: the ONNX documents the preprocessing its input needs; that is what bench/parity apply to it
    onnx_path = tmp_path / "m.onnx"
    export_onnx(ckpt, onnx_path, ExportSpec(input_size=(H, W)))
    documented = InputPolicy.from_metadata(read_metadata(onnx_path))
    images = [open_dataset(data)[i][1] for i in range(2)]
    want = [documented.to_input(im) for im in images]
    for w, im in zip(want, images):
        np.testing.assert_allclose(w, _by_hand(im, norm_meta["scale"]), rtol=1e-5)

    # evaluate (PyTorch forward)
    capture["torch"].clear()
    evaluate_checkpoint(ckpt, data)
    assert len(capture["torch"]) == 2
    for got, w in zip(capture["torch"], want):
        np.testing.assert_array_equal(got, w)

    # parity: the PyTorch reference and the ONNX artifact
    capture["torch"].clear()
    capture["onnx"].clear()
    validate_parity(ckpt, onnx_path, data, num_images=2)
    for side in ("torch", "onnx"):
        assert len(capture[side]) == 2, side
        for got, w in zip(capture[side], want):
            np.testing.assert_array_equal(got, w)

    # bench: a checkpoint in PyTorch and the ONNX, on the same frame
    frame = np.random.default_rng(0).integers(0, 256, size=(H, W, 3), dtype=np.uint8)  # bench's timing frame
    frame_want = documented.to_input(frame)
    for artifact, side in ((ckpt, "torch"), (onnx_path, "onnx")):
        capture[side].clear()
        benchmark(artifact, input_size=(H, W), warmup=0, iterations=1, peak=False)
        assert capture[side], side
        np.testing.assert_array_equal(capture[side][0], frame_want)

    # resolved once, typed: the values are recorded as custom (they are not a preset's)
    loaded = load_model(ckpt)
    assert loaded.normalization == documented.normalization
    assert (loaded.normalization.mode, loaded.normalization.mean, loaded.normalization.std) == ("custom", MEAN, STD)


def test_in_graph_normalisation_of_an_nhwc_uint8_export(tmp_path: Path) -> None:
    """An ``nhwc-uint8`` ONNX normalises inside the graph: with the checkpoint's values, so its logits on a frame
    are the PyTorch model's logits on the tensor evaluate feeds it."""
    import onnxruntime as ort

    norm_meta = CASES["custom"]
    model = randomize(create_model("rf_lw_test", num_classes=6), seed=5)
    ckpt = save_safetensors(
        model.state_dict(), tmp_path / "m.safetensors", {"arch": "rf_lw_test", "normalization": norm_meta}
    )
    onnx_path = tmp_path / "u8.onnx"
    export_onnx(ckpt, onnx_path, ExportSpec(input_size=(H, W), input_format="nhwc-uint8"))
    frame = np.random.default_rng(1).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: frame[None]})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(_by_hand(frame, norm_meta["scale"]).astype(np.float32))).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
