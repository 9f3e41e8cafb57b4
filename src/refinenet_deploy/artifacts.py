"""The artifact layer: how every model file this tool writes reaches the disk, and what later steps read back.

Every writer (export onnx, calibrate, build openvino, build trt) goes through this module:

- ``check_output_path`` refuses an output that cannot be written before any work is done (exit 2);
- ``staged_artifact`` gives a temporary folder beside the output; ``Staging.commit`` renames the model, its
  companion files (an IR's ``.bin``) and its ``.meta.json`` sidecar into place, rolling back to the files
  that were there before if any rename fails, so a failed or interrupted step never leaves a model without
  its provenance or a half-written file;
- ``sidecar`` builds the one versioned sidecar schema (``SCHEMA_VERSION``, documented in the README):
  the model description that travels along the chain (``MODEL_KEYS``), the step's own record, and one
  ``provenance`` block (tool and package versions, host fingerprint with GPUs/compute capability/JetPack);
- ``read_metadata`` / ``artifact_precision`` / ``InputPolicy.from_metadata`` are how later steps learn what
  an artifact is and how an image becomes its input.

This module imports no backend: ONNX graphs are read with the core ``onnx`` package only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .data.preprocessing import Normalization, preprocess
from .enums import Precision
from .errors import (
    WRITE_ERRNOS,
    DataError,
    IncompatibleArtifactError,
    InputReadError,
    InvalidModelError,
    OutputWriteError,
    RefineNetDeployError,
    UsageError,
    loads_json,
    printable,
    read_json,
    regular_file,
    write_failed,
)

log = logging.getLogger(__name__)

ONNX_METADATA_KEY = "refinenet_deploy"
SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
FORMATS = {".onnx": "onnx", ".xml": "openvino", ".engine": "tensorrt", ".plan": "tensorrt"}

# The model description: written by export, inherited by every artifact made from it.
MODEL_KEYS = (
    "arch",
    "num_classes",
    "class_names",
    "normalization",
    "input_format",
    "head",
    "opset",
    "exporter",
    "simplifier",
    "dynamic",
    "dynamic_batch",
    "export_size",
    "batch",
    "inputs",
    "outputs",
    "checkpoint",
)
INPUT_FORMATS = ("nchw-float", "nhwc-uint8")

# Bounds of an image/input size option (--input-size, --size, --crop-size): each side, and the pixel budget.
MIN_SIDE = 16
MAX_SIDE = 8192
MAX_PIXELS = 4096 * 4096


@dataclass
class ArtifactResult:
    """What a step that writes an artifact returns: the file, its sidecar and the metadata written there."""

    path: Path
    metadata_path: Path
    metadata: dict[str, Any]


# --------------------------------------------------------------------------------------------- paths, hashes
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
    from .data.datasets import IMAGE_EXTENSIONS

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


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to a hidden temporary file beside ``path``, then rename it over ``path``: readers see the
    old file or the new one, never a partial one. The temporary file is removed if ``write`` fails; a write the
    environment refuses (no space, file-size limit, quota, permission, read-only) is ``OutputWriteError`` (exit
    2) naming ``path``, and the file that was there before is left as it was."""
    path = Path(path)
    created = ensure_parent(path)
    clean_stale(path.parent, names=[path.name])
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    ok = False
    try:
        try:
            write(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise write_failed(path, exc) from exc
        except RefineNetDeployError:
            raise
        except Exception as exc:  # a library that hides the OSError (torch.save: RuntimeError "file write failed")
            refused = write_refused(tmp) if tmp.exists() else None
            if refused is not None:
                raise write_failed(path, refused) from exc
            raise
        ok = True
    finally:
        tmp.unlink(missing_ok=True)
        if not ok:
            remove_created(created)
    return path


def write_refused(*paths: str | Path) -> OSError | None:
    """After a library failed to write ``paths`` without saying why (OpenVINO's "iostream error"): the
    environment's reason, if it is one, found by writing one more byte to each partial file (a file-size limit, a
    full disk or quota refuses it) or a new file beside them (permission, read-only). Probe files are removed."""
    for path in map(Path, paths):
        try:
            if path.is_file():
                with open(path, "ab") as fh:
                    fh.write(b"\0")
                    fh.flush()
                    os.fsync(fh.fileno())
            else:
                with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".rfdeploy.probe-") as fh:
                    fh.write(b"\0" * 4096)
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            if exc.errno in WRITE_ERRNOS:
                return exc
    return None


