"""The HTML report a reader opens (issue 19 item 17): wide tables scroll inside the page, charts readable (log
latency axis, numbered points with a key, a colour legend, captions in words), bundle rows distinguishable, std,
model size and peak RSS columns; and, where Chromium is installed, the page rendered headless.

The bench/parity documents are FAKE (tests/operations/report/docs.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from refinenet_deploy.operations.report import CHART_CAPTIONS, HEADER, write_report
from refinenet_deploy.operations.report import charts as report_mod

from .docs import bench_doc, parity_doc


def _bundle(root: Path) -> list[Path]:
    """A bundle's layout: targets/NAME/bench.json beside targets/NAME/model.xml (all named model.xml)."""
    paths = []
    for name, runtime, p50, precision in (
        ("cpu-torch-fp32", "torch", 900.0, "fp32"),
        ("cpu-openvino-fp32", "openvino", 13.6, "fp32"),
        ("cpu-openvino-int8", "openvino", 6.3, "int8"),
    ):
        folder = root / "targets" / name
        folder.mkdir(parents=True)
        art = f"targets/{name}/model.xml" if runtime != "torch" else "checkpoint/m.safetensors"
        doc = bench_doc("rf_lw_mbv2", runtime, p50, precision=precision, artifact=art)
        doc["compute_only"]["std_ms"] = p50 / 20
        doc["peak_rss_mib"] = 612.0
        (folder / "bench.json").write_text(json.dumps(doc))
        paths.append(folder / "bench.json")
        if runtime == "openvino":
            (folder / "model.xml").write_bytes(b"x" * 1024)
            (folder / "model.bin").write_bytes(b"x" * (3 * 2**20))
            parity = parity_doc(art, runtime=runtime, precision=precision, arch="rf_lw_mbv2")
            (folder / "parity.json").write_text(json.dumps(parity))
            paths.append(folder / "parity.json")
    return paths


def test_html_tables_scroll_rows_are_distinguishable_and_resources_shown(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = write_report(_bundle(tmp_path / "b"), tmp_path / "r.html")
    page = result.output.read_text()
    assert "<div class='wide'><table>" in page  # a wide table scrolls inside the page instead of overflowing it
    assert {"std (ms)", "model size (MiB)", "peak RSS (MiB)"} <= set(HEADER)
    rows = {r.artifact: r for r in result.rows}
    assert {"cpu-openvino-fp32/model.xml", "cpu-openvino-int8/model.xml"} <= set(rows)  # not two "model.xml"
    ov = rows["cpu-openvino-int8/model.xml"]
    assert ov.std_ms == pytest.approx(6.3 / 20) and ov.peak_rss_mib == 612.0
    assert ov.model_mib == pytest.approx(3 + 1024 / 2**20)  # the IR: .xml + .bin, found beside the bundle's result
    for name, caption in CHART_CAPTIONS.items():  # every chart but SQNR, drawn only from parity --localize results
        shown = f"<figcaption>{caption}</figcaption>" in page.replace("&#x27;", "'")
        assert shown is (name != "sqnr"), name
    assert "<figcaption>latency</figcaption>" not in page


def test_latency_axis_is_logarithmic_and_points_are_keyed(monkeypatch, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    figures = []
    real = report_mod._png
    monkeypatch.setattr(report_mod, "_png", lambda fig: (figures.append(fig), real(fig))[1])
    write_report(_bundle(tmp_path / "b"), tmp_path / "r.md")
    latency, scatter = figures
    assert all(ax.get_xscale() == "log" for ax in latency.axes)  # PyTorch's 900 ms no longer flattens the rest
    assert latency.legends, "the colour legend the title promises"
    (ax,) = scatter.axes
    assert ax.get_xscale() == "log"
    texts = [t for t in ax.texts if t.get_text().isdigit()]
    assert texts and all(t.get_annotation_clip() for t in texts)  # numbers never leave the axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "openvino" in labels and any(lbl.startswith("1: ") for lbl in labels)  # colours and the point key
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert not any("mathdefault" in t for t in ticks)


def test_panel_names_never_overlap() -> None:
    from PIL import Image, ImageDraw

    from refinenet_deploy.validate.panels import render_panel

    small = np.zeros((16, 16), np.uint8)
    panel = render_panel(np.zeros((16, 16, 3), np.uint8), small, small, small, "#1 img: pixel agreement 99.00%")
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    tile = panel.width // 5
    for name in ("image", "ground truth", "PyTorch", "backend", "disagreement"):
        assert draw.textlength(name) + 4 < tile, name  # the header had "imageground truthPyTorch..." at 16 px


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (apt-get install chromium)")
def test_report_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    """The documented check: the page as a browser draws it (README "rfdeploy report")."""
    pytest.importorskip("matplotlib")
    result = write_report(_bundle(tmp_path / "b"), tmp_path / "r.html")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1400,1800",
            f"--screenshot={shot}",
            result.output.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (1800, 1400)
    inked = (image < 200).mean(axis=1)  # rows with text or chart ink
    assert inked[:900].mean() > 0.01  # the table and the first chart were drawn, not a blank or error page
