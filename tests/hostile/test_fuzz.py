"""Issue #14: fuzz the parsers that read untrusted bytes. Property: for any input, a valid result or a typed
``RefineNetDeployError`` whose exit code is 2-7; never an untyped exception. Seeded with near-valid files (valid
files mutated: byte flips, truncation, insertion; JSON documents with fields replaced or removed), not only random
bytes. Big declared sizes (safetensors header length, tensor shapes, image dimensions, a zip member) must be refused
before anything that size is allocated. Fixed budget: derandomized, a bounded number of examples per parser."""

from __future__ import annotations

import io
import json
import pickle
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from refinenet_deploy.artifacts import InputPolicy, read_metadata
from refinenet_deploy.data.datasets import open_dataset
from refinenet_deploy.data.images import read_image, read_label
from refinenet_deploy.errors import RefineNetDeployError
from refinenet_deploy.models.checkpoint import pickle_globals, read_checkpoint
from refinenet_deploy.operations.report import write_report

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a fixed budget even while the property fails
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def typed_or_valid(fn: Callable[[], Any]) -> Any:
    """Call ``fn``: a result, or a typed error with a user exit code; anything else fails the property."""
    try:
        return fn()
    except RefineNetDeployError as exc:
        assert exc.exit_code in {2, 3, 4, 5, 6, 7}, f"{type(exc).__name__} has exit code {exc.exit_code}"
        assert "\n" not in exc.message and exc.message.strip(), f"not a one-line message: {exc.message!r}"
        return None


# --------------------------------------------------------------------------------------------- seeds
def _safetensors_bytes() -> bytes:
    from safetensors.torch import save

    g = torch.Generator().manual_seed(0)
    tensors = {"classifier.weight": torch.randn(6, 4, 1, 1, generator=g), "bn.running_var": torch.rand(4, generator=g)}
    return save(tensors, metadata={"arch": json.dumps("rf_lw_mbv2_test"), "num_classes": "6"})


def _torch_zip_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}}, buf)
    return buf.getvalue()