def write_json_atomic(path: str | Path, data: Mapping[str, Any]) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n"))


# --------------------------------------------------------------------------------------------- stale temp files
OWNER_FILE = ".owner"
TMP_SUFFIX = ".rfdeploy.tmp"
_OWNED_TMP = re.compile(r"\..+\.(\d+)" + re.escape(TMP_SUFFIX))
_LEGACY_TMP = re.compile(r"\.(.+)\.(\d+)\.tmp")


def _owner_record() -> dict[str, Any]:
    return {"tool": "refinenet-deploy", "pid": os.getpid(), "host": socket.gethostname()}


def _owned_tempdir(parent: Path, prefix: str) -> Path:
    """``tempfile.mkdtemp`` beside an output, with an ``.owner`` file (pid + host) so that a later run can tell
    a folder left by a killed process (removed by ``clean_stale``) from one a live run is filling."""
    try:
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    except OSError as exc:
        raise write_failed(parent, exc) from exc
    try:
        (tmp / OWNER_FILE).write_text(json.dumps(_owner_record()))
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_failed(tmp / OWNER_FILE, exc) from exc
    return tmp


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a real process id: never treat as dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def clean_stale(folder: str | Path, *, names: Sequence[str] = ()) -> list[Path]:
    """Remove temp files of our own naming in ``folder`` whose owner process is gone; returns what was removed.

    Staging folders (``.NAME.export-*``, ``.NAME.calib-*``, ``.NAME.ov-*``, ``.NAME.trt-*``, ...) are recognised
    only by their ``.owner`` record (tool, pid, host): removed when written on this host by a process that no longer
    runs; a live run's folder, another host's, or a folder without a record is left alone. ``write_atomic``'s
    ``.NAME.PID.rfdeploy.tmp`` files go when their pid is gone; the older ``.NAME.PID.tmp`` form only for the
    ``names`` about to be written. Never raises: cleaning is best effort."""
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = [e for e in folder.iterdir() if e.name.startswith(".")]
    except OSError:
        return removed
    host, me = socket.gethostname(), os.getpid()
    for entry in entries:
        try:
            if entry.is_dir() and not entry.is_symlink():
                try:  # bounded, and a FIFO planted as .owner is refused, not read (this must never block)
                    record = read_json(entry / OWNER_FILE, max_depth=4, max_bytes=4096)
                except (OSError, ValueError, InputReadError):
                    continue
                if not isinstance(record, dict) or record.get("tool") != "refinenet-deploy":
                    continue
                pid = record.get("pid")
                if record.get("host") != host or not isinstance(pid, int) or pid == me or _pid_alive(pid):
                    continue
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_file() and not entry.is_symlink():
                owned = _OWNED_TMP.fullmatch(entry.name)
                legacy = _LEGACY_TMP.fullmatch(entry.name)
                if owned:
                    pid = int(owned.group(1))
                elif legacy and legacy.group(1) in names:
                    pid = int(legacy.group(2))
                else:
                    continue
                if pid == me or _pid_alive(pid):
                    continue
                entry.unlink()
            else:
                continue
        except OSError:
            continue
        if not entry.exists():
            removed.append(entry)
            log.warning("removed %s, left by an interrupted run (process %s is gone)", entry, pid)
    return removed


