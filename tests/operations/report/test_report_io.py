"""report's inputs and outputs: sidecars skipped with a note, unreadable inputs refused (exit 5) naming the file
and the field, outputs checked before any work (exit 2, nothing left behind), written atomically and announced.

The bench/parity documents are FAKE (tests/operations/report/docs.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from refinenet_deploy.cli import app
from refinenet_deploy.errors import DataError, UsageError
from refinenet_deploy.operations.report import known_schema_versions, write_report

from .docs import bench_doc, parity_doc, write_docs


def _run(*args: str):  # noqa: ANN202
    return CliRunner().invoke(app, ["report", *args])


@pytest.fixture
def good(tmp_path: Path) -> list[Path]:
    return write_docs(
        tmp_path / "in",
        bench_doc("rf_lw_mbv2", "torch", 100.0),
        bench_doc("rf_lw_mbv2", "onnxruntime", 50.0),
        parity_doc("/runs/rf_lw_mbv2_512.onnx"),
    )


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_sidecars_are_skipped_with_a_note_naming_them(tmp_path: Path, good: list[Path]) -> None:
    named = tmp_path / "in" / "model.meta.json"
    named.write_text(json.dumps({"format": "refinenet-deploy/onnx", "schema_version": 2, "precision": "fp32"}))
    shaped = tmp_path / "in" / "sidecar-copy.json"  # a sidecar under another name: known by its shape
    shaped.write_text(json.dumps({"schema_version": 2, "artifact": {"file": "m.onnx", "sha256": "0" * 64}}))
    res = _run(*map(str, [*good, named, shaped]), "-o", str(tmp_path / "r.md"))
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if line.startswith("note: skipped")]
    assert len(notes) == 2 and str(named) in notes[0] and str(shaped) in notes[1]


def test_every_known_non_result_file_is_skipped_with_a_note(tmp_path: Path, good: list[Path]) -> None:
    """Issue 19 item 13: ``report out/*`` over what rfdeploy writes beside its results skips each known
    non-result file with a note (a calibration manifest used to exit 5)."""
    folder = tmp_path / "in"
    others = {
        "model.int8.calibration.json": {"root": "/c", "files": [], "count": 0, "resize_policy": "x", "sampling": {}},
        "manifest.json": {"schema": "refinenet-deploy/bundle-manifest", "schema_version": 1, "targets": {}},
        "pipeline.json": {"targets": ["cpu"], "calib_images": 128, "input_size": "128x128"},
        "state.json": {"schema_version": 1, "steps": {}},
        "dataset.json": {"format": "voc", "generator": "refinenet_deploy.synth", "version": 1},
    }
    for name, doc in others.items():
        (folder / name).write_text(json.dumps(doc))
    for name in ("model.onnx", "model.xml", "model.bin", "reference.npz", "report.md", "r_latency.png"):
        (folder / name).write_bytes(b"\x00\x01 not a result")
    extra = sorted(p for p in folder.iterdir() if p not in good)
    res = _run(*map(str, [*good, *extra]), "-o", str(tmp_path / "r.md"))
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if line.startswith("note: skipped")]
    assert len(notes) == len(extra)
    for path in extra:
        assert any(str(path) in n for n in notes), path
    assert any("calibration set manifest" in n for n in notes)


def test_only_sidecars_is_refused_naming_them(tmp_path: Path) -> None:
    side = tmp_path / "m.meta.json"
    side.write_text("{}")
    with pytest.raises(DataError, match=rf"no bench or parity result among the inputs: {side}") as info:
        write_report([side], tmp_path / "r.md")
    assert info.value.exit_code == 5 and not (tmp_path / "r.md").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected a JSON object, found list"),
        ('"hello"', "expected a JSON object, found str"),
        ("42", "expected a JSON object, found int"),
        ("{not json", "not valid JSON (line 1"),
        ("", "not valid JSON"),
        ('{"schema": "something-else", "schema_version": 1}', "not a bench or parity result (schema 'something-else'"),
        ('{"hello": 1}', "not a bench or parity result (no 'schema' field"),
    ],
)
def test_unreadable_inputs_exit_5_naming_the_file(tmp_path: Path, good: list[Path], text: str, message: str) -> None:
    bad = tmp_path / "in" / "bad.json"
    bad.write_text(text)
    out = tmp_path / "out" / "r.md"
    res = _run(*map(str, [*good, bad]), "-o", str(out))
    assert res.exit_code == 5, res.output
    line = res.stderr.strip().splitlines()[0]
    assert line.startswith("error:") and str(bad) in line and message in line
    assert "Traceback" not in res.output + res.stderr
    assert not (tmp_path / "out").exists()  # refused before writing anything


def _broken(field: str) -> dict:
    doc = bench_doc("rf_lw_mbv2", "onnxruntime", 50.0)
    if field == "compute_only.p50_ms":
        del doc["compute_only"]["p50_ms"]
    elif field == "compute_only.p99_ms":
        doc["compute_only"]["p99_ms"] = "fast"
    elif field == "input_size":
        doc["input_size"] = [512]
    elif field == "device_only":
        doc["device_only"] = [1, 2]
    else:
        del doc[field]
    return doc


@pytest.mark.parametrize(
    "field",
    [
        "artifact",
        "runtime",
        "device",
        "compute_only",
        "compute_only.p50_ms",
        "compute_only.p99_ms",
        "input_size",
        "device_only",
        "schema_version",
    ],
)
def test_bench_with_a_missing_or_wrong_field_names_it(tmp_path: Path, field: str) -> None:
    (path,) = write_docs(tmp_path / "in", _broken(field))
    with pytest.raises(DataError, match=rf"{path}: .*'{field}'") as info:
        write_report([path], tmp_path / "r.md")
    assert info.value.exit_code == 5


def test_parity_without_its_gates_is_refused(tmp_path: Path) -> None:
    doc = parity_doc("/runs/m.onnx")
    del doc["gates"]  # the verdict is recomputed from the numbers and the gates: without them it cannot be
    (path,) = write_docs(tmp_path / "in", doc)
    with pytest.raises(DataError, match="missing required field 'gates'"):
        write_report([path], tmp_path / "r.md")


@pytest.mark.parametrize("schema", ["refinenet-deploy/bench", "refinenet-deploy/parity"])
def test_unknown_schema_version_is_refused_naming_the_known_one(tmp_path: Path, schema: str) -> None:
    doc = bench_doc() if schema.endswith("bench") else parity_doc("/runs/m.onnx")
    doc["schema_version"] = 99
    (path,) = write_docs(tmp_path / "in", doc)
    res = _run(str(path), "-o", str(tmp_path / "r.md"))
    assert res.exit_code == 5
    knows = ", ".join(map(str, known_schema_versions()[schema]))
    assert knows.startswith("1") and "99" not in knows
    assert str(path) in res.stderr and "schema_version 99" in res.stderr and f"it knows {knows})" in res.stderr
    assert not (tmp_path / "r.md").exists()


def test_missing_input_and_folder_input_are_refused_naming_them(tmp_path: Path, good: list[Path]) -> None:
    res = _run(str(tmp_path / "nope.json"), "-o", str(tmp_path / "r.md"))
    assert res.exit_code == 5 and f"{tmp_path / 'nope.json'}: input not found" in res.stderr
    res = _run(str(tmp_path / "in"), "-o", str(tmp_path / "r.md"))
    assert res.exit_code == 5 and f"{tmp_path / 'in'}: a folder" in res.stderr
    assert not (tmp_path / "r.md").exists()


@pytest.mark.parametrize("suffix", [".md", ".html"])
def test_output_onto_a_folder_is_refused_before_any_work(tmp_path: Path, good: list[Path], suffix: str) -> None:
    target = tmp_path / f"r{suffix}"
    target.mkdir()
    res = _run(*map(str, good), "-o", str(target))
    assert res.exit_code == 2 and "is a folder" in res.stderr
    assert _files(tmp_path) == {"in", f"r{suffix}"} and not any(target.iterdir())  # no PNG left (the old bug)


def test_a_chart_path_taken_by_a_folder_is_refused_before_any_work(tmp_path: Path, good: list[Path]) -> None:
    (tmp_path / "r_latency.png").mkdir()
    res = _run(*map(str, good), "-o", str(tmp_path / "r.md"))
    assert res.exit_code == 2 and "r_latency.png" in res.stderr
    assert not (tmp_path / "r.md").exists() and not (tmp_path / "r_accuracy_vs_latency.png").exists()


def test_output_equal_to_an_input_is_refused_and_the_input_kept(tmp_path: Path, good: list[Path]) -> None:
    before = good[0].read_bytes()
    res = _run(*map(str, good), "-o", str(good[0]))
    assert res.exit_code == 2  # suffix .json: refused as a report name
    md = tmp_path / "in" / "input.md"
    md.write_text(json.dumps(bench_doc()))  # a bench JSON saved under a .md name, given as input and output
    res = _run(*map(str, [*good, md]), "-o", str(md))
    assert res.exit_code == 2 and "would overwrite the input" in res.stderr
    assert good[0].read_bytes() == before and json.loads(md.read_text())["schema"] == "refinenet-deploy/bench"


def test_bad_suffix_and_no_inputs(tmp_path: Path, good: list[Path]) -> None:
    with pytest.raises(UsageError, match=".md or .html"):
        write_report(good, tmp_path / "r.pdf")
    with pytest.raises(UsageError, match="no input JSON"):
        write_report([], tmp_path / "r.md")
    assert _files(tmp_path) == {"in"}


def test_missing_output_folders_are_created_and_every_file_announced(tmp_path: Path, good: list[Path]) -> None:
    out = tmp_path / "new" / "deeper" / "r.md"
    res = _run(*map(str, good), "-o", str(out))
    assert res.exit_code == 0, res.stderr
    wrote = [line.removeprefix("wrote ") for line in res.stderr.splitlines() if line.startswith("wrote ")]
    on_disk = sorted(str(p) for p in out.parent.iterdir())
    assert sorted(wrote) == on_disk  # every file announced, nothing else written (no temp file left)
    assert str(out) in wrote
    assert len(wrote) == (3 if _has_matplotlib() else 1)


def test_failed_inputs_leave_no_created_folder(tmp_path: Path, good: list[Path]) -> None:
    bad = tmp_path / "in" / "bad.json"
    bad.write_text("[]")
    res = _run(*map(str, [*good, bad]), "-o", str(tmp_path / "new" / "r.html"))
    assert res.exit_code == 5 and not (tmp_path / "new").exists()


def test_html_embeds_charts_and_writes_no_png(tmp_path: Path, good: list[Path]) -> None:
    pytest.importorskip("matplotlib")
    result = write_report(good, tmp_path / "r.html")
    assert result.written == [tmp_path / "r.html"] and result.charts == []
    html = result.output.read_text()
    assert html.count("data:image/png;base64,") == 2 and "<th>p50 (ms)</th>" in html


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_without_matplotlib_the_markdown_report_says_charts_were_skipped(
    tmp_path: Path, good: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    res = _run(*map(str, good), "-o", str(tmp_path / "r.md"))
    assert res.exit_code == 0, res.stderr
    md = (tmp_path / "r.md").read_text()
    assert "Charts skipped: matplotlib is not installed" in md and "| onnxruntime |" in md
    assert "note: charts skipped" in res.stderr
    assert _files(tmp_path) == {"in", "r.md"}


@pytest.mark.parametrize("p50", [0, -1.0, 1e300, float("nan"), float("inf")])
def test_p50_outside_any_timing_is_refused(tmp_path: Path, p50: float) -> None:
    doc = bench_doc()
    doc["compute_only"]["p50_ms"] = p50
    (path,) = write_docs(tmp_path / "in", doc)
    with pytest.raises(DataError, match=r"'compute_only.p50_ms'"):
        write_report([path], tmp_path / "r.md")


def test_charts_of_an_earlier_report_do_not_outlive_it(tmp_path: Path, good: list[Path], monkeypatch) -> None:
    """A report rewritten without charts (matplotlib missing: a labelled test double here) removes the PNGs an
    earlier run left beside it, so the folder never shows charts that no longer match the table."""
    from refinenet_deploy.errors import MissingDependencyError
    from refinenet_deploy.operations.report import charts as report_ops

    out = tmp_path / "r.md"
    stale = [tmp_path / "r_latency.png", tmp_path / "r_accuracy_vs_latency.png"]
    for png in stale:
        png.write_bytes(b"an old chart")

    def no_matplotlib(rows):  # noqa: ANN001, ANN202
        raise MissingDependencyError("matplotlib is not installed (test double)")

    monkeypatch.setattr(report_ops, "render_charts", no_matplotlib)
    result = write_report(good, out)
    assert result.charts == [] and result.charts_skipped and out.is_file()
    assert not any(p.exists() for p in stale)


def test_help_names_the_report_extra() -> None:
    """Issue 19 item 14: Rich used to eat '[report]' as a markup tag, leaving "pip install 'refinenet-deploy'"."""
    res = _run("--help")
    assert res.exit_code == 0 and "'refinenet-deploy[report]'" in res.output


def test_several_outputs_build_the_table_once_and_fail_together(tmp_path: Path, good: list[Path], monkeypatch) -> None:
    """A pipeline's report.md and report.html: the inputs read and the rows built once, each format written; when
    the second cannot be written, the first is removed too."""
    from refinenet_deploy.operations.report import write, write_reports

    calls = []
    real = write.build_rows
    monkeypatch.setattr(write, "build_rows", lambda docs: calls.append(1) or real(docs))
    md, html = tmp_path / "out" / "r.md", tmp_path / "out" / "r.html"
    results = write_reports(good, [md, html], preamble="# Bundle")
    assert len(calls) == 1 and [r.output for r in results] == [md, html]
    assert "# Bundle" in md.read_text() and "<table>" in html.read_text() and results[0].rows == results[1].rows

    def fail(report, images, output):  # noqa: ANN001, ANN202
        if output.suffix == ".html":
            raise OSError("disk full")
        return real_write(report, images, output)

    real_write = write._write_one
    monkeypatch.setattr(write, "_write_one", fail)
    md2, html2 = tmp_path / "again" / "r.md", tmp_path / "again" / "r.html"
    with pytest.raises(OSError, match="disk full"):
        write_reports(good, [md2, html2])
    assert not md2.exists() and not any(md2.parent.glob("*.png"))
