"""Cross-check `rfdeploy bench` against OpenVINO's own benchmark_app on the same IR and hint.

Builds an OpenVINO IR of a zoo model (random weights; latency does not depend on them) at a static
size, then alternates ROUNDS rounds of benchmark_app (-hint latency, f32 inference precision, -t seconds)
and of our `benchmark()` with the same settings (same compiled-model configuration: one stream, the same
thread count and pinning, which the script prints from both). Single runs on a shared 2-core machine
drift by +-15 % from one run to the next, so the comparison is the median over rounds of each tool's
median, with every round printed. The target: our p50 within 15 % of benchmark_app's median. A
benchmark script, not a test.

    python benchmarks/benchmark_app_crosscheck.py --arch rf_lw_mbv2 --size 512 --seconds 8 --rounds 5
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="rf_lw_mbv2")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16", "f16"])
    parser.add_argument("--hint", default="latency", choices=["latency", "throughput"])
    args = parser.parse_args()

    import openvino as ov

    from refinenet_deploy.models import create_model
    from refinenet_deploy.models.checkpoint import save_safetensors
    from refinenet_deploy.operations.bench import benchmark
    from refinenet_deploy.operations.export import ExportSpec, export_onnx

    app = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = save_safetensors(
            create_model(args.arch, num_classes=21).state_dict(), tmp / "m.safetensors", {"arch": args.arch}
        )
        export_onnx(ckpt, tmp / "m.onnx", ExportSpec(input_size=(args.size, args.size), verify_sizes=()))
        ov.save_model(ov.convert_model(str(tmp / "m.onnx")), str(tmp / "m.xml"), compress_to_fp16=False)

        cmd = [
            app,
            "-m",
            str(tmp / "m.xml"),
            "-d",
            "CPU",
            "-hint",
            args.hint,
            "-infer_precision",
            args.precision,
            "-t",
            str(max(1, round(args.seconds))),
        ]
        theirs, ours, config = [], [], ""
        for r in range(args.rounds):
            text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            theirs.append(float(re.search(r"Median:\s+([\d.]+) ms", text).group(1)))
            if not config:
                config = ", ".join(
                    f"{k}={v}"
                    for k, v in re.findall(
                        r"(NUM_STREAMS|INFERENCE_NUM_THREADS|ENABLE_CPU_PINNING|ENABLE_HYPER_THREADING): (\S+)", text
                    )
                )
            res = benchmark(
                tmp / "m.xml",
                hint=args.hint,
                inference_precision=args.precision,
                warmup=5,
                iterations=None,
                duration_s=args.seconds,
                peak=False,
            ).to_dict()
            ours.append(res["compute_only"]["p50_ms"])
            print(
                f"round {r + 1}: benchmark_app median {theirs[-1]:.2f} ms | rfdeploy bench p50 {ours[-1]:.2f} ms "
                f"({res['compute_only']['iterations']} iterations)",
                flush=True,
            )
    median = statistics.median(theirs)
    p50 = statistics.median(ours)
    ratio = p50 / median
    print(
        f"{args.arch} {args.size}x{args.size} OpenVINO CPU, hint {args.hint}, precision {args.precision} "
        f"(ran {res['runtime_precision']}), {args.rounds} alternating rounds of {args.seconds:.0f} s each"
    )
    print(f"benchmark_app config: {config}; ours: {res.get('runtime_config')}")
    print(
        f"benchmark_app median of medians {median:.2f} ms | rfdeploy bench median of p50s {p50:.2f} ms | "
        f"ratio {ratio:.3f} | {'within' if abs(ratio - 1) <= 0.15 else 'OUTSIDE'} 15 %"
    )
    return 0 if abs(ratio - 1) <= 0.15 else 1


if __name__ == "__main__":
    raise SystemExit(main())
