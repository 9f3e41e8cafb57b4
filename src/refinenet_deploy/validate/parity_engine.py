"""Parity: does the deployed model still segment like PyTorch?

One engine for every backend. The PyTorch FP32 reference and the backend receive the *same* input arrays
(built from the artifact's metadata: normalisation, input format, static size); their outputs go through
the *same* post-processing (logits bilinearly upsampled to the label size, then argmax; a class-map head
is resized with nearest neighbour on both sides). Metrics accumulate in confusion matrices, so memory is
bounded whatever the dataset size; only the K worst images are kept for ``save_worst``.

Static-shape artifacts: every image is resized (bilinear) to the artifact's input size for both sides;
predictions are then mapped back to the label size. This module receives runners; it imports no backend.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from ..artifacts import InputPolicy
from ..data.preprocessing import resize_image
from ..errors import UsageError
from ..results.parity import PARITY_SCHEMA, PARITY_SCHEMA_VERSION
from .metrics import (
    IGNORE_INDEX,
    AgreementScores,
    LabelRangeCounter,
    boundary_mask,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)
from .resize import nearest, upsample_bilinear
from .tolerances import DEFAULT_GATES, Gates, tolerance_for
from .verdict import judge


class Runner(Protocol):
    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@dataclass
class ImageRecord:
    name: str
    agreement: float
    image: np.ndarray
    label: np.ndarray | None
    reference: np.ndarray
    backend: np.ndarray


@dataclass
class ParityReport:
    """Everything ``parity`` measured; ``to_dict`` is the versioned JSON."""

    num_images: int
    num_classes: int
    class_names: tuple[str, ...]
    precision: str
    gates: Gates
    has_labels: bool
    reference_miou: float | None
    backend_miou: float | None
    miou_drop_points: float | None
    reference_iou: tuple[float, ...] | None
    backend_iou: tuple[float, ...] | None
    reference_pixel_accuracy: float | None
    backend_pixel_accuracy: float | None
    agreement: AgreementScores
    logit_max_abs_error: float | None
    logit_mean_abs_error: float | None
    logit_gate: dict[str, Any] | None
    tta: dict[str, Any]
    policy: dict[str, Any]
    failed_gates: list[str] = field(default_factory=list)
    not_evaluated: list[str] = field(default_factory=list)  # gates that could not be evaluated, and why
    worst: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    labels_out_of_range: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        """True: every gate was evaluated and passed; False: a gate failed; None: none failed but one could not be
        evaluated (no labels: no mIoU drop), which does not count as passed (``validate.verdict``)."""
        if self.failed_gates:
            return False
        return None if self.not_evaluated else True

    @property
    def verdict(self) -> str:
        return {True: "passed", False: "failed", None: "not evaluated"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and math.isnan(v):
                return None
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        per_class = []
        for i, name in enumerate(self.class_names):
            ref = self.reference_iou[i] if self.reference_iou else None
            back = self.backend_iou[i] if self.backend_iou else None
            drop = (ref - back) * 100 if ref is not None and back is not None else None
            per_class.append(
                {
                    "class": name,
                    "reference_iou": ref,
                    "backend_iou": back,
                    "drop_points": drop,
                    "agreement_iou": self.agreement.iou[i],
                }
            )
        return clean(
            {
                "schema": PARITY_SCHEMA,
                "schema_version": PARITY_SCHEMA_VERSION,
                "passed": self.passed,
                "verdict": self.verdict,
                "failed_gates": self.failed_gates,
                "gates_not_evaluated": self.not_evaluated,
                "gates": asdict(self.gates),
                "precision": self.precision,
                "num_images": self.num_images,
                "num_classes": self.num_classes,
                "has_labels": self.has_labels,
                "reference_miou": self.reference_miou,
                "backend_miou": self.backend_miou,
                "miou_drop_points": self.miou_drop_points,
                "reference_pixel_accuracy": self.reference_pixel_accuracy,
                "backend_pixel_accuracy": self.backend_pixel_accuracy,
                "agreement_miou": self.agreement.miou,
                "pixel_agreement": self.agreement.pixel,
                "boundary_agreement": self.agreement.boundary,
                "logit_max_abs_error": self.logit_max_abs_error,
                "logit_gate": self.logit_gate,
                "logit_mean_abs_error": self.logit_mean_abs_error,
                "per_class": per_class,
                "labels_out_of_range": self.labels_out_of_range,
                "tta": self.tta,
                "policy": self.policy,
                "worst": self.worst,
                **self.context,
            }
        )


class SavedPredictions(Protocol):
    """The PyTorch side computed earlier (``validate.reference.SavedReference``): the i-th image's class map at
    label size and, where saved, its raw scale-1 output (for the logits comparison)."""

    def prediction(self, index: int, name: str) -> tuple[np.ndarray, np.ndarray | None]: ...


class Predictor:
    """One side's prediction for one image: preprocessing, resizing to a static input size, test-time
    augmentation and the post-processing (logits bilinearly upsampled to the label size and summed, then
    argmax; a class-map head resized with nearest neighbour). The reference and the backend each go through it."""

    def __init__(
        self,
        policy: InputPolicy,
        preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
        scales: Sequence[float] = (1.0,),
        flip: bool = False,
    ) -> None:
        if policy.head == "argmax" and (len(scales) > 1 or flip):
            raise UsageError("--multi-scale/--flip need logits: this artifact outputs a class map (--head argmax)")
        if policy.static_size is not None and (len(scales) > 1 or any(s != 1.0 for s in scales)):
            raise UsageError(
                "--multi-scale needs a dynamic-shape artifact; this one has a static input size. Export with --dynamic"
            )
        self.policy, self.scales, self.flip = policy, tuple(scales), flip
        # default: the policy's own normalisation; ``preprocess`` overrides it (one image -> CHW float)
        self.preprocess = preprocess or (lambda im: policy.to_input(im, batch=1)[0])

    def model_input(self, image: np.ndarray) -> np.ndarray:
        p = self.policy
        x = image[None] if p.input_format == "nhwc-uint8" else self.preprocess(image)[None]
        if p.batch > 1:
            x = np.repeat(x, p.batch, axis=0)
        return np.ascontiguousarray(x)

    def run(self, runner: Runner, image: np.ndarray) -> np.ndarray:
        return next(iter(runner.infer({self.policy.input_name: self.model_input(image)}).values()))[:1]

    def predict(
        self, runner: Runner, image: np.ndarray, label_size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(class map at ``label_size``, the raw output at scale 1 unflipped or None): the raw output is what the
        logits comparison uses; a class-map head has none."""
        p = self.policy
        if p.head == "argmax":
            out = self.run(runner, resize_image(image, p.static_size) if p.static_size else image)
            return nearest(out[0], label_size), None
        acc, raw = None, None
        for scale in self.scales:
            if p.static_size:
                size = p.static_size
            else:
                size = (max(16, round(image.shape[0] * scale)), max(16, round(image.shape[1] * scale)))
            img = resize_image(image, size)
            for flipped in (False, True) if self.flip else (False,):
                out = self.run(runner, img[:, ::-1].copy() if flipped else img)
                if scale == 1.0 and not flipped:
                    raw = out
                up = upsample_bilinear(out, label_size)[0]
                if flipped:
                    up = up[:, :, ::-1]
                acc = up if acc is None else acc + up
        return acc.argmax(0), raw


