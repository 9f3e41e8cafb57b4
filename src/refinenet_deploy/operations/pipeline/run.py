"""``rfdeploy pipeline``: a checkpoint to a validated deployment bundle, one keyed step at a time.

The plan is a list of steps (data, export, reference, FP16/Q-DQ ONNX, then per target: build, parity, bench; last the
report and the manifest). Each step declares its inputs, settings and outputs; ``BundleState`` skips it when
nothing changed. A step this machine cannot do (no GPU, no TensorRT, not a Jetson, no PyTorch) leaves its target
"pending on device" with the exact commands that finish it; ``rfdeploy pipeline --resume BUNDLE`` on that device
runs them (no PyTorch needed there: parity reads the saved reference) and merges the results.

The parts: ``layout`` (where each file lives), ``steps`` and ``device_steps`` (the plan; each device step declared
once as a ``spec.CallSpec``), ``executor`` (running it), ``outcomes`` (each target's status) and ``manifest`` (the
report and the manifest). ``Pipeline`` wires them.
"""

from __future__ import annotations

from pathlib import Path

from ...artifacts import write_json_atomic
from . import capabilities as caps
from .bundle import BundleLock, BundleState
from .config import PipelineConfig
from .executor import Executor
from .layout import (
    BASELINE,
    CONFIG_FILE,
    DEMO_CHECKPOINT,
    MANIFEST_FILE,
    PREDICTOR,
    BundleLayout,
    check_bundle_path,
    load_bundle_config,
    read_bench_result,
)
from .manifest import MANIFEST_SCHEMA, write_bundle_report, write_manifest
from .outcomes import PipelineResult, TargetOutcome, build_outcomes
from .spec import CallSpec, Step
from .steps import Progress, StepContext, plan


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
        self.layout = BundleLayout(self.bundle, config)
        self.ctx = StepContext(
            self.layout,
            caps.Capabilities.detect(),
            command=command,
            progress=progress or (lambda _msg: None),
            warn=warn or (lambda _msg: None),
        )

    def plan(self) -> list[Step]:
        return plan(self.ctx)

    def run(self) -> PipelineResult:
        if not self.bundle.exists():
            self._preflight()  # a new bundle is only made for inputs that load: a bad checkpoint leaves nothing
        self.bundle.mkdir(parents=True, exist_ok=True)
        with BundleLock(self.bundle) as lock:
            taken = lock.stale_taken_over
            if taken and taken.get("unreadable"):
                self.ctx.warn(f"took over an unreadable pipeline lock ({taken['unreadable']})")
            elif taken:
                self.ctx.warn(f"took over a lock left by a pipeline that is gone (pid {taken.get('pid')})")
            return self._run_locked()

    def _preflight(self) -> None:
        """Load the user's checkpoint once before anything is written (CheckpointError, exit 5, otherwise)."""
        if self.config.checkpoint is None or not caps.has_torch():
            return
        from ...models import load_model

        load_model(self.config.checkpoint, arch=self.config.arch)

    def _run_locked(self) -> PipelineResult:
        lay = self.layout
        state = BundleState(self.bundle)
        write_json_atomic(lay.p(CONFIG_FILE), lay.bundle_config())
        rec = Executor(self.ctx, state, force=self.force).run(self.plan())
        outcomes = build_outcomes(lay, rec.pending, rec.failed_targets, rec.failed_shared, rec.pending_baselines)
        baseline = read_bench_result(lay.bench_json(BASELINE))
        gpu_baselines = {n: b for n in caps.GPU_BASELINES if (b := read_bench_result(lay.bench_json(n))) is not None}
        report = write_bundle_report(
            lay, state, outcomes, baseline, gpu_baselines, force=self.force, warn=self.ctx.warn
        )
        manifest = write_manifest(lay, state, outcomes)
        return PipelineResult(
            self.bundle,
            outcomes,
            rec.ran,
            rec.skipped,
            rec.imported,
            baseline,
            report,
            manifest,
            rec.failed_step,
            rec.failed_shared,
            gpu_baselines,
        )


__all__ = [
    "BASELINE",
    "CONFIG_FILE",
    "DEMO_CHECKPOINT",
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "PREDICTOR",
    "CallSpec",
    "Pipeline",
    "PipelineResult",
    "Step",
    "TargetOutcome",
    "check_bundle_path",
    "load_bundle_config",
]
