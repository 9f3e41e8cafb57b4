"""ONNX -> serialized TensorRT engine, for TensorRT 10.x, 11.x and TensorRT-RTX (one code path, generation rules
from ``TrtLibrary``).

Precision lives in the ONNX (FP32, FP16 tensors, or Q/DQ INT8): that is the only way TensorRT 11 and
TensorRT-RTX take it. On TensorRT 10.x the network is weakly typed and the matching BuilderFlags are added
(FP16 for an FP16 ONNX; INT8 and FP16 for a Q/DQ ONNX) so the remaining float layers may use FP16 kernels.
DLA builds (10.x/11.x on a Jetson) take ``dla_core``, need static shapes and FP16/INT8, and report which layers
fall back to the GPU. Written against NVIDIA's documented Python API; the TensorRT-RTX path is exercised for real
in CI (it builds without a GPU), the TensorRT 10/11 specifics through a labelled test double.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...artifacts import parse_hw, resolve_input_size
from ...errors import EngineBuildError, UsageError
from .library import TrtLibrary

# Messages TensorRT logs on a machine without a GPU after every API error, and its hardware-compatibility getter:
# noise, not the cause of a failure.
_NOISE = ("catchCudaError", "Thread context has not been set", "CUDA driver version is insufficient")
QDQ_TYPES = ("QUANTIZE", "DEQUANTIZE", "DYNAMIC_QUANTIZE")
DEFAULT_MIN_HW = (32, 32)


@dataclass(frozen=True)
class Profile:
    """One input's optimisation profile: min, opt and max shapes (equal for a static input)."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @property
    def static(self) -> bool:
        return self.min == self.opt == self.max

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def parse_shapes(text: str) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``MINxMIN:OPTxOPT:MAXxMAX`` (H x W each) -> three (H, W); each dimension min <= opt <= max."""
    parts = text.split(":")
    if len(parts) != 3:
        raise UsageError(f"--shapes expects MINxMIN:OPTxOPT:MAXxMAX such as 256x256:512x512:1024x1024, got {text!r}")
    try:
        lo, opt, hi = (parse_hw(p) for p in parts)
    except ValueError as exc:
        raise UsageError(f"--shapes: {exc}") from None
    if not all(lo[i] <= opt[i] <= hi[i] for i in range(2)):
        raise UsageError(f"--shapes {text}: each of H and W must satisfy min <= opt <= max")
    return lo, opt, hi


def input_profiles(
    proto: Any,
    input_format: str,
    meta: Mapping[str, Any],
    input_size: tuple[int, int] | None = None,
    shapes: str | None = None,
) -> list[Profile]:
    """One profile per graph input: static inputs as they are, dynamic ones from --shapes/--input-size, else
    min 32x32, opt = the export size (``resolve_input_size``), max = twice the export size; a dynamic input with
    none of these is a UsageError naming --input-size (never a silent 512x512)."""
    profiles = []
    nhwc = input_format == "nhwc-uint8"
    for value in proto.graph.input:
        dims = [d.dim_value if d.dim_value > 0 else None for d in value.type.tensor_type.shape.dim]
        if all(d is not None for d in dims) and len(dims) != 4:  # a static non-image input: as it is
            if shapes or input_size:
                raise UsageError(f"input '{value.name}' is static; drop --shapes/--input-size")
            profiles.append(Profile(value.name, tuple(dims), tuple(dims), tuple(dims)))
            continue
        if len(dims) != 4:
            raise UsageError(f"input '{value.name}' has rank {len(dims)}; TensorRT builds here take NCHW/NHWC images")
        hw_idx = (1, 2) if nhwc else (2, 3)
        static_hw = dims[hw_idx[0]] is not None and dims[hw_idx[1]] is not None
        batch = dims[0]
        if static_hw:
            hw = (dims[hw_idx[0]], dims[hw_idx[1]])
            if shapes:
                raise UsageError(
                    f"{value.name} has a static size {hw[0]}x{hw[1]}; --shapes needs a dynamic ONNX (export --dynamic)"
                )
            if input_size and tuple(input_size) != hw:
                raise UsageError(f"{value.name} has a static size {hw[0]}x{hw[1]}; drop --input-size or pass it")
            lo = opt = hi = hw
        elif shapes:
            lo, opt, hi = parse_shapes(shapes)
        elif input_size:
            lo = opt = hi = tuple(input_size)
        else:
            opt, _ = resolve_input_size(None, export_size=meta.get("export_size"), option="--input-size (or --shapes)")
            lo = (min(DEFAULT_MIN_HW[0], opt[0]), min(DEFAULT_MIN_HW[1], opt[1]))
            hi = (opt[0] * 2, opt[1] * 2)
        n_opt = batch or int(meta.get("batch") or 1)

        def full(hw: Sequence[int], n: int, dims: list[int | None] = dims) -> tuple[int, ...]:
            return (n, hw[0], hw[1], dims[3] or 3) if nhwc else (n, dims[1] or 3, hw[0], hw[1])

        profiles.append(Profile(value.name, full(lo, batch or 1), full(opt, n_opt), full(hi, batch or n_opt)))
    return profiles


@dataclass(frozen=True)
class BuildOptions:
    """Everything the builder is told besides the ONNX (the CLI's options, one to one)."""

    precision: str = "fp32"  # what the ONNX holds: fp32 | fp16 | int8 (Q/DQ, or implicit with a calibrator)
    workspace_mib: int | None = None
    opt_level: int | None = None  # builder optimisation level 0-5 (TensorRT's default: 3)
    timing_cache: Path | None = None
    dla_core: int | None = None
    gpu_fallback: bool = True
    version_compatible: bool = False
    hardware_compatible: bool = False
    detailed_profiling: bool = True  # what IEngineInspector needs to report precisions and tactics
    calibrator: Any = None  # TensorRT 10.x implicit INT8 (``calibrator.make_entropy_calibrator``)
    mark_outputs: tuple[str, ...] = ()  # extra network outputs (block taps for parity --localize; see .taps)


@dataclass
class BuildOutcome:
    plan: bytes
    seconds: float
    flags: list[str]
    network_layers: list[dict[str, Any]]
    dla_gpu_fallback: list[str] | None = None
    warnings: list[str] = field(default_factory=list)


def _make_logger(trt: Any) -> Any:
    """An ``ILogger`` that keeps every message (subclassed here so that importing this module needs no TensorRT)."""

    class CapturingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.records: list[tuple[str, str]] = []

        def log(self, severity: Any, msg: str) -> None:  # called from C++: must not raise
            self.records.append((getattr(severity, "name", str(severity)), msg))

        def messages(self, *severities: str) -> list[str]:
            return [m for s, m in self.records if s in severities and not any(n in m for n in _NOISE)]

    return CapturingLogger()


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip() and not any(n in ln for n in _NOISE)]
    return " | ".join(lines)[:300] if lines else str(text)[:300]


