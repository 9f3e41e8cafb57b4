"""Issue #20: hostile inputs, round 2: the environment rather than the arguments. Every case runs ``rfdeploy`` in a
fresh process (with a timeout, so a hang fails instead of blocking the suite), some under a file-size limit
(``RLIMIT_FSIZE``, SIGXFSZ ignored as Python does) or without root's override of file permissions (``setpriv``
dropping ``CAP_DAC_OVERRIDE``). The checks are those of the round-1 corpus: the exit code, one ``error:`` line
naming the problem, no traceback, never "internal error", no new, changed or removed file (earlier outputs intact,
no staging debris) except the outputs of a successful run.

Classes (the issue's numbering): 1 write failures, 2 non-regular files, 3 deep or huge JSON, 4 damaged compressed
arrays, 5 ONNX with external data, 6 non-finite numbers, 7 control characters in names, 8 junk pipeline locks,
9 one exit code per environment failure (2: an output cannot be written; 5: an input cannot be read)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .corpus import REPO, Outcome, error_line, judge_outcome, message_problems, run_cli, snapshot

SETPRIV = shutil.which("setpriv")
NO_DAC = ["--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
TIMEOUT_S = 240
Setup = Callable[[Path], None]


@dataclass(frozen=True)
class EnvCase:
    id: str
    cls: int  # the class
    argv: tuple[str, ...]
    exit_code: int
    words: tuple[str, ...] = ()  # lowercase substrings of the error line (failure) or of stderr (success)
    setup: Setup | None = None
    outputs: tuple[str, ...] = ()
    fsize: int | None = None  # RLIMIT_FSIZE in bytes
    no_dac: bool = False  # without CAP_DAC_OVERRIDE: folder permissions apply to root too
    may_hang: bool = False  # a FIFO or a loop is read: a fresh process under a timeout, so a regression fails

    @property
    def isolate(self) -> bool:
        return self.fsize is not None or self.no_dac or self.may_hang


def _limits(fsize: int | None) -> Callable[[], None]:
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return pre


def run_env(argv: Sequence[str], cwd: Path, *, fsize: int | None = None, no_dac: bool = False) -> Outcome:
    cmd = [sys.executable, "-c", "from refinenet_deploy.cli import main; main()", *map(str, argv)]
    if no_dac and os.geteuid() == 0:
        cmd = [SETPRIV, *NO_DAC, *cmd]
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,  # a regression that hangs (a FIFO opened for reading) fails here
        preexec_fn=_limits(fsize),
        env={
            **os.environ,
            "PYTHONPATH": str(REPO / "src"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            "XDG_CACHE_HOME": str(cwd.parent / "xdg-cache"),  # the reference cache, outside the case folder
            "COLUMNS": "400",  # rich wraps log lines at the terminal width
        },
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def check_env_case(case: EnvCase, root: Path) -> list[str]:
    if case.setup is not None:
        case.setup(root)
    before = snapshot(root)
    if case.isolate:
        out = run_env(case.argv, root, fsize=case.fsize, no_dac=case.no_dac)
    else:  # in this process (no interpreter and torch start-up per case), as the round-1 corpus
        out = run_cli(case.argv)
    _writable_again(root)
    after = snapshot(root)
    return judge_outcome(case, out, before, after)


def _writable_again(root: Path) -> None:
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            p = Path(dirpath, d)
            if not p.is_symlink():
                p.chmod(0o755)


# --------------------------------------------------------------------------------------------- setups
def _chain(*steps: Setup) -> Setup:
    def setup(root: Path) -> None:
        for s in steps:
            s(root)

    return setup


def _write(name: str, data: bytes | str) -> Setup:
    def setup(root: Path) -> None:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    return setup


def _fifo(name: str) -> Setup:
    def setup(root: Path) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).unlink(missing_ok=True)
        os.mkfifo(root / name)

    return setup


def _link(name: str, target: str) -> Setup:
    def setup(root: Path) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / name)

    return setup


def _loop(name: str) -> Setup:
    other = f"{name}.other"
    return _chain(_link(name, Path(other).name), _link(other, Path(name).name))


def _readonly(folder: str, *files: str) -> Setup:
    def setup(root: Path) -> None:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for f in files:
            (root / folder / f).write_text("an earlier output\n")
        (root / folder).chmod(0o555)

    return setup


def _copy(src: str, dest: str) -> Setup:
    def setup(root: Path) -> None:
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        if (root / src).is_dir():
            shutil.copytree(root / src, root / dest)
        else:
            shutil.copyfile(root / src, root / dest)

    return setup


DEEP = "[" * 100_000 + "]" * 100_000


def _deep_data(folder: str) -> Setup:
    return _chain(_copy("data", folder), _write(f"{folder}/dataset.json", DEEP))


def _deep_safetensors(name: str) -> Setup:
    def setup(root: Path) -> None:
        from safetensors.torch import load_file, save_file

        from .corpus import _ckpt_meta

        meta = {k: json.dumps(v) for k, v in _ckpt_meta().items()}
        meta["class_names"] = DEEP
        save_file(load_file(str(root / "m.safetensors")), str(root / name), meta)

    return setup


def _huge(name: str, size: int = 65 << 20) -> Setup:
    def setup(root: Path) -> None:
        with open(root / name, "wb") as fh:  # sparse: no disk, no time
            fh.truncate(size)

    return setup


def _edit_json(src: str, dest: str, edit: Callable[[dict[str, Any]], None]) -> Setup:
    def setup(root: Path) -> None:
        doc = json.loads((root / src).read_text())
        edit(doc)
        (root / dest).write_text(json.dumps(doc))  # allow_nan: writes NaN / Infinity as Python does

    return setup


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value

    return edit


def _external(folder: str, *, with_data: bool = True, location: str = "e.onnx.data") -> Setup:
    """``folder/e.onnx`` with its weights in an external data file (all tensors, one file), and its sidecar."""

    def setup(root: Path) -> None:
        import onnx

        out = root / folder
        out.mkdir(parents=True, exist_ok=True)
        model = onnx.load(str(root / "m.onnx"))
        if location.startswith(".."):
            onnx.save_model(model, str(root / "tmp-e.onnx"), save_as_external_data=True,
                            all_tensors_to_one_file=True, location="e.onnx.data", size_threshold=0)  # fmt: skip
            text = (root / "tmp-e.onnx").read_bytes().replace(b"e.onnx.data", location.encode()[: len("e.onnx.data")])
            (root / "tmp-e.onnx").unlink()
            (root / "e.onnx.data").unlink()
            (out / "e.onnx").write_bytes(text)
        else:
            onnx.save_model(model, str(out / "e.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=location, size_threshold=0)  # fmt: skip
        shutil.copyfile(root / "m.meta.json", out / "e.meta.json")
        if not with_data:
            (out / location).unlink()

    return setup


def _saved_reference(name: str) -> Setup:
    def setup(root: Path) -> None:
        cwd = os.getcwd()
        os.chdir(root)
        try:
            out = run_cli(["parity", "m.safetensors", "m.onnx", "--data", "data", "--save-reference", name])
        finally:
            os.chdir(cwd)
        assert out.exit_code == 0, out.stderr[-800:]

    return setup


def damage_member(path: Path, index: int = 1, how: str = "deflate") -> str:
    """Damage one member of a zip (.npz) in place: flip bytes of its deflate stream, or change the CRC-32 its
    local header and the central directory record. Returns the member's name."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[index]
        central = zf.start_dir
    if how == "deflate":
        n, e = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
        start = info.header_offset + 30 + n + e
        for k in range(start, start + min(12, info.compress_size)):
            data[k] ^= 0xFF
    else:
        crc, bad = struct.pack("<I", info.CRC), struct.pack("<I", info.CRC ^ 0xDEADBEEF)
        data[info.header_offset + 14 : info.header_offset + 18] = bad
        at = data.find(crc, central)
        if at != -1:
            data[at : at + 4] = bad
    path.write_bytes(bytes(data))
    return info.filename


