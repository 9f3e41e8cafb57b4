"""``rfdeploy build trt`` with real engine builds: TensorRT-RTX builds engines on this CPU-only machine.

Every head and input format, static and dynamic, FP32/FP16 and the Q/DQ INT8 from calibrate; the sidecar and the
layer report; failures (an op TensorRT cannot parse: exit 6 naming the node; no library: exit 4) that leave nothing
behind. Engines cannot be *run* here (no GPU TensorRT-RTX supports), so these tests check builds, not outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from refinenet_deploy.artifacts import read_metadata, sidecar_path
from refinenet_deploy.cli import app
from refinenet_deploy.errors import MissingDependencyError, UsageError
from refinenet_deploy.operations.build_trt import build_engine, intermediate_onnx_path
from refinenet_deploy.operations.calibrate import calibrate_onnx
from refinenet_deploy.operations.export import ExportSpec, export_onnx

from ..helpers import tiny_fp32_export

pytestmark = pytest.mark.trt_rtx
runner = CliRunner()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trt")
    paths = tiny_fp32_export(root, images=8, data_seed=4, model_seed=21)
    qdq = root / "m.int8.onnx"
    # min_agreement=0: this random-weight model's near-tied logits flip under INT8 (87.6 % agreement); the engine
    # build is what is tested here, the self-check in tests/operations/test_calibrate.py
    calibrate_onnx(
        paths["fp32"], paths["data"], qdq, num_images=8, producer="onnxruntime", method="max", min_agreement=0.0
    )
    dyn = root / "dyn.onnx"
    export_onnx(paths["ckpt"], dyn, ExportSpec(input_size=(48, 48), dynamic=True, verify_sizes=((40, 56),)))
    return {**paths, "qdq": qdq, "dynamic": dyn}


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_printed_trtexec_line_works_from_the_current_directory(setup, tmp_path: Path, monkeypatch) -> None:
    """Issue 19 item 15: the ONNX and the engine in different folders; the printed line names paths that exist from
    where the command ran (it used to print both basenames)."""
    (tmp_path / "models").mkdir()
    onnx_path = tmp_path / "models" / "m.onnx"
    shutil.copy(setup["fp32"], onnx_path)
    shutil.copy(sidecar_path(setup["fp32"]), sidecar_path(onnx_path))
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["build", "trt", "models/m.onnx", "-o", "engines/m.engine"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if x.startswith("trtexec equivalent: "))
    assert " --onnx=models/m.onnx --saveEngine=engines/m.engine" in line, line
    meta = read_metadata(tmp_path / "engines" / "m.engine")  # the sidecar's: from the engine's folder
    assert " --onnx=../models/m.onnx --saveEngine=m.engine" in meta["trtexec_command"]


def test_fp32_static_engine_sidecar_and_layer_report(setup, tmp_path: Path) -> None:
    engine, report = tmp_path / "m.engine", tmp_path / "layers.json"
    res = runner.invoke(app, ["build", "trt", str(setup["fp32"]), "--layer-report", str(report), "-o", str(engine)])
    assert res.exit_code == 0, res.output
    assert engine.stat().st_size > 100_000 and engine.read_bytes()[:4] == b"vtrt"  # TensorRT-RTX plan magic
    meta = read_metadata(engine)
    assert meta["format"] == "refinenet-deploy/tensorrt" and meta["precision"] == "fp32"
    assert meta["tensorrt"]["library"] == "tensorrt-rtx" and meta["tensorrt"]["version"].startswith("1.")
    assert meta["device"]["portable"] and "9.0" not in meta["device"]["compute_capabilities"]
    assert meta["shapes"] == [{"name": "input", "min": [1, 3, 48, 48], "opt": [1, 3, 48, 48], "max": [1, 3, 48, 48]}]
    assert meta["onnx"]["made_by"] == "given" and len(meta["onnx"]["sha256"]) == 64
    assert meta["artifact"]["bytes"] == engine.stat().st_size
    assert meta["arch"] == "rf_lw_mbv2_test" and meta["num_classes"] == 6  # inherited model description
    assert "TF32" not in meta["build"]["flags"]  # strict FP32
    # relative to the engine's folder (where the sidecar is): the ONNX is in another folder here
    onnx_rel = os.path.relpath(setup["fp32"], engine.parent)
    assert meta["trtexec_command"].startswith(f"tensorrt_rtx --onnx={onnx_rel} --saveEngine=m.engine")
    assert meta["trtexec_runs_in"] == "the engine's folder"
    assert meta["rebuild_command"] == "rfdeploy build trt m.onnx -o m.engine"
    assert meta["provenance"]["versions"]["onnx"] and meta["provenance"]["host"]["cpu"]
    layers = json.loads(report.read_text())
    assert layers["source"] == "network"  # no GPU here: the engine cannot be deserialised
    assert layers["summary"]["convolutions"] == meta["layer_report"]["summary"]["convolutions"] > 10
    assert layers["summary"]["quantize"] == 0 and layers["summary"]["resizes"] >= 1
    assert all({"name", "type", "inputs", "outputs"} <= set(row) for row in layers["layers"])


def test_fp16_from_fp32_onnx_is_converted_checked_and_kept(setup, tmp_path: Path) -> None:
    engine = tmp_path / "m.fp16.engine"
    res = build_engine(setup["fp32"], engine, precision="fp16")
    meta = res.metadata
    assert meta["precision"] == "fp16" and meta["onnx"]["argmax_agreement_vs_fp32_onnx"] >= 0.995
    kept = intermediate_onnx_path(engine)
    assert kept.is_file() and meta["onnx"]["kept_as"] == kept.name
    assert any(t.data_type == TensorProto.FLOAT16 for t in onnx.load(str(kept)).graph.initializer)
    assert not sidecar_path(kept).exists()  # its metadata is in its metadata_props, not the engine's sidecar
    kept_meta = read_metadata(kept)
    assert kept_meta["precision"] == "fp16" and kept_meta["arch"] == "rf_lw_mbv2_test"
    assert meta["onnx"]["sha256"] == __import__("refinenet_deploy.artifacts").artifacts.sha256_file(kept)
    assert res.layer_report["summary"]["layers_with_half_outputs"] > 10


def test_fp16_onnx_from_export_builds_as_given(setup, tmp_path: Path) -> None:
    fp16 = tmp_path / "h.onnx"
    export_onnx(setup["ckpt"], fp16, ExportSpec(input_size=(48, 48), fp16=True))
    res = build_engine(fp16, tmp_path / "h.engine", precision="fp16")
    assert res.metadata["onnx"]["made_by"] == "given" and not intermediate_onnx_path(tmp_path / "h.engine").exists()
    assert build_engine(fp16, tmp_path / "x.engine").metadata["precision"] == "fp16"  # no flag: what the ONNX holds
    with pytest.raises(UsageError, match="FP16 ONNX"):
        build_engine(fp16, tmp_path / "y.engine", precision="int8")


def test_int8_from_qdq_onnx_runs_int8_convolutions(setup, tmp_path: Path) -> None:
    res = build_engine(setup["qdq"], tmp_path / "q.engine", precision="int8")
    summary = res.layer_report["summary"]
    assert summary["quantize"] > 0 and summary["dequantize"] >= summary["quantize"]
    assert summary["convolutions_int8"] == summary["convolutions"] > 0  # every conv reads Q/DQ'd inputs
    assert res.metadata["calibration"]["digest"]  # inherited from calibrate
    with pytest.raises(UsageError, match="Q/DQ INT8"):
        build_engine(setup["qdq"], tmp_path / "x.engine", precision="fp16")


def test_int8_from_fp32_calibrates_first(setup, tmp_path: Path) -> None:
    engine = tmp_path / "c.engine"
    res = runner.invoke(
        app,
        [
            "build",
            "trt",
            str(setup["fp32"]),
            "--int8",
            "--data",
            str(setup["data"]),
            "--num-images",
            "4",
            "--min-agreement",
            "0",  # a random-weight model: its INT8 self-check is tested in tests/operations/test_calibrate.py
            "-o",
            str(engine),
        ],
    )
    assert res.exit_code == 0, res.output
    meta = read_metadata(engine)
    assert meta["precision"] == "int8" and meta["calibration"]["count"] == 4
    assert meta["onnx"]["made_by"].startswith("rfdeploy calibrate")
    assert meta["layer_report"]["summary"]["convolutions_int8"] > 0
    assert read_metadata(intermediate_onnx_path(engine))["calibration"]["count"] == 4
    res = runner.invoke(app, ["build", "trt", str(setup["fp32"]), "--int8", "-o", str(tmp_path / "n.engine")])
    assert res.exit_code == 2 and "--data" in res.output


def test_dynamic_onnx_gets_a_profile(setup, tmp_path: Path) -> None:
    res = build_engine(setup["dynamic"], tmp_path / "d.engine", shapes="32x40:48x48:96x128")
    assert res.metadata["shapes"][0] == {
        "name": "input",
        "min": [1, 3, 32, 40],
        "opt": [1, 3, 48, 48],
        "max": [1, 3, 96, 128],
    }
    assert "--minShapes=input:1x3x32x40" in res.metadata["trtexec_command"]
    default = build_engine(setup["dynamic"], tmp_path / "e.engine").metadata["shapes"][0]
    assert default["opt"] == [1, 3, 48, 48] and default["min"] == [1, 3, 32, 32] and default["max"] == [1, 3, 96, 96]
    fixed = build_engine(setup["dynamic"], tmp_path / "f.engine", input_size=(64, 80)).metadata
    assert fixed["static_shapes"] and fixed["shapes"][0]["min"] == [1, 3, 64, 80]
    for bad in ("48x48:32x32:64x64", "1x2", "a:b:c"):
        with pytest.raises(UsageError):
            build_engine(setup["dynamic"], tmp_path / "g.engine", shapes=bad)
    with pytest.raises(UsageError, match="static size"):
        build_engine(setup["fp32"], tmp_path / "g.engine", shapes="32x32:48x48:64x64")
    assert not (tmp_path / "g.engine").exists()


@pytest.mark.parametrize(
    ("head", "input_format", "dynamic"),
    [
        ("argmax", "nhwc-uint8", True),
        ("argmax", "nhwc-uint8", False),
        ("upsample", "nchw-float", True),
        ("logits", "nhwc-uint8", False),
        ("argmax", "nchw-float", False),
    ],
)
def test_every_head_and_input_format_builds(setup, tmp_path: Path, head: str, input_format: str, dynamic: bool) -> None:
    """The nhwc-uint8 input is cast to float before any layout change, and the class map comes from a final Cast:
    the two rules TensorRT has for uint8 tensors. The export's own TensorRT check builds it too."""
    path = tmp_path / "cam.onnx"
    res = export_onnx(
        setup["ckpt"],
        path,
        ExportSpec(
            input_size=(48, 48), head=head, input_format=input_format, dynamic=dynamic, verify_sizes=((40, 56),)
        ),
    )
    check = res.metadata["verification"]["tensorrt"]
    assert check["parsed"] and check["built"] and check["library"] == "tensorrt-rtx"
    model = onnx.load(str(path))
    if input_format == "nhwc-uint8":
        first = next(n for n in model.graph.node if "input" in n.input)
        assert first.op_type == "Cast"
    if head == "argmax":
        assert model.graph.node[-1].op_type == "Cast"
    engine = build_engine(path, tmp_path / "cam.engine")
    assert engine.metadata["shapes"][0]["opt"] == ([1, 48, 48, 3] if input_format == "nhwc-uint8" else [1, 3, 48, 48])


