"""bench: structure of the result and the timing loop's protocol (never asserts on wall-clock values)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from refinenet_deploy.bench import benchmark
from refinenet_deploy.cli import app
from refinenet_deploy.errors import UsageError
from refinenet_deploy.export.onnx import ExportSpec, export_onnx
from refinenet_deploy.models import create_model
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.validate.bench import TimingPlan, time_loop


class FakeClock:
    """Test double: a clock that advances 1 ms per reading."""

    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        self.t += 1_000_000
        return self.t


def test_time_loop_counts_only_timed_iterations_and_syncs() -> None:
    calls, syncs = [], []
    samples = time_loop(lambda: calls.append(1), TimingPlan(warmup=3, iterations=5), sync=lambda: syncs.append(1),
                        clock=FakeClock())
    assert len(samples) == 5 and len(calls) == 8 and len(syncs) == 8
    assert all(s == 1_000_000 for s in samples)


def test_time_loop_duration_mode() -> None:
    samples = time_loop(lambda: None, TimingPlan(warmup=0, iterations=None, duration_s=0.01), clock=FakeClock())
    assert 5 <= len(samples) <= 6  # ~10 ms at 2 ms per iteration of the fake clock, at least min_iterations


def test_timing_plan_validation() -> None:
    with pytest.raises(ValueError):
        TimingPlan(iterations=10, duration_s=1.0)
    with pytest.raises(ValueError):
        TimingPlan(iterations=0)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    ckpt = save_safetensors(create_model("rf_lw_test", num_classes=3).state_dict(), root / "m.safetensors",
                            {"arch": "rf_lw_test"})
    out = root / "m.onnx"
    export_onnx(ckpt, out, ExportSpec(input_size=(64, 64), dynamic=True, verify_sizes=()))
    return out


def test_benchmark_result_structure(onnx_model: Path) -> None:
    r = benchmark(onnx_model, input_size=(48, 64), warmup=1, iterations=3, threads=1, end_to_end=True)
    assert r["peak_gmacs"] > 0 and r["fraction_of_peak"] > 0  # values vary; structure is what is tested
    assert r["schema"] == "refinenet-deploy/bench" and r["runtime"] == "onnxruntime" and r["input_size"] == [48, 64]
    for key in ("compute_only", "end_to_end"):
        assert r[key]["iterations"] == 3
        assert {"mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
                "throughput_ips"} <= set(r[key])
        assert r[key]["min_ms"] <= r[key]["p50_ms"] <= r[key]["max_ms"]
    assert r["gmac_per_image"] > 0 and r["achieved_gmacs"] > 0 and r["peak_rss_mib"] > 0
    assert {"python", "cpu", "isa", "onnxruntime"} <= set(r["fingerprint"])
    assert "warm-up" in r["protocol"]["timing"]


def test_benchmark_checkpoint_and_errors(onnx_model: Path) -> None:
    r = benchmark(onnx_model.with_suffix(".safetensors"), input_size=(32, 32), warmup=0, iterations=2, peak=False)
    assert r["peak_gmacs"] is None and r["fraction_of_peak"] is None
    assert r["runtime"] == "torch" and r["arch"] == "rf_lw_test"
    with pytest.raises(UsageError, match="unknown --device"):
        benchmark(onnx_model, device="tpu")
    with pytest.raises(UsageError, match="exclude each other"):
        benchmark(onnx_model, iterations=5, duration_s=1.0)


def test_cli_bench_json(onnx_model: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["bench", str(onnx_model), "--input-size", "32x32", "--warmup", "0",
                                   "--iterations", "2", "--json", str(tmp_path / "b.json")])
    assert res.exit_code == 0, res.stderr
    assert json.loads((tmp_path / "b.json").read_text())["compute_only"]["iterations"] == 2
    assert "compute-only" in res.stdout


@pytest.mark.openvino
def test_openvino_bench_records_the_compiled_configuration(onnx_model: Path, tmp_path: Path) -> None:
    from refinenet_deploy.export.openvino import convert_openvino

    xml = convert_openvino(onnx_model, tmp_path / "m.xml").path
    r = benchmark(xml, warmup=1, iterations=2, peak=False)
    assert r["runtime"] == "openvino" and r["runtime_precision"] == "f32"
    assert int(r["runtime_config"]["NUM_STREAMS"]) >= 1 and int(r["runtime_config"]["INFERENCE_NUM_THREADS"]) >= 1


def test_int8_artifacts_get_no_float_peak(onnx_model: Path, tmp_path: Path) -> None:
    from refinenet_deploy.calibration.qdq import calibrate_onnx
    from refinenet_deploy.data.synth import write_synth_dataset

    data = write_synth_dataset(tmp_path / "d", 4, 48, 64, seed=1)
    int8 = calibrate_onnx(onnx_model, data, tmp_path / "m.int8.onnx", num_images=4, producer="onnxruntime").path
    r = benchmark(int8, warmup=1, iterations=2)
    assert r["precision"] == "int8" and r["peak_gmacs"] is None and r["fraction_of_peak"] is None
    assert "no INT8 probe" in r["peak_probe"]
