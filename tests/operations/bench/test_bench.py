"""bench: structure of the result and the timing loop's protocol (never asserts on wall-clock values)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from refinenet_deploy.artifacts import read_metadata
from refinenet_deploy.cli import app
from refinenet_deploy.errors import UsageError
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations.bench import benchmark
from refinenet_deploy.operations.export import ExportSpec, export_onnx
from refinenet_deploy.operations.report import write_report
from refinenet_deploy.validate.timing import TimingPlan, time_loop

from ...helpers import AVAILABLE_SIMPLIFIER, default_init_model


class FakeClock:
    """Test double: a clock that advances 1 ms per reading."""

    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        self.t += 1_000_000
        return self.t


def test_time_loop_counts_only_timed_iterations_and_syncs() -> None:
    calls, syncs = [], []
    samples = time_loop(
        lambda: calls.append(1), TimingPlan(warmup=3, iterations=5), sync=lambda: syncs.append(1), clock=FakeClock()
    )
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
    ckpt = save_safetensors(
        default_init_model("rf_lw_test", num_classes=3).state_dict(), root / "m.safetensors", {"arch": "rf_lw_test"}
    )
    out = root / "m.onnx"
    export_onnx(
        ckpt, out, ExportSpec(input_size=(64, 64), dynamic=True, verify_sizes=(), simplify=AVAILABLE_SIMPLIFIER)
    )
    return out


def test_benchmark_result_structure(onnx_model: Path) -> None:
    r = benchmark(onnx_model, input_size=(48, 64), warmup=1, iterations=3, threads=1, end_to_end=True)
    assert r["peak_gmacs"] > 0  # values vary; structure is what is tested
    # a fraction is shown only where the probe bounds the run (0 < f <= 1); over 1 it is withheld, with the reason
    fraction = r["fraction_of_peak"]
    assert (0 < fraction <= 1) if fraction is not None else "does not bound" in r["peak_probe"]["fraction_not_shown"]
    probe = r["peak_probe"]  # the probe ran where and as the model ran
    assert probe["runtime"] == "onnxruntime" and probe["device"] == "cpu" and probe["precision"] == "fp32"
    assert r["artifact_precision"] == r["inference_precision"] == "fp32" and r["label"] == "fp32"
    assert r["runtime_config"]["providers"] == ["CPUExecutionProvider"]
    assert r["schema"] == "refinenet-deploy/bench" and r["runtime"] == "onnxruntime" and r["input_size"] == [48, 64]
    for key in ("compute_only", "end_to_end"):
        assert r[key]["iterations"] == 3
        assert {
            "mean_ms",
            "std_ms",
            "min_ms",
            "p50_ms",
            "p90_ms",
            "p95_ms",
            "p99_ms",
            "max_ms",
            "throughput_ips",
        } <= set(r[key])
        assert r[key]["min_ms"] <= r[key]["p50_ms"] <= r[key]["max_ms"]
    assert r["gmac_per_image"] > 0 and r["achieved_gmacs"] > 0 and r["peak_rss_mib"] > 0
    assert {"python", "cpu", "isa", "onnxruntime"} <= set(r["fingerprint"])
    assert "warm-up" in r["protocol"]["timing"]
    assert "device synchronised" not in r["protocol"]["timing"] and r["protocol"]["device_synchronised"] is False


def test_benchmark_checkpoint_and_errors(onnx_model: Path) -> None:
    r = benchmark(onnx_model.with_suffix(".safetensors"), input_size=(32, 32), warmup=0, iterations=2, peak=False)
    assert r["peak_gmacs"] is None and r["fraction_of_peak"] is None and "--no-peak" in r["peak_probe"]["reason"]
    assert r["runtime"] == "torch" and r["arch"] == "rf_lw_test"
    cfg = r["runtime_config"]  # what ran, recorded
    assert cfg["torch_precision"] == "fp32" and cfg["tf32"] is None and cfg["channels_last"] is False
    assert cfg["compiled"] is False and cfg["torch"] and r["inference_precision"] == "fp32"
    with pytest.raises(UsageError, match="unknown --device"):
        benchmark(onnx_model, device="tpu")
    with pytest.raises(UsageError, match="exclude each other"):
        benchmark(onnx_model, iterations=5, duration_s=1.0)


def test_cli_bench_json(onnx_model: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "bench",
            str(onnx_model),
            "--input-size",
            "32x32",
            "--warmup",
            "0",
            "--iterations",
            "2",
            "--json",
            str(tmp_path / "b.json"),
        ],
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads((tmp_path / "b.json").read_text())["compute_only"]["iterations"] == 2
    assert "compute-only" in res.stdout and "p50 ms" in res.stdout and "img/s" in res.stdout
    assert f"wrote {tmp_path / 'b.json'}" in res.stderr


@pytest.mark.openvino
def test_openvino_bench_records_the_compiled_configuration(onnx_model: Path, tmp_path: Path) -> None:
    from refinenet_deploy.operations.build_openvino import convert_openvino

    xml = convert_openvino(onnx_model, tmp_path / "m.xml").path
    r = benchmark(xml, warmup=1, iterations=2, peak=False)
    assert r["runtime"] == "openvino" and r["runtime_precision"] == r["inference_precision"] == "fp32"
    assert int(r["runtime_config"]["NUM_STREAMS"]) >= 1 and int(r["runtime_config"]["INFERENCE_NUM_THREADS"]) >= 1
    assert r["runtime_config"]["PERFORMANCE_HINT"] == "LATENCY" and "requests" not in r["compute_only"]
    # issue 22: the sidecar's precision audit travels into the bench JSON and the report
    audit = read_metadata(xml)["precision_audit"]
    assert r.precision_audit is not None and r.precision_audit.summary == audit["summary"]
    assert r.to_dict()["precision_audit"]["summary"].startswith("INT8 convolutions: 0/")
    (tmp_path / "b.json").write_text(json.dumps(r.to_dict()))
    write_report([tmp_path / "b.json"], tmp_path / "r.md")
    assert f"fp32; {audit['summary']} (on CPU)" in (tmp_path / "r.md").read_text()


def test_int8_artifacts_get_no_float_peak(onnx_model: Path, tmp_path: Path) -> None:
    from refinenet_deploy.data.synth import write_synth_dataset
    from refinenet_deploy.operations.calibrate import calibrate_onnx

    data = write_synth_dataset(tmp_path / "d", 4, 48, 64, seed=1)
    int8 = calibrate_onnx(onnx_model, data, tmp_path / "m.int8.onnx", num_images=4, producer="onnxruntime").path
    r = benchmark(int8, warmup=1, iterations=2)
    assert r["precision"] == "int8" and r["peak_gmacs"] is None and r["fraction_of_peak"] is None
    assert "no INT8 probe" in r["peak_probe"]["reason"]
    assert r["label"] == "int8 artifact, float parts fp32"  # what the file is, and what its float parts ran in


def test_device_stats_use_the_timed_iterations_only() -> None:
    from refinenet_deploy.operations.bench import device_stats

    times = [50.0, 40.0] + [2.0, 4.0, 6.0]  # two warm-up inferences, then three timed ones
    s = device_stats(times, timed=3, batch=1)
    assert s["iterations"] == 3 and s["p50_ms"] == pytest.approx(4.0) and s["max_ms"] == pytest.approx(6.0)
    assert "CUDA events" in s["clock"]
    assert device_stats(None, 3, 1) is None and device_stats([1.0], 3, 1) is None  # CPU runners: none


def test_cpu_runners_report_no_device_timing(onnx_model: Path) -> None:
    r = benchmark(onnx_model, input_size=(32, 32), warmup=0, iterations=2, peak=False)
    assert "device_only" not in r and r["device_memory_mib"] is None


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU error")
def test_gpu_without_cuda_is_exit_7(onnx_model: Path) -> None:
    res = CliRunner().invoke(
        app, ["bench", str(onnx_model.with_suffix(".safetensors")), "--device", "gpu", "--iterations", "1"]
    )
    assert res.exit_code == 7 and "no CUDA GPU" in res.output


@pytest.mark.skipif(
    "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(), reason="checks the missing EP"
)
def test_onnxruntime_gpu_without_cuda_provider_is_exit_4(onnx_model: Path) -> None:
    res = CliRunner().invoke(app, ["bench", str(onnx_model), "--device", "gpu", "--iterations", "1"])
    assert res.exit_code == 4 and "onnxruntime-gpu" in res.output


@pytest.mark.gpu
def test_torch_on_gpu_times_with_cuda_events(onnx_model: Path) -> None:
    r = benchmark(
        onnx_model.with_suffix(".safetensors"), device="gpu", input_size=(64, 64), warmup=2, iterations=5, peak=False
    )
    assert r["device_only"]["iterations"] == 5 and r["device_only"]["p50_ms"] > 0
    assert r["device_only"]["p50_ms"] <= r["compute_only"]["max_ms"]  # GPU time is part of the host-side time
    assert r["device_memory_mib"] > 0 and r["fingerprint"]["cuda_gpus"]
    assert "device synchronised" in r["protocol"]["timing"]
