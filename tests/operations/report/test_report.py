"""report on real results: bench (PyTorch, ONNX Runtime) and parity JSON of a tiny model, measured here, merged into
one table with charts; the HTML is self-contained. Synthetic-document cases are in tests/operations/report/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from refinenet_deploy.cli import app
from refinenet_deploy.data.synth import write_synth_dataset
from refinenet_deploy.errors import DataError, UsageError
from refinenet_deploy.models.checkpoint import save_safetensors
from refinenet_deploy.operations.bench import benchmark
from refinenet_deploy.operations.export import ExportSpec, export_onnx
from refinenet_deploy.operations.parity import validate_parity
from refinenet_deploy.operations.report import write_report
from refinenet_deploy.validate.tolerances import FP32

from ...helpers import default_init_model


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("report")
    ckpt = save_safetensors(
        default_init_model("rf_lw_test", num_classes=6).state_dict(), root / "m.safetensors", {"arch": "rf_lw_test"}
    )
    onnx_path = root / "m.onnx"
    export_onnx(ckpt, onnx_path, ExportSpec(input_size=(48, 48)))
    data = write_synth_dataset(root / "val", 2, 48, 48, seed=3, split="val")
    docs = {
        "bench-torch.json": benchmark(ckpt, input_size=(48, 48), warmup=0, iterations=3).to_dict(),
        "bench-ort.json": benchmark(onnx_path, warmup=0, iterations=3).to_dict(),
        "parity-ort.json": validate_parity(ckpt, onnx_path, data).to_dict(),
    }
    paths = []
    for name, doc in docs.items():
        (root / name).write_text(json.dumps(doc))
        paths.append(root / name)
    return paths


def test_html_report_is_self_contained_with_charts(runs: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = write_report(runs, tmp_path / "report.html")
    out, rows, charts = result.output, result.rows, result.charts
    assert len(rows) == 2  # one per bench file (compute-only); parity joined onto the ONNX row
    ort = next(r for r in rows if r.runtime == "onnxruntime")
    torch_row = next(r for r in rows if r.runtime == "torch")
    assert torch_row.is_baseline and torch_row.speedup == pytest.approx(1.0)
    assert ort.speedup is not None and ort.speedup > 0 and ort.baseline == "PyTorch fp32"
    assert (ort.arch, ort.input_size, ort.batch, ort.device) == ("rf_lw_test", (48, 48), 1, torch_row.device)
    assert abs(ort.miou_drop_points) <= FP32.max_miou_drop and ort.agreement >= FP32.min_agreement  # FP32 gates
    assert ort.parity == "pass" and torch_row.parity is None
    html = out.read_text()
    assert html.count("data:image/png;base64,") == 2 and charts == []  # embedded, no PNG beside
    assert not re.search(r"""(src|href)=["']https?://""", html)  # nothing fetched: opens offline
    assert "speed-up vs PyTorch" in html and "m.safetensors (sha256 " in html  # header names the checkpoint


def test_markdown_report_and_cli(runs: list[Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["report", *map(str, runs), "-o", str(tmp_path / "r.md")])
    assert res.exit_code == 0, res.stderr
    md = (tmp_path / "r.md").read_text()
    assert md.startswith("# refinenet-deploy report") and "| onnxruntime |" in md
    assert "| compute-only |" in md and "| 48x48 |" in md and "| pass |" in md
    assert f"wrote {tmp_path / 'r.md'}" in res.stderr  # every written file is announced on stderr (issue 19 item 12)
    if (tmp_path / "r_latency.png").exists():
        assert (tmp_path / "r_latency.png").read_bytes()[:4] == b"\x89PNG"
        assert f"wrote {tmp_path / 'r_latency.png'}" in res.stderr
    else:
        assert "Charts skipped" in md


def test_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"schema": "something-else"}')
    with pytest.raises(DataError, match="not a bench or parity result"):
        write_report([tmp_path / "x.json"], tmp_path / "r.html")
    with pytest.raises(UsageError, match=".md or .html"):
        write_report([tmp_path / "x.json"], tmp_path / "r.pdf")
