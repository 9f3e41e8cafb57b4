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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...artifacts import sha256_file, utc_now, write_json_atomic
from ...errors import UsageError

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
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BundleLock:
    """An exclusive lock file in the bundle: a second pipeline on the same bundle is refused (exit 2). A lock left
    by a process that no longer exists on this host is taken over."""

    def __init__(self, bundle: Path) -> None:
        self.path = bundle / STATE_DIR / LOCK_FILE
        self.stale_taken_over: dict[str, Any] | None = None

    def acquire(self) -> BundleLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": utc_now()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder and holder.get("host") == record["host"] and not _pid_alive(int(holder.get("pid", -1))):
                    self.stale_taken_over = holder
                    self.path.unlink(missing_ok=True)
                    continue
                who = (
                    f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}" if holder else ""
                )
                raise UsageError(
                    f"another pipeline is running on {self.path.parent.parent} ({who or 'unknown holder'})",
                    hint=f"wait for it to finish; if it is gone, delete {self.path}",
                ) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh)
            return self
        raise UsageError(f"cannot take the lock {self.path}; delete it if no pipeline is running")

    def _holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) and "pid" in data else None
        except (OSError, ValueError):
            return None

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
                raw = json.loads(self.path.read_text())
                steps = raw.get("steps", {}) if isinstance(raw, dict) else {}
                self.steps = {k: StepRecord(**v) for k, v in steps.items()}
            except (OSError, ValueError, TypeError):
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
