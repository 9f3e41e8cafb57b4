"""Each device step is declared once (issue 18, item 6): the library call the pipeline makes here and the command it
prints for a device come from one ``CallSpec``, so the command carries every setting the call receives (the
pending commands used to drop the parity image count and the OpenVINO INT8 calibration settings). The plans are
inspected without running them; the library functions are replaced by a recorder (a fake) where a call is made."""

from __future__ import annotations

import dataclasses
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
def specs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, CallSpec, Path]]:
    """(config, step id, spec, bundle) of every device step the plans of ``CONFIGS`` declare."""
    root = tmp_path_factory.mktemp("plans")
    out = []
    for label, settings in CONFIGS.items():
        for step in _plan(root / label, settings).values():
            if step.spec is not None:
                out.append((label, step.id, step.spec, root / label / "bundle"))
    return out


def _recorded_call(spec: CallSpec) -> tuple[tuple[Any, ...], dict[str, Any]]:
    seen: dict[str, Any] = {}

    def recorder(*args: Any, **kwargs: Any) -> None:  # a fake library function: records what it receives
        seen.update(args=args, kwargs=kwargs)

    replace(spec, function=recorder).call()
    return seen["args"], seen["kwargs"]


def test_every_keyword_the_library_receives_is_in_the_command(specs) -> None:  # noqa: ANN001
    kinds = {step_id.split(":")[0] for _, step_id, _, _ in specs}
    assert kinds >= {"build", "parity", "bench", "calibrate", "predict"}, kinds
    for label, step_id, spec, _ in specs:
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
    for label, step_id, spec, _ in specs:
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


class _Called(Exception):
    """Raised by the fake library function once it has recorded its call: the command stops there."""


LIBRARY = {  # where each command looks its library function up
    ("bench",): ("refinenet_deploy.cli.bench", "benchmark"),
    ("parity",): ("refinenet_deploy.operations.parity.compare", "validate_parity"),  # compare_artifacts calls it
    ("build", "trt"): ("refinenet_deploy.operations.build_trt", "build_engine"),
    ("build", "openvino"): ("refinenet_deploy.operations.build_openvino", "convert_openvino"),
    ("calibrate",): ("refinenet_deploy.operations.calibrate", "calibrate_onnx"),
}


def _same(key: str, ours: Any, theirs: Any, bundle: Path) -> bool:
    if isinstance(ours, Path) or isinstance(theirs, Path):
        return (bundle / Path(ours)).resolve() == (bundle / Path(theirs)).resolve()
    if key == "min_agreement" and ours is not None and theirs is not None:  # 0-1 or a percentage, both accepted
        return abs((ours / 100 if ours > 1 else ours) - (theirs / 100 if theirs > 1 else theirs)) < 1e-12
    return ours == theirs or str(ours) == str(theirs)


def _option_groups_as_keywords(spec: CallSpec, args: tuple, kwargs: dict) -> tuple[tuple, dict, dict]:
    """The CLI hands a library function its option groups (``CalibrationOptions``, ``AccuracyControl``,
    ``ParityOptions``) as objects, after the paths or by keyword, where the pipeline gives the same settings as
    keywords: both sides go through the groups' constructors (which resolve defaults such as the producer's
    method) and every field is compared."""
    n = len(spec.args)
    theirs = {k: v for k, v in kwargs.items() if not (dataclasses.is_dataclass(v) and k not in spec.kwargs)}
    groups = [*args[n:], *(v for k, v in kwargs.items() if k not in theirs)]
    assert all(dataclasses.is_dataclass(g) for g in groups), groups
    ours = dict(spec.kwargs)
    for group in groups:
        names = [f.name for f in dataclasses.fields(group)]
        built = type(group)(**{k: ours.pop(k) for k in names if k in ours})
        ours.update({k: getattr(built, k) for k in names})
        theirs.update({k: getattr(group, k) for k in names})
    return args[:n], ours, theirs


def test_the_device_command_makes_the_same_library_call(specs, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Run each printed command through the real CLI, in the bundle folder as the summary says, with its library
    function replaced by a recorder (a fake): it receives what the pipeline's own call receives."""
    import importlib

    from typer.testing import CliRunner

    assert {spec.cli for _, _, spec, _ in specs} == set(LIBRARY)
    shapes: dict[Any, tuple[str, str, CallSpec, Path]] = {}  # one of each command and set of settings given
    for entry in specs:
        spec = entry[2]
        shapes.setdefault((spec.cli, tuple((k, v is None) for k, v in spec.kwargs.items())), entry)
    for label, step_id, spec, bundle in shapes.values():
        for path in spec.args:  # the inputs the command names, as placeholders
            if isinstance(path, Path) and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir() if path.name in ("val", "calib") else path.write_bytes(b"placeholder")
        module_name, attr = LIBRARY[spec.cli]
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def recorder(*args: Any, calls: list = calls, **kwargs: Any) -> None:
            calls.append((args, kwargs))
            raise _Called

        monkeypatch.setattr(importlib.import_module(module_name), attr, recorder)
        monkeypatch.chdir(bundle)
        argv = shlex.split(spec.command(lambda p, bundle=bundle: p.relative_to(bundle).as_posix()))
        result = CliRunner().invoke(app, argv[1:])
        assert calls, f"{label} {step_id}: exit {result.exit_code}: {result.output}"
        (args, kwargs) = calls[0]
        args, expected, kwargs = _option_groups_as_keywords(spec, args, kwargs)
        for ours, theirs in zip(spec.args, args, strict=True):
            assert _same("", ours, theirs, bundle), (label, step_id, ours, theirs)
        for key, value in expected.items():
            assert key in kwargs and _same(key, value, kwargs[key], bundle), (label, step_id, key, value, kwargs)