def _damaged_reference(name: str, how: str) -> Setup:
    def setup(root: Path) -> None:
        _saved_reference(name)(root)
        damage_member(root / name, 1, how)

    return setup


NL = "bad\nname"


# --------------------------------------------------------------------------------------------- cases
def _cases() -> list[EnvCase]:
    c: list[EnvCase] = []

    def add(id_: str, cls: int, argv: Sequence[Any], code: int, words: Sequence[str] = (), **kw: Any) -> None:
        kw.setdefault("may_hang", any(k in id_ for k in ("fifo", "loop", "junk", "dangling")))
        c.append(EnvCase(id_, cls, tuple(map(str, argv)), code, tuple(w.lower() for w in words), **kw))

    bench = ["--warmup", 0, "--iterations", 2, "--no-peak"]
    old = _chain(_write("out/r.md", "earlier\n"), _write("out/b.json", "{}\n"), _write("out/p.json", "{}\n"))
    # 1, 9: a file-size limit reached while writing: exit 2 naming the output, the earlier output intact
    add("fsize-report", 1, ["report", "bench.json", "parity.json", "-o", "out/r.md"], 2,
        ["cannot write", "file too large"], setup=old, fsize=2000)  # fmt: skip
    add("fsize-bench-json", 1, ["bench", "m.onnx", *bench, "--json", "out/b.json"], 2,
        ["cannot write", "b.json", "file too large"], setup=old, fsize=1000)  # fmt: skip
    add("fsize-parity-json", 1, ["parity", "m.safetensors", "m.onnx", "--data", "data", "--json", "out/p.json"], 2,
        ["cannot write", "p.json", "file too large"], setup=old, fsize=1500)  # fmt: skip
    add("fsize-save-reference", 1, ["parity", "m.safetensors", "--data", "data", "--save-reference", "out/r.npz"],
        2, ["cannot write", "r.npz", "file too large"], fsize=1500)  # fmt: skip
    add("fsize-calibrate", 1, ["calibrate", "m.onnx", "--data", "data", "--producer", "onnxruntime", "--num-images", 2,
        "-o", "out/q2.onnx"], 2, ["cannot write", "q2.onnx", "file too large"], fsize=20000)  # fmt: skip
    add("fsize-export", 1, ["export", "onnx", "m.safetensors", "--input-size", "48x48", "--no-trt-check", "-o",
        "out/e.onnx"], 2, ["cannot write", "e.onnx", "file too large"], fsize=20000)  # fmt: skip
    add("fsize-build-openvino", 1, ["build", "openvino", "m.onnx", "-o", "out/v2.xml"], 2,
        ["cannot write", "v2.xml", "file too large"], fsize=20000)  # fmt: skip
    add("fsize-data-synth", 1, ["data", "synth", "out/s", "--num", 2, "--size", "48x48"], 2,
        ["cannot write", "file too large"], fsize=300)  # fmt: skip
    # 1, 9: a folder the process cannot write (root without CAP_DAC_OVERRIDE): exit 2 naming it
    for cid, argv in {
        "report": ["report", "bench.json", "-o", "ro/r.md"],
        "bench-json": ["bench", "m.onnx", *bench, "--json", "ro/b.json"],
        "calibrate": ["calibrate", "m.onnx", "--data", "data", "--producer", "onnxruntime", "-o", "ro/q2.onnx"],
        "export": ["export", "onnx", "m.safetensors", "--input-size", "48x48", "-o", "ro/e.onnx"],
    }.items():
        add(f"readonly-{cid}", 1, argv, 2, ["ro", "permission denied"], setup=_readonly("ro", "r.md"), no_dac=True)
    # 2: FIFOs, dangling links and loops where a file is read: refused (exit 5), never a hang
    add("fifo-bench-onnx", 2, ["bench", "f.onnx", *bench], 5, ["f.onnx", "fifo"], setup=_fifo("f.onnx"))
    add("fifo-bench-xml", 2, ["bench", "f.xml", *bench], 5, ["f.xml", "fifo"], setup=_fifo("f.xml"))
    add("fifo-parity-model", 2, ["parity", "m.safetensors", "f.onnx", "--data", "data"], 5, ["f.onnx", "fifo"],
        setup=_fifo("f.onnx"))  # fmt: skip
    add("fifo-parity-checkpoint", 2, ["parity", "f.safetensors", "m.onnx", "--data", "data"], 5,
        ["f.safetensors", "fifo"], setup=_fifo("f.safetensors"))  # fmt: skip
    add("fifo-sidecar-bench", 2, ["bench", "m.onnx", *bench], 5, ["m.meta.json", "fifo"], setup=_fifo("m.meta.json"))
    add("fifo-report", 2, ["report", "f.json", "-o", "r.md"], 5, ["f.json", "fifo"], setup=_fifo("f.json"))
    add("fifo-build-openvino", 2, ["build", "openvino", "f.onnx", "-o", "v2.xml"], 2, ["f.onnx"], setup=_fifo("f.onnx"))
    add("loop-bench", 2, ["bench", "l.onnx", *bench], 5, ["l.onnx"], setup=_loop("l.onnx"))
    add("dangling-sidecar-bench", 2, ["bench", "m.onnx", *bench], 5, ["m.meta.json", "missing"],
        setup=_chain(lambda r: (r / "m.meta.json").unlink(), _link("m.meta.json", "gone.json")))  # fmt: skip
    junk = _chain(_copy("data", "dj"), _link("dj/JPEGImages/dangling.jpg", "nowhere.jpg"),
                  _loop("dj/JPEGImages/loop.jpg"), _fifo("dj/JPEGImages/fifo.jpg"),
                  _link("dj/JPEGImages/up", ".."))  # fmt: skip
    add("data-junk-parity", 2, ["parity", "m.safetensors", "m.onnx", "--data", "dj"], 0,
        ["skipping", "dangling.jpg", "loop.jpg", "fifo.jpg"], setup=junk)  # fmt: skip
    ijunk = _chain(_copy("imgs", "ij"), _link("ij/dangling.png", "nowhere.png"), _loop("ij/loop.png"),
                   _fifo("ij/fifo.png"))  # fmt: skip
    add("folder-junk-parity", 2, ["parity", "m.safetensors", "m.onnx", "--data", "ij"], 0,
        ["skipping", "dangling.png", "loop.png", "fifo.png"], setup=ijunk)  # fmt: skip
    # 3: deep or huge JSON: exit 5 naming the file, never RecursionError
    add("deep-dataset-json", 3, ["parity", "m.safetensors", "m.onnx", "--data", "dd"], 5,
        ["dd/dataset.json", "nested"], setup=_deep_data("dd"))  # fmt: skip
    add(
        "deep-result-json",
        3,
        ["report", "deep.json", "-o", "r.md"],
        5,
        ["deep.json", "nested"],
        setup=_write("deep.json", DEEP),
    )
    add("deep-result-field", 3, ["report", "bench.json", "d.json", "-o", "r.md"], 5, ["d.json", "nested"],
        setup=_edit_json("parity.json", "d.json", _set("policy", json.loads("[" * 80 + "]" * 80))))  # fmt: skip
    add("deep-sidecar", 3, ["bench", "m.onnx", *bench], 5, ["m.meta.json"], setup=_write("m.meta.json", DEEP))
    add("deep-safetensors-metadata", 3, ["parity", "d.safetensors", "m.onnx", "--data", "data"], 5,
        ["d.safetensors", "nested"], setup=_deep_safetensors("d.safetensors"))  # fmt: skip
    add("huge-result-json", 3, ["report", "h.json", "-o", "r.md"], 5, ["h.json", "larger than"], setup=_huge("h.json"))
    add("deep-bundle-config", 3, ["pipeline", "--resume", "bd"], 5, ["pipeline.json", "nested"],
        setup=_chain(_write("bd/pipeline.json", DEEP), _write("bd/.pipeline/state.json", DEEP)))  # fmt: skip
    add("deep-pipeline-toml", 3, ["pipeline", "deep.toml", "-o", "b"], 2, ["deep.toml", "nested"],
        setup=_write("deep.toml", "a = " + "[" * 20_000 + "]" * 20_000 + "\n"))  # fmt: skip
    # 4: damaged compressed arrays in a saved reference: exit 5 naming the file and the array
    add("npz-bad-deflate", 4, ["parity", "r.npz", "m.onnx", "--data", "data"], 5, ["r.npz", "map_00001"],
        setup=_damaged_reference("r.npz", "deflate"))  # fmt: skip
    add("npz-bad-crc", 4, ["parity", "r.npz", "m.onnx", "--data", "data"], 5, ["r.npz", "map_00001"],
        setup=_damaged_reference("r.npz", "crc"))  # fmt: skip
    # 5: ONNX with external data: works everywhere with the data; a missing data file is exit 5 naming it
    ext, miss = _external("ext"), _external("miss", with_data=False)
    add("ext-bench", 5, ["bench", "ext/e.onnx", *bench], 0, setup=ext)
    add("ext-parity", 5, ["parity", "m.safetensors", "ext/e.onnx", "--data", "data"], 0, setup=ext)
    add("ext-calibrate", 5, ["calibrate", "ext/e.onnx", "--data", "data", "--producer", "onnxruntime",
        "--num-images", 2, "-o", "q2.onnx"], 0, setup=ext,
        outputs=("q2.onnx", "q2.meta.json", "q2.calibration.json"))  # fmt: skip
    add("ext-build-openvino", 5, ["build", "openvino", "ext/e.onnx", "-o", "v2.xml"], 0, setup=ext,
        outputs=("v2.xml", "v2.bin", "v2.xml.meta.json"))  # fmt: skip
    for cid, argv in {
        "bench": ["bench", "miss/e.onnx", *bench],
        "parity": ["parity", "m.safetensors", "miss/e.onnx", "--data", "data"],
        "calibrate": ["calibrate", "miss/e.onnx", "--data", "data", "--producer", "onnxruntime", "-o", "q2.onnx"],
        "build-openvino": ["build", "openvino", "miss/e.onnx", "-o", "v2.xml"],
        "build-trt": ["build", "trt", "miss/e.onnx", "-o", "t.engine"],
    }.items():
        add(f"ext-missing-{cid}", 5, argv, 5, ["miss/e.onnx.data", "missing"], setup=miss)
    add(
        "ext-outside",
        5,
        ["bench", "out/e.onnx", *bench],
        5,
        ["outside"],
        setup=_external("out", location="../e.onnx.d"),
    )
    # 6: NaN / Infinity in result JSON: exit 5 naming the field
    add("nan-bench", 6, ["report", "n.json", "-o", "r.md"], 5, ["n.json", "compute_only.p50_ms", "finite"],
        setup=_edit_json("bench.json", "n.json", _set("compute_only.p50_ms", float("nan"))))  # fmt: skip
    add("inf-parity", 6, ["report", "bench.json", "i.json", "-o", "r.md"], 5, ["i.json", "miou_drop_points", "finite"],
        setup=_edit_json("parity.json", "i.json", _set("miou_drop_points", float("inf"))))  # fmt: skip
    # 7: a newline in a file name stays escaped in the one error line
    add("newline-missing", 7, ["bench", NL + ".onnx", *bench], 5, ["bad\\nname.onnx"])
    add("newline-fifo", 7, ["bench", NL + ".onnx", *bench], 5, ["bad\\nname.onnx", "fifo"], setup=_fifo(NL + ".onnx"))
    add("newline-data", 7, ["parity", "m.safetensors", "m.onnx", "--data", NL], 5, ["bad\\nname"])
    add(
        "newline-report",
        7,
        ["report", NL + ".json", "-o", "r.md"],
        5,
        ["bad\\nname.json"],
        setup=_write(NL + ".json", "[1"),
    )
    return c


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_environment_case(case: EnvCase, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(work.parent / "xdg-cache"))  # restored after the case
    if case.no_dac and os.geteuid() == 0 and SETPRIV is None:
        pytest.skip("needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE as root")
    problems = check_env_case(case, work)
    assert not problems, "\n".join(problems)


