"""The artifact sidecar as ``BuildResult`` (with its typed precision audit) and a bundle's manifest as
``BundleManifest``: read from REAL files written by the landed code (tests/assets/results/), written back as they
were."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from refinenet_deploy.errors import DataError, IncompatibleArtifactError, InvalidModelError
from refinenet_deploy.results import BuildResult, BundleManifest, PrecisionAudit

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "results"


def test_an_onnx_sidecar_reads_as_a_build_result_and_writes_back() -> None:
    raw = json.loads((ASSETS / "onnx-sidecar-v2.meta.json").read_text())
    build = BuildResult.read(ASSETS / "onnx-sidecar-v2.meta.json")
    assert (build.kind, build.precision, build.arch, build.num_classes) == ("onnx", "fp32", "rf_lw_test", 3)
    assert build.export_size == tuple(raw["export_size"]) and build.artifact_bytes == raw["artifact"]["bytes"]
    assert build.precision_audit is None  # an ONNX is not audited (OpenVINO IRs are)
    assert build.to_dict() == raw and BuildResult.from_dict(build.to_dict()) == build


def _compiled(precisions: list[str]) -> SimpleNamespace:
    """A FAKE compiled model: runtime-graph ops with OpenVINO's rt_info keys, one per convolution precision."""

    def op(layer: str, precision: str) -> SimpleNamespace:
        info = {"layerType": layer, "runtimePrecision": precision}
        return SimpleNamespace(get_rt_info=lambda: info)

    ops = [op("Convolution", p) for p in precisions] + [op("Relu", "f32")]
    return SimpleNamespace(get_runtime_model=lambda: SimpleNamespace(get_ordered_ops=lambda: ops))


def test_the_openvino_precision_audit_is_typed() -> None:
    from refinenet_deploy.backends.openvino.audit import runtime_precisions

    recorded = {"device": "CPU", "device_capabilities": ["FP32", "INT8"], **runtime_precisions(_compiled(["i8"] * 3))}
    recorded |= {"realised": True}
    sidecar = {"format": "refinenet-deploy/openvino", "schema_version": 2, "precision": "int8"}
    build = BuildResult.from_dict({**sidecar, "precision_audit": recorded})
    audit = build.precision_audit
    assert isinstance(audit, PrecisionAudit) and audit.summary == "INT8 convolutions: 3/3"
    assert audit.by_precision == {"int8": 3} and audit.int8_share == 1.0 and audit.realised is True
    assert audit.shown == "INT8 convolutions: 3/3 (on CPU)" and audit.to_dict() == recorded
    warned = PrecisionAudit.from_dict({**recorded, "realised": False, "warning": "requested INT8 but ..."})
    assert warned.shown.endswith("!")
    assert PrecisionAudit.from_dict({"error": "no plugin", "realised": None}).shown == "audit failed: no plugin"


def test_a_sidecar_of_an_unknown_version_or_not_a_sidecar_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IncompatibleArtifactError, match=r"sidecar schema version 9; this rfdeploy reads 1, 2"):
        BuildResult.from_dict({"format": "refinenet-deploy/onnx", "schema_version": 9})
    (tmp_path / "x.meta.json").write_text('{"format": "something-else"}')
    with pytest.raises(InvalidModelError, match="not an rfdeploy sidecar"):
        BuildResult.read(tmp_path / "x.meta.json")


def test_a_bundle_manifest_writes_back_key_for_key() -> None:
    raw = json.loads((ASSETS / "bundle-manifest-v1.json").read_text())
    manifest = BundleManifest.read(ASSETS / "bundle-manifest-v1.json")
    assert set(manifest.targets) == set(raw["targets"]) and len(manifest.artifacts) == len(raw["artifacts"])
    assert json.dumps(manifest.to_dict()) == json.dumps(raw)  # the same JSON, in the same order
    assert BundleManifest.from_dict(manifest.to_dict()) == manifest


def test_a_manifest_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    raw = json.loads((ASSETS / "bundle-manifest-v1.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**raw, "schema_version": 2}))
    with pytest.raises(
        DataError, match=r"bundle-manifest schema_version 2 is not one this rfdeploy reads \(it knows 1\)"
    ):
        BundleManifest.read(tmp_path / "manifest.json")