# --------------------------------------------------------------------------------------------- atomic writes
@dataclass
class Staging:
    """A temporary folder beside the output; build files in ``dir``, then ``commit`` them into place."""

    output: Path
    dir: Path
    committed: bool = False

    @property
    def model(self) -> Path:
        """Where the step writes the model inside the staging folder (same name as the output)."""
        return self.dir / self.output.name

    def commit(
        self,
        metadata: Mapping[str, Any],
        *,
        extra: Mapping[Path, Mapping[str, Any]] | None = None,
        files: Mapping[Path, Path] | None = None,
    ) -> ArtifactResult:
        """Rename the staged model (and its companions) to the output, write the sidecar, ``extra`` JSON files
        (destination -> data) and staged ``files`` (staged path -> destination) beside it. All or nothing: if any
        rename fails, the files that were there before are restored."""
        if not self.model.is_file():
            raise FileNotFoundError(self.model)
        meta = dict(metadata)
        meta["artifact"] = {
            "file": self.output.name,
            "sha256": sha256_file(self.model),
            "bytes": self.model.stat().st_size,
        }
        moves: list[tuple[Path, Path]] = [(self.dir / c.name, c) for c in companion_paths(self.output)]
        moves.append((self.model, self.output))
        side = write_json_atomic(self.dir / ".sidecar.json", meta)
        moves.append((side, sidecar_path(self.output)))
        for i, (dest, data) in enumerate((extra or {}).items()):
            moves.append((write_json_atomic(self.dir / f".extra-{i}.json", data), Path(dest)))
        moves += [(Path(src), Path(dest)) for src, dest in (files or {}).items()]
        backups: list[tuple[Path, Path]] = []
        done: list[Path] = []
        try:
            for k, (_, dest) in enumerate(moves):
                if dest.exists():
                    backup = self.dir / f".previous-{k}"
                    os.replace(dest, backup)
                    backups.append((backup, dest))
            for src, dest in moves:
                os.replace(src, dest)
                done.append(dest)
        except BaseException as exc:
            for dest in done:
                dest.unlink(missing_ok=True)
            for backup, dest in backups:
                os.replace(backup, dest)
            if isinstance(exc, OSError):
                raise write_failed(exc.filename2 or exc.filename or self.output, exc) from exc
            raise
        self.committed = True
        return ArtifactResult(self.output, sidecar_path(self.output), meta)


def _staging_write_error(exc: BaseException, tmp: Path, output: Path) -> BaseException:
    """A write refused inside a staging folder, reported for the output it was for (exit 2): the hidden staging
    path means nothing to the user. Anything else is returned unchanged."""
    cause = exc.cause if isinstance(exc, OutputWriteError) else exc
    if not isinstance(cause, OSError) or cause.errno not in WRITE_ERRNOS:
        return exc
    where = getattr(exc, "path", None) or cause.filename2 or cause.filename
    if where is not None and not is_inside(Path(str(where)), tmp):
        return exc if isinstance(exc, OutputWriteError) else write_failed(where, cause)
    return write_failed(f"{output} (staged in {tmp.name})", cause)


@contextmanager
def staged_artifact(output: str | Path, step: str) -> Iterator[Staging]:
    """A staging folder ``.<name>.<step>-XXXX`` beside ``output``, removed on exit whatever happens."""
    output = Path(output)
    created = ensure_parent(output)
    clean_stale(output.parent)
    tmp = _owned_tempdir(output.parent, f".{output.stem}.{step}-")
    stage = Staging(output, tmp)
    try:
        try:
            yield stage
        except (OSError, OutputWriteError) as exc:
            reported = _staging_write_error(exc, tmp, output)
            if reported is exc:
                raise
            raise reported from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not stage.committed:
            remove_created(created)


# --------------------------------------------------------------------------------------------- sidecar schema
def provenance(command: str = "", packages: Sequence[str] = ()) -> dict[str, Any]:
    """One provenance record: this tool, the command, package versions and the host (CPU/ISA, GPUs, JetPack)."""
    from .environment import host_fingerprint, package_versions

    return {
        "tool": "refinenet-deploy",
        "tool_version": __version__,
        "created": utc_now(),
        "command": command,
        "versions": {k: v for k, v in package_versions(tuple(packages)).items() if v},
        "host": host_fingerprint(),
    }


def sidecar(
    kind: str,
    precision: str,
    *,
    source: Mapping[str, Any] | None = None,
    command: str = "",
    packages: Sequence[str] = (),
    **record: Any,
) -> dict[str, Any]:
    """The sidecar of a new artifact: the model description inherited from ``source`` (the upstream metadata),
    the step's ``record`` and one provenance block. Keys of the upstream step's own record are not inherited."""
    inherited = {k: v for k, v in (source or {}).items() if k in MODEL_KEYS}
    meta: dict[str, Any] = {
        "format": f"refinenet-deploy/{kind}",
        "schema_version": SCHEMA_VERSION,
        **inherited,
        "precision": str(precision),
    }
    meta.update(record)
    meta["provenance"] = provenance(command, packages)
    return meta


