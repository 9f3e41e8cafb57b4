"""Device state around a timing run: clocks, temperature, power and throttling.

- NVIDIA GPUs: NVML through ``nvidia-ml-py`` (module ``pynvml``) when it is installed: SM and memory clocks (and
  their maxima), temperature, power draw and limit, and the clock-event ("throttle") reasons. Read before and after
  a run; a reason that lowers clocks (power cap, thermal or hardware slowdown, power brake) in either reading flags
  the run as throttled.
- Jetson: the power mode (``nvpmodel -q``) and whether ``jetson_clocks`` locked the clocks (``jetson.py``).

Pure parts (``throttle_reasons``, ``summarize``) are tested on recorded values; reading the device needs the
device and is exercised on one (``benchmarks/gpu_check.sh``).
"""

from __future__ import annotations

import contextlib
from typing import Any

# NVML clock-event reason bits (nvml.h, nvmlClocksEventReason*/nvmlClocksThrottleReason*): stable values.
REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# The reasons that mean the clocks were pulled down under load (idle, application clocks and sync boost do not).
THROTTLING = frozenset(
    {"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"}
)


def throttle_reasons(mask: int) -> list[str]:
    """NVML's reason bit mask -> names (unknown bits as hex)."""
    names = [name for bit, name in REASONS.items() if mask & bit]
    unknown = mask & ~sum(REASONS)
    if unknown:
        names.append(f"0x{unknown:x}")
    return names


def _nvml_reading(pynvml: Any, index: int) -> dict[str, Any]:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)

    def read(fn: str, *args: Any) -> Any:
        try:
            return getattr(pynvml, fn)(handle, *args)
        except Exception:  # a field this GPU or driver does not report (NVMLError_NotSupported, ...)
            return None

    mask = read("nvmlDeviceGetCurrentClocksEventReasons")
    if mask is None:
        mask = read("nvmlDeviceGetCurrentClocksThrottleReasons")
    power, limit = read("nvmlDeviceGetPowerUsage"), read("nvmlDeviceGetEnforcedPowerLimit")
    name = read("nvmlDeviceGetName")
    return {
        "name": name.decode() if isinstance(name, bytes) else name,
        "sm_clock_mhz": read("nvmlDeviceGetClockInfo", pynvml.NVML_CLOCK_SM),
        "sm_clock_max_mhz": read("nvmlDeviceGetMaxClockInfo", pynvml.NVML_CLOCK_SM),
        "memory_clock_mhz": read("nvmlDeviceGetClockInfo", pynvml.NVML_CLOCK_MEM),
        "memory_clock_max_mhz": read("nvmlDeviceGetMaxClockInfo", pynvml.NVML_CLOCK_MEM),
        "temperature_c": read("nvmlDeviceGetTemperature", pynvml.NVML_TEMPERATURE_GPU),
        "power_w": power / 1000 if power is not None else None,
        "power_limit_w": limit / 1000 if limit is not None else None,
        "clock_event_reasons": throttle_reasons(int(mask)) if mask is not None else None,
    }


def read_gpu_state(index: int = 0) -> dict[str, Any]:
    """One NVML reading of GPU ``index``, or ``{"available": False, "reason": ...}``."""
    try:
        import pynvml
    except ImportError:
        return {"available": False, "reason": "not measured: nvidia-ml-py (pynvml) is not installed"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no driver, no GPU
        return {"available": False, "reason": f"not measured: NVML did not start ({str(exc)[:120]})"}
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        return {
            "available": True,
            "driver": driver.decode() if isinstance(driver, bytes) else driver,
            **_nvml_reading(pynvml, index),
        }
    except Exception as exc:
        return {"available": False, "reason": f"not measured: NVML failed ({str(exc)[:120]})"}
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def read_device_state(device: str) -> dict[str, Any] | None:
    """The state worth recording for ``device`` (gpu: NVML; dla or a Jetson host: power mode and clocks);
    None for a CPU run on a machine that is not a Jetson."""
    from .jetson import jetson_fingerprint

    jetson = jetson_fingerprint()
    if jetson is not None:
        return {"available": True, "jetson": {"power_mode": jetson.get("power_mode"), "clocks": jetson.get("clocks")}}
    if device in ("gpu", "dla"):
        return read_gpu_state()
    return None


def summarize(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any] | None:
    """Before/after readings and the flags a report shows: ``throttled`` (a clock-lowering reason in either
    reading), ``clocks_unlocked`` (a Jetson whose clocks jetson_clocks did not lock), or ``not measured``."""
    if before is None and after is None:
        return None
    flags: list[str] = []
    readings = [r for r in (before, after) if r]
    if not any(r.get("available") for r in readings):
        reason = next((r.get("reason") for r in readings if r.get("reason")), "not measured")
        return {"before": before, "after": after, "throttled": None, "flags": [], "note": reason}
    throttled = False
    for r in readings:
        seen = THROTTLING.intersection(r.get("clock_event_reasons") or [])
        if seen:
            throttled = True
            flags += [f"throttled: {name}" for name in sorted(seen) if f"throttled: {name}" not in flags]
        clocks = (r.get("jetson") or {}).get("clocks")
        if clocks is not None and not clocks.get("locked") and "clocks not locked (jetson_clocks)" not in flags:
            flags.append("clocks not locked (jetson_clocks)")
    return {"before": before, "after": after, "throttled": throttled, "flags": flags}
