"""TEST DOUBLE of the ``tensorrt`` Python module (TensorRT 10.x or 11.x), for the behaviour that only those
generations have: weak-typing flags, DLA, the implicit INT8 calibrator and version checks.

It follows NVIDIA's documented API names (Builder, create_network, OnnxParser.parse_from_file/get_error,
IBuilderConfig.set_flag/int8_calibrator/DLA_core/default_device_type/can_run_on_DLA, Runtime...). The "network" is
the ONNX graph read with ``onnx``: one fake layer per node. On an 11.x double, the APIs 11.x removed (the
weak-typing BuilderFlags, ``int8_calibrator``, ``IInt8EntropyCalibrator2``, ``set_calibration_profile``) raise
AttributeError, as the real bindings do. It builds no engine: the "plan" is a marker string, and deserialising
returns None, as on a machine without a GPU. It is NOT evidence that TensorRT works; the real builds in CI come
from TensorRT-RTX (``test_build_trt.py``).
"""

from __future__ import annotations

import enum
import types
from typing import Any

import onnx

UNSUPPORTED_OPS = {"Unique"}
DLA_UNSUPPORTED = {"Resize", "ArgMax", "Cast"}  # align_corners resizes run on the GPU (TENSORRT.md)
_LAYER_TYPES = {
    "Conv": "CONVOLUTION",
    "Relu": "ACTIVATION",
    "Clip": "ACTIVATION",
    "MaxPool": "POOLING",
    "Add": "ELEMENTWISE",
    "Resize": "RESIZE",
    "QuantizeLinear": "QUANTIZE",
    "DequantizeLinear": "DEQUANTIZE",
    "Cast": "CAST",
    "ArgMax": "TOPK",
    "Constant": "CONSTANT",
}


