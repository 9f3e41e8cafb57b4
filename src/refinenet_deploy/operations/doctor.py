"""``doctor``: what this machine has for each step (runtimes, TensorRT libraries, CPU features, GPUs)."""

from __future__ import annotations

from typing import Any

from ..backends.tensorrt.library import available_libraries
from ..backends.tensorrt.runner import RTX_FACTS
from ..environment import collect_environment

ISA_NOTE = (
    "INT8 speed and accuracy depend on the CPU's instruction set: VNNI/AMX CPUs run u8 x s8 products "
    "natively; AVX2-only CPUs emulate them (a Q/DQ model taken into OpenVINO there needs NNCF's overflow "
    "fix). Benchmark notes should name the CPU and its ISA."
)


def diagnose() -> dict[str, Any]:
    """The environment report, plus the TensorRT libraries that import (``tensorrt`` 10/11, ``tensorrt_rtx``)."""
    env = collect_environment()
    for module, version in available_libraries().items():
        env[f"{module} (module)"] = version or "not installed"
    env["int8_note"] = ISA_NOTE
    env["tensorrt_rtx_note"] = RTX_FACTS
    return env
