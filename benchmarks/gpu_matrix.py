"""The PyTorch GPU bench matrix and the hand-written CUDA-graph cross-check (issue 21), in one process.

For each model (rf_lw50, rf_lw_mbv2; seeded random weights, 21 classes) at 512x512, batch 1, ``benchmark`` runs
PyTorch on the GPU in fp32 (TF32 off) / tf32 / fp16 / bf16, eager and replayed from a CUDA graph, plus fp16 under
torch.compile (default mode). Then a plain PyTorch loop, written here without rfdeploy, captures the same network in
fp16 into a CUDA graph and times 200 replays with CUDA events: bench's CUDA-graph device-time p50 must be within
1.15x of the loop's. Results go to one JSON file (the GPU, driver, PyTorch version and date recorded).

Usage (on a GPU machine, from the repository root; benchmarks/gpu_check.sh runs it):
    PYTHONPATH=src python3 benchmarks/gpu_matrix.py --out benchmarks/results/gpu_matrix.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from refinenet_deploy.environment import nvidia_gpus
from refinenet_deploy.models import create_model
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations.bench import BenchOptions, benchmark

SIZE = (512, 512)
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
CROSSCHECK_LIMIT = 1.15


def make_checkpoint(arch: str, folder: Path) -> Path:
    torch.manual_seed(0)
    model = create_model(arch, num_classes=21)
    return save_safetensors(model.state_dict(), folder / f"{arch}.safetensors", {"arch": arch})


def hand_written_graph_loop(arch: str, replays: int = 200) -> dict[str, float]:
    """The cross-check: no rfdeploy code in the timed path. fp16 weights and input, cudnn.benchmark on, a CUDA graph
    captured after warm-up on a side stream, each replay timed with CUDA events."""
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    net = create_model(arch, num_classes=21).eval().cuda().half()
    x = torch.randn(1, 3, *SIZE, device="cuda", dtype=torch.float16)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(5):
            net(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(graph):
        net(x)
    for _ in range(20):
        graph.replay()
    torch.cuda.synchronize()
    times = []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(replays):
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    del graph, net
    torch.cuda.empty_cache()
    return {"p50_ms": float(np.median(times)), "mean_ms": float(np.mean(times)), "replays": replays}


def row(doc: dict) -> dict:
    dev = doc.get("device_only") or {}
    return {
        "label": doc["label"],
        "device_p50_ms": dev.get("p50_ms"),
        "device_cv": dev.get("cv"),
        "compute_p50_ms": doc["compute_only"]["p50_ms"],
        "warmup": (doc["protocol"].get("warmup") or {}).get("iterations"),
        "warmup_settled": (doc["protocol"].get("warmup") or {}).get("converged"),
        "stable": (doc.get("timing_stability") or {}).get("stable"),
        "first_call_ms": doc.get("first_call_ms"),
        "fraction_of_peak": doc.get("fraction_of_peak"),
        "peak_gmacs": doc.get("peak_gmacs"),
        "runtime_config": doc.get("runtime_config"),
        "device_state": doc.get("device_state"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="fp16 only, no torch.compile (a smoke run)")
    parser.add_argument("--models", default="rf_lw50,rf_lw_mbv2")
    parser.add_argument("--ckpt-dir", type=Path, default=Path("/tmp/rfdeploy_gpu_matrix"), help="checkpoints made here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_matrix: no CUDA GPU here; nothing measured", file=sys.stderr)
        return 2
    folder = args.ckpt_dir
    folder.mkdir(parents=True, exist_ok=True)
    gpus = nvidia_gpus()
    result: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "gpu": torch.cuda.get_device_name(),
        "driver": gpus[0]["driver"] if gpus else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "input_size": list(SIZE),
        "batch": 1,
        "models": {},
    }
    precisions = ("fp16",) if args.quick else PRECISIONS
    for arch in args.models.split(","):
        ckpt = make_checkpoint(arch, folder)
        rows: dict[str, dict] = {}
        for precision in precisions:
            for mode in ("eager", "graph"):
                opts = BenchOptions(
                    device="gpu",
                    input_size=SIZE,
                    torch_precision=precision,
                    cuda_graph=mode == "graph",
                    iterations=100,
                    peak=precision == "fp16",
                )
                t0 = time.perf_counter()
                rows[f"{precision} {mode}"] = row(benchmark(ckpt, opts).to_dict())
                print(f"{arch} {precision} {mode}: {rows[f'{precision} {mode}']['device_p50_ms']:.3f} ms "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
        if not args.quick:
            opts = BenchOptions(device="gpu", input_size=SIZE, torch_precision="fp16", compile=True, iterations=100)
            try:
                rows["fp16 compile"] = row(benchmark(ckpt, opts).to_dict())
                print(f"{arch} fp16 compile: {rows['fp16 compile']['device_p50_ms']:.3f} ms", flush=True)
            except Exception as exc:  # record, do not lose the rest of the matrix
                rows["fp16 compile"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        loop = hand_written_graph_loop(arch)
        ours = rows["fp16 graph"]["device_p50_ms"]
        ratio = ours / loop["p50_ms"]
        result["models"][arch] = {
            "bench": rows,
            "hand_written_graph_loop_fp16": loop,
            "bench_graph_over_loop": ratio,
            "within_limit": ratio <= CROSSCHECK_LIMIT,
        }
        print(f"{arch}: bench fp16 graph {ours:.3f} ms / hand-written loop {loop['p50_ms']:.3f} ms = {ratio:.3f}x "
              f"(limit {CROSSCHECK_LIMIT}x)", flush=True)  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2, default=str))
    ok = all(m["within_limit"] for m in result["models"].values())
    print(f"wrote {args.out}; cross-check {'PASSED' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