def embed_onnx_metadata(model: Any, meta: Mapping[str, Any]) -> None:
    """Write the sidecar into an ONNX model's ``metadata_props`` (plus a few plain keys for other tools)."""
    del model.metadata_props[:]
    plain = {k: meta.get(k) for k in ("arch", "num_classes", "input_format", "head", "precision")}
    plain["tool_version"] = __version__
    props = {f"{ONNX_METADATA_KEY}.{k}": str(v) for k, v in plain.items()}
    props[ONNX_METADATA_KEY] = json.dumps(meta)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def load_onnx(path: str | Path) -> Any:
    """Parse an ONNX file (no external data) into a ModelProto; InvalidModelError (exit 5) naming the file if it
    is not one: truncated, random bytes, another format, or a protobuf that holds no graph."""
    import onnx

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise InvalidModelError(f"model file not found: {printable(path)}. Check the path")
    regular_file(path, "model file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except PermissionError as exc:
        raise InvalidModelError(f"cannot read {printable(path)}: permission denied. Check its permissions") from exc
    except Exception as exc:  # DecodeError, RuntimeError, OSError ...: not an ONNX model
        raise InvalidModelError(
            f"cannot read {printable(path)} as an ONNX model ({type(exc).__name__}); the file is truncated, corrupt or "
            "another format. Pass a .onnx written by 'rfdeploy export onnx' or 'rfdeploy calibrate'"
        ) from exc
    if not model.HasField("graph") or not model.graph.node:
        raise InvalidModelError(
            f"{path} holds no ONNX graph (empty or not an ONNX model). Pass a .onnx written by 'rfdeploy export onnx'"
        )
    return model


_load_onnx = load_onnx


def _dims(value_info: Any) -> list[int | str | None] | None:
    """The shape of a graph input/output: ints (static), strings (symbolic), None (unknown); None if no shape."""
    tensor = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type") or not tensor.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def check_onnx_graph(model: Any, path: str | Path) -> None:
    """Refuse (InvalidModelError, exit 5, with the reason) a graph this tool cannot run as an image model: no
    input, more than one, an input that is not a rank-4 float/uint8 image tensor with 3 colour channels, static
    sides outside ``MIN_SIDE..MAX_SIDE`` or a non-positive dimension, no output, or an output of rank other than 3-4.
    Symbolic (dynamic) dimensions are fine."""
    import onnx

    name = Path(path).name
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if not inputs:
        raise InvalidModelError(f"{name} has no graph input. Pass an image model exported by 'rfdeploy export onnx'")
    if len(inputs) > 1:
        raise InvalidModelError(
            f"{name} has {len(inputs)} graph inputs ({', '.join(i.name for i in inputs[:4])}); an image model "
            "has one. Pass a model exported by 'rfdeploy export onnx'"
        )
    inp = inputs[0]
    elem = inp.type.tensor_type.elem_type if inp.type.HasField("tensor_type") else 0
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.UINT8):
        raise InvalidModelError(
            f"{name}: input {inp.name!r} is not a float or uint8 tensor. Pass an image model exported by "
            "'rfdeploy export onnx'"
        )
    dims = _dims(inp)
    if dims is None or len(dims) != 4:
        rank = "unknown" if dims is None else str(len(dims))
        raise InvalidModelError(
            f"{name}: input {inp.name!r} has rank {rank}; an image model takes a rank-4 tensor "
            "(N, 3, H, W) or (N, H, W, 3)"
        )
    bad = [d for d in dims if isinstance(d, int) and d <= 0]
    if bad:
        raise InvalidModelError(f"{name}: input {inp.name!r} has a non-positive dimension {dims}")
    if dims[1] == 3 or (dims[3] != 3 and not isinstance(dims[1], int)):
        hw = dims[2:4]
    elif dims[3] == 3:
        hw = dims[1:3]
    else:
        raise InvalidModelError(f"{name}: input {inp.name!r} {dims} has no 3-channel (RGB) axis")
    for d in hw:
        if isinstance(d, int) and not MIN_SIDE <= d <= MAX_SIDE:
            raise InvalidModelError(
                f"{name}: input {inp.name!r} {dims} has a side of {d} pixels; supported: {MIN_SIDE}..{MAX_SIDE}"
            )
    if not model.graph.output:
        raise InvalidModelError(f"{name} has no graph output. Pass a model exported by 'rfdeploy export onnx'")
    for o in model.graph.output:
        odims = _dims(o)
        if odims is not None and len(odims) not in (3, 4):
            raise InvalidModelError(
                f"{name}: output {o.name!r} has rank {len(odims)}; a segmentation model outputs rank 3 or 4"
            )


