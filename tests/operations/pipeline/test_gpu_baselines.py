"""A bundle with GPU targets plans the same-GPU PyTorch baselines (issue 21, item 2): strict FP32 and fp16 from a
CUDA graph, with device commands generated from the same arguments as the library call (they cannot drift), and
pending baselines never fail a run. The plan is inspected without running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from refinenet_deploy.operations.pipeline import Pipeline, make_config
from refinenet_deploy.operations.pipeline.capabilities import GPU_BASELINES, bench_device_kwargs, bench_flags
from refinenet_deploy.operations.pipeline.config import TARGETS


def _plan(tmp_path: Path, targets: str) -> dict[str, object]:
    cfg = make_config({}, {"targets": targets, "input_size": "64x64", "warmup": 1, "iterations": 3})
    return {s.id: s for s in Pipeline(cfg, tmp_path / "b").plan()}


def test_gpu_targets_bring_same_gpu_baselines(tmp_path: Path) -> None:
    steps = _plan(tmp_path, "cpu-onnxruntime-fp32,gpu-torch-fp16")
    fp32, best, target = steps["bench:gpu-torch-fp32"], steps["bench:gpu-torch-best"], steps["bench:gpu-torch-fp16"]
    assert fp32.baseline and best.baseline and not target.baseline
    assert "--device gpu" in fp32.commands[0] and "--precision fp32" in fp32.commands[0]
    assert "--cuda-graph" not in fp32.commands[0]
    assert "--precision fp16 --cuda-graph" in best.commands[0]
    assert "--precision fp16 --cuda-graph" in target.commands[0]  # PyTorch on a GPU replays a CUDA graph
    assert fp32.settings["options"] == GPU_BASELINES["gpu-torch-fp32"]
    if fp32.blocked:  # no GPU here: pending, with the reason
        assert "GPU" in fp32.blocked


def test_cpu_only_bundles_have_no_gpu_baselines(tmp_path: Path) -> None:
    steps = _plan(tmp_path, "cpu-onnxruntime-fp32")
    assert not any(name.startswith("bench:gpu-torch") for name in steps)
    assert "options" not in steps["bench:cpu-onnxruntime-fp32"].settings  # CPU step keys are unchanged


@pytest.mark.parametrize("name", ["gpu-torch-fp16", "cpu-onnxruntime-fp32"])
def test_bench_flags_say_what_the_library_call_says(name: str) -> None:
    t = TARGETS[name]
    kwargs = bench_device_kwargs(t, "gpu" if t.device == "gpu" else "cpu")
    flags = bench_flags(kwargs)
    assert ("--cuda-graph" in flags) is bool(kwargs.get("cuda_graph"))
    assert bench_flags({"cudnn_benchmark": False}) == ["--no-cudnn-benchmark"]
    with pytest.raises(ValueError, match="no bench flag"):
        bench_flags({"compile_mode": "max-autotune"})
