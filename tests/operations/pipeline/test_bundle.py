"""The bundle's lock and its record of finished steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from refinenet_deploy.errors import UsageError
from refinenet_deploy.operations.pipeline.bundle import BundleLock, BundleState, digest_path, step_key


def test_second_pipeline_on_a_bundle_is_refused(tmp_path: Path) -> None:
    with BundleLock(tmp_path):
        with pytest.raises(UsageError) as exc:
            BundleLock(tmp_path).acquire()
        assert exc.value.exit_code == 2
        assert "another pipeline is running" in exc.value.message
        assert str(os.getpid()) in exc.value.message
    assert not (tmp_path / ".pipeline" / "lock").exists()
    with BundleLock(tmp_path):  # free again
        pass


def test_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    lock = tmp_path / ".pipeline" / "lock"
    lock.parent.mkdir()
    import socket

    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "earlier"}))
    with BundleLock(tmp_path) as held:
        assert held.stale_taken_over and held.stale_taken_over["pid"] == pid
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_lock_held_on_another_host_is_not_taken(tmp_path: Path) -> None:
    lock = tmp_path / ".pipeline" / "lock"
    lock.parent.mkdir()
    lock.write_text(json.dumps({"pid": 1, "host": "some-other-machine", "started": "earlier"}))
    with pytest.raises(UsageError, match="some-other-machine"):
        BundleLock(tmp_path).acquire()


def test_state_skips_only_unchanged_steps(tmp_path: Path) -> None:
    out = tmp_path / "models" / "m.onnx"
    out.parent.mkdir()
    out.write_bytes(b"model")
    state = BundleState(tmp_path)
    key = step_key("export", {"size": 128}, {"ckpt": "abc"})
    state.record("export", key, [out])
    again = BundleState(tmp_path)  # read back from disk
    assert again.is_current("export", key, [out])
    assert not again.is_current("export", step_key("export", {"size": 256}, {"ckpt": "abc"}), [out])
    assert not again.is_current("export", step_key("export", {"size": 128}, {"ckpt": "abd"}), [out])
    assert again.is_current("export", None, [out])  # inputs not on this machine: the outputs are checked
    out.write_bytes(b"tampered")
    assert not again.is_current("export", key, [out])
    assert not again.is_current("export", None, [out])
    out.unlink()
    assert not again.is_current("export", key, [out])
    rec = json.loads((tmp_path / ".pipeline" / "state.json").read_text())
    assert list(rec["steps"]["export"]["outputs"]) == ["models/m.onnx"]  # relative: the bundle can move


def test_folder_digest_follows_content(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"1")
    d1 = digest_path(tmp_path / "a")
    (tmp_path / "a" / ".hidden").write_bytes(b"ignored")
    assert digest_path(tmp_path / "a") == d1
    (tmp_path / "a" / "x.png").write_bytes(b"2")
    assert digest_path(tmp_path / "a") != d1
    assert digest_path(tmp_path / "missing") is None
