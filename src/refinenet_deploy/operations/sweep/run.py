"""``rfdeploy sweep``: sizes x targets over one folder, on the pipeline's keyed, resumable step machinery.

Steps (each keyed by its inputs' digests and its settings, ``pipeline.bundle``): the checkpoint and the data, one
dynamic ONNX export, the Q/DQ INT8 ONNX and one IR per OpenVINO precision where a target needs them, one engine
per (size, TensorRT target), then a cell per (size, target) and the reference row (PyTorch FP32 at the data's full
resolution). A second run skips every step whose key and outputs are unchanged; a run killed mid-way resumes at
the step it was in. Cells this machine cannot run (a GPU, a Jetson) stay pending with the commands that finish
them: ``rfdeploy sweep FOLDER --resume`` on the device runs them and the next report merges them into the front.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...artifacts import staged_dir, write_json_atomic
from ...errors import DataError, RefineNetDeployError, UsageError
from ...results.sweep import CellMeasurement, SweepDocument
from ..pipeline import capabilities as caps
from ..pipeline.bundle import BundleLock, BundleState, digest_path, step_key
from ..pipeline.config import Target
from ..pipeline.layout import FolderLayout
from . import measure as _measure
from .plan import DEMO_DATA_SIZE, SweepSettings

SETTINGS_FILE = "sweep-settings.json"
REFERENCE = "cpu-torch-fp32"
Progress = Callable[[str], None]


@dataclass
class SweepStep:
    id: str
    title: str
    inputs: dict[str, Path]
    settings: dict[str, Any]
    outputs: list[Path]
    action: Callable[[], Any]
    needs: tuple[str, ...] = ()  # step ids whose outputs this step reads
    blocked: str | None = None  # why this machine cannot run it (None: it can)
    commands: list[str] = field(default_factory=list)
    unreadable: Callable[[], str | None] | None = None  # why its recorded output does not read (None: it reads)


@dataclass(frozen=True)
class Cell:
    target: Target
    requested: str  # the size as asked ("96", "256x320"); "full" for the reference
    size: tuple[int, int] | None  # None: each image at its own size (the reference row)

    @property
    def name(self) -> str:
        size = "full" if self.size is None else f"{self.size[0]}x{self.size[1]}"
        return f"{self.target.name}@{size}"


@dataclass
class StepStatus:
    status: str  # done | pending | failed
    reason: str | None = None
    commands: list[str] = field(default_factory=list)
    error: RefineNetDeployError | None = None


class Sweep(FolderLayout):
    def __init__(
        self,
        settings: SweepSettings,
        folder: str | Path,
        *,
        progress: Progress | None = None,
        warn: Progress | None = None,
        command: str = "",
        here: caps.Capabilities | None = None,
    ) -> None:
        self.settings, self.folder = settings, Path(folder)
        self.progress = progress or (lambda _m: None)
        self.warn = warn or (lambda _m: None)
        self.command = command
        self.here = here or caps.Capabilities.detect()
        self._data_hw: tuple[int, int] | None = None

    # ----------------------------------------------------------------------------------------- layout
    @property
    def root(self) -> Path:
        return self.folder

    @property
    def checkpoint_setting(self) -> str | None:
        return self.settings.checkpoint

    @property
    def calib_dir(self) -> Path:
        return Path(self.settings.calib_data) if self.settings.calib_data else self.p("data", "calib")

    @property
    def onnx(self) -> Path:
        return self.p("models", "model.onnx")

    @property
    def onnx_int8(self) -> Path:
        return self.p("models", "model.int8.onnx")

    def artifact_for(self, t: Target, size: tuple[int, int] | None) -> Path:
        if t.runtime == "onnxruntime":
            return self.onnx_int8 if t.precision == "int8" else self.onnx
        if t.runtime == "openvino":  # one IR per precision (size None), reshaped to each size
            name = "model.xml" if size is None else f"model-{size[0]}x{size[1]}.xml"
            return self.p("models", f"openvino-{t.precision}", name)
        if t.runtime == "torch":
            return self.checkpoint
        return self.p("engines", t.name, f"model-{size[0]}x{size[1]}.engine")

    def cell_json(self, cell: Cell) -> Path:
        return self.p("cells", cell.target.name, f"{cell.name.split('@')[1]}.json")

    # ----------------------------------------------------------------------------------------- sizes
    def data_size(self) -> tuple[int, int]:
        """(H, W) of the first validation image: the folder's copy, else the source, else the demo's scenes."""
        if self._data_hw is None:
            self._data_hw = self._read_data_size()
        return self._data_hw

    def _read_data_size(self) -> tuple[int, int]:
        for folder in (self.val_dir, Path(self.settings.data) if self.settings.data else None):
            if folder is not None and folder.is_dir():
                from ...data.datasets import open_dataset

                ds = open_dataset(folder)
                if len(ds):
                    image = ds[0][1]
                    return int(image.shape[0]), int(image.shape[1])
        if self.settings.data:
            raise UsageError(f"--data {self.settings.data}: no images found. Pass a labelled image folder")
        return DEMO_DATA_SIZE

    def cells(self) -> list[Cell]:
        hw = self.data_size()
        out = []
        for spec in self.settings.size_specs:
            size = spec.resolve(hw)
            for t in self.settings.target_list:
                cell = Cell(t, spec.text, size)
                if cell.name not in {c.name for c in out}:  # two spellings of one size: measured once
                    out.append(cell)
        return out

    # ----------------------------------------------------------------------------------------- plan
    def plan(self) -> list[SweepStep]:
        from .steps import plan_steps

        return plan_steps(self)

    # ----------------------------------------------------------------------------------------- run
    def run(self) -> SweepResult:
        self.folder.mkdir(parents=True, exist_ok=True)
        with BundleLock(self.folder) as lock:
            if lock.stale_taken_over:
                self.warn(f"took over a sweep lock left by a run that is gone ({lock.stale_taken_over})")
            return self._run_locked()

    def _run_locked(self) -> SweepResult:
        state = BundleState(self.folder)
        write_json_atomic(self.p(SETTINGS_FILE), self.settings_record())
        steps = self.plan()
        result = SweepResult(self.folder)
        for i, step in enumerate(steps, 1):
            label = f"[{i}/{len(steps)}] {step.id}"
            status = self._run_step(state, step, result)
            result.status[step.id] = status
            if status.status != "done":
                self.progress(f"{label}: {status.status} ({status.reason})")
            else:
                self.progress(f"{label}: {'up to date' if step.id in result.skipped else 'done'}")
        from .report import write_outputs

        result.document, result.files = write_outputs(self, steps, result)
        return result

    def _run_step(self, state: BundleState, step: SweepStep, result: SweepResult) -> StepStatus:
        digests = _digests(step)
        key = None if digests is None else step_key(step.id, step.settings, digests)
        if state.is_current(step.id, key, step.outputs):
            why = step.unreadable() if step.unreadable else None
            if why is None:
                result.skipped.append(step.id)
                return StepStatus("done")
            self.warn(f"{step.id}: its recorded result does not read ({why}); measuring it again")
        upstream = [result.status[n] for n in step.needs if n in result.status and result.status[n].status != "done"]
        if upstream:
            first = upstream[0]
            return StepStatus(first.status, first.reason, list(first.commands), first.error)
        if step.blocked is not None or digests is None:
            reason = step.blocked or "its inputs are not in the folder"
            return StepStatus("pending", reason, [*step.commands, "rfdeploy sweep . --resume"])
        started = time.perf_counter()
        try:
            step.action()
        except RefineNetDeployError as exc:
            return StepStatus("failed", exc.message, error=exc)
        seconds = round(time.perf_counter() - started, 1)
        state.record(step.id, key or "", [o for o in step.outputs if o.exists()], info={"seconds": seconds})
        result.ran.append(step.id)
        return StepStatus("done")

    def settings_record(self) -> dict[str, Any]:
        d = self.settings.to_dict()
        for key in ("checkpoint", "data", "calib_data"):
            if d.get(key):
                d[key] = str(Path(d[key]).resolve())
        return d

    # ----------------------------------------------------------------------------------------- step helpers
    def copy_file(self, src: Path, dest: Path) -> None:
        if not src.is_file():
            raise UsageError(f"checkpoint not found: {src}. Check the path")
        with staged_dir(dest.parent, "copy") as tmp:
            tmp.mkdir()
            shutil.copyfile(src, tmp / dest.name)

    def synth_data(self, out: Path, num: int, seed: int, split: str) -> None:
        from ...data.synth import write_synth_dataset

        with staged_dir(out, "synth") as tmp:
            write_synth_dataset(tmp, num, *DEMO_DATA_SIZE, seed, split=split)

    def copy_data(self, src: Path, out: Path) -> None:
        if not src.is_dir():
            raise UsageError(f"--data: not a folder: {src}")
        from ...data.datasets import copy_data_folder

        with staged_dir(out, "copy") as tmp:
            copy_data_folder(src, tmp)

    def measure(self, cell: Cell, device: str) -> None:
        s = self.settings
        measured = _measure.measure_cell(
            self.artifact_for(cell.target, cell.size),
            device=device,
            size=cell.size,
            data=self.val_dir,
            num_images=s.val_images,
            warmup=s.warmup,
            max_warmup=s.max_warmup,
            iterations=s.iterations,
            threads=s.threads,
        )
        doc = {"cell": cell.name, **measured.to_dict()}
        CellMeasurement.parse(doc, self.cell_json(cell))  # write only what reads back (no NaN, every field)
        write_json_atomic(self.cell_json(cell), doc)


@dataclass
class SweepResult:
    folder: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    status: dict[str, StepStatus] = field(default_factory=dict)
    document: SweepDocument | None = None  # written at the end of a run
    files: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        errors = [s.error for s in self.status.values() if s.error is not None]
        return errors[0].exit_code if errors else 0


def _digests(step: SweepStep) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for name, path in step.inputs.items():
        d = digest_path(path)
        if d is None:
            return None
        out[name] = d
    return out


def unreadable_cell(path: Path) -> str | None:
    """Why a cell's file does not read, or None when it does."""
    read = read_cell(path)
    return read if isinstance(read, str) else None


def read_cell(path: Path) -> CellMeasurement | str:
    """A cell's numbers, or why its file cannot be read (missing, not JSON, a field of the wrong kind)."""
    if not path.is_file():
        return f"its result file {path.name} is missing"
    try:
        return CellMeasurement.read(path)
    except DataError as exc:
        return exc.message


__all__ = ["REFERENCE", "SETTINGS_FILE", "Cell", "Sweep", "SweepResult", "SweepStep", "read_cell", "unreadable_cell"]
