"""The bundle on disk: its lock, the record of finished steps, and content digests.

A step is keyed by the digests of its inputs and its settings. It is skipped when the key is the one recorded
and its outputs still hash to what was recorded; otherwise it runs again. The record is written atomically after
each step, so an interrupted run resumes at the step it was in. Paths in the record are relative to the bundle,
so the bundle can be copied to another machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...artifacts import sha256_file, utc_now, write_json_atomic
from ...errors import InputReadError, UsageError, printable, read_json, write_failed

STATE_DIR = ".pipeline"
STATE_FILE = "state.json"
LOCK_FILE = "lock"
STATE_SCHEMA = 1


# --------------------------------------------------------------------------------------------- digests
def digest_path(path: Path) -> str | None:
    """SHA-256 of a file, or of a folder's sorted (relative path, file digest) list; None when it is missing."""
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            h.update(f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\n".encode())
        return h.hexdigest()
    return None


def step_key(step_id: str, settings: Mapping[str, Any], input_digests: Mapping[str, str]) -> str:
    blob = json.dumps({"step": step_id, "settings": settings, "inputs": input_digests}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------------------------- lock
LOCK_GRACE_S = 10.0  # an unreadable lock younger than this may be one another pipeline is writing right now
LOCK_MAX_BYTES = 4096


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text().strip())
    except (OSError, ValueError):
        return 1 << 22  # Linux's upper bound


class BundleLock:
    """An exclusive lock file in the bundle: a second pipeline on the same bundle is refused (exit 2). A lock left
    by a process that no longer exists on this host is taken over, and so is a lock that holds no valid record
    (junk, a pid that is not a number or beyond the platform's range, not a regular file) once it is older than
    ``LOCK_GRACE_S``; ``stale_taken_over`` says what was taken over (the caller warns)."""

    def __init__(self, bundle: Path) -> None:
        self.path = bundle / STATE_DIR / LOCK_FILE
        self.stale_taken_over: dict[str, Any] | None = None

    def acquire(self) -> BundleLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_failed(self.path.parent, exc) from exc
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": utc_now()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder, junk = self._read()
                stale = junk is not None and self._age_s() >= LOCK_GRACE_S
                if holder and holder.get("host") == record["host"] and not _pid_alive(holder["pid"]):
                    stale, junk = True, None
                if stale:
                    self._take_over(holder if junk is None else {"pid": None, "unreadable": junk})
                    continue
                if junk is not None:
                    raise UsageError(
                        f"the pipeline lock {printable(self.path)} is unreadable ({junk}) and was written "
                        f"{self._age_s():.0f} s ago: another pipeline may be starting on this bundle",
                        hint=f"wait and run again; if no pipeline is running, delete {printable(self.path)}",
                    ) from None
                who = f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}"
                raise UsageError(
                    f"another pipeline is running on {printable(self.path.parent.parent)} ({printable(who)})",
                    hint=f"wait for it to finish; if it is gone, delete {printable(self.path)}",
                ) from None
            except OSError as exc:
                raise write_failed(self.path, exc) from exc
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump(record, fh)
            except OSError as exc:
                self.path.unlink(missing_ok=True)
                raise write_failed(self.path, exc) from exc
            return self
        raise UsageError(f"cannot take the lock {printable(self.path)}; delete it if no pipeline is running")

    def _take_over(self, holder: dict[str, Any]) -> None:
        self.stale_taken_over = holder
        try:
            if self.path.is_dir() and not self.path.is_symlink():
                self.path.rmdir()
            else:
                self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot remove the stale pipeline lock {printable(self.path)} ({exc.strerror}). Delete it by hand"
            ) from exc

    def _age_s(self) -> float:
        try:
            return time.time() - self.path.lstat().st_mtime
        except OSError:
            return LOCK_GRACE_S

    def _read(self) -> tuple[dict[str, Any] | None, str | None]:
        """(the lock's record, None), or (None, why it holds no valid record)."""
        try:
            data = read_json(self.path, max_depth=4, max_bytes=LOCK_MAX_BYTES)
        except FileNotFoundError:
            return None, "gone"
        except InputReadError as exc:
            return None, exc.message
        except (OSError, ValueError) as exc:
            return None, f"not a lock record: {type(exc).__name__}"
        pid = data.get("pid") if isinstance(data, dict) else None
        if isinstance(pid, bool) or not isinstance(pid, int):
            return None, f"pid {printable(repr(pid))[:40]} is not a number"
        if not 1 <= pid <= _pid_max():
            return None, f"pid {pid} is outside this platform's range 1..{_pid_max()}"
        return data, None

    def _holder(self) -> dict[str, Any] | None:
        return self._read()[0]

    def release(self) -> None:
        holder = self._holder()
        if holder is None or holder.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> BundleLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------------------------- step record
@dataclass
class StepRecord:
    key: str
    outputs: dict[str, str]  # relative path -> sha256
    finished: str
    how: str = "ran"  # ran | imported (a result file put into the bundle by hand or by another machine)
    info: dict[str, Any] = field(default_factory=dict)


class BundleState:
    """``.pipeline/state.json``: what each finished step was keyed by and what it wrote."""

    def __init__(self, bundle: Path) -> None:
        self.bundle = bundle
        self.path = bundle / STATE_DIR / STATE_FILE
        self.steps: dict[str, StepRecord] = {}
        if self.path.is_file():
            try:
                raw = read_json(self.path)
                steps = raw.get("steps", {}) if isinstance(raw, dict) else {}
                self.steps = {k: StepRecord(**v) for k, v in steps.items()}
            except (OSError, ValueError, TypeError, AttributeError, InputReadError):
                self.steps = {}  # an unreadable record: every step runs again

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.bundle)).as_posix()

    def is_current(self, step_id: str, key: str | None, outputs: Iterable[Path]) -> bool:
        """True when the step finished with this key (or its inputs are not on this machine: key None) and its
        outputs are still what it wrote."""
        rec = self.steps.get(step_id)
        if rec is None or (key is not None and rec.key != key):
            return False
        outputs = list(outputs)
        if {self.rel(p) for p in outputs} != set(rec.outputs):
            return False
        return all(digest_path(p) == rec.outputs[self.rel(p)] for p in outputs)

    def record(
        self, step_id: str, key: str, outputs: Iterable[Path], *, how: str = "ran", info: dict | None = None
    ) -> None:
        self.steps[step_id] = StepRecord(
            key=key,
            outputs={self.rel(p): digest_path(p) or "" for p in outputs},
            finished=utc_now(),
            how=how,
            info=info or {},
        )
        self.save()

    def forget(self, step_id: str) -> None:
        if self.steps.pop(step_id, None) is not None:
            self.save()

    def save(self) -> None:
        data = {"schema_version": STATE_SCHEMA, "steps": {k: vars(v) for k, v in sorted(self.steps.items())}}
        write_json_atomic(self.path, data)
