"""The sweep's recommendation logic on scripted timings and scores (no model runs)."""

from __future__ import annotations

from refinenet_deploy.validate.pareto import (
    SweepPoint,
    best_within_latency,
    dominates,
    fastest_within_drop,
    pareto_front,
    recommend,
)


def _p(config: str, miou: float, ms: float, device: str = "cpu") -> SweepPoint:
    return SweepPoint(config, device, miou, ms)


POINTS = [
    _p("ort@96", 0.60, 5.0),
    _p("ov@96", 0.60, 4.0),  # dominates ort@96 (as accurate, faster)
    _p("ov@128", 0.70, 9.0),
    _p("ort@128", 0.68, 12.0),  # dominated by ov@128
    _p("ov@192", 0.78, 30.0),
]
REFERENCE = 0.80


def test_front_keeps_only_undominated_points_fastest_first() -> None:
    assert [p.config for p in pareto_front(POINTS)] == ["ov@96", "ov@128", "ov@192"]
    assert dominates(POINTS[1], POINTS[0]) and not dominates(POINTS[0], POINTS[1])


def test_best_within_latency_budget_met() -> None:
    pick = best_within_latency(POINTS, 10.0)
    assert pick.point is not None and pick.point.config == "ov@128"


def test_best_within_latency_none_meets() -> None:
    pick = best_within_latency(POINTS, 3.0)
    assert pick.point is None
    assert "none meets the budget" in pick.reason and "ov@96" in pick.reason


def test_fastest_within_drop_budget_met() -> None:
    # drops vs 0.80: ov@192 2 pt, ov@128 10 pt
    assert fastest_within_drop(POINTS, REFERENCE, 2.5).point.config == "ov@192"
    assert fastest_within_drop(POINTS, REFERENCE, 12.5).point.config == "ov@128"


def test_fastest_within_drop_none_meets() -> None:
    pick = fastest_within_drop(POINTS, REFERENCE, 1.0)
    assert pick.point is None and "none meets the budget" in pick.reason and "2.00 pt" in pick.reason


def test_ties_mIoU_take_the_faster_then_the_name() -> None:
    tied = [_p("b", 0.7, 8.0), _p("a", 0.7, 8.0), _p("c", 0.7, 6.0)]
    assert best_within_latency(tied, 10.0).point.config == "c"  # equal mIoU: the faster
    tied = tied[:2]
    assert best_within_latency(tied, 10.0).point.config == "a"  # equal both: alphabetical
    assert {p.config for p in pareto_front(tied)} == {"a", "b"}  # neither dominates the other


def test_ties_latency_take_the_higher_miou_then_the_name() -> None:
    tied = [_p("b", 0.70, 5.0), _p("a", 0.70, 5.004), _p("c", 0.69, 5.0)]  # 5.004 ms ties 5.0 at 0.01 ms
    assert fastest_within_drop(tied, 0.71, 5.0).point.config == "a"


def test_recommend_per_device_and_missing_budgets() -> None:
    pts = [*POINTS, _p("gpu@96", 0.61, 1.0, device="gpu")]
    recs = recommend(pts, reference_miou=REFERENCE, max_latency_ms=10.0, max_miou_drop=None)
    assert [r.device for r in recs] == ["cpu", "gpu"]
    assert recs[0].best_within_latency.point.config == "ov@128"
    assert recs[1].best_within_latency.point.config == "gpu@96"
    assert all(r.fastest_within_drop is None for r in recs)  # no budget given: no pick, not a default
    recs = recommend(pts, reference_miou=None, max_latency_ms=None, max_miou_drop=1.0)
    assert recs[0].fastest_within_drop.point is None and "no reference" in recs[0].fastest_within_drop.reason
