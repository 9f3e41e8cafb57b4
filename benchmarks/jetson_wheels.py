"""Prove that a Jetson can install the core (device-side) set without compiling: download it for arm64 as wheels
only, for JetPack 6 (Ubuntu 22.04, glibc 2.35, Python 3.10) and JetPack 7 (Ubuntu 24.04, glibc 2.39, Python 3.12).

The core dependencies are read from pyproject.toml, so this checks what `pip install refinenet-deploy` really asks
for. Each Python is tried twice: with the manylinux tags the JetPack's glibc accepts, and with manylinux2014 only
(glibc 2.17; the tag the issue named), to show which packages need a newer tag. Needs the package index.

    python benchmarks/jetson_wheels.py --json benchmarks/results/jetson_wheels.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JETPACKS = {
    "JetPack 6 (L4T 36, Ubuntu 22.04)": ("3.10", "2_35"),
    "JetPack 7 (L4T 38, Ubuntu 24.04)": ("3.12", "2_39"),
}


def core_requirements() -> list[str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


def platforms(glibc: str | None) -> list[str]:
    if glibc is None:
        return ["manylinux2014_aarch64"]
    major, minor = (int(x) for x in glibc.split("_"))
    return [f"manylinux_{major}_{m}_aarch64" for m in range(minor, 16, -1)] + ["manylinux2014_aarch64"]


def download(python: str, glibc: str | None, reqs: list[str], dest: Path) -> dict:
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--python-version", python, "-d", str(dest)]
    for p in platforms(glibc):
        cmd += ["--platform", p]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, *reqs], capture_output=True, text=True)
    wheels = sorted(p.name for p in dest.glob("*.whl"))
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    return {
        "python": python,
        "platforms": platforms(glibc),
        "ok": proc.returncode == 0,
        "seconds": round(time.perf_counter() - t0, 1),
        "wheels": wheels,
        "sdists": sorted(p.name for p in dest.iterdir() if not p.name.endswith(".whl")),
        "errors": errors[-3:],
        "command": " ".join(cmd[2:] + ["<core requirements>"]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    reqs = core_requirements()
    results = {"requirements": reqs, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (python, glibc) in JETPACKS.items():
            for label, tag in (
                (f"{name}, glibc {glibc.replace('_', '.')}", glibc),
                (f"{name}, manylinux2014 only", None),
            ):
                dest = Path(tmp) / label.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
                dest.mkdir()
                run = download(python, tag, reqs, dest)
                results["runs"][label] = run
                status = "OK, wheels only" if run["ok"] and not run["sdists"] else "FAILED"
                print(f"{label}: {status} ({len(run['wheels'])} wheels, {run['seconds']} s)")
                for line in run["errors"]:
                    print(f"    {line}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    ok = all(r["ok"] for label, r in results["runs"].items() if "manylinux2014 only" not in label)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
