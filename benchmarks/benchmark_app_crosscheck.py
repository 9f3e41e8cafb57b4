"""Cross-check `rfdeploy bench` against OpenVINO's own benchmark_app on the same IR and hint.

Builds an OpenVINO IR of a zoo model (random weights; latency does not depend on them) at a static
size, runs benchmark_app (-hint latency, f32 inference precision, -t seconds) and our `benchmark()` with
the same settings, and prints both medians and their ratio. The target: our p50 within 15 % of
benchmark_app's median. A benchmark script, not a test: timings are noisy, run it on an idle machine.

    python benchmarks/benchmark_app_crosscheck.py --arch rf_lw_mbv2 --size 512 --seconds 15
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="rf_lw_mbv2")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16", "f16"])
    parser.add_argument("--hint", default="latency", choices=["latency", "throughput"])
    args = parser.parse_args()

    import openvino as ov

    from refinenet_deploy.bench import benchmark
    from refinenet_deploy.export.onnx import ExportSpec, export_onnx
    from refinenet_deploy.models import create_model
    from refinenet_deploy.models.checkpoint import save_safetensors

    app = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = save_safetensors(create_model(args.arch, num_classes=21).state_dict(), tmp / "m.safetensors",
                                {"arch": args.arch})
        export_onnx(ckpt, tmp / "m.onnx", ExportSpec(input_size=(args.size, args.size), verify_sizes=()))
        ov.save_model(ov.convert_model(str(tmp / "m.onnx")), str(tmp / "m.xml"), compress_to_fp16=False)

        cmd = [app, "-m", str(tmp / "m.xml"), "-d", "CPU", "-hint", args.hint, "-infer_precision", args.precision,
               "-t", str(max(1, round(args.seconds)))]
        text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        median = float(re.search(r"Median:\s+([\d.]+) ms", text).group(1))
        ours = benchmark(tmp / "m.xml", hint=args.hint, inference_precision=args.precision, warmup=5,
                         iterations=None, duration_s=args.seconds, peak=False)
    p50 = ours["compute_only"]["p50_ms"]
    ratio = p50 / median
    print(f"{args.arch} {args.size}x{args.size} OpenVINO CPU, hint {args.hint}, precision {args.precision} "
          f"(ran {ours['runtime_precision']}), {args.seconds:.0f} s each")
    print(f"benchmark_app median {median:.2f} ms | rfdeploy bench p50 {p50:.2f} ms "
          f"({ours['compute_only']['iterations']} iterations) | ratio {ratio:.3f} | "
          f"{'within' if abs(ratio - 1) <= 0.15 else 'OUTSIDE'} 15 %")
    return 0 if abs(ratio - 1) <= 0.15 else 1


if __name__ == "__main__":
    raise SystemExit(main())
