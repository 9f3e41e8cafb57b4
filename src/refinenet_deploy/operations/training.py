"""A small, honest training loop for RefineNet models on a VOC/Cityscapes-layout dataset.

Augmentation (random scale, crop with ignore padding, horizontal flip, brightness/contrast jitter),
AdamW with a warm-up then poly learning-rate decay, per-epoch checkpoints that ``resume`` continues
from exactly (model, optimizer, RNG states), validation mIoU per epoch, and a final ``.safetensors``
with the metadata the rest of the tool reads (arch, classes, normalisation, the training command).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import __version__
from ..artifacts import write_atomic
from ..data.datasets import SegmentationDataset, open_dataset
from ..data.preprocessing import Normalization, preprocess
from ..errors import CheckpointError, DataError, UsageError
from ..models import create_model, get_model_cfg
from ..models.checkpoint import save_safetensors
from ..models.layers import upsample_logits
from ..validate.metrics import IGNORE_INDEX
from .evaluation import evaluate_model

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: str
    out_dir: str
    arch: str = "rf_lw_mbv2"
    val_data: str | None = None
    train_split: str | None = None
    val_split: str | None = None
    epochs: int = 20
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    poly_power: float = 0.9
    crop_size: int | None = None  # square training crop; default: the smaller image side
    scale_range: tuple[float, float] = (0.75, 1.25)
    seed: int = 0
    threads: int | None = None
    normalization: str = "imagenet"
    fp16_weights: bool = True
    command: str = ""


@dataclass
class TrainProgress:
    """What the loop reports to a progress callback: ``kind`` is ``step`` or ``epoch``."""

    kind: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    val_miou: float | None = None
    seconds: float = 0.0


@dataclass
class TrainResult:
    checkpoint: Path
    best_miou: float | None
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)


class _Augmented(torch.utils.data.Dataset):
    """Training view of a dataset: random scale, crop (label padded with ignore), flip, colour jitter."""

    def __init__(
        self, ds: SegmentationDataset, norm: Normalization, crop: int, scale_range: tuple[float, float], seed: int
    ) -> None:
        self.ds, self.norm, self.crop, self.scale_range, self.seed = ds, norm, crop, scale_range, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        _, image, label = self.ds[index]
        if label is None:
            raise DataError(f"training needs labels, none for {self.ds.samples[index].name}")
        scale = rng.uniform(*self.scale_range)
        h, w = label.shape
        nh, nw = max(8, round(h * scale)), max(8, round(w * scale))
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
        label = np.asarray(Image.fromarray(label).resize((nw, nh), Image.NEAREST))
        c = self.crop
        ph, pw = max(0, c - nh), max(0, c - nw)
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
            label = np.pad(label, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
        y0 = int(rng.integers(0, image.shape[0] - c + 1))
        x0 = int(rng.integers(0, image.shape[1] - c + 1))
        image, label = image[y0 : y0 + c, x0 : x0 + c], label[y0 : y0 + c, x0 : x0 + c]
        if rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        gain, bias = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
        image = np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
        x = torch.from_numpy(preprocess(np.ascontiguousarray(image), self.norm))
        return x, torch.from_numpy(np.ascontiguousarray(label).astype(np.int64))


def poly_lr(base_lr: float, iteration: int, max_iters: int, power: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` iterations, then ``base * (1 - t/T) ** power``."""
    if warmup and iteration < warmup:
        return base_lr * (iteration + 1) / warmup
    return base_lr * max(0.0, 1 - iteration / max(1, max_iters)) ** power


