"""Jetson identification, parsed from the files and tools a Jetson has.

Pure parsers (text in, dict out) tested on recorded contents, plus ``jetson_fingerprint`` which reads the
real files: ``/etc/nv_tegra_release`` (L4T release), ``/proc/device-tree/model`` (module), ``nvpmodel -q``
(power mode) and ``jetson_clocks --show`` (whether clocks are locked; needs root, skipped otherwise).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

# L4T release -> JetPack (NVIDIA's release notes; TENSORRT.md in shared/reference).
_JETPACK_EXACT = {"36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1"}
_JETPACK_BY_MINOR = {"36.4": "6.1/6.2", "36.5": "6.2.2", "38.2": "7.0", "38.4": "7.1", "39.2": "7.2"}

_TEGRA_RE = re.compile(r"#\s*R(?P<major>\d+)\s*\(release\),\s*REVISION:\s*(?P<revision>[\d.]+)")


def parse_tegra_release(text: str) -> dict[str, Any] | None:
    """'# R36 (release), REVISION: 4.3, GCID: ..., BOARD: generic, ...' -> L4T 36.4.3 and JetPack."""
    match = _TEGRA_RE.search(text or "")
    if not match:
        return None
    revision = match["revision"]
    if revision.count(".") == 0:
        revision += ".0"
    l4t = f"{match['major']}.{revision}"
    fields = dict(re.findall(r"(GCID|BOARD|EABI|DATE):\s*([^,\n]+)", text))
    minor = ".".join(l4t.split(".")[:2])
    return {
        "l4t": l4t,
        "jetpack": _JETPACK_EXACT.get(l4t) or _JETPACK_BY_MINOR.get(minor),
        "board": fields.get("BOARD", "").strip() or None,
        "gcid": fields.get("GCID", "").strip() or None,
    }


def parse_device_tree_model(raw: bytes | str) -> str | None:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.replace("\x00", "").strip()
    return text or None


def parse_nvpmodel(text: str) -> dict[str, Any] | None:
    """'NV Power Mode: MAXN\\n0' -> {'mode': 'MAXN', 'id': 0}."""
    match = re.search(r"NV Power Mode:\s*(\S+)", text or "")
    if not match:
        return None
    ident = re.search(r"^\s*(\d+)\s*$", text[match.end() :], re.MULTILINE)
    return {"mode": match[1], "id": int(ident[1]) if ident else None}


_FREQ_RE = re.compile(r"MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)")


def parse_jetson_clocks(text: str) -> dict[str, Any] | None:
    """``jetson_clocks --show`` -> per-unit frequencies and whether CPU, GPU and EMC are locked at max."""
    cpus, gpu, emc = [], None, None
    for line in (text or "").splitlines():
        line = line.strip()
        freq = _FREQ_RE.search(line)
        if not freq:
            continue
        lo, hi, cur = (int(v) for v in freq.groups())
        entry = {"min": lo, "max": hi, "current": cur}
        if line.startswith("cpu") and "Online=0" not in line:
            cpus.append(entry)
        elif line.startswith("GPU"):
            gpu = entry
        elif line.startswith("EMC"):
            override = re.search(r"FreqOverride=(\d)", line)
            emc = {**entry, "override": bool(int(override[1])) if override else None}
    if gpu is None and not cpus:
        return None
    cpu_locked = bool(cpus) and all(c["min"] == c["max"] == c["current"] for c in cpus)
    gpu_locked = gpu is not None and gpu["min"] == gpu["max"] == gpu["current"]
    emc_locked = emc is None or emc["current"] == emc["max"]
    return {
        "cpu_locked": cpu_locked,
        "gpu_locked": gpu_locked,
        "emc_at_max": emc_locked,
        "locked": cpu_locked and gpu_locked and emc_locked,
        "gpu": gpu,
        "emc": emc,
        "online_cpus": len(cpus),
    }


def _run(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def jetson_fingerprint(root: str | Path = "/") -> dict[str, Any] | None:
    """Module, L4T/JetPack, power mode and clock lock state; ``None`` when this is not a Jetson."""
    root = Path(root)
    release = root / "etc/nv_tegra_release"
    if not release.is_file():
        return None
    info: dict[str, Any] = {"release": parse_tegra_release(release.read_text(errors="replace"))}
    model = root / "proc/device-tree/model"
    info["model"] = parse_device_tree_model(model.read_bytes()) if model.is_file() else None
    info["power_mode"] = parse_nvpmodel(_run(["nvpmodel", "-q"]) or "")
    info["clocks"] = parse_jetson_clocks(_run(["jetson_clocks", "--show"]) or "")
    return info
