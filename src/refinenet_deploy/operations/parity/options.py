"""What ``rfdeploy parity`` may be asked: one frozen group of options, checked once (``ParityOptions``), built by the
CLI and by the pipeline alike, and the checks that need more than the options (the artifacts, the outputs). Every
refusal is exit 2 (``UsageError``) naming the option, before any work."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...artifacts import probe_output
from ...backends import resolve_runtime
from ...enums import Device, Precision, Runtime
from ...errors import UsageError
from ...validate.reference import is_reference

SCALE_RANGE = (0.25, 4.0)
TORCH_PRECISIONS = (Precision.FP32, Precision.TF32, Precision.FP16, Precision.BF16)
INFERENCE_PRECISIONS = (Precision.FP32, Precision.BF16, Precision.FP16)
TORCH_DEVICES = (Device.CPU, Device.GPU)


def parse_scales(text: str | None) -> tuple[float, ...]:
    """``--multi-scale 0.75,1,1.25`` -> (0.75, 1.0, 1.25); ``None`` -> (1.0,). Finite, within 0.25..4 (exit 2)."""
    if not text:
        return (1.0,)
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        raise UsageError(f"--multi-scale expects comma-separated numbers such as 0.75,1,1.25, got {text!r}") from None
    return check_scales(scales)


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    lo, hi = SCALE_RANGE
    bad = [s for s in scales if not (math.isfinite(s) and lo <= s <= hi)]
    if not scales or bad:
        raise UsageError(f"--multi-scale: each scale must be a number within {lo:g}..{hi:g}, got {list(scales)}")
    if len(set(scales)) != len(scales):
        raise UsageError(f"--multi-scale: a scale is repeated: {list(scales)}")
    return tuple(float(s) for s in scales)


def check_gate_options(max_miou_drop: float | None, min_agreement: float | None) -> float | None:
    """Bounds of the gate options (exit 2); returns ``min_agreement`` as a fraction (it accepts a percentage)."""
    if max_miou_drop is not None and not (math.isfinite(max_miou_drop) and 0 <= max_miou_drop <= 100):
        raise UsageError(f"--max-miou-drop must be within 0..100 (mIoU points), got {max_miou_drop}")
    if min_agreement is None:
        return None
    if not (math.isfinite(min_agreement) and 0 <= min_agreement <= 100):
        raise UsageError(
            f"--min-agreement must be within 0..1 (a fraction) or 0..100 (a percentage), got {min_agreement}"
        )
    return min_agreement / 100 if min_agreement > 1 else min_agreement


def check_save_worst(save_worst: int, worst_dir: str | Path | None) -> None:
    """``--save-worst K DIR``: K at least 1, and a folder for the panels (exit 2)."""
    if worst_dir is not None and save_worst < 1:
        raise UsageError(f"--save-worst K DIR: K must be at least 1, got {save_worst}")
    if save_worst < 0 or (save_worst and worst_dir is None):
        raise UsageError("--save-worst needs a count of at least 1 and a folder: --save-worst K DIR")


@dataclass(frozen=True)
class ParityOptions:
    """How to compare an artifact with PyTorch. Checked in ``__post_init__`` (exit 2 naming the option); precisions
    and the device are parsed once here (any spelling ``enums`` accepts) and kept as ``Precision``/``Device``.

    ``scales``/``flip``: test-time augmentation on both sides (default (1.0,)/False, or a saved reference's).
    ``max_miou_drop``/``min_agreement``: gates (default per precision; ``min_agreement`` accepts a percentage and
    is kept as a fraction). ``save_worst`` K panels into ``worst_dir``. ``inference_precision``: OpenVINO's hint.
    ``device``/``torch_precision``: how a checkpoint artifact runs in PyTorch (the reference stays FP32).
    ``save_reference``: also write the live reference there (with logits if ``reference_logits``).
    ``reference_cache``: a folder where live references are cached by digest and reused. ``input_size``: the
    static size of a reference saved without an artifact. ``strict_labels``: labels outside the model's classes
    fail the run (exit 5) instead of being counted."""

    runtime: str = "auto"
    split: str | None = None
    num_images: int | None = None
    scales: tuple[float, ...] | None = None
    flip: bool | None = None
    max_miou_drop: float | None = None
    min_agreement: float | None = None
    save_worst: int = 0
    worst_dir: str | Path | None = None
    threads: int | None = None
    inference_precision: Precision | str | None = Precision.FP32
    device: Device | str | None = None
    torch_precision: Precision | str = Precision.FP32
    input_size: tuple[int, int] | None = None
    save_reference: str | Path | None = None
    reference_logits: bool = False
    reference_cache: str | Path | None = None
    strict_labels: bool = False

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        put("torch_precision", Precision.parse(self.torch_precision, allowed=TORCH_PRECISIONS, option="--precision"))
        if self.device is not None:
            put("device", Device.parse(self.device, allowed=TORCH_DEVICES, option="--device"))
        if self.inference_precision is not None:
            allowed = INFERENCE_PRECISIONS
            put(
                "inference_precision",
                Precision.parse(self.inference_precision, allowed=allowed, option="--inference-precision"),
            )
        if self.scales is not None:
            put("scales", check_scales(self.scales))
        put("min_agreement", check_gate_options(self.max_miou_drop, self.min_agreement))
        check_save_worst(self.save_worst, self.worst_dir)
        if self.reference_logits and self.save_reference is None:
            raise UsageError("--reference-logits applies to --save-reference REF.npz; pass both")
        if self.save_reference is not None and not is_reference(self.save_reference):
            raise UsageError(f"--save-reference must end in .npz: {self.save_reference}. Pass --save-reference ref.npz")


def check_torch_options(
    models: Sequence[str | Path], runtime: str, device: str | None, precision: Precision | str
) -> None:
    """Refuse (exit 2, before any work) ``--device``/``--precision`` for MODELs that are not checkpoints: those
    options set how a checkpoint runs in PyTorch; an artifact runs as it was built."""
    if device in (None, Device.CPU) and precision == Precision.FP32:
        return
    for model in models:
        kind = resolve_runtime(model, runtime)
        if kind != Runtime.TORCH:
            raise UsageError(
                f"--device/--precision run a checkpoint in PyTorch; {Path(model).name} runs in {kind.value} as built. "
                "Drop them, or run parity once per kind of MODEL"
            )


def check_request(
    checkpoint: str | Path,
    artifacts: Sequence[str | Path],
    options: ParityOptions,
    *,
    reports: bool = False,
) -> None:
    """What the options ask of these inputs (exit 2, before any work): ``reports`` (a JSON, Markdown or panels
    output) takes exactly one artifact; no artifact means saving a reference from a checkpoint; ``input_size``
    applies only then; ``device``/``torch_precision`` only to checkpoint artifacts."""
    if options.input_size is not None and artifacts:
        raise UsageError("--input-size applies to a reference saved without an artifact; the artifact sets its size")
    if len(artifacts) > 1 and reports:
        raise UsageError("--json, --markdown and --save-worst take one artifact; run parity once per artifact")
    if not artifacts and reports:
        raise UsageError("--json, --markdown and --save-worst report a comparison: pass an ARTIFACT")
    if not artifacts and options.save_reference is None:
        raise UsageError("nothing to do: pass an ARTIFACT to compare, or --save-reference REF.npz to save a reference")
    if not artifacts and is_reference(checkpoint):
        raise UsageError(f"{checkpoint} is a saved reference: pass an ARTIFACT to compare with it")
    check_torch_options(artifacts, options.runtime, options.device, options.torch_precision)


def check_parity_outputs(
    *,
    inputs: Sequence[str | Path | None],
    json_out: str | Path | None = None,
    markdown_out: str | Path | None = None,
    worst_dir: str | Path | None = None,
    save_reference: str | Path | None = None,
    data: str | Path | None = None,
) -> None:
    """Probe every output before any work (exit 2): none may be an input (checkpoint, artifact and its sidecar or
    ``.bin``, reference) or lie inside the dataset folder ``data`` (its files are inputs too, and a folder of images
    would read the panels back), a file output may not be a folder, ``--save-worst`` may not be a file, and each
    must be writable. Missing parent folders are created when writing."""
    outputs = [
        (json_out if json_out is not None and str(json_out) != "-" else None, "--json", "file"),
        (markdown_out, "--markdown", "file"),
        (worst_dir, "--save-worst", "dir"),
        (save_reference, "--save-reference", "file"),
    ]
    seen: dict[Path, str] = {}
    for path, what, kind in outputs:
        if path is None:
            continue
        if what == "--save-reference" and not is_reference(path):
            raise UsageError(f"--save-reference must end in .npz: {path}. Pass --save-reference ref.npz")
        if data is not None and Path(data).is_dir() and Path(path).resolve().is_relative_to(Path(data).resolve()):
            raise UsageError(
                f"{what} {path} is inside the dataset {data}: it would change the input. Choose a path outside it"
            )
        probe_output(path, inputs=[*inputs, data], what=what, kind=kind)
        key = Path(path).absolute()
        if key in seen:
            raise UsageError(f"{what} and {seen[key]} are the same path: {path}. Give each output its own path")
        seen[key] = what


def resolve_reference_cache(
    path: str | Path | None, *, disabled: bool, inputs: Sequence[str | Path], default: Path
) -> tuple[Path | None, str | None]:
    """The reference cache folder and, when the default one is unusable, why (the caller warns): ``path``
    (probed, exit 2 if unusable), else ``default`` (skipped if unusable), or none when ``disabled``."""
    if path is not None and disabled:
        raise UsageError("--reference-cache and --no-reference-cache contradict each other; pass one")
    if disabled:
        return None, None
    if path is not None:
        probe_output(path, inputs=inputs, what="--reference-cache", kind="dir")
        return Path(path), None
    try:
        probe_output(default, inputs=inputs, what="reference cache", kind="dir")
    except UsageError as exc:
        return None, exc.message
    return default, None