def _save_atomic(obj: Any, path: Path) -> None:
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def train(
    cfg: TrainConfig, progress: Callable[[TrainProgress], None] | None = None, resume: bool = False
) -> TrainResult:
    """Train ``cfg.arch`` on ``cfg.data``; writes ``last.pt`` each epoch and ``model.safetensors`` at the end."""
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise UsageError("epochs and batch size must be at least 1")
    get_model_cfg(cfg.arch)  # unknown name -> ModelNotFoundError before any work
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_ds = open_dataset(cfg.data, split=cfg.train_split)
    if not train_ds.has_labels or not train_ds.class_names:
        raise DataError(f"training data has no labels or class names: {cfg.data}. Use a VOC or Cityscapes layout")
    val_ds = open_dataset(cfg.val_data, split=cfg.val_split) if cfg.val_data else None
    num_classes = len(train_ds.class_names)
    norm = Normalization.from_name(cfg.normalization)
    _, first, _ = train_ds[0]
    crop = cfg.crop_size or min(first.shape[:2])

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, num_classes=num_classes).to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )
    aug = _Augmented(train_ds, norm, crop, cfg.scale_range, cfg.seed)
    steps = len(train_ds) // cfg.batch_size
    if steps == 0:
        raise UsageError(f"batch size {cfg.batch_size} is larger than the dataset ({len(train_ds)} images)")
    max_iters = steps * cfg.epochs
    start_epoch, iteration, best, history = 0, 0, None, []
    last_path = out / "last.pt"
    if resume and last_path.exists():
        try:
            state = torch.load(last_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except Exception as exc:  # a truncated or foreign file: say which and stop
            raise CheckpointError(f"cannot resume from {last_path}: {exc}. Delete it to start over") from exc
        start_epoch, iteration = int(state["epoch"]), int(state["iteration"])
        best, history = state.get("best_miou"), json.loads(state.get("history", "[]"))
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at epoch %d", last_path, start_epoch)

    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        aug.epoch = epoch
        order = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(aug, order[: steps * cfg.batch_size].tolist()),
            batch_size=cfg.batch_size,
            shuffle=False,
            num_workers=0,
            drop_last=True,
        )
        t0, losses = time.perf_counter(), []
        for step, (x, y) in enumerate(loader):
            lr = poly_lr(cfg.lr, iteration, max_iters, cfg.poly_power, cfg.warmup_iters)
            for group in opt.param_groups:
                group["lr"] = lr
            logits = upsample_logits(model(x.contiguous(memory_format=torch.channels_last)), y.shape[-2:])
            loss = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            iteration += 1
            losses.append(loss.item())
            if progress:
                progress(TrainProgress("step", epoch + 1, cfg.epochs, step + 1, steps, losses[-1], lr))
        val_miou = None
        if val_ds is not None:
            val_miou = evaluate_model(model, val_ds, num_classes, norm).miou
            if best is None or val_miou > best:
                best = val_miou
                _save_atomic(model.state_dict(), out / "best.pt")
        entry = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "val_miou": val_miou,
            "seconds": time.perf_counter() - t0,
        }
        history.append(entry)
        log.info("epoch %d/%d loss %.4f val mIoU %s", epoch + 1, cfg.epochs, entry["loss"], val_miou)
        _save_atomic(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "epoch": epoch + 1,
                "iteration": iteration,
                "best_miou": best,
                "history": json.dumps(history),
                "torch_rng": torch.get_rng_state(),
                "config": json.dumps(asdict(cfg)),
            },
            last_path,
        )
        if progress:
            progress(
                TrainProgress(
                    "epoch", epoch + 1, cfg.epochs, steps, steps, entry["loss"], 0.0, val_miou, entry["seconds"]
                )
            )

    if val_ds is not None and (out / "best.pt").exists():
        model.load_state_dict(torch.load(out / "best.pt", map_location="cpu", weights_only=True))
    final = out / "model.safetensors"
    metadata = {
        "arch": cfg.arch,
        "num_classes": num_classes,
        "class_names": list(train_ds.class_names),
        "normalization": norm.to_dict(),
        "training_command": cfg.command,
        "tool_version": __version__,
        "train_data": str(cfg.data),
        "val_data": str(cfg.val_data) if cfg.val_data else None,
        "val_miou": best,
        "epochs": cfg.epochs,
        "history": history,
    }
    save_safetensors(model.state_dict(), final, metadata, fp16=cfg.fp16_weights)
    return TrainResult(final, best, cfg.epochs, history)