def test_every_class_has_cases() -> None:
    assert {c.cls for c in CASES} >= {1, 2, 3, 4, 5, 6, 7}
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.exit_code != 1 for c in CASES)


# --------------------------------------------------------------------------------------------- class 2: bundle copy
def test_data_copy_keeps_what_the_readers_read(work: Path) -> None:
    """The pipeline's data copy takes exactly the files the readers read and skips (with a warning) the dangling
    links, loops and FIFOs they skip; a link to a folder it is inside is not followed for ever."""
    from refinenet_deploy.data.datasets import copy_data_folder, open_dataset

    _chain(_copy("data", "dj"), _link("dj/JPEGImages/dangling.jpg", "nowhere.jpg"), _loop("dj/JPEGImages/loop.jpg"),
           _fifo("dj/JPEGImages/fifo.jpg"), _link("dj/JPEGImages/up", ".."), _link("dj/linked.json", "dataset.json"),
           _write("dj/.hidden", "x"))(work)  # fmt: skip
    skipped = copy_data_folder(work / "dj", work / "copy")
    names = sorted(p.name for p, _ in skipped)
    assert names == ["dangling.jpg", "fifo.jpg", "loop.jpg", "loop.jpg.other", "up"], skipped
    src, dest = open_dataset(work / "dj"), open_dataset(work / "copy")
    assert [s.name for s in src.samples] == [s.name for s in dest.samples]
    assert (work / "copy" / "linked.json").is_file() and not (work / "copy" / "linked.json").is_symlink()
    assert not (work / "copy" / ".hidden").exists()
    for s in dest.samples:
        rel = s.image_path.relative_to(work / "copy")
        assert s.image_path.read_bytes() == (work / "dj" / rel).read_bytes()


