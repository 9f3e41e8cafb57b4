"""What a sweep is asked to do: sizes x targets and the budgets, validated once, from the CLI or a ``[sweep]`` table.

Sizes are a short side (``256``: the data's aspect ratio kept) or ``HxW``; both are rounded to a multiple of
``SIZE_MULTIPLE``: the encoders downsample by 32 (stride-2 stem and four stride-2 stages), so at a multiple of 32
every skip connection meets its upsampled partner at an exact 2x and no runtime pads or crops.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ...artifacts import MAX_SIDE, MIN_SIDE
from ...errors import UsageError
from ..pipeline.config import Target, load_config, parse_targets

SIZE_MULTIPLE = 32
DEFAULT_SIZES = ("96", "128", "192")
DEFAULT_TARGETS = ("cpu-onnxruntime-fp32", "cpu-openvino-fp32", "cpu-openvino-int8")
DEMO_DATA_SIZE = (192, 256)  # the synthetic validation scenes (H, W): 3:4, so a short side keeps an aspect ratio
MAX_SIZES = 16


@dataclass(frozen=True)
class SizeSpec:
    """A requested size: ``short_side`` or ``hw``, as the user spelled it (``text``)."""

    text: str
    short_side: int | None = None
    hw: tuple[int, int] | None = None

    def resolve(self, data_hw: tuple[int, int]) -> tuple[int, int]:
        """(H, W) for data of size ``data_hw``, each side rounded to a multiple of ``SIZE_MULTIPLE``."""
        if self.hw is not None:
            return round_side(self.hw[0]), round_side(self.hw[1])
        h, w = data_hw
        scale = self.short_side / min(h, w)
        return round_side(h * scale), round_side(w * scale)


def round_side(n: float) -> int:
    return max(SIZE_MULTIPLE, int(math.floor(n / SIZE_MULTIPLE + 0.5)) * SIZE_MULTIPLE)


def parse_size_spec(text: str, where: str = "--sizes") -> SizeSpec:
    t = str(text).strip().lower()
    try:
        parts = [int(p) for p in t.split("x")]
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a size; use a short side (256) or HxW (256x320)") from None
    if len(parts) not in (1, 2) or any(not MIN_SIDE <= p <= MAX_SIDE for p in parts):
        raise UsageError(f"{where}: {text!r}; each side must be {MIN_SIDE}..{MAX_SIDE}, as 256 or 256x320")
    return SizeSpec(t, short_side=parts[0]) if len(parts) == 1 else SizeSpec(t, hw=(parts[0], parts[1]))


def parse_sizes(value: str | list | tuple, where: str = "--sizes") -> tuple[SizeSpec, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    specs: list[SizeSpec] = []
    for item in items:
        if str(item).strip():
            spec = parse_size_spec(str(item), where)
            if spec.text not in {s.text for s in specs}:
                specs.append(spec)
    if not specs:
        raise UsageError(f"{where}: name at least one size, e.g. --sizes 256,384,512")
    if len(specs) > MAX_SIZES:
        raise UsageError(f"{where}: {len(specs)} sizes; at most {MAX_SIZES}")
    return tuple(specs)


@dataclass(frozen=True)
class SweepSettings:
    """Every setting of a sweep, checked in ``__post_init__`` (exit 2 naming the setting)."""

    checkpoint: str | None = None  # None: the bundled demo checkpoint
    data: str | None = None  # None: synthetic scenes (``DEMO_DATA_SIZE``), as the pipeline's demo
    calib_data: str | None = None  # INT8 calibration images; None: synthetic (only without --data)
    sizes: tuple[str, ...] = DEFAULT_SIZES
    targets: tuple[str, ...] = DEFAULT_TARGETS
    max_latency_ms: float | None = None
    max_miou_drop: float | None = None  # points of mIoU vs the reference row
    val_images: int = 8
    calib_images: int = 16
    warmup: int = 3
    max_warmup: int = 50
    iterations: int = 30
    threads: int | None = None
    seed: int = 0
    size_specs: tuple[SizeSpec, ...] = field(default=(), compare=False, repr=False)
    target_list: tuple[Target, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size_specs", parse_sizes(list(self.sizes)))
        object.__setattr__(self, "sizes", tuple(s.text for s in self.size_specs))
        object.__setattr__(self, "target_list", parse_targets(list(self.targets)))
        object.__setattr__(self, "targets", tuple(t.name for t in self.target_list))
        for name, hi in (("max_latency_ms", 1e6), ("max_miou_drop", 100.0)):
            v = getattr(self, name)
            if v is None:
                continue
            number = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
            if not number or not (0 < v <= hi if name == "max_latency_ms" else 0 <= v <= hi):
                raise UsageError(f"--{name.replace('_', '-')}: {v!r}; expected a number in 0..{hi:g}")
        for name, lo, hi in (
            ("val_images", 1, 100_000),
            ("calib_images", 1, 100_000),
            ("warmup", 0, 10_000),
            ("max_warmup", 0, 100_000),
            ("iterations", 1, 100_000),
            ("seed", 0, 2**31 - 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise UsageError(f"sweep {name}: {v!r}; expected an integer in {lo}..{hi}")
        if self.max_warmup < self.warmup:
            object.__setattr__(self, "max_warmup", self.warmup)
        if self.threads is not None and (isinstance(self.threads, bool) or not 1 <= int(self.threads) <= 1024):
            raise UsageError(f"--threads: {self.threads!r}; expected 1..1024")
        baselines = [t.name for t in self.target_list if t.runtime == "torch"]
        if baselines:
            raise UsageError(
                f"--targets: {', '.join(baselines)} is a PyTorch baseline, not a deployment to sweep (the PyTorch "
                "FP32 reference row is always measured). Drop it"
            )
        int8 = any(t.precision == "int8" for t in self.target_list)
        if int8 and self.data is not None and self.calib_data is None:
            raise UsageError(
                "INT8 targets with --data need --calib-data (calibrating on the validation images would score the "
                "model on what it was calibrated on). Pass --calib-data DIR or drop the INT8 targets"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("size_specs", "target_list"):
            d.pop(k)
        d["sizes"], d["targets"] = list(self.sizes), list(self.targets)
        return d


_SWEEP_KEYS = {f.name for f in fields(SweepSettings)} - {"size_specs", "target_list", "checkpoint", "data"}


def make_settings(file_settings: dict[str, Any], overrides: dict[str, Any]) -> SweepSettings:
    """The file's settings, then the command line's (which win, where given)."""
    merged = {**file_settings, **{k: v for k, v in overrides.items() if v is not None}}
    for key in ("sizes", "targets"):
        if isinstance(merged.get(key), str):
            merged[key] = tuple(merged[key].split(","))
        elif isinstance(merged.get(key), list):
            merged[key] = tuple(merged[key])
    return replace(SweepSettings(), **merged)


def load_sweep_config(path: str | Path) -> dict[str, Any]:
    """The ``[sweep]`` table of a pipeline config file, plus the pipeline's ``checkpoint`` and ``data``.

    The file is read and checked by ``pipeline.config.load_config`` (which leaves the ``[sweep]`` table to this
    loader); unknown ``[sweep]`` keys are a UsageError naming them."""
    path = Path(path)
    settings = load_config(path)  # the file checks, the pipeline's keys, relative paths resolved
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    table = tomllib.loads(path.read_text(encoding="utf-8")).get("sweep", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [sweep] must be a table")
    unknown = sorted(set(table) - _SWEEP_KEYS)
    if unknown:
        raise UsageError(
            f"{path}: unknown key sweep.{unknown[0]!r}. Known keys in [sweep]: {', '.join(sorted(_SWEEP_KEYS))}"
        )
    out = dict(table)
    if "calib_data" in out and isinstance(out["calib_data"], str) and not Path(out["calib_data"]).is_absolute():
        out["calib_data"] = str((path.parent / out["calib_data"]).resolve())
    for key in ("checkpoint", "data"):
        if settings.get(key):
            out[key] = settings[key]
    if settings.get("calib_data") and "calib_data" not in out:
        out["calib_data"] = settings["calib_data"]
    return out


def load_folder_settings(folder: str | Path, settings_file: str = "sweep-settings.json") -> dict[str, Any]:
    """The settings a sweep folder was made with (``--resume``); a folder that is not a sweep is refused."""
    from ...errors import DataError, InputReadError, read_json

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--resume {folder}: no such sweep folder. Pass the folder a sweep wrote (its -o)")
    try:
        doc = read_json(folder / settings_file)
    except FileNotFoundError:
        raise UsageError(f"{folder} is not a sweep folder (no {settings_file}). Pass -o FOLDER to make one") from None
    except (OSError, ValueError, InputReadError) as exc:
        raise DataError(f"{folder / settings_file}: unreadable ({type(exc).__name__}). Run the sweep again") from exc
    known = {f.name for f in fields(SweepSettings)} - {"size_specs", "target_list"}
    if not isinstance(doc, dict) or set(doc) - known:
        raise DataError(f"{folder / settings_file}: not the settings of this rfdeploy's sweep. Run the sweep again")
    return doc


__all__ = [
    "load_folder_settings",
    "DEFAULT_SIZES",
    "DEFAULT_TARGETS",
    "DEMO_DATA_SIZE",
    "SIZE_MULTIPLE",
    "SizeSpec",
    "SweepSettings",
    "load_sweep_config",
    "make_settings",
    "parse_sizes",
    "round_side",
]
