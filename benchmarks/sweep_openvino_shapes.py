"""One dynamic OpenVINO IR reused across sizes, or one static IR per size? (issue 23: measure which).

The sweep converts one IR per precision from its dynamic-shape ONNX and runs it at every size. The alternative is a
static IR per size (``model.reshape([1, 3, H, W])`` before compiling: what a deployment at one camera size ships).
This times both on the demo checkpoint (FP32 and NNCF INT8 IRs), interleaved in rounds so that a load change on
the machine hits both alike, and reports each size's p50 ratio static / dynamic. A benchmark script, not a test.

    python benchmarks/sweep_openvino_shapes.py --sizes 96x128,128x160,192x256 --json sweep_openvino_shapes.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "src" / "refinenet_deploy" / "demo" / "rf_lw_mbv2_synth.safetensors"


def build(out: Path, sizes: list[tuple[int, int]]) -> dict[str, Path]:
    from refinenet_deploy.backends.torch.exporter import ExportSpec
    from refinenet_deploy.data.synth import write_synth_dataset
    from refinenet_deploy.operations.build_openvino import convert_openvino
    from refinenet_deploy.operations.export import export_onnx

    calib = write_synth_dataset(out / "calib", 16, *sizes[-1], seed=11, split="train")
    onnx = out / "model.onnx"
    export_onnx(
        DEMO, onnx, ExportSpec(input_size=sizes[-1], dynamic=True, verify_sizes=tuple(sizes[:-1]), trt_check=False)
    )
    irs = {"fp32": out / "fp32" / "model.xml", "int8": out / "int8" / "model.xml"}
    convert_openvino(onnx, irs["fp32"], precision="fp32")
    convert_openvino(onnx, irs["int8"], precision="int8", data=calib, num_images=16)
    return irs


def p50_ms(compiled, shape: tuple[int, ...], iterations: int) -> float:  # noqa: ANN001
    req = compiled.create_infer_request()
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    for _ in range(10):
        req.infer([x])
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        req.infer([x])
        times.append(time.perf_counter_ns() - t0)
    return float(np.percentile(times, 50) / 1e6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="96x128,128x160,192x256")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import openvino as ov

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": args.threads, "INFERENCE_PRECISION_HINT": "f32"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        irs = build(Path(tmp), sizes)
        for precision, xml in irs.items():
            for h, w in sizes:
                dynamic = core.compile_model(core.read_model(str(xml)), "CPU", config)
                model = core.read_model(str(xml))
                model.reshape([1, 3, h, w])
                static = core.compile_model(model, "CPU", config)
                d, s = [], []
                for _ in range(args.rounds):  # interleaved: a load change hits both
                    d.append(p50_ms(dynamic, (1, 3, h, w), args.iterations))
                    s.append(p50_ms(static, (1, 3, h, w), args.iterations))
                row = {
                    "precision": precision,
                    "size": [h, w],
                    "dynamic_p50_ms": d,
                    "static_p50_ms": s,
                    "static_over_dynamic": float(np.median(s) / np.median(d)),
                }
                rows.append(row)
                print(json.dumps(row))
    doc = {
        "script": "benchmarks/sweep_openvino_shapes.py",
        "openvino": ov.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "iterations": args.iterations,
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