def parse_errors(parser: Any) -> list[dict[str, Any]]:
    """Every parser error: node index, name and op type, TensorRT's error code and message."""
    errors = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        errors.append(
            {
                "node": int(e.node()),
                "name": e.node_name(),
                "op": e.node_operator(),
                "code": getattr(e.code(), "name", str(e.code())),
                "message": _first_line(e.desc()),
            }
        )
    return errors


def _parse_failure(onnx_path: Path, errors: Sequence[dict[str, Any]], logger: Any) -> EngineBuildError:
    if not errors:
        logged = logger.messages("ERROR", "INTERNAL_ERROR")
        return EngineBuildError(
            f"TensorRT could not parse {onnx_path.name}: "
            f"{_first_line(logged[0]) if logged else 'no error was reported'}"
        )
    first = errors[0]
    where = f"node '{first['name']}' ({first['op']})" if first["node"] >= 0 else "the graph (not a single node)"
    more = f"; {len(errors) - 1} more error(s)" if len(errors) > 1 else ""
    return EngineBuildError(
        f"TensorRT could not parse {onnx_path.name}: {where}: {first['code']}: {first['message']}{more}",
        hint="the layer report and --debug list every error; re-export or replace the op",
    )


def network_layers(trt: Any, network: Any) -> list[dict[str, Any]]:
    """Each layer of a parsed network (no GPU needed): type, input/output dtypes, and whether Q/DQ surrounds it."""
    producers: dict[str, Any] = {}
    consumers: dict[str, list[Any]] = {}
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    for layer in layers:
        for k in range(layer.num_outputs):
            producers[layer.get_output(k).name] = layer
        for k in range(layer.num_inputs):
            t = layer.get_input(k)
            if t is not None:
                consumers.setdefault(t.name, []).append(layer)

    def kind(layer: Any) -> str:
        return getattr(layer.type, "name", str(layer.type))

    rows = []
    for index, layer in enumerate(layers):
        inputs = [layer.get_input(k) for k in range(layer.num_inputs)]
        outputs = [layer.get_output(k) for k in range(layer.num_outputs)]
        row = {
            "index": index,
            "name": layer.name,
            "type": kind(layer),
            "inputs": [getattr(t.dtype, "name", str(t.dtype)) for t in inputs if t is not None],
            "outputs": [getattr(t.dtype, "name", str(t.dtype)) for t in outputs],
        }
        if row["type"] not in QDQ_TYPES and row["type"] != "CONSTANT":
            row["fed_by_dequantize"] = any(
                t is not None and t.name in producers and kind(producers[t.name]) == "DEQUANTIZE" for t in inputs
            )
            row["consumed_by_quantize"] = any(kind(c) == "QUANTIZE" for t in outputs for c in consumers.get(t.name, []))
            weights = inputs[1] if len(inputs) > 1 else None  # a kernel given as a tensor (Q/DQ weights)
            row["weights_from_dequantize"] = (
                weights is not None and kind(producers.get(weights.name, layer)) == "DEQUANTIZE"
            )
        rows.append(row)
    return rows


