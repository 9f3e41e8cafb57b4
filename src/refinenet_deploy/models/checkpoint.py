"""Reading users' checkpoint files safely and mapping them onto our models strictly.

Files come from the reference training code in several wrappings (flat, ``{"segmenter": ...}`` with
``module.`` keys, ``{"model": ...}``, ``{"state_dict": ...}``, ``{"weights": ..., "model_metadata": ...}``)
and in ``.pth``, ``.pth.tar``, ``.pt`` or ``.safetensors`` files. Pickles are only ever read with
``torch.load(weights_only=True)``: a file that needs code to load is refused, never executed.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import pickletools
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..artifacts import sha256_file, write_atomic
from ..errors import CheckpointError, JSONLimitError, loads_json, printable, regular_file

if TYPE_CHECKING:
    from ..data.preprocessing import Normalization

log = logging.getLogger(__name__)

WRAPPER_KEYS = ("segmenter", "model", "state_dict", "weights", "model_state_dict", "net")
PICKLE_SUFFIXES = (".pth", ".pt", ".tar", ".pth.tar", ".ckpt", ".bin")
SAFETENSORS_SUFFIXES = (".safetensors",)
IGNORED_SUFFIX = "num_batches_tracked"


@dataclass
class RawCheckpoint:
    """A flat ``name -> tensor`` mapping plus whatever metadata the file carried."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    wrapper: str = "flat"
    sha256: str = ""


def read_checkpoint(path: str | Path) -> RawCheckpoint:
    """Read a checkpoint file into a flat float state_dict (unwrapped, ``module.`` stripped)."""
    path = Path(path)
    if not path.is_file():
        if path.exists() or path.is_symlink():
            regular_file(path, "checkpoint")  # a FIFO, a device, a dangling link or a loop: said as such
        raise CheckpointError(f"checkpoint not found: {path}. Check the path")
    name = path.name.lower()
    if name.endswith(SAFETENSORS_SUFFIXES):
        tensors, metadata = _read_safetensors(path)
        obj: Any = tensors
    elif name.endswith(PICKLE_SUFFIXES):
        obj = _read_pickle(path)
        metadata = {}
    else:
        raise CheckpointError(f"unsupported checkpoint file type: {path.name}. Use .pth, .pth.tar, .pt or .safetensors")
    state_dict, wrapper, wrapped_meta = unwrap_state_dict(obj, path)
    metadata = {**wrapped_meta, **metadata}
    return RawCheckpoint(path, state_dict, metadata, wrapper, sha256_file(path))


def _read_pickle(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4" noise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        code = [g for g in pickle_globals(path) if not g.startswith(SAFE_GLOBAL_PREFIXES)]
        if code:
            raise CheckpointError(
                f"refusing to load {path.name}: it references code that unpickling would run "
                f"({', '.join(code[:3])}). Re-save it as a plain state_dict or .safetensors from a trusted copy"
            ) from exc
        raise CheckpointError(
            f"cannot read checkpoint {path.name}: the PyTorch loader rejected it as not a plain tensor checkpoint."
            " Check that the file is complete, or re-save it as a state_dict or .safetensors"
        ) from exc
    except MemoryError as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path.name}: it declares more data than fits in memory. The file is corrupt"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - junk bytes make the weights-only unpickler fail in many ways
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"cannot read checkpoint {path.name}: {first}. The file is corrupt or not a PyTorch checkpoint"
        ) from exc


SAFE_GLOBAL_PREFIXES = (
    "torch.",
    "collections.OrderedDict",
    "_codecs.encode",
    "builtins.set",
    "numpy.core.multiarray",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy._core.multiarray",
)


