"""Issue #14: every command, given an output path equal to one of its inputs (or an input's sidecar, or the .bin
beside an input .xml), exits 2 before any work and leaves every file byte-identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from .corpus import Case, _copy, check_case

PAR = ("parity", "m.safetensors", "m.onnx", "--data", "data", "--num-images", "1")
BENCH = ("bench", "m.onnx", "--warmup", "0", "--iterations", "1", "--no-peak")
CAL = ("calibrate", "m.onnx", "--data", "data", "--producer", "onnxruntime", "--num-images", "2")
EXPORT = ("export", "onnx", "m.safetensors", "--input-size", "48x48", "--no-trt-check")


def _case(id_: str, argv: tuple[str, ...], word: str, setup=None) -> Case:  # noqa: ANN001
    return Case(f"same-{id_}", "output-equals-input", argv, 2, (word.lower(),), setup=setup)


CASES = [
    _case("export-o-checkpoint", (*EXPORT, "-o", "m.safetensors"), "m.safetensors"),
    _case(
        "export-o-onnx-checkpoint",
        ("export", "onnx", "c.onnx.safetensors", "-o", "c.onnx.safetensors"),
        "c.onnx",
        setup=_copy("m.safetensors", "c.onnx.safetensors"),
    ),  # fmt: skip
    _case("export-o-data-image", (*EXPORT, "--data", "imgs", "-o", "imgs/p0.png"), "p0.png"),
    _case("calibrate-o-input", (*CAL, "-o", "m.onnx"), "m.onnx"),
    _case("calibrate-o-input-sidecar", (*CAL, "-o", "m.meta.json"), "m.meta.json"),
    _case(
        "calibrate-o-other-input-name",
        ("calibrate", "m2.onnx", "--data", "data", "-o", "./m2.onnx"),
        "m2.onnx",
        setup=_copy("m.onnx", "m2.onnx"),
    ),  # fmt: skip
    _case("openvino-o-input", ("build", "openvino", "m.onnx", "-o", "m.onnx"), "m.onnx"),
    _case("openvino-o-data", ("build", "openvino", "m.onnx", "--int8", "--data", "data", "-o", "data"), "data"),
    _case(
        "openvino-o-xml-over-input-xml",
        ("build", "openvino", "m.onnx", "--int8", "--data", "v.xml", "-o", "v.xml"),
        "v.xml",
    ),  # fmt: skip
    _case("trt-o-input", ("build", "trt", "m.onnx", "-o", "m.onnx"), "m.onnx"),
    _case("trt-layer-report-input", ("build", "trt", "m.onnx", "--layer-report", "m.onnx", "-o", "o.engine"), "m.onnx"),
    _case(
        "trt-layer-report-sidecar",
        ("build", "trt", "m.onnx", "--layer-report", "m.meta.json", "-o", "o.engine"),
        "m.meta.json",
    ),  # fmt: skip
    _case(
        "trt-timing-cache-is-model", ("build", "trt", "m.onnx", "--timing-cache", "m.onnx", "-o", "o.engine"), "m.onnx"
    ),  # fmt: skip
    _case("parity-json-model", (*PAR, "--json", "m.onnx"), "m.onnx"),
    _case("parity-json-checkpoint", (*PAR, "--json", "m.safetensors"), "m.safetensors"),
    _case("parity-json-sidecar", (*PAR, "--json", "m.meta.json"), "m.meta.json"),
    _case("parity-markdown-model", (*PAR, "--markdown", "m.onnx"), "m.onnx"),
    _case("parity-markdown-dataset-json", (*PAR, "--markdown", "data/dataset.json"), "dataset.json"),
    _case("parity-save-worst-data", (*PAR, "--save-worst", "1", "data"), "data"),
    _case("parity-save-worst-image-folder", (*PAR, "--save-worst", "1", "data/JPEGImages"), "jpegimages"),
    _case(
        "parity-json-bin-beside-xml",
        ("parity", "m.safetensors", "v.xml", "--data", "data", "--num-images", "1", "--json", "v.bin"),
        "v.bin",
    ),  # fmt: skip
    _case("parity-json-equals-markdown", (*PAR, "--json", "same.out", "--markdown", "same.out"), "same.out"),
    _case("bench-json-model", (*BENCH, "--json", "m.onnx"), "m.onnx"),
    _case("bench-json-sidecar", (*BENCH, "--json", "m.meta.json"), "m.meta.json"),
    _case(
        "bench-json-bin-beside-xml",
        ("bench", "v.xml", "--warmup", "0", "--iterations", "1", "--no-peak", "--json", "v.bin"),
        "v.bin",
    ),  # fmt: skip
    _case("bench-json-e2e-image", (*BENCH, "--end-to-end", "--data", "imgs", "--json", "imgs/p0.png"), "p0.png"),
    _case("report-o-input", ("report", "b.md", "-o", "b.md"), "b.md", setup=_copy("bench.json", "b.md")),
    _case(
        "report-o-second-input",
        ("report", "bench.json", "p.html", "-o", "p.html"),
        "p.html",
        setup=_copy("parity.json", "p.html"),
    ),  # fmt: skip
    _case(
        "report-chart-over-input",
        ("report", "bench.json", "bench_latency.png", "-o", "bench.md"),
        "bench_latency.png",
        setup=_copy("bench.json", "bench_latency.png"),
    ),  # fmt: skip
    _case("synth-into-dataset", ("data", "synth", "data", "--num", "1", "--size", "48x48"), "data"),
    _case("train-o-data", ("train", "data", "--epochs", "1", "-o", "data"), "data"),
    _case(
        "train-o-val", ("train", "data", "--val", "v", "--epochs", "1", "-o", "v"), "v", setup=_copy("data", "v")
    ),  # fmt: skip
    _case("train-o-checkpoint-file", ("train", "data", "--epochs", "1", "-o", "m.safetensors"), "m.safetensors"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_output_equal_to_input_is_refused(case: Case, work: Path) -> None:
    problems = check_case(case, work)
    assert not problems, "\n".join(problems)


def test_a_result_inside_an_input_folder_can_be_written_again(tmp_path: Path) -> None:
    """Inside an input folder, what the dataset readers take (images, labels, split lists, dataset.json) is refused
    as an output; a JSON this tool wrote there before is replaced, so the command can be repeated."""
    from refinenet_deploy.artifacts import probe_output
    from refinenet_deploy.errors import UsageError

    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "p0.png").write_bytes(b"an image")
    (frames / "bench.json").write_text("{}")  # an earlier run's result
    assert probe_output(frames / "bench.json", inputs=[frames]) == frames / "bench.json"
    for name in ("p0.png", "dataset.json"):
        (frames / name).write_text("x")
        with pytest.raises(UsageError, match="would overwrite a file of the input folder"):
            probe_output(frames / name, inputs=[frames])
