"""One surface across commands (issue 19 items 12, 14, 16): names and defaults, where output goes, width."""

from __future__ import annotations

import os
from typing import Any

import pytest
import typer

from refinenet_deploy.calibration.dataset import DEFAULT_CALIBRATION_IMAGES
from refinenet_deploy.cli import app
from refinenet_deploy.cli.options import parse_size
from refinenet_deploy.operations.pipeline.config import DEFAULT_CALIB_IMAGES, PipelineConfig


def _commands() -> dict[str, Any]:
    """Every leaf command (Click objects, as Typer builds them) by its full name ("build trt")."""
    found: dict[str, Any] = {}

    def walk(cmd: Any, prefix: str) -> None:  # noqa: ANN401
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{prefix} {name}".strip())
        else:
            found[prefix] = cmd

    walk(typer.main.get_command(app), "")
    return found


def _option(command: str, name: str) -> Any:  # noqa: ANN401
    return next(p for p in _commands()[command].params if p.name == name and getattr(p, "opts", None))


def test_one_calibration_size_default_everywhere() -> None:
    assert DEFAULT_CALIBRATION_IMAGES == DEFAULT_CALIB_IMAGES == PipelineConfig().calib_images == 128
    for command, name in (("calibrate", "num_images"), ("build openvino", "num_images"), ("pipeline", "calib_images")):
        help_text = _option(command, name).help or ""
        assert "128" in help_text and "past the knee" not in help_text, (command, help_text)
        assert "300" not in help_text


def test_calibration_options_take_both_spellings() -> None:
    assert {"--calib-images", "--num-images"} <= set(_option("pipeline", "calib_images").opts)
    assert {"--calib-images", "--num-images"} <= set(_option("calibrate", "num_images").opts)
    assert {"--data", "--calib-data"} <= set(_option("calibrate", "data").opts)


def test_threads_help_names_every_runtime_it_sets() -> None:
    text = _option("bench", "threads").help or ""
    assert "PyTorch" in text and "ONNX Runtime" in text and "OpenVINO" in text


@pytest.mark.parametrize("text", ["128,128", "128x128", "128", " 128 , 128 "])
def test_input_size_spellings(text: str) -> None:
    assert parse_size(text.replace(" ", "")) == (128, 128)


# --------------------------------------------------------------------------------------------- item 12
def test_every_command_has_json() -> None:
    missing = [
        name for name, cmd in _commands().items() if not any("--json" in getattr(p, "opts", ()) for p in cmd.params)
    ]
    assert not missing, f"commands without --json: {missing}"


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["models", "-q"], ["-q", "models"]),
        (
            ["build", "trt", "m.onnx", "--debug", "-o", "m.engine"],
            ["--debug", "build", "trt", "m.onnx", "-o", "m.engine"],
        ),
        (["doctor", "--json"], ["doctor", "--json", "-"]),
        (["parity", "a", "b", "--json", "--data", "d"], ["parity", "a", "b", "--json", "-", "--data", "d"]),
        (["parity", "a", "b", "--json", "p.json"], ["parity", "a", "b", "--json", "p.json"]),
        (["bench", "m.onnx", "--json", "-"], ["bench", "m.onnx", "--json", "-"]),
        (["models", "--", "-q"], ["models", "--", "-q"]),
    ],
)
def test_the_shared_command_line_rules(argv: list[str], want: list[str]) -> None:
    from refinenet_deploy.cli.app import normalize_argv

    assert normalize_argv(argv) == want


def _invoke(*argv: str):  # noqa: ANN202
    from typer.testing import CliRunner

    return CliRunner().invoke(app, list(argv))


