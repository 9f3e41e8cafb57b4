"""The calibration option groups (``CalibrationOptions``, ``AccuracyControl``): checked once, with the messages and
exit codes the commands gave before; built alike by ``rfdeploy calibrate``, ``rfdeploy build`` and the pipeline
config; library calls take the objects or their fields as keywords. No model runs here: the CLI tests patch the
library call where the CLI looks it up (a labelled fake that records its arguments)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from refinenet_deploy.calibration.options import (
    AccuracyControl,
    CalibrationOptions,
    option_groups,
    parse_blocks,
)
from refinenet_deploy.cli import app
from refinenet_deploy.errors import CalibrationError, UsageError
from refinenet_deploy.operations.pipeline.config import load_config, make_config


def test_calibration_options_resolve_the_producer_default_method_and_keep_names_as_tuples() -> None:
    opts = CalibrationOptions(producer="onnxruntime", keep_float=["classifier"], exclude_nodes="/model/x")
    assert opts.method == "max"  # onnxruntime's default
    assert CalibrationOptions().method == "entropy"  # modelopt's
    assert opts.keep_float == ("classifier",) and opts.exclude_nodes == ("/model/x",)
    with pytest.raises(AttributeError):
        opts.seed = 3  # type: ignore[misc]  (frozen)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"producer": "ort"}, UsageError, "unsupported --producer: ort"),
        ({"producer": "onnxruntime", "method": "entropy"}, UsageError, "use --producer modelopt for --method entropy"),
        ({"method": "kl"}, UsageError, "unsupported --method: kl"),
        ({"num_images": 0}, CalibrationError, "at least 1, got 0"),  # exit 5, as the calibration set raised it
        ({"num_images": 100_001}, UsageError, "--num-images must be an integer 1..100000"),
        ({"seed": -1}, UsageError, "--seed must be an integer"),
    ],
)
def test_calibration_options_refuse_bad_values(kwargs: dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words) as info:
        CalibrationOptions(**kwargs)
    assert info.value.exit_code == (5 if error is CalibrationError else 2)


def test_accuracy_control_takes_a_fraction_or_a_percentage() -> None:
    assert AccuracyControl(min_agreement=90).min_agreement == pytest.approx(0.9)
    assert AccuracyControl(min_agreement=0.95).min_agreement == pytest.approx(0.95)
    assert AccuracyControl().min_agreement is None and not AccuracyControl().enabled
    acc = AccuracyControl(max_miou_drop=0.5)
    assert acc.enabled and acc.validation_data("calib") == "calib"
    assert AccuracyControl(max_miou_drop=0.5, val_data="val").validation_data("calib") == "val"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"min_agreement": 101}, "--min-agreement must be 0-1 or a percentage 0-100, got 101"),
        ({"min_agreement": float("nan")}, "--min-agreement must be 0-1 or a percentage 0-100"),
        ({"max_miou_drop": -0.1}, r"--max-miou-drop must be >= 0 \(points of mIoU\), got -0.1"),
        ({"max_miou_drop": float("nan")}, "--max-miou-drop must be >= 0"),
        ({"val_images": 0}, "--val-images must be an integer 1..1000000, got 0"),
        ({"threads": 0}, "--threads must be an integer 1..1024, got 0"),
    ],
)
def test_accuracy_control_refuses_bad_values(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=words) as info:
        AccuracyControl(**kwargs)
    assert info.value.exit_code == 2


def test_option_groups_route_keywords_and_refuse_both_forms() -> None:
    opts, acc = option_groups(
        None, None, {"num_images": 4, "producer": "onnxruntime", "max_miou_drop": 1.0}, function="f"
    )
    assert (opts.num_images, opts.producer, acc.max_miou_drop) == (4, "onnxruntime", 1.0)
    given = CalibrationOptions(seed=3)
    assert option_groups(given, None, {"val_images": 5}, function="f")[0] is given
    with pytest.raises(TypeError, match="CalibrationOptions and its fields as keywords: seed"):
        option_groups(given, None, {"seed": 4}, function="f")
    with pytest.raises(TypeError, match="unexpected keyword arguments: nmu_images"):
        option_groups(None, None, {"nmu_images": 4}, function="f")


def test_parse_blocks() -> None:
    assert parse_blocks("refinenet4.crp, classifier,") == ("refinenet4.crp", "classifier")
    assert parse_blocks(None) == ()
    with pytest.raises(UsageError, match="--keep-float needs block names"):
        parse_blocks(" , ")


def test_pipeline_config_builds_the_same_groups(tmp_path: Path) -> None:
    cfg_file = tmp_path / "p.toml"
    cfg_file.write_text(
        "[gates]\nmin_agreement = 98\n"
        '[calibration]\nnum_images = 16\nproducer = "onnxruntime"\nmax_miou_drop = 0.5\nval_images = 7\n'
    )
    cfg = make_config(load_config(cfg_file), {})
    assert cfg.calibration_options() == CalibrationOptions(num_images=16, producer="onnxruntime")
    assert cfg.accuracy_control("calib") == AccuracyControl(
        max_miou_drop=0.5, val_data="calib", val_images=7, min_agreement=98
    )
    # no budget: no validation images are named (the fallback does not run)
    assert make_config({}, {}).accuracy_control("calib").val_data is None


def test_pipeline_config_keeps_its_calibration_message(tmp_path: Path) -> None:
    cfg_file = tmp_path / "p.toml"
    cfg_file.write_text('[calibration]\nproducer = "onnxruntime"\nmethod = "entropy"\n')
    with pytest.raises(UsageError, match=r"^\[calibration\] producer onnxruntime calibrates with max or percentile"):
        make_config(load_config(cfg_file), {})


class _Recorder:
    """A labelled fake of a library call: records what the CLI passed, then stops the command with a UsageError."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        raise UsageError("stopped by the test's fake")