def make(version: str = "10.16.0") -> types.ModuleType:
    """A fake ``tensorrt`` module of ``version`` (10.x keeps the weak-typing APIs; 11.x removed them)."""
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.__test_double__ = True

    flags = ["TF32", "GPU_FALLBACK", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "REFIT", "STRIP_PLAN", "DEBUG"]
    if major < 11:
        flags += ["FP16", "BF16", "INT8", "FP8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"]
    trt.BuilderFlag = enum.Enum("BuilderFlag", flags)
    trt.MemoryPoolType = enum.Enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])
    trt.ProfilingVerbosity = enum.Enum("ProfilingVerbosity", ["LAYER_NAMES_ONLY", "DETAILED", "NONE"])
    trt.DeviceType = enum.Enum("DeviceType", ["GPU", "DLA"])
    trt.HardwareCompatibilityLevel = enum.Enum(
        "HardwareCompatibilityLevel", ["NONE", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"]
    )
    trt.LayerType = enum.Enum("LayerType", sorted(set(_LAYER_TYPES.values()) | {"UNKNOWN"}))
    trt.DataType = enum.Enum("DataType", ["FLOAT", "HALF", "INT8", "INT32", "INT64", "UINT8", "BOOL"])
    trt.ErrorCode = enum.Enum("ErrorCode", ["SUCCESS", "INVALID_NODE", "UNSUPPORTED_NODE"])
    trt.TensorIOMode = enum.Enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    trt.builds: list[Any] = []  # every (network, config) built, for the tests to inspect

    class ILogger:
        Severity = enum.Enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

        def __init__(self) -> None:
            pass

    trt.ILogger = ILogger

    class Tensor:
        def __init__(self, name: str, dtype: Any) -> None:
            self.name, self.dtype = name, dtype

    class Layer:
        def __init__(self, node: Any, inputs: list[Tensor], outputs: list[Tensor]) -> None:
            self.name = node.name
            self.type = trt.LayerType[_LAYER_TYPES.get(node.op_type, "UNKNOWN")]
            self.op_type = node.op_type
            self._inputs, self._outputs = inputs, outputs
            self.num_inputs, self.num_outputs = len(inputs), len(outputs)

        def get_input(self, i: int) -> Tensor | None:
            return self._inputs[i] if i < len(self._inputs) else None

        def get_output(self, i: int) -> Tensor:
            return self._outputs[i]

        def __getattr__(self, name: str) -> Any:
            if name in ("precision", "set_output_type") and major >= 11:
                raise AttributeError(f"'ILayer' has no attribute '{name}' (removed in TensorRT 11)")
            raise AttributeError(name)

    class Network:
        def __init__(self) -> None:
            self.layers: list[Layer] = []

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i: int) -> Layer:
            return self.layers[i]

    class ParserError:
        def __init__(self, index: int, node: Any) -> None:
            self._index, self._node = index, node

        def node(self) -> int:
            return self._index

        def node_name(self) -> str:
            return self._node.name

        def node_operator(self) -> str:
            return self._node.op_type

        def code(self) -> Any:
            return trt.ErrorCode.UNSUPPORTED_NODE

        def desc(self) -> str:
            return f"No importer registered for op: {self._node.op_type}"

    class OnnxParser:
        def __init__(self, network: Network, logger: Any) -> None:
            self.network, self.errors = network, []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> ParserError:
            return self.errors[i]

        def parse_from_file(self, path: str) -> bool:
            model = onnx.load(path, load_external_data=False)
            fp16 = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16}
            tensors: dict[str, Tensor] = {}
            for i, node in enumerate(model.graph.node):
                if node.op_type in UNSUPPORTED_OPS:
                    self.errors.append(ParserError(i, node))
                    continue
                ins = [
                    tensors.setdefault(n, Tensor(n, trt.DataType.HALF if n in fp16 else trt.DataType.FLOAT))
                    for n in node.input
                    if n
                ]
                dtype = trt.DataType.INT8 if node.op_type == "QuantizeLinear" else trt.DataType.FLOAT
                outs = [tensors.setdefault(n, Tensor(n, dtype)) for n in node.output]
                self.network.layers.append(Layer(node, ins, outs))
            return not self.errors

    class OptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple] = {}

        def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class TimingCache:
        def serialize(self) -> bytes:
            return b"fake-timing-cache"

    class BuilderConfig:
        def __init__(self) -> None:
            self.flags = {trt.BuilderFlag.TF32}
            self.pool_limits: dict[Any, int] = {}
            self.profiles: list[OptimizationProfile] = []
            self.builder_optimization_level = 3
            self.profiling_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY
            self.default_device_type = trt.DeviceType.GPU
            self.DLA_core = -1
            self.hardware_compatibility_level = trt.HardwareCompatibilityLevel.NONE
            self.timing_cache = None
            if major < 11:
                self.int8_calibrator = None
                self.calibration_profile = None

        def set_flag(self, flag: Any) -> None:
            self.flags.add(flag)

        def clear_flag(self, flag: Any) -> None:
            self.flags.discard(flag)

        def get_flag(self, flag: Any) -> bool:
            return flag in self.flags

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self.pool_limits[pool] = size

        def add_optimization_profile(self, profile: OptimizationProfile) -> int:
            for lo, opt, hi in profile.shapes.values():
                if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
                    return -1
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def can_run_on_DLA(self, layer: Layer) -> bool:  # noqa: N802  (TensorRT's name)
            return layer.op_type not in DLA_UNSUPPORTED

        def create_timing_cache(self, data: bytes) -> TimingCache:
            return TimingCache()

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.timing_cache = cache
            return True

        def __setattr__(self, name: str, value: Any) -> None:
            if major >= 11 and name in ("int8_calibrator", "calibration_profile"):
                raise AttributeError(f"'IBuilderConfig' has no attribute '{name}' (removed in TensorRT 11)")
            object.__setattr__(self, name, value)

        if major < 11:

            def set_calibration_profile(self, profile: OptimizationProfile) -> bool:
                self.calibration_profile = profile
                return True

    class Builder:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            return Network()

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfig()

        def create_optimization_profile(self) -> OptimizationProfile:
            return OptimizationProfile()

        def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes:
            trt.builds.append((network, config))
            return f"fake-plan tensorrt {version}".encode()

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, plan: bytes) -> None:
            return None  # as on a machine without a GPU

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    if major < 11:

        class IInt8EntropyCalibrator2:
            def __init__(self) -> None:
                pass

        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    return trt
