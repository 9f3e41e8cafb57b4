"""The hostile-input corpus: fixtures, an in-process runner, folder snapshots and the checks every case gets.

Every case is data: the ``rfdeploy`` argv (relative paths, run with the case folder as cwd), a ``setup`` that
writes the hostile files into that folder (generated here by code: no binary blob is committed), the expected
exit code, words the one-line message must contain, and the files a successful run may add. Checks for every case:
the exit code; no traceback; on failure exactly one ``error: `` line (an optional ``hint: `` line after it) and no
other new, changed or removed file, hidden files (staging debris) included; on success only the expected outputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
SIZE = 48
NUM_IMAGES = 4
CLASSES = 6


@dataclass(frozen=True)
class Fixtures:
    """Relative names (inside ``root``) of the valid inputs the hostile cases are derived from."""

    root: Path
    ckpt: str = "m.safetensors"
    onnx: str = "m.onnx"
    qdq: str = "q.onnx"
    xml: str = "v.xml"
    data: str = "data"
    bench_json: str = "bench.json"
    parity_json: str = "parity.json"
    plain_images: str = "imgs"


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None


def run_cli(argv: Sequence[str]) -> Outcome:
    """``rfdeploy argv`` in this process (typer's CliRunner: stderr kept apart from stdout)."""
    from refinenet_deploy.cli import app

    res = CliRunner().invoke(app, [str(a) for a in argv])
    exc = res.exception if res.exception is not None and not isinstance(res.exception, SystemExit) else None
    return Outcome(res.exit_code, res.stdout, res.stderr, exc)


def run_subprocess(argv: Sequence[str], cwd: Path, timeout: float = 300) -> Outcome:
    """``rfdeploy argv`` in a fresh Python process (what a user's shell runs)."""
    proc = subprocess.run(
        [sys.executable, "-c", "from refinenet_deploy.cli import main; main()", *map(str, argv)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 (or ``<dir>``) of everything under ``root``, hidden files and folders included."""
    snap: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            snap[os.path.relpath(os.path.join(dirpath, d), root)] = "<dir>"
        for f in filenames:
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                snap[rel] = f"<link {os.readlink(p)}>"
                continue
            if not stat.S_ISREG(os.lstat(p).st_mode):  # a FIFO: opening it would block
                snap[rel] = f"<special {stat.S_IFMT(os.lstat(p).st_mode):o}>"
                continue
            with open(p, "rb") as fh:
                snap[rel] = hashlib.sha256(fh.read()).hexdigest()
    return snap


def diff_snapshots(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in before.keys() & after.keys() if before[k] != after[k]),
    }


def message_problems(out: Outcome, expect_error: bool) -> list[str]:
    """What is wrong with the terminal output: a traceback, or an error that is not one ``error:`` line."""
    problems = []
    if "Traceback" in out.stderr or "Traceback" in out.stdout:
        problems.append("traceback printed")
    if out.exception is not None:
        problems.append(f"uncaught {type(out.exception).__name__}: {str(out.exception)[:200]}")
    if "internal error" in out.stderr or "this is a bug in rfdeploy" in out.stderr:
        problems.append("reported as an internal error (exit 1 is for bugs in rfdeploy only)")
    if not expect_error:
        return problems
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("error: ")]
    if len(starts) != 1:
        problems.append(f"expected one 'error: ' line on stderr, got {len(starts)}")
        return problems
    tail = lines[starts[0] + 1 :]
    if len(tail) > 1 or (tail and not tail[0].startswith("hint: ")):
        problems.append(f"error message is not one line (+ optional hint): {len(tail)} more lines")
    return problems


def error_line(out: Outcome) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")]
    if lines:
        return lines[0]
    text = out.stderr.strip() or out.stdout.strip()
    return " | ".join(text.splitlines()[-6:])[:400]


# --------------------------------------------------------------------------------------------- checks
ISOLATED_AS_BYTES = 8 << 30  # torch's import alone reserves a few GiB of address space
ISOLATED_TIMEOUT_S = 180


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ISOLATED_AS_BYTES, ISOLATED_AS_BYTES))


def run_isolated(argv: tuple[str, ...], cwd: Path) -> Outcome:
    proc = subprocess.run(
        [sys.executable, "-c", "from refinenet_deploy.cli import main; main()", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=ISOLATED_TIMEOUT_S,
        preexec_fn=_limited,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "2"},
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def check_case(case: Case, root: Path) -> list[str]:
    """Run one case in ``root`` (its cwd) and return every way the result differs from what the issue asks."""
    if case.setup is not None:
        case.setup(root)
    before = snapshot(root)
    out = run_isolated(case.argv, root) if case.isolate else run_cli(case.argv)
    after = snapshot(root)
    problems: list[str] = []
    if (root / MARKER).exists():
        problems.append("UNPICKLING RAN CODE: the marker file written by os.system exists")
    return problems + judge_outcome(case, out, before, after)


def judge_outcome(case: Any, out: Outcome, before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Every way a finished case differs from what the issues ask: its exit code, one ``error:`` line with the
    expected words and no traceback, exactly the expected new files, inputs untouched. ``case`` has ``argv``,
    ``exit_code``, ``words`` and ``outputs`` (a ``Case`` or the environment corpus's ``EnvCase``)."""
    problems: list[str] = []
    if out.exit_code != case.exit_code:
        problems.append(f"exit {out.exit_code}, expected {case.exit_code}")
    failure = case.exit_code != 0
    problems += message_problems(out, expect_error=failure)
    text = error_line(out).lower() if failure else out.stderr.lower()
    missing = [w for w in case.words if w not in text]
    if missing:
        problems.append(f"message lacks {missing}")
    d = diff_snapshots(before, after)
    expected_new = set(case.outputs) if not failure else set()
    if set(d["added"]) != expected_new:
        extra = sorted(set(d["added"]) - expected_new)
        absent = sorted(expected_new - set(d["added"]))
        if extra:
            problems.append(f"new files: {extra[:8]}")
        if absent:
            problems.append(f"expected outputs not written: {absent}")
    if d["removed"] or d["changed"]:
        problems.append(f"inputs touched: removed {d['removed'][:5]}, changed {d['changed'][:5]}")
    if problems:
        problems.append(f"command: rfdeploy {' '.join(case.argv)!r}")
        problems.append(f"got exit {out.exit_code}: {error_line(out)}")
    return problems


# --------------------------------------------------------------------------------------------- fixtures
def _must(out: Outcome, what: str) -> None:
    if out.exit_code != 0:
        raise RuntimeError(f"fixture step failed: {what}: exit {out.exit_code}\n{out.stderr[-2000:]}")


def build_fixtures(root: Path) -> Fixtures:
    """The valid inputs, built once per session (a few seconds on 2 cores), through the CLI where one exists."""
    import numpy as np
    import torch
    from PIL import Image

    from refinenet_deploy.data.preprocessing import Normalization
    from refinenet_deploy.data.synth import SYNTH_CLASSES
    from refinenet_deploy.models import create_model
    from refinenet_deploy.models.checkpoint import save_safetensors

    fx = Fixtures(root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = create_model("rf_lw_mbv2_test", num_classes=CLASSES)
        _randomize(model)
        meta = {
            "arch": "rf_lw_mbv2_test",
            "num_classes": CLASSES,
            "class_names": list(SYNTH_CLASSES),
            "normalization": Normalization.imagenet().to_dict(),
        }
        save_safetensors(model.state_dict(), fx.ckpt, meta)
        out = run_cli(["data", "synth", fx.data, "--num", NUM_IMAGES, "--size", f"{SIZE}x{SIZE}", "--seed", 3,
                       "--split", "val"])  # fmt: skip
        _must(out, "data synth")
        out = run_cli(["export", "onnx", fx.ckpt, "--input-size", f"{SIZE}x{SIZE}", "--no-trt-check", "-o", fx.onnx])
        _must(out, "export onnx")
        out = run_cli(["calibrate", fx.onnx, "--data", fx.data, "--producer", "onnxruntime", "--num-images",
                       NUM_IMAGES, "-o", fx.qdq])  # fmt: skip
        _must(out, "calibrate")
        out = run_cli(["build", "openvino", fx.onnx, "-o", fx.xml])
        _must(out, "build openvino")
        out = run_cli(["bench", fx.onnx, "--warmup", 0, "--iterations", 2, "--no-peak", "--json", fx.bench_json])
        _must(out, "bench")
        out = run_cli(["parity", fx.ckpt, fx.onnx, "--data", fx.data, "--json", fx.parity_json])
        _must(out, "parity")
        Path(fx.plain_images).mkdir()
        rng = np.random.default_rng(0)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(f"{fx.plain_images}/p{i}.png")
    finally:
        os.chdir(cwd)
    return fx


def _randomize(model: Any, seed: int = 0) -> None:
    """Random weights and BN statistics (as tests/models/test_zoo.randomize), so the model is not trivial."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.ndim == 1:
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (1.0 / t[0].numel()) ** 0.5)


# --------------------------------------------------------------------------------------------- cases
Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One hostile input: ``argv`` runs with the case folder as cwd after ``setup`` wrote its files there."""

    id: str
    group: str
    argv: tuple[str, ...]
    exit_code: int
    words: tuple[str, ...] = ()  # lowercase substrings of the error line (failure) or of stderr (success)
    setup: Setup | None = None
    outputs: tuple[str, ...] = ()  # new files a successful run writes (all of them)
    isolate: bool = False  # a broken tool could allocate without bound: run in a subprocess with RLIMIT_AS


def _w(name: str, data: bytes | str) -> Setup:
    def setup(root: Path) -> None:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    return setup


def _chain(*steps: Setup) -> Setup:
    def setup(root: Path) -> None:
        for s in steps:
            s(root)

    return setup


def _rand(n: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def _truncate(src: str, dest: str, keep: float | int) -> Setup:
    def setup(root: Path) -> None:
        data = (root / src).read_bytes()
        n = keep if isinstance(keep, int) else int(len(data) * keep)
        (root / dest).write_bytes(data[:n])

    return setup


# checkpoints ---------------------------------------------------------------------------------
class _Exploit:
    """Unpickling this runs ``os.system(cmd)``: the loader must refuse it, never run it."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.cmd,))


MARKER = "PWNED-MARKER"


def _evil_pickle(name: str, how: str) -> Setup:
    def setup(root: Path) -> None:
        import pickle

        import torch

        evil = _Exploit(f"touch {root / MARKER}")
        path = root / name
        if how == "pickle":
            path.write_bytes(pickle.dumps({"model": evil}))
        elif how == "pickle-top":
            path.write_bytes(pickle.dumps(evil, protocol=2))
        elif how == "zip":
            torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": evil}, path)
        elif how == "legacy":
            torch.save({"model": evil}, path, _use_new_zipfile_serialization=False)

    return setup


def _state_dict(root: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(root / "m.safetensors"))


def _ckpt_meta(**changes: Any) -> dict[str, Any]:
    from refinenet_deploy.data.preprocessing import Normalization
    from refinenet_deploy.data.synth import SYNTH_CLASSES

    meta = {
        "arch": "rf_lw_mbv2_test",
        "num_classes": CLASSES,
        "class_names": list(SYNTH_CLASSES),
        "normalization": Normalization.imagenet().to_dict(),
    }
    meta.update(changes)
    return meta


def _ckpt(name: str, edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None, **meta: Any) -> Setup:
    def setup(root: Path) -> None:
        import torch
        from safetensors.torch import save_file

        sd = _state_dict(root)
        if edit is not None:
            sd = edit(sd)
        if name.endswith(".safetensors"):
            save_file(sd, str(root / name), {k: json.dumps(v) for k, v in _ckpt_meta(**meta).items()})
        else:
            torch.save(sd, root / name)

    return setup


def _first_conv(sd: dict[str, Any]) -> str:
    return next(k for k, v in sd.items() if v.ndim == 4)


def _nan(sd: dict[str, Any]) -> dict[str, Any]:
    k = _first_conv(sd)
    sd[k] = sd[k].clone()
    sd[k].view(-1)[:5] = float("nan")
    return sd


def _inf(sd: dict[str, Any]) -> dict[str, Any]:
    k = _first_conv(sd)
    sd[k] = sd[k].clone()
    sd[k].view(-1)[0] = float("inf")
    return sd


def _ints(sd: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {k: (v * 100).to(torch.int64) for k, v in sd.items()}


def _wrong_keys(sd: dict[str, Any]) -> dict[str, Any]:
    return {f"encoder.{k}": v for k, v in sd.items()}


def _drop_half(sd: dict[str, Any]) -> dict[str, Any]:
    return dict(list(sd.items())[: len(sd) // 2])


def _wrong_shape(sd: dict[str, Any]) -> dict[str, Any]:
    k = _first_conv(sd)
    sd[k] = sd[k].transpose(0, 1).contiguous()
    return sd


def _sixteen_classes(sd: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {k: (torch.zeros((16, *v.shape[1:])) if v.ndim >= 1 and v.shape[0] == CLASSES else v) for k, v in sd.items()}


def _safetensors_raw(name: str, header: bytes, *, length: int | None = None, body: bytes = b"") -> Setup:
    """A safetensors file by hand: 8-byte little-endian header length, the header, then the data."""
    n = len(header) if length is None else length
    return _w(name, n.to_bytes(8, "little") + header + body)


def _onnx_model(kind: str) -> bytes:
    from onnx import TensorProto, helper

    if kind == "rank2":
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 10])
        y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])
        graph = helper.make_graph([helper.make_node("Relu", ["input"], ["logits"])], "rank2", [x], [y])
    elif kind == "no-outputs":
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])
        graph = helper.make_graph([helper.make_node("Relu", ["input"], ["r"])], "noout", [x], [])
    elif kind == "no-inputs":
        y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1])
        c = helper.make_tensor("c", TensorProto.FLOAT, [1], [1.0])
        graph = helper.make_graph([helper.make_node("Identity", ["c"], ["logits"])], "noin", [], [y], [c])
    else:  # pragma: no cover
        raise ValueError(kind)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _onnx(name: str, kind: str) -> Setup:
    return lambda root: (root / name).write_bytes(_onnx_model(kind))


def _copy(src: str, dest: str) -> Setup:
    def setup(root: Path) -> None:
        import shutil

        if (root / src).is_dir():
            shutil.copytree(root / src, root / dest)
        else:
            shutil.copyfile(root / src, root / dest)

    return setup


def _sidecar(onnx_name: str, text: str) -> Setup:
    stem = onnx_name.removesuffix(".onnx")
    return _chain(_copy("m.onnx", onnx_name), _w(f"{stem}.meta.json", text))


def _meta_v99(root: Path) -> None:
    meta = json.loads((root / "m.meta.json").read_text())
    meta["schema_version"] = 99
    (root / "s99.onnx").write_bytes((root / "m.onnx").read_bytes())
    (root / "s99.meta.json").write_text(json.dumps(meta))


# images and labels -----------------------------------------------------------------------------
def _png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width x height`` pixels (no pixel data): a reader must refuse it, not allocate."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _image_bytes(mode: str, seed: int = 0) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    if mode == "L":
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)).save(buf, "PNG")
    elif mode == "RGBA":
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8), "RGBA").save(buf, "PNG")
    elif mode == "I;16":
        Image.fromarray(rng.integers(0, 65536, (SIZE, SIZE), dtype=np.uint16)).save(buf, "PNG")
    elif mode == "P":
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).convert("P").save(buf, "PNG")
    elif mode == "CMYK":
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8), "CMYK").save(buf, "JPEG")
    elif mode == "1":
        Image.fromarray(rng.integers(0, 2, (SIZE, SIZE), dtype=np.uint8) * 255).convert("1").save(buf, "PNG")
    elif mode == "tall":
        Image.fromarray(rng.integers(0, 256, (3 * SIZE, SIZE // 2, 3), dtype=np.uint8)).save(buf, "PNG")
    elif mode == "tiny":
        Image.fromarray(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)).save(buf, "PNG")
    elif mode == "F":
        Image.fromarray(rng.random((SIZE, SIZE), dtype=np.float32), "F").save(buf, "TIFF")
    else:  # pragma: no cover
        raise ValueError(mode)
    return buf.getvalue()


def _label_edit(folder: str, edit: Callable[[Any], Any], index: int = 1) -> Setup:
    def setup(root: Path) -> None:
        import numpy as np
        from PIL import Image

        p = root / folder / "SegmentationClass" / f"synth_3_{index:05d}.png"
        with Image.open(p) as img:
            palette = img.getpalette()
            arr = np.array(img)
        new = Image.fromarray(np.ascontiguousarray(edit(arr)).astype(np.uint8), "P")
        if palette:
            new.putpalette(palette)
        new.save(p)

    return _chain(_copy("data", folder), setup)


def _voc_image(folder: str, data: bytes, index: int = 1) -> Setup:
    return _chain(_copy("data", folder), _w(f"{folder}/JPEGImages/synth_3_{index:05d}.jpg", data))


def _set_pixels(value: int) -> Callable[[Any], Any]:
    def edit(a: Any) -> Any:
        a = a.copy()
        a[:4, :4] = value
        return a

    return edit


def _report_json(name: str, edit: Callable[[dict[str, Any]], Any], src: str = "bench.json") -> Setup:
    def setup(root: Path) -> None:
        doc = json.loads((root / src).read_text())
        (root / name).write_text(json.dumps(edit(doc)))

    return setup


def _without(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {k: v for k, v in d.items() if k not in keys}


def _with(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {**d, **changes}


def _cases() -> list[Case]:  # noqa: PLR0915  (one flat list, read top to bottom)
    cases: list[Case] = []

    def add(id_: str, group: str, argv: Sequence[Any], code: int, words: Sequence[str] = (), **kw: Any) -> None:
        words = [w.lstrip("-") if group == "option" else w for w in words]  # "unknown runtime: x" names --runtime
        cases.append(Case(id_, group, tuple(map(str, argv)), code, tuple(w.lower() for w in words), **kw))

    export = ["export", "onnx"]
    exp_tail = ["--input-size", f"{SIZE}x{SIZE}", "--no-trt-check", "-o", "out.onnx"]

    # ---- checkpoints: every hostile file through `inspect` and `export onnx` (which must fail before any work)
    ckpts: list[tuple[str, str, Setup, str]] = [
        ("truncated-safetensors-8", "t8.safetensors", _truncate("m.safetensors", "t8.safetensors", 8), "t8"),
        ("truncated-safetensors-100", "t100.safetensors", _truncate("m.safetensors", "t100.safetensors", 100), "t100"),
        ("truncated-safetensors-half", "th.safetensors", _truncate("m.safetensors", "th.safetensors", 0.5), "th."),
        (
            "truncated-safetensors-last-byte",
            "tl.safetensors",
            _truncate("m.safetensors", "tl.safetensors", 0.9999),
            "tl.",
        ),  # fmt: skip
        ("empty-safetensors", "e.safetensors", _w("e.safetensors", b""), "e.safetensors"),
        ("random-safetensors", "r.safetensors", _w("r.safetensors", _rand(4096, 1)), "r.safetensors"),
        (
            "safetensors-huge-header-length",
            "h.safetensors",
            _safetensors_raw("h.safetensors", b"{}", length=2**62),
            "h.safetensors",
        ),  # fmt: skip
        (
            "safetensors-header-longer-than-file",
            "hl.safetensors",
            _safetensors_raw("hl.safetensors", b'{"a":1}', length=10_000),
            "hl.safetensors",
        ),  # fmt: skip
        (
            "safetensors-header-list",
            "hs.safetensors",
            _safetensors_raw("hs.safetensors", b"[1, 2, 3]"),
            "hs.safetensors",
        ),  # fmt: skip
        (
            "safetensors-header-string",
            "hq.safetensors",
            _safetensors_raw("hq.safetensors", b'"tensor"'),
            "hq.safetensors",
        ),  # fmt: skip
        (
            "safetensors-header-invalid-json",
            "hj.safetensors",
            _safetensors_raw("hj.safetensors", b"{not json"),
            "hj.safetensors",
        ),  # fmt: skip
        (
            "safetensors-offsets-outside-file",
            "ho.safetensors",
            _safetensors_raw(
                "ho.safetensors",
                json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4000000]}}).encode(),
                body=b"\0" * 16,
            ),
            "ho.safetensors",
        ),  # fmt: skip
        (
            "safetensors-huge-shape",
            "hh.safetensors",
            _safetensors_raw(
                "hh.safetensors",
                json.dumps({"w": {"dtype": "F32", "shape": [2**31, 2**31], "data_offsets": [0, 16]}}).encode(),
                body=b"\0" * 16,
            ),
            "hh.safetensors",
        ),  # fmt: skip
        (
            "safetensors-no-tensors",
            "n.safetensors",
            _safetensors_raw("n.safetensors", b'{"__metadata__": {"arch": "x"}}'),
            "n.safetensors",
        ),  # fmt: skip
        ("truncated-pth-zip", "t.pth", _chain(_ckpt("full.pth"), _truncate("full.pth", "t.pth", 0.5)), "t.pth"),
        ("random-pth", "r.pth", _w("r.pth", _rand(4096, 2)), "r.pth"),
        ("empty-pth", "e.pth", _w("e.pth", b""), "e.pth"),
        ("text-pth", "x.pth", _w("x.pth", "this is not a checkpoint\n"), "x.pth"),
        ("random-pt", "r.pt", _w("r.pt", _rand(100, 3)), "r.pt"),
        ("pickle-reduce-os-system", "evil.pth", _evil_pickle("evil.pth", "pickle"), "evil.pth"),
        ("pickle-reduce-top-level", "evil2.pt", _evil_pickle("evil2.pt", "pickle-top"), "evil2.pt"),
        ("zip-pickle-reduce-os-system", "evil3.pth", _evil_pickle("evil3.pth", "zip"), "evil3.pth"),
        ("legacy-torch-reduce-os-system", "evil4.pth.tar", _evil_pickle("evil4.pth.tar", "legacy"), "evil4.pth.tar"),
        ("pickle-not-a-dict", "l.pth", _w("l.pth", __import__("pickle").dumps([1, 2, 3])), "l.pth"),
        ("wrong-keys", "k.safetensors", _ckpt("k.safetensors", _wrong_keys), "unexpected"),
        ("missing-keys", "mk.safetensors", _ckpt("mk.safetensors", _drop_half), "missing"),
        ("wrong-shape", "ws.safetensors", _ckpt("ws.safetensors", _wrong_shape), "shape"),
        ("wrong-keys-pth", "k.pth", _ckpt("k.pth", _wrong_keys), "unexpected"),
        ("nan-weights", "nan.safetensors", _ckpt("nan.safetensors", _nan), "nan"),
        ("inf-weights", "inf.safetensors", _ckpt("inf.safetensors", _inf), "inf"),
        ("int-tensors", "int.safetensors", _ckpt("int.safetensors", _ints), "int.safetensors"),
        ("nan-weights-pth", "nan.pth", _ckpt("nan.pth", _nan), "nan"),
        (
            "meta-std-zero",
            "s0.safetensors",
            _ckpt(
                "s0.safetensors",
                normalization={"mode": "imagenet", "mean": [0.4, 0.4, 0.4], "std": [0, 0, 0], "scale": 1 / 255},
            ),
            "std",
        ),  # fmt: skip
        (
            "meta-std-nan",
            "sn.safetensors",
            _ckpt(
                "sn.safetensors",
                normalization={"mode": "imagenet", "mean": [0.4, 0.4, 0.4], "std": ["nan", 1, 1], "scale": 1 / 255},
            ),
            "std",
        ),  # fmt: skip
        (
            "meta-unknown-normalisation",
            "un.safetensors",
            _ckpt("un.safetensors", normalization="caffe-bgr"),
            "normali",
        ),  # fmt: skip
        (
            "meta-unknown-normalisation-mode",
            "um.safetensors",
            _ckpt("um.safetensors", normalization={"mode": "bogus", "mean": [0, 0, 0], "std": [1, 1, 1], "scale": 1}),
            "normali",
        ),  # fmt: skip
        ("meta-num-classes-mismatch", "nc.safetensors", _ckpt("nc.safetensors", num_classes=21), "class"),
        ("meta-arch-mismatch", "am.safetensors", _ckpt("am.safetensors", arch="rf_lw50"), "am.safetensors"),
        # 16 classes in the weights, num_classes=6 in the metadata: a contradiction, refused
        ("classes-16-vs-names-6", "c16.safetensors", _ckpt("c16.safetensors", _sixteen_classes), "class"),
        ("unsupported-suffix", "m.txt", _copy("m.safetensors", "m.txt"), "m.txt"),
        ("missing-file", "nope.safetensors", None, "nope.safetensors"),  # type: ignore[list-item]
        ("checkpoint-is-folder", "dir.pth", lambda r: (r / "dir.pth").mkdir(), "dir.pth"),
    ]
    # metadata is not read by `inspect` in every case: the deep ones go through export only
    export_only = {"meta-std-zero", "meta-std-nan", "meta-unknown-normalisation", "meta-unknown-normalisation-mode"}
    for cid, name, setup, word in ckpts:
        if cid not in export_only:
            add(f"ckpt-inspect-{cid}", "checkpoint", ["inspect", name], 5, [word], setup=setup)
        add(f"ckpt-export-{cid}", "checkpoint", [*export, name, *exp_tail], 5, [word], setup=setup)
    # metadata another tool may write differently: an unknown arch label, class names that do not fit the classifier.
    # The weights decide; the label is reported in a warning and not used.
    accepted = [
        ("meta-class-names-mismatch", "cn.safetensors", _ckpt("cn.safetensors", class_names=["a", "b", "c"]),
         "3 class names"),
        ("meta-arch-unknown", "ua.safetensors", _ckpt("ua.safetensors", arch="resnet9000"), "resnet9000"),
    ]  # fmt: skip
    for cid, name, setup, word in accepted:
        add(f"ckpt-inspect-{cid}", "checkpoint", ["inspect", name], 0, [word], setup=setup)
        add(f"ckpt-export-{cid}", "checkpoint", [*export, name, *exp_tail], 0, [word], setup=setup,
            outputs=("out.onnx", "out.meta.json"))  # fmt: skip
    add("ckpt-evaluate-nan", "checkpoint", ["evaluate", "nan.safetensors", "--data", "data"], 5, ["nan"],
        setup=_ckpt("nan.safetensors", _nan))  # fmt: skip
    add("ckpt-parity-reference-wrong-keys", "checkpoint", ["parity", "k.safetensors", "m.onnx", "--data", "data"], 5,
        ["unexpected"], setup=_ckpt("k.safetensors", _wrong_keys))  # fmt: skip

    # ---- ONNX: each broken model through every command that reads one
    onnx_cases: list[tuple[str, str, Setup, int, str]] = [
        ("truncated", "t.onnx", _truncate("m.onnx", "t.onnx", 0.5), 5, "t.onnx"),
        ("random-bytes", "r.onnx", _w("r.onnx", _rand(2048, 4)), 5, "r.onnx"),
        ("empty", "e.onnx", _w("e.onnx", b""), 5, "e.onnx"),
        ("text-file", "x.onnx", _w("x.onnx", "graph { node { op_type: 'Relu' } }\n"), 5, "x.onnx"),
        ("rank2-input", "r2.onnx", _onnx("r2.onnx", "rank2"), 5, "r2.onnx"),
        ("no-outputs", "no.onnx", _onnx("no.onnx", "no-outputs"), 5, "no.onnx"),
        ("sidecar-json-list", "sl.onnx", _sidecar("sl.onnx", "[1, 2, 3]"), 5, "sl.meta.json"),
        ("sidecar-invalid-json", "sj.onnx", _sidecar("sj.onnx", '{"arch": '), 5, "sj.meta.json"),
        ("sidecar-schema-99", "s99.onnx", _meta_v99, 7, "schema"),
    ]
    for cid, name, setup, code, word in onnx_cases:
        add(f"onnx-calibrate-{cid}", "onnx", ["calibrate", name, "--data", "data", "--producer", "onnxruntime",
            "--num-images", 2, "-o", "out.onnx"], code, [word], setup=setup)  # fmt: skip
        add(f"onnx-openvino-{cid}", "onnx", ["build", "openvino", name, "-o", "out.xml"], code, [word], setup=setup)
        add(f"onnx-bench-{cid}", "onnx", ["bench", name, "--warmup", 0, "--iterations", 1, "--no-peak"], code,
            [word], setup=setup)  # fmt: skip
        add(f"onnx-parity-{cid}", "onnx", ["parity", "m.safetensors", name, "--data", "data"], code, [word],
            setup=setup)  # fmt: skip
        add(f"onnx-trt-{cid}", "onnx", ["build", "trt", name, "-o", "out.engine"], code, [word], setup=setup)
    add("onnx-calibrate-qdq-input", "onnx", ["calibrate", "q.onnx", "--data", "data", "-o", "out.onnx"], 2,
        ["q.onnx", "fp32"])  # fmt: skip
    add("onnx-missing", "onnx", ["bench", "nope.onnx"], 5, ["nope.onnx"])

    # ---- OpenVINO IR files that are not one: refused before OpenVINO's frontends try (and log) other formats
    ir_cases: list[tuple[str, str, Setup, str]] = [
        ("ir-not-xml", "b.xml", _w("b.xml", "<net"), "b.xml"),
        ("ir-foreign-root", "f.xml", _w("f.xml", '<?xml version="1.0"?><graph/>'), "f.xml"),
        ("ir-missing-bin", "nb.xml", _copy("v.xml", "nb.xml"), "nb.bin"),
    ]
    for cid, name, setup, word in ir_cases:
        add(f"{cid}-bench", "onnx", ["bench", name, "--warmup", 0, "--iterations", 1, "--no-peak"], 5, [word],
            setup=setup)  # fmt: skip
        add(f"{cid}-parity", "onnx", ["parity", "m.safetensors", name, "--data", "data"], 5, [word], setup=setup)

    # ---- images
    bad_images: list[tuple[str, bytes]] = [
        ("corrupt-jpeg", (b"\xff\xd8\xff\xe0" + _rand(600, 5))),
        ("zero-byte", b""),
        ("text-named-image", b"hello, I am not an image\n"),
        ("truncated-png", _image_bytes("L")[:60]),
        ("png-bomb-header", _png_bomb(100_000, 100_000)),
        ("float-tiff", _image_bytes("F")),
    ]
    for cid, data in bad_images:
        ext = "tif" if cid == "float-tiff" else "png"
        setup = _chain(_copy("imgs", "bi"), _w(f"bi/bad.{ext}", data))
        add(f"image-parity-folder-{cid}", "image", ["parity", "m.safetensors", "m.onnx", "--data", "bi"], 5,
            [f"bad.{ext}"], setup=setup, isolate=cid == "png-bomb-header")  # fmt: skip
        voc = _voc_image("bv", data)
        add(f"image-evaluate-voc-{cid}", "image", ["evaluate", "m.safetensors", "--data", "bv"], 5,
            ["synth_3_00001.jpg"], setup=voc, isolate=cid == "png-bomb-header")  # fmt: skip
    calib_out = ("out.onnx", "out.meta.json", "out.calibration.json")
    add("image-calibrate-skips-corrupt", "image", ["calibrate", "m.onnx", "--data", "bv", "--producer", "onnxruntime",
        "--num-images", 4, "-o", "out.onnx"], 0, ["synth_3_00001.jpg"], setup=_voc_image("bv", b"garbage"),
        outputs=calib_out)  # fmt: skip
    unreadable = _chain(_w("ub/a.png", b""), _w("ub/b.jpg", b"x"))
    add("image-calibrate-all-unreadable", "image", ["calibrate", "m.onnx", "--data", "ub", "--producer",
        "onnxruntime", "-o", "out.onnx"], 5, ["ub"], setup=unreadable)  # fmt: skip
    add("image-bench-e2e-corrupt", "image", ["bench", "m.onnx", "--end-to-end", "--data", "ub", "--warmup", 0,
        "--iterations", 1, "--no-peak"], 5, ["ub"], setup=unreadable)  # fmt: skip
    add("image-empty-folder", "image", ["parity", "m.safetensors", "m.onnx", "--data", "empty"], 5, ["empty"],
        setup=lambda r: (r / "empty").mkdir())  # fmt: skip
    add("image-data-missing", "image", ["parity", "m.safetensors", "m.onnx", "--data", "nodata"], 5, ["nodata"])
    for mode in ("L", "RGBA", "I;16", "P", "CMYK", "1", "tall", "tiny"):
        ext = "jpg" if mode == "CMYK" else "png"
        safe = mode.replace(";", "")
        add(f"image-mode-{safe}-accepted", "image", ["parity", "m.safetensors", "m.onnx", "--data", "gi"], 0,
            setup=_w(f"gi/x.{ext}", _image_bytes(mode)))  # fmt: skip

    # ---- labels
    add("label-class-200-warns", "label", ["evaluate", "m.safetensors", "--data", "l200"], 0, ["200"],
        setup=_label_edit("l200", _set_pixels(200)))  # fmt: skip
    add("label-class-200-parity-warns", "label", ["parity", "m.safetensors", "m.onnx", "--data", "l200"], 0, ["200"],
        setup=_label_edit("l200", _set_pixels(200)))  # fmt: skip
    add("label-class-200-strict", "label", ["evaluate", "m.safetensors", "--data", "l200", "--strict-labels"], 5,
        ["200"], setup=_label_edit("l200", _set_pixels(200)))  # fmt: skip
    add("label-class-200-parity-strict", "label", ["parity", "m.safetensors", "m.onnx", "--data", "l200",
        "--strict-labels"], 5, ["200"], setup=_label_edit("l200", _set_pixels(200)))  # fmt: skip
    add("label-255-ignored", "label", ["evaluate", "m.safetensors", "--data", "l255", "--strict-labels"], 0,
        setup=_label_edit("l255", _set_pixels(255)))  # fmt: skip
    add("label-all-255", "label", ["evaluate", "m.safetensors", "--data", "lall"], 0,
        setup=_label_edit("lall", lambda a: a * 0 + 255))  # fmt: skip
    add("label-size-mismatch", "label", ["evaluate", "m.safetensors", "--data", "lsz"], 5, ["synth_3_00001"],
        setup=_label_edit("lsz", lambda a: a[:40, :30]))  # fmt: skip
    add("label-size-mismatch-parity", "label", ["parity", "m.safetensors", "m.onnx", "--data", "lsz"], 5,
        ["synth_3_00001"], setup=_label_edit("lsz", lambda a: a[:40, :30]))  # fmt: skip

    def _rm_label(root: Path) -> None:
        (root / "lm" / "SegmentationClass" / "synth_3_00002.png").unlink()

    add("label-missing", "label", ["evaluate", "m.safetensors", "--data", "lm"], 5, ["synth_3_00002"],
        setup=_chain(_copy("data", "lm"), _rm_label))  # fmt: skip
    add("label-corrupt", "label", ["evaluate", "m.safetensors", "--data", "lc"], 5, ["synth_3_00000"],
        setup=_chain(_copy("data", "lc"), _w("lc/SegmentationClass/synth_3_00000.png", b"\x89PNG junk")))  # fmt: skip
    add("label-dataset-json-list", "label", ["evaluate", "m.safetensors", "--data", "lj"], 5, ["dataset.json"],
        setup=_chain(_copy("data", "lj"), _w("lj/dataset.json", "[]")))  # fmt: skip
    add("label-split-missing", "label", ["evaluate", "m.safetensors", "--data", "data", "--split", "nosuch"], 5,
        ["nosuch"])  # fmt: skip

    # ---- options (bad values: exit 2 naming the option, before any work)
    par = ["parity", "m.safetensors", "m.onnx", "--data", "data", "--num-images", 1]
    for v in ("100000x100000", "0x0", "abc", "-5x5", "48x", "1e3x1e3"):
        add(f"opt-export-input-size-{v}", "option", [*export, "m.safetensors", "--input-size", v, "--no-trt-check",
            "-o", "out.onnx"], 2, ["--input-size"], isolate=v == "100000x100000")  # fmt: skip
    for v in ("nan", "inf", "1e6", "0", "-1", "abc", "1,,2"):
        add(f"opt-parity-multi-scale-{v}", "option", [*par, "--multi-scale", v], 2, ["--multi-scale"],
            isolate=v in ("1e6", "inf"))  # fmt: skip
    for v in ("250", "-1", "nan", "101"):
        add(f"opt-parity-min-agreement-{v}", "option", [*par, "--min-agreement", v], 2, ["--min-agreement"])
    for v in ("-1", "nan", "inf"):
        add(f"opt-parity-max-miou-drop-{v}", "option", [*par, "--max-miou-drop", v], 2, ["--max-miou-drop"])
    add("opt-parity-runtime-bogus", "option", [*par, "--runtime", "bogus"], 2, ["--runtime"])
    add("opt-parity-inference-precision-bogus", "option", [*par, "--inference-precision", "f8"], 2,
        ["--inference-precision"])  # fmt: skip
    add("opt-parity-threads-0", "option", [*par, "--threads", 0], 2, ["--threads"])
    add("opt-parity-save-worst-negative", "option", [*par, "--save-worst", -1, "worst"], 2, ["--save-worst"])
    train = ["train", "data", "-o", "run", "--epochs", 1]
    for opt, v in (("--crop-size", -5), ("--crop-size", 0), ("--lr", "nan"), ("--lr", "-1"), ("--lr", "inf"),
                   ("--epochs", 0), ("--batch-size", 0), ("--arch", "bogus")):  # fmt: skip
        add(
            f"opt-train{opt}-{v}",
            "option",
            [*train, opt, v],
            2 if opt != "--arch" else 5,
            [str(v) if opt == "--arch" else opt],
        )
    synth = ["data", "synth", "syn"]
    for opt, v in (("--num", -1), ("--num", 0), ("--size", "0x0"), ("--size", "abc"), ("--size", "100000x100000")):
        add(f"opt-synth{opt}-{v}", "option", [*synth, opt, v], 2, [opt], isolate=v == "100000x100000")
    bench = ["bench", "m.onnx", "--no-peak"]
    for opt, v in (("--iterations", 0), ("--iterations", -3), ("--warmup", -1), ("--duration", "nan"),
                   ("--duration", 0), ("--batch", 0), ("--input-size", "abc"), ("--runtime", "bogus"),
                   ("--device", "toaster"), ("--hint", "fast"), ("--threads", 0)):  # fmt: skip
        add(f"opt-bench{opt}-{v}", "option", [*bench, opt, v], 2, [opt])
    # cheap defaults first (a later repeat of an option wins), so a tool that accepts a bad value stays quick
    cal = ["calibrate", "m.onnx", "--data", "data", "-o", "out.onnx", "--producer", "onnxruntime", "--num-images", 2,
           "--val-images", 2]  # fmt: skip
    for opt, v in (("--num-images", 0), ("--num-images", -1), ("--method", "bogus"), ("--producer", "bogus"),
                   ("--max-miou-drop", "nan"), ("--max-miou-drop", "-1"), ("--val-images", 0)):  # fmt: skip
        add(f"opt-calibrate{opt}-{v}", "option", [*cal, opt, v], 2, [opt])
    for opt, v in (("--opset", 99), ("--opset", 5), ("--head", "bogus"), ("--input-format", "bogus"),
                   ("--batch", 0), ("--simplify", "bogus"), ("--exporter", "bogus"), ("--num-classes", 0),
                   ("--arch", "bogus")):  # fmt: skip
        add(f"opt-export{opt}-{v}", "option", [*export, "m.safetensors", opt, v, *exp_tail], 5 if opt == "--arch"
            else 2, ["bogus" if opt == "--arch" else opt])  # fmt: skip
    add("opt-openvino-fp16-and-int8", "option", ["build", "openvino", "m.onnx", "--fp16", "--int8", "-o", "o.xml"], 2,
        ["--fp16", "--int8"])  # fmt: skip
    add("opt-openvino-int8-without-data", "option", ["build", "openvino", "m.onnx", "--int8", "-o", "o.xml"], 2,
        ["--data"])  # fmt: skip
    for opt, v in (("--shapes", "garbage"), ("--shapes", "64x64:32x32:16x16"), ("--opt-level", 9),
                   ("--library", "bogus"), ("--calibrator", "bogus"), ("--workspace", 0)):  # fmt: skip
        add(f"opt-trt{opt}-{v}", "option", ["build", "trt", "m.onnx", opt, v, "-o", "o.engine"], 2, [opt])
    add("opt-models-size-abc", "option", ["models", "--size", "abc"], 2, ["--size"])
    add("opt-unknown-option", "option", ["bench", "m.onnx", "--frobnicate"], 2, ["--frobnicate"])
    add("opt-missing-required-output", "option", ["export", "onnx", "m.safetensors"], 2, ["--output"])

    # ---- report JSON (exit 5: a bad input file, named)
    reports: list[tuple[str, Setup, str]] = [
        ("empty-list", _w("r1.json", "[]"), "r1.json"),
        ("empty-object", _w("r2.json", "{}"), "r2.json"),
        ("schema-version-99", _report_json("r3.json", _with(schema_version=99)), "r3.json"),
        ("missing-compute-only", _report_json("r4.json", _without("compute_only")), "r4.json"),
        ("missing-fingerprint", _report_json("r5.json", _without("fingerprint", "runtime")), "r5.json"),
        ("invalid-json", _w("r6.json", '{"schema": "refinenet-deploy/bench", '), "r6.json"),
        ("random-bytes", _w("r7.json", _rand(512, 7)), "r7.json"),
        ("parity-missing-artifact", _report_json("r8.json", _without("artifact"), "parity.json"), "r8.json"),
        ("compute-only-is-string", _report_json("r9.json", _with(compute_only="fast")), "r9.json"),
        ("json-null", _w("r10.json", "null"), "r10.json"),
        (
            "numbers-are-strings",
            _report_json(
                "r11.json", lambda d: {**d, "compute_only": {k: str(v) for k, v in d["compute_only"].items()}}
            ),
            "r11.json",
        ),  # fmt: skip
    ]
    for cid, setup, word in reports:
        add(f"report-{cid}", "report", ["report", word, "-o", "rep.md"], 5, [word], setup=setup)
    add("report-sidecar-passed", "report", ["report", "m.meta.json", "-o", "rep.md"], 5, ["m.meta.json"])
    add("report-missing-file", "report", ["report", "nope.json", "-o", "rep.md"], 5, ["nope.json"])
    add("report-bad-suffix", "report", ["report", "bench.json", "-o", "rep.txt"], 2, ["rep.txt"])

    # ---- output paths that cannot be written (exit 2, before work; equal-to-input is test_output_equals_input.py)
    def _dir(name: str) -> Setup:
        return lambda r: (r / name).mkdir(parents=True)

    outs: list[tuple[str, list[Any], str, Setup | None]] = [
        (
            "export-onto-folder",
            [*export, "m.safetensors", "--input-size", "48x48", "-o", "od.onnx"],
            "od.onnx",
            _dir("od.onnx"),
        ),  # fmt: skip
        (
            "export-into-proc",
            [*export, "m.safetensors", "--input-size", "48x48", "-o", "/proc/rfd.onnx"],
            "/proc",
            None,
        ),  # fmt: skip
        (
            "export-parent-is-file",
            [*export, "m.safetensors", "--input-size", "48x48", "-o", "m.onnx/x.onnx"],
            "m.onnx",
            None,
        ),  # fmt: skip
        ("calibrate-into-proc", [*cal[:4], "-o", "/proc/rfd.onnx"], "/proc", None),
        ("openvino-onto-folder", ["build", "openvino", "m.onnx", "-o", "od.xml"], "od.xml", _dir("od.xml")),
        ("openvino-bin-is-folder", ["build", "openvino", "m.onnx", "-o", "ob.xml"], "ob.bin", _dir("ob.bin")),
        ("trt-into-proc", ["build", "trt", "m.onnx", "-o", "/proc/rfd.engine"], "/proc", None),
        (
            "trt-layer-report-folder",
            ["build", "trt", "m.onnx", "--layer-report", "data", "-o", "o.engine"],
            "data",
            None,
        ),  # fmt: skip
        ("parity-json-folder", [*par, "--json", "data"], "data", None),
        ("parity-json-proc", [*par, "--json", "/proc/rfd.json"], "/proc", None),
        ("parity-markdown-parent-file", [*par, "--markdown", "m.onnx/r.md"], "m.onnx", None),
        ("parity-save-worst-is-file", [*par, "--save-worst", 1, "m.meta.json"], "m.meta.json", None),
        ("bench-json-folder", [*bench, "--iterations", 1, "--json", "data"], "data", None),
        ("bench-json-proc", [*bench, "--iterations", 1, "--json", "/proc/rfd.json"], "/proc", None),
        ("report-into-proc", ["report", "bench.json", "-o", "/proc/rfd.md"], "/proc", None),
        ("report-onto-folder", ["report", "bench.json", "-o", "rd.md"], "rd.md", _dir("rd.md")),
        ("report-chart-is-folder", ["report", "bench.json", "-o", "rc.md"], "rc_", _dir("rc_latency.png")),
        ("synth-onto-file", [*synth, "--num", 1], "syn", _w("syn", "a file")),
        ("synth-into-proc", ["data", "synth", "/proc/rfd-synth", "--num", 1], "/proc", None),
        ("synth-nonempty-folder", ["data", "synth", "data", "--num", 1], "data", None),
        ("train-out-is-file", [*train, "-o", "m.onnx"], "m.onnx", None),
    ]
    for cid, argv, word, setup in outs:
        add(f"out-{cid}", "output", argv, 2, [word], setup=setup)
    return cases


CASES: list[Case] = _cases()


def check_debris(root: Path) -> list[str]:
    """Staging leftovers under ``root``: hidden ``.NAME.*`` folders/files and ``*.tmp`` files."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            if (name.startswith(".") and name.count(".") >= 2) or name.endswith(".tmp"):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)