def load_onnx_artifact(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """What a step that reads an ONNX needs: (ModelProto, metadata), the file parsed once and its graph checked
    (``check_onnx_graph``) and its external data files present (``check_external_data``); exit 5 for a file that
    is not a usable model, 7 for unreadable metadata."""
    path = Path(path)
    model = load_onnx(path)
    check_onnx_graph(model, path)
    check_external_data(model, path)
    return model, _metadata_from(path, model)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of a graph that may hold its data outside the file: initializers and tensor attributes, in
    subgraphs too."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for g in attr.graphs:
                yield from _graph_tensors(g)


def external_data_files(model: Any, path: str | Path) -> list[Path]:
    """The external data files an ONNX model (parsed without them) refers to, as paths beside ``path``, each once,
    in order. A location that is absolute or leaves the model's folder is refused (InvalidModelError, exit 5)."""
    import onnx

    folder = Path(path).parent
    seen: dict[str, Path] = {}
    for tensor in _graph_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if location in seen:
            continue
        rel = Path(location)
        if not location or rel.is_absolute() or ".." in rel.parts:
            raise InvalidModelError(
                f"{printable(Path(path).name)}: tensor {printable(tensor.name)!r} keeps its data at "
                f"{printable(location)!r}, outside the model's folder. Re-export the model with its data beside it"
            )
        seen[location] = folder / rel
    return list(seen.values())


def check_external_data(model: Any, path: str | Path) -> list[Path]:
    """Refuse (InvalidModelError, exit 5, naming it) a model whose external data file (large exports keep their
    weights in ``model.onnx.data``) is missing or not a regular file; returns the files."""
    files = external_data_files(model, path)
    for data in files:
        if not data.exists() and not data.is_symlink():
            raise InvalidModelError(
                f"the external data file {printable(data)} of {printable(Path(path).name)} is missing. Keep it beside "
                "the model under the name the model records (copy or move the .onnx and its data together)"
            )
        regular_file(data, "external data file")
    return files


INLINE_LIMIT_BYTES = (2 << 30) - (64 << 20)  # a serialized ONNX protobuf holds at most 2 GiB


def copy_model_files(model: str | Path, dest: str | Path, proto: Any | None = None) -> Path:
    """Copy an ONNX model and the external data files it refers to (same relative names) to ``dest`` (a path in a
    staging folder), so a tool reading the copy finds its weights; a model with external data that fits in one
    protobuf is saved with its weights inline instead. A missing data file is exit 5; a copy the
    environment refuses is ``OutputWriteError`` (exit 2) naming the file."""
    import onnx

    model, dest = Path(model), Path(dest)
    files = check_external_data(proto if proto is not None else load_onnx(model), model)
    if files and model.stat().st_size + sum(f.stat().st_size for f in files) < INLINE_LIMIT_BYTES:
        # small enough for one protobuf: the copy holds its weights (ONNX Runtime's shape inference and its
        # quantization tools cannot read small external tensors such as a Resize's scales)
        try:
            full = onnx.load(str(model), load_external_data=True)
        except Exception as exc:
            raise InvalidModelError(
                f"cannot read {printable(model)} with its external data ({type(exc).__name__}: "
                f"{printable(str(exc))[:160]}). Check the model and its data files"
            ) from exc
        try:
            onnx.save(full, str(dest))
        except OSError as exc:
            raise write_failed(dest, exc) from exc
        return dest
    pairs = [(model, dest)] + [(f, dest.parent / f.relative_to(model.parent)) for f in files]
    for src, target in pairs:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        except OSError as exc:
            if exc.filename == str(src) and exc.filename2 is None:
                raise InvalidModelError(f"cannot read {printable(src)}: {exc.strerror}. Check the file") from exc
            raise write_failed(target, exc) from exc
    return dest


# Types of the sidecar keys later steps read; anything else in a sidecar is only recorded.
_META_TYPES: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "format": (str,),
    "arch": (str,),
    "num_classes": (int,),
    "class_names": (list,),
    "normalization": (dict, str),
    "input_format": (str,),
    "head": (str,),
    "precision": (str,),
    "opset": (int,),
    "dynamic": (bool,),
    "dynamic_batch": (bool,),
    "export_size": (list,),
    "batch": (int,),
    "inputs": (list,),
    "outputs": (list,),
    "checkpoint": (dict,),
    "calibration": (dict,),
    "quantization": (dict,),
    "provenance": (dict,),
}