@pytest.mark.slow
def test_pipeline_copies_junk_data_and_resumes_read_only_targets(work: Path) -> None:
    """A --data folder with a dangling link, a loop and a FIFO: the pipeline finishes, warning about each; a junk
    lock is taken over with a warning on --resume; a --resume that must write into a read-only targets/ folder is
    exit 2 naming the file, not an internal error."""
    _chain(_copy("data", "dj"), _link("dj/JPEGImages/dangling.jpg", "nowhere.jpg"), _loop("dj/JPEGImages/loop.jpg"),
           _fifo("dj/JPEGImages/fifo.jpg"))(work)  # fmt: skip
    argv = ["pipeline", "--checkpoint", "m.safetensors", "--data", "dj", "--targets", "cpu-onnxruntime-fp32",
            "--input-size", "48x48", "-o", "b"]  # fmt: skip
    out = run_env(argv, work)
    assert out.exit_code == 0, out.stderr[-1500:]
    assert "internal error" not in out.stderr
    for name in ("dangling.jpg", "loop.jpg", "fifo.jpg"):
        assert name in out.stderr
    assert sorted(p.name for p in (work / "b/data/val/JPEGImages").iterdir()) == sorted(
        p.name for p in (work / "data/JPEGImages").iterdir()
    )
    lock = work / "b/.pipeline/lock"  # class 8: a junk lock left behind is taken over with a warning
    lock.write_bytes(b'{"pid": "not-a-number"}')
    os.utime(lock, (time.time() - 60, time.time() - 60))
    out = run_env(["pipeline", "--resume", "b"], work)
    assert out.exit_code == 0, out.stderr[-1500:]
    assert "took over an unreadable pipeline lock" in out.stderr and "internal error" not in out.stderr
    assert not lock.exists()
    target = work / "b/targets/cpu-onnxruntime-fp32"
    (target / "bench.json").unlink()
    if os.geteuid() == 0 and SETPRIV is None:
        pytest.skip("needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE as root")
    target.chmod(0o555)
    try:
        out = run_env(["pipeline", "--resume", "b"], work, no_dac=True)
    finally:
        target.chmod(0o755)
    assert out.exit_code == 2, out.stderr[-1500:]
    assert "internal error" not in out.stderr and "Traceback" not in out.stderr
    assert [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")] == [
        "error: cpu-onnxruntime-fp32: cannot write b/targets/cpu-onnxruntime-fp32/bench.json: Permission denied. "
        "Choose an output folder you can write to"
    ]
    assert sorted(p.name for p in target.iterdir()) == ["parity.json"]


