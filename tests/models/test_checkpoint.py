"""Checkpoint files as users have them: every wrapper and file format, hostile pickles, mismatches."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from refinenet_deploy.errors import CheckpointError, ModelNotFoundError
from refinenet_deploy.models import create_model, infer_architecture, load_model, read_checkpoint
from refinenet_deploy.models.checkpoint import save_safetensors

from .reference_forward import mbv2_forward
from .test_zoo import randomize


@pytest.fixture(scope="module")
def mbv2() -> torch.nn.Module:
    """A reference-layout LW-MBv2 with random weights and BN statistics (21 classes)."""
    return randomize(create_model("rf_lw_mbv2", num_classes=21), seed=3)


def _legacy_state_dict(model: torch.nn.Module, *, drop_batches: bool = False) -> dict[str, torch.Tensor]:
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    if drop_batches:
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    return sd


def _module_prefixed(sd: dict) -> dict:
    return {f"module.{k}": v for k, v in sd.items()}


WRAPPERS = {
    # name: (file name, builder of the object saved, legacy (non-zip) serialization)
    "flat_2018_pth_tar": ("rf_lwmbv2_voc.pth.tar", lambda sd: sd, True),
    "segmenter_dataparallel": (
        "checkpoint.pth.tar",
        lambda sd: {"segmenter": _module_prefixed(sd), "epoch": 7, "best_val": 0.71},
        False,
    ),
    "model": ("model.pth", lambda sd: {"model": sd}, False),
    "state_dict": ("weights.pt", lambda sd: {"state_dict": sd, "optimizer": {"lr": 0.1}}, False),
    "weights_with_metadata": ("repack.pth", lambda sd: {"weights": sd, "model_metadata": {"classes": 21}}, False),
    "no_num_batches_tracked": ("old.pth", None, False),
}


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_reference_checkpoints_load_and_match_reference_output(wrapper: str, mbv2, tmp_path: Path) -> None:
    fname, build, legacy = WRAPPERS[wrapper]
    sd = _legacy_state_dict(mbv2, drop_batches=wrapper == "no_num_batches_tracked")
    obj = sd if build is None else build(sd)
    path = tmp_path / fname
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)

    loaded = load_model(path, arch="auto")
    assert loaded.arch == "rf_lw_mbv2" and loaded.num_classes == 21
    x = torch.randn(1, 3, 61, 83, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = loaded.model(x)
        reference = mbv2_forward(mbv2.state_dict(), x)
    scale = reference.abs().max().item()
    assert scale > 1e-3  # not two zero tensors
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5 * scale)  # relative: kernels differ by ISA


def test_safetensors_with_metadata_and_fp16_storage(mbv2, tmp_path: Path) -> None:
    path = save_safetensors(
        mbv2.state_dict(),
        tmp_path / "m.safetensors",
        {"arch": "rf_lw_mbv2", "class_names": [f"c{i}" for i in range(21)], "normalization": {"mode": "imagenet"}},
        fp16=True,
    )
    assert path.stat().st_mode & 0o044  # readable by group/others (respects the umask), not safetensors' 0600
    loaded = load_model(path)
    assert loaded.class_names == tuple(f"c{i}" for i in range(21))
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))  # seeded: no order dependence
    with torch.no_grad():
        a, b = loaded.model(x), mbv2(x)
    # fp16 storage: close, not bit-exact (weights rounded to 11 significant bits)
    assert (a - b).abs().max() <= 0.02 * b.abs().max() and (a.argmax(1) == b.argmax(1)).float().mean() > 0.97


def test_plain_safetensors_without_metadata(mbv2, tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in mbv2.state_dict().items()}, str(path))
    assert load_model(path).arch == "rf_lw_mbv2"


class _Exploit:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_hostile_pickle_is_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"state_dict": {"conv1.weight": torch.zeros(1)}, "x": _Exploit(str(marker))}, fh)
    expected = r"refusing to load evil.pth: it references code that unpickling would run \(posix.system"
    with pytest.raises(CheckpointError, match=expected):
        read_checkpoint(path)
    assert not marker.exists()


def test_hostile_torch_save_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned2"
    path = tmp_path / "evil.pth.tar"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": _Exploit(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refusing to load evil.pth.tar: it references code .*posix.system"):
        load_model(path)
    assert not marker.exists()


def test_wrong_architecture_names_closest_and_keys(mbv2, tmp_path: Path) -> None:
    path = tmp_path / "m.pth"
    torch.save(mbv2.state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_model(path, arch="rf_lw50")
    msg = str(info.value)
    assert "does not fit rf_lw50" in msg and "missing" in msg and "unexpected" in msg
    assert "rf_lw_mbv2" in (info.value.hint or "")


def test_class_count_mismatch(mbv2, tmp_path: Path) -> None:
    path = tmp_path / "m.pth"
    torch.save(mbv2.state_dict(), path)
    with pytest.raises(CheckpointError, match="class-count mismatch: m.pth has 21 classes, --num-classes is 19"):
        load_model(path, num_classes=19)


def test_mis_shaped_tensor_is_reported(mbv2, tmp_path: Path) -> None:
    sd = _legacy_state_dict(mbv2)
    sd["conv3.weight"] = torch.zeros(256, 25, 1, 1)
    path = tmp_path / "m.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"mis-shaped \(e.g. conv3.weight \[256, 25, 1, 1\] vs model"):
        load_model(path, arch="rf_lw_mbv2")
    with pytest.raises(CheckpointError, match="closest is rf_lw_mbv2"):
        load_model(path, arch="auto")


def test_missing_key_is_reported(mbv2, tmp_path: Path) -> None:
    sd = _legacy_state_dict(mbv2)
    del sd["crp2.0.3_outvar_dimred.weight"]
    path = tmp_path / "m.pth"
    torch.save({"segmenter": sd}, path)
    with pytest.raises(CheckpointError, match=r"1 missing \(e.g. crp2.0.3_outvar_dimred.weight\)"):
        load_model(path, arch="rf_lw_mbv2")


@pytest.mark.parametrize("content,match", [(b"", "cannot read"), (b"not a checkpoint at all", "cannot read")])
def test_corrupt_files(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(path)


def test_truncated_checkpoint(mbv2, tmp_path: Path) -> None:
    path = tmp_path / "t.pth"
    torch.save(mbv2.state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint t.pth"):
        read_checkpoint(path)


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unsupported checkpoint file type"):
        read_checkpoint(tmp_path / "w.h5")


def test_unknown_model_name() -> None:
    with pytest.raises(ModelNotFoundError, match="unknown model: rf_lw51"):
        create_model("rf_lw51")


@pytest.mark.parametrize("name", ["rf_lw50", "rf_lw101", "rf_lw152", "rf_lw_mbv2", "rf101"])
@pytest.mark.parametrize("num_classes", [21, 7, 60])
def test_architecture_inferred_from_inventory_keys(name: str, num_classes: int, inventory: dict) -> None:
    # Zero-cost tensors with the inventory's shapes (expanded views allocate nothing).
    sd = {}
    for key, shape in inventory[name].items():
        if key.startswith(("clf_conv.", "segm.")):
            shape = [num_classes, *shape[1:]]
        sd[key] = torch.zeros(1).expand(*shape) if shape else torch.tensor(0)
    assert infer_architecture(sd) == name