def test_calibrate_and_build_openvino_build_the_same_accuracy_group(monkeypatch, tmp_path: Path) -> None:
    import refinenet_deploy.operations.build_openvino as build_openvino
    import refinenet_deploy.operations.calibrate as calibrate

    cal, ov = _Recorder(), _Recorder()
    monkeypatch.setattr(calibrate, "calibrate_onnx", cal)
    monkeypatch.setattr(build_openvino, "convert_openvino", ov)
    common = ["--max-miou-drop", "0.5", "--val-data", str(tmp_path), "--val-images", "9", "--min-agreement", "95"]
    common += ["--threads", "2", "--num-images", "12", "--seed", "4"]
    model, data = str(tmp_path / "m.onnx"), str(tmp_path)
    r1 = CliRunner().invoke(app, ["calibrate", model, "--data", data, "-o", str(tmp_path / "q.onnx"), *common])
    r2 = CliRunner().invoke(
        app, ["build", "openvino", model, "--int8", "--data", data, "-o", str(tmp_path / "m.xml"), *common]
    )
    assert r1.exit_code == 2 and r2.exit_code == 2, (r1.output, r2.output)
    (cal_args, _), (_, ov_kwargs) = cal.calls[0], ov.calls[0]
    want = AccuracyControl(max_miou_drop=0.5, val_data=tmp_path, val_images=9, min_agreement=0.95, threads=2)
    assert cal_args[4] == want and ov_kwargs["accuracy"] == want
    assert cal_args[3] == CalibrationOptions(num_images=12, seed=4)
    assert ov_kwargs["calibration"] == CalibrationOptions(num_images=12, seed=4)


def test_cli_option_groups_refuse_before_any_work(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["calibrate", str(tmp_path / "m.onnx"), "--data", str(tmp_path), "-o", str(tmp_path / "q.onnx")]
        + ["--producer", "onnxruntime", "--method", "entropy"],
    )
    assert res.exit_code == 2 and "use --producer modelopt for --method entropy" in res.output
