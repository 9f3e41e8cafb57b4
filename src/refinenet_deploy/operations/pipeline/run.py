"""``rfdeploy pipeline``: a checkpoint to a validated deployment bundle, one keyed step at a time.

The plan is a list of steps (data, export, reference, FP16/Q-DQ ONNX, then per target: build, parity, bench; last the
report and the manifest). Each step declares its inputs, settings and outputs; ``BundleState`` skips it when
nothing changed. A step this machine cannot do (no GPU, no TensorRT, not a Jetson, no PyTorch) leaves its target
"pending on device" with the exact commands that finish it; ``rfdeploy pipeline --resume BUNDLE`` on that device
runs them (no PyTorch needed there: parity reads the saved reference) and merges the results.
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ... import __version__
from ...artifacts import (
    is_inside,
    probe_output,
    read_metadata,
    sha256_file,
    sidecar_path,
    staged_dir,
    utc_now,
    write_json_atomic,
)
from ...errors import DataError, InputReadError, RefineNetDeployError, UsageError, nonfinite_field, printable, read_json
from ...validate.tolerances import Gates, tolerance_for
from ...validate.verdict import PASSED, Verdict, judge_parity_document
from . import capabilities as caps
from .bundle import BundleLock, BundleState, digest_path, step_key
from .config import CALIB_GUIDANCE, FEW_CALIB_IMAGES, TARGETS, PipelineConfig, Target, validate_settings

# package data (pyproject: tool.setuptools.package-data), so a wheel install has it too
DEMO_CHECKPOINT = Path(__file__).resolve().parents[2] / "demo" / "rf_lw_mbv2_synth.safetensors"
CONFIG_FILE = "pipeline.json"
MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA = "refinenet-deploy/bundle-manifest"
BASELINE = "cpu-torch-fp32"
PREDICTOR = "cpu-onnxruntime-int8"  # its parity predicts the device INT8 targets (the same Q/DQ ONNX)

Progress = Callable[[str], None]


@dataclass
class Step:
    """One unit of work. ``blocked`` says why this machine cannot do it (None: it can)."""

    id: str
    title: str
    inputs: dict[str, Path]
    settings: dict[str, Any]
    outputs: list[Path]
    action: Callable[[], dict[str, Any] | None]
    target: str | None = None
    blocked: str | None = None
    commands: list[str] = field(default_factory=list)
    baseline: bool = False  # a same-device PyTorch baseline: pending or failed, it blocks no target
    optional: bool = False  # a step nothing depends on (the CPU prediction): when it cannot run, it is skipped


@dataclass
class TargetOutcome:
    target: Target
    status: str = "done"  # done | pending on device | failed gate | gate not evaluated | failed
    reason: str | None = None
    commands: list[str] = field(default_factory=list)
    parity: dict[str, Any] | None = None
    bench: dict[str, Any] | None = None
    predicted: dict[str, Any] | None = None
    error: RefineNetDeployError | None = None


@dataclass
class PipelineResult:
    bundle: Path
    outcomes: list[TargetOutcome]
    ran: list[str]
    skipped: list[str]
    imported: list[str]
    baseline: dict[str, Any] | None
    report: list[Path]
    manifest: Path
    failed_step: str | None = None  # a step every target needed (export, calibrate, ...) that failed
    shared_error: RefineNetDeployError | None = None  # its error
    gpu_baselines: dict[str, dict[str, Any]] = field(default_factory=dict)  # same-GPU PyTorch baselines by name

    @property
    def exit_code(self) -> int:
        if self.shared_error is not None:  # whatever older results the targets still show
            return self.shared_error.exit_code
        errors = [o.error for o in self.outcomes if o.error is not None]
        if any(o.status == "failed gate" for o in self.outcomes):
            return 3
        return errors[0].exit_code if errors else 0


class Pipeline:
    def __init__(
        self,
        config: PipelineConfig,
        bundle: str | Path,
        *,
        force: bool = False,
        progress: Progress | None = None,
        warn: Progress | None = None,
        command: str = "",
    ) -> None:
        self.config = config
        self.bundle = Path(bundle)
        self.force = force
        self.progress = progress or (lambda _msg: None)
        self.warn = warn or (lambda _msg: None)
        self.command = command
        self.here = caps.Capabilities.detect()

    # ----------------------------------------------------------------------------------------- layout
    def p(self, *parts: str) -> Path:
        return self.bundle.joinpath(*parts)

    @property
    def checkpoint(self) -> Path:
        return self.p("checkpoint", Path(self.config.checkpoint or DEMO_CHECKPOINT).name)

    @property
    def val_dir(self) -> Path:
        return self.p("data", "val")

    @property
    def calib_dir(self) -> Path:
        return self.p("data", "calib") if self.config.calib_data is None else Path(self.config.calib_data)

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

    def target_dir(self, name: str) -> Path:
        return self.p("targets", name)

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.bundle.resolve()).as_posix()
        except ValueError:
            return str(path)

    # ----------------------------------------------------------------------------------------- plan
    def plan(self) -> list[Step]:
        cfg, targets = self.config, self.config.target_list
        steps: list[Step] = []
        source_ckpt = Path(cfg.checkpoint) if cfg.checkpoint else DEMO_CHECKPOINT
        steps.append(
            Step(
                "checkpoint",
                f"copy the checkpoint {source_ckpt.name} into the bundle",
                {"checkpoint": source_ckpt},
                {},
                [self.checkpoint],
                lambda: self._copy_file(source_ckpt, self.checkpoint),
            )
        )
        steps.append(self._data_step("val", cfg.data, cfg.synth_val_images, seed=cfg.seed + 7, split="val"))
        need_int8 = any(t.precision == "int8" for t in targets)
        if need_int8 and cfg.calib_data is None:
            steps.append(self._data_step("calib", None, cfg.synth_calib_images, seed=cfg.seed + 11, split="train"))
        steps.append(self._export_step())
        steps.append(self._reference_step())
        need_qdq = any(t.precision == "int8" and t.runtime != "openvino" for t in targets)
        need_fp16 = any(t.precision == "fp16" and t.device in ("gpu", "jetson") and t.engine for t in targets)
        if need_fp16:
            steps.append(self._fp16_step())
        if need_qdq:
            steps.append(self._calibrate_step())
        for t in targets:
            steps += self._target_steps(t)
        names = {t.name for t in targets}
        if any(t.precision == "int8" and t.device != "cpu" for t in targets) and PREDICTOR not in names:
            steps.append(self._predict_step())
        if caps.has_torch():
            steps.append(self._bench_step(BASELINE, self.checkpoint, device="cpu"))
        if any(t.device == "gpu" for t in targets):
            steps += [self._gpu_baseline_step(name) for name in caps.GPU_BASELINES]
        return steps

    def _gpu_baseline_step(self, name: str) -> Step:
        """A same-GPU PyTorch baseline (``caps.GPU_BASELINES``): run where the GPU targets run."""
        from .config import TARGETS

        step = self._bench_step(name, self.checkpoint, device="gpu", kwargs=caps.GPU_BASELINES[name])
        step.title = f"latency of {caps.GPU_BASELINE_TITLES[name]}"
        step.blocked = self.here.why_cannot_run(TARGETS["gpu-torch-fp16"])
        step.baseline = True
        return step

    # ----------------------------------------------------------------------------------------- steps: shared
    def _copy_file(self, src: Path, dest: Path) -> None:
        if not src.is_file():
            raise UsageError(f"checkpoint not found: {src}")
        with staged_dir(dest.parent, "copy") as tmp:
            tmp.mkdir()
            if dest.parent.is_dir():
                for f in dest.parent.iterdir():
                    if f.name != dest.name:
                        shutil.copy2(f, tmp / f.name)
            shutil.copyfile(src, tmp / dest.name)

    def _data_step(self, name: str, source: str | None, num: int, *, seed: int, split: str) -> Step:
        out = self.p("data", name)
        h, w = self.config.input_size
        if source is not None:
            src = Path(source)

            def copy() -> None:
                if not src.is_dir():
                    raise UsageError(f"--data: not a folder: {src}")
                from ...data.datasets import copy_data_folder

                with staged_dir(out, "copy") as tmp:
                    skipped = copy_data_folder(src, tmp)  # what the readers read; the rest skipped with a warning
                if skipped:
                    self.warn(
                        f"{name} data: skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} that "
                        "are not regular files (see the warnings above)"
                    )

            return Step(
                f"data:{name}",
                f"copy the {name} images into the bundle",
                {"data": src},
                {},
                [out],
                copy,
            )

        def synth() -> None:
            from ...data.synth import write_synth_dataset

            with staged_dir(out, "synth") as tmp:
                write_synth_dataset(tmp, num, h, w, seed, split=split)

        settings = {"num": num, "size": [h, w], "seed": seed, "split": split}
        return Step(
            f"data:{name}", f"synthesise {num} {name} scenes ({h}x{w}, seed {seed})", {}, settings, [out], synth
        )

    def _export_step(self) -> Step:
        h, w = self.config.input_size
        settings = {"arch": self.config.arch, "input_size": [h, w], "simplify": "auto", "verify_images": 4}

        def run() -> dict[str, Any]:
            from ...backends.torch.exporter import ExportSpec
            from ..export import export_onnx

            spec = ExportSpec(
                arch=self.config.arch,
                input_size=(h, w),
                data=str(self.val_dir),
                trt_check=False,  # the pipeline builds its engines itself
            )
            export_onnx(self.checkpoint, self.onnx, spec, command=self.command)
            return {}

        return Step(
            "export",
            f"export the ONNX at {h}x{w}, verified against PyTorch",
            {"checkpoint": self.checkpoint, "val": self.val_dir},
            settings,
            [self.onnx, sidecar_path(self.onnx)],
            run,
            blocked=None if caps.has_torch() else "needs PyTorch (pip install 'refinenet-deploy[export]')",
        )

    def _parity_settings(self) -> dict[str, Any]:
        return {"num_images": self.config.val_images, "scales": [1.0], "flip": False}

    def _reference_step(self) -> Step:
        def run() -> dict[str, Any]:
            from ..parity import save_reference

            save_reference(
                self.checkpoint,
                self.val_dir,
                self.reference,
                num_images=self.config.val_images,
                input_size=self.config.input_size,
                reference_logits=True,
            )
            return {}

        return Step(
            "reference",
            "the PyTorch reference on the validation images (computed once; parity on devices reads it)",
            {"checkpoint": self.checkpoint, "val": self.val_dir},
            {**self._parity_settings(), "input_size": list(self.config.input_size)},
            [self.reference],
            run,
            blocked=None if caps.has_torch() else "needs PyTorch (pip install 'refinenet-deploy[export]')",
        )

    def _fp16_step(self) -> Step:
        def run() -> dict[str, Any]:
            from ...artifacts import sidecar, staged_artifact
            from ...enums import Precision
            from ..build_trt import embed_metadata, fp16_onnx

            with staged_artifact(self.onnx_fp16, "fp16") as stage:
                record = fp16_onnx(self.onnx, stage.model)
                meta = sidecar(
                    "onnx", Precision.FP16, source=read_metadata(self.onnx), command=self.command, conversion=record
                )
                embed_metadata(stage.model, meta)
                stage.commit(meta)
            return record

        return Step(
            "onnx:fp16",
            "the FP16 ONNX (FP32 inputs/outputs) that TensorRT builds strongly typed",
            {"onnx": self.onnx},
            {},
            [self.onnx_fp16, sidecar_path(self.onnx_fp16)],
            run,
            blocked=None if caps.has_module("onnxconverter_common") else "needs onnxconverter-common ([export])",
        )

    def _calibrate_step(self) -> Step:
        cfg = self.config

        def run() -> dict[str, Any]:
            from ..calibrate import calibrate_onnx

            if cfg.calib_images < FEW_CALIB_IMAGES:
                self.warn(f"{cfg.calib_images} calibration images (default {FEW_CALIB_IMAGES}): {CALIB_GUIDANCE}")
            calibrate_onnx(
                self.onnx,
                self.calib_dir,
                self.onnx_int8,
                num_images=cfg.calib_images,
                producer=cfg.calib_producer,
                method=cfg.calib_method,
                command=self.command,
                min_agreement=cfg.min_agreement,  # the self-check uses the gate the user set, if any
                **self._fallback_kwargs(),
                report=self.progress,
            )
            return {}

        blocked = (
            None if caps.has_module("modelopt") or cfg.calib_producer == "onnxruntime" else "needs nvidia-modelopt"
        )
        from ..calibrate import calibration_manifest_path

        what = f"{cfg.calib_producer}, {cfg.calib_method or 'its default method'}, {cfg.calib_images} images"
        if cfg.calib_max_miou_drop is not None:
            what += f", float fallback to at most {cfg.calib_max_miou_drop:g} pt"
        return Step(
            "calibrate",
            f"the Q/DQ INT8 ONNX ({what})",
            {"onnx": self.onnx, "calib": self.calib_dir, **self._fallback_inputs()},
            {
                "num_images": cfg.calib_images,
                "producer": cfg.calib_producer,
                "method": cfg.calib_method,
                "min_agreement": cfg.min_agreement,
                **self._fallback_settings(),
            },
            [self.onnx_int8, sidecar_path(self.onnx_int8), calibration_manifest_path(self.onnx_int8)],
            run,
            blocked=blocked,
        )

    @property
    def predicted_parity(self) -> Path:
        return self.p("predicted", "int8-onnxruntime-cpu.parity.json")

    def _predict_step(self) -> Step:
        """The Q/DQ ONNX that the device INT8 targets build from, run in ONNX Runtime on this CPU against the
        reference: their accuracy predicted before anyone flashes a device (when cpu-onnxruntime-int8 is not a
        target; its parity is the same measurement)."""
        out = self.predicted_parity

        def run() -> dict[str, Any]:
            from ..parity import validate_parity

            report = validate_parity(
                self.reference,
                self.onnx_int8,
                self.val_dir,
                num_images=self.config.val_images,
                max_miou_drop=self.config.max_miou_drop,
                min_agreement=self.config.min_agreement,
            )
            doc = report.to_dict()
            doc["artifact"] = self.rel(self.onnx_int8)
            doc["data"] = self.rel(self.val_dir)
            if isinstance(doc.get("reference"), dict) and doc["reference"].get("path"):
                doc["reference"]["path"] = self.rel(Path(doc["reference"]["path"]))
            write_json_atomic(out, doc)
            return {}

        return Step(
            "predict:int8",
            "predict the device INT8 targets' accuracy: the Q/DQ ONNX in ONNX Runtime on this CPU",
            {"reference": self.reference, "artifact": self.onnx_int8, "val": self.val_dir},
            {**self._parity_settings(), "gates": [self.config.max_miou_drop, self.config.min_agreement]},
            [out],
            run,
            optional=True,
        )

    @property
    def calib_val_dir(self) -> Path:
        """The images the accuracy-aware fallback measures its mIoU drop on (default: the calibration images)."""
        return self.calib_dir if self.config.calib_val_data is None else Path(self.config.calib_val_data)

    def _fallback_kwargs(self) -> dict[str, Any]:
        cfg = self.config
        if cfg.calib_max_miou_drop is None:
            return {}
        return {
            "max_miou_drop": cfg.calib_max_miou_drop,
            "val_data": self.calib_val_dir,
            "val_images": cfg.calib_val_images,
        }

    def _fallback_inputs(self) -> dict[str, Path]:
        return {"calib_val": self.calib_val_dir} if self.config.calib_max_miou_drop is not None else {}

    def _fallback_settings(self) -> dict[str, Any]:
        cfg = self.config
        if cfg.calib_max_miou_drop is None:
            return {}
        return {"max_miou_drop": cfg.calib_max_miou_drop, "val_images": cfg.calib_val_images}

    # ----------------------------------------------------------------------------------------- steps: targets
    def artifact_for(self, t: Target) -> Path:
        if t.runtime == "onnxruntime":
            return self.onnx_int8 if t.precision == "int8" else self.onnx
        if t.runtime == "torch":
            return self.checkpoint
        suffix = ".xml" if t.runtime == "openvino" else ".engine"
        return self.target_dir(t.name) / f"model{suffix}"

    def _target_steps(self, t: Target) -> list[Step]:
        steps: list[Step] = []
        artifact = self.artifact_for(t)
        if t.runtime == "openvino":
            steps.append(self._openvino_step(t, artifact))
        elif t.engine:
            steps.append(self._trt_step(t, artifact))
        device = caps.DEVICE_OF[t.device]
        steps.append(self._parity_step(t, artifact, device))
        steps.append(self._bench_step(t.name, artifact, device=device, target=t))
        return steps

    def _openvino_step(self, t: Target, out: Path) -> Step:
        cfg = self.config

        def run() -> dict[str, Any]:
            from ..build_openvino import convert_openvino

            kwargs: dict[str, Any] = {}
            if t.precision == "int8":  # the self-check uses the gate the user set, if any
                kwargs = {
                    "data": self.calib_dir,
                    "num_images": cfg.calib_images,
                    "min_agreement": self.gates_for(t).min_agreement if cfg.min_agreement is not None else None,
                    **self._fallback_kwargs(),
                }
            convert_openvino(self.onnx, out, precision=t.precision, command=self.command, **kwargs)
            return {}

        inputs = {"onnx": self.onnx}
        settings: dict[str, Any] = {"precision": t.precision}
        if t.precision == "int8":
            inputs["calib"] = self.calib_dir
            settings["num_images"] = cfg.calib_images
            settings["min_agreement"] = cfg.min_agreement
            settings.update(self._fallback_settings())
            inputs.update(self._fallback_inputs())
        return Step(
            f"build:{t.name}",
            f"build the OpenVINO IR ({t.precision})",
            inputs,
            settings,
            [out, out.with_suffix(".bin"), sidecar_path(out)],
            run,
            target=t.name,
            blocked=None
            if caps.has_module("openvino")
            else "needs OpenVINO (pip install 'refinenet-deploy[openvino]')",
        )

    def _engine_source(self, t: Target) -> Path:
        if t.precision == "int8":
            return self.onnx_int8
        return self.onnx if t.device == "rtx" else self.onnx_fp16

    def trt_command(self, t: Target) -> list[str]:
        source, out = self._engine_source(t), self.artifact_for(t)
        argv = ["rfdeploy", "build", "trt", self.rel(source), f"--{t.precision}", "-o", self.rel(out)]
        argv += ["--library", "tensorrt-rtx" if t.device == "rtx" else "tensorrt"]
        if t.runtime == "dla":
            h, w = self.config.input_size
            argv += ["--dla-core", "0", "--gpu-fallback", "--input-size", f"{h}x{w}"]
        return argv

    def _trt_step(self, t: Target, out: Path) -> Step:
        source = self._engine_source(t)

        def run() -> dict[str, Any]:
            from ..build_trt import build_engine

            h, w = self.config.input_size
            build_engine(
                source,
                out,
                precision=t.precision,
                library="tensorrt-rtx" if t.device == "rtx" else "tensorrt",
                dla_core=0 if t.runtime == "dla" else None,
                gpu_fallback=True,
                input_size=(h, w) if t.runtime == "dla" else None,
                command=" ".join(self.trt_command(t)),
            )
            return {}

        blocked = self.here.why_cannot_build(t)
        return Step(
            f"build:{t.name}",
            f"build the {'TensorRT-RTX' if t.device == 'rtx' else 'TensorRT'} engine ({t.precision})",
            {"onnx": source},
            {"precision": t.precision, "runtime": t.runtime, "device": t.device},
            [out, sidecar_path(out)],
            run,
            target=t.name,
            blocked=blocked,
            commands=[_join(self.trt_command(t))],
        )

    def parity_command(self, t: Target, artifact: Path, device: str) -> list[str]:
        argv = ["rfdeploy", "parity", self.rel(self.reference), self.rel(artifact), "--data", self.rel(self.val_dir)]
        if t.runtime == "torch":
            argv += ["--device", device, "--precision", t.precision]
        if self.config.max_miou_drop is not None:  # the bundle's gates travel with the command
            argv += ["--max-miou-drop", f"{self.config.max_miou_drop:g}"]
        if self.config.min_agreement is not None:
            argv += ["--min-agreement", f"{self.config.min_agreement:g}"]
        argv += ["--json", self.rel(self.target_dir(t.name) / "parity.json")]
        return argv

    def _parity_step(self, t: Target, artifact: Path, device: str) -> Step:
        out = self.target_dir(t.name) / "parity.json"

        def run() -> dict[str, Any]:
            from ..parity import validate_parity

            report = validate_parity(
                self.reference,
                artifact,
                self.val_dir,
                num_images=self.config.val_images,
                max_miou_drop=self.config.max_miou_drop,
                min_agreement=self.config.min_agreement,
                **caps.parity_device_kwargs(t, device),
            )
            doc = report.to_dict()
            doc["artifact"] = self.rel(artifact)
            doc["data"] = self.rel(self.val_dir)
            if isinstance(doc.get("reference"), dict) and doc["reference"].get("path"):
                doc["reference"]["path"] = self.rel(Path(doc["reference"]["path"]))
            doc["target"] = t.name
            write_json_atomic(out, doc)
            return {"passed": report.passed}

        return Step(
            f"parity:{t.name}",
            "parity against the PyTorch reference",
            {"reference": self.reference, "artifact": artifact, "val": self.val_dir},
            {**self._parity_settings(), "gates": [self.config.max_miou_drop, self.config.min_agreement]},
            [out],
            run,
            target=t.name,
            blocked=self.here.why_cannot_run(t),
            commands=[_join(self.parity_command(t, artifact, device))],
        )

    def bench_command(self, name: str, artifact: Path, device: str, kwargs: dict[str, Any]) -> list[str]:
        h, w = self.config.input_size
        argv = ["rfdeploy", "bench", self.rel(artifact), "--device", device, "--input-size", f"{h}x{w}"]
        argv += caps.bench_flags(kwargs)
        argv += ["--warmup", str(self.config.warmup), "--iterations", str(self.config.iterations)]
        return [*argv, "--json", self.rel(self.target_dir(name) / "bench.json")]

    def _bench_step(
        self,
        name: str,
        artifact: Path,
        *,
        device: str,
        target: Target | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> Step:
        out = self.target_dir(name) / "bench.json"
        cfg = self.config
        options = kwargs if kwargs is not None else caps.bench_device_kwargs(target, device)

        def run() -> dict[str, Any]:
            from ..bench import benchmark

            doc = benchmark(
                artifact,
                device=device,
                input_size=cfg.input_size,
                warmup=cfg.warmup,
                iterations=cfg.iterations,
                **options,
            )
            doc["artifact"] = self.rel(artifact)
            doc["target"] = name
            write_json_atomic(out, doc)
            return {}

        return Step(
            f"bench:{name}",
            "latency" + (" of the PyTorch baseline" if target is None else ""),
            {"artifact": artifact},
            {
                "input_size": list(cfg.input_size),
                "warmup": cfg.warmup,
                "iterations": cfg.iterations,
                "device": device,
                **({"options": options} if options else {}),
            },
            [out],
            run,
            target=target.name if target else None,
            blocked=self.here.why_cannot_run(target) if target else None,
            commands=[_join(self.bench_command(name, artifact, device, options))],
        )

    # ----------------------------------------------------------------------------------------- run
    def run(self) -> PipelineResult:
        if not self.bundle.exists():
            self._preflight()  # a new bundle is only made for inputs that load: a bad checkpoint leaves nothing
        self.bundle.mkdir(parents=True, exist_ok=True)
        with BundleLock(self.bundle) as lock:
            if lock.stale_taken_over and lock.stale_taken_over.get("unreadable"):
                self.warn(f"took over an unreadable pipeline lock ({lock.stale_taken_over['unreadable']})")
            elif lock.stale_taken_over:
                self.warn(f"took over a lock left by a pipeline that is gone (pid {lock.stale_taken_over.get('pid')})")
            return self._run_locked()

    def _preflight(self) -> None:
        """Load the user's checkpoint once before anything is written (CheckpointError, exit 5, otherwise)."""
        if self.config.checkpoint is None or not caps.has_torch():
            return
        from ...models import load_model

        load_model(self.config.checkpoint, arch=self.config.arch)

    def _run_locked(self) -> PipelineResult:
        state = BundleState(self.bundle)
        self.pending_baselines: list[Step] = []
        write_json_atomic(self.p(CONFIG_FILE), self._bundle_config())
        steps = self.plan()
        ran: list[str] = []
        skipped: list[str] = []
        imported: list[str] = []
        failed_targets: dict[str, RefineNetDeployError] = {}
        failed_shared: RefineNetDeployError | None = None
        failed_step: str | None = None
        pending: dict[str, list[Step]] = {}
        for i, step in enumerate(steps, 1):
            label = f"[{i}/{len(steps)}] {step.id}"
            if step.target and step.target in failed_targets:
                continue
            if failed_shared is not None:
                continue  # a step every target needs failed: nothing after it can be trusted
            digests = self._digests(step)
            key = None if digests is None else step_key(step.id, step.settings, digests)
            if not self.force and state.is_current(step.id, key, step.outputs):
                skipped.append(step.id)
                self.progress(f"{label}: up to date")
                continue
            if step.optional and (step.blocked is not None or digests is None):
                self.progress(f"{label}: skipped ({step.blocked or 'its inputs are not in the bundle'})")
                continue
            if step.blocked is not None or digests is None:
                if self._import_result(state, step, key):
                    imported.append(step.id)
                    self.progress(f"{label}: imported {', '.join(self.rel(o) for o in step.outputs)}")
                    continue
                if step.baseline:
                    self.pending_baselines.append(step)
                    self.progress(f"{label}: pending on device ({step.blocked or 'inputs not in the bundle'})")
                    continue
                if step.target is not None:
                    pending.setdefault(step.target, []).append(step)
                    self.progress(f"{label}: pending on device ({step.blocked or 'inputs not in the bundle'})")
                    continue
                if step.blocked is not None and all(o.exists() for o in step.outputs):
                    skipped.append(step.id)  # done elsewhere; this machine cannot redo it
                    self.progress(f"{label}: kept (this machine {step.blocked})")
                    continue
                err = UsageError(
                    f"step {step.id} cannot run here ({step.blocked or 'its inputs are missing'}) and the bundle "
                    "has no result for it"
                )
                if failed_shared is None:
                    failed_shared, failed_step = err, step.id
                self.progress(f"{label}: cannot run: {err.message}")
                continue
            self.progress(f"{label}: {step.title}")
            started = time.perf_counter()
            try:
                info = step.action() or {}
            except RefineNetDeployError as exc:
                self.progress(f"{label}: failed: {exc.message}")
                if step.baseline:
                    self.warn(f"{step.id}: the baseline could not be timed ({exc.message}); speed-ups against it: none")
                    continue
                if step.optional:
                    self.warn(f"{step.id}: {exc.message}")
                elif step.target is not None:
                    failed_targets[step.target] = exc
                else:
                    failed_shared, failed_step = exc, step.id
                continue
            info["seconds"] = round(time.perf_counter() - started, 1)
            state.record(step.id, key or "", [o for o in step.outputs if o.exists()], info=info)
            ran.append(step.id)
            self.progress(f"{label}: done in {info['seconds']:.1f} s")
        outcomes = self._outcomes(pending, failed_targets, failed_shared)
        baseline = _read_json(self.target_dir(BASELINE) / "bench.json")
        self.gpu_baselines = {
            name: doc for name in caps.GPU_BASELINES if (doc := _read_json(self.target_dir(name) / "bench.json"))
        }
        report = self._report(state, outcomes, baseline)
        manifest = self._manifest(state, outcomes)
        return PipelineResult(
            self.bundle,
            outcomes,
            ran,
            skipped,
            imported,
            baseline,
            report,
            manifest,
            failed_step,
            failed_shared,
            self.gpu_baselines,
        )

    def _digests(self, step: Step) -> dict[str, str] | None:
        """Digests of the step's inputs; None when one that must travel is missing (then the recorded outputs
        are trusted if they still hash to what was recorded)."""
        digests: dict[str, str] = {}
        for name, path in step.inputs.items():
            d = digest_path(path)
            if d is None:
                return None
            digests[name] = d
        return digests

    def _import_result(self, state: BundleState, step: Step, key: str | None) -> bool:
        """A result JSON that another machine (or a person) put into the bundle for a step this machine cannot run."""
        if not step.id.startswith(("parity:", "bench:", "build:")) or not step.outputs:
            return False
        if not all(o.is_file() for o in step.outputs):
            return False
        rec = state.steps.get(step.id)
        if rec is not None and key is not None and rec.key not in (key, "imported"):
            # made (or imported) from other inputs: the ONNX, the reference or a setting changed since
            self.warn(
                f"{self.rel(step.outputs[0])}: made from inputs that have changed since; not used. Redo it on the "
                "device (the commands below)"
            )
            return False
        target = TARGETS.get(step.target or "")
        if step.id.startswith("build:") and target is not None:
            try:
                made = read_metadata(step.outputs[0]).get("precision")
            except RefineNetDeployError as exc:
                self.warn(f"{self.rel(step.outputs[0])}: {exc.message}; ignored")
                return False
            if made != target.precision:
                self.warn(
                    f"{self.rel(step.outputs[0])}: its sidecar says {made}, the target {target.name} is "
                    f"{target.precision}; ignored"
                )
                return False
        if step.id.startswith(("parity:", "bench:")):
            doc = _read_json(step.outputs[0])
            want = "parity" if step.id.startswith("parity:") else "bench"
            if not isinstance(doc, dict) or want not in str(doc.get("schema", "")):
                self.warn(f"{self.rel(step.outputs[0])}: not a {want} result from rfdeploy; ignored")
                return False
            why = self._baseline_mismatch(step, doc) if step.baseline else None
            why = why or (None if target is None else self._import_mismatch(target, doc, want))
            if why is not None:
                what = target.name if target is not None else step.id.split(":", 1)[1]
                self.warn(
                    f"{self.rel(step.outputs[0])}: not a result of {what} ({why}); ignored. Run the "
                    "commands below on the device"
                )
                return False
        state.record(step.id, key or "imported", step.outputs, how="imported")
        return True

    def _baseline_mismatch(self, step: Step, doc: dict[str, Any]) -> str | None:
        """Why a bench JSON put into the bundle is not the same-GPU baseline ``step`` times (None: it is): PyTorch on
        a GPU, at the baseline's precision, with (or without) a CUDA graph as the baseline says, of this checkpoint."""
        options = step.settings.get("options") or {}
        config = doc.get("runtime_config") or {}
        if doc.get("runtime") != "torch" or doc.get("device") != "gpu":
            return f"it ran in {doc.get('runtime')} on {doc.get('device')}, the baseline is PyTorch on a GPU"
        want = options.get("torch_precision", "fp32")
        if doc.get("inference_precision") != want:
            return f"it ran {doc.get('inference_precision')}, the baseline {want}"
        if bool(config.get("cuda_graph")) != bool(options.get("cuda_graph")):
            return "its CUDA-graph setting is not the baseline's"
        recorded = doc.get("artifact_sha256")
        if recorded is not None and (not self.checkpoint.is_file() or recorded != sha256_file(self.checkpoint)):
            return f"it measured another file than {self.rel(self.checkpoint)} (SHA-256 differs)"
        return None

    def _import_mismatch(self, t: Target, doc: dict[str, Any], kind: str) -> str | None:
        """Why a parity/bench JSON put into the bundle is not a result of target ``t`` (None: it is): it must be of
        the target's artifact in the bundle (SHA-256), runtime, device kind and precision, and a parity result must
        have been made from the bundle's reference."""
        runtime = {"trt": "tensorrt", "dla": "tensorrt"}.get(t.runtime, t.runtime)
        if doc.get("runtime") != runtime:
            return f"it ran in {doc.get('runtime')}, the target in {runtime}"
        device = {"dla": "dla", "trt": "gpu", "torch": caps.DEVICE_OF[t.device]}.get(t.runtime, "cpu")
        if doc.get("device") != device:
            return f"it ran on {doc.get('device')}, the target on {device}"
        jetson = doc.get("jetson") if kind == "parity" else "jetson" in (doc.get("fingerprint") or {})
        if t.device != "cpu" and jetson is None:
            return "it does not record whether it ran on a Jetson (an older rfdeploy made it)"
        if t.device != "cpu" and bool(jetson) != (t.device == "jetson"):
            return "it ran on a Jetson" if jetson else "it did not run on a Jetson"
        precision = doc.get("precision") if kind == "parity" else doc.get("artifact_precision", doc.get("precision"))
        if t.runtime == "torch" and kind == "bench":
            precision = doc.get("inference_precision") or precision
        if precision != t.precision:
            return f"it measured {precision}, the target is {t.precision}"
        artifact = self.artifact_for(t)
        recorded = doc.get("artifact_sha256")
        if kind == "parity" or recorded is not None:  # bench results do not record it yet
            if recorded is None:
                return "it does not record the SHA-256 of the artifact it measured (an older rfdeploy made it)"
            if not artifact.is_file() or recorded != sha256_file(artifact):
                return f"it measured another file than {self.rel(artifact)} (SHA-256 differs)"
        if kind == "parity":
            digest = (doc.get("reference") or {}).get("digest")
            if digest != self._reference_digest():
                return f"it was not made from the bundle's {self.rel(self.reference)}"
        return None

    def _reference_digest(self) -> str | None:
        from ...validate.reference import SavedReference

        try:
            ref = SavedReference(self.reference)
        except Exception:  # noqa: BLE001 - an unreadable reference matches nothing
            return None
        try:
            return ref.digest
        finally:
            ref.close()

    def gates_for(self, t: Target) -> Gates:
        """The bundle's gates for a target: the configured ones, else the per-precision defaults."""
        defaults = tolerance_for(t.precision).gates
        cfg = self.config
        agreement = cfg.min_agreement
        if agreement is not None and agreement > 1:
            agreement = agreement / 100  # given as a percentage
        return Gates(
            max_miou_drop=defaults.max_miou_drop if cfg.max_miou_drop is None else cfg.max_miou_drop,
            min_agreement=defaults.min_agreement if agreement is None else agreement,
        )

    def verdict(self, t: Target, parity: dict[str, Any] | None) -> Verdict | None:
        """The target's parity verdict, recomputed from the numbers with the bundle's gates (never copied)."""
        return None if parity is None else judge_parity_document(parity, self.gates_for(t))

    # ----------------------------------------------------------------------------------------- results
    def _outcomes(
        self,
        pending: dict[str, list[Step]],
        failed: dict[str, RefineNetDeployError],
        failed_shared: RefineNetDeployError | None,
    ) -> list[TargetOutcome]:
        outcomes = []
        for t in self.config.target_list:
            o = TargetOutcome(t)
            waiting = {out for step in pending.get(t.name, []) for out in step.outputs}
            parity, bench = self.target_dir(t.name) / "parity.json", self.target_dir(t.name) / "bench.json"
            o.parity = None if parity in waiting else _read_json(parity)  # a file not imported is not a result
            o.bench = None if bench in waiting else _read_json(bench)
            if t.name in failed or (failed_shared is not None and not (o.parity and o.bench)):
                exc = failed.get(t.name) or failed_shared
                o.status, o.reason, o.error = "failed", exc.message if exc else None, exc
            elif t.name in pending:
                steps = pending[t.name]
                o.status = "pending on device"
                o.reason = steps[0].blocked or "inputs not in the bundle"
                o.commands = [c for s in steps for c in s.commands]
                if t.device == "gpu":  # the same-GPU PyTorch baselines its speed-ups are computed against
                    o.commands += [c for s in self.pending_baselines for c in s.commands]
                o.commands.append("rfdeploy pipeline --resume .")  # run in the bundle folder, wherever it is
                o.predicted = self._predicted(t)
            elif (verdict := self.verdict(t, o.parity)) is not None and verdict.status != PASSED:
                if verdict.failed:
                    o.status, o.reason = "failed gate", "; ".join(verdict.failed)
                else:
                    o.status = "gate not evaluated"
                    o.reason = "; ".join(verdict.not_evaluated) + " (does not count as passed)"
            outcomes.append(o)
        return outcomes

    def _predicted(self, t: Target) -> dict[str, Any] | None:
        """The CPU's view of a device INT8 target: the same Q/DQ model in ONNX Runtime on this CPU (the
        cpu-onnxruntime-int8 target's parity, else the prediction step's), judged with the target's gates."""
        if t.precision != "int8" or t.device == "cpu":
            return None
        own = self.target_dir(PREDICTOR) / "parity.json"
        path = own if PREDICTOR in {x.name for x in self.config.target_list} else self.predicted_parity
        doc = _read_json(path)
        if not doc:
            return None
        verdict = judge_parity_document(doc, self.gates_for(t))
        return {
            "by": "the same Q/DQ ONNX in ONNX Runtime on this CPU",
            "result": self.rel(path),
            "miou_drop_points": doc.get("miou_drop_points"),
            "pixel_agreement": doc.get("pixel_agreement"),
            "over_gate": verdict.failed,  # already over the target's gate before anyone flashes a device
        }

    def result_files(self, outcomes: list[TargetOutcome] | None = None) -> list[Path]:
        """The bundle's result files; with ``outcomes``, only those the outcomes took (a file that was not
        imported, e.g. a result of another artifact, stays out of the report)."""
        files = []
        for d in sorted(self.p("targets").glob("*")) if self.p("targets").is_dir() else []:
            files += [f for f in (d / "bench.json", d / "parity.json") if f.is_file()]
        if outcomes is None:
            return files
        refused = set()
        for o in outcomes:
            d = self.target_dir(o.target.name)
            refused |= {d / "parity.json"} if o.parity is None else set()
            refused |= {d / "bench.json"} if o.bench is None else set()
        return [f for f in files if f not in refused]

    def _report(self, state: BundleState, outcomes: list[TargetOutcome], baseline: dict | None) -> list[Path]:
        from .summary import summary_markdown

        files = self.result_files(outcomes)
        md, html = self.p("report.md"), self.p("report.html")
        digests = {self.rel(f): sha256_file(f) for f in files}
        summary = summary_markdown(outcomes, baseline, self.rel, gpu_baselines=self.gpu_baselines)
        key = step_key("report", {"summary": summary}, digests)
        outputs = [p for p in (md, html) if p.exists()]
        if not self.force and outputs and state.is_current("report", key, outputs):
            return outputs
        written: list[Path] = []
        if files:
            from ..report import make_report

            try:  # the bundle's summary and pending commands first, in both (report.html is what a lead opens)
                make_report(files, md, preamble=summary)
                make_report(files, html, preamble=summary)
                written = [md, html]
            except RefineNetDeployError as exc:
                self.warn(f"report: {exc.message}")
        if not written:  # no result yet (or none readable): the summary alone
            from ...artifacts import write_atomic
            from ..report import summary_page

            write_atomic(md, lambda tmp: tmp.write_text(summary))
            write_atomic(html, lambda tmp: tmp.write_text(summary_page(summary)))
            written = [md, html]
        written = sorted(set(written))
        state.record("report", key, [p for p in written if p.exists()])
        return written

    def _manifest(self, state: BundleState, outcomes: list[TargetOutcome]) -> Path:
        artifacts = []
        seen: set[str] = set()
        for rec_id, rec in sorted(state.steps.items()):
            for rel_path, sha in rec.outputs.items():
                path = self.bundle / rel_path
                if rel_path in seen or not path.is_file():
                    continue
                seen.add(rel_path)
                entry: dict[str, Any] = {"path": rel_path, "sha256": sha, "bytes": path.stat().st_size, "step": rec_id}
                side = sidecar_path(path)
                if path.suffix in (".onnx", ".xml", ".engine") and side.is_file():
                    try:
                        meta = read_metadata(path)
                        entry["provenance"] = meta.get("provenance")
                        entry["precision"] = meta.get("precision")
                    except RefineNetDeployError:
                        pass
                if rel_path.endswith("parity.json"):
                    doc = _read_json(path) or {}
                    target = TARGETS.get(Path(rel_path).parent.name)
                    if target is not None:  # recomputed with the bundle's gates, as the targets below
                        gates = self.gates_for(target)
                        verdict = judge_parity_document(doc, gates)
                        entry["gates"] = {
                            "passed": verdict.passed,
                            "failed": verdict.failed,
                            "not_evaluated": verdict.not_evaluated,
                            "gates": asdict(gates),
                        }
                artifacts.append(entry)
        targets = {}
        for o in outcomes:
            verdict = self.verdict(o.target, o.parity)
            targets[o.target.name] = {
                "summary": o.target.summary,
                "status": o.status,
                "reason": o.reason,
                "artifact": self.rel(self.artifact_for(o.target)),
                "commands": o.commands or None,
                "predicted_on_cpu": o.predicted,
                "p50_ms": _p50(o.bench),
                "miou_drop_points": (o.parity or {}).get("miou_drop_points"),
                "pixel_agreement": (o.parity or {}).get("pixel_agreement"),
                "gates_passed": None if verdict is None else verdict.passed,
                "gates": asdict(self.gates_for(o.target)),
            }
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "schema_version": 1,
            "tool_version": __version__,
            "updated": utc_now(),
            "config": CONFIG_FILE,
            "targets": targets,
            "artifacts": artifacts,
        }
        return write_json_atomic(self.p(MANIFEST_FILE), manifest)

    def _bundle_config(self) -> dict[str, Any]:
        d = self.config.to_dict()
        d["checkpoint"] = self.rel(self.checkpoint)

        def absolute(path: str | None) -> str | None:  # provenance of the sources, whatever folder ran it
            return None if path is None else str(Path(path).resolve())

        d["source_checkpoint"] = absolute(self.config.checkpoint) or "demo"
        d["data"] = self.rel(self.val_dir)
        d["calib_data"] = (
            self.rel(self.calib_dir) if self.config.calib_data is None else absolute(self.config.calib_data)
        )
        d["source_data"] = absolute(self.config.data)
        d["source_calib_data"] = absolute(self.config.calib_data)
        d["calib_val_data"] = absolute(self.config.calib_val_data)
        return d


def _join(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from the bundle, or None when it is missing, unreadable, not a bounded JSON object, or holds
    a number that is not finite (NaN, Infinity: no result carries one)."""
    try:
        data = read_json(path)
    except (OSError, ValueError, InputReadError):
        return None
    return data if isinstance(data, dict) and nonfinite_field(data) is None else None


def _p50(bench: dict[str, Any] | None) -> float | None:
    if not bench:
        return None
    compute = bench.get("compute_only") or {}
    return compute.get("p50_ms")


def load_bundle_config(bundle: Path) -> dict[str, Any]:
    """The settings a bundle was made with (for ``--resume``), paths resolved against the bundle."""
    path = bundle / CONFIG_FILE
    if not bundle.exists():
        raise DataError(f"--resume {bundle}: no such bundle folder. Pass the folder a pipeline wrote (its -o)")
    doc = _read_json(path)
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
