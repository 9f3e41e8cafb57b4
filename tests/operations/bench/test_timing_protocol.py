"""The steady-state timing protocol, the stability rule, the fraction-of-peak rule, device-state flags, and the
PyTorch GPU options (refused where they do not apply; on a GPU: CUDA graphs, cudnn.benchmark, compile modes).

The protocol's logic runs on a scripted clock: no test here asserts on wall time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from refinenet_deploy.cli import app
from refinenet_deploy.errors import UsageError
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations.bench import BenchOptions, benchmark, fraction_of_peak
from refinenet_deploy.operations.export import ExportSpec, export_onnx
from refinenet_deploy.telemetry import summarize, throttle_reasons
from refinenet_deploy.validate.latency import MAX_CV, latency_stats, timing_stability
from refinenet_deploy.validate.timing import TimingPlan, timed_run, warm_up

from ...helpers import AVAILABLE_SIMPLIFIER, default_init_model


class ScriptedStep:
    """A step whose n-th call 'takes' ``durations_ms[n]`` on a scripted clock (the last value repeats)."""

    def __init__(self, durations_ms: list[float]) -> None:
        self.durations = durations_ms
        self.calls = 0
        self.now = 0

    def clock(self) -> int:
        return self.now

    def __call__(self) -> None:
        ms = self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1
        self.now += int(ms * 1e6)


# --------------------------------------------------------------------------------------------- warm-up
def test_warmup_runs_until_two_window_medians_settle() -> None:
    step = ScriptedStep([50, 40, 30, 20] + [10] * 100)
    record = warm_up(step, TimingPlan(warmup=2, max_warmup=100, window=5), clock=step.clock)
    # windows of the last 10 samples: (30,20,10,10,10) | (10,...) first agree at the 12th call
    assert record.iterations == step.calls == 12
    assert record.converged is True and record.stopped_by == "settled" and record.steady
    assert record.window_medians_ms == [30.0, 10.0]


def test_warmup_that_never_settles_stops_at_the_iteration_cap() -> None:
    step = ScriptedStep([10.0 * (i + 1) for i in range(1000)])  # each call slower than the last
    record = warm_up(step, TimingPlan(warmup=3, max_warmup=40, max_warmup_s=1e6), clock=step.clock)
    assert record.iterations == 40 and record.converged is False and record.stopped_by == "iterations cap"


def test_warmup_stops_at_the_time_cap() -> None:
    step = ScriptedStep([1000.0 * (i + 1) for i in range(1000)])  # 1 s, 2 s, ...: never settles
    record = warm_up(step, TimingPlan(warmup=1, max_warmup=500, max_warmup_s=10.0), clock=step.clock)
    assert record.stopped_by == "time cap" and record.converged is False
    assert record.iterations == 4  # 1+2+3+4 s = 10 s


def test_warmup_minimum_is_kept_even_when_settled_earlier() -> None:
    step = ScriptedStep([10.0])
    record = warm_up(step, TimingPlan(warmup=30, max_warmup=100), clock=step.clock)
    assert record.iterations == 30 and record.converged is True


def test_fixed_warmup_is_exactly_the_count_and_not_judged() -> None:
    step = ScriptedStep([50, 40, 30, 20, 10])
    run = timed_run(step, TimingPlan(warmup=3, iterations=4), clock=step.clock)
    assert run.warmup.iterations == 3 and run.warmup.converged is None and run.warmup.stopped_by == "fixed count"
    assert len(run.samples_ns) == 4 and step.calls == 7
    assert "3 warm-up iterations" in TimingPlan(warmup=3).describe(warmup=run.warmup)


def test_timing_plan_refuses_a_cap_below_the_minimum() -> None:
    with pytest.raises(ValueError, match="max_warmup"):
        TimingPlan(warmup=10, max_warmup=5)


# --------------------------------------------------------------------------------------------- stability
def test_stability_rule_flags_a_loaded_machine() -> None:
    # issue 19's case: p50 930 ms, std 760 ms, p99 2300 ms
    rng = np.random.default_rng(0)
    loaded = np.concatenate([rng.normal(930, 50, 90), [2300] * 5, [3000] * 5]).clip(1) * 1e6
    verdict = timing_stability(latency_stats(loaded))
    assert not verdict.stable and any("p99/p50" in r for r in verdict.reasons)
    steady = timing_stability(latency_stats(rng.normal(50, 1, 100) * 1e6))
    assert steady.stable and steady.reasons == () and steady.cv < 0.05
    noisy = timing_stability({"mean_ms": 10.0, "std_ms": 10.0 * (MAX_CV + 0.01), "p50_ms": 10.0, "p99_ms": 11.0})
    assert not noisy.stable and noisy.reasons[0].startswith("CV")


def test_fraction_of_peak_over_one_is_not_shown() -> None:
    assert fraction_of_peak(50.0, 100.0) == (0.5, None)
    value, why = fraction_of_peak(104.0, 100.0)
    assert value is None and "does not bound" in why
    assert fraction_of_peak(None, 100.0) == (None, None)


# --------------------------------------------------------------------------------------------- device state
def test_throttle_reasons_and_flags() -> None:
    assert throttle_reasons(0x1 | 0x4) == ["gpu_idle", "sw_power_cap"]
    assert throttle_reasons(0x1000) == ["0x1000"]
    calm = {"available": True, "clock_event_reasons": ["gpu_idle"]}
    hot = {"available": True, "clock_event_reasons": ["hw_thermal_slowdown"]}
    assert summarize(calm, calm)["throttled"] is False
    state = summarize(calm, hot)
    assert state["throttled"] is True and state["flags"] == ["throttled: hw_thermal_slowdown"]
    missing = {"available": False, "reason": "not measured: nvidia-ml-py (pynvml) is not installed"}
    assert summarize(missing, missing)["throttled"] is None and "not measured" in summarize(missing, missing)["note"]
    jetson = {"available": True, "jetson": {"power_mode": {"mode": "15W"}, "clocks": {"locked": False}}}
    assert summarize(jetson, jetson)["flags"] == ["clocks not locked (jetson_clocks)"]
    assert summarize(None, None) is None


# --------------------------------------------------------------------------------------------- options
@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("timing")
    sd = default_init_model("rf_lw_test", num_classes=3).state_dict()
    ckpt = save_safetensors(sd, root / "m.safetensors", {"arch": "rf_lw_test", "input_size": [64, 64]})
    onnx = root / "m.onnx"
    export_onnx(
        ckpt, onnx, ExportSpec(input_size=(64, 64), dynamic=True, verify_sizes=(), simplify=AVAILABLE_SIMPLIFIER)
    )
    return {"ckpt": ckpt, "onnx": onnx}


@pytest.mark.parametrize(
    ("which", "args", "message"),
    [
        ("ckpt", ["--cuda-graph"], "--cuda-graph captures the model on a CUDA GPU"),
        ("onnx", ["--cuda-graph"], "--cuda-graph replays a CUDA graph"),
        ("ckpt", ["--no-cudnn-benchmark"], "set cuDNN on a CUDA GPU"),
        ("onnx", ["--cudnn-benchmark"], "--cudnn-benchmark set how a checkpoint runs in PyTorch"),
        ("onnx", ["--compile-mode", "max-autotune"], "--compile/--compile-mode set how a checkpoint runs"),
        ("ckpt", ["--compile-mode", "reduce-overhead"], "reduce-overhead replays CUDA graphs: GPU only"),
        ("ckpt", ["--compile-mode", "fastest"], "unknown --compile-mode: fastest"),
        ("ckpt", ["--warmup", "20", "--max-warmup", "5"], "--max-warmup 5 is below --warmup 20"),
    ],
)
def test_options_that_do_not_apply_are_exit_2(
    models: dict[str, Path], which: str, args: list[str], message: str
) -> None:
    res = CliRunner().invoke(app, ["bench", str(models[which]), "--iterations", "1", "--no-peak", *args])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()), res.output


def test_bench_records_the_protocol_and_the_stability(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    res = CliRunner().invoke(
        app, ["bench", str(models["ckpt"]), "--warmup", "2", "--max-warmup", "30", "--iterations", "5", "--no-peak",
              "--json", str(out)]
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    warm = doc["protocol"]["warmup"]
    assert warm["steady_state"] is True and 2 <= warm["iterations"] <= 30 and warm["max_iterations"] == 30
    assert warm["stopped_by"] in ("settled", "iterations cap", "time cap")
    assert (warm["stopped_by"] == "settled") is warm["converged"]
    stability = doc["timing_stability"]
    assert stability["of"] == "compute_only" and stability["cv"] == pytest.approx(doc["compute_only"]["cv"])
    assert stability["stable"] is (stability["reasons"] == [])
    config = doc["runtime_config"]  # on the CPU the GPU-only settings do not apply: recorded as such
    assert config["cudnn_benchmark"] is None and config["cuda_graph"] is False and config["compile_mode"] is None
    assert doc["device_state"] is None  # a CPU run on a machine that is not a Jetson


def test_fixed_warmup_is_recorded_as_fixed(models: dict[str, Path]) -> None:
    r = benchmark(models["onnx"], BenchOptions(warmup=3, max_warmup=3, iterations=2, peak=False))
    assert r["protocol"]["warmup"]["iterations"] == 3 and r["protocol"]["warmup"]["converged"] is None
    with pytest.raises(UsageError, match="--data is the image folder"):
        BenchOptions(data="imgs")


# --------------------------------------------------------------------------------------------- GPU (marked)
@pytest.mark.gpu
def test_cuda_graph_replays_what_eager_computes_and_restores_cudnn(models: dict[str, Path]) -> None:
    import torch

    from refinenet_deploy.backends import open_runner

    before = torch.backends.cudnn.benchmark
    x = {"input": np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)}
    with (
        open_runner(models["ckpt"], device="gpu") as eager,
        open_runner(models["ckpt"], device="gpu", cuda_graph=True) as graph,
    ):
        ref = next(iter(eager.infer(x).values()))
        outs = [next(iter(graph.infer(x).values())) for _ in range(3)]
        assert graph.graph_captures == 1  # one capture, then replays
        x2 = {"input": np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)}
        assert not np.allclose(next(iter(graph.infer(x2).values())), outs[0])  # a replay reads the new input
    assert torch.backends.cudnn.benchmark == before
    for out in outs:
        np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
def test_bench_cuda_graph_records_what_ran(models: dict[str, Path]) -> None:
    r = benchmark(models["ckpt"], device="gpu", cuda_graph=True, torch_precision="fp16", warmup=2, iterations=5)
    config = r["runtime_config"]
    assert config["cuda_graph"] is True and config["cudnn_benchmark"] is True and config["torch_precision"] == "fp16"
    assert r["device_only"]["iterations"] == 5 and r["first_call_ms"] > 0 and "CUDA graph" in r["label"]
    assert r["device_state"] is not None  # NVML reading, or the reason it is not measured
    r = benchmark(models["ckpt"], device="gpu", cudnn_benchmark=False, warmup=1, iterations=2, peak=False)
    assert r["runtime_config"]["cudnn_benchmark"] is False
    with pytest.raises(UsageError, match="reduce-overhead"):
        benchmark(models["ckpt"], device="gpu", cuda_graph=True, compile_mode="reduce-overhead", iterations=1)
