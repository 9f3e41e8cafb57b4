"""The parity verdict as a pure function of the numbers and the stated gates (issue 19 items 1 and 5)."""

from __future__ import annotations

import pytest

from refinenet_deploy.results.parity import ParityGates, ParityResult
from refinenet_deploy.validate.tolerances import Gates
from refinenet_deploy.validate.verdict import judge, judge_parity_result

INT8 = Gates(max_miou_drop=1.0, min_agreement=0.97)


@pytest.mark.parametrize(
    ("drop", "agreement", "status", "passed"),
    [
        (0.5, 0.99, "passed", True),
        (1.2, 0.99, "failed", False),
        (-1.2, 0.99, "failed", False),  # two-sided: an unexpected gain fails too
        (0.5, 0.96, "failed", False),
        (None, 0.99, "not evaluated", None),  # no labels: not a pass
        (None, 0.96, "failed", False),  # ...but the agreement gate still applies
        (float("nan"), 0.99, "not evaluated", None),
    ],
)
def test_verdict_states(drop, agreement, status, passed) -> None:  # noqa: ANN001
    v = judge(miou_drop_points=drop, pixel_agreement=agreement, gates=INT8)
    assert v.status == status and v.passed is passed
    if drop is None:
        assert v.not_evaluated == ["mIoU drop: no labels"]


def _result(**numbers: object) -> ParityResult:
    """A parity result as written by a run that was judged with loose gates (its own verdict: passed)."""
    return ParityResult("m.onnx", ParityGates(5.0, 0.5), passed=True, failed_gates=[], **numbers)  # type: ignore[arg-type]


def test_a_document_is_judged_by_the_gates_given_not_by_its_passed_field() -> None:
    doc = _result(miou_drop_points=0.576, pixel_agreement=0.99, has_labels=True)
    assert judge_parity_result(doc, INT8).passed is True
    strict = judge_parity_result(doc, Gates(max_miou_drop=0.5, min_agreement=0.97))
    assert strict.passed is False and strict.failed == ["mIoU drop 0.576 pt > max 0.500 pt (by 0.076 pt)"]


def test_fp32_logits_gate_from_a_document() -> None:
    base = {"miou_drop_points": 0.0, "pixel_agreement": 1.0, "has_labels": True}
    fp32 = Gates(max_miou_drop=0.1, min_agreement=0.999)
    bad = judge_parity_result(_result(**base, logit_gate={"worst_error": 3e-4, "bound_there": 1.5e-4}), fp32)
    assert bad.passed is False and "FP32 logits" in bad.failed[0]
    skipped = judge_parity_result(_result(**base, logit_gate={"passed": None, "skipped": "no logits"}), fp32)
    assert skipped.passed is None and skipped.not_evaluated == ["FP32 logits: no logits"]
