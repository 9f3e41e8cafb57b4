"""Running a plan: each step keyed by its inputs and settings, skipped when up to date, run when this machine can,
left pending on a device when it cannot, or taken from a result another machine put into the bundle.

A step every target needs that fails stops the steps after it; a target's step that fails stops only that target.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ...artifacts import read_metadata, sha256_file
from ...errors import RefineNetDeployError, UsageError
from ...results.bench import BenchResult
from ...results.parity import ParityResult
from . import capabilities as caps
from .bundle import BundleState, digest_path, step_key
from .config import TARGETS, Target
from .layout import read_bench_result, read_parity_result
from .spec import Step
from .steps import StepContext


@dataclass
class RunRecord:
    """What happened to each step of one run."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    pending: dict[str, list[Step]] = field(default_factory=dict)  # by target
    pending_baselines: list[Step] = field(default_factory=list)
    failed_targets: dict[str, RefineNetDeployError] = field(default_factory=dict)
    failed_shared: RefineNetDeployError | None = None
    failed_step: str | None = None


def input_digests(step: Step) -> dict[str, str] | None:
    """Digests of the step's inputs; None when one that must travel is missing (then the recorded outputs
    are trusted if they still hash to what was recorded)."""
    digests: dict[str, str] = {}
    for name, path in step.inputs.items():
        d = digest_path(path)
        if d is None:
            return None
        digests[name] = d
    return digests