def _check_metadata(meta: Any, where: Path) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise InvalidModelError(
            f"metadata in {where} is a JSON {type(meta).__name__}, not an object. Re-export the model"
        )
    for key, types in _META_TYPES.items():
        value = meta.get(key)
        if value is None:
            continue
        ok = isinstance(value, types) and not (bool not in types and isinstance(value, bool))
        if not ok:
            raise InvalidModelError(
                f"metadata in {where}: {key!r} is {type(value).__name__} {str(value)[:40]!r}, expected "
                f"{' or '.join(t.__name__ for t in types)}. Re-export the model"
            )
    export = meta.get("export_size")
    if export is not None and (
        len(export) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in export)
    ):
        raise InvalidModelError(f"metadata in {where}: export_size {export!r} is not [H, W]. Re-export the model")
    if meta.get("input_format") is not None and meta["input_format"] not in INPUT_FORMATS:
        raise InvalidModelError(
            f"metadata in {where}: unknown input_format {meta['input_format']!r}. Re-export the model"
        )
    for key in ("num_classes", "batch"):
        if meta.get(key) is not None and meta[key] < 1:
            raise InvalidModelError(f"metadata in {where}: {key} {meta[key]} is not positive. Re-export")
    version = meta.get("schema_version")
    if version is not None and version not in SUPPORTED_SCHEMA_VERSIONS:
        raise IncompatibleArtifactError(
            f"metadata in {where} has schema version {version}; this rfdeploy reads "
            f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}. Upgrade refinenet-deploy "
            "or re-export the model"
        )
    return meta


def _metadata_from(artifact: Path, model: Any | None = None) -> dict[str, Any]:
    if not artifact.is_dir() and (artifact.exists() or artifact.is_symlink()):
        regular_file(artifact, "model file")  # a FIFO would block every later open() of it
    side = sidecar_path(artifact)
    meta: Any = None
    where = artifact
    if side.exists() or side.is_symlink():
        try:
            meta = read_json(side)
        except ValueError as exc:  # bad JSON, bad UTF-8, nested too deep or too large
            raise InvalidModelError(
                f"metadata sidecar is not valid JSON ({exc}): {printable(side)}. Re-export the model"
            ) from exc
        except InputReadError:
            raise
        except OSError as exc:
            raise InvalidModelError(f"cannot read the metadata sidecar {printable(side)}: {exc.strerror}") from exc
        where = side
    elif artifact.suffix == ".onnx" and artifact.is_file():
        for prop in (model if model is not None else load_onnx(artifact)).metadata_props:
            if prop.key == ONNX_METADATA_KEY:
                try:
                    meta = loads_json(prop.value)
                except ValueError as exc:
                    raise InvalidModelError(f"{artifact.name} has unreadable metadata. Re-export the model") from exc
    if meta is None:
        return {}
    return _check_metadata(meta, where)


def read_metadata(artifact: str | Path) -> dict[str, Any]:
    """The sidecar if present, else the ONNX ``metadata_props`` entry; an empty dict if neither exists.

    A sidecar that is not a JSON object, or whose known keys have the wrong types, and an ONNX that cannot be
    parsed are refused as corrupt (InvalidModelError, exit 5); a schema version this tool does not know is a
    mismatch (IncompatibleArtifactError, exit 7)."""
    return _metadata_from(Path(artifact))


def onnx_precision(model: Any) -> Precision:
    """Precision from an ONNX graph itself: Q/DQ nodes -> int8, FP16 initializers -> fp16, else fp32."""
    import onnx

    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        return Precision.INT8
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        return Precision.FP16
    return Precision.FP32


