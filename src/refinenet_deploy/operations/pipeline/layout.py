"""The bundle on disk, by name: where each file of a pipeline bundle lives, its config file, and the checks on the
bundle path made before any work.

Paths recorded in a bundle are relative to it (``BundleLayout.rel``), so a bundle can be copied to a device and
finished there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...artifacts import is_inside, probe_output
from ...errors import DataError, InputReadError, UsageError, nonfinite_field, printable, read_json
from ...results.bench import BenchResult
from ...results.parity import ParityResult
from .config import PipelineConfig, Target, validate_settings

# package data (pyproject: tool.setuptools.package-data), so a wheel install has it too
DEMO_CHECKPOINT = Path(__file__).resolve().parents[2] / "demo" / "rf_lw_mbv2_synth.safetensors"
CONFIG_FILE = "pipeline.json"
MANIFEST_FILE = "manifest.json"
BASELINE = "cpu-torch-fp32"
PREDICTOR = "cpu-onnxruntime-int8"  # its parity predicts the device INT8 targets (the same Q/DQ ONNX)


class FolderLayout:
    """Paths inside one working folder (a pipeline bundle or a sweep folder): ``root`` and the checkpoint setting
    come from the subclass; the checkpoint is copied in, the validation set made under ``data/val``."""

    @property
    def root(self) -> Path:
        raise NotImplementedError

    @property
    def checkpoint_setting(self) -> str | None:
        raise NotImplementedError

    def p(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def rel(self, path: Path) -> str:
        """``path`` relative to the folder (as the record, the manifest and the device commands name it)."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    @property
    def source_checkpoint(self) -> Path:
        return Path(self.checkpoint_setting) if self.checkpoint_setting else DEMO_CHECKPOINT

    @property
    def checkpoint(self) -> Path:
        return self.p("checkpoint", self.source_checkpoint.name)

    @property
    def val_dir(self) -> Path:
        return self.p("data", "val")


