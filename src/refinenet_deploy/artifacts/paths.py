"""Where artifacts go and what they are called: sidecar and companion paths, content hashes, timestamps, and the
early check that refuses an output path that cannot be written (exit 2) before any work is done."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError, regular_file, write_failed

FORMATS = {".onnx": "onnx", ".xml": "openvino", ".engine": "tensorrt", ".plan": "tensorrt"}


def sidecar_path(artifact: str | Path) -> Path:
    """``model.onnx`` -> ``model.meta.json`` (``model.int8.onnx`` -> ``model.int8.meta.json``).

    Other artifacts keep their suffix, so that ``model.xml`` or ``model.engine`` built beside ``model.onnx``
    never overwrites its metadata: ``model.xml`` -> ``model.xml.meta.json``.
    """
    artifact = Path(artifact)
    if artifact.suffix == ".onnx":
        return artifact.with_name(artifact.stem + ".meta.json")
    return artifact.with_name(artifact.name + ".meta.json")


def companion_paths(artifact: str | Path) -> list[Path]:
    """Files that belong to an artifact besides its sidecar (an OpenVINO IR's ``.bin``)."""
    artifact = Path(artifact)
    return [artifact.with_suffix(".bin")] if artifact.suffix == ".xml" else []


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes; a FIFO, device or folder is refused (InputReadError, exit 5), never read."""
    regular_file(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _existing_ancestor(path: Path) -> Path:
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def probe_output(
    output: str | Path,
    *,
    inputs: Sequence[str | Path | None] = (),
    what: str = "-o",
    kind: str = "file",
    companions: Sequence[Path] = (),
) -> Path:
    """Refuse (UsageError, exit 2) an output path that cannot be written, before any work is done.

    ``kind`` is ``"file"`` or ``"dir"``. Missing parent folders are fine: writers create them when they write
    (``write_atomic``, ``staged_artifact``, ``ensure_parent``), so a refused or failed run leaves no empty folder.
    Refused: an output equal to any of ``inputs`` (or their companions: an IR's ``.bin``, a sidecar), a file path
    that is a folder, a folder path that is a file, a parent that is a file, and a place that cannot be written.
    """
    output = Path(output)
    targets = [output, *companions]
    for inp in inputs:
        if inp is None:
            continue
        inp = Path(inp)
        guarded = [inp, sidecar_path(inp), *companion_paths(inp)] if inp.is_file() else [inp]
        for target in targets:
            for g in guarded:
                if _same_file(target, g):
                    raise UsageError(f"{what} {target} would overwrite the input {g}. Choose another output path")
            if inp.is_dir() and target.is_file() and _is_data_file(target) and is_inside(target, inp):
                raise UsageError(
                    f"{what} {target} would overwrite a file of the input folder {inp}. Choose another output path"
                )
    for target in targets:
        if kind == "file" and target.is_dir():
            raise UsageError(f"{what} {target} is a folder. Pass a file name")
    if kind == "dir" and output.exists() and not output.is_dir():
        raise UsageError(f"{what} {output} is a file, not a folder. Pass a folder path")
    ancestor = _existing_ancestor(output if kind == "file" else output / "x")
    if not ancestor.is_dir():
        raise UsageError(f"{what} {output}: {ancestor} is a file, not a folder. Choose another output path")
    try:  # a real write probe: os.access says yes to root even on read-only mounts
        with tempfile.NamedTemporaryFile(dir=ancestor, prefix=".rfdeploy.probe-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"{what} {output}: cannot write in {ancestor} ({exc.strerror}). Choose a writable path"
        ) from exc
    return output


def _is_data_file(path: Path) -> bool:
    """An image, label, split list or dataset description: what the dataset readers take from an input folder
    (a JSON this tool wrote there before may be replaced, so a command can be repeated)."""
    from ..data.datasets import IMAGE_EXTENSIONS

    return path.suffix.lower() in {*IMAGE_EXTENSIONS, ".txt"} or path.name == "dataset.json"


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (links resolved)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def ensure_parent(path: str | Path) -> list[Path]:
    """Create the missing parent folders of ``path``; returns those it created (outermost first), so a failed
    step can remove them again with ``remove_created``."""
    parent = Path(path).absolute().parent
    missing: list[Path] = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    made: list[Path] = []
    try:
        for folder in reversed(missing):
            folder.mkdir(exist_ok=True)
            made.append(folder)
    except OSError as exc:
        remove_created(made)
        raise write_failed(folder, exc) from exc
    return made


def remove_created(folders: Sequence[Path]) -> None:
    """Remove folders made by ``ensure_parent`` if they are still empty (innermost first)."""
    for folder in reversed(list(folders)):
        try:
            folder.rmdir()
        except OSError:
            break


def check_output_path(
    output: str | Path, suffix: str | Sequence[str], *, inputs: Sequence[str | Path | None] = (), what: str = "-o"
) -> Path:
    """Fail early (UsageError, exit 2) on an artifact output path that cannot be written, before any work is done:
    wrong suffix, equal to an input, a folder, or an unwritable place (see ``probe_output``)."""
    output = Path(output)
    suffixes = (suffix,) if isinstance(suffix, str) else tuple(suffix)
    if output.suffix not in suffixes:
        raise UsageError(f"output must end in {' or '.join(suffixes)}: {output}. Pass -o model{suffixes[0]}")
    return probe_output(output, inputs=inputs, what=what, companions=[sidecar_path(output), *companion_paths(output)])