def artifact_precision(artifact: str | Path, meta: Mapping[str, Any] | None = None) -> Precision:
    """What an artifact is: read from the graph for ONNX (never trusted from a sidecar), else the sidecar."""
    artifact = Path(artifact)
    if artifact.suffix == ".onnx" and artifact.is_file():
        return onnx_precision(_load_onnx(artifact))
    value = (meta if meta is not None else read_metadata(artifact)).get("precision") or "fp32"
    try:
        return Precision(value)
    except ValueError:
        raise IncompatibleArtifactError(
            f"{artifact.name}: unknown precision {value!r} in its metadata. Rebuild the artifact"
        ) from None


# --------------------------------------------------------------------------------------------- input policy
def parse_size(text: str, what: str = "--input-size") -> tuple[int, int]:
    """``'512x384'`` or ``'512,384'`` (H x W) or ``'512'`` (square) -> (512, 384); UsageError (exit 2) naming the
    option otherwise.

    Bounds: each side ``MIN_SIDE``..``MAX_SIDE`` (16..8192) pixels and at most ``MAX_PIXELS`` (4096x4096) in all,
    so a typo such as ``100000x100000`` is refused before anything allocates memory."""
    parts = str(text).lower().replace("*", "x").replace(",", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"{what}: expected HxW such as 512x512, got {text!r}") from None
    if len(dims) == 1:
        dims *= 2
    if len(dims) != 2:
        raise UsageError(f"{what}: expected HxW such as 512x512, got {text!r}")
    if not all(MIN_SIDE <= d <= MAX_SIDE for d in dims):
        raise UsageError(f"{what}: each side must be {MIN_SIDE}..{MAX_SIDE} pixels, got {text!r}")
    if dims[0] * dims[1] > MAX_PIXELS:
        raise UsageError(
            f"{what}: {dims[0]}x{dims[1]} is {dims[0] * dims[1] / 1e6:.0f} MP; at most {MAX_PIXELS / 1e6:.1f} MP "
            "(e.g. 4096x4096) is supported"
        )
    return dims[0], dims[1]


def spatial_size(shape: Sequence[int | None], input_format: str) -> tuple[int, int] | None:
    """(H, W) of an input shape when both are static, for NCHW float or NHWC uint8 layouts."""
    hw = shape[1:3] if input_format == "nhwc-uint8" else shape[2:4]
    return (int(hw[0]), int(hw[1])) if all(isinstance(d, int) and d > 0 for d in hw) else None


def checkpoint_input_size(metadata: Mapping[str, Any]) -> tuple[int, int] | None:
    """The input size a checkpoint's metadata records (``input_size`` or ``export_size``: [H, W] or ``'HxW'``),
    within ``MIN_SIDE..MAX_SIDE``; None when it records none or none that is usable."""
    for key in ("input_size", "export_size"):
        value = metadata.get(key)
        if isinstance(value, str):
            parts = value.lower().split("x")
            value = parts if len(parts) == 2 else None
        if isinstance(value, (list, tuple)) and len(value) == 2 and not any(isinstance(v, bool) for v in value):
            try:
                h, w = int(value[0]), int(value[1])
            except (TypeError, ValueError):
                continue
            if MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE:
                return h, w
    return None


def resolve_input_size(
    requested: Sequence[int] | None = None,
    *,
    static: Sequence[int] | None = None,
    export_size: Sequence[int] | None = None,
    checkpoint_size: Sequence[int] | None = None,
    model_default: Sequence[int] | None = None,
    option: str = "--input-size",
) -> tuple[tuple[int, int], str]:
    """The one input-size rule: ``(H, W)`` and where it came from, never a silent default.

    Precedence: ``requested`` (the explicit argument, ``option``) > ``static`` (the artifact's static input shape;
    a different ``requested`` is a UsageError) > ``export_size`` (the artifact's metadata) > ``checkpoint_size``
    (a checkpoint's metadata, ``checkpoint_input_size``) > ``model_default`` (only where the caller states one: the
    registered architecture's size, for export). Nothing known: UsageError (exit 2) naming ``option``."""
    req = _hw(requested)
    fixed = _hw(static)
    if fixed and req and req != fixed:
        raise UsageError(
            f"this artifact has a static input size {fixed[0]}x{fixed[1]}; drop {option} or pass "
            f"{option} {fixed[0]}x{fixed[1]}"
        )
    for size, source in (
        (req, option),
        (fixed, "the artifact's static input shape"),
        (_hw(export_size), "the artifact's metadata (export size)"),
        (_hw(checkpoint_size), "the checkpoint's metadata"),
        (_hw(model_default), "the architecture's default"),
    ):
        if size:
            return size, source
    raise UsageError(
        f"no input size: the model's input size is dynamic and its metadata records none. Pass {option} HxW "
        f"(e.g. {option} 512x512)"
    )