class ParityEngine:
    """Streams images through a reference and a backend runner and accumulates every metric.

    ``reference`` is a live runner (PyTorch) or ``SavedPredictions`` (a reference saved earlier, so the PyTorch
    side need not run here). ``record(name, class_map, raw)`` receives the live reference's predictions, to save
    them. Labels outside ``0..num_classes-1`` (other than ``ignore_index``) are not scored; they are counted.
    """

    def __init__(
        self,
        reference: Runner | SavedPredictions,
        backend: Runner,
        *,
        num_classes: int,
        class_names: Sequence[str],
        policy: InputPolicy,
        preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
        precision: str = "fp32",
        gates: Gates | None = None,
        scales: Sequence[float] = (1.0,),
        flip: bool = False,
        boundary_width: int = 3,
        save_worst: int = 0,
        ignore_index: int = IGNORE_INDEX,
        record: Callable[[str, np.ndarray, np.ndarray | None], None] | None = None,
    ) -> None:
        self.predictor = Predictor(policy, preprocess, scales, flip)
        self.reference, self.backend = reference, backend
        self.saved = not hasattr(reference, "infer")
        if self.saved and record is not None:
            raise UsageError("a saved reference cannot be recorded again; save it from a live PyTorch run")
        self.record = record
        self.num_classes, self.class_names = num_classes, tuple(class_names)
        self.preprocess = self.predictor.preprocess
        self.policy, self.precision = policy, precision
        self.gates = gates or DEFAULT_GATES.get(precision, DEFAULT_GATES["fp32"])
        self.scales, self.flip, self.boundary_width, self.save_worst = tuple(scales), flip, boundary_width, save_worst
        k = num_classes
        self.conf_ref = np.zeros((k, k), np.int64)
        self.conf_back = np.zeros((k, k), np.int64)
        self.conf_agree = np.zeros((k, k), np.int64)
        self.pixels = self.pixels_same = self.boundary = self.boundary_same = 0
        self.logit_max, self.logit_sum, self.logit_count = 0.0, 0.0, 0
        self.tolerance = tolerance_for(precision)  # fp32 has an element-wise logits bound; others do not
        self.logit_ratio, self.logit_worst = 0.0, (0.0, 0.0)
        self.logits_missing = 0  # images whose saved reference has no logits
        self.has_labels, self.count = True, 0
        self.labels = LabelRangeCounter(num_classes, ignore_index)
        self._worst: list[tuple[float, int, ImageRecord]] = []

    # -- per image -------------------------------------------------------------------------------------------
    def _predict(self, name: str, image: np.ndarray, label_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Class maps at label size for reference and backend, through identical post-processing."""
        back, back_raw = self.predictor.predict(self.backend, image, label_size)
        if self.saved:
            ref, ref_raw = self.reference.prediction(self.count, name)  # type: ignore[union-attr]
            if ref.shape != tuple(label_size):
                raise UsageError(
                    f"the saved reference's class map of {name} is {ref.shape[1]}x{ref.shape[0]}, the label "
                    f"{label_size[1]}x{label_size[0]}. Save the reference again from this data"
                )
        else:
            ref, ref_raw = self.predictor.predict(self.reference, image, label_size)  # type: ignore[arg-type]
            if self.record is not None:
                self.record(name, ref, ref_raw)
        if back_raw is not None:
            if ref_raw is None:
                self.logits_missing += 1
            elif ref_raw.shape != back_raw.shape:
                raise UsageError(
                    f"backend output shape {back_raw.shape} differs from the reference's {ref_raw.shape}. "
                    "Was the artifact exported from this checkpoint?"
                )
            else:
                self._add_logit_error(ref_raw, back_raw)
        return ref, back

    def _add_logit_error(self, ref: np.ndarray, back: np.ndarray) -> None:
        """Element-wise logits error of one image; for the FP32 logits gate, its ratio to the FP32 bound
        (atol + rtol * max|ref| of that image, the tolerance export verification uses)."""
        r = ref.astype(np.float64)
        diff = np.abs(r - back.astype(np.float64))
        worst = float(diff.max()) if np.all(np.isfinite(diff)) else float("inf")
        self.logit_max = max(self.logit_max, worst)
        self.logit_sum += float(diff.sum())
        self.logit_count += diff.size
        bound = self.tolerance.logits_bound(float(np.abs(r).max()))
        if bound is not None and worst / bound > self.logit_ratio:
            self.logit_ratio, self.logit_worst = worst / bound, (worst, bound)

    def add(self, name: str, image: np.ndarray, label: np.ndarray | None) -> float:
        """Score one image; returns its pixel agreement."""
        size = label.shape if label is not None else image.shape[:2]
        ref, back = self._predict(name, image, size)
        if ref.max(initial=0) >= self.num_classes or back.max(initial=0) >= self.num_classes:
            raise UsageError(
                f"predictions have class ids >= {self.num_classes}: the artifact and the checkpoint "
                "disagree on the class count"
            )
        if label is not None:
            self.labels.add(name, label)
            ignore = self.labels.ignore_index
            self.conf_ref += confusion_matrix(ref, label, self.num_classes, ignore_index=ignore)
            self.conf_back += confusion_matrix(back, label, self.num_classes, ignore_index=ignore)
        else:
            self.has_labels = False
        self.conf_agree += confusion_matrix(back, ref, self.num_classes, ignore_index=None)
        same = ref == back
        band = boundary_mask(ref, self.boundary_width)
        self.pixels += same.size
        self.pixels_same += int(same.sum())
        self.boundary += int(band.sum())
        self.boundary_same += int((same & band).sum())
        agreement = float(same.mean())
        self.count += 1
        if self.save_worst:
            record = ImageRecord(name, agreement, image, label, ref.astype(np.uint8), back.astype(np.uint8))
            item = (-agreement, self.count, record)  # max-heap on disagreement, keeps the K worst
            if len(self._worst) < self.save_worst:
                heapq.heappush(self._worst, item)
            elif item > self._worst[0]:
                heapq.heapreplace(self._worst, item)
        return agreement

    def run(
        self,
        samples: Iterable[tuple[str, np.ndarray, np.ndarray | None]],
        progress: Callable[[int], None] | None = None,
    ) -> ParityReport:
        for name, image, label in samples:
            self.add(name, image, label)
            if progress:
                progress(self.count)
        return self.report()

    # -- results ---------------------------------------------------------------------------------------------
    def worst_records(self) -> list[ImageRecord]:
        return [r for _, _, r in sorted(self._worst, key=lambda t: (-t[0], t[1]))]

    def report(self) -> ParityReport:
        if self.count == 0:
            raise UsageError("no images were evaluated. Check --data and --num-images")
        labelled = self.has_labels
        ref_miou = mean_iou(self.conf_ref) if labelled else None
        back_miou = mean_iou(self.conf_back) if labelled else None
        drop = (ref_miou - back_miou) * 100 if labelled else None
        agree = AgreementScores(
            miou=mean_iou(self.conf_agree),
            pixel=self.pixels_same / self.pixels,
            boundary=self.boundary_same / self.boundary if self.boundary else 1.0,
            iou=tuple(float(x) for x in iou_per_class(self.conf_agree)),
        )
        logit_gate = None
        logits: tuple[float, float] | None = None
        logits_skipped: str | None = None
        if self.tolerance.atol is not None and not self.logit_count and self.logits_missing:
            logits_skipped = (
                "the saved reference has no logits: save it with --reference-logits to run the FP32 logits gate"
            )
            logit_gate = {
                "tolerance": f"max|backend - PyTorch| <= {self.tolerance.atol:g} + {self.tolerance.rtol:g} x "
                "max|PyTorch logit| per image (as export verification)",
                "passed": None,
                "skipped": logits_skipped,
            }
        elif self.tolerance.atol is not None and self.logit_count:
            error, bound = self.logit_worst
            logits = (error, bound)
            logit_gate = {
                "tolerance": f"max|backend - PyTorch| <= {self.tolerance.atol:g} + {self.tolerance.rtol:g} x "
                "max|PyTorch logit| per image (as export verification)",
                "worst_error": error,
                "bound_there": bound,
                "passed": self.logit_ratio <= 1.0,
            }
        verdict = judge(
            miou_drop_points=drop,
            pixel_agreement=agree.pixel,
            gates=self.gates,
            no_miou_reason="no labels",
            logits=logits,
            logits_not_evaluated=logits_skipped,
        )
        return ParityReport(
            num_images=self.count,
            num_classes=self.num_classes,
            class_names=self.class_names,
            precision=self.precision,
            gates=self.gates,
            has_labels=labelled,
            reference_miou=ref_miou,
            backend_miou=back_miou,
            miou_drop_points=drop,
            reference_iou=tuple(float(x) for x in iou_per_class(self.conf_ref)) if labelled else None,
            backend_iou=tuple(float(x) for x in iou_per_class(self.conf_back)) if labelled else None,
            reference_pixel_accuracy=pixel_accuracy(self.conf_ref) if labelled else None,
            backend_pixel_accuracy=pixel_accuracy(self.conf_back) if labelled else None,
            agreement=agree,
            logit_gate=logit_gate,
            logit_max_abs_error=self.logit_max if self.logit_count else None,
            logit_mean_abs_error=self.logit_sum / self.logit_count if self.logit_count else None,
            tta={"scales": list(self.scales), "flip": self.flip},
            policy={
                "input_format": self.policy.input_format,
                "head": self.policy.head,
                "static_size": list(self.policy.static_size) if self.policy.static_size else None,
                "resize": "bilinear to the static input size" if self.policy.static_size else "none",
                "upsampling": "logits bilinear (align_corners=False) to label size, then argmax"
                if self.policy.head != "argmax"
                else "class map nearest-neighbour to label size",
                "boundary_width_px": self.boundary_width,
            },
            failed_gates=verdict.failed,
            not_evaluated=verdict.not_evaluated,
            labels_out_of_range=self.labels.summary(),
            worst=[{"name": r.name, "pixel_agreement": r.agreement} for r in self.worst_records()],
        )