class Executor:
    def __init__(self, ctx: StepContext, state: BundleState, *, force: bool = False) -> None:
        self.ctx = ctx
        self.state = state
        self.force = force
        self.record = RunRecord()

    def run(self, steps: list[Step]) -> RunRecord:
        rec = self.record
        for i, step in enumerate(steps, 1):
            if (step.target and step.target in rec.failed_targets) or rec.failed_shared is not None:
                continue  # a step every target needs failed: nothing after it can be trusted
            self._one(step, f"[{i}/{len(steps)}] {step.id}")
        return rec

    def _one(self, step: Step, label: str) -> None:
        digests = input_digests(step)
        key = None if digests is None else step_key(step.id, step.settings, digests)
        if not self.force and self.state.is_current(step.id, key, step.outputs):
            self.record.skipped.append(step.id)
            self.ctx.progress(f"{label}: up to date")
        elif step.optional and (step.blocked is not None or digests is None):
            self.ctx.progress(f"{label}: skipped ({step.blocked or 'its inputs are not in the bundle'})")
        elif step.blocked is not None or digests is None:
            self._cannot_run(step, key, label)
        else:
            self._execute(step, key, label)

    def _cannot_run(self, step: Step, key: str | None, label: str) -> None:
        """A step this machine cannot do: a result put into the bundle, else pending on a device, else kept (done
        elsewhere), else the run fails."""
        rec, why = self.record, step.blocked or "inputs not in the bundle"
        if self._import_result(step, key):
            rec.imported.append(step.id)
            self.ctx.progress(f"{label}: imported {', '.join(self.ctx.layout.rel(o) for o in step.outputs)}")
        elif step.baseline:
            rec.pending_baselines.append(step)
            self.ctx.progress(f"{label}: pending on device ({why})")
        elif step.target is not None:
            rec.pending.setdefault(step.target, []).append(step)
            self.ctx.progress(f"{label}: pending on device ({why})")
        elif step.blocked is not None and all(o.exists() for o in step.outputs):
            rec.skipped.append(step.id)  # done elsewhere; this machine cannot redo it
            self.ctx.progress(f"{label}: kept (this machine {step.blocked})")
        else:
            err = UsageError(
                f"step {step.id} cannot run here ({step.blocked or 'its inputs are missing'}) and the bundle "
                "has no result for it"
            )
            rec.failed_shared, rec.failed_step = err, step.id
            self.ctx.progress(f"{label}: cannot run: {err.message}")

    def _execute(self, step: Step, key: str | None, label: str) -> None:
        rec = self.record
        self.ctx.progress(f"{label}: {step.title}")
        started = time.perf_counter()
        try:
            info = step.action() or {}
        except RefineNetDeployError as exc:
            self.ctx.progress(f"{label}: failed: {exc.message}")
            if step.baseline:
                self.ctx.warn(f"{step.id}: the baseline could not be timed ({exc.message}); speed-ups against it: none")
            elif step.optional:
                self.ctx.warn(f"{step.id}: {exc.message}")
            elif step.target is not None:
                rec.failed_targets[step.target] = exc
            else:
                rec.failed_shared, rec.failed_step = exc, step.id
            return
        info["seconds"] = round(time.perf_counter() - started, 1)
        self.state.record(step.id, key or "", [o for o in step.outputs if o.exists()], info=info)
        rec.ran.append(step.id)
        self.ctx.progress(f"{label}: done in {info['seconds']:.1f} s")

    # ----------------------------------------------------------------------------------------- imports
    def _import_result(self, step: Step, key: str | None) -> bool:
        """A result JSON that another machine (or a person) put into the bundle for a step this machine cannot run."""
        if not step.id.startswith(("parity:", "bench:", "build:")) or not step.outputs:
            return False
        if not all(o.is_file() for o in step.outputs):
            return False
        rel, warn = self.ctx.layout.rel, self.ctx.warn
        rec = self.state.steps.get(step.id)
        if rec is not None and key is not None and rec.key not in (key, "imported"):
            # made (or imported) from other inputs: the ONNX, the reference or a setting changed since
            warn(
                f"{rel(step.outputs[0])}: made from inputs that have changed since; not used. Redo it on the "
                "device (the commands below)"
            )
            return False
        target = TARGETS.get(step.target or "")
        if step.id.startswith("build:") and target is not None and not self._engine_matches(step, target):
            return False
        if step.id.startswith(("parity:", "bench:")) and not self._result_matches(step, target):
            return False
        self.state.record(step.id, key or "imported", step.outputs, how="imported")
        return True

    def _engine_matches(self, step: Step, target: Target) -> bool:
        rel = self.ctx.layout.rel
        try:
            made = read_metadata(step.outputs[0]).get("precision")
        except RefineNetDeployError as exc:
            self.ctx.warn(f"{rel(step.outputs[0])}: {exc.message}; ignored")
            return False
        if made != target.precision:
            self.ctx.warn(
                f"{rel(step.outputs[0])}: its sidecar says {made}, the target {target.name} is "
                f"{target.precision}; ignored"
            )
            return False
        return True

    def _result_matches(self, step: Step, target: Target | None) -> bool:
        rel = self.ctx.layout.rel
        want = "parity" if step.id.startswith("parity:") else "bench"
        result = (read_parity_result if want == "parity" else read_bench_result)(step.outputs[0])
        if result is None:
            self.ctx.warn(f"{rel(step.outputs[0])}: not a {want} result from rfdeploy; ignored")
            return False
        why = self._baseline_mismatch(step, result) if step.baseline and isinstance(result, BenchResult) else None
        why = why or (None if target is None else self._import_mismatch(target, result))
        if why is not None:
            what = target.name if target is not None else step.id.split(":", 1)[1]
            self.ctx.warn(
                f"{rel(step.outputs[0])}: not a result of {what} ({why}); ignored. Run the commands below on the device"
            )
            return False
        return True

    def _baseline_mismatch(self, step: Step, bench: BenchResult) -> str | None:
        """Why a bench JSON put into the bundle is not the same-GPU baseline ``step`` times (None: it is): PyTorch on
        a GPU, at the baseline's precision, with (or without) a CUDA graph as the baseline says, of this checkpoint."""
        options = step.settings.get("options") or {}
        config = bench.runtime_config or {}
        if bench.runtime != "torch" or bench.device != "gpu":
            return f"it ran in {bench.runtime} on {bench.device}, the baseline is PyTorch on a GPU"
        want = options.get("torch_precision", "fp32")
        if bench.inference_precision != want:
            return f"it ran {bench.inference_precision}, the baseline {want}"
        if bool(config.get("cuda_graph")) != bool(options.get("cuda_graph")):
            return "its CUDA-graph setting is not the baseline's"
        recorded = bench.artifact_sha256
        checkpoint = self.ctx.layout.checkpoint
        if recorded is not None and (not checkpoint.is_file() or recorded != sha256_file(checkpoint)):
            return f"it measured another file than {self.ctx.layout.rel(checkpoint)} (SHA-256 differs)"
        return None

    def _import_mismatch(self, t: Target, result: ParityResult | BenchResult) -> str | None:
        """Why a parity/bench result put into the bundle is not a result of target ``t`` (None: it is): it must be
        of the target's artifact in the bundle (SHA-256), runtime, device kind and precision, and a parity result
        must have been made from the bundle's reference."""
        runtime = {"trt": "tensorrt", "dla": "tensorrt"}.get(t.runtime, t.runtime)
        if result.runtime != runtime:
            return f"it ran in {result.runtime}, the target in {runtime}"
        device = {"dla": "dla", "trt": "gpu", "torch": caps.DEVICE_OF[t.device]}.get(t.runtime, "cpu")
        if result.device != device:
            return f"it ran on {result.device}, the target on {device}"
        if isinstance(result, ParityResult):
            jetson, precision = result.jetson, result.precision
        else:
            jetson, precision = "jetson" in (result.fingerprint or {}), result.artifact_precision
            if t.runtime == "torch":
                precision = result.inference_precision or precision
        if t.device != "cpu" and jetson is None:
            return "it does not record whether it ran on a Jetson (an older rfdeploy made it)"
        if t.device != "cpu" and bool(jetson) != (t.device == "jetson"):
            return "it ran on a Jetson" if jetson else "it did not run on a Jetson"
        if precision != t.precision:
            return f"it measured {precision}, the target is {t.precision}"
        return self._artifact_mismatch(t, result)

    def _artifact_mismatch(self, t: Target, result: ParityResult | BenchResult) -> str | None:
        lay = self.ctx.layout
        artifact = lay.artifact_for(t)
        recorded = result.artifact_sha256
        parity = isinstance(result, ParityResult)
        if parity or recorded is not None:  # older bench results do not record it
            if recorded is None:
                return "it does not record the SHA-256 of the artifact it measured (an older rfdeploy made it)"
            if not artifact.is_file() or recorded != sha256_file(artifact):
                return f"it measured another file than {lay.rel(artifact)} (SHA-256 differs)"
        if parity and result.reference_digest != self._reference_digest():
            return f"it was not made from the bundle's {lay.rel(lay.reference)}"
        return None

    def _reference_digest(self) -> str | None:
        from ...validate.reference import SavedReference

        try:
            ref = SavedReference(self.ctx.layout.reference)
        except Exception:  # noqa: BLE001 - an unreadable reference matches nothing
            return None
        try:
            return ref.digest
        finally:
            ref.close()
