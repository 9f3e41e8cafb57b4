"""What the PyTorch reference cache saves: wall time of `rfdeploy parity` runs cold (PyTorch computes the reference)
against runs that reuse the cached reference, and a run from a saved reference file (no PyTorch imported).

The demo setup of the README: demo/rf_lw_mbv2_synth.safetensors, 100 synthetic validation scenes of 128x128
(`rfdeploy data synth OUT --num 100 --size 128x128 --seed 7 --split val`) and its ONNX export
(`rfdeploy export onnx CKPT --input-size 128x128 -o m.onnx`). Every run is a fresh `rfdeploy` process, timed
end to end (interpreter start, imports, reading the data, both sides, the report).

    python benchmarks/parity_reference_cache.py [--work DIR] [--cold 2] [--cached 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CKPT = REPO / "demo" / "rf_lw_mbv2_synth.safetensors"


def rfdeploy(*argv: object, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [sys.executable, "-c", "from refinenet_deploy.cli import main; main()", *map(str, argv)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, argv))}\n{proc.stderr[-2000:]}")
    return seconds, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="folder for the data, model and cache (default: a temporary one)")
    ap.add_argument("--cold", type=int, default=2, help="cold runs (the first of them fills the cache)")
    ap.add_argument("--cached", type=int, default=2, help="runs that reuse the cached reference")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="rfdeploy-refcache-"))
    work.mkdir(parents=True, exist_ok=True)
    data, onnx_path, cache = work / "val", work / "m.onnx", work / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "xdg")}
    if not data.exists():
        rfdeploy("data", "synth", data, "--num", 100, "--size", "128x128", "--seed", 7, "--split", "val", env=env)
    if not onnx_path.exists():
        rfdeploy("export", "onnx", CKPT, "--input-size", "128x128", "-o", onnx_path, env=env)
    shutil.rmtree(cache, ignore_errors=True)
    base = ["parity", CKPT, onnx_path, "--data", data]
    runs: list[dict[str, object]] = []

    def record(kind: str, seconds: float, proc: subprocess.CompletedProcess) -> None:
        runs.append({"kind": kind, "seconds": round(seconds, 2)})
        print(f"{kind:<34} {seconds:8.2f} s", flush=True)

    for i in range(args.cold):
        if i == 0:  # cold, and fills the cache
            s, p = rfdeploy(*base, "--reference-cache", cache, "--json", work / f"cold{i}.json", env=env)
            record("cold (PyTorch pass, fills cache)", s, p)
        else:
            s, p = rfdeploy(*base, "--no-reference-cache", "--json", work / f"cold{i}.json", env=env)
            record("cold (PyTorch pass, no cache)", s, p)
    for i in range(args.cached):
        s, p = rfdeploy(*base, "--reference-cache", cache, "--json", work / f"cached{i}.json", env=env)
        assert "reused the cached PyTorch reference" in p.stderr, p.stderr
        record("cached reference", s, p)
    ref = work / "ref.npz"
    rfdeploy("parity", CKPT, "--data", data, "--save-reference", ref, "--reference-logits", "--input-size", "128x128",
             env=env)  # fmt: skip
    s, p = rfdeploy("parity", ref, onnx_path, "--data", data, "--json", work / "saved.json", env=env)
    record("saved reference file (REF.npz)", s, p)

    reports = [json.loads((work / f).read_text()) for f in ("cold0.json", "cached0.json", "saved.json")]
    keys = ("reference_miou", "backend_miou", "pixel_agreement", "logit_max_abs_error", "per_class")
    same = all(r[k] == reports[0][k] for r in reports for k in keys)
    cold = [r["seconds"] for r in runs if str(r["kind"]).startswith("cold")]
    cached = [r["seconds"] for r in runs if r["kind"] == "cached reference"]
    summary = {
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "images": 100,
        "size": "128x128",
        "runs": runs,
        "cold_mean_s": round(sum(cold) / len(cold), 2) if cold else None,
        "cached_mean_s": round(sum(cached) / len(cached), 2) if cached else None,
        "same_results": same,
        "cache_entry_bytes": sum(f.stat().st_size for f in cache.glob("*.npz")),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
