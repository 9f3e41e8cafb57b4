"""What a pipeline run ends with: per target its status (done, pending on device with the commands that finish
it, failed gate, gate not evaluated, failed), the verdicts recomputed with the bundle's gates, and the result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import RefineNetDeployError
from ...results.bench import BenchResult
from ...results.parity import ParityResult
from ...validate.tolerances import Gates, tolerance_for
from ...validate.verdict import PASSED, Verdict, judge_parity_result
from .config import PipelineConfig, Target
from .layout import PREDICTOR, BundleLayout, read_bench_result, read_parity_result
from .spec import Step


@dataclass
class TargetOutcome:
    target: Target
    status: str = "done"  # done | pending on device | failed gate | gate not evaluated | failed
    reason: str | None = None
    commands: list[str] = field(default_factory=list)
    parity: ParityResult | None = None
    bench: BenchResult | None = None
    predicted: dict[str, Any] | None = None
    error: RefineNetDeployError | None = None


@dataclass
class PipelineResult:
    bundle: Path
    outcomes: list[TargetOutcome]
    ran: list[str]
    skipped: list[str]
    imported: list[str]
    baseline: BenchResult | None
    report: list[Path]
    manifest: Path
    failed_step: str | None = None  # a step every target needed (export, calibrate, ...) that failed
    shared_error: RefineNetDeployError | None = None  # its error
    gpu_baselines: dict[str, BenchResult] = field(default_factory=dict)  # same-GPU PyTorch baselines by name

    @property
    def exit_code(self) -> int:
        if self.shared_error is not None:  # whatever older results the targets still show
            return self.shared_error.exit_code
        errors = [o.error for o in self.outcomes if o.error is not None]
        if any(o.status == "failed gate" for o in self.outcomes):
            return 3
        return errors[0].exit_code if errors else 0


def gates_for(config: PipelineConfig, t: Target) -> Gates:
    """The bundle's gates for a target: the configured ones, else the per-precision defaults."""
    defaults = tolerance_for(t.precision).gates
    agreement = config.min_agreement
    if agreement is not None and agreement > 1:
        agreement = agreement / 100  # given as a percentage
    return Gates(
        max_miou_drop=defaults.max_miou_drop if config.max_miou_drop is None else config.max_miou_drop,
        min_agreement=defaults.min_agreement if agreement is None else agreement,
    )


def verdict_for(config: PipelineConfig, t: Target, parity: ParityResult | None) -> Verdict | None:
    """The target's parity verdict, recomputed from the numbers with the bundle's gates (never copied)."""
    return None if parity is None else judge_parity_result(parity, gates_for(config, t))


def build_outcomes(
    layout: BundleLayout,
    pending: Mapping[str, list[Step]],
    failed: Mapping[str, RefineNetDeployError],
    failed_shared: RefineNetDeployError | None,
    pending_baselines: Sequence[Step] = (),
) -> list[TargetOutcome]:
    """Each target's outcome from what the run left: its pending steps, its failure, or its results."""
    config = layout.config
    outcomes = []
    for t in config.target_list:
        o = TargetOutcome(t)
        waiting = {out for step in pending.get(t.name, []) for out in step.outputs}
        parity, bench = layout.parity_json(t.name), layout.bench_json(t.name)
        # read once, as typed documents; a file not imported (or not a result this rfdeploy reads) is no result
        o.parity = None if parity in waiting else read_parity_result(parity)
        o.bench = None if bench in waiting else read_bench_result(bench)
        if t.name in failed or (failed_shared is not None and (o.parity is None or o.bench is None)):
            exc = failed.get(t.name) or failed_shared
            o.status, o.reason, o.error = "failed", exc.message if exc else None, exc
        elif t.name in pending:
            steps = pending[t.name]
            o.status = "pending on device"
            o.reason = steps[0].blocked or "inputs not in the bundle"
            o.commands = [c for s in steps for c in s.commands]
            if t.device == "gpu":  # the same-GPU PyTorch baselines its speed-ups are computed against
                o.commands += [c for s in pending_baselines for c in s.commands]
            o.commands.append("rfdeploy pipeline --resume .")  # run in the bundle folder, wherever it is
            o.predicted = predicted_on_cpu(layout, t)
        elif (verdict := verdict_for(config, t, o.parity)) is not None and verdict.status != PASSED:
            if verdict.failed:
                o.status, o.reason = "failed gate", "; ".join(verdict.failed)
            else:
                o.status = "gate not evaluated"
                o.reason = "; ".join(verdict.not_evaluated) + " (does not count as passed)"
        outcomes.append(o)
    return outcomes


def predicted_on_cpu(layout: BundleLayout, t: Target) -> dict[str, Any] | None:
    """The CPU's view of a device INT8 target: the same Q/DQ model in ONNX Runtime on this CPU (the
    cpu-onnxruntime-int8 target's parity, else the prediction step's), judged with the target's gates."""
    if t.precision != "int8" or t.device == "cpu":
        return None
    own = layout.parity_json(PREDICTOR)
    path = own if PREDICTOR in {x.name for x in layout.config.target_list} else layout.predicted_parity
    result = read_parity_result(path)
    if result is None:
        return None
    verdict = judge_parity_result(result, gates_for(layout.config, t))
    return {
        "by": "the same Q/DQ ONNX in ONNX Runtime on this CPU",
        "result": layout.rel(path),
        "miou_drop_points": result.miou_drop_points,
        "pixel_agreement": result.pixel_agreement,
        "over_gate": verdict.failed,  # already over the target's gate before anyone flashes a device
    }


def taken_result_files(layout: BundleLayout, outcomes: Sequence[TargetOutcome]) -> list[Path]:
    """The bundle's result files that the outcomes took (a file that was not imported, e.g. a result of another
    artifact, stays out of the report)."""
    refused: set[Path] = set()
    for o in outcomes:
        name = o.target.name
        refused |= {layout.parity_json(name)} if o.parity is None else set()
        refused |= {layout.bench_json(name)} if o.bench is None else set()
    return [f for f in layout.result_files() if f not in refused]
