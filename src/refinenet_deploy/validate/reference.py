"""A saved PyTorch reference for parity: the reference side computed once, compared with artifacts anywhere.

``rfdeploy parity CKPT [ARTIFACT] --data DIR --save-reference REF.npz`` stores, per image, the class map the
PyTorch model predicts (after exactly the post-processing parity applies: static-size resize, test-time
augmentation, bilinear upsampling to the label size, argmax) and, where asked, the raw scale-1 logits (which the
FP32 logits gate needs). ``rfdeploy parity REF.npz ARTIFACT --data DIR`` then compares an artifact against it on a
machine without PyTorch.

Format: a ``.npz`` (a zip of ``.npy`` arrays, read with ``allow_pickle=False``; nothing is ever unpickled) with
one ``manifest.json`` member: the checkpoint's SHA-256, the model (arch, classes, normalisation), the settings
(scales, flip, input size, input format, head, normalisation), every image and label file with its SHA-256, the
tool version and a ``digest`` over all of that, which is also the key of the automatic reference cache. The file
is written atomically (``artifacts.write_atomic``). This module imports neither PyTorch nor a backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..artifacts import TMP_SUFFIX, clean_stale, ensure_parent, remove_created, sha256_file, utc_now, write_atomic
from ..data.datasets import Sample
from ..errors import DataError, IncompatibleArtifactError, loads_json, regular_file, write_failed

REFERENCE_SCHEMA = "refinenet-deploy/parity-reference"
REFERENCE_SCHEMA_VERSION = 1
REFERENCE_SUFFIX = ".npz"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ReferenceSettings:
    """What decides the reference's predictions besides the checkpoint and the data.

    ``normalization`` is the mean/std dict used, or ``"checkpoint"`` in a cache key (the checkpoint's own, fixed
    by its SHA-256), so that a cached reference is found before PyTorch is imported."""

    scales: tuple[float, ...]
    flip: bool
    static_size: tuple[int, int] | None
    input_format: str
    head: str
    normalization: Any

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scales"] = [float(s) for s in self.scales]
        d["static_size"] = list(self.static_size) if self.static_size else None
        return d


def is_reference(path: str | Path) -> bool:
    """True for a saved reference (``.npz``) rather than a checkpoint."""
    return Path(path).suffix.lower() == REFERENCE_SUFFIX


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/refinenet-deploy/parity-references`` (``~/.cache/...`` when the variable is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "refinenet-deploy" / "parity-references"


def cache_entry(cache_dir: str | Path, digest: str) -> Path:
    return Path(cache_dir) / f"{digest}{REFERENCE_SUFFIX}"


# --------------------------------------------------------------------------------------------- fingerprints
def fingerprint_samples(samples: Sequence[Sample], root: str | Path) -> list[dict[str, Any]]:
    """Each sample's name, image and label paths (relative to the dataset root) and their SHA-256, in dataset order."""
    root = Path(root)

    def rel(p: Path | None) -> str | None:
        if p is None:
            return None
        try:
            return Path(p).relative_to(root).as_posix()
        except ValueError:
            return Path(p).name

    return [
        {
            "name": s.name,
            "image": rel(s.image_path),
            "image_sha256": sha256_file(s.image_path),
            "label": rel(s.label_path),
            "label_sha256": sha256_file(s.label_path) if s.label_path is not None else None,
        }
        for s in samples
    ]


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def data_digest(files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Digests of the sorted image list and of the labels (``None`` when there are none)."""
    images = sorted((f["image"], f["image_sha256"]) for f in files)
    labels = sorted((f["label"], f["label_sha256"]) for f in files if f["label"] is not None)
    return {"count": len(files), "images_sha256": _sha(images), "labels_sha256": _sha(labels) if labels else None}


def reference_digest(
    checkpoint_sha256: str, files: Sequence[Mapping[str, Any]], settings: ReferenceSettings, versions: Mapping[str, Any]
) -> str:
    """The key of a reference: checkpoint, data (every file's bytes, in order), settings, tool and torch versions."""
    return _sha(
        {
            "schema_version": REFERENCE_SCHEMA_VERSION,
            "checkpoint_sha256": checkpoint_sha256,
            "files": [[f["name"], f["image_sha256"], f["label_sha256"]] for f in files],
            "settings": settings.to_dict(),
            "versions": dict(versions),
        }
    )


# --------------------------------------------------------------------------------------------- writing
class ReferenceWriter:
    """Streams predictions into a staging zip beside ``output``; ``finish`` writes the manifest and puts the file
    in place atomically; ``abort`` removes the staging file. Memory does not grow with the dataset."""

    def __init__(self, output: str | Path, manifest: Mapping[str, Any], *, with_logits: bool) -> None:
        self.output = Path(output)
        self.manifest = dict(manifest)
        self.with_logits = with_logits
        self.images: list[dict[str, Any]] = []
        self._created = ensure_parent(self.output)
        clean_stale(self.output.parent, names=[self.output.name])  # debris of a killed writer: its pid is gone
        # ``.NAME.PID.rfdeploy.tmp``: the form clean_stale recognises, so a SIGKILL leaves nothing for long
        self._staging = self.output.with_name(f".{self.output.name}.staging.{os.getpid()}{TMP_SUFFIX}")
        try:
            self._staging.unlink(missing_ok=True)
            self._zip = zipfile.ZipFile(self._staging, "w", allowZip64=True)
        except OSError as exc:
            remove_created(self._created)
            raise write_failed(self.output, exc) from exc

    def _put(self, key: str, array: np.ndarray, compress: bool) -> None:
        info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        try:
            with self._zip.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
        except OSError as exc:  # no space, a file-size limit, a quota: exit 2 naming the reference
            raise write_failed(self.output, exc) from exc

    def add(self, name: str, class_map: np.ndarray, raw: np.ndarray | None) -> None:
        i = len(self.images)
        dtype = np.uint8 if int(class_map.max(initial=0)) < 256 else np.int32
        self._put(f"map_{i:05d}", class_map.astype(dtype), compress=True)
        entry: dict[str, Any] = {"name": name, "map": f"map_{i:05d}", "shape": list(class_map.shape), "logits": None}
        if self.with_logits and raw is not None:
            self._put(f"logits_{i:05d}", np.asarray(raw, dtype=np.float32), compress=False)
            entry["logits"] = f"logits_{i:05d}"
        self.images.append(entry)

    def finish(self, **extra: Any) -> dict[str, Any]:
        manifest = {
            **self.manifest,
            **extra,
            "has_logits": bool(self.images) and all(e["logits"] for e in self.images),
            "images": self.images,
        }
        try:
            info = zipfile.ZipInfo(MANIFEST, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            try:
                self._zip.writestr(info, json.dumps(manifest, indent=1))
                self._zip.close()
            except OSError as exc:
                raise write_failed(self.output, exc) from exc
            write_atomic(self.output, lambda tmp: shutil.copyfile(self._staging, tmp))
        except BaseException:
            self.abort()
            raise
        self._staging.unlink(missing_ok=True)
        return manifest

    def abort(self) -> None:
        try:
            self._zip.close()
        except OSError:
            pass  # the staging file is removed below whatever state the failed write left it in
        finally:
            self._staging.unlink(missing_ok=True)
            if not self.output.exists():
                remove_created(self._created)


def new_manifest(
    *,
    checkpoint: str | Path,
    checkpoint_sha256: str,
    model: Mapping[str, Any],
    settings: ReferenceSettings,
    key_settings: ReferenceSettings,
    files: Sequence[Mapping[str, Any]],
    data: str | Path,
    split: str | None,
    versions: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest of a new reference (``ReferenceWriter.finish`` adds the per-image entries)."""
    return {
        "schema": REFERENCE_SCHEMA,
        "schema_version": REFERENCE_SCHEMA_VERSION,
        "tool_version": __version__,
        "created": utc_now(),
        "digest": reference_digest(checkpoint_sha256, files, key_settings, versions),
        "checkpoint": {"file": Path(checkpoint).name, "sha256": checkpoint_sha256},
        "model": dict(model),
        "settings": settings.to_dict(),
        "data": {"root": str(data), "split": split, **data_digest(files), "files": list(files)},
        "versions": dict(versions),
    }


# --------------------------------------------------------------------------------------------- reading
def _check_manifest(m: dict[str, Any], path: Path) -> None:
    """Refuse (DataError, exit 5, naming the field) a manifest without the fields and types a reference has."""

    def bad(field: str, want: str) -> DataError:
        return DataError(f"{path}: damaged reference manifest: {field} must be {want}. Save the reference again")

    model, settings, data = m.get("model"), m.get("settings"), m.get("data")
    if not isinstance(model, dict):
        raise bad("model", "an object")
    if not isinstance(model.get("arch"), str):
        raise bad("model.arch", "a string")
    n = model.get("num_classes")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 65535:
        raise bad("model.num_classes", "an integer 1..65535")
    if not isinstance(model.get("normalization"), dict):
        raise bad("model.normalization", "an object")
    if not isinstance(settings, dict):
        raise bad("settings", "an object")
    scales = settings.get("scales")
    if (
        not isinstance(scales, list)
        or not scales
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0.25 <= x <= 4 for x in scales)
    ):
        raise bad("settings.scales", "a list of numbers 0.25..4")
    if not isinstance(settings.get("flip"), bool):
        raise bad("settings.flip", "true or false")
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise bad("data.files", "a list")
    if not all(
        isinstance(f, dict)
        and isinstance(f.get("name"), str)
        and isinstance(f.get("image"), str)
        and isinstance(f.get("image_sha256"), str)
        and isinstance(f.get("label_sha256"), (str, type(None)))
        for f in data["files"]
    ):
        raise bad("data.files[]", "objects with name, image, image_sha256 and label_sha256")
    images = m.get("images")
    if not isinstance(images, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("map"), str) for e in images
    ):
        raise bad("images", "a list of objects with name and map")
    if not isinstance(m.get("digest"), str):
        raise bad("digest", "a string")


# Every way reading a damaged .npz (zip of .npy) can fail: a bad deflate stream (zlib.error), a CRC mismatch
# (BadZipFile), a truncated member (EOFError), a bad .npy header (ValueError), an unknown compression method
# (NotImplementedError), sizes that do not fit (OverflowError, MemoryError), a missing member (KeyError).
_DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    KeyError,
    ValueError,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    OverflowError,
    MemoryError,
    struct.error,
)


class SavedReference:
    """A saved reference opened for reading; ``prediction(i, name)`` gives the i-th image's class map and logits."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"reference not found: {self.path}. Pass a file saved with --save-reference")
        regular_file(self.path, "reference")
        try:
            with zipfile.ZipFile(self.path) as zf:
                manifest = loads_json(zf.read(MANIFEST))  # bounded: a hostile manifest is refused, not recursed
            self._npz = np.load(self.path, allow_pickle=False)
        except _DAMAGED as exc:
            raise DataError(
                f"{self.path} is not a parity reference ({type(exc).__name__}). "
                "Save one with: rfdeploy parity CKPT --data DIR --save-reference REF.npz"
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("schema") != REFERENCE_SCHEMA:
            raise DataError(f"{self.path} is not a parity reference (no {REFERENCE_SCHEMA} manifest)")
        if manifest.get("schema_version") != REFERENCE_SCHEMA_VERSION:
            raise IncompatibleArtifactError(
                f"{self.path} has reference schema version {manifest.get('schema_version')}; this rfdeploy reads "
                f"{REFERENCE_SCHEMA_VERSION}. Save the reference again with this version"
            )
        _check_manifest(manifest, self.path)
        self.manifest: dict[str, Any] = manifest
        self.images: list[dict[str, Any]] = list(manifest.get("images") or [])
        self.has_logits = bool(manifest.get("has_logits"))

    @property
    def digest(self) -> str:
        return str(self.manifest.get("digest"))

    @property
    def model(self) -> dict[str, Any]:
        return dict(self.manifest.get("model") or {})

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.manifest.get("settings") or {})

    @property
    def files(self) -> list[dict[str, Any]]:
        return list((self.manifest.get("data") or {}).get("files") or [])

    def verify(self) -> None:
        """Read every member once and check its CRC (DataError, exit 5, naming the first damaged one): how a
        cached reference is checked before it is trusted."""
        try:
            with zipfile.ZipFile(self.path) as zf:
                bad = zf.testzip()
        except _DAMAGED as exc:
            raise DataError(f"{self.path}: damaged ({type(exc).__name__}: {exc})") from exc
        if bad is not None:
            raise DataError(f"{self.path}: array {bad} is damaged (CRC mismatch)")

    def _array(self, key: str) -> np.ndarray:
        try:
            return self._npz[key]
        except _DAMAGED as exc:
            raise DataError(
                f"{self.path}: array {key} is missing or unreadable ({type(exc).__name__}). Save the reference again"
            ) from exc

    def prediction(self, index: int, name: str) -> tuple[np.ndarray, np.ndarray | None]:
        if index >= len(self.images) or self.images[index]["name"] != name:
            raise IncompatibleArtifactError(
                f"image {index} ({name}) is not in the reference {self.path.name}. Save the reference from this data"
            )
        entry = self.images[index]
        class_map = self._array(entry["map"])
        n = self.model["num_classes"]
        if (
            class_map.ndim != 2
            or not np.issubdtype(class_map.dtype, np.integer)
            or (class_map.size and (class_map.min() < 0 or class_map.max() >= n))
        ):
            raise DataError(f"{self.path}: {entry['map']} is not a class map of {n} classes. Save the reference again")
        logits = self._array(entry["logits"]) if entry.get("logits") else None
        if logits is not None and (logits.dtype != np.float32 or logits.ndim < 3 or logits.shape[-3] != n):
            raise DataError(
                f"{self.path}: {entry['logits']} is not float32 logits of {n} classes. Save the reference again"
            )
        return class_map.astype(np.int64), logits

    def close(self) -> None:
        self._npz.close()

    def __enter__(self) -> SavedReference:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
