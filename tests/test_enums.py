"""One vocabulary: every accepted spelling of a precision, runtime or device is parsed in ``enums`` only."""

from __future__ import annotations

import json

import pytest

from refinenet_deploy.backends.openvino.runner import normalize_precision as ov_precision
from refinenet_deploy.backends.openvino.runner import ov_precision_name
from refinenet_deploy.enums import Device, Precision, Runtime
from refinenet_deploy.errors import UsageError
from refinenet_deploy.operations.pipeline.config import canonical_target_name, parse_targets
from refinenet_deploy.operations.report import normalize_precision as report_precision


@pytest.mark.parametrize(
    ("spellings", "member"),
    [
        (("fp32", "F32", "float32", " FP32 ", "float"), Precision.FP32),
        (("fp16", "f16", "half", "float16"), Precision.FP16),
        (("bf16", "BFloat16"), Precision.BF16),
        (("tf32",), Precision.TF32),
        (("int8", "i8", "qint8"), Precision.INT8),
    ],
)
def test_precision_spellings(spellings: tuple[str, ...], member: Precision) -> None:
    for text in spellings:
        assert Precision.parse(text) is member
        assert report_precision(text) == member.value  # the report reads old JSON through the same table
    assert json.dumps(member) == f'"{member.value}"'


def test_runtime_and_device_spellings() -> None:
    assert [Runtime.parse(t) for t in ("ort", "onnxrt", "ov", "trt", "TensorRT", "pytorch")] == [
        Runtime.ONNXRUNTIME,
        Runtime.ONNXRUNTIME,
        Runtime.OPENVINO,
        Runtime.TENSORRT,
        Runtime.TENSORRT,
        Runtime.TORCH,
    ]
    assert Device.parse("CUDA") is Device.GPU and Device.lookup("tpu") is None


def test_refusals_name_the_option_and_the_choices() -> None:
    with pytest.raises(UsageError, match=r"unsupported --precision: 'int4'. Use one of: fp32, fp16"):
        Precision.parse("int4", option="--precision")
    with pytest.raises(UsageError, match=r"--inference-precision: 'int8'. Use one of: fp32, bf16, fp16"):
        ov_precision("int8")
    with pytest.raises(UsageError, match="--device"):
        Device.parse("npu", allowed=(Device.CPU, Device.GPU), option="--device")


def test_openvino_spellings_bounce_no_more() -> None:
    assert [ov_precision(v) for v in ("f32", "FP16", "half", "bf16", None)] == ["fp32", "fp16", "fp16", "bf16", None]
    assert [ov_precision_name(v) for v in ("f32", "f16", "bf16", "dynamic")] == ["fp32", "fp16", "bf16", None]
    assert Precision.FP16.openvino == "f16" and Precision.FP32.openvino == "f32"


def test_pipeline_targets_take_the_same_spellings() -> None:
    assert canonical_target_name("CPU-ort-f32") == "cpu-onnxruntime-fp32"
    assert canonical_target_name("gpu-tensorrt-half") == "gpu-trt-fp16"
    assert canonical_target_name("jetson-dla-i8") == "jetson-dla-int8"
    (t,) = parse_targets("cpu-ov-float16")
    assert t.name == "cpu-openvino-fp16" and t.precision is Precision.FP16 and t.backend is Runtime.OPENVINO
    assert {t.backend for t in parse_targets("all")} == set(Runtime)
    with pytest.raises(UsageError, match="unknown target"):
        parse_targets("cpu-ort-int4")