# --------------------------------------------------------------------------------------------- class 4: cache
def test_damaged_cache_entry_is_discarded_and_recomputed(work: Path) -> None:
    argv = ["parity", "m.safetensors", "m.onnx", "--data", "data", "--reference-cache", "cache"]
    assert run_env(argv, work).exit_code == 0
    (entry,) = (work / "cache").glob("*.npz")
    good = entry.read_bytes()
    damage_member(entry, 1, "deflate")
    out = run_env(argv, work)
    assert out.exit_code == 0, out.stderr[-1500:]
    assert "discarding the damaged cached reference" in out.stderr
    with zipfile.ZipFile(entry) as zf:
        assert zf.testzip() is None  # recomputed and written again
    assert len(entry.read_bytes()) == len(good)


# --------------------------------------------------------------------------------------------- class 6: pipeline
def test_pipeline_ignores_non_finite_results(tmp_path: Path) -> None:
    from tests.operations.report.docs import bench_doc

    from refinenet_deploy.operations.pipeline.layout import read_bench_result, read_result_json

    (tmp_path / "b.json").write_text('{"schema": "refinenet-deploy/bench", "compute_only": {"p50_ms": NaN}}')
    (tmp_path / "ok.json").write_text('{"schema": "refinenet-deploy/bench", "compute_only": {"p50_ms": 1.5}}')
    (tmp_path / "deep.json").write_text(DEEP)
    assert read_result_json(tmp_path / "b.json") is None
    assert read_result_json(tmp_path / "deep.json") is None
    assert read_result_json(tmp_path / "ok.json") == {
        "schema": "refinenet-deploy/bench",
        "compute_only": {"p50_ms": 1.5},
    }
    # the pipeline reads results as typed documents: a JSON object that is not a whole bench result is none
    assert read_bench_result(tmp_path / "ok.json") is None and read_bench_result(tmp_path / "b.json") is None
    (tmp_path / "real.json").write_text(json.dumps(bench_doc("rf_lw_mbv2", "onnxruntime", 1.5)))
    real = read_bench_result(tmp_path / "real.json")
    assert real is not None and real.p50_ms == 1.5


