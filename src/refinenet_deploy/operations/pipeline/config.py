"""What a pipeline run is asked to do: its targets and its TOML configuration, validated before any work.

A target names a device, a runtime and a precision (``cpu-openvino-int8``). The TOML file holds the same settings
as the command line; an unknown key or a bad value is a UsageError (exit 2) that names it.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ...artifacts import parse_hw
from ...calibration.dataset import DEFAULT_CALIBRATION_IMAGES
from ...calibration.options import AccuracyControl, CalibrationOptions
from ...enums import Precision, Runtime
from ...errors import MAX_JSON_BYTES, DataError, UsageError, printable, regular_file


@dataclass(frozen=True)
class Target:
    """One deployment: where it runs (``device``), with what (``runtime``) and at which ``precision``."""

    device: str  # cpu | rtx | gpu | jetson
    runtime: str  # onnxruntime | openvino | trt | dla | torch (a target's spelling; ``backend`` is the Runtime)
    precision: Precision  # fp32 | fp16 | int8
    summary: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision.parse(self.precision, option="target precision"))

    @property
    def name(self) -> str:
        return f"{self.device}-{self.runtime}-{self.precision}"

    @property
    def backend(self) -> Runtime:
        """The runtime that runs it (``trt`` and ``dla`` targets: TensorRT)."""
        return Runtime.TENSORRT if self.runtime == "dla" else Runtime.parse(self.runtime)

    @property
    def runs_here_on_cpu(self) -> bool:
        return self.device == "cpu"

    @property
    def engine(self) -> bool:
        return self.runtime in ("trt", "dla")


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("cpu", "onnxruntime", "fp32", "the exported ONNX in ONNX Runtime on this CPU"),
        Target("cpu", "onnxruntime", "int8", "the Q/DQ ONNX (what TensorRT uses) in ONNX Runtime on this CPU"),
        Target("cpu", "openvino", "fp32", "OpenVINO IR, FP32"),
        Target("cpu", "openvino", "fp16", "OpenVINO IR, FP16 weights"),
        Target("cpu", "openvino", "int8", "OpenVINO IR, INT8 quantized by NNCF on the calibration set"),
        Target("rtx", "trt", "fp16", "TensorRT-RTX engine, FP16 (built here; runs on RTX GPUs: sm 8.6/8.9/12.x)"),
        Target(
            "rtx",
            "trt",
            "int8",
            "TensorRT-RTX engine from the Q/DQ ONNX (built here; runs on RTX GPUs: sm 8.6/8.9/12.x; NVIDIA documents "
            "RTX INT8 as weight-only, so activation INT8 is not promised: the engine's layer report on the GPU says)",
        ),
        Target("gpu", "trt", "fp16", "TensorRT 10/11 engine, FP16, built on the GPU machine"),
        Target("gpu", "trt", "int8", "TensorRT 10/11 engine from the Q/DQ ONNX, built on the GPU machine"),
        Target("jetson", "trt", "fp16", "TensorRT engine, FP16, built on the Jetson"),
        Target("jetson", "trt", "int8", "TensorRT engine from the Q/DQ ONNX, built on the Jetson"),
        Target("jetson", "dla", "int8", "TensorRT engine on a Jetson DLA core, INT8 from the Q/DQ ONNX"),
        Target("gpu", "torch", "fp16", "PyTorch on the GPU in FP16 (the baseline a GPU user would otherwise ship)"),
    )
}
CPU_TARGETS = tuple(n for n, t in TARGETS.items() if t.device == "cpu")
DEMO_TARGETS = (*CPU_TARGETS, "rtx-trt-fp16", "rtx-trt-int8")

# Calibration-set size (benchmarks/calibration_size.py, results in benchmarks/results/calibration_size_avx2.json):
# the demo model at 128x128, 100 validation images, 2 seeds, AVX2-only AMD EPYC. The mean mIoU drop stayed at
# 0.20-0.32 pt from 16 to 200 images with both producers (no knee on this model and data); a single image cost up to
# 0.59 pt. 128 is past every size measured to matter there; real data is more varied than the synthetic scenes.
DEFAULT_CALIB_IMAGES = DEFAULT_CALIBRATION_IMAGES  # one default for calibrate, build and pipeline
FEW_CALIB_IMAGES = DEFAULT_CALIB_IMAGES  # fewer draws the warning below
CALIB_GUIDANCE = (
    "measured on the demo model (INT8, 128x128, AVX2-only CPU, 100 val images): mean mIoU drop 0.20-0.32 pt for "
    "16-200 calibration images (NNCF and ModelOpt), up to 0.59 pt with 1 image; real data varies more than the "
    f"demo's, so use at least {DEFAULT_CALIB_IMAGES} representative images"
)


# a target's runtime as its name spells it
_TARGET_RUNTIME = {Runtime.ONNXRUNTIME: "onnxruntime", Runtime.OPENVINO: "openvino", Runtime.TENSORRT: "trt"}


def canonical_target_name(text: str) -> str:
    """``cpu-ort-f32`` -> ``cpu-onnxruntime-fp32``: the runtime and precision parts in any spelling ``Runtime`` and
    ``Precision`` accept, as target names spell them (``trt`` for TensorRT; ``dla`` and ``torch`` as they are)."""
    name = text.strip().lower()
    parts = name.split("-")
    if len(parts) != 3:
        return name
    device, runtime, precision = parts
    found = Runtime.lookup(runtime)
    if runtime not in ("dla", "torch") and found is not None:
        runtime = _TARGET_RUNTIME.get(found, found.value)
    spelled = Precision.lookup(precision)
    return f"{device}-{runtime}-{spelled.value if spelled is not None else precision}"


def parse_target(text: str) -> Target:
    name = canonical_target_name(text)
    if name not in TARGETS:
        raise UsageError(f"unknown target {text!r}. Known targets: {', '.join(TARGETS)}")
    return TARGETS[name]


def parse_targets(text: str | list[str] | tuple[str, ...]) -> tuple[Target, ...]:
    """``'cpu,rtx-trt-fp16'`` or a list -> targets. ``cpu`` / ``all`` / ``demo`` name groups."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[Target] = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"targets: expected names such as cpu-openvino-int8, got {item!r}")
        key = item.strip().lower()
        if not key:
            continue
        group = {"cpu": CPU_TARGETS, "demo": DEMO_TARGETS, "all": tuple(TARGETS)}.get(key)
        for name in group or (key,):
            target = parse_target(name)
            if target not in out:
                out.append(target)
    if not out:
        raise UsageError("targets: name at least one target, e.g. --targets cpu-onnxruntime-fp32")
    return tuple(out)


