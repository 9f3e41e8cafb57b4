"""Effective precision audit after 'build openvino': the runtime graph's convolution precisions, recorded in the
sidecar; a warning when the requested precision is not realised, and --strict-precision exits 6."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from refinenet_deploy.artifacts import read_metadata
from refinenet_deploy.cli import app

from ..helpers import tiny_fp32_export

pytestmark = pytest.mark.openvino
pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return tiny_fp32_export(tmp_path_factory.mktemp("audit"), images=4, data_seed=5, model_seed=1)


def _build(*args: str):
    return CliRunner().invoke(app, ["build", "openvino", *args])


def test_fp32_ir_has_no_int8_convolutions(setup, tmp_path) -> None:
    xml = tmp_path / "m.xml"
    res = _build(str(setup["fp32"]), "-o", str(xml))
    assert res.exit_code == 0, res.output
    audit = read_metadata(xml)["precision_audit"]
    assert audit["convolutions"] > 0 and audit["int8_share"] == 0.0
    assert audit["by_precision"] == {"f32": audit["convolutions"]} and audit["realised"] is True
    assert f"INT8 convolutions: 0/{audit['convolutions']}" in res.output


def test_nncf_ir_reports_its_int8_share(setup, tmp_path) -> None:
    from refinenet_deploy.environment import has_int8_dot_product

    xml = tmp_path / "m8.xml"
    res = _build(str(setup["fp32"]), "--int8", "--data", str(setup["data"]), "--num-images", "4", "-o", str(xml))
    assert res.exit_code == 0, res.output
    audit = read_metadata(xml)["precision_audit"]
    n = audit["by_precision"].get("int8", 0)
    assert audit["summary"] == f"INT8 convolutions: {n}/{audit['convolutions']}"
    assert audit["int8_share"] == pytest.approx(n / audit["convolutions"], abs=1e-4)
    if has_int8_dot_product():  # VNNI/AMX: the plugin runs the quantized convolutions in INT8
        assert audit["int8_share"] > 0.5 and audit["realised"] is True


def test_int8_not_realised_warns_and_strict_exits_6(setup, tmp_path, monkeypatch) -> None:
    import refinenet_deploy.backends.openvino.audit as audit_mod

    def all_float(xml, **kwargs):
        return {"device": "CPU", "inference_precision_hint": "f32", "device_capabilities": ["FP32"],
                "convolutions": 10, "by_precision": {"f32": 10}, "int8_share": 0.0,
                "summary": "INT8 convolutions: 0/10"}  # fmt: skip

    monkeypatch.setattr(audit_mod, "audit_ir", all_float)
    args = [str(setup["fp32"]), "--int8", "--data", str(setup["data"]), "--num-images", "4"]
    xml = tmp_path / "w.xml"
    res = _build(*args, "-o", str(xml))
    assert res.exit_code == 0 and "warning: requested INT8 but INT8 convolutions: 0/10" in res.output
    assert read_metadata(xml)["precision_audit"]["realised"] is False
    strict = tmp_path / "s.xml"
    res = _build(*args, "--strict-precision", "-o", str(strict))
    assert res.exit_code == 6 and "--strict-precision" in res.output and not strict.exists()
