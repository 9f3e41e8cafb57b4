"""Each device step is declared once (issue 18, item 6): the library call the pipeline makes here and the command it
prints for a device come from one ``CallSpec``, so the command carries every setting the call receives (the
pending commands used to drop the parity image count and the OpenVINO INT8 calibration settings). The plans are
inspected without running them; the library functions are replaced by a recorder (a fake) where a call is made."""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer

from refinenet_deploy.cli import app
from refinenet_deploy.operations.pipeline import Pipeline, make_config

if TYPE_CHECKING:  # imported in the tests that use it: the first test runs on the code before the specs too
    from refinenet_deploy.operations.pipeline.spec import CallSpec

GATED = {
    "input_size": "64x64",
    "max_miou_drop": 0.7,
    "min_agreement": 98,
    "val_images": 10,
    "calib_images": 32,
    "calib_max_miou_drop": 0.5,
    "calib_val_images": 12,
    "warmup": 2,
    "iterations": 5,
}
CONFIGS = {
    "defaults": {"targets": "all", "input_size": "64x64"},
    "gated": {**GATED, "targets": "all"},
    "device-int8": {**GATED, "targets": "gpu-trt-int8,jetson-dla-int8"},  # predicted on this CPU
    "ort-producer": {**GATED, "targets": "all", "calib_producer": "onnxruntime", "calib_method": "percentile"},
}


def _plan(tmp_path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    return {s.id: s for s in Pipeline(make_config({}, settings), tmp_path / "bundle").plan()}


def _contains(argv: list[str], words: list[str]) -> bool:
    return any(argv[i : i + len(words)] == words for i in range(len(argv) - len(words) + 1))


def test_pending_commands_carry_the_configs_settings(tmp_path: Path) -> None:
    """What the device runs is judged and built with the bundle's settings, as the call here is."""
    steps = _plan(tmp_path, {**GATED, "targets": "gpu-trt-int8,cpu-openvino-int8,gpu-torch-fp16"})
    for name in ("gpu-trt-int8", "gpu-torch-fp16", "cpu-openvino-int8"):
        (parity,) = steps[f"parity:{name}"].commands
        assert "--num-images 10" in parity, parity
        assert "--max-miou-drop 0.7 --min-agreement 98" in parity, parity
    assert steps["build:cpu-openvino-int8"].commands, "the OpenVINO build has no device command"
    (build,) = steps["build:cpu-openvino-int8"].commands
    for words in ("--int8", "--data data/calib", "--num-images 32", "--max-miou-drop 0.5", "--val-images 12"):
        assert words in build, (words, build)
    assert "--min-agreement 0.98" in build  # the self-check's gate, as a fraction, as the call receives it
    (bench,) = steps["bench:gpu-torch-fp16"].commands
    assert "--precision fp16 --cuda-graph --warmup 2 --iterations 5" in bench


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, CallSpec]]:
    """(config, step id, spec) of every device step the plans of ``CONFIGS`` declare."""
    root = tmp_path_factory.mktemp("plans")
    out = []
    for label, settings in CONFIGS.items():
        for step in _plan(root / label, settings).values():
            if step.spec is not None:
                out.append((label, step.id, step.spec))
    return out


def _recorded_call(spec: CallSpec) -> tuple[tuple[Any, ...], dict[str, Any]]:
    seen: dict[str, Any] = {}

    def recorder(*args: Any, **kwargs: Any) -> None:  # a fake library function: records what it receives
        seen.update(args=args, kwargs=kwargs)

    replace(spec, function=recorder).call()
    return seen["args"], seen["kwargs"]


def test_every_keyword_the_library_receives_is_in_the_command(specs) -> None:  # noqa: ANN001
    kinds = {step_id.split(":")[0] for _, step_id, _ in specs}
    assert kinds >= {"build", "parity", "bench", "calibrate", "predict"}, kinds
    for label, step_id, spec in specs:
        args, kwargs = _recorded_call(spec)
        argv = shlex.split(spec.command())
        assert argv[: 1 + len(spec.cli)] == ["rfdeploy", *spec.cli]
        for value, flag in zip(args, spec.arg_flags, strict=True):
            assert _contains(argv, flag.render(value, str)), (label, step_id, value, argv)
        for key, value in kwargs.items():
            if key in spec.local_reasons:
                assert spec.local_reasons[key], (step_id, key)  # local only, with its reason
                continue
            assert key in spec.flags, f"{label} {step_id}: {key}={value!r} has no rfdeploy option"
            words = spec.flags[key].render(value, lambda v: f"{v:g}" if isinstance(v, float) else _text(v))
            if not words:  # says nothing: the CLI's default must then be what the call receives
                kind = spec.flags[key].kind
                default = value is None or (kind, value) in (("switch", False), ("precision", "fp32"))
                assert default, (step_id, key, value)
            assert _contains(argv, words), (label, step_id, key, words, argv)


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


def _cli_options(root: Any, path: tuple[str, ...]) -> set[str]:
    command = root
    for name in path:
        command = command.commands[name]  # a group's subcommands by name
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}


def test_every_option_in_a_device_command_is_one_the_cli_has(specs) -> None:  # noqa: ANN001
    root = typer.main.get_command(app)  # the click command tree rfdeploy runs
    for label, step_id, spec in specs:
        known = _cli_options(root, spec.cli)
        for word in shlex.split(spec.command())[1 + len(spec.cli) :]:
            if word.startswith("-") and not word.lstrip("-").replace(".", "").isdigit():
                assert word in known, f"{label} {step_id}: rfdeploy {' '.join(spec.cli)} has no option {word}"


def test_a_keyword_without_an_option_is_refused_when_declared() -> None:
    from refinenet_deploy.operations.pipeline.spec import CallSpec, Flag, render_flags

    with pytest.raises(ValueError, match="no rfdeploy option"):
        CallSpec(print, ("bench",), (), (), {"compile_mode": "max-autotune"}, {})
    with pytest.raises(ValueError, match="without a reason"):
        CallSpec(print, ("bench",), (), (), {}, {}, local={"command": "x"})
    assert render_flags({"graph": Flag("--cuda-graph", "switch")}, {"graph": False}) == []
    assert Flag("--gpu-fallback", "toggle").render(False, str) == ["--no-gpu-fallback"]