def _hw(size: Sequence[int] | None) -> tuple[int, int] | None:
    return (int(size[0]), int(size[1])) if size else None


@dataclass(frozen=True)
class InputPolicy:
    """How an image becomes an artifact's input, read from its metadata: layout, normalisation, static size."""

    input_name: str = "input"
    input_format: str = "nchw-float"  # or nhwc-uint8 (the graph normalises)
    static_size: tuple[int, int] | None = None  # (H, W) for static-shape artifacts
    batch: int = 1
    head: str = "logits"  # logits | upsample | argmax
    normalization: Normalization = field(default_factory=Normalization.imagenet)
    export_size: tuple[int, int] | None = None

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], default: Normalization | None = None) -> InputPolicy:
        norm = meta.get("normalization")
        if norm is None:
            normalization = default or Normalization.imagenet()
        else:
            try:
                normalization = Normalization.parse(norm)
            except DataError as exc:
                raise InvalidModelError(f"metadata: {exc.message}. Re-export the model") from None
        input_format = meta.get("input_format") or "nchw-float"
        if input_format not in INPUT_FORMATS:
            raise IncompatibleArtifactError(
                f"unknown input_format {input_format!r} in the metadata. Re-export the model"
            )
        export = meta.get("export_size")
        return cls(
            input_format=input_format,
            head=meta.get("head") or "logits",
            normalization=normalization,
            export_size=(int(export[0]), int(export[1])) if export else None,
        )

    def for_input(self, name: str, shape: Sequence[int | None]) -> InputPolicy:
        """This policy bound to a runner's input spec: its name, static size and batch."""
        batch = shape[0] if shape and isinstance(shape[0], int) else 1
        return replace(self, input_name=name, static_size=spatial_size(shape, self.input_format), batch=batch)

    def size_for(self, requested: tuple[int, int] | None = None, option: str = "--input-size") -> tuple[int, int]:
        """The input size to run at (``resolve_input_size``): ``requested``, else the static size, else the export
        size; a UsageError naming ``option`` when none is known (never a silent default)."""
        return resolve_input_size(requested, static=self.static_size, export_size=self.export_size, option=option)[0]

    def to_input(self, image: np.ndarray, batch: int | None = None) -> np.ndarray:
        """One HxWx3 uint8 RGB image -> the model input (normalised NCHW float, or NHWC uint8), batched."""
        x = image[None] if self.input_format == "nhwc-uint8" else preprocess(image, self.normalization)[None]
        n = batch or self.batch
        return np.ascontiguousarray(np.repeat(x, n, axis=0) if n > 1 else x)


# --------------------------------------------------------------------------------------------- staged folders
@contextmanager
def staged_dir(output: str | Path, step: str) -> Iterator[Path]:
    """A path (not yet created) inside a hidden folder beside ``output``, to fill as a folder; on success it
    replaces ``output`` whole, so readers never see a half-written folder. Removed, with any parent folders made
    for it, if the block fails."""
    output = Path(output)
    created = ensure_parent(output)
    clean_stale(output.parent)  # folders left by a killed run (their .owner pid is gone)
    tmp = _owned_tempdir(output.parent, f".{output.name}.{step}-")
    done = False
    try:
        try:
            yield tmp / output.name
        except (OSError, OutputWriteError) as exc:
            reported = _staging_write_error(exc, tmp, output)
            if reported is exc:
                raise
            raise reported from exc
        staged = tmp / output.name
        if not staged.is_dir():
            raise FileNotFoundError(f"nothing was written to {staged}")
        try:
            if output.exists():
                os.replace(output, tmp / ".previous")
            try:
                os.replace(staged, output)
            except OSError:
                if (tmp / ".previous").exists():
                    os.replace(tmp / ".previous", output)
                raise
        except OSError as exc:
            raise write_failed(output, exc) from exc
        done = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            remove_created(created)
