"""What a TensorRT build records beside its engine: the equivalent ``trtexec`` line, the ``rfdeploy`` command that
rebuilds it, the device the engine is tied to, and the layer report (which layers run in which precision, from the
engine inspector where the engine deserialises here, else from the parsed network)."""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..backends.tensorrt.audit import network_precision
from ..backends.tensorrt.builder import BuildOptions, BuildOutcome, Profile, engine_layers
from ..backends.tensorrt.library import TrtLibrary
from ..backends.tensorrt.runner import RTX_COMPUTE_CAPABILITIES
from ..enums import Precision


def paths_from(folder: Path, *paths: Path | None) -> list[str | None]:
    """``paths`` relative to ``folder`` (a trtexec line that works when run there), or absolute when that is
    shorter to trust (another drive)."""
    out: list[str | None] = []
    for p in paths:
        if p is None:
            out.append(None)
            continue
        try:
            out.append(os.path.relpath(Path(p).resolve(), Path(folder).resolve()))
        except ValueError:
            out.append(str(Path(p).resolve()))
    return out


def trtexec_for(
    lib: TrtLibrary,
    onnx: Path,
    engine: Path,
    profiles: Sequence[Profile],
    options: BuildOptions,
    timing: Path | None,
    folder: Path,
) -> str:
    """The trtexec line for ``onnx`` -> ``engine``, its paths relative to ``folder``."""
    onnx_rel, engine_rel, cache_rel = paths_from(folder, onnx, engine, timing)
    return trtexec_command(lib, str(onnx_rel), str(engine_rel), profiles, options, timing_cache=cache_rel)


def trtexec_command(
    lib: TrtLibrary,
    onnx_name: str,
    engine_name: str,
    profiles: Sequence[Profile],
    options: BuildOptions,
    timing_cache: str | None = None,
) -> str:
    """The equivalent trtexec (or ``tensorrt_rtx``) command line for the installed generation. The paths are used as
    given: pass them relative to the folder the line is meant to run in (``paths_from``)."""
    args = [lib.trtexec, f"--onnx={onnx_name}", f"--saveEngine={engine_name}"]
    if lib.weakly_typed and options.precision in ("fp16", "int8"):
        args.append("--fp16")
    if lib.weakly_typed and options.precision == "int8":
        args.append("--int8")
    dynamic = [p for p in profiles if not p.static] or ([p for p in profiles] if options.dla_core is not None else [])
    for flag, attr in (("--minShapes", "min"), ("--optShapes", "opt"), ("--maxShapes", "max")):
        if dynamic:
            args.append(f"{flag}=" + ",".join(f"{p.name}:{'x'.join(map(str, getattr(p, attr)))}" for p in dynamic))
    if options.workspace_mib:
        args.append(f"--memPoolSize=workspace:{options.workspace_mib}M")
    if options.opt_level is not None:
        args.append(f"--builderOptimizationLevel={options.opt_level}")
    if options.timing_cache is not None and not lib.is_rtx:
        args.append(f"--timingCacheFile={timing_cache or options.timing_cache.name}")
    if options.dla_core is not None:
        args.append(f"--useDLACore={options.dla_core}")
        if options.gpu_fallback:
            args.append("--allowGPUFallback")
    if options.version_compatible:
        args.append("--versionCompatible")
    if options.hardware_compatible:
        args.append("--hardwareCompatibilityLevel=ampere+")
    if options.precision == "fp32":
        args.append("--noTF32")
    if options.detailed_profiling:
        args.append("--profilingVerbosity=detailed")
    return " ".join(shlex.quote(a) for a in args)


