"""A small, honest training loop for RefineNet models on a VOC/Cityscapes-layout dataset.

Augmentation (random scale, crop with ignore padding, horizontal flip, brightness/contrast jitter),
AdamW with a warm-up then poly learning-rate decay, per-epoch checkpoints that ``resume`` continues
from exactly (model, optimizer, RNG states), validation mIoU per epoch, and a final ``.safetensors``
with the metadata the rest of the tool reads (arch, classes, normalisation, the training command).
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import __version__
from ..artifacts import MAX_SIDE, MIN_SIDE, probe_output, write_atomic
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


# Bounds of the training options (exit 2 outside them).
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 4096
MAX_LR = 10.0


def check_config(cfg: TrainConfig) -> None:
    """Refuse (UsageError, exit 2) options outside their bounds before any work: epochs 1..10000, batch size
    1..4096, a finite learning rate in (0, 10], a crop side of 16..8192, finite non-negative weight decay,
    a scale range 0 < lo <= hi <= 4, warm-up iterations >= 0, threads >= 1."""

    def finite(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not isinstance(cfg.epochs, int) or not 1 <= cfg.epochs <= MAX_EPOCHS:
        raise UsageError(f"--epochs must be 1..{MAX_EPOCHS}, got {cfg.epochs}")
    if not isinstance(cfg.batch_size, int) or not 1 <= cfg.batch_size <= MAX_BATCH_SIZE:
        raise UsageError(f"--batch-size must be 1..{MAX_BATCH_SIZE}, got {cfg.batch_size}")
    if not finite(cfg.lr) or not 0 < cfg.lr <= MAX_LR:
        raise UsageError(f"--lr must be a finite number in (0, {MAX_LR:g}], got {cfg.lr}")
    if cfg.crop_size is not None and not (isinstance(cfg.crop_size, int) and MIN_SIDE <= cfg.crop_size <= MAX_SIDE):
        raise UsageError(f"--crop-size must be {MIN_SIDE}..{MAX_SIDE} pixels, got {cfg.crop_size}")
    if not finite(cfg.weight_decay) or cfg.weight_decay < 0:
        raise UsageError(f"weight decay must be a finite number >= 0, got {cfg.weight_decay}")
    lo, hi = cfg.scale_range
    if not (finite(lo) and finite(hi) and 0 < lo <= hi <= 4):
        raise UsageError(f"scale range must satisfy 0 < low <= high <= 4, got {cfg.scale_range}")
    if not finite(cfg.poly_power) or cfg.poly_power < 0 or cfg.warmup_iters < 0:
        raise UsageError("poly power and warm-up iterations must be >= 0")
    if cfg.threads is not None and cfg.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {cfg.threads}")


_RESUME_KEYS: dict[str, type | tuple[type, ...]] = {
    "model": dict,
    "optimizer": dict,
    "epoch": int,
    "iteration": int,
    "torch_rng": torch.Tensor,
}


def _load_resume_state(path: Path) -> dict[str, Any]:
    """``last.pt`` read with the weights-only allow-list; anything else is a one-line CheckpointError (exit 5)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4" noise
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"cannot resume from {path}: it holds objects outside the weights-only allow-list and is not loaded. "
            "Delete it to start over, or resume from a last.pt written by 'rfdeploy train'"
        ) from None
    except Exception as exc:  # truncated, not a torch file, ...: one line, no PyTorch advice
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(
            f"cannot resume from {path}: {first}. The file is damaged or not a last.pt; delete it to start over"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"cannot resume from {path}: not a training state (top level is {type(state).__name__})")
    for key, kind in _RESUME_KEYS.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            what = "missing" if key not in state else f"a {type(state[key]).__name__}"
            raise CheckpointError(
                f"cannot resume from {path}: {key!r} is {what}. It is not a last.pt written by 'rfdeploy train'; "
                "delete it to start over"
            )
    return state


