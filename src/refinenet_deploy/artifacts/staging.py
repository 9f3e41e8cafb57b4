"""How files reach the disk: atomic writes (temporary file, then rename), staging folders committed all or
nothing with their sidecar, and the removal of temporary files left by a killed run. This module is the only
place that renames files into place."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    WRITE_ERRNOS,
    InputReadError,
    OutputWriteError,
    RefineNetDeployError,
    read_json,
    write_failed,
)
from .paths import companion_paths, ensure_parent, is_inside, remove_created, sha256_file, sidecar_path

log = logging.getLogger(__name__)


@dataclass
class ArtifactResult:
    """What a step that writes an artifact returns: the file, its sidecar and the metadata written there."""

    path: Path
    metadata_path: Path
    metadata: dict[str, Any]


# --------------------------------------------------------------------------------------------- atomic writes
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


# --------------------------------------------------------------------------------------------- staged artifacts
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