@dataclass(frozen=True)
class BundleLayout(FolderLayout):
    """The paths of one bundle made with one configuration."""

    bundle: Path
    config: PipelineConfig

    @property
    def root(self) -> Path:
        return self.bundle

    @property
    def checkpoint_setting(self) -> str | None:
        return self.config.checkpoint

    @property
    def calib_dir(self) -> Path:
        return self.p("data", "calib") if self.config.calib_data is None else Path(self.config.calib_data)

    @property
    def calib_val_dir(self) -> Path:
        """The images the accuracy-aware fallback measures its mIoU drop on (default: the calibration images)."""
        return self.calib_dir if self.config.calib_val_data is None else Path(self.config.calib_val_data)

    @property
    def onnx(self) -> Path:
        return self.p("models", "model.onnx")

    @property
    def onnx_fp16(self) -> Path:
        return self.p("models", "model.fp16.onnx")

    @property
    def onnx_int8(self) -> Path:
        return self.p("models", "model.int8.onnx")

    @property
    def reference(self) -> Path:
        return self.p("reference.npz")  # validate.reference: a safe .npz with its manifest

    @property
    def predicted_parity(self) -> Path:
        return self.p("predicted", "int8-onnxruntime-cpu.parity.json")

    def target_dir(self, name: str) -> Path:
        return self.p("targets", name)

    def parity_json(self, name: str) -> Path:
        return self.target_dir(name) / "parity.json"

    def bench_json(self, name: str) -> Path:
        return self.target_dir(name) / "bench.json"

    def artifact_for(self, t: Target) -> Path:
        if t.runtime == "onnxruntime":
            return self.onnx_int8 if t.precision == "int8" else self.onnx
        if t.runtime == "torch":
            return self.checkpoint
        suffix = ".xml" if t.runtime == "openvino" else ".engine"
        return self.target_dir(t.name) / f"model{suffix}"

    def engine_source(self, t: Target) -> Path:
        """The ONNX a TensorRT engine of ``t`` is built from."""
        if t.precision == "int8":
            return self.onnx_int8
        return self.onnx if t.device == "rtx" else self.onnx_fp16

    def result_files(self) -> list[Path]:
        """Every bench and parity result under ``targets/``."""
        folder = self.p("targets")
        files: list[Path] = []
        for d in sorted(folder.glob("*")) if folder.is_dir() else []:
            files += [f for f in (d / "bench.json", d / "parity.json") if f.is_file()]
        return files

    def bundle_config(self) -> dict[str, Any]:
        """What ``pipeline.json`` holds: the settings, with the bundle's copies named relative to it and the
        sources as absolute paths (their provenance, whatever folder ran it)."""
        cfg = self.config
        d = cfg.to_dict()
        d["checkpoint"] = self.rel(self.checkpoint)
        d["source_checkpoint"] = _absolute(cfg.checkpoint) or "demo"
        d["data"] = self.rel(self.val_dir)
        d["calib_data"] = self.rel(self.calib_dir) if cfg.calib_data is None else _absolute(cfg.calib_data)
        d["source_data"] = _absolute(cfg.data)
        d["source_calib_data"] = _absolute(cfg.calib_data)
        d["calib_val_data"] = _absolute(cfg.calib_val_data)
        return d


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def read_result_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from the bundle, or None when it is missing, unreadable, not a bounded JSON object, or holds
    a number that is not finite (NaN, Infinity: no result carries one)."""
    try:
        data = read_json(path)
    except (OSError, ValueError, InputReadError):
        return None
    return data if isinstance(data, dict) and nonfinite_field(data) is None else None


def read_parity_result(path: Path) -> ParityResult | None:
    """A parity result in the bundle as the typed document, or None when there is none readable there (missing,
    unreadable, or not a parity result this rfdeploy reads)."""
    doc = read_result_json(path)
    try:
        return None if doc is None else ParityResult.from_dict(doc, str(path))
    except DataError:
        return None


def read_bench_result(path: Path) -> BenchResult | None:
    """A bench result in the bundle as the typed document, or None (as ``read_parity_result``)."""
    doc = read_result_json(path)
    try:
        return None if doc is None else BenchResult.from_dict(doc, str(path))
    except DataError:
        return None


def load_bundle_config(bundle: Path) -> dict[str, Any]:
    """The settings a bundle was made with (for ``--resume``), paths resolved against the bundle."""
    path = bundle / CONFIG_FILE
    if not bundle.exists():
        raise DataError(f"--resume {bundle}: no such bundle folder. Pass the folder a pipeline wrote (its -o)")
    doc = read_result_json(path)
    if doc is None and (path.exists() or path.is_symlink()):
        try:
            read_json(path)
            reason = "not a JSON object with finite numbers"
        except (OSError, ValueError, InputReadError) as exc:
            reason = printable(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
        raise DataError(f"{printable(path)}: unreadable bundle config ({reason}). Run the pipeline again with -o")
    if doc is None:
        raise UsageError(f"{bundle} is not a pipeline bundle (no readable {CONFIG_FILE}). Pass -o BUNDLE to make one")
    bundle_only = ("checkpoint", "data", "calib_data", "source_checkpoint", "source_data", "source_calib_data")
    settings = {k: v for k, v in doc.items() if k not in bundle_only}
    src = doc.get("source_checkpoint")
    if src and src != "demo":
        settings["checkpoint"] = src
    calib = doc["source_calib_data"] if "source_calib_data" in doc else doc.get("calib_data")
    if calib and ("source_calib_data" in doc or not str(calib).startswith("data/")):
        settings["calib_data"] = calib
    data = doc.get("source_data")
    if data:
        settings["data"] = data
    return validate_settings(settings, where=f"{path}: ")


def check_bundle_path(bundle: Path, inputs: list[Path | None]) -> None:
    """Refuse (exit 2) a bundle path that is a file, an input, or cannot be written, before any work."""
    probe_output(bundle, inputs=inputs, what="-o", kind="dir")
    for folder in inputs:
        if folder is not None and Path(folder).is_dir() and is_inside(bundle, Path(folder)):
            raise UsageError(
                f"-o {bundle} is inside the input folder {folder}: the bundle would be copied into itself. "
                "Choose a bundle folder outside it"
            )
