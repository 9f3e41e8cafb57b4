"""The parity verdict: a pure function of the measured numbers and the stated gates.

Every place that shows a verdict (``parity``'s table and exit code, the pipeline's target status and manifest,
the report) calls ``judge`` with the numbers a result recorded and the gates that apply *there* (a bundle judges
an imported result with its own gates): a ``passed`` read from a file is never trusted.

Each gate ends in one of three states:

- ``passed`` / ``failed``: it was evaluated;
- ``not evaluated``: a number it needs was not measured (no labels: no mIoU drop; a saved reference without
  logits: no FP32 logits check). Such a gate does not count as passed: the verdict is then ``not evaluated``
  (``passed`` is ``None``) unless another gate failed. The gates that could be evaluated (pixel agreement needs no
  labels) still apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..results.parity import ParityResult
from .tolerances import Gates

PASSED, FAILED, NOT_EVALUATED = "passed", "failed", "not evaluated"


@dataclass(frozen=True)
class GateResult:
    name: str  # "mIoU drop" | "pixel agreement" | "FP32 logits"
    status: str  # passed | failed | not evaluated
    detail: str  # the rule and the numbers, or why it was not evaluated


@dataclass(frozen=True)
class Verdict:
    gates: tuple[GateResult, ...]

    @property
    def failed(self) -> list[str]:
        return [g.detail for g in self.gates if g.status == FAILED]

    @property
    def not_evaluated(self) -> list[str]:
        return [f"{g.name}: {g.detail}" for g in self.gates if g.status == NOT_EVALUATED]

    @property
    def status(self) -> str:
        if self.failed:
            return FAILED
        return NOT_EVALUATED if self.not_evaluated else PASSED

    @property
    def passed(self) -> bool | None:
        """True: every gate evaluated and passed; False: one failed; None: none failed, one was not evaluated."""
        return {PASSED: True, FAILED: False}.get(self.status)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def judge(
    *,
    miou_drop_points: float | None,
    pixel_agreement: float | None,
    gates: Gates,
    no_miou_reason: str = "no labels",
    logits: tuple[float, float] | None = None,
    logits_not_evaluated: str | None = None,
) -> Verdict:
    """The verdict of parity numbers against ``gates``. ``miou_drop_points``: reference - backend, points (None:
    not measured, for ``no_miou_reason``); ``pixel_agreement``: a fraction; ``logits``: (worst error, allowed
    bound) of the FP32 logits check where it ran; ``logits_not_evaluated``: why it applied and could not run."""
    results = []
    drop = _number(miou_drop_points)
    if drop is None:
        results.append(GateResult("mIoU drop", NOT_EVALUATED, no_miou_reason))
    elif abs(drop) > gates.max_miou_drop:
        what = "drop" if drop > 0 else "unexpected gain"
        results.append(
            GateResult(
                "mIoU drop",
                FAILED,
                f"mIoU {what} {abs(drop):.3f} pt > max {gates.max_miou_drop:.3f} pt "
                f"(by {abs(drop) - gates.max_miou_drop:.3f} pt)",
            )
        )
    else:
        results.append(GateResult("mIoU drop", PASSED, f"|{drop:.3f}| pt <= {gates.max_miou_drop:.3f} pt"))
    agree = _number(pixel_agreement)
    if agree is None:
        results.append(GateResult("pixel agreement", NOT_EVALUATED, "not measured"))
    elif agree < gates.min_agreement:
        results.append(
            GateResult(
                "pixel agreement",
                FAILED,
                f"pixel agreement {agree:.4%} < min {gates.min_agreement:.4%} "
                f"(by {(gates.min_agreement - agree) * 100:.3f} pt)",
            )
        )
    else:
        results.append(GateResult("pixel agreement", PASSED, f"{agree:.4%} >= {gates.min_agreement:.4%}"))
    if logits is not None:
        error, bound = logits
        if error > bound:
            results.append(
                GateResult(
                    "FP32 logits",
                    FAILED,
                    f"FP32 logits differ by {error:.3g} > {bound:.3g} (the FP32 tolerance): more than float32 "
                    "rounding, so the artifact computes something else",
                )
            )
        else:
            results.append(GateResult("FP32 logits", PASSED, f"{error:.3g} <= {bound:.3g}"))
    elif logits_not_evaluated:
        results.append(GateResult("FP32 logits", NOT_EVALUATED, logits_not_evaluated))
    return Verdict(tuple(results))


def judge_parity_result(result: ParityResult, gates: Gates) -> Verdict:
    """The verdict of a parity result against ``gates``: recomputed from the numbers it recorded (the ``passed``
    and gates written in it are not read)."""
    logit = result.logit_gate
    logits = None
    logits_missing = None
    if logit is not None:
        error, bound = _number(logit.get("worst_error")), _number(logit.get("bound_there"))
        if error is not None and bound is not None:
            logits = (error, bound)
        else:
            logits_missing = str(logit.get("skipped") or "the FP32 logits check did not run")
    return judge(
        miou_drop_points=result.miou_drop_points,
        pixel_agreement=result.pixel_agreement,
        gates=gates,
        no_miou_reason="no labels" if result.has_labels is False else "not measured",
        logits=logits,
        logits_not_evaluated=logits_missing,
    )


__all__ = ["FAILED", "NOT_EVALUATED", "PASSED", "GateResult", "Verdict", "judge", "judge_parity_result"]
