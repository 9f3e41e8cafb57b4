"""Pipeline configuration: targets, TOML files and their validation (exit 2 naming the key or value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from refinenet_deploy.errors import DataError, UsageError
from refinenet_deploy.operations.pipeline.config import (
    CPU_TARGETS,
    DEMO_TARGETS,
    TARGETS,
    load_config,
    make_config,
    parse_targets,
)


def test_issue_targets_are_all_known() -> None:
    named = [
        "cpu-onnxruntime-fp32",
        "cpu-onnxruntime-int8",
        "cpu-openvino-fp32",
        "cpu-openvino-fp16",
        "cpu-openvino-int8",
        "rtx-trt-fp16",
        "rtx-trt-int8",
        "gpu-trt-fp16",
        "gpu-trt-int8",
        "jetson-trt-fp16",
        "jetson-trt-int8",
        "jetson-dla-int8",
        "gpu-torch-fp16",
    ]
    assert set(named) == set(TARGETS)
    assert [t.name for t in parse_targets(",".join(named))] == named


def test_groups_expand_without_duplicates() -> None:
    assert tuple(t.name for t in parse_targets("cpu")) == CPU_TARGETS
    assert tuple(t.name for t in parse_targets("demo,cpu-openvino-fp32")) == DEMO_TARGETS
    assert {t.device for t in parse_targets("cpu")} == {"cpu"}


@pytest.mark.parametrize("text", ["gpu-openvino-fp32", "cpu-onnxruntime-fp8", "", " , "])
def test_bad_targets_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_targets(text)
    assert exc.value.exit_code == 2


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "deploy.toml"
    p.write_text(text)
    return p


def test_config_file_round_trip(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(b"x")
    cfg_file = write(
        tmp_path,
        'checkpoint = "m.safetensors"\ntargets = ["cpu-onnxruntime-fp32", "gpu-trt-int8"]\ninput_size = "96x128"\n'
        "[gates]\nmax_miou_drop = 0.5\n[calibration]\nnum_images = 150\n[bench]\niterations = 5\n",
    )
    cfg = make_config(load_config(cfg_file), {"iterations": 7})
    assert cfg.checkpoint == str((tmp_path / "m.safetensors").resolve())
    assert cfg.targets == ("cpu-onnxruntime-fp32", "gpu-trt-int8")
    assert cfg.input_size == (96, 128)
    assert (cfg.max_miou_drop, cfg.calib_images, cfg.iterations) == (0.5, 150, 7)  # the command line wins


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("colour = 3\n", "unknown key 'colour'"),
        ("[gates]\nmax_drop = 1\n", "gates.'max_drop'"),
        ("[extras]\na = 1\n", "unknown table [extras]"),
        ("gates = 3\n", "[gates] must be a table"),
        ("[calibration]\nnum_images = -5\n", "calib_images: -5 is out of range"),
        ("[calibration]\nnum_images = 1.5\n", "expected an integer"),
        ("[gates]\nmin_agreement = 250.0\n", "min_agreement: 250.0 is out of range"),
        ("[gates]\nmax_miou_drop = nan\n", "max_miou_drop: nan is out of range"),
        ("[bench]\niterations = true\n", "expected an integer"),
        ('input_size = "100000x100000"\n', "input_size"),
        ('targets = ["cpu-foo-fp32"]\n', "unknown target"),
        ('[calibration]\nproducer = "magic"\n', "calibration.producer"),
        ('[calibration]\nmethod = "magic"\n', "calibration.method"),
        ('[calibration]\nproducer = "onnxruntime"\nmethod = "entropy"\n', "[calibration] producer onnxruntime"),
        ("[calibration]\nmax_miou_drop = -1\n", "calib_max_miou_drop: -1 is out of range"),
        ("this is = not toml [\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_config(load_config(write(tmp_path, text)), {})
    assert exc.value.exit_code == 2
    assert words in exc.value.message


def test_calibration_method_and_fallback_are_settings(tmp_path: Path) -> None:
    """Issue 19 item 8: [calibration] takes the method and the accuracy-aware fallback's budget, with the images
    it measures on (default: the calibration images); "ort", the older producer name, still reads."""
    (tmp_path / "m.safetensors").write_bytes(b"x")
    (tmp_path / "holdout").mkdir()
    cfg_file = write(
        tmp_path,
        'checkpoint = "m.safetensors"\n[calibration]\nproducer = "ort"\nmethod = "percentile"\n'
        'max_miou_drop = 0.5\nval_data = "holdout"\nval_images = 40\n',
    )
    cfg = make_config(load_config(cfg_file), {})
    assert (cfg.calib_producer, cfg.calib_method) == ("onnxruntime", "percentile")
    assert (cfg.calib_max_miou_drop, cfg.calib_val_images) == (0.5, 40)
    assert cfg.calib_val_data == str((tmp_path / "holdout").resolve())  # relative to the file


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="config file not found") as info:  # a missing input: exit 5
        load_config(tmp_path / "nope.toml")
    assert info.value.exit_code == 5


def test_the_readme_config_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("  ```toml\n", 1)[1].split("  ```\n", 1)[0]
    path = tmp_path / "deploy.toml"
    path.write_text("\n".join(line[2:] for line in block.splitlines()) + "\n")
    cfg = make_config(load_config(path), {})
    assert cfg.checkpoint == str(tmp_path / "rf_lw50_voc.pth.tar")  # relative to the file
    assert cfg.input_size == (512, 512) and cfg.val_images == 500 and cfg.calib_producer == "modelopt"
    assert "gpu-trt-int8" in cfg.targets and set(CPU_TARGETS) <= set(cfg.targets)
    assert (cfg.max_miou_drop, cfg.min_agreement, cfg.warmup, cfg.iterations) == (1.0, 0.97, 10, 100)
