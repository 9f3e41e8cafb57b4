"""mIoU drop of the demo model's INT8 builds against the calibration-set size, to pick the pipeline's default.

For each size N: NNCF INT8 OpenVINO IR (`rfdeploy build openvino --int8 --num-images N`) and the ModelOpt Q/DQ ONNX
(`rfdeploy calibrate --num-images N`), each checked with parity against the same checkpoint in PyTorch on a fresh
synthetic validation split (seed 7; calibration images: seed 11, the pipeline's). Repeats with several sampling seeds
show the spread. A benchmark script, not a test: results depend on the CPU's instruction set (name it in notes).

    python benchmarks/calibration_size.py --sizes 8,16,32,64,100,128,200 --seeds 0,1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo" / "rf_lw_mbv2_synth.safetensors"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="8,16,32,64,100,128,200")
    ap.add_argument("--seeds", default="0,1", help="sampling seeds of the calibration subset")
    ap.add_argument("--val-images", type=int, default=100)
    ap.add_argument("--producers", default="nncf,modelopt")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    from refinenet_deploy.data.synth import write_synth_dataset
    from refinenet_deploy.environment import cpu_info
    from refinenet_deploy.operations.build_openvino import convert_openvino
    from refinenet_deploy.operations.calibrate import calibrate_onnx
    from refinenet_deploy.operations.export import ExportSpec, export_onnx
    from refinenet_deploy.operations.parity import validate_parity

    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    producers = args.producers.split(",")
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        val, calib = tmp_path / "val", tmp_path / "calib"
        write_synth_dataset(val, args.val_images, 128, 128, 7, split="val")
        write_synth_dataset(calib, max(sizes), 128, 128, 11, split="train")
        onnx = tmp_path / "m.onnx"
        export_onnx(DEMO, onnx, ExportSpec(input_size=(128, 128), verify_sizes=(), trt_check=False))
        for n in sizes:
            for seed in seeds:
                for producer in producers:
                    t0 = time.perf_counter()
                    if producer == "nncf":
                        art = tmp_path / f"m.{n}.{seed}.int8.xml"
                        convert_openvino(onnx, art, precision="int8", data=calib, num_images=n, seed=seed)
                    else:
                        art = tmp_path / f"m.{n}.{seed}.int8.onnx"
                        calibrate_onnx(onnx, calib, art, num_images=n, seed=seed, producer=producer)
                    build_s = time.perf_counter() - t0
                    rep = validate_parity(DEMO, art, val).to_dict()
                    row = {
                        "producer": producer,
                        "num_images": n,
                        "seed": seed,
                        "miou_drop_points": rep["miou_drop_points"],
                        "pixel_agreement": rep["pixel_agreement"],
                        "build_s": round(build_s, 1),
                    }
                    results.append(row)
                    print(json.dumps(row), flush=True)
    print("\n| producer | images | mIoU drop (pt), mean | max | agreement (%) |\n|---|---:|---:|---:|---:|")
    for producer in producers:
        for n in sizes:
            rows = [r for r in results if r["producer"] == producer and r["num_images"] == n]
            drops = [r["miou_drop_points"] for r in rows]
            agree = statistics.mean(r["pixel_agreement"] for r in rows) * 100
            print(f"| {producer} | {n} | {statistics.mean(drops):.3f} | {max(drops):.3f} | {agree:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_info(), "val_images": args.val_images, "rows": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
