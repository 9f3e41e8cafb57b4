"""What this machine is: used by ``rfdeploy doctor`` and recorded in artifact metadata."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys

CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "neon",
    "asimd",
)
PACKAGES = (
    "torch",
    "numpy",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxsim",
    "onnxslim",
    "openvino",
    "nncf",
    "tensorrt",
    "cuda-python",
    "nvidia-modelopt",
    "safetensors",
    "typer",
    "rich",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_info() -> dict[str, object]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "isa": [f for f in CPU_FLAGS if f in flags],
    }


def gpu_info() -> dict[str, object]:
    """NVIDIA GPUs as PyTorch sees them (name, compute capability, memory, CUDA build); empty without one."""
    try:
        import torch
    except ImportError:
        return {}
    if not torch.cuda.is_available():
        return {"cuda_gpus": 0}
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append(f"{p.name} (sm_{p.major}{p.minor}, {p.total_memory / 2**30:.1f} GiB)")
    return {"cuda_gpus": len(gpus), "gpus": gpus, "torch_cuda": torch.version.cuda}


def has_int8_dot_product() -> bool:
    """Whether this CPU has native u8 x s8 dot-product instructions (VNNI or AMX). Without them (AVX2 only),
    runtimes emulate INT8 products with saturating 16-bit sums, which overflow unless weights are prepared for it."""
    isa = set(cpu_info()["isa"])
    return bool(isa & {"avx512_vnni", "avx_vnni", "amx_int8"}) or not isa & {"avx2", "avx512f"}


def nvidia_gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs from ``nvidia-smi`` (name, compute capability, memory, driver) without importing a framework;
    empty when there is no driver or no GPU."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    fields = ("name", "compute_cap", "memory.total", "driver_version")
    try:
        out = subprocess.run(
            [exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        values = [v.strip() for v in line.split(",")]
        if len(values) == len(fields):
            gpus.append({"name": values[0], "compute_capability": values[1], "memory": values[2], "driver": values[3]})
    return gpus


def host_fingerprint() -> dict[str, object]:
    """The machine an artifact was made on, for provenance: CPU and ISA, NVIDIA GPUs with compute capability,
    and the Jetson release (JetPack/L4T) when present. Fast: imports no framework."""
    from .jetson import jetson_fingerprint

    host: dict[str, object] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        **cpu_info(),
    }
    gpus = nvidia_gpus()
    if gpus:
        host["gpus"] = gpus
    jetson = jetson_fingerprint()
    if jetson:
        host["jetson"] = jetson
    return host


def collect_environment() -> dict[str, object]:
    from .jetson import jetson_fingerprint

    env: dict[str, object] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        **cpu_info(),
        **gpu_info(),
    }
    jetson = jetson_fingerprint()
    if jetson:
        env["jetson"] = jetson
    for name, version in package_versions().items():
        env[name] = version or "not installed"
    return env