def _unparseable(path: Path) -> Path:
    # an image-shaped graph (it passes rfdeploy's own input/output checks) with an op TensorRT cannot parse
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, None, None, None])
    graph = helper.make_graph([helper.make_node("Unique", ["input"], ["output"], name="dedupe_labels")], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_an_op_tensorrt_cannot_parse_is_exit_6_naming_the_node(tmp_path: Path) -> None:
    model = _unparseable(tmp_path / "u.onnx")
    before = _files(tmp_path)
    res = runner.invoke(app, ["build", "trt", str(model), "-o", str(tmp_path / "u.engine")])
    assert res.exit_code == 6, res.output
    assert "dedupe_labels" in res.output and "Unique" in res.output and "Traceback" not in res.output
    assert _files(tmp_path) == before  # no engine, no sidecar, no staging folder


def test_no_tensorrt_library_is_exit_4_naming_the_extras(setup, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    with pytest.raises(MissingDependencyError) as info:
        build_engine(setup["fp32"], tmp_path / "m.engine")
    assert info.value.exit_code == 4 and "[trt]" in info.value.hint and "[trt-rtx]" in info.value.hint
    res = runner.invoke(
        app, ["build", "trt", str(setup["fp32"]), "--library", "tensorrt", "-o", str(tmp_path / "m.engine")]
    )
    assert res.exit_code == 4 and "refinenet-deploy[trt]" in res.output
    assert not (tmp_path / "m.engine").exists()


def test_usage_errors(setup, tmp_path: Path) -> None:
    out = str(tmp_path / "m.engine")
    cases = [
        (["--fp16", "--int8"], "exclude"),
        (["--opt-level", "9"], "less than or equal to 5"),
        (["--library", "cuda"], "--library"),
        (["--dla-core", "0"], "TensorRT-RTX has no DLA"),
        (["--calibrator", "implicit", "--int8", "--data", str(setup["data"])], "implicit"),
        (["--hardware-compatible"], "portable"),
        (["--layer-report", str(tmp_path / "r.txt")], "--layer-report"),
    ]
    for extra, words in cases:
        res = runner.invoke(app, ["build", "trt", str(setup["fp32"]), *extra, "-o", out])
        assert res.exit_code == 2, (extra, res.output)
        assert words in res.output, (extra, res.output)
    res = runner.invoke(app, ["build", "trt", str(setup["fp32"]), "-o", str(tmp_path / "m.onnx")])
    assert res.exit_code == 2 and ".engine" in res.output
    assert not Path(out).exists() and not sidecar_path(out).exists()


def test_engine_runner_refuses_an_h100_before_deserialising(setup, tmp_path: Path) -> None:
    """The sidecar check that guards the runner: this RTX engine cannot run on a 9.0 GPU (as measured on an H100)."""
    from refinenet_deploy.backends.tensorrt import check_engine_compatibility
    from refinenet_deploy.errors import IncompatibleArtifactError

    meta = build_engine(setup["fp32"], tmp_path / "m.engine").metadata
    with pytest.raises(IncompatibleArtifactError, match="compute capability .* this GPU .* is 9.0"):
        check_engine_compatibility(meta, meta["tensorrt"]["version"], "NVIDIA H100 80GB HBM3", "9.0", "tensorrt-rtx")
    check_engine_compatibility(meta, meta["tensorrt"]["version"], "NVIDIA GeForce RTX 4090", "8.9", "tensorrt-rtx")
    with pytest.raises(IncompatibleArtifactError, match="cannot load each other's engines"):
        check_engine_compatibility(meta, "10.16.0", "RTX 4090", "8.9", "tensorrt")
    assert np.isfinite(meta["build"]["seconds"])
