"""The issue's check on the real demo checkpoint: sizes 96, 128, 192 with cpu-onnxruntime-fp32, cpu-openvino-fp32
and cpu-openvino-int8 give a front, a chart and a recommendation; a second run skips every step. Few images and
iterations, one thread: this checks the machinery end to end, not the speed (the README's sweep does that)."""

from __future__ import annotations

from pathlib import Path

import pytest

from refinenet_deploy.operations.sweep import Sweep, SweepDocument, SweepSettings

pytestmark = [pytest.mark.slow, pytest.mark.openvino]


def test_demo_sweep_front_chart_recommendation_and_second_run(tmp_path: Path) -> None:
    settings = SweepSettings(
        sizes=("96", "128", "192"),
        targets=("cpu-onnxruntime-fp32", "cpu-openvino-fp32", "cpu-openvino-int8"),
        max_latency_ms=10_000,
        max_miou_drop=100.0,
        val_images=2,
        calib_images=4,
        warmup=1,
        max_warmup=3,
        iterations=3,
        threads=1,
    )
    first = Sweep(settings, tmp_path).run()
    assert first.exit_code == 0
    doc = SweepDocument.read(tmp_path / "sweep.json")
    assert doc.reference is not None and doc.reference.done and doc.reference.target == "cpu-torch-fp32"
    assert len(doc.cells) == 9 and all(c.done for c in doc.cells)
    for c in doc.cells:
        m = c.measured
        assert m is not None and 0.0 <= m.miou <= 1.0 and len(m.iou) == len(m.class_names)
        assert m.latency.p50_ms > 0 and m.latency.p99_ms >= m.latency.p50_ms
        assert m.model_bytes > 0 and m.peak_memory.startswith("not measured")
    front = doc.fronts["cpu"]
    assert front and set(front) <= {c.config for c in doc.cells}
    (rec,) = doc.recommendations
    best, fastest = rec.best_within_latency, rec.fastest_within_drop
    assert best is not None and best.config in {c.config for c in doc.cells}
    assert fastest is not None and fastest.config in front
    assert any(cmd.startswith("rfdeploy export onnx") for cmd in best.commands)
    png = tmp_path / "front.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![Pareto front](front.png)" in (tmp_path / "sweep.md").read_text()
    assert "data:image/png;base64," in (tmp_path / "sweep.html").read_text()
    # one export, one IR per OpenVINO precision, reused by every size
    assert [s for s in first.ran if s.startswith("export") or s.startswith("build:") and "@" not in s] == [
        "export",
        "build:cpu-openvino-fp32",
        "build:cpu-openvino-int8",
    ]
    reshaped = sorted(s for s in first.ran if s.startswith("build:") and "@" in s)
    assert len(reshaped) == 6  # each OpenVINO IR reshaped to each size, not converted again
    static = tmp_path / "models" / "openvino-int8" / "model-96x128.xml"
    assert static.is_file() and (tmp_path / "models" / "openvino-int8" / "model-96x128.xml.meta.json").is_file()

    second = Sweep(settings, tmp_path).run()
    assert second.ran == [] and sorted(second.skipped) == sorted(first.ran)
    assert SweepDocument.read(tmp_path / "sweep.json").cells == doc.cells
