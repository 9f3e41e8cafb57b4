"""Training loop: runs, writes a loadable checkpoint with metadata, resumes exactly, poly schedule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from refinenet_deploy.data.synth import write_synth_dataset
from refinenet_deploy.errors import ModelNotFoundError, UsageError
from refinenet_deploy.models import load_model
from refinenet_deploy.operations.evaluation import evaluate_checkpoint
from refinenet_deploy.operations.training import TrainConfig, poly_lr, train


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    return (
        write_synth_dataset(root / "train", 16, 48, 48, seed=1),
        write_synth_dataset(root / "val", 4, 48, 48, seed=2, split="val"),
    )


def _cfg(synth, out: Path, epochs: int) -> TrainConfig:
    return TrainConfig(
        data=str(synth[0]),
        val_data=str(synth[1]),
        out_dir=str(out),
        arch="rf_lw_mbv2_test",
        epochs=epochs,
        batch_size=8,
        lr=1e-3,
        warmup_iters=2,
        seed=3,
        command="pytest",
    )


def test_train_writes_loadable_checkpoint_with_metadata(synth, tmp_path: Path) -> None:
    events = []
    result = train(_cfg(synth, tmp_path / "run", 2), progress=events.append)
    assert [e.kind for e in events].count("epoch") == 2 and [e.kind for e in events].count("step") == 4
    assert result.best_miou is not None and 0.0 <= result.best_miou <= 1.0
    loaded = load_model(result.checkpoint)  # arch from the file
    assert loaded.arch == "rf_lw_mbv2_test" and loaded.num_classes == 6
    assert loaded.class_names == ("background", "disc", "box", "triangle", "ring", "cross")
    meta = loaded.checkpoint.metadata
    assert meta["training_command"] == "pytest" and meta["normalization"]["mode"] == "imagenet"
    assert len(meta["history"]) == 2
    res = evaluate_checkpoint(result.checkpoint, synth[1])
    assert res["num_images"] == 4 and res["miou"] == pytest.approx(result.best_miou, abs=0.02)  # fp16 storage


def test_resume_reproduces_uninterrupted_run(synth, tmp_path: Path) -> None:
    full = train(_cfg(synth, tmp_path / "full", 2))
    first = tmp_path / "resumed"
    train(_cfg(synth, first, 1))  # "interrupted" after one epoch...
    cfg = _cfg(synth, first, 2)
    resumed = train(cfg, resume=True)  # ...and continued
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(first / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in full.history]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history] == strip


def test_poly_lr_schedule() -> None:
    assert poly_lr(1.0, 0, 100, 0.9, warmup=10) == pytest.approx(0.1)
    assert poly_lr(1.0, 10, 100, 0.9, warmup=10) == pytest.approx((1 - 0.1) ** 0.9)
    assert poly_lr(1.0, 100, 100, 0.9, warmup=0) == 0.0


def test_bad_config(synth, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        train(TrainConfig(data=str(synth[0]), out_dir=str(tmp_path), arch="nope"))
    with pytest.raises(UsageError, match="larger than the dataset"):
        train(TrainConfig(data=str(synth[0]), out_dir=str(tmp_path), arch="rf_lw_test", batch_size=64))
