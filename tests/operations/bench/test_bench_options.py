"""bench: what it refuses and what it records (input size, bounds, output path, precisions, corrupt images,
PyTorch settings, OpenVINO throughput and bf16), on the CPU; the GPU precisions and probe are marked ``gpu``.
Structure and messages only, never wall-clock values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from refinenet_deploy.cli import app
from refinenet_deploy.errors import DataError, UsageError
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations.bench import (
    BENCH_SCHEMA_VERSION,
    MAX_BATCH,
    benchmark,
    normalize_inference_precision,
    peak_probe,
    precision_label,
)
from refinenet_deploy.operations.export import ExportSpec, export_onnx
from refinenet_deploy.results import BenchResult, LatencyStats
from refinenet_deploy.validate.latency import achieved_gmacs, latency_stats, throughput_stats
from refinenet_deploy.validate.timing import TimingPlan, throughput_loop

from ...helpers import AVAILABLE_SIMPLIFIER, default_init_model

FAST = {"warmup": 0, "iterations": 2, "peak": False}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench_options")
    sd = default_init_model("rf_lw_test", num_classes=3).state_dict()
    plain = save_safetensors(sd, root / "m.safetensors", {"arch": "rf_lw_test"})
    sized = save_safetensors(sd, root / "sized.safetensors", {"arch": "rf_lw_test", "input_size": [48, 32]})
    onnx = root / "m.onnx"
    export_onnx(
        plain, onnx, ExportSpec(input_size=(64, 64), dynamic=True, verify_sizes=(), simplify=AVAILABLE_SIMPLIFIER)
    )
    return {"ckpt": plain, "sized": sized, "onnx": onnx, "root": root}


def _cli(*args: str):
    return CliRunner().invoke(app, ["bench", *args])


# --------------------------------------------------------------------------------------------- input size
def test_input_size_comes_from_metadata_or_is_required(models: dict[str, Path]) -> None:
    r = benchmark(models["sized"], **FAST)
    assert r["input_size"] == [48, 32] and r["input_size_source"] == "the checkpoint's metadata" and r["batch"] == 1
    r = benchmark(models["onnx"], **FAST)  # dynamic ONNX: the size it was exported at, from its metadata
    assert r["input_size"] == [64, 64] and r["input_size_source"] == "the artifact's metadata (export size)"
    r = benchmark(models["sized"], input_size=(32, 48), batch=2, **FAST)
    assert r["input_size"] == [32, 48] and r["input_size_source"] == "--input-size" and r["batch"] == 2
    with pytest.raises(UsageError, match="--input-size"):  # no silent 512x512
        benchmark(models["ckpt"], **FAST)
    res = _cli(str(models["ckpt"]), "--iterations", "1", "--no-peak")
    assert res.exit_code == 2 and "metadata records none" in res.output and "--input-size" in res.output


# --------------------------------------------------------------------------------------------- bounds
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iterations": 0}, "--iterations must be 1..1000000"),
        ({"iterations": 10**9}, "--iterations must be 1..1000000"),
        ({"warmup": -1}, "--warmup must be 0..10000"),
        ({"duration_s": 0.0, "iterations": None}, "--duration must be 0.1..3600"),
        ({"batch": 0}, f"--batch must be 1..{MAX_BATCH}"),
        ({"batch": MAX_BATCH + 1}, f"--batch must be 1..{MAX_BATCH}"),
        ({"threads": 0}, "--threads must be 1..1024"),
        ({"input_size": (100000, 100000)}, "each side must be 16..8192"),
        ({"input_size": (8192, 8192)}, "MP"),
        ({"input_size": (4096, 4096), "batch": 8}, "Lower --batch or --input-size"),
    ],
)
def test_numeric_bounds_are_refused_before_work(models: dict[str, Path], kwargs: dict, message: str) -> None:
    args = {**FAST, **kwargs}
    with pytest.raises(UsageError, match=re.escape(message)):
        benchmark(models["onnx"], **args)


def test_cli_bounds_exit_2(models: dict[str, Path]) -> None:
    for argv in (["--input-size", "100000x100000"], ["--iterations", "0"], ["--batch", "100000"]):
        res = _cli(str(models["onnx"]), *argv)
        assert res.exit_code == 2, (argv, res.output)
        assert "error:" in res.output or "Invalid value" in res.output


# --------------------------------------------------------------------------------------------- --json output
def test_json_output_is_probed_before_work_and_parents_created(models: dict[str, Path], tmp_path: Path) -> None:
    before = models["onnx"].read_bytes()
    for target, message in (
        (tmp_path, "is a folder"),
        (models["onnx"], "would overwrite the input"),
        (models["onnx"].with_name("m.meta.json"), "would overwrite the input"),
    ):
        res = _cli(str(models["onnx"]), "--iterations", "1", "--json", str(target))
        assert res.exit_code == 2 and message in res.output, res.output
    assert models["onnx"].read_bytes() == before  # the input is untouched
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = _cli(str(models["onnx"]), "--iterations", "1", "--json", str(blocker / "b.json"))
    assert res.exit_code == 2 and "is a file, not a folder" in res.output
    nested = tmp_path / "new" / "deeper" / "b.json"
    res = _cli(str(models["onnx"]), "--warmup", "0", "--iterations", "1", "--no-peak", "--json", str(nested))
    assert res.exit_code == 0, res.output
    assert json.loads(nested.read_text())["schema_version"] == BENCH_SCHEMA_VERSION and f"wrote {nested}" in res.stderr


# --------------------------------------------------------------------------------------------- precisions
def test_precision_spellings() -> None:
    assert [normalize_inference_precision(v) for v in ("f32", "fp32", "F16", "fp16", "bf16", None)] == [
        "fp32",
        "fp32",
        "fp16",
        "fp16",
        "bf16",
        None,
    ]
    with pytest.raises(UsageError, match="unsupported --inference-precision: .int4.. Use one of: fp32, fp16, bf16"):
        normalize_inference_precision("int4")

    def label(**fields: object) -> str:  # a BenchResult with only the fields the label reads
        fields.setdefault("runtime", "onnxruntime")
        return precision_label(BenchResult("m.onnx", device="cpu", compute_only=LatencyStats(1.0), **fields))

    assert label(artifact_precision="int8", inference_precision="fp32") == "int8 artifact, float parts fp32"
    assert label(artifact_precision="fp16", inference_precision="fp32") == "fp16 artifact, ran fp32"
    assert label(artifact_precision="fp32", inference_precision="fp32") == "fp32"
    torch_row = {"runtime": "torch", "inference_precision": "fp16", "runtime_config": {"channels_last": True}}
    assert label(**torch_row) == "fp16, channels-last"
    fallback = {"requested": "bf16"}
    assert label(artifact_precision="fp32", inference_precision="fp32", precision_fallback=fallback) == (
        "fp32 (bf16 requested, not available)"
    )


def test_options_of_other_runtimes_are_refused(models: dict[str, Path]) -> None:
    with pytest.raises(UsageError, match="OpenVINO's precision hint"):
        benchmark(models["onnx"], inference_precision="bf16", **FAST)
    with pytest.raises(UsageError, match="checkpoint runs in PyTorch"):
        benchmark(models["onnx"], torch_precision="fp16", **FAST)
    with pytest.raises(UsageError, match="OpenVINO's performance hint"):
        benchmark(models["onnx"], hint="throughput", **FAST)
    with pytest.raises(UsageError, match="--end-to-end"):
        benchmark(models["onnx"], data=models["root"], **FAST)


# --------------------------------------------------------------------------------------------- PyTorch settings
def test_torch_precisions_on_the_cpu(models: dict[str, Path]) -> None:
    from refinenet_deploy.backends.torch.runner import check_torch_precision, cpu_supports_bf16

    for precision in ("fp16", "tf32"):
        with pytest.raises(UsageError, match="CUDA GPU only"):
            check_torch_precision(precision, "cpu")
        res = _cli(str(models["sized"]), "--precision", precision, "--iterations", "1")
        assert res.exit_code == 2 and "CUDA GPU only" in res.output
    with pytest.raises(UsageError, match="no native bf16"):
        check_torch_precision("bf16", "cpu", bf16_supported=False)
    check_torch_precision("bf16", "cpu", bf16_supported=True)
    with pytest.raises(UsageError, match="Ampere"):
        check_torch_precision("tf32", "cuda", compute_capability=(7, 5))
    check_torch_precision("fp16", "cuda", compute_capability=(7, 5))
    with pytest.raises(UsageError, match="unsupported --precision"):
        check_torch_precision("fp8", "cpu")
    if cpu_supports_bf16():  # this CPU has bf16 units: it runs, and says so
        r = benchmark(models["sized"], torch_precision="bf16", **FAST)
        assert r["inference_precision"] == "bf16" and r["runtime_config"]["torch_precision"] == "bf16"
    else:
        res = _cli(str(models["sized"]), "--precision", "bf16", "--iterations", "1")
        assert res.exit_code == 2 and "no native bf16" in res.output


def test_torch_channels_last_and_compile_are_recorded(models: dict[str, Path], monkeypatch) -> None:
    import torch

    r = benchmark(models["sized"], channels_last=True, **FAST)
    assert r["runtime_config"]["channels_last"] is True and r["label"] == "fp32, channels-last"
    compiled = []

    def fake_compile(module):  # test double: records the call, runs the module as it is
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    r = benchmark(models["sized"], compile=True, **FAST)
    assert len(compiled) == 1 and r["runtime_config"]["compiled"] is True and r["first_call_ms"] > 0
    assert r["compute_only"]["iterations"] == 2  # the compiling first call is not among the timed ones


def test_channels_last_computes_the_same(models: dict[str, Path]) -> None:
    from refinenet_deploy.backends import open_runner
    from refinenet_deploy.validate.compare import compare_outputs
    from refinenet_deploy.validate.tolerances import FP32

    x = {"input": np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)}
    with open_runner(models["ckpt"]) as ref, open_runner(models["ckpt"], channels_last=True) as cl:
        a, b = next(iter(ref.infer(x).values())), next(iter(cl.infer(x).values()))
    assert compare_outputs(a, b, FP32).within_tolerance


# --------------------------------------------------------------------------------------------- corrupt images
def test_end_to_end_skips_corrupt_images(models: dict[str, Path], tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(folder / f"ok{i}.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    res = _cli(
        str(models["onnx"]), "--end-to-end", "--data", str(folder), "--warmup", "0", "--iterations", "2", "--no-peak"
    )
    assert res.exit_code == 0, res.output
    assert "broken.jpg" in res.stderr and "truncated.png" in res.stderr and "end-to-end" in res.stdout
    for f in folder.glob("ok*"):
        f.unlink()
    with pytest.raises(DataError, match="none of its 2 image"):
        benchmark(models["onnx"], end_to_end=True, data=folder, **FAST)
    res = _cli(str(models["onnx"]), "--end-to-end", "--data", str(folder), "--iterations", "1", "--no-peak")
    assert res.exit_code == 5 and "Traceback" not in res.output


# --------------------------------------------------------------------------------------------- peak probe
def test_peak_probe_refuses_where_no_honest_peak_exists() -> None:
    assert peak_probe("openvino", "cpu", None, "latency", "fp32", artifact_precision="int8")["gmacs"] is None
    ort_gpu = peak_probe("onnxruntime", "gpu", None, "latency", "fp32")
    assert ort_gpu["gmacs"] is None and "copies" in ort_gpu["reason"]
    assert peak_probe("tensorrt", "dla", None, "latency", "fp16", artifact_precision="fp16")["gmacs"] is None
    import torch

    if not torch.cuda.is_available():
        trt = peak_probe("tensorrt", "gpu", None, "latency", "fp16", artifact_precision="fp16")
        assert trt["gmacs"] is None and "no CUDA GPU" in trt["reason"]


def test_fp16_onnx_probe_runs_in_fp16(tmp_path: Path) -> None:
    import onnx

    from refinenet_deploy.operations.bench.peak import _probe_onnx

    _probe_onnx(tmp_path / "p.onnx", (1, 8, 16, 16), "fp16")
    graph = onnx.load(str(tmp_path / "p.onnx")).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert graph.initializer[0].data_type == onnx.TensorProto.FLOAT16


# --------------------------------------------------------------------------------------------- throughput
class FakePool:
    """Test double for an async infer queue: each submission completes at once with a 2 ms latency."""

    def __init__(self, jobs: int) -> None:
        self.jobs, self.latencies_ms, self.submitted, self.waits = jobs, [], 0, 0

    def submit(self, inputs) -> None:
        self.submitted += 1
        self.latencies_ms.append(2.0)

    def wait_all(self) -> None:
        self.waits += 1


def test_throughput_loop_and_stats() -> None:
    pool = FakePool(jobs=3)
    clock = iter(range(0, 10**12, 1_000_000))  # 1 ms per reading
    t = throughput_loop(pool, {}, TimingPlan(warmup=1, iterations=10), clock=lambda: next(clock))
    assert pool.submitted == 3 + 10 and pool.waits == 2  # warm-up fills every request once
    assert t.requests == 3 and len(t.latencies_ns) == 10 and t.wall_ns > 0
    s = throughput_stats([2_000_000] * 10, wall_ns=5_000_000_000, requests=3, batch=2)
    assert s.throughput_ips == pytest.approx(10 * 2 / 5.0) and s.p50_ms == pytest.approx(2.0) and s.requests == 3
    assert achieved_gmacs(1.5, s) == pytest.approx(1.5 * 4.0)
    lat = latency_stats([1_000_000, 3_000_000, 8_000_000])
    assert achieved_gmacs(2.0, lat, at="p50") == pytest.approx(2.0 / 0.003)
    with pytest.raises(ValueError):
        throughput_stats([1], wall_ns=0, requests=1)


def test_timing_protocol_says_device_synchronised_only_for_gpu_runs() -> None:
    plan = TimingPlan(warmup=1, iterations=2)
    assert "device synchronised" not in plan.describe()
    assert plan.describe(device_sync=True).endswith("device synchronised")


@pytest.fixture(scope="module")
def ir(models: dict[str, Path]) -> Path:
    from refinenet_deploy.operations.build_openvino import convert_openvino

    return convert_openvino(models["onnx"], models["root"] / "m.xml").path


@pytest.mark.openvino
def test_openvino_throughput_hint_runs_async_requests(ir: Path) -> None:
    import os

    r = benchmark(ir, hint="throughput", warmup=1, iterations=6, peak=True)
    c, cfg = r["compute_only"], r["runtime_config"]
    assert c["requests"] == cfg["infer_requests"] == int(cfg["OPTIMAL_NUMBER_OF_INFER_REQUESTS"])
    if len(os.sched_getaffinity(0)) > 1:
        assert c["requests"] > 1  # the throughput hint gives more than one stream on more than one core
    assert (
        c["iterations"] == 6 and c["throughput_ips"] > 0 and c["wall_s"] > 0 and cfg["PERFORMANCE_HINT"] == "THROUGHPUT"
    )
    assert r["peak_probe"]["statistic"] == "throughput" and r["achieved_at"] == "throughput"
    res = _cli(str(ir), "--hint", "throughput", "--warmup", "1", "--iterations", "4", "--no-peak")
    assert res.exit_code == 0 and "asynchronous requests in flight" in res.stdout and "img/s" in res.stdout


@pytest.mark.openvino
def test_openvino_bf16_is_refused_or_recorded(ir: Path) -> None:
    import openvino as ov

    has_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if has_bf16:  # a CPU with bf16 units runs it and records it
        r = benchmark(ir, inference_precision="bf16", **FAST)
        assert r["inference_precision"] == "bf16" and r["label"] == "fp32 artifact, ran bf16"
        return
    with pytest.raises(UsageError, match="--allow-fallback"):
        benchmark(ir, inference_precision="bf16", **FAST)
    res = _cli(str(ir), "--inference-precision", "bf16", "--iterations", "1")
    assert res.exit_code == 2 and "compiled the model in fp32" in res.output
    r = benchmark(ir, inference_precision="bf16", allow_fallback=True, **FAST)
    assert r["precision_fallback"] == {"requested": "bf16", "ran": "fp32"} and r["inference_precision"] == "fp32"
    assert r["requested_inference_precision"] == "bf16"
    r = benchmark(ir, inference_precision="f32", **FAST)  # the legacy spelling is accepted, recorded as fp32
    assert r["inference_precision"] == "fp32" and r["runtime_config"]["requested_inference_precision"] == "fp32"


# --------------------------------------------------------------------------------------------- GPU (marked)
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "tf32", "fp16", "bf16"])
def test_torch_gpu_precisions_record_what_ran_and_restore_tf32(models: dict[str, Path], precision: str) -> None:
    import torch

    if precision in ("tf32", "bf16") and torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("needs compute capability 8.0+")
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    r = benchmark(models["sized"], device="gpu", torch_precision=precision, channels_last=True, warmup=2, iterations=5)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    cfg = r["runtime_config"]
    assert r["inference_precision"] == cfg["torch_precision"] == precision and cfg["tf32"] is (precision == "tf32")
    assert cfg["cudnn"] and cfg["gpu"] and r["device_only"]["iterations"] == 5
    probe = r["peak_probe"]  # on the GPU, in the same precision, on CUDA events
    assert probe["device"] == "gpu" and probe["precision"] == precision and "CUDA events" in probe["clock"]
    assert r["peak_gmacs"] > 0 and 0 < r["fraction_of_peak"] <= 1 and "device_only" in r["achieved_at"]


@pytest.mark.gpu
def test_torch_gpu_fp16_output_agrees_with_fp32(models: dict[str, Path]) -> None:
    from refinenet_deploy.backends import open_runner

    x = {"input": np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)}
    with (
        open_runner(models["ckpt"], device="gpu") as a,
        open_runner(models["ckpt"], device="gpu", torch_precision="fp16") as b,
    ):
        ref, half = next(iter(a.infer(x).values())), next(iter(b.infer(x).values()))
    assert half.dtype == np.float32 and (ref.argmax(1) == half.argmax(1)).mean() > 0.99