def target_device(lib: TrtLibrary, options: BuildOptions) -> dict[str, Any]:
    """What the engine is tied to: the GPU it was built on (TensorRT), or RTX's portable set."""
    from ..environment import host_fingerprint, nvidia_gpus

    if lib.is_rtx:
        return {
            "portable": True,
            "compute_capabilities": list(RTX_COMPUTE_CAPABILITIES),
            "note": "TensorRT-RTX ahead-of-time build: runs on its supported GPUs (Ampere and newer RTX-class, "
            "Blackwell), specialised on the first run",
        }
    target: dict[str, Any] = {"portable": False}
    gpus = nvidia_gpus()
    if gpus:
        target.update(name=gpus[0]["name"], compute_capability=gpus[0]["compute_capability"], driver=gpus[0]["driver"])
    else:
        try:
            from ..backends.tensorrt import cuda

            info = cuda.gpu_info()
            target.update(name=info.name, compute_capability=info.compute_capability, driver=info.driver_version)
        except Exception:  # noqa: BLE001  (no GPU visible: recorded as unknown)
            target["name"] = None
    jetson = host_fingerprint().get("jetson")
    if jetson:
        target["jetson"] = jetson
    if options.dla_core is not None:
        target["dla_core"] = options.dla_core
    return target


def summarize_layers(layers: Sequence[dict[str, Any]], source: str) -> dict[str, Any]:
    """Counts a reader can check at a glance: layers by type, Q/DQ pairs, convolutions and which run in INT8."""
    by_type = Counter(str(layer.get("type")) for layer in layers)
    summary: dict[str, Any] = {"layers": len(layers), "by_type": dict(sorted(by_type.items()))}
    if source == "network":
        convs = [layer for layer in layers if layer.get("type") == "CONVOLUTION"]
        summary.update(
            quantize=by_type.get("QUANTIZE", 0),
            dequantize=by_type.get("DEQUANTIZE", 0),
            convolutions=len(convs),
            convolutions_int8=sum(1 for c in convs if network_precision(c) == "int8"),
            resizes=by_type.get("RESIZE", 0),
            layers_with_half_outputs=sum(1 for layer in layers if "HALF" in layer.get("outputs", [])),
        )
    else:
        precisions = Counter()
        for layer in layers:
            text = " ".join(layer.get("outputs") or [])
            for key in ("Int8", "FP16", "FP32", "Half", "Float"):
                if key.lower() in text.lower():
                    precisions[key] += 1
                    break
        summary["by_output_format"] = dict(precisions)
    return summary


def layer_report(lib: TrtLibrary, outcome: BuildOutcome, precision: str) -> dict[str, Any]:
    layers = engine_layers(lib, outcome.plan)
    if layers is not None:
        source, rows = "engine", layers
        why = "IEngineInspector of the built engine: fused layers, their formats/precisions and tactics"
    else:
        source, rows = "network", outcome.network_layers
        why = (
            "the parsed network definition: the engine cannot be deserialised here (no GPU this library "
            "supports), so these are TensorRT's layers before fusion, with their dtypes and Q/DQ neighbours"
        )
    return {
        "source": source,
        "explanation": why,
        "library": lib.name,
        "library_version": lib.version,
        "precision": precision,
        "summary": summarize_layers(rows, source),
        "layers": list(rows),
    }


def rebuild_command(
    model: Path,
    output: Path,
    want: Precision,
    profiles: Sequence[Profile],
    options: BuildOptions,
    nhwc: bool,
    data: str | Path | None,
) -> str:
    args = ["rfdeploy", "build", "trt", model.name]
    if want != Precision.FP32:
        args.append(f"--{want.value}")
    if data is not None and want == Precision.INT8:
        args += ["--data", str(data)]
    dynamic = [p for p in profiles if not p.static]
    if dynamic:
        p = dynamic[0]
        hw = [(s[1], s[2]) if nhwc else (s[2], s[3]) for s in (p.min, p.opt, p.max)]
        args += ["--shapes", ":".join(f"{h}x{w}" for h, w in hw)]
    if options.dla_core is not None:
        args += ["--dla-core", str(options.dla_core)]
    args += ["-o", output.name]
    return " ".join(shlex.quote(a) for a in args)


__all__ = [
    "layer_report",
    "paths_from",
    "rebuild_command",
    "summarize_layers",
    "target_device",
    "trtexec_command",
    "trtexec_for",
]
