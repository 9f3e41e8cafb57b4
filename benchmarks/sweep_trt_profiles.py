"""One TensorRT engine per sweep size, or one engine with an optimisation profile per size? (issue 23: measure).

What this machine can measure without a GPU, with TensorRT-RTX (which builds real engines on a CPU): the build
time and the file size of (a) one static engine per size (min = opt = max, what ``rfdeploy sweep`` builds) and
(b) one engine holding one profile per size, from the same dynamic ONNX export of the demo checkpoint. What it
cannot measure: latency per profile and TensorRT 10/11 (its autotuner times tactics on the GPU, so its build
times differ); those need a device. A benchmark script, not a test.

    python benchmarks/sweep_trt_profiles.py --sizes 96x128,128x160,192x256 \
        --json benchmarks/results/sweep_trt_profiles_rtx_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "src" / "refinenet_deploy" / "demo" / "rf_lw_mbv2_synth.safetensors"


def export(out: Path, sizes: list[tuple[int, int]]) -> Path:
    from refinenet_deploy.backends.torch.exporter import ExportSpec
    from refinenet_deploy.operations.export import export_onnx

    onnx = out / "model.onnx"
    export_onnx(DEMO, onnx, ExportSpec(input_size=sizes[-1], dynamic=True, trt_check=False))
    return onnx


def build(trt, onnx: Path, profiles: list[tuple[int, int]]) -> tuple[float, int]:  # noqa: ANN001
    """Build one engine with one profile per entry of ``profiles`` (static: min = opt = max); (seconds, bytes)."""
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx.read_bytes()):
        raise SystemExit(f"could not parse {onnx}: {parser.get_error(0)}")
    config = builder.create_builder_config()
    name = network.get_input(0).name
    for h, w in profiles:
        profile = builder.create_optimization_profile()
        profile.set_shape(name, (1, 3, h, w), (1, 3, h, w), (1, 3, h, w))
        config.add_optimization_profile(profile)
    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if plan is None:
        raise SystemExit(f"the build of {profiles} failed")
    return seconds, len(bytes(memoryview(plan)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="96x128,128x160,192x256")
    ap.add_argument("--rounds", type=int, default=3, help="builds of each kind, interleaved (medians reported)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import tensorrt_rtx as trt

    from refinenet_deploy.environment import cpu_info

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    per_size: dict[str, list[float]] = {f"{h}x{w}": [] for h, w in sizes}
    multi: list[float] = []
    sizes_bytes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export(Path(tmp), sizes)
        for _ in range(args.rounds):
            for h, w in sizes:
                seconds, size = build(trt, onnx, [(h, w)])
                per_size[f"{h}x{w}"].append(seconds)
                sizes_bytes[f"{h}x{w}"] = size
            seconds, size = build(trt, onnx, sizes)
            multi.append(seconds)
            sizes_bytes["profiles"] = size
    per_size_total = sum(statistics.median(v) for v in per_size.values())
    per_size_bytes = sum(v for k, v in sizes_bytes.items() if k != "profiles")
    result = {
        "library": f"tensorrt_rtx {trt.__version__}",
        "cpu": cpu_info().get("cpu"),
        "isa": cpu_info().get("isa"),
        "platform": platform.platform(),
        "sizes": args.sizes,
        "rounds": args.rounds,
        "per_size_build_s_median": {k: round(statistics.median(v), 3) for k, v in per_size.items()},
        "per_size_build_s_total": round(per_size_total, 3),
        "per_size_bytes": {k: v for k, v in sizes_bytes.items() if k != "profiles"},
        "per_size_bytes_total": per_size_bytes,
        "profiles_build_s_median": round(statistics.median(multi), 3),
        "profiles_bytes": sizes_bytes["profiles"],
        "not_measured": "latency per profile, and TensorRT 10/11 builds (they time tactics on a GPU): no GPU here",
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
