"""What `rfdeploy parity --localize` costs over plain parity: wall time of fresh `rfdeploy parity` processes on the
demo model (demo/rf_lw_mbv2_synth.safetensors exported at 128x128 to ONNX, ONNX Runtime on the CPU) and 20
synthetic 128x128 scenes, without the reference cache (PyTorch runs every time). Three settings: plain parity,
--localize with its default image count (8) and --localize --localize-images 20 (every image tapped).

    python benchmarks/localize_cost.py [--work DIR] [--repeats 3] [--json OUT]

Not a timed test: numbers depend on the machine; the README quotes one run with its CPU named.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CKPT = REPO / "demo" / "rf_lw_mbv2_synth.safetensors"


def rfdeploy(*argv: object, env: dict[str, str]) -> float:
    cmd = [sys.executable, "-c", "from refinenet_deploy.cli import main; main()", *map(str, argv)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, argv))}\n{proc.stderr[-2000:]}")
    return seconds


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:  # noqa: BLE001
        return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="folder for the data and model (default: a temporary one)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per setting (the median is reported)")
    ap.add_argument("--threads", type=int, default=None, help="--threads for both sides")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="rfdeploy-localize-"))
    work.mkdir(parents=True, exist_ok=True)
    data, onnx_path = work / "val", work / "m.onnx"
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "xdg")}
    if not data.exists():
        rfdeploy("data", "synth", data, "--num", 20, "--size", "128x128", "--seed", 7, "--split", "val", env=env)
    if not onnx_path.exists():
        rfdeploy("export", "onnx", CKPT, "--input-size", "128x128", "-o", onnx_path, env=env)
    base = ["parity", CKPT, onnx_path, "--data", data, "--no-reference-cache"]
    if args.threads:
        base += ["--threads", args.threads]
    settings = {
        "plain parity": base,
        "--localize (8 images)": [*base, "--localize"],
        "--localize --localize-images 20": [*base, "--localize", "--localize-images", 20],
    }
    times: dict[str, list[float]] = {k: [] for k in settings}
    for _ in range(args.repeats):  # interleaved, so a slow spell on a shared machine hits every setting
        for name, argv in settings.items():
            times[name].append(rfdeploy(*argv, env=env))
    plain = statistics.median(times["plain parity"])
    result = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "images": 20,
        "size": "128x128",
        "repeats": args.repeats,
        "median_seconds": {k: round(statistics.median(v), 2) for k, v in times.items()},
        "ratio_to_plain": {k: round(statistics.median(v) / plain, 2) for k, v in times.items()},
        "runs": {k: [round(s, 2) for s in v] for k, v in times.items()},
    }
    print(f"CPU: {result['cpu']} ({result['cores']} logical CPUs)")
    for k in settings:
        print(f"{k:<34} {result['median_seconds'][k]:7.2f} s   x{result['ratio_to_plain'][k]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