def _flag_names(trt: Any, config: Any) -> list[str]:
    names = []
    for name in dir(trt.BuilderFlag):
        if name.isupper():
            try:
                if config.get_flag(getattr(trt.BuilderFlag, name)):
                    names.append(name)
            except Exception:  # noqa: BLE001,S112  (a flag the library rejects reading)
                continue
    return sorted(set(names))


def build_engine_plan(
    lib: TrtLibrary, onnx_path: str | Path, profiles: Sequence[Profile], options: BuildOptions = BuildOptions()
) -> BuildOutcome:
    """Parse ``onnx_path`` and build a serialized engine. Parser and builder failures are ``EngineBuildError``
    (exit 6) naming the first failing node and TensorRT's message; nothing is written here."""
    trt = lib.module
    onnx_path = Path(onnx_path)
    logger = _make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch; strongly typed on 11.x and RTX, weakly typed on 10.x
    if network is None:
        raise EngineBuildError(
            f"TensorRT could not create a network: {_first_line(' '.join(logger.messages('ERROR')))}"
        )
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise _parse_failure(onnx_path, parse_errors(parser), logger)
    layers = network_layers(trt, network)
    if options.mark_outputs:
        from .taps import mark_tap_outputs

        try:
            mark_tap_outputs(network, options.mark_outputs)
        except KeyError as exc:
            raise EngineBuildError(f"{exc.args[0]}. Mark tensors of this very ONNX") from None

    config = builder.create_builder_config()
    if options.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mib) << 20)
    if options.opt_level is not None:
        config.builder_optimization_level = int(options.opt_level)
    if options.detailed_profiling:
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if options.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # strict FP32: what the FP32 parity gates judge
    if lib.weakly_typed:  # TensorRT 10.x: the precision flags let float layers use lower-precision kernels
        if options.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if options.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        if options.calibrator is not None:
            config.int8_calibrator = options.calibrator
    elif options.calibrator is not None:
        raise UsageError(
            f"{lib.describe()['generation']} has no implicit INT8 calibrator. Calibrate to a Q/DQ "
            "ONNX instead (the default)"
        )
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.hardware_compatible:
        if lib.is_rtx:
            raise UsageError(
                "TensorRT-RTX engines are portable across its GPUs already; --hardware-compatible is for TensorRT 10/11"
            )
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    timing_cache = None
    if options.timing_cache is not None and not lib.is_rtx:  # RTX: timing caches are deprecated no-ops
        data = options.timing_cache.read_bytes() if options.timing_cache.is_file() else b""
        timing_cache = config.create_timing_cache(data)
        config.set_timing_cache(timing_cache, False)

    dla_fallback = None
    if options.dla_core is not None:
        if not lib.has_dla:
            raise UsageError("TensorRT-RTX has no DLA. Build DLA engines with TensorRT on the Jetson itself")
        if any(not p.static for p in profiles):
            raise UsageError(
                "DLA needs static shapes (min = opt = max). Pass --input-size HxW, or export a static ONNX"
            )
        if options.precision not in ("fp16", "int8"):
            raise UsageError("DLA runs FP16 or INT8 only. Pass --fp16 or --int8")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(options.dla_core)
        if options.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        dla_fallback = [
            network.get_layer(i).name
            for i in range(network.num_layers)
            if not config.can_run_on_DLA(network.get_layer(i))
        ]
        if dla_fallback and not options.gpu_fallback:
            raise EngineBuildError(
                f"{len(dla_fallback)} layers cannot run on the DLA (e.g. {dla_fallback[0]}) and "
                "--no-gpu-fallback is set",
                hint="allow --gpu-fallback, or change the model",
            )

    if profiles:
        profile = builder.create_optimization_profile()
        for p in profiles:
            profile.set_shape(p.name, p.min, p.opt, p.max)
        if config.add_optimization_profile(profile) < 0:
            raise UsageError(
                f"invalid optimisation profile {[p.to_dict() for p in profiles]}: min <= opt <= max "
                "must hold in every dimension"
            )
        if options.calibrator is not None and hasattr(config, "set_calibration_profile"):
            config.set_calibration_profile(profile)

    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if plan is None:
        logged = logger.messages("ERROR", "INTERNAL_ERROR")
        raise EngineBuildError(
            f"TensorRT could not build an engine from {onnx_path.name}: "
            f"{_first_line(logged[-1]) if logged else 'no error was reported'}",
            hint="re-run with --debug; try --workspace, or another --opt-level",
        )
    if timing_cache is not None and options.timing_cache is not None:
        options.timing_cache.write_bytes(bytes(memoryview(timing_cache.serialize())))
    return BuildOutcome(
        plan=bytes(memoryview(plan)),
        seconds=seconds,
        flags=_flag_names(trt, config),
        network_layers=layers,
        dla_gpu_fallback=dla_fallback,
        warnings=logger.messages("WARNING")[:20],
    )


def engine_layers(lib: TrtLibrary, plan: bytes) -> list[dict[str, Any]] | None:
    """Per-layer information of the built engine from ``IEngineInspector`` (fused layers, precisions, tactics);
    ``None`` where the engine cannot be deserialised here (no GPU, or a GPU the library does not support)."""
    import json

    trt = lib.module
    logger = _make_logger(trt)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        return None
    inspector = engine.create_engine_inspector()
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    layers = []
    for entry in info.get("Layers", []):
        if isinstance(entry, str):  # built without detailed profiling: names only
            layers.append({"name": entry})
            continue

        def dtypes(tensors: Sequence[Mapping[str, Any]]) -> list[str]:
            return [
                str(t.get("Format/Datatype") or t.get("Datatype") or t.get("DataType") or t.get("Format") or "")
                for t in tensors
            ]

        layers.append(
            {
                "name": entry.get("Name"),
                "type": entry.get("LayerType"),
                "inputs": dtypes(entry.get("Inputs", [])),
                "outputs": dtypes(entry.get("Outputs", [])),
                "tactic": entry.get("TacticName") or entry.get("TacticValue"),
            }
        )
    return layers
