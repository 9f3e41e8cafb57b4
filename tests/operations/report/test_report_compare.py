"""report compares like with like: speed-ups and mIoU drops only inside one model / input size / batch / device
group, labels that say what ran, units in every timing header, charts that stay readable with 30+ rows.

The documents are FAKE (tests/operations/report/docs.py): hand-written numbers chosen so that speed-ups are exact."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from refinenet_deploy.operations.report import (
    HEADER,
    ReportRow,
    build_rows,
    chart_label,
    device_identity,
    normalize_precision,
    read_documents,
    write_report,
)

from .docs import GPU_HOST, JETSON, XEON, bench_doc, parity_doc, stats, write_docs


def _rows(tmp_path: Path, *docs: dict) -> tuple[list[ReportRow], list[str]]:
    loaded, _ = read_documents(write_docs(tmp_path / "in", *docs))
    return build_rows(loaded)


def _one(rows: list[ReportRow], **match: object) -> ReportRow:
    found = [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def test_speedup_only_against_the_same_model_size_batch_and_device(tmp_path: Path) -> None:
    rows, notes = _rows(
        tmp_path,
        bench_doc("rf_lw_mbv2", "torch", 100.0),
        bench_doc("rf_lw_mbv2", "onnxruntime", 50.0),
        # the bug: rf101 got "0.46x vs PyTorch" from the rf_lw_mbv2 PyTorch row
        bench_doc("rf101", "onnxruntime", 217.0),
        bench_doc("rf_lw_mbv2", "onnxruntime", 12.0, size=(256, 256)),  # other input size
        bench_doc("rf_lw_mbv2", "onnxruntime", 160.0, batch=4, artifact="/runs/b4.onnx"),  # other batch
        bench_doc("rf_lw_mbv2", "onnxruntime", 40.0, classes=19, artifact="/runs/c19.onnx"),  # other classes
        bench_doc("rf_lw_mbv2", "onnxruntime", 30.0, fp=GPU_HOST, artifact="/runs/gpuhost.onnx"),  # other host's CPU
    )
    assert _one(rows, runtime="torch").is_baseline
    assert _one(
        rows,
        runtime="onnxruntime",
        arch="rf_lw_mbv2",
        input_size=(512, 512),
        batch=1,
        num_classes=21,
        device="Intel(R) Xeon(R) Processor (Icelake), 2 cores",
    ).speedup == pytest.approx(2.0)
    others = [r for r in rows if r.runtime != "torch" and r.speedup is None]
    assert len(others) == 5
    for r in others:
        assert r.baseline is None and any(n.startswith("no PyTorch baseline") for n in r.notes)
    assert any("no PyTorch baseline" in n for n in notes)


def test_markdown_marks_rows_without_a_baseline(tmp_path: Path) -> None:
    paths = write_docs(
        tmp_path / "in", bench_doc("rf_lw_mbv2", "torch", 100.0), bench_doc("rf101", "onnxruntime", 217.0)
    )
    result = write_report(paths, tmp_path / "r.md")
    md = result.output.read_text()
    rf101 = next(line for line in md.splitlines() if line.startswith("| rf101"))
    speed = next(i for i, h in enumerate(HEADER) if h.startswith("speed-up"))
    assert rf101.split(" | ")[speed] == "—[1]"  # the speed-up column: no number, a footnote
    assert "[1] no PyTorch baseline" in md
    assert not re.search(r"\d\.\d\dx", rf101)  # the bug printed "0.46x vs PyTorch" on such a row


def test_gpu_baseline_is_strict_fp32_pytorch_and_named_otherwise(tmp_path: Path) -> None:
    gpu = {"device": "gpu", "fp": GPU_HOST}
    rows, notes = _rows(
        tmp_path,
        bench_doc("rf_lw50", "torch", 20.0, **gpu, runtime_config={"tf32": False}),
        bench_doc("rf_lw50", "torch", 10.0, **gpu, runtime_config={"tf32": True}, artifact="/runs/t.safetensors"),
        bench_doc(
            "rf_lw50",
            "torch",
            5.0,
            **gpu,
            precision="fp16",
            torch={"channels_last": True, "compiled": True},
            artifact="/runs/h.safetensors",
        ),
        bench_doc("rf_lw50", "tensorrt", 2.0, **gpu, precision="fp16"),
        # a second group on the same GPU: only a PyTorch fp16 row
        bench_doc("rf_lw101", "torch", 8.0, **gpu, precision="fp16"),
        bench_doc("rf_lw101", "tensorrt", 4.0, **gpu, precision="fp16"),
    )
    trt = _one(rows, runtime="tensorrt", arch="rf_lw50")
    assert trt.speedup == pytest.approx(10.0) and trt.baseline == "PyTorch fp32" and not trt.notes
    assert _one(rows, arch="rf_lw50", precision="tf32").speedup == pytest.approx(2.0)
    fp16 = _one(rows, arch="rf_lw50", runtime="torch", precision="fp16, channels-last, compiled")
    assert fp16.speedup == pytest.approx(4.0)
    other = _one(rows, runtime="tensorrt", arch="rf_lw101")
    assert other.speedup == pytest.approx(2.0) and other.baseline == "PyTorch fp16"
    assert any("speed-up against PyTorch fp16" in n and "no strict fp32" in n for n in other.notes)
    assert trt.device == "NVIDIA H100 80GB HBM3"


def test_gpu_fp32_without_a_recorded_tf32_flag_is_used_and_says_so(tmp_path: Path) -> None:
    rows, _ = _rows(
        tmp_path,
        bench_doc("rf_lw50", "torch", 20.0, device="gpu", fp=GPU_HOST),  # older JSON: no tf32 field
        bench_doc("rf_lw50", "tensorrt", 4.0, device="gpu", fp=GPU_HOST, precision="fp16"),
    )
    trt = _one(rows, runtime="tensorrt")
    assert trt.speedup == pytest.approx(5.0)
    assert any("TF32 not recorded" in n for n in trt.notes)


def test_timing_kinds_compare_only_with_the_same_kind(tmp_path: Path) -> None:
    gpu = {"device": "gpu", "fp": GPU_HOST}
    rows, _ = _rows(
        tmp_path,
        bench_doc("rf_lw50", "torch", 20.0, **gpu, runtime_config={"tf32": False}, device_only=stats(18.0)),
        bench_doc("rf_lw50", "tensorrt", 4.0, **gpu, device_only=stats(3.0), end_to_end=stats(9.0)),
    )
    assert {r.timing for r in rows} == {"compute-only", "device-only", "end-to-end"}
    assert _one(rows, runtime="tensorrt", timing="compute-only").speedup == pytest.approx(5.0)
    assert _one(rows, runtime="tensorrt", timing="device-only").speedup == pytest.approx(6.0)
    e2e = _one(rows, runtime="tensorrt", timing="end-to-end")
    assert e2e.speedup is None and any("no PyTorch baseline" in n for n in e2e.notes)


def test_devices_are_told_apart_and_named_whole(tmp_path: Path) -> None:
    other_xeon = {**XEON, "isa": ["avx2", "fma"]}  # same name, another machine
    rows, _ = _rows(
        tmp_path,
        bench_doc("rf_lw_mbv2", "torch", 100.0),
        bench_doc("rf_lw_mbv2", "onnxruntime", 40.0, fp=other_xeon),
        bench_doc("rf_lw_mbv2", "tensorrt", 30.0, device="gpu", fp=JETSON),
    )
    cpu = [r for r in rows if r.device_kind == "cpu"]
    assert len({r.device for r in cpu}) == 2  # disambiguated, each still with the whole CPU name
    assert all(r.device.startswith("Intel(R) Xeon(R) Processor (Icelake), 2 cores") for r in cpu)
    assert _one(rows, runtime="onnxruntime").speedup is None  # the PyTorch row ran on the other Xeon
    jetson = _one(rows, runtime="tensorrt")
    assert jetson.device == "NVIDIA Jetson Orin Nano Developer Kit (JetPack 6.2) GPU"
    assert "Intel(R) Xeon(R) Processor (Icelake), 2 cores" in chart_label(cpu[0])
    ident_cpu, _ = device_identity(GPU_HOST, "cpu")
    ident_gpu, _ = device_identity(GPU_HOST, "cuda:0")
    assert ident_cpu != ident_gpu  # same host, other device kind


@pytest.mark.parametrize(
    ("fields", "runtime", "label"),
    [
        ({"precision": "int8", "runtime_precision": "f32"}, "openvino", "int8 (float parts fp32)"),
        ({"artifact_precision": "int8", "inference_precision": "bf16"}, "openvino", "int8 (float parts bf16)"),
        ({"precision": "int8"}, "onnxruntime", "int8"),
        ({"precision": "fp32", "runtime_precision": "bf16"}, "openvino", "bf16 (fp32 artifact)"),
        ({"precision": "f32", "runtime_precision": "f32"}, "openvino", "fp32"),  # legacy spelling
        ({"precision": "f16"}, "tensorrt", "fp16"),
        ({"precision": "fp32", "torch": {"precision": "bf16"}, "torch_precision": "bf16"}, "torch", "bf16"),
    ],
)
def test_precision_is_spelled_one_way(tmp_path: Path, fields: dict, runtime: str, label: str) -> None:
    doc = bench_doc("rf_lw_mbv2", runtime, 10.0)
    doc.update(fields)
    rows, _ = _rows(tmp_path, doc)
    assert rows[0].precision == label
    md = write_report(write_docs(tmp_path / "md", doc), tmp_path / "r.md").output.read_text()
    table = md.split("| model |", 1)[1]
    assert not re.search(r"\b(f32|f16|float32|float16)\b", table)


def test_normalize_precision() -> None:
    assert [normalize_precision(v) for v in ("f32", "FP32", "float16", "bfloat16", "u8", None)] == [
        "fp32",
        "fp32",
        "fp16",
        "bf16",
        "int8",
        None,
    ]


def test_parity_joins_with_gates_and_header(tmp_path: Path) -> None:
    ov = "/runs/rf_lw_mbv2_512.int8.xml"
    paths = write_docs(
        tmp_path / "in",
        bench_doc("rf_lw_mbv2", "torch", 100.0),
        bench_doc("rf_lw_mbv2", "onnxruntime", 50.0),
        bench_doc("rf_lw_mbv2", "openvino", 25.0, artifact=ov, precision="int8", runtime_precision="f32"),
        parity_doc("/runs/rf_lw_mbv2_512.onnx"),
        parity_doc(ov, passed=False, runtime="openvino", runtime_precision="f32"),
        # parity of a static 256x256 artifact with the same file name: not this 512x512 row's accuracy
        parity_doc("/other/rf_lw_mbv2_512.onnx", policy={"static_size": [256, 256]}),
    )
    result = write_report(paths, tmp_path / "r.md")
    rows = result.rows
    ort = _one(rows, runtime="onnxruntime", timing="compute-only")
    assert ort.parity == "pass" and ort.miou_drop_points == pytest.approx(0.05)
    ovrow = _one(rows, runtime="openvino")
    assert ovrow.parity == "fail" and ovrow.miou_drop_points == pytest.approx(1.4)
    assert _one(rows, timing=None).input_size == (256, 256)  # unjoined parity: accuracy-only row
    assert _one(rows, runtime="torch").parity is None
    md = result.output.read_text()
    assert "FAIL: mIoU drop 1.400 pt > max 1.000 pt" in md and "| pass |" in md  # recomputed, not copied
    head = md.split("| model |")[0]
    for fact in (
        "rf_lw_mbv2_voc.safetensors (sha256 abababababab)",
        "/data/voc, split val (50 images)",
        "2026-03-01T10:00:00+00:00 to 2026-03-02T09:00:00+00:00",
        "256x256, 512x512",
    ):
        assert fact in head


def test_every_timing_header_has_its_unit() -> None:
    timing = [h for h in HEADER if any(k in h for k in ("p50", "p99", "throughput"))]
    assert len(timing) == 3 and all("(ms)" in h or "(img/s)" in h for h in timing)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_chart_with_36_rows_is_grouped_and_sized_by_rows(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    docs = []
    for arch in ("rf_lw_mbv2", "rf_lw50", "rf101"):
        for size in ((512, 512), (1024, 2048)):
            docs.append(bench_doc(arch, "torch", 100.0, size=size))
            for rt, p50 in (("onnxruntime", 50.0), ("openvino", 40.0)):
                docs.append(bench_doc(arch, rt, p50, size=size))
            docs.append(bench_doc(arch, "torch", 30.0, size=size, device="gpu", fp=GPU_HOST))
            docs.append(bench_doc(arch, "tensorrt", 6.0, size=size, device="gpu", fp=GPU_HOST, precision="fp16"))
            docs.append(bench_doc(arch, "tensorrt", 3.0, size=size, device="gpu", fp=JETSON, precision="int8"))
    big = write_report(write_docs(tmp_path / "big", *docs), tmp_path / "big.md")
    small = write_report(write_docs(tmp_path / "small", *docs[:4]), tmp_path / "small.md")
    assert len(big.rows) == 36
    assert [p.name for p in big.charts] == ["big_latency.png"]  # no parity: no accuracy chart
    w_big, h_big = _png_size(big.charts[0].read_bytes())
    w_small, h_small = _png_size(small.charts[0].read_bytes())
    assert h_big > 4 * h_small  # ~0.3 in per row: the bars keep their height
    assert "](big_latency.png)" in big.output.read_text()
    groups = {r.group for r in big.rows}
    assert len(groups) == 6


def test_schema_2_bench_fields_are_read(tmp_path: Path) -> None:
    """The fields bench writes since schema 2 (artifact/inference precision, the torch runner's runtime_config)."""
    gpu = {"device": "gpu", "fp": GPU_HOST, "schema_version": 2}
    torch_cfg = {"torch_precision": "fp32", "tf32": False, "channels_last": False, "compiled": False}
    rows, _ = _rows(
        tmp_path,
        bench_doc("rf_lw50", "torch", 20.0, **gpu, inference_precision="fp32", runtime_config=torch_cfg),
        bench_doc(
            "rf_lw50",
            "torch",
            8.0,
            **gpu,
            inference_precision="bf16",
            artifact="/runs/bf16.safetensors",
            runtime_config={**torch_cfg, "torch_precision": "bf16", "channels_last": True},
        ),
        bench_doc(
            "rf_lw50",
            "onnxruntime",
            10.0,
            **gpu,
            artifact_precision="int8",
            inference_precision="fp32",
            precision="int8",
            runtime_precision="fp32",
        ),
    )
    base = _one(rows, runtime="torch", precision="fp32")
    assert base.is_baseline and base.tf32 is False and not base.notes  # strict: no footnote
    assert _one(rows, precision="bf16, channels-last").speedup == pytest.approx(2.5)
    assert _one(rows, runtime="onnxruntime").precision == "int8 (float parts fp32)"


def test_async_throughput_is_its_own_timing_kind(tmp_path: Path) -> None:
    async_stats = {**stats(80.0), "requests": 4, "mode": "asynchronous: 4 infer requests in flight (AsyncInferQueue)"}
    rows, _ = _rows(
        tmp_path,
        bench_doc("rf_lw_mbv2", "torch", 100.0),
        bench_doc("rf_lw_mbv2", "openvino", 80.0, compute_only=async_stats, hint="throughput"),
    )
    ov = _one(rows, runtime="openvino")
    assert ov.timing == "async throughput" and ov.speedup is None  # not 1.25x against a synchronous call
    assert any("asynchronous throughput run" in n for n in ov.notes)


def test_odd_but_valid_json_values_do_not_break_grouping_or_charts(tmp_path: Path) -> None:
    """Fingerprint values of unexpected JSON types (lists, numbers) and a '$' in a name (matplotlib mathtext)."""
    odd = {"cpu": "Cost $5 CPU $x^2$", "cpu_count": [2], "isa": 7, "gpus": "none", "hostname": {"a": 1}}
    paths = write_docs(tmp_path / "in", bench_doc("rf_lw_mbv2", "torch", 100.0, fp=odd), bench_doc(fp=odd))
    result = write_report(paths, tmp_path / "r.md")
    assert _one(result.rows, runtime="onnxruntime").speedup == pytest.approx(2.0)
    assert "Cost $5 CPU $x^2$" in result.output.read_text()
    if result.charts:  # with matplotlib: rendered, "$" not parsed as mathtext
        assert result.charts[0].read_bytes()[:4] == b"\x89PNG"


def test_another_architecture_is_another_device_in_both_tables() -> None:
    """An x86 host and an aarch64 device that report the same CPU text (qemu-user passes the host's /proc/cpuinfo
    through) are different devices for the report and for the pipeline's table alike."""
    from refinenet_deploy.operations.pipeline.summary import same_model
    from refinenet_deploy.results.bench import BenchResult

    x86 = {"cpu": "AMD EPYC", "cpu_count": 2, "isa": ["avx2"], "platform": "Linux-6.1-x86_64-with-glibc2.36"}
    arm = {**x86, "platform": "Linux-6.1-aarch64-with-glibc2.36", "machine": "aarch64"}
    assert device_identity(x86, "cpu")[0] != device_identity(arm, "cpu")[0]
    assert device_identity(x86, "cpu")[0] == device_identity({**x86, "machine": "x86_64"}, "cpu")[0]  # old files

    def bench(fingerprint: dict) -> BenchResult:
        return BenchResult.from_dict(bench_doc(size=(128, 128), classes=6, fp=fingerprint))

    assert same_model(bench(x86), bench(x86))
    assert not same_model(bench(x86), bench(arm))


def test_the_precision_audit_of_an_artifact_is_shown_in_its_row(tmp_path: Path) -> None:
    """Issue 22: what an OpenVINO IR really runs (its sidecar's audit, carried by the bench JSON) is in the report."""
    audit = {"summary": "INT8 convolutions: 78/78", "device": "CPU", "by_precision": {"int8": 78}, "realised": True}
    ir = bench_doc(runtime="openvino", precision="int8", p50=20.0, precision_audit=audit)
    rows, _ = _rows(tmp_path, bench_doc(runtime="torch", p50=100.0), ir)
    row = next(r for r in rows if r.runtime == "openvino")
    assert row.precision_audit == "INT8 convolutions: 78/78 (on CPU)"
    paths = write_docs(tmp_path / "md", bench_doc(runtime="torch", p50=100.0), ir)
    write_report(paths, tmp_path / "r.md")
    assert "| int8; INT8 convolutions: 78/78 (on CPU) |" in (tmp_path / "r.md").read_text()
