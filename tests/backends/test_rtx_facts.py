"""TensorRT-RTX facts from NVIDIA's support matrix, where the code and doctor state them (issue 21, item 5)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from refinenet_deploy.backends.tensorrt.runner import RTX_COMPUTE_CAPABILITIES, RTX_FACTS
from refinenet_deploy.cli import app
from refinenet_deploy.operations.pipeline.config import TARGETS


def test_rtx_engines_are_only_claimed_for_the_gpus_that_run_them() -> None:
    assert set(RTX_COMPUTE_CAPABILITIES) == {"8.6", "8.9", "12.0", "12.1"}  # not 8.0 (A100), 8.7 (Orin), 9.0 (Hopper)
    assert "weight-only" in RTX_FACTS and "Hopper (9.0)" in RTX_FACTS
    assert "weight-only" in TARGETS["rtx-trt-int8"].summary and "8.6/8.9/12.x" in TARGETS["rtx-trt-fp16"].summary


def test_doctor_states_the_rtx_facts() -> None:
    res = CliRunner().invoke(app, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tensorrt_rtx_note"] == RTX_FACTS
