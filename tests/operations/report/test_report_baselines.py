"""The baseline a speed-up is against is chosen by a stated rule (issue 19, items 2, 3, 10; issue 21, item 2):
same threads first, strict fp32, stable; ties reported; never the order of the arguments. GPU rows also show the
speed-up against the fastest PyTorch row on the same GPU, and the pipeline summary has both columns.

The documents are FAKE (tests/operations/report/docs.py): hand-written numbers chosen so that speed-ups are exact."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from refinenet_deploy.backends.torch.runner import TorchRunner
from refinenet_deploy.operations.pipeline.config import TARGETS
from refinenet_deploy.operations.pipeline.summary import summary_rows
from refinenet_deploy.operations.report import ReportRow, build_rows, read_documents
from refinenet_deploy.results import BenchResult

from .docs import GPU_HOST, bench_doc, parity_doc, stats, write_docs


def _rows(tmp_path: Path, *docs: dict) -> list[ReportRow]:
    loaded, _ = read_documents(write_docs(tmp_path, *docs))
    return build_rows(loaded)[0]


def _torch(p50: float, threads: int | None, name: str, **extra: object) -> dict:
    return bench_doc(
        "rf_lw_mbv2", "torch", p50, artifact=f"/runs/{name}.safetensors", protocol={"threads": threads}, **extra
    )


def test_baseline_does_not_depend_on_argument_order_and_threads_are_shown(tmp_path: Path) -> None:
    # issue 19 item 2: PyTorch with --threads 1 (930 ms) and with the default (80 ms); OpenVINO ran with the default
    ov = bench_doc("rf_lw_mbv2", "openvino", 8.0, artifact="/runs/m.xml")
    one, default = _torch(930.0, 1, "t1"), _torch(80.0, None, "tdefault")
    speedups = set()
    for i, order in enumerate(([one, default, ov], [ov, default, one], [default, ov, one])):
        row = next(r for r in _rows(tmp_path / str(i), *order) if r.runtime == "openvino")
        speedups.add(round(row.speedup, 6))
    assert speedups == {10.0}  # against the PyTorch run with the same (default) threads, whatever the order
    rows = _rows(tmp_path / "shown", one, default, ov)
    assert {r.precision for r in rows if r.runtime == "torch"} == {"fp32, 1 thread", "fp32"}


def test_tied_baselines_are_reported_and_the_fastest_is_used(tmp_path: Path) -> None:
    ov = bench_doc("rf_lw_mbv2", "openvino", 10.0, artifact="/runs/m.xml")
    rows = _rows(tmp_path, _torch(100.0, None, "a"), _torch(50.0, None, "b"), ov)
    row = next(r for r in rows if r.runtime == "openvino")
    assert row.speedup == pytest.approx(5.0)  # 50 / 10: the conservative one
    assert any("2 PyTorch results tie as baseline" in n for n in row.notes)


def test_unstable_timings_are_flagged_and_an_unstable_baseline_is_named(tmp_path: Path) -> None:
    # issue 19 item 3: p50 930 ms, std 760 ms, p99 2300 ms
    loaded = {**stats(930.0), "std_ms": 760.0, "p99_ms": 2300.0}
    ov = bench_doc("rf_lw_mbv2", "openvino", 3.0, artifact="/runs/m.xml")
    rows = _rows(tmp_path, _torch(930.0, None, "busy", compute_only=loaded), ov)
    base = next(r for r in rows if r.runtime == "torch")
    assert base.unstable and any(n.startswith("unstable timing") for n in base.notes)
    row = next(r for r in rows if r.runtime == "openvino")
    assert row.speedup == pytest.approx(310.0)
    assert any("UNSTABLE PyTorch timing" in n for n in row.notes)


def test_a_stable_baseline_is_preferred_over_an_unstable_one(tmp_path: Path) -> None:
    loaded = {**stats(900.0), "std_ms": 700.0, "p99_ms": 2300.0}
    ov = bench_doc("rf_lw_mbv2", "openvino", 10.0, artifact="/runs/m.xml")
    rows = _rows(tmp_path, _torch(900.0, None, "busy", compute_only=loaded), _torch(100.0, None, "idle"), ov)
    row = next(r for r in rows if r.runtime == "openvino")
    assert row.speedup == pytest.approx(10.0) and not any("tie" in n for n in row.notes)


def test_gpu_parity_and_bench_join_into_one_row_labelled_by_the_gpu(tmp_path: Path) -> None:
    # issue 19 item 10: the parity of a gpu-torch-fp16 target was shown as "cpu (accuracy only ...)"
    art = "/bundle/checkpoint/m.safetensors"
    cfg = {"torch_precision": "fp16", "tf32": False, "cuda_graph": True}
    bench = bench_doc("rf_lw_mbv2", "torch", 2.0, device="gpu", fp=GPU_HOST, artifact=art, runtime_config=cfg)
    bench["inference_precision"] = "fp16"
    parity = parity_doc(art, runtime="torch", device="gpu", runtime_precision="fp16")
    rows = _rows(tmp_path, bench, parity)
    assert len(rows) == 1 and rows[0].device.startswith("NVIDIA H100") and rows[0].parity == "pass"
    assert "CUDA graph" in rows[0].precision
    assert TorchRunner(lambda: None, device="cuda").device == "gpu" and TorchRunner(lambda: None).device == "cpu"


def test_gpu_rows_also_compare_with_the_fastest_pytorch_on_that_gpu(tmp_path: Path) -> None:
    strict = {"torch_precision": "fp32", "tf32": False}
    graph = {"torch_precision": "fp16", "tf32": False, "cuda_graph": True}
    docs = [
        bench_doc("rf_lw50", "torch", 6.0, device="gpu", fp=GPU_HOST, artifact="/r/a.pth", runtime_config=strict),
        bench_doc("rf_lw50", "torch", 2.0, device="gpu", fp=GPU_HOST, artifact="/r/b.pth", runtime_config=graph),
        bench_doc("rf_lw50", "tensorrt", 1.0, device="gpu", fp=GPU_HOST, artifact="/r/m.engine", precision="fp16"),
    ]
    row = next(r for r in _rows(tmp_path, *docs) if r.runtime == "tensorrt")
    assert row.speedup == pytest.approx(6.0) and row.baseline == "PyTorch fp32"
    assert row.speedup_best == pytest.approx(2.0) and row.baseline_best.startswith("PyTorch fp16")


def test_pipeline_summary_has_same_gpu_columns() -> None:
    # issue 21 item 2: gpu-torch-fp16 showed "no baseline" (the only PyTorch FP32 row was the CPU host's)
    cpu_base = BenchResult.from_dict(bench_doc("rf_lw_mbv2", "torch", 80.0))
    gpu = {"device": "gpu", "fp": GPU_HOST}
    fp32 = BenchResult.from_dict(bench_doc("rf_lw_mbv2", "torch", 4.0, **gpu))
    best = BenchResult.from_dict(bench_doc("rf_lw_mbv2", "torch", 1.0, **gpu, timing_stability={"stable": False}))
    target = BenchResult.from_dict(bench_doc("rf_lw_mbv2", "torch", 1.25, **gpu))
    outcome = SimpleNamespace(
        target=TARGETS["gpu-torch-fp16"], parity=None, bench=target, status="done", predicted=None, reason=None,
        commands=[],
    )  # fmt: skip
    row = summary_rows([outcome], [cpu_base], {"gpu-torch-fp32": fp32, "gpu-torch-best": best})[0]
    assert row["vs PT fp32"] == "3.20x" and row["vs PT best"] == "0.80x!"
    row = summary_rows([outcome], [cpu_base])[0]
    assert row["vs PT fp32"] == row["vs PT best"] == "no baseline"


def test_device_flags_reach_the_report(tmp_path: Path) -> None:
    state = {"throttled": True, "flags": ["throttled: hw_thermal_slowdown"]}
    rows = _rows(tmp_path, bench_doc("rf_lw50", "tensorrt", 1.0, device="gpu", fp=GPU_HOST, device_state=state))
    assert "device: throttled: hw_thermal_slowdown" in rows[0].notes
