"""The device a result was measured on: its kind (cpu, gpu, dla, npu) and the host/GPU fingerprint, as one
hashable identity and a label that is never shortened. Two results compare only when their identities are equal
(the report's speed-ups and the pipeline summary's alike)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def gpu_names(fp: Mapping[str, Any]) -> tuple[str, ...]:
    """The GPU names of a fingerprint (``gpus``: objects with a name, or ``"<name> (sm_90, ...)"`` strings)."""
    names = []
    gpus = fp.get("gpus")
    for gpu in gpus if isinstance(gpus, list) else []:
        if isinstance(gpu, dict):
            names.append(str(gpu.get("name", "GPU")))
        else:
            names.append(str(gpu).split(" (sm_")[0])
    return tuple(names)


def device_kind(device: Any) -> str:
    """``cuda:0`` / ``gpu`` -> ``gpu``; ``cpu``, ``dla:1`` -> ``dla``, ...; None -> ``cpu``."""
    text = str(device or "cpu").lower()
    return "gpu" if text.startswith("cuda") else text.split(":")[0]


def machine(fp: Mapping[str, Any]) -> str | None:
    """The CPU architecture of a fingerprint (``x86_64``, ``aarch64``); read from ``platform`` for older files."""
    if fp.get("machine"):
        return str(fp["machine"]).lower().replace("amd64", "x86_64").replace("arm64", "aarch64")
    text = str(fp.get("platform") or "").lower()
    for token, name in (("x86_64", "x86_64"), ("amd64", "x86_64"), ("aarch64", "aarch64"), ("arm64", "aarch64")):
        if token in text:
            return name
    return None


def device_identity(fp: Mapping[str, Any] | None, device: str) -> tuple[tuple[Any, ...], str]:
    """(identity, label) of the device a result was measured on: the device kind plus the host/GPU fingerprint.

    Two results compare only when their identities are equal. The label is never shortened: a CPU name keeps
    every word (``Intel(R) Xeon(R) Processor (Icelake), 2 cores``)."""
    fp = fp or {}
    kind = device_kind(device)
    jetson = fp.get("jetson") if isinstance(fp.get("jetson"), dict) else {}
    release = jetson.get("release") if isinstance(jetson.get("release"), dict) else {}
    jetpack = release.get("jetpack")
    cpu = str(fp.get("cpu") or "CPU")
    cores = fp.get("cpu_affinity") or fp.get("cpu_count")
    gpus = gpu_names(fp)
    parts = (
        fp.get("hostname"),
        machine(fp),
        jetson.get("model"),
        jetpack,
        cpu,
        fp.get("cpu_count"),
        fp.get("cpu_affinity"),
        fp.get("isa"),
    )
    identity = (
        kind,
        *(json.dumps(v, sort_keys=True, default=str) for v in parts),  # hashable whatever the JSON held
        gpus if kind in ("gpu", "dla") else (),
    )
    if jetson.get("model"):
        label = f"{jetson['model']}" + (f" (JetPack {jetpack})" if jetpack else "") + f" {kind.upper()}"
    elif kind in ("gpu", "dla"):
        label = (gpus[0] + (f" x{len(gpus)}" if len(gpus) > 1 else "")) if gpus else f"GPU (not recorded) on {cpu}"
        if kind == "dla":
            label += " DLA"
    else:
        label = cpu + (f", {cores} cores" if cores else "")
        if kind not in ("cpu",):
            label = f"{kind.upper()} on {label}"
    return identity, label


def identity_of(result: Any) -> tuple[tuple[Any, ...], str]:
    """``device_identity`` of a ``BenchResult`` (its fingerprint and device)."""
    return device_identity(result.fingerprint, result.device)


def same_device(a: Any, b: Any) -> bool:
    """Whether two bench results were measured on the same device (the identity rule above)."""
    return identity_of(a)[0] == identity_of(b)[0]


__all__ = ["device_identity", "device_kind", "gpu_names", "identity_of", "machine", "same_device"]
