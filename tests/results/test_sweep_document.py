"""``SweepDocument`` and ``CellMeasurement``: the files the landed sweep wrote read back key for key, and a file
that is not a sweep result, or has a field of the wrong kind, is refused naming the file and the field.

The two assets were written by the landed ``rfdeploy sweep`` (schema 1) on the demo: sizes 96, targets
cpu-onnxruntime-fp32 (done) and jetson-trt-int8 (pending on a device), both budgets given."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from refinenet_deploy.errors import DataError
from refinenet_deploy.operations.sweep.run import read_cell
from refinenet_deploy.results.sweep import CellMeasurement, SweepDocument

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "results"
SWEEP = ASSETS / "sweep-v1.json"
CELL = ASSETS / "sweep-cell-v1.json"


def _landed() -> dict[str, Any]:
    return json.loads(SWEEP.read_text())


DEMO_SWEEP = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "sweep_demo_xeon_2core.json"


@pytest.mark.parametrize("path", [SWEEP, DEMO_SWEEP], ids=["pending-device-cell", "readme-demo-sweep"])
def test_landed_sweep_files_read_and_write_back_key_for_key(path: Path) -> None:
    assert SweepDocument.read(path).to_dict() == json.loads(path.read_text())


def test_the_landed_sweep_json_reads_as_typed_cells_fronts_and_picks() -> None:
    doc = SweepDocument.read(SWEEP)
    assert doc.reference is not None and doc.reference.done and doc.reference_miou == doc.reference.miou
    done, pending = doc.cells
    assert done.done and done.measured is not None and done.measured.latency.p50_ms > 0
    assert pending.status == "pending" and pending.measured is None and pending.commands[-1].endswith("--resume")
    assert doc.on_front() == {done.config}
    (rec,) = doc.recommendations
    assert rec.best_within_latency is not None and rec.best_within_latency.config == done.config
    assert rec.best_within_latency.commands == done.build_commands


def test_the_landed_cell_file_reads_and_writes_back() -> None:
    raw = json.loads(CELL.read_text())
    measured = CellMeasurement.read(CELL)
    assert measured.to_dict() == {k: v for k, v in raw.items() if k != "cell"}
    assert len(measured.iou) == len(measured.class_names) and 0 <= measured.miou <= 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema="refinenet-deploy/bench"), "not a sweep result"),
        (lambda d: d.update(schema_version=2), "schema_version 2 is not one this rfdeploy reads"),
        (lambda d: d.pop("cells"), "missing required field 'cells'"),
        (lambda d: d["cells"][0].update(miou="high"), "field 'cells[0].miou' must be a number"),
        (lambda d: d["cells"][0].update(miou=1.5), "'cells[0].miou' must be a fraction from 0 to 1"),
        (lambda d: d["cells"][0]["latency"].update(p50_ms=0), "'cells[0].latency.p50_ms' must be a positive time"),
        (lambda d: d["cells"][0].update(status="maybe"), "'cells[0].status' must be done, pending or failed"),
        (lambda d: d["cells"][0]["iou"].append(0.5), "'cells[0].iou' and 'cells[0].class_names' differ"),
        (lambda d: d["cells"].__setitem__(1, "x"), "field 'cells[1]' must be an object"),
        (lambda d: d["fronts"].update(cpu=[3]), "field 'fronts.cpu[0]' must be a configuration name"),
        (lambda d: d["recommendations"][0].update(best_within_latency=[]), "must be an object"),
        (lambda d: d["recommendations"][0]["best_within_latency"].update(p50_ms=float("nan")), "not a finite number"),
    ],
)
def test_a_bad_sweep_json_is_refused_naming_the_field(tmp_path: Path, change: Any, message: str) -> None:
    doc = copy.deepcopy(_landed())
    change(doc)
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=re.escape(message)) as err:
        SweepDocument.read(path)
    assert str(path) in err.value.message and err.value.exit_code == 5
    assert "rfdeploy sweep" in (err.value.hint or "")


def test_a_cell_file_that_does_not_read_says_why(tmp_path: Path) -> None:
    """What the sweep shows for a cell whose numbers cannot be read (it is then marked failed, not drawn)."""
    raw = json.loads(CELL.read_text())
    raw["latency"]["p99_ms"] = "slow"
    path = tmp_path / "96x128.json"
    path.write_text(json.dumps(raw))
    assert "field 'latency.p99_ms' must be a number" in str(read_cell(path))
    raw["latency"]["p99_ms"] = float("inf")
    path.write_text(json.dumps(raw))
    assert "'latency.p99_ms' is not a finite number" in str(read_cell(path))
    path.write_text("{not json")
    assert "not valid JSON" in str(read_cell(path))
    assert read_cell(tmp_path / "gone.json") == "its result file gone.json is missing"
    assert isinstance(read_cell(CELL), CellMeasurement)


@pytest.mark.parametrize(("content", "message"), [(b"{not json", "not valid JSON"), (b"\xff\xfe", "so not a sweep")])
def test_a_sweep_file_that_is_not_json_is_refused_in_the_sweeps_words(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "sweep.json"
    path.write_bytes(content)
    for read in (SweepDocument.read, CellMeasurement.read):
        with pytest.raises(DataError, match=message) as err:
            read(path)
        assert "bench" not in err.value.message and "rfdeploy sweep" in (err.value.hint or "")