def _torch_legacy_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.ones(3)}}, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def _image_bytes(fmt: str, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _label_bytes() -> bytes:
    arr = (np.arange(256, dtype=np.uint8).reshape(16, 16) % 7).astype(np.uint8)
    img = Image.fromarray(arr, "P")
    img.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


SIDECAR = {
    "format": "refinenet-deploy/onnx",
    "schema_version": 2,
    "arch": "rf_lw_mbv2_test",
    "num_classes": 6,
    "normalization": {
        "mode": "imagenet",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "scale": 1 / 255,
    },
    "input_format": "nchw-float",
    "head": "logits",
    "export_size": [48, 48],
    "precision": "fp32",
}
BENCH = {
    "schema": "refinenet-deploy/bench",
    "schema_version": 1,
    "artifact": "m.onnx",
    "runtime": "onnxruntime",
    "device": "cpu",
    "precision": "fp32",
    "fingerprint": {"cpu": "x86", "cpu_count": 2},
    "compute_only": {"p50_ms": 3.0, "p99_ms": 4.0, "throughput_ips": 300.0},
}
PARITY = {
    "schema": "refinenet-deploy/parity",
    "schema_version": 1,
    "artifact": "m.onnx",
    "runtime": "onnxruntime",
    "precision": "fp32",
    "miou_drop_points": 0.0,
    "pixel_agreement": 1.0,
}


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Near-valid bytes: ``seed`` with a few bytes overwritten, then cut, and/or junk inserted."""
    n = len(seed)
    edits = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), max_size=6)

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for pos, value in draw(edits):
            data[pos] = value
        if draw(st.booleans()):
            data = data[: draw(st.integers(0, n))]
        if draw(st.booleans()):
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(max_size=32))
        return bytes(data)

    return st.one_of(build(), st.binary(max_size=256))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


def json_variants(doc: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """A valid document with fields replaced by any JSON value or removed, any JSON value, or mutated text."""
    keys = sorted(doc)

    @st.composite
    def edit(draw: st.DrawFn) -> bytes:
        out = dict(doc)
        for key in draw(st.lists(st.sampled_from(keys), max_size=3)):
            if draw(st.booleans()):
                out.pop(key, None)
            else:
                out[key] = draw(JSON)
        return json.dumps(out).encode()

    return st.one_of(edit(), JSON.map(lambda v: json.dumps(v).encode()), mutated(json.dumps(doc).encode()))


# --------------------------------------------------------------------------------------------- properties
@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=mutated(_safetensors_bytes()))
def test_fuzz_safetensors(scratch: Path, data: bytes) -> None:
    p = scratch / "f.safetensors"
    p.write_bytes(data)
    typed_or_valid(lambda: read_checkpoint(p))


@FUZZ
@given(data=st.one_of(mutated(_torch_zip_bytes()), mutated(_torch_legacy_bytes())))
def test_fuzz_torch_checkpoint(scratch: Path, data: bytes) -> None:
    p = scratch / "f.pth"
    p.write_bytes(data)
    typed_or_valid(lambda: read_checkpoint(p))
    found = pickle_globals(p)  # the scanner parses only: a list, whatever the bytes
    assert isinstance(found, list) and all(isinstance(g, str) for g in found)


@FUZZ
@given(data=mutated(pickle.dumps({"model": {"w": [1.0, 2.0]}, "epoch": 3}, protocol=2)))
def test_fuzz_plain_pickle(scratch: Path, data: bytes) -> None:
    p = scratch / "g.pt"
    p.write_bytes(data)
    typed_or_valid(lambda: read_checkpoint(p))
    assert isinstance(pickle_globals(p), list)


@FUZZ
@given(data=json_variants(SIDECAR))
def test_fuzz_sidecar(scratch: Path, data: bytes) -> None:
    (scratch / "s.meta.json").write_bytes(data)
    meta = typed_or_valid(lambda: read_metadata(scratch / "s.onnx"))
    if meta is not None:
        assert isinstance(meta, dict)
        typed_or_valid(lambda: InputPolicy.from_metadata(meta))


@FUZZ
@given(data=st.one_of(json_variants(BENCH), json_variants(PARITY)))
def test_fuzz_report_json(scratch: Path, data: bytes) -> None:
    src = scratch / "run.json"
    src.write_bytes(data)
    out = scratch / "rep" / "r.md"
    typed_or_valid(lambda: write_report([src], out))


@FUZZ
@given(data=st.one_of(mutated(_image_bytes("PNG")), mutated(_image_bytes("JPEG")), mutated(_image_bytes("PNG", "L"))))
def test_fuzz_image(scratch: Path, data: bytes) -> None:
    p = scratch / "i.png"
    p.write_bytes(data)
    img = typed_or_valid(lambda: read_image(p))
    if img is not None:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


@FUZZ
@given(data=mutated(_label_bytes()))
def test_fuzz_label(scratch: Path, data: bytes) -> None:
    p = scratch / "l.png"
    p.write_bytes(data)
    lab = typed_or_valid(lambda: read_label(p))
    if lab is not None:
        assert lab.dtype == np.uint8 and lab.ndim == 2


@settings(FUZZ, max_examples=40)
@given(meta=json_variants({"format": "voc", "classes": ["a", "b"], "ignore_index": 255}), split=st.text(max_size=40))
def test_fuzz_dataset(tmp_path_factory: pytest.TempPathFactory, meta: bytes, split: str) -> None:
    root = tmp_path_factory.mktemp("voc")
    (root / "JPEGImages").mkdir()
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "JPEGImages" / "a.jpg").write_bytes(_image_bytes("JPEG"))
    (root / "SegmentationClass" / "a.png").write_bytes(_label_bytes())
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("a\n" + split)
    (root / "dataset.json").write_bytes(meta)

    def read_all() -> int:
        ds = open_dataset(root, split="val")
        return sum(1 for _ in ds)

    typed_or_valid(read_all)


# --------------------------------------------------------------------------------------------- declared sizes
def _raw_safetensors(header: bytes, length: int | None = None, body: bytes = b"") -> bytes:
    return (len(header) if length is None else length).to_bytes(8, "little") + header + body


@pytest.mark.parametrize(
    "data",
    [
        _raw_safetensors(b"{}", length=2**63 - 1),
        _raw_safetensors(b"{}", length=200 << 20),
        _raw_safetensors(
            json.dumps({"w": {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 8]}}).encode(),
            body=b"\0" * 8,
        ),  # fmt: skip
        _raw_safetensors(json.dumps({"w": {"dtype": "F64", "shape": [2**40], "data_offsets": [0, 2**43]}}).encode()),
    ],
    ids=["header-2^63", "header-200MiB", "shape-2^40-elements", "offsets-8TiB"],
)
def test_huge_declared_safetensors_refused_without_allocating(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "big.safetensors"
    p.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(RefineNetDeployError) as info:
            read_checkpoint(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.exit_code == 5
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB allocated for a {len(data)}-byte file"


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("reader", [read_image, read_label], ids=["image", "label"])
@pytest.mark.parametrize("size", [(100_000, 100_000), (2**31 - 1, 1)], ids=["1e10-pixels", "2^31-wide"])
def test_image_bomb_header_refused_without_allocating(tmp_path: Path, reader: Callable, size: tuple[int, int]) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header(*size))
    tracemalloc.start()
    try:
        with pytest.raises(RefineNetDeployError) as info:
            reader(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.exit_code == 5 and "bomb.png" in info.value.message
    assert peak < 32 << 20


def test_pickle_scanner_bounds_a_zip_bomb(tmp_path: Path) -> None:
    """A torch zip whose ``data.pkl`` inflates to 256 MiB: the scanner must not inflate it all (it caps reads)."""
    p = tmp_path / "bomb.pth"
    zf = zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    with zf, zf.open("archive/data.pkl", "w", force_zip64=True) as fh:
        fh.write(b"\x80\x02N")  # a pickle prefix, then 256 MiB that is no opcode (the parse stops at once)
        block = b"\xff" * (1 << 20)
        for _ in range(256):
            fh.write(block)
    tracemalloc.start()
    try:
        found = pickle_globals(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(found, list)
    assert peak < 96 << 20, f"pickle_globals held {peak / 2**20:.0f} MiB for a {p.stat().st_size}-byte file"
    with pytest.raises(RefineNetDeployError) as info:
        read_checkpoint(p)
    assert info.value.exit_code == 5
