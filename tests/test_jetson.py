"""Jetson fingerprint parsing on recorded contents of the real files and tool outputs."""

from __future__ import annotations

from pathlib import Path

from refinenet_deploy.jetson import (
    jetson_fingerprint,
    parse_device_tree_model,
    parse_jetson_clocks,
    parse_nvpmodel,
    parse_tegra_release,
)

# Recorded from devices (public logs): JetPack 6.2 Orin, and an older release line without BOARD.
TEGRA_R36_4_3 = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
)
TEGRA_R36_4_4 = "# R36 (release), REVISION: 4.4, GCID: 34842085, BOARD: t186ref, EABI: aarch64\n"
NVPMODEL_MAXN = "NV Power Mode: MAXN\n0\n"
NVPMODEL_25W = "NV Power Mode: 25W\n1\n"
CLOCKS_UNLOCKED = """SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit
Online CPUs: 0-11
cpu0: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=2188800 IdleStates: WFI=1 c7=1
cpu1: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=1190400 IdleStates: WFI=1 c7=1
GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=306000000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=2133000000 FreqOverride=0
DLA0_CORE:   Online=1 MinFreq=0 MaxFreq=1600000000 CurrentFreq=1600000000
NV Power Mode: MAXN
"""
_LOCKED_CPU = "Governor=schedutil MinFreq=1728000 MaxFreq=1728000 CurrentFreq=1728000 IdleStates: WFI=0 c7=0"
CLOCKS_LOCKED = f"""cpu0: Online=1 {_LOCKED_CPU}
cpu1: Online=1 {_LOCKED_CPU}
cpu2: Online=0 Governor=schedutil MinFreq=921600 MaxFreq=921600 CurrentFreq=115200 IdleStates: WFI=0 c7=0
GPU MinFreq=1020000000 MaxFreq=1020000000 CurrentFreq=1020000000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1
FAN Dynamic Speed Control=disabled hwmon0_pwm1=255
NV Power Mode: MAXN_SUPER
"""


def test_tegra_release() -> None:
    assert parse_tegra_release(TEGRA_R36_4_3) == {
        "l4t": "36.4.3",
        "jetpack": "6.2",
        "board": "generic",
        "gcid": "38968081",
    }
    r = parse_tegra_release(TEGRA_R36_4_4)
    assert r["l4t"] == "36.4.4" and r["jetpack"] == "6.2.1" and r["board"] == "t186ref"
    assert parse_tegra_release("# R38 (release), REVISION: 2.0, GCID: 1")["jetpack"] == "7.0"
    assert parse_tegra_release("not a release file") is None


def test_device_tree_model_and_nvpmodel() -> None:
    model = b"NVIDIA Jetson AGX Orin Developer Kit\x00"
    assert parse_device_tree_model(model) == "NVIDIA Jetson AGX Orin Developer Kit"
    assert parse_nvpmodel(NVPMODEL_MAXN) == {"mode": "MAXN", "id": 0}
    assert parse_nvpmodel(NVPMODEL_25W) == {"mode": "25W", "id": 1}
    assert parse_nvpmodel("") is None


def test_jetson_clocks_lock_state() -> None:
    unlocked = parse_jetson_clocks(CLOCKS_UNLOCKED)
    assert unlocked["locked"] is False and unlocked["gpu_locked"] is False and unlocked["online_cpus"] == 2
    assert unlocked["emc"]["override"] is False
    locked = parse_jetson_clocks(CLOCKS_LOCKED)
    assert locked["locked"] is True and locked["online_cpus"] == 2  # offline cpu2 ignored
    assert locked["gpu"] == {"min": 1020000000, "max": 1020000000, "current": 1020000000}
    assert parse_jetson_clocks("") is None


def test_fingerprint_from_a_recorded_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text(TEGRA_R36_4_3)
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    info = jetson_fingerprint(tmp_path)
    assert info["model"] == "NVIDIA Jetson Orin Nano Developer Kit" and info["release"]["jetpack"] == "6.2"
    assert jetson_fingerprint(tmp_path / "nothing") is None
