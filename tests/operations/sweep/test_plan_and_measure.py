"""Sweep settings, sizes, the [sweep] config table, and one cell's scoring at the label's resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refinenet_deploy.artifacts import InputPolicy
from refinenet_deploy.backends.base import TensorSpec
from refinenet_deploy.data.datasets import open_dataset
from refinenet_deploy.data.synth import write_synth_dataset
from refinenet_deploy.errors import UsageError
from refinenet_deploy.operations.pipeline.config import load_config
from refinenet_deploy.operations.sweep import SweepSettings, load_sweep_config, make_settings, parse_sizes
from refinenet_deploy.operations.sweep.measure import score_runner
from refinenet_deploy.validate.metrics import confusion_matrix, mean_iou


@pytest.mark.parametrize(
    ("text", "data_hw", "want"),
    [
        ("96", (192, 256), (96, 128)),
        ("128", (192, 256), (128, 160)),  # 170.7 -> 160
        ("100", (480, 640), (96, 128)),  # the short side itself is rounded to 32 too
        ("256x300", (480, 640), (256, 288)),
        ("20", (480, 640), (32, 32)),  # never below one multiple
    ],
)
def test_sizes_resolve_to_multiples_of_32(text: str, data_hw: tuple[int, int], want: tuple[int, int]) -> None:
    (spec,) = parse_sizes(text)
    assert spec.resolve(data_hw) == want


@pytest.mark.parametrize("text", ["", "abc", "96x", "8", "96x96x96", "0"])
def test_bad_sizes_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_sizes(text)


def test_settings_refuse_bad_combinations() -> None:
    with pytest.raises(UsageError, match="baseline"):
        SweepSettings(targets=("gpu-torch-fp16",))
    with pytest.raises(UsageError, match="--calib-data"):
        SweepSettings(data="val", targets=("cpu-openvino-int8",))
    with pytest.raises(UsageError, match="max-latency-ms"):
        SweepSettings(max_latency_ms=0)
    with pytest.raises(UsageError, match="max-miou-drop"):
        SweepSettings(max_miou_drop=float("nan"))
    s = make_settings({}, {"targets": "cpu", "sizes": "96,96,128"})
    assert "cpu-openvino-fp16" in s.targets and s.sizes == ("96", "128")  # cpu expands; a repeat is dropped


def test_sweep_table_in_the_pipeline_config(tmp_path: Path) -> None:
    cfg = tmp_path / "deploy.toml"
    cfg.write_text(
        'targets = "cpu-openvino-fp32"\ndata = "val"\n[sweep]\nsizes = ["96", "128x160"]\n'
        'targets = ["cpu-onnxruntime-fp32"]\nmax_latency_ms = 33\ncalib_data = "calib"\n'
    )
    assert load_config(cfg)["targets"] == ("cpu-openvino-fp32",)  # the pipeline reads its part, leaves [sweep]
    settings = make_settings(load_sweep_config(cfg), {"max_miou_drop": 1.0})
    assert settings.sizes == ("96", "128x160") and settings.targets == ("cpu-onnxruntime-fp32",)
    assert settings.max_latency_ms == 33 and settings.max_miou_drop == 1.0
    assert settings.data == str((tmp_path / "val").resolve())
    assert settings.calib_data == str((tmp_path / "calib").resolve())
    cfg.write_text("[sweep]\nsize = [96]\n")
    with pytest.raises(UsageError, match="sweep.'size'"):
        load_sweep_config(cfg)


class _FakeRunner:
    """A labelled fake runner: logits favouring class 0 everywhere, at 1/4 of its input, recording input sizes."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes, self.seen = num_classes, []
        self.input_specs = [TensorSpec("input", np.dtype("float32"), (1, 3, None, None))]

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["input"]
        self.seen.append(tuple(x.shape[2:]))
        logits = np.zeros((1, self.num_classes, x.shape[2] // 4, x.shape[3] // 4), np.float32)
        logits[:, 0] = 1.0
        return {"logits": logits}


def test_a_cell_is_scored_at_the_label_resolution(tmp_path: Path) -> None:
    data = write_synth_dataset(tmp_path / "val", 2, 96, 128, seed=3, split="val")
    runner = _FakeRunner(6)
    scores, n = score_runner(runner, InputPolicy(), 6, data, (32, 64), num_images=2)
    assert n == 2 and runner.seen == [(32, 64), (32, 64)]  # resized to the cell's size
    ds = open_dataset(data)
    labels = [ds[i][2] for i in range(2)]
    # all pixels predicted class 0, scored at the labels' own 96x128
    want = sum(confusion_matrix(np.zeros_like(lab), lab, 6) for lab in labels)
    assert scores.miou == pytest.approx(mean_iou(want))
    assert want.sum() == sum(int((lab != 255).sum()) for lab in labels)  # every labelled pixel, not 32x64


def test_images_with_no_labelled_pixel_are_refused_not_scored_nan(tmp_path: Path) -> None:
    from PIL import Image

    from refinenet_deploy.errors import DataError

    data = write_synth_dataset(tmp_path / "val", 2, 64, 64, seed=3, split="val")
    for png in (data / "SegmentationClass").glob("*.png"):
        with Image.open(png) as im:
            palette, shape = im.getpalette(), np.array(im).shape
        blank = Image.fromarray(np.full(shape, 255, np.uint8), mode="P")  # every pixel the ignore label
        blank.putpalette(palette)
        blank.save(png)
    with pytest.raises(DataError, match="no pixel outside the ignore label 255, so mIoU is not defined"):
        score_runner(_FakeRunner(6), InputPolicy(), 6, data, (32, 32), num_images=2)
