"""``ParityOptions``: every spelling parsed once into the one we record, every bound checked once (exit 2)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from refinenet_deploy.enums import Device, Precision
from refinenet_deploy.errors import UsageError
from refinenet_deploy.operations.parity import ParityOptions, check_request


def test_spellings_are_parsed_once_into_the_recorded_ones() -> None:
    o = ParityOptions(inference_precision="f16", torch_precision="half", device="cuda", min_agreement=99.5)
    assert o.inference_precision is Precision.FP16 and o.torch_precision is Precision.FP16
    assert o.device is Device.GPU and o.min_agreement == pytest.approx(0.995)
    again = replace(o, num_images=3)  # validated again: the parsed values are stable
    assert again.inference_precision is Precision.FP16 and again.min_agreement == pytest.approx(0.995)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"inference_precision": "tf32"}, "--inference-precision"),
        ({"torch_precision": "int8"}, "--precision"),
        ({"device": "npu"}, "--device"),
        ({"scales": (1.0, 1.0)}, "--multi-scale"),
        ({"min_agreement": 101}, "--min-agreement"),
        ({"max_miou_drop": -1}, "--max-miou-drop"),
        ({"save_worst": 0, "worst_dir": "w"}, "--save-worst"),
        ({"save_worst": 2}, "--save-worst"),
        ({"reference_logits": True}, "--reference-logits"),
        ({"save_reference": "ref.pt"}, "--save-reference"),
    ],
)
def test_a_bad_option_is_refused_naming_it(kwargs: dict, option: str) -> None:
    with pytest.raises(UsageError) as info:
        ParityOptions(**kwargs)
    assert option in info.value.message and info.value.exit_code == 2


def test_the_request_checks_what_the_options_ask_of_the_inputs(tmp_path) -> None:
    with pytest.raises(UsageError, match="nothing to do"):
        check_request(tmp_path / "m.safetensors", [], ParityOptions())
    with pytest.raises(UsageError, match="take one artifact"):
        check_request(tmp_path / "m.safetensors", [tmp_path / "a.onnx", tmp_path / "b.onnx"], ParityOptions(),
                      reports=True)  # fmt: skip
    with pytest.raises(UsageError, match="--input-size applies"):
        check_request(tmp_path / "m.safetensors", [tmp_path / "a.onnx"], ParityOptions(input_size=(64, 64)))
