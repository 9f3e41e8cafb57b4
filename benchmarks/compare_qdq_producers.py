"""Which Q/DQ INT8 producer: ONNX Runtime `quantize_static` or NVIDIA ModelOpt ONNX PTQ, on this family.

Both producers quantize the same FP32 ONNX of the demo model (static 128x128) on the same calibration
images (synthetic, seed 11) with each calibration method they share (entropy, max); every Q/DQ model then
goes through `rfdeploy parity` against the PyTorch checkpoint on a fresh split (seed 7, 100 images) in ONNX
Runtime CPU. Printed: mIoU drop, agreement mIoU, pixel and boundary agreement, calibration time.
Needs the `[modelopt]` extra. A benchmark script, not a test.

    python benchmarks/compare_qdq_producers.py --calib-images 100
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo" / "rf_lw_mbv2_synth.safetensors"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib-images", type=int, default=100)
    parser.add_argument("--val-images", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from refinenet_deploy.data.synth import write_synth_dataset
    from refinenet_deploy.operations.calibrate import calibrate_onnx
    from refinenet_deploy.operations.export import ExportSpec, export_onnx
    from refinenet_deploy.operations.parity import validate_parity

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        calib = write_synth_dataset(tmp / "calib", args.calib_images, 128, 128, seed=11)
        val = write_synth_dataset(tmp / "val", args.val_images, 128, 128, seed=7, split="val")
        fp32 = tmp / "m.onnx"
        export_onnx(DEMO, fp32, ExportSpec(input_size=(128, 128), verify_sizes=()))
        for producer in ("onnxruntime", "modelopt"):
            for method in ("entropy", "max"):
                out = tmp / f"m.{producer}.{method}.onnx"
                t0 = time.time()
                calibrate_onnx(fp32, calib, out, producer=producer, method=method, num_images=args.calib_images)
                seconds = time.time() - t0
                r = validate_parity(DEMO, out, val)
                rows.append(
                    {
                        "producer": producer,
                        "method": method,
                        "calibration_s": seconds,
                        "reference_miou": r.reference_miou,
                        "int8_miou": r.backend_miou,
                        "drop_points": r.miou_drop_points,
                        "agreement_miou": r.agreement.miou,
                        "pixel_agreement": r.agreement.pixel,
                        "boundary_agreement": r.agreement.boundary,
                    }
                )
                print(
                    f"{producer:12s} {method:8s} drop {r.miou_drop_points:+.3f} pt, agreement mIoU "
                    f"{r.agreement.miou:.4f}, pixel {r.agreement.pixel:.4%}, boundary "
                    f"{r.agreement.boundary:.4%} ({seconds:.0f} s)",
                    flush=True,
                )
    print(
        f"\nDemo model (rf_lw_mbv2, 128x128), {args.calib_images} calibration images, {args.val_images} "
        f"validation images, PyTorch mIoU {rows[0]['reference_miou'] * 100:.2f}"
    )
    print("\n| producer | method | INT8 mIoU | drop (pt) | agreement mIoU | pixel agreement | boundary agreement |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['producer']} | {r['method']} | {r['int8_miou'] * 100:.2f} | {r['drop_points']:+.3f} | "
            f"{r['agreement_miou'] * 100:.2f} | {r['pixel_agreement']:.2%} | {r['boundary_agreement']:.2%} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