# --------------------------------------------------------------------------------------------- class 8: lock
@pytest.mark.parametrize(
    "content",
    [
        b"not a pid",
        b'{"pid": "abc", "host": "h"}',
        b'{"pid": 99999999999999999999, "host": "h"}',
        b'{"pid": -5, "host": "h"}',
        b"\x00\xff\xfe binary",
        b"",
        b'{"pid": true}',
        DEEP.encode(),
    ],  # fmt: skip
    ids=["text", "pid-string", "pid-huge", "pid-negative", "binary", "empty", "pid-bool", "deep"],
)
def test_junk_lock_is_taken_over_with_a_warning(tmp_path: Path, content: bytes) -> None:
    from refinenet_deploy.operations.pipeline.bundle import LOCK_GRACE_S, BundleLock

    lock = tmp_path / ".pipeline" / "lock"
    lock.parent.mkdir()
    lock.write_bytes(content)
    old = time.time() - LOCK_GRACE_S - 5
    os.utime(lock, (old, old))
    with BundleLock(tmp_path) as held:
        assert held.stale_taken_over and held.stale_taken_over["unreadable"]
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_fresh_junk_lock_is_refused_in_one_line(tmp_path: Path) -> None:
    """An unreadable lock written a moment ago may be another pipeline's, being written: refused (exit 2)."""
    from refinenet_deploy.errors import UsageError
    from refinenet_deploy.operations.pipeline.bundle import BundleLock

    lock = tmp_path / ".pipeline" / "lock"
    lock.parent.mkdir()
    lock.write_bytes(b"")
    with pytest.raises(UsageError, match="unreadable") as info:
        BundleLock(tmp_path).acquire()
    assert "\n" not in info.value.message
    assert lock.read_bytes() == b""


