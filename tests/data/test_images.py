from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refinenet_deploy.data.images import colorize, read_image, read_label, voc_colormap
from refinenet_deploy.errors import DataError


def _rgb(h: int = 6, w: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------ read_image


def test_rgb_png_round_trip(tmp_path: Path) -> None:
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (6, 8, 3) and out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_grayscale_l_replicated(tmp_path: Path) -> None:
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_la_drops_alpha_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gray = np.full((4, 4), 77, np.uint8)
    alpha = np.full((4, 4), 255, np.uint8)
    alpha[0, 0] = 0
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    with caplog.at_level(logging.WARNING, logger="refinenet_deploy.data.images"):
        out = read_image(tmp_path / "la.png")
    assert out.shape == (4, 4, 3) and (out == 77).all()  # not composited over black
    assert any("la.png" in r.getMessage() for r in caplog.records)


def test_rgba_drops_alpha_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rgb = _rgb(4, 4)
    alpha = np.full((4, 4), 128, np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    with caplog.at_level(logging.WARNING, logger="refinenet_deploy.data.images"):
        out1 = read_image(path)
        out2 = read_image(path)
    np.testing.assert_array_equal(out1, rgb)
    np.testing.assert_array_equal(out2, rgb)
    msgs = [r.getMessage() for r in caplog.records if "rgba.png" in r.getMessage()]
    assert len(msgs) == 1 and "alpha" in msgs[0]


def test_opaque_rgba_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rgb = _rgb(4, 4)
    Image.fromarray(np.dstack([rgb, np.full((4, 4), 255, np.uint8)]), "RGBA").save(tmp_path / "o.png")
    with caplog.at_level(logging.WARNING, logger="refinenet_deploy.data.images"):
        np.testing.assert_array_equal(read_image(tmp_path / "o.png"), rgb)
    assert not caplog.records


def test_palette_image(tmp_path: Path) -> None:
    idx = np.array([[0, 1], [2, 1]], np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (256 * 3 - 9))
    img.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out[0, 0].tolist() == [10, 20, 30]
    assert out[0, 1].tolist() == [40, 50, 60]
    assert out[1, 0].tolist() == [70, 80, 90]


def test_palette_with_transparency(tmp_path: Path) -> None:
    idx = np.array([[0, 1], [2, 1]], np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (256 * 3 - 9))
    img.save(tmp_path / "pt.png", transparency=1)
    assert "transparency" in Image.open(tmp_path / "pt.png").info
    out = read_image(tmp_path / "pt.png")
    assert out.shape == (2, 2, 3)
    assert out[0, 1].tolist() == [40, 50, 60]  # RGB kept, alpha dropped


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(tmp_path / "c.jpg", quality=100)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out = read_image(tmp_path / "c.jpg")
    assert out.shape == (8, 8, 3)
    r, g, b = out[4, 4].astype(int)
    assert r < 10 and g > 245 and b > 245  # cyan


def test_16bit_png(tmp_path: Path) -> None:
    arr = np.array([[0x1234, 0xFFFF], [0x00FF, 0x8000]], np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode in ("I;16", "I")
    out = read_image(tmp_path / "d.png")
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[:, :, 0], [[0x12, 0xFF], [0x00, 0x80]])
    np.testing.assert_array_equal(out[:, :, 2], out[:, :, 0])


def test_mode_i_clipped(tmp_path: Path) -> None:
    arr = np.array([[-5, 70000], [0x1234, 256]], np.int32)
    Image.fromarray(arr, "I").save(tmp_path / "i.tif")
    out = read_image(tmp_path / "i.tif")
    np.testing.assert_array_equal(out[:, :, 0], [[0, 0xFF], [0x12, 0x01]])


def test_one_bit(tmp_path: Path) -> None:
    arr = np.array([[True, False], [False, True]])
    Image.fromarray(arr).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    np.testing.assert_array_equal(out[:, :, 1], [[255, 0], [0, 255]])


def test_float_image_refused(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((3, 3), np.float32), "F").save(tmp_path / "f.tif")
    with pytest.raises(DataError, match=r"floating-point.*f\.tif"):
        read_image(tmp_path / "f.tif")


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    # Stored 40 wide x 20 high: left half red, right half blue, top-left 10x10 block green.
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    arr[:10, :10] = (0, 255, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(arr).save(tmp_path / "rot.jpg", quality=100, exif=exif)
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 20, 3)
    # Clockwise rotation: stored (row y, col x) -> displayed (row x, col H-1-y).
    assert out[5, 15].tolist() == pytest.approx([0, 255, 0], abs=12)  # green block now top-right
    assert out[5, 4].tolist() == pytest.approx([255, 0, 0], abs=12)  # red on top
    assert out[34, 10].tolist() == pytest.approx([0, 0, 255], abs=12)  # blue at the bottom


def test_truncated_jpeg(tmp_path: Path) -> None:
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"truncated or corrupt.*trunc\.jpg"):
        read_image(tmp_path / "trunc.jpg")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("hello, not an image\n")
    with pytest.raises(DataError, match=r"not a readable image.*notes\.jpg"):
        read_image(tmp_path / "notes.jpg")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"image not found.*nope\.png"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(DataError, match="directory"):
        read_image(tmp_path)


def test_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(_rgb(30, 30)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match=r"too large.*big\.png"):
        read_image(tmp_path / "big.png")


# ------------------------------------------------------------------ labels


def test_voc_colormap() -> None:
    cmap = voc_colormap()
    assert cmap.shape == (256, 3) and cmap.dtype == np.uint8
    assert cmap[0].tolist() == [0, 0, 0]
    assert cmap[1].tolist() == [128, 0, 0]
    assert cmap[15].tolist() == [192, 128, 128]  # person
    assert cmap[255].tolist() == [224, 224, 192]
    assert len({tuple(c) for c in cmap.tolist()}) == 256
    assert voc_colormap(21).shape == (21, 3)


def test_colorize() -> None:
    lab = np.array([[0, 1], [15, 255]], np.uint8)
    out = colorize(lab)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[1, 0].tolist() == [192, 128, 128] and out[1, 1].tolist() == [224, 224, 192]


def test_label_palette_raw_indices(tmp_path: Path) -> None:
    lab = np.array([[0, 1, 255], [20, 15, 0]], np.uint8)
    img = Image.fromarray(lab, "P")
    img.putpalette(voc_colormap().ravel().tolist())
    img.save(tmp_path / "l.png")
    out = read_label(tmp_path / "l.png")
    assert out.dtype == np.uint8 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, lab)