def test_json_alone_is_stdout_json_with_a_path_a_file_and_wrote_goes_to_stderr(tmp_path) -> None:  # noqa: ANN001
    import json

    for argv in (["models", "--json"], ["doctor", "--json", "-q"], ["-q", "models", "--json", "-"]):
        res = _invoke(*argv)
        assert res.exit_code == 0, (argv, res.output)
        json.loads(res.stdout)  # nothing but the JSON on stdout
    target = tmp_path / "models.json"
    res = _invoke("models", "--json", str(target), "--debug")
    assert res.exit_code == 0 and json.loads(target.read_text())
    assert "wrote" not in res.stdout and f"wrote {target}" in res.stderr
    scenes = tmp_path / "scenes"
    res = _invoke("data", "synth", str(scenes), "--num", "2", "--size", "32x32", "-q", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["num"] == 2
    assert "wrote" not in res.stdout and "wrote 2 scenes" in res.stderr


def test_report_announces_files_on_stderr_and_takes_json(tmp_path) -> None:  # noqa: ANN001
    import json

    from tests.operations.report.docs import bench_doc, parity_doc, write_docs

    docs = write_docs(tmp_path / "in", bench_doc("rf_lw_mbv2", "torch", 100.0), parity_doc("/runs/m.onnx"))
    out = tmp_path / "r.md"
    res = _invoke("report", *map(str, docs), "-o", str(out), "-q")
    assert res.exit_code == 0, res.output
    assert "wrote" not in res.stdout and f"wrote {out}" in res.stderr
    res = _invoke("report", *map(str, docs), "-o", str(out), "--json")
    assert res.exit_code == 0 and len(json.loads(res.stdout)["rows"]) == 2


# --------------------------------------------------------------------------------------------- item 11
def test_text_shows_percent_with_a_sign_json_keeps_fractions(tmp_path) -> None:  # noqa: ANN001
    """Issue 19 item 11: one convention. The parity Markdown, the report's table and the pipeline summary print
    agreement and mIoU as percentages with '%'; the JSON they read holds fractions."""
    from types import SimpleNamespace

    from tests.operations.report.docs import bench_doc, parity_doc, write_docs

    from refinenet_deploy.operations.pipeline.config import TARGETS
    from refinenet_deploy.operations.pipeline.summary import summary_rows
    from refinenet_deploy.operations.report import parity_markdown, write_report
    from refinenet_deploy.results import ParityResult

    doc = parity_doc(
        "/runs/m.onnx",
        reference_miou=0.8795,
        backend_miou=0.879,
        agreement_miou=0.99,
        boundary_agreement=0.98,
        logit_max_abs_error=None,
        logit_mean_abs_error=None,
        tta={"scales": [1.0], "flip": False},
        per_class=[],
        policy={"static_size": None, "boundary_width_px": 3},
    )
    assert 0 <= doc["pixel_agreement"] <= 1  # JSON: a fraction
    md = parity_markdown(doc)
    assert "| PyTorch mIoU | 87.95 % |" in md and "| pixel agreement | 99.910 % |" in md
    paths = write_docs(tmp_path / "in", bench_doc("rf_lw_mbv2", "onnxruntime", 10.0, artifact="/runs/m.onnx"), doc)
    report = write_report(paths, tmp_path / "r.md").output.read_text()
    assert "99.910 %" in report
    outcome = SimpleNamespace(
        target=TARGETS["cpu-onnxruntime-fp32"],
        status="done",
        parity=ParityResult.from_dict(doc),
        bench=None,
        predicted=None,
        reason=None,
        commands=[],
    )
    (row,) = summary_rows([outcome], [])
    assert row["agreement"] == "99.91 %"


# --------------------------------------------------------------------------------------------- item 16
WIDTH = 80
HELP_PAGES = [name for name in _commands()] + [""]


def _fits(text: str, what: str) -> None:
    """Every line within 80 columns and no word cut (Rich's '…', or a number broken as in '42949672 95')."""
    import re

    for line in text.splitlines():
        if line.lstrip().startswith(("rfdeploy ", "trtexec ")):
            continue  # a command to copy is one line on purpose (the terminal soft-wraps it; nothing is cut)
        assert len(line) <= WIDTH, f"{what}: {len(line)} columns: {line!r}"
        assert "…" not in line, f"{what}: a cut word: {line!r}"
        if line[:1] in "┏┃┡│└┌├╭┗":  # a table line ends with its border, else the terminal cut it off
            assert line.rstrip()[-1:] in "┓┃┩│┘┐┤╮┛", f"{what}: a table wider than {WIDTH} columns: {line!r}"
        assert not re.search(r"\d{6,} \d", line), f"{what}: a number split across a space: {line!r}"


@pytest.mark.parametrize("command", HELP_PAGES)
def test_help_fits_80_columns(command: str, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    res = _invoke(*command.split(), "--help")
    assert res.exit_code == 0, res.output
    _fits(res.stdout, f"rfdeploy {command} --help")
    assert len(res.stdout.splitlines()) <= 80, f"rfdeploy {command} --help runs to {len(res.stdout.splitlines())}"


def _record(monkeypatch, module) -> Any:  # noqa: ANN001, ANN401
    from rich.console import Console

    console = Console(width=WIDTH, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setattr(module, "out", console)
    return console


def test_every_table_fits_80_columns(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    from types import SimpleNamespace

    from tests.operations.report.docs import bench_doc, parity_doc

    from refinenet_deploy.cli import bench as bench_cli
    from refinenet_deploy.cli import export as export_cli
    from refinenet_deploy.cli import parity as parity_cli
    from refinenet_deploy.cli import pipeline as pipeline_cli
    from refinenet_deploy.operations.pipeline.config import TARGETS

    for argv in (["models"], ["doctor"], ["inspect", "demo/rf_lw_mbv2_synth.safetensors"]):
        res = _invoke(*argv)
        assert res.exit_code == 0, res.output
        _fits(res.stdout, " ".join(argv))
    # the export table (issue: "ONNX Runtime vs PyTor…", "y…")
    console = _record(monkeypatch, export_cli)
    case = SimpleNamespace(
        name="random-128x128-b1",
        size=(128, 128),
        diff=SimpleNamespace(max_abs_error=9.06e-6, max_rel_error=1.07e-6, argmax_agreement=1.0, within_tolerance=True),
    )
    meta = {
        "arch": "rf_lw_mbv2",
        "num_classes": 6,
        "precision": "fp32",
        "head": "logits",
        "opset": 17,
        "simplifier": "onnxsim",
        "verification": {},
    }
    export_cli._print_export(
        SimpleNamespace(path=tmp_path / "model.onnx", metadata=meta, cases=[case], simplification=[])
    )
    text = console.export_text()
    _fits(text, "export table")
    assert "random-128x128-b1" in text and "yes" in text  # whole, not folded or cut ("y…" in the issue)
    # parity
    console = _record(monkeypatch, parity_cli)
    doc = parity_doc(
        "/runs/a/long/path/rf_lw_mbv2_512x512.int8.onnx",
        reference_miou=0.8795,
        backend_miou=0.879,
        agreement_miou=0.99,
        boundary_agreement=0.98,
        logit_max_abs_error=None,
        per_class=[
            {
                "class": "background",
                "reference_iou": 0.9,
                "backend_iou": 0.89,
                "drop_points": 1.0,
                "agreement_iou": 0.99,
            }
        ],
    )
    parity_cli._print_parity(doc)
    _fits(console.export_text(), "parity table")
    # bench
    console = _record(monkeypatch, bench_cli)
    bench = bench_doc("rf_lw_mbv2", "openvino", 12.3, precision="int8", artifact="/runs/model.int8.xml")
    bench.update(label="int8 (float parts fp32)", peak_gmacs=None, achieved_gmacs=None, fraction_of_peak=None)
    bench.update(peak_rss_mib=612.0, peak_probe={"reason": "not measured: --no-peak"})
    bench["protocol"] = {"timing": "3 warm-up runs, then 20 timed runs (perf_counter_ns)"}
    bench["compute_only"].update(p90_ms=12.9, max_ms=14.1, std_ms=0.4)
    from refinenet_deploy.results import BenchResult, ParityResult

    bench_cli.render(BenchResult.from_dict(bench), "model.int8.xml")
    _fits(console.export_text(), "bench table")
    # the pipeline summary (issue: "agreem…")
    console = _record(monkeypatch, pipeline_cli)
    outcomes = [
        SimpleNamespace(
            target=TARGETS[name],
            status=status,
            parity=ParityResult.from_dict(parity_doc("/m.onnx")),
            bench=None,
            predicted={"miou_drop_points": 0.184, "over_gate": ["x"]},
            reason="needs a Jetson",
            commands=["rfdeploy pipeline --resume ."],
        )
        for name, status in (
            ("cpu-onnxruntime-int8", "done"),
            ("jetson-trt-int8", "pending on device"),
            ("cpu-openvino-int8", "gate not evaluated"),
        )
    ]
    pipeline_cli._print_summary(
        SimpleNamespace(
            outcomes=outcomes,
            baseline=None,
            bundle=tmp_path / "rfdeploy-bundle",
            ran=[],
            skipped=[],
            imported=[],
            report=[],
            manifest=tmp_path / "manifest.json",
            gpu_baselines={},
        )
    )
    _fits(console.export_text(), "pipeline table")