def train(
    cfg: TrainConfig, progress: Callable[[TrainProgress], None] | None = None, resume: bool = False
) -> TrainResult:
    """Train ``cfg.arch`` on ``cfg.data``; writes ``last.pt`` each epoch and ``model.safetensors`` at the end."""
    out = _check_outputs(cfg)
    train_ds, val_ds = _open_datasets(cfg)
    num_classes = len(train_ds.class_names)
    norm = Normalization.from_name(cfg.normalization)
    _, first, _ = train_ds[0]
    crop = cfg.crop_size or min(first.shape[:2])

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, num_classes=num_classes).to(memory_format=torch.channels_last)
    opt = _optimizer(model, cfg)
    aug = _Augmented(train_ds, norm, crop, cfg.scale_range, cfg.seed)
    steps = len(train_ds) // cfg.batch_size
    if steps == 0:
        raise UsageError(f"batch size {cfg.batch_size} is larger than the dataset ({len(train_ds)} images)")
    max_iters = steps * cfg.epochs
    start_epoch, iteration, best, history = 0, 0, None, []
    last_path = out / "last.pt"
    if resume and last_path.exists():
        start_epoch, iteration, best, history = _resume(model, opt, last_path)

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        iteration, losses = _train_epoch(model, opt, aug, cfg, epoch, steps, iteration, max_iters, progress)
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
    final = _save_final(model, cfg, out, train_ds, norm, best, history)
    return TrainResult(final, best, cfg.epochs, history)


def _check_outputs(cfg: TrainConfig) -> Path:
    """The options, the architecture name and every output path, checked before any work; returns the folder."""
    check_config(cfg)
    get_model_cfg(cfg.arch)  # unknown name -> ModelNotFoundError before any work
    out = Path(cfg.out_dir)
    inputs = [cfg.data, cfg.val_data]
    probe_output(out, inputs=inputs, what="-o", kind="dir")  # before any work; created at the first write
    for name in ("last.pt", "best.pt", "model.safetensors"):
        probe_output(out / name, inputs=inputs, what=f"-o ({name})")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return out


def _open_datasets(cfg: TrainConfig) -> tuple[SegmentationDataset, SegmentationDataset | None]:
    train_ds = open_dataset(cfg.data, split=cfg.train_split)
    if not train_ds.has_labels or not train_ds.class_names:
        raise DataError(f"training data has no labels or class names: {cfg.data}. Use a VOC or Cityscapes layout")
    val_ds = open_dataset(cfg.val_data, split=cfg.val_split) if cfg.val_data else None
    return train_ds, val_ds


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, with no weight decay on biases and norm parameters (1-D tensors)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )


def _resume(
    model: torch.nn.Module, opt: torch.optim.Optimizer, last_path: Path
) -> tuple[int, int, float | None, list[Any]]:
    """Load ``last.pt`` into the model and optimizer; returns (epoch, iteration, best mIoU, history)."""
    state = _load_resume_state(last_path)
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history = json.loads(state.get("history", "[]"))
        torch.set_rng_state(state["torch_rng"])
    except Exception as exc:  # another architecture, class count or optimizer: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            f"cannot resume from {last_path}: {first}. It was written for another model or run; delete it to start over"
        ) from None
    if not isinstance(history, list):
        history = []
    best = state.get("best_miou") if isinstance(state.get("best_miou"), float) else None
    log.info("resumed from %s at epoch %d", last_path, state["epoch"])
    return state["epoch"], state["iteration"], best, history


def _train_epoch(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    aug: _Augmented,
    cfg: TrainConfig,
    epoch: int,
    steps: int,
    iteration: int,
    max_iters: int,
    progress: Callable[[TrainProgress], None] | None,
) -> tuple[int, list[float]]:
    """One epoch over a seeded permutation of the training set; returns the iteration reached and the losses."""
    model.train()
    aug.epoch = epoch
    order = torch.randperm(len(aug.ds), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(aug, order[: steps * cfg.batch_size].tolist()),
        batch_size=cfg.batch_size,
        shuffle=False,
        num_workers=0,
        drop_last=True,
    )
    losses: list[float] = []
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
    return iteration, losses


def _save_final(
    model: torch.nn.Module,
    cfg: TrainConfig,
    out: Path,
    train_ds: SegmentationDataset,
    norm: Normalization,
    best: float | None,
    history: list[Any],
) -> Path:
    """``model.safetensors`` with the metadata the rest of the tool reads."""
    final = out / "model.safetensors"
    metadata = {
        "arch": cfg.arch,
        "num_classes": len(train_ds.class_names),
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
    return final