def test_label_grayscale(tmp_path: Path) -> None:
    lab = np.array([[0, 7, 26], [33, 255, 1]], np.uint8)
    Image.fromarray(lab, "L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_label(tmp_path / "g.png"), lab)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_label_rgb_voc_colours(tmp_path: Path, mode: str) -> None:
    lab = np.array([[0, 1, 255], [20, 15, 0]], np.uint8)
    rgb = colorize(lab)
    if mode == "RGBA":
        rgb = np.dstack([rgb, np.full(lab.shape, 255, np.uint8)])
    Image.fromarray(rgb, mode).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_label(tmp_path / "c.png"), lab)


def test_label_rgb_unknown_colour(tmp_path: Path) -> None:
    rgb = colorize(np.zeros((2, 2), np.uint8))
    rgb[1, 1] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "bad.png")
    with pytest.raises(DataError, match=r"\(1, 2, 3\).*bad\.png"):
        read_label(tmp_path / "bad.png")


def test_label_16bit(tmp_path: Path) -> None:
    ok = np.array([[0, 7], [26, 255]], np.uint16)
    Image.fromarray(ok).save(tmp_path / "ok16.png")
    out = read_label(tmp_path / "ok16.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, ok)
    Image.fromarray(np.array([[0, 300]], np.uint16)).save(tmp_path / "big16.png")
    with pytest.raises(DataError, match=r"0\.\.255.*big16\.png"):
        read_label(tmp_path / "big16.png")


def test_label_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"label not found.*x\.png"):
        read_label(tmp_path / "x.png")
    Image.fromarray(np.zeros((2, 2), np.float32), "F").save(tmp_path / "f.tif")
    with pytest.raises(DataError, match=r"unsupported label mode 'F'.*f\.tif"):
        read_label(tmp_path / "f.tif")