def pickle_globals(path: Path, limit_bytes: int = 16 << 20) -> list[str]:
    """Names of the globals (functions/classes) a pickle would import, found by parsing only (never executing).

    Looks inside a zip-format torch file at ``*/data.pkl``; reads every pickle of the legacy format in turn.
    Returns what it could parse before any junk.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    return []
                with zf.open(name) as member:  # streamed: a zip bomb stops at the limit
                    data = member.read(limit_bytes)
        else:
            with open(path, "rb") as fh:
                data = fh.read(limit_bytes)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, RuntimeError, EOFError, NotImplementedError):
        return []
    found: list[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        strings: list[str] = []
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(str(arg))
                elif op.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # junk after/between pickles: report what was parsed
            break
    return found


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            raw_meta = fh.metadata() or {}
            for key in fh.keys():  # noqa: SIM118 (safe_open is not a dict)
                tensors[key] = fh.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read safetensors file {path.name}: {exc}. The file is corrupt") from exc
    metadata: dict[str, Any] = {}
    for key, value in raw_meta.items():
        try:
            metadata[key] = loads_json(value)
        except JSONLimitError as exc:  # nested too deep or too large: refused, never a RecursionError
            raise CheckpointError(
                f"cannot read safetensors file {printable(path.name)}: metadata {printable(key)!r} is {exc}. "
                "The file is corrupt or hostile; re-save it"
            ) from None
        except (ValueError, TypeError):
            metadata[key] = value
    return tensors, metadata


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def unwrap_state_dict(obj: Any, path: Path | str = "<checkpoint>") -> tuple[dict[str, torch.Tensor], str, dict]:
    """Find the state_dict inside the known wrappers; strip ``module.``; keep side metadata.

    Returns (state_dict, wrapper description, metadata such as ``model_metadata``).
    """
    wrapper = []
    metadata: dict[str, Any] = {}
    for _ in range(4):  # wrappers nest at most a couple of levels in practice
        if not isinstance(obj, dict):
            break
        if isinstance(obj.get("model_metadata"), dict):
            metadata.update(obj["model_metadata"])
        key = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if key is None or _is_tensor_dict(obj) and not any(isinstance(v, dict) for v in obj.values()):
            break
        wrapper.append(key)
        obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"no state_dict found in {Path(path).name}: top level is {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(
            f"no tensors found in {Path(path).name} (keys: {', '.join(list(map(str, obj))[:6])}). "
            f"Expected a state_dict, optionally under one of {', '.join(WRAPPER_KEYS)}"
        )
    skipped = sorted(set(obj) - set(tensors))
    if skipped:
        log.debug("ignoring non-tensor entries in %s: %s", path, skipped[:10])
    stripped = {}
    for k, v in tensors.items():
        while k.startswith("module."):
            k = k[len("module.") :]
        stripped[k] = v
    return stripped, "/".join(wrapper) or "flat", metadata


@dataclass(frozen=True)
class KeyReport:
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # key, expected, found

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 3) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing (e.g. {', '.join(self.missing[:limit])})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected (e.g. {', '.join(self.unexpected[:limit])})")
        if self.mismatched:
            shown = ", ".join(f"{k} {list(f)} vs model {list(e)}" for k, e, f in self.mismatched[:limit])
            parts.append(f"{len(self.mismatched)} mis-shaped (e.g. {shown})")
        return "; ".join(parts)


def compare_keys(expected: dict[str, tuple[int, ...]], found: dict[str, torch.Tensor]) -> KeyReport:
    """Strict comparison, except that a missing ``num_batches_tracked`` is tolerated."""
    missing = tuple(k for k in expected if k not in found and not k.endswith(IGNORED_SUFFIX))
    unexpected = tuple(k for k in found if k not in expected)
    mismatched = tuple(
        (k, tuple(expected[k]), tuple(found[k].shape))
        for k in expected
        if k in found and tuple(found[k].shape) != tuple(expected[k])
    )
    return KeyReport(missing, unexpected, mismatched)


def check_tensor_values(state_dict: dict[str, torch.Tensor], model: torch.nn.Module, name: str) -> None:
    """Refuse (CheckpointError, exit 5, naming the tensor) weights that would load but not compute: an integer or
    boolean tensor where the model has a float parameter/buffer, and NaN or infinite values."""
    own = model.state_dict()
    for key, ref in own.items():
        value = state_dict.get(key)
        if value is None or not ref.is_floating_point():
            continue
        if not value.is_floating_point():
            raise CheckpointError(
                f"checkpoint {name}: tensor {key} is {str(value.dtype).replace('torch.', '')}, the model expects "
                f"floating point weights. The file is damaged or not a checkpoint of this model"
            )
        finite = torch.isfinite(value)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            kind = "NaN" if bool(torch.isnan(value).any()) else "infinite"
            raise CheckpointError(
                f"checkpoint {name}: tensor {key} holds {bad} {kind} value{'s' if bad > 1 else ''}. "
                "The weights are corrupt (diverged training or a damaged file); use an earlier checkpoint"
            )


def check_normalization_metadata(value: Any, name: str) -> Normalization:
    """The ``normalization`` a checkpoint's metadata records (a preset name, ``{"mode": preset}``, or a
    mode/mean/std/scale mapping, ``"mode": "custom"`` included) as a checked ``Normalization``: an unknown mode,
    a missing value, a zero, negative or non-finite std, mean or scale is a CheckpointError (exit 5)."""
    from ..data.preprocessing import Normalization
    from ..errors import DataError

    try:
        norm = Normalization.parse(value)
    except DataError as exc:
        raise CheckpointError(f"checkpoint {name}: metadata {exc.message}") from None
    if norm.scale > 1.0:
        log.warning(
            "%s: its normalization scale %g multiplies the 0..255 pixel values (input = (pixel * scale - mean) / "
            "std); a scale meant as a divisor is written as its inverse (1/255 = 0.00392...)",
            name,
            norm.scale,
        )
    return norm


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Pure dict -> dict: cast floating tensors to the model's dtype, fill missing ``num_batches_tracked``."""
    own = model.state_dict()
    out = {}
    for k, ref in own.items():
        if k in state_dict:
            v = state_dict[k]
            out[k] = v.to(ref.dtype) if v.is_floating_point() and ref.is_floating_point() else v
        elif k.endswith(IGNORED_SUFFIX):
            out[k] = torch.zeros_like(ref)
    return out


def num_classes_from_state_dict(state_dict: dict[str, torch.Tensor], classifier_key: str) -> int | None:
    """Class count from the classifier's weight (or, when the weight is missing, its bias)."""
    weight = state_dict.get(f"{classifier_key}.weight")
    if weight is not None and weight.ndim == 4:
        return int(weight.shape[0])
    bias = state_dict.get(f"{classifier_key}.bias")
    return int(bias.shape[0]) if weight is None and bias is not None and bias.ndim == 1 and bias.numel() else None


def save_safetensors(
    state_dict: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, Any], fp16: bool = False
) -> Path:
    """Write a ``.safetensors`` checkpoint atomically; metadata values are stored as JSON strings.

    ``fp16`` stores floating tensors in half precision (loading casts back to the model's dtype).
    """
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {}
    for k, v in state_dict.items():
        v = v.detach().cpu().contiguous()
        tensors[k] = v.half() if fp16 and v.is_floating_point() else v
    meta = {k: json.dumps(v) for k, v in metadata.items() if v is not None}
    meta["format"] = "pt"

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp), metadata=meta)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # safetensors creates 0600; a shipped artifact should be readable

    return write_atomic(path, write)
