"""INT8 on a CPU, in one run: latency of every precision/runtime and, for the demo model, mIoU per variant.

Variants: PyTorch eager FP32; ONNX Runtime FP32 and Q/DQ INT8 (`rfdeploy calibrate`); OpenVINO FP32 IR run
in f32 and in bf16, FP16 IR, INT8 IR from NNCF (`rfdeploy build openvino --int8`) and INT8 IR read from
the Q/DQ ONNX. Models: the bundled demo checkpoint and `rf_lw50` (random weights: latency does not depend
on them), both timed at SIZE x SIZE, batch 1, compute-only p50 (`rfdeploy bench` protocol). mIoU is
measured for the demo model at its training size (128x128) on a fresh synthetic split (seed 7) against
the same checkpoint in PyTorch (`rfdeploy parity`).

Targets (issue #4): OpenVINO INT8 of rf_lw50 at 512x512 >= 3x OpenVINO f32 and >= 15x PyTorch eager;
demo INT8 mIoU within 1.0 point of FP32. A benchmark script, not a test: run it on an idle machine.

    python benchmarks/int8_speed.py --size 512 --seconds 8 --json int8_speed.json
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


def build_variants(
    ckpt: Path, size: int, calib: Path, out: Path, num_images: int, producer: str, method: str | None = None
) -> dict[str, tuple[Path, str]]:
    """All artifacts of one model at one size: name -> (artifact, OpenVINO inference precision)."""
    from refinenet_deploy.errors import ExportError
    from refinenet_deploy.operations.build_openvino import convert_openvino
    from refinenet_deploy.operations.calibrate import calibrate_onnx
    from refinenet_deploy.operations.export import ExportSpec, export_onnx

    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / "m.onnx"
    export_onnx(ckpt, fp32, ExportSpec(input_size=(size, size), verify_sizes=()))
    qdq = out / "m.int8.onnx"
    calibrate_onnx(fp32, calib, qdq, num_images=num_images, producer=producer, method=method)
    convert_openvino(fp32, out / "m.xml")
    convert_openvino(fp32, out / "m.fp16.xml", precision="fp16")
    convert_openvino(fp32, out / "m.int8.xml", precision="int8", data=calib, num_images=num_images)
    variants = {
        "PyTorch eager FP32": (ckpt, "f32"),
        "ONNX Runtime FP32": (fp32, "f32"),
        "ONNX Runtime Q/DQ INT8": (qdq, "f32"),
        "OpenVINO FP32 IR, f32": (out / "m.xml", "f32"),
        "OpenVINO FP32 IR, bf16": (out / "m.xml", "bf16"),
        "OpenVINO FP16 IR, f32": (out / "m.fp16.xml", "f32"),
        "OpenVINO INT8 IR (NNCF)": (out / "m.int8.xml", "f32"),
    }
    try:  # refused (exit 6) on CPUs without VNNI/AMX, where OpenVINO's emulated INT8 products overflow on it
        convert_openvino(qdq, out / "m.qdq.xml", precision="int8")
        variants["OpenVINO INT8 IR (from Q/DQ)"] = (out / "m.qdq.xml", "f32")
    except ExportError as exc:
        print(f"OpenVINO INT8 IR (from Q/DQ): not built: {exc.message}")
    return variants


def time_variants(
    variants: dict[str, tuple[Path, str]], size: int, seconds: float, threads: int | None
) -> dict[str, dict]:
    from refinenet_deploy.operations.bench import benchmark

    results = {}
    for name, (artifact, precision) in variants.items():
        r = benchmark(
            artifact,
            input_size=(size, size) if artifact.suffix == ".safetensors" else None,
            warmup=3,
            iterations=None,
            duration_s=seconds,
            threads=threads,
            inference_precision=precision,
            peak=False,
        )
        results[name] = {
            "p50_ms": r["compute_only"]["p50_ms"],
            "p90_ms": r["compute_only"]["p90_ms"],
            "iterations": r["compute_only"]["iterations"],
            "runtime_precision": r["runtime_precision"],
        }
        print(
            f"  {name:32s} p50 {results[name]['p50_ms']:9.2f} ms  ({results[name]['iterations']} runs, "
            f"ran {r['runtime_precision'] or 'fp32'})",
            flush=True,
        )
    return results


def accuracy(variants: dict[str, tuple[Path, str]], ckpt: Path, val: Path) -> dict[str, dict]:
    from refinenet_deploy.operations.parity import validate_parity

    results = {}
    for name, (artifact, precision) in variants.items():
        if artifact.suffix == ".safetensors":
            continue
        r = validate_parity(ckpt, artifact, val, inference_precision=precision)
        results[name] = {
            "miou": r.backend_miou,
            "reference_miou": r.reference_miou,
            "drop_points": r.miou_drop_points,
            "pixel_agreement": r.agreement.pixel,
        }
        print(
            f"  {name:32s} mIoU {r.backend_miou * 100:6.2f} (PyTorch {r.reference_miou * 100:.2f}, drop "
            f"{r.miou_drop_points:+.3f} pt, pixel agreement {r.agreement.pixel:.2%})",
            flush=True,
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=8.0, help="timing per variant")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--calib-images", type=int, default=200)
    parser.add_argument("--models", default="demo,rf_lw50")
    parser.add_argument(
        "--producer",
        default="modelopt",
        choices=["modelopt", "onnxruntime"],
        help="Q/DQ producer of the 'ONNX Runtime Q/DQ INT8' and 'from Q/DQ' rows",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from refinenet_deploy.data.synth import write_synth_dataset
    from refinenet_deploy.environment import collect_environment
    from refinenet_deploy.models import create_model
    from refinenet_deploy.models.checkpoint import save_safetensors

    started = time.time()
    report: dict = {"size": args.size, "seconds_per_variant": args.seconds, "qdq_producer": args.producer, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        calib = write_synth_dataset(tmp / "calib", args.calib_images, 128, 128, seed=11)
        val = write_synth_dataset(tmp / "val", 100, 128, 128, seed=7, split="val")
        for model in args.models.split(","):
            if model == "demo":
                ckpt = DEMO
            else:
                ckpt = save_safetensors(
                    create_model(model, num_classes=21).state_dict(), tmp / f"{model}.safetensors", {"arch": model}
                )
            print(f"\n{model}: building the variants at {args.size}x{args.size}", flush=True)
            # latency does not depend on the calibration method: min/max is quick at large sizes, while
            # entropy histograms of 512x512 activations take many minutes on 2 cores
            variants = build_variants(
                ckpt, args.size, calib, tmp / model / str(args.size), args.calib_images, args.producer, method="max"
            )
            print(f"{model}: latency, batch 1, {args.size}x{args.size}, compute-only p50", flush=True)
            entry = {"latency": time_variants(variants, args.size, args.seconds, args.threads)}
            if model == "demo":
                print("demo: mIoU on a fresh synthetic split (seed 7, 100 images, 128x128) vs PyTorch", flush=True)
                small = build_variants(ckpt, 128, calib, tmp / model / "128", args.calib_images, args.producer)
                entry["accuracy"] = accuracy(small, ckpt, val)
            lat = entry["latency"]
            base, ov32 = lat["PyTorch eager FP32"]["p50_ms"], lat["OpenVINO FP32 IR, f32"]["p50_ms"]
            entry["speedup_vs_pytorch"] = {k: base / v["p50_ms"] for k, v in lat.items()}
            entry["speedup_vs_openvino_f32"] = {k: ov32 / v["p50_ms"] for k, v in lat.items()}
            report["models"][model] = entry
    env = collect_environment()
    report["machine"] = {k: env.get(k) for k in ("cpu", "cpu_count", "isa", "platform", "python")}
    report["versions"] = {k: env.get(k) for k in ("torch", "onnxruntime", "openvino", "nncf")}
    report["wall_s"] = time.time() - started

    print(f"\nLatency at {args.size}x{args.size}, batch 1 (p50 ms; speed-up vs PyTorch eager / vs OpenVINO f32)")
    for model, entry in report["models"].items():
        print(f"\n| {model} | p50 ms | vs PyTorch | vs OV f32 | mIoU (demo, 128x128) | drop (pt) |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, v in entry["latency"].items():
            acc = entry.get("accuracy", {}).get(name)
            miou = drop = ""
            if acc:
                miou, drop = f"{acc['miou'] * 100:.2f}", f"{acc['drop_points']:+.3f}"
            elif "accuracy" in entry:  # the PyTorch row: the reference itself
                miou = f"{next(iter(entry['accuracy'].values()))['reference_miou'] * 100:.2f}"
            print(
                f"| {name} | {v['p50_ms']:.2f} | {entry['speedup_vs_pytorch'][name]:.2f}x | "
                f"{entry['speedup_vs_openvino_f32'][name]:.2f}x | {miou} | {drop} |"
            )
    ok = True
    if "rf_lw50" in report["models"]:
        e = report["models"]["rf_lw50"]
        a = e["speedup_vs_openvino_f32"]["OpenVINO INT8 IR (NNCF)"]
        b = e["speedup_vs_pytorch"]["OpenVINO INT8 IR (NNCF)"]
        print(f"\nrf_lw50 OpenVINO INT8: {a:.2f}x OpenVINO f32 (target >= 3), {b:.1f}x PyTorch eager (target >= 15)")
        ok &= a >= 3 and b >= 15
    if "demo" in report["models"]:
        drops = {k: v["drop_points"] for k, v in report["models"]["demo"]["accuracy"].items() if "INT8" in k}
        print("demo INT8 mIoU drop: " + ", ".join(f"{k} {v:+.3f} pt" for k, v in drops.items()) + " (target <= 1.0)")
        ok &= all(v <= 1.0 for v in drops.values())
    report["targets_met"] = bool(ok)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(f"\ntargets {'met' if ok else 'NOT met'}; {report['wall_s']:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
