"""Whether a saved PyTorch reference (``validate.reference.SavedReference``) fits this run: the same data files and
bytes, the same settings, the same classes. ``check_reference`` refuses one that does not (exit 7), naming what
differs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import IncompatibleArtifactError
from .reference import ReferenceSettings, SavedReference


def _first(items: Sequence[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def reference_differences(
    ref: SavedReference,
    *,
    files: Sequence[Mapping[str, Any]],
    settings: ReferenceSettings,
    num_classes: int | None,
    all_images: bool,
) -> list[str]:
    """What differs between a saved reference and this run: data files or bytes, settings, classes. Empty when
    compatible. ``all_images``: the run covers the whole dataset, so the image count must match exactly."""
    diffs = []
    saved = ref.settings
    wanted = settings.to_dict()
    for key in ("scales", "flip", "static_size", "input_format", "head", "normalization"):
        if saved.get(key) != wanted.get(key):
            label = {"static_size": "input size", "input_format": "input format"}.get(key, key)
            diffs.append(f"{label}: reference {saved.get(key)}, here {wanted.get(key)}")
    ref_classes = ref.model.get("num_classes")
    if num_classes is not None and ref_classes is not None and ref_classes != num_classes:
        diffs.append(f"classes: reference {ref_classes}, artifact {num_classes}")
    saved_files = ref.files
    if len(files) > len(saved_files) or (all_images and len(files) != len(saved_files)):
        diffs.append(f"images: reference {len(saved_files)}, data {len(files)}")
    saved_by_name = {f["name"]: f for f in saved_files}
    here_names = {f["name"] for f in files}
    missing = [f["name"] for f in files if f["name"] not in saved_by_name]
    extra = [f["name"] for f in saved_files[: len(files)] if f["name"] not in here_names]
    if missing:
        diffs.append(f"images not in the reference: {_first(missing)}")
    if extra:
        diffs.append(f"reference images not in the data: {_first(extra)}")
    changed = [
        f"{f['name']} ({'image' if f['image_sha256'] != saved_by_name[f['name']]['image_sha256'] else 'label'})"
        for f in files
        if f["name"] in saved_by_name
        and (
            f["image_sha256"] != saved_by_name[f["name"]]["image_sha256"]
            or f["label_sha256"] != saved_by_name[f["name"]]["label_sha256"]
        )
    ]
    if changed:
        diffs.append(f"file bytes differ: {_first(changed)}")
    order = [f["name"] for f in files] == [f["name"] for f in saved_files[: len(files)]]
    if not (missing or extra or order):
        diffs.append("images are in another order")
    return diffs


def check_reference(
    ref: SavedReference,
    *,
    files: Sequence[Mapping[str, Any]],
    settings: ReferenceSettings,
    num_classes: int | None,
    all_images: bool,
) -> None:
    """Refuse (``IncompatibleArtifactError``, exit 7) a reference made from other data or settings, naming what
    differs."""
    diffs = reference_differences(ref, files=files, settings=settings, num_classes=num_classes, all_images=all_images)
    if diffs:
        raise IncompatibleArtifactError(
            f"the reference {ref.path.name} was made from other data or settings: " + "; ".join(diffs),
            hint="save a reference for this data and these settings: "
            "rfdeploy parity CKPT [ARTIFACT] --data DIR --save-reference REF.npz",
        )