@dataclass(frozen=True)
class PipelineConfig:
    """Every setting of a pipeline run. Paths are as given (the bundle stores them relative to itself)."""

    checkpoint: str | None = None
    arch: str = "auto"
    data: str | None = None
    calib_data: str | None = None
    targets: tuple[str, ...] = DEMO_TARGETS
    input_size: tuple[int, int] = (128, 128)
    # gates: None keeps the per-precision defaults of validate.tolerances
    max_miou_drop: float | None = None
    min_agreement: float | None = None
    # calibration
    calib_images: int = DEFAULT_CALIB_IMAGES
    calib_producer: str = "modelopt"
    calib_method: str | None = None  # None: the producer's default (calibration.qdq)
    # accuracy-aware fallback (Q/DQ: float islands; OpenVINO INT8: NNCF accuracy control), judged on calib_val_data
    calib_max_miou_drop: float | None = None
    calib_val_data: str | None = None  # None: the calibration images, as 'rfdeploy calibrate' does
    calib_val_images: int = 100
    # parity
    val_images: int | None = None
    # bench
    warmup: int = 3
    iterations: int = 20
    # synthetic data, when no data is given
    synth_val_images: int = 50
    synth_calib_images: int = DEFAULT_CALIB_IMAGES
    seed: int = 0

    @property
    def target_list(self) -> tuple[Target, ...]:
        return parse_targets(list(self.targets))

    def calibration_options(self) -> CalibrationOptions:
        """The ``[calibration]`` settings as the group 'rfdeploy calibrate' builds from its options."""
        return CalibrationOptions(num_images=self.calib_images, producer=self.calib_producer, method=self.calib_method)

    def accuracy_control(self, calibration_data: str | Path | None = None) -> AccuracyControl:
        """The accuracy-control group: the fallback's budget (``[calibration] max_miou_drop``) measured on
        ``val_images`` of ``val_data`` (default: ``calibration_data``, the calibration images, as 'rfdeploy
        calibrate' does), and the INT8 self-check's gate (``[gates] min_agreement``)."""
        drop = self.calib_max_miou_drop
        return AccuracyControl(
            max_miou_drop=drop,
            val_data=(self.calib_val_data or calibration_data) if drop is not None else None,
            val_images=self.calib_val_images,
            min_agreement=self.min_agreement,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"] = list(self.targets)
        d["input_size"] = f"{self.input_size[0]}x{self.input_size[1]}"
        return d


# key -> (type check, description); nested tables flatten to these keys
_SECTIONS = {
    "gates": {"max_miou_drop": "max_miou_drop", "min_agreement": "min_agreement"},
    "calibration": {
        "num_images": "calib_images",
        "producer": "calib_producer",
        "method": "calib_method",
        "data": "calib_data",
        "max_miou_drop": "calib_max_miou_drop",
        "val_data": "calib_val_data",
        "val_images": "calib_val_images",
    },
    "parity": {"num_images": "val_images"},
    "bench": {"warmup": "warmup", "iterations": "iterations"},
    "synth": {"val_images": "synth_val_images", "calib_images": "synth_calib_images", "seed": "seed"},
}
_BOUNDS: dict[str, tuple[float, float]] = {
    "max_miou_drop": (0.0, 100.0),
    "min_agreement": (0.0, 100.0),
    "calib_images": (1, 100_000),
    "calib_max_miou_drop": (0.0, 100.0),
    "calib_val_images": (1, 1_000_000),
    "val_images": (1, 1_000_000),
    "warmup": (0, 10_000),
    "iterations": (1, 100_000),
    "synth_val_images": (1, 10_000),
    "synth_calib_images": (1, 10_000),
    "seed": (0, 2**31 - 1),
}
OTHER_TABLES = ("sweep",)  # read by their own loaders (operations.sweep.plan.load_sweep_config)
PRODUCERS = ("modelopt", "onnxruntime")  # as 'rfdeploy calibrate --producer'
PRODUCER_ALIASES = {"ort": "onnxruntime"}  # the name earlier versions took


def _check_number(key: str, value: Any, where: str) -> float | int:
    field_type = {f.name: f.type for f in fields(PipelineConfig)}[key]
    want_int = "int" in str(field_type) and "float" not in str(field_type)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (want_int and not isinstance(value, int)):
        kind = "an integer" if want_int else "a number"
        raise UsageError(f"{where}{key}: expected {kind}, got {value!r}")
    lo, hi = _BOUNDS[key]
    if not math.isfinite(value) or not lo <= value <= hi:
        raise UsageError(f"{where}{key}: {value!r} is out of range; expected {lo:g} to {hi:g}")
    return value


def validate_settings(settings: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Check flat settings (config keys) and convert them to ``PipelineConfig`` field values."""
    known = {f.name for f in fields(PipelineConfig)}
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in known:
            raise UsageError(f"{where}unknown key {key!r}. Known keys: {', '.join(sorted(known))}")
        if value is None:
            continue
        if key in _BOUNDS:
            out[key] = _check_number(key, value, where)
        elif key == "targets":
            out[key] = tuple(t.name for t in parse_targets(value if isinstance(value, (str, list)) else [value]))
        elif key == "input_size":
            try:
                out[key] = parse_hw(str(value))
            except ValueError as exc:
                raise UsageError(f"{where}input_size: {exc}") from None
        elif key == "calib_producer":
            value = PRODUCER_ALIASES.get(value, value) if isinstance(value, str) else value
            if value not in PRODUCERS:
                raise UsageError(f"{where}calibration.producer: {value!r}; expected one of {', '.join(PRODUCERS)}")
            out[key] = value
        elif key == "calib_method":
            from ...calibration.qdq import METHODS

            if value not in METHODS:
                raise UsageError(f"{where}calibration.method: {value!r}; expected one of {', '.join(METHODS)}")
            out[key] = value
        else:  # paths and names
            if not isinstance(value, str) or not value:
                raise UsageError(f"{where}{key}: expected a string, got {value!r}")
            out[key] = value
    return out


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into flat, validated settings; relative paths resolve against its folder."""
    path = Path(path)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    if path.exists() or path.is_symlink():
        regular_file(path, "config file")  # a FIFO would block the read
        if path.stat().st_size > MAX_JSON_BYTES:
            raise UsageError(f"{printable(path)}: a config file larger than {MAX_JSON_BYTES >> 20} MiB. Check the path")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise UsageError(f"{printable(path)}: not valid TOML (nested too deep)") from None
    except FileNotFoundError:
        raise DataError(f"config file not found: {path}. Check the path") from None  # a missing input: exit 5
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in OTHER_TABLES:
            continue
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise UsageError(f"{path}: [{key}] must be a table")
            for sub, subvalue in value.items():
                if sub not in _SECTIONS[key]:
                    known = ", ".join(_SECTIONS[key])
                    raise UsageError(f"{path}: unknown key {key}.{sub!r}. Known keys in [{key}]: {known}")
                flat[_SECTIONS[key][sub]] = subvalue
        elif isinstance(value, dict):
            raise UsageError(f"{path}: unknown table [{key}]. Known tables: {', '.join(_SECTIONS)}")
        else:
            flat[key] = value
    settings = validate_settings(flat, where=f"{path}: ")
    for key in ("checkpoint", "data", "calib_data", "calib_val_data"):
        if key in settings and not Path(settings[key]).is_absolute():
            settings[key] = str((path.parent / settings[key]).resolve())
    return settings


def make_config(file_settings: dict[str, Any], overrides: dict[str, Any]) -> PipelineConfig:
    """The file's settings, then the command line's (which win), checked once more."""
    merged = {**file_settings, **validate_settings({k: v for k, v in overrides.items() if v is not None})}
    config = replace(PipelineConfig(), **merged)
    if config.checkpoint is None and (config.data or config.calib_data or config.calib_val_data):
        raise UsageError("--data/--calib-data need --checkpoint (with no checkpoint the bundled demo runs)")
    try:  # the groups calibrate and build check, built once here (a method the producer has; exit 2 otherwise)
        config.calibration_options()
        config.accuracy_control()
    except UsageError as exc:
        raise UsageError(f"[calibration] {exc.message.replace('--', '')}") from None
    return config


__all__ = [
    "CALIB_GUIDANCE",
    "CPU_TARGETS",
    "DEFAULT_CALIB_IMAGES",
    "DEMO_TARGETS",
    "FEW_CALIB_IMAGES",
    "TARGETS",
    "canonical_target_name",
    "PipelineConfig",
    "Target",
    "load_config",
    "make_config",
    "parse_targets",
]
