"""The sweep's step machinery on labelled fakes (``fakes.py``): keys, a second run, a kill mid-way, device cells
pending and merged by ``--resume``, and the report. The real models run in ``test_sweep_demo.py``."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.operations.sweep.fakes import FakeBuilds, FakeMeasure, Killed, cells_of, cpu_only, device_here

from refinenet_deploy.operations.pipeline.bundle import digest_path
from refinenet_deploy.operations.sweep import Sweep, SweepDocument, SweepSettings
from refinenet_deploy.operations.sweep import measure as measure_mod
from refinenet_deploy.results.sweep import CellMeasurement

CPU3 = ("cpu-onnxruntime-fp32", "cpu-openvino-fp32", "cpu-openvino-int8")


def _settings(**kw) -> SweepSettings:  # noqa: ANN003
    base = {"sizes": ("96", "128", "192"), "targets": CPU3, "val_images": 2, "calib_images": 2}
    return SweepSettings(**{**base, **kw})


def test_a_second_run_skips_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds, measure = FakeBuilds(monkeypatch), FakeMeasure(monkeypatch)
    first = Sweep(_settings(max_latency_ms=30), tmp_path, here=cpu_only()).run()
    assert len(measure.calls) == 1 + 9  # the reference row and 3 sizes x 3 targets
    # one export, one IR per precision, reshaped per size
    assert builds.calls[:3] == ["export_spec:model.onnx", "openvino_spec:model.xml", "openvino_spec:model.xml"]
    assert sorted(builds.calls[3:]) == sorted(
        f"static_ir_spec:model-{s}.xml" for s in ("96x128", "128x160", "192x256") for _ in range(2)
    )
    second = Sweep(_settings(max_latency_ms=30), tmp_path, here=cpu_only()).run()
    assert second.ran == [] and sorted(second.skipped) == sorted(first.ran)
    assert len(measure.calls) == 10
    doc = SweepDocument.read(tmp_path / "sweep.json")
    assert first.document is not None and doc.cells == first.document.cells  # read back as written


def test_sizes_keep_the_aspect_ratio_rounded_to_32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeBuilds(monkeypatch), FakeMeasure(monkeypatch)
    result = Sweep(_settings(targets=CPU3[:1]), tmp_path, here=cpu_only()).run()
    # the demo scenes are 192x256 (3:4): short side 128 -> 128x170.7 -> 128x160
    cells = result.document.cells
    assert [c.size for c in cells] == ["96x128", "128x160", "192x256"]
    assert [c.requested_size for c in cells] == [["96"], ["128"], ["192"]]


def test_killed_mid_way_resumes_to_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeBuilds(monkeypatch)
    FakeMeasure(monkeypatch, kill_at=5)  # the 5th measurement raises: as if the process died there
    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        Sweep(_settings(), killed, here=cpu_only()).run()
    assert not (killed / ".pipeline" / "lock").exists()  # the lock is released on the way out
    state = json.loads((killed / ".pipeline" / "state.json").read_text())["steps"]
    done_before = {k for k in state if k.startswith("cell:")}
    assert len(done_before) == 4

    measure = FakeMeasure(monkeypatch)
    resumed = Sweep(_settings(), killed, here=cpu_only()).run()
    assert not set(resumed.ran) & done_before  # nothing finished before runs again
    assert len(measure.calls) == 10 - 4

    FakeMeasure(monkeypatch)
    whole = tmp_path / "whole"
    Sweep(_settings(), whole, here=cpu_only()).run()
    assert cells_of(killed) == cells_of(whole)


def test_a_changed_setting_reruns_only_what_it_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeBuilds(monkeypatch), FakeMeasure(monkeypatch)
    Sweep(_settings(), tmp_path, here=cpu_only()).run()
    again = Sweep(_settings(iterations=7), tmp_path, here=cpu_only()).run()
    assert all(s.startswith("cell:") for s in again.ran) and len(again.ran) == 10
    budget = Sweep(_settings(iterations=7, max_miou_drop=5.0), tmp_path, here=cpu_only()).run()
    assert budget.ran == []  # a budget changes the picks, not the measurements
    (rec,) = budget.document.recommendations
    assert rec.fastest_within_drop is not None and rec.fastest_within_drop.config is not None


def test_device_cells_pending_then_merged_by_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeBuilds(monkeypatch), FakeMeasure(monkeypatch)
    settings = _settings(targets=("cpu-onnxruntime-fp32", "gpu-trt-fp16"), sizes=("96", "192"), max_latency_ms=25)
    here = Sweep(settings, tmp_path, here=cpu_only()).run()
    pending = [c for c in here.document.cells if c.status == "pending"]
    assert [c.config for c in pending] == ["gpu-trt-fp16@96x128", "gpu-trt-fp16@192x256"]
    cmds = pending[0].commands
    assert "rfdeploy build trt models/model.onnx --fp16 --input-size 96x128 --library tensorrt -o " in cmds[0]
    assert cmds[-1] == "rfdeploy sweep . --resume"
    assert set(here.document.fronts) == {"cpu"}
    md = (tmp_path / "sweep.md").read_text()
    assert "Pending on a device" in md and "rfdeploy sweep . --resume" in md

    device_copy = tmp_path.parent / (tmp_path.name + "-on-device")
    shutil.copytree(tmp_path, device_copy)  # the folder carried to the GPU machine
    measure = FakeMeasure(monkeypatch)
    merged = Sweep(settings, device_copy, here=device_here()).run()
    assert sorted(merged.ran) == [
        "build:gpu-trt-fp16@192x256",
        "build:gpu-trt-fp16@96x128",
        "cell:gpu-trt-fp16@192x256",
        "cell:gpu-trt-fp16@96x128",
    ]
    assert len(measure.calls) == 2  # only the device cells: the CPU ones are up to date
    assert set(merged.document.fronts) == {"cpu", "gpu"}
    gpu = next(r for r in merged.document.recommendations if r.device == "gpu")
    assert gpu.best_within_latency is not None
    assert gpu.best_within_latency.config == "gpu-trt-fp16@192x256"
    assert any("build trt" in c for c in gpu.best_within_latency.commands)


def test_report_states_none_meets_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeBuilds(monkeypatch), FakeMeasure(monkeypatch)
    result = Sweep(_settings(max_latency_ms=1, max_miou_drop=0.1), tmp_path, here=cpu_only()).run()
    (rec,) = result.document.recommendations
    assert rec.best_within_latency is not None and rec.best_within_latency.config is None
    assert rec.best_within_latency.reason.startswith("none meets the budget")
    md = (tmp_path / "sweep.md").read_text()
    assert "none meets the budget" in md
    assert "none meets the budget" in (tmp_path / "sweep.html").read_text()
    # the front: per device, each point undominated
    front = result.document.fronts["cpu"]
    cells = {c.config: c.measured for c in result.document.cells if c.measured}
    for name in front:
        a = cells[name]
        assert not any(b.miou > a.miou and b.latency.p50_ms < a.latency.p50_ms for b in cells.values())


def test_a_recorded_cell_file_that_does_not_read_is_measured_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeBuilds(monkeypatch), FakeMeasure(monkeypatch)
    settings = _settings(targets=CPU3[:1], sizes=("96",))
    Sweep(settings, tmp_path, here=cpu_only()).run()
    cell = tmp_path / "cells" / "cpu-onnxruntime-fp32" / "96x128.json"
    doc = json.loads(cell.read_text())
    del doc["miou"]  # as an rfdeploy with another format would write it, and record it as its step's output
    cell.write_text(json.dumps(doc))
    state_file = tmp_path / ".pipeline" / "state.json"
    state = json.loads(state_file.read_text())
    state["steps"]["cell:cpu-onnxruntime-fp32@96x128"]["outputs"]["cells/cpu-onnxruntime-fp32/96x128.json"] = (
        digest_path(cell)
    )
    state_file.write_text(json.dumps(state))

    warnings: list[str] = []
    measure = FakeMeasure(monkeypatch)
    again = Sweep(settings, tmp_path, here=cpu_only(), warn=warnings.append).run()
    assert again.ran == ["cell:cpu-onnxruntime-fp32@96x128"] and len(measure.calls) == 1
    assert any("96x128.json" in w and "'miou'" in w and "measuring it again" in w for w in warnings)
    (done,) = [c for c in again.document.cells if c.config == "cpu-onnxruntime-fp32@96x128"]
    assert done.status == "done" and done.measured is not None and again.exit_code == 0


def test_a_measurement_that_would_not_read_back_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeBuilds(monkeypatch)
    fake = FakeMeasure(monkeypatch)

    def nan_at_96(artifact: Path, **kw: Any) -> CellMeasurement:
        m = fake(artifact, **kw)
        return dataclasses.replace(m, miou=float("nan")) if kw["size"] == (96, 128) else m

    monkeypatch.setattr(measure_mod, "measure_cell", nan_at_96)
    settings = _settings(targets=CPU3[:1], sizes=("96", "128"))
    first = Sweep(settings, tmp_path, here=cpu_only()).run()
    (failed,) = [c for c in first.document.cells if c.status != "done"]
    assert failed.config == "cpu-onnxruntime-fp32@96x128" and failed.status == "failed"
    assert "'miou' is not a finite number" in (failed.reason or "")
    assert first.exit_code == 5
    assert not (tmp_path / "cells" / "cpu-onnxruntime-fp32" / "96x128.json").exists()

    FakeMeasure(monkeypatch)
    again = Sweep(settings, tmp_path, here=cpu_only()).run()
    assert again.ran == ["cell:cpu-onnxruntime-fp32@96x128"] and again.exit_code == 0