def test_fifo_lock_is_taken_over(tmp_path: Path) -> None:
    from refinenet_deploy.operations.pipeline.bundle import LOCK_GRACE_S, BundleLock

    lock = tmp_path / ".pipeline" / "lock"
    lock.parent.mkdir()
    os.mkfifo(lock)
    old = time.time() - LOCK_GRACE_S - 5
    os.utime(lock, (old, old))
    with BundleLock(tmp_path) as held:
        assert "fifo" in held.stale_taken_over["unreadable"].lower()
        assert lock.is_file()


# --------------------------------------------------------------------------------------------- class 9: one rule
@pytest.mark.parametrize(
    ("errno_", "code", "words"),
    [
        (28, 2, "no space left"),
        (27, 2, "file too large"),
        (122, 2, "quota"),
        (30, 2, "read-only"),
        (5, 5, "input/output error"),
        (40, 5, "symlink loop"),
    ],  # fmt: skip
)
def test_an_oserror_that_escapes_is_the_environment(
    errno_: int, code: int, words: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Whatever command an unwrapped ``OSError`` comes from, it is exit 2 (a write refused) or 5 (an input that
    cannot be read), naming the file: never an internal error."""
    import refinenet_deploy.operations.report as report

    def boom(*_a: Any, **_k: Any) -> None:
        raise OSError(errno_, os.strerror(errno_), "some\nfile.json")

    monkeypatch.setattr(report, "write_report", boom)
    out = run_cli(["report", str(Path(__file__)), "-o", str(tmp_path / "r.md")])
    assert out.exit_code == code, out.stderr
    assert not message_problems(out, expect_error=True), out.stderr
    line = error_line(out).lower()
    assert words in line and "some\\nfile.json" in line and "internal error" not in line


def test_documented_codes() -> None:
    from refinenet_deploy.errors import InputReadError, OutputWriteError

    readme = (REPO / "README.md").read_text()
    assert OutputWriteError.exit_code == 2 and InputReadError.exit_code == 5
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    assert "cannot be written" in section and "cannot be read" in section


def test_planted_owner_records_never_block_the_stale_cleaner(tmp_path: Path) -> None:
    """``clean_stale`` runs before every write: a FIFO or a deep JSON planted as a staging folder's ``.owner`` is
    left alone, never read (a fresh process under a timeout, so a regression fails instead of hanging)."""
    for name, plant in ((".a.export-1", "fifo"), (".b.export-2", "deep")):
        (tmp_path / name).mkdir()
        if plant == "fifo":
            os.mkfifo(tmp_path / name / ".owner")
        else:
            (tmp_path / name / ".owner").write_text(DEEP)
    code = "import sys; from refinenet_deploy.artifacts import clean_stale; print(len(clean_stale(sys.argv[1])))"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stderr[-800:]
    assert (tmp_path / ".a.export-1").is_dir() and (tmp_path / ".b.export-2").is_dir()


@pytest.mark.parametrize("errno_", [28, 27, 122, 13, 30], ids=["ENOSPC", "EFBIG", "EDQUOT", "EACCES", "EROFS"])
def test_write_atomic_keeps_the_earlier_output(errno_: int, tmp_path: Path) -> None:
    """What every writer is built on: a write the file system refuses half way is ``OutputWriteError`` (exit 2)
    naming the output and the reason; the earlier file is intact and no temporary file is left."""
    from refinenet_deploy.artifacts import write_atomic
    from refinenet_deploy.errors import OutputWriteError

    out = tmp_path / "r.md"
    out.write_text("earlier\n")

    def half(tmp: Path) -> None:
        tmp.write_text("half of the new")
        raise OSError(errno_, os.strerror(errno_))

    with pytest.raises(OutputWriteError) as info:
        write_atomic(out, half)
    assert info.value.exit_code == 2
    assert str(out) in info.value.message and os.strerror(errno_) in info.value.message
    assert out.read_text() == "earlier\n" and sorted(p.name for p in tmp_path.iterdir()) == ["r.md"]
