"""``ParityResult``: a parity check of one artifact against PyTorch, as a typed document (what
``validate.parity_engine.ParityReport.to_dict`` writes, with the run's context: artifact, runtime, checkpoint...).

Schema ``refinenet-deploy/parity``, version 1 (the only one so far). The verdict is never read from the file: the
report and the pipeline recompute it from the numbers and the gates it states (``validate.verdict``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .base import Fields, ResultDocument, check_version
from .bench import normalize_precision

PARITY_SCHEMA = "refinenet-deploy/parity"
PARITY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ParityGates:
    """The gates a parity result was judged with (|mIoU drop| in points, pixel agreement as a fraction)."""

    max_miou_drop: float
    min_agreement: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"max_miou_drop": self.max_miou_drop, "min_agreement": self.min_agreement, **self.extra}


# ParityReport.to_dict's order, then the context operations.parity adds
_ORDER = (
    "schema",
    "schema_version",
    "passed",
    "verdict",
    "failed_gates",
    "gates_not_evaluated",
    "gates",
    "precision",
    "num_images",
    "num_classes",
    "has_labels",
    "reference_miou",
    "backend_miou",
    "miou_drop_points",
    "reference_pixel_accuracy",
    "backend_pixel_accuracy",
    "agreement_miou",
    "pixel_agreement",
    "boundary_agreement",
    "logit_max_abs_error",
    "logit_gate",
    "logit_mean_abs_error",
    "per_class",
    "labels_out_of_range",
    "tta",
    "policy",
    "worst",
    "created",
    "tool_version",
    "checkpoint",
    "checkpoint_sha256",
    "arch",
    "artifact",
    "artifact_sha256",
    "runtime",
    "device",
    "runtime_precision",
    "data",
    "split",
    "jetson",
    "reference",
)
# keys written only when the writer set them (older files, a hand-made document)
_CONTEXT = ("created", "tool_version", "checkpoint", "checkpoint_sha256", "arch", "artifact_sha256", "runtime")
_CONTEXT += ("device",)
_WHEN_SET = frozenset(
    {*_CONTEXT, "data", "split", "verdict", "gates_not_evaluated", "labels_out_of_range"}
    | {"has_labels", "jetson", "reference"}
)


@dataclass
class ParityResult(ResultDocument):
    """One parity result: the numbers, the gates they are judged with, and where they were measured."""

    SCHEMA = PARITY_SCHEMA
    VERSION = PARITY_SCHEMA_VERSION
    READS = (1,)

    artifact: str
    gates: ParityGates
    schema_version: int = PARITY_SCHEMA_VERSION
    passed: bool | None = None  # as written; not trusted (the verdict is recomputed)
    verdict: str | None = None
    failed_gates: list[str] | None = None
    gates_not_evaluated: list[str] | None = None
    precision: str | None = None  # the gates' precision (the artifact's)
    num_images: int | None = None
    num_classes: int | None = None
    has_labels: bool | None = None
    reference_miou: float | None = None
    backend_miou: float | None = None
    miou_drop_points: float | None = None
    reference_pixel_accuracy: float | None = None
    backend_pixel_accuracy: float | None = None
    agreement_miou: float | None = None
    pixel_agreement: float | None = None
    boundary_agreement: float | None = None
    logit_max_abs_error: float | None = None
    logit_gate: dict[str, Any] | None = None
    logit_mean_abs_error: float | None = None
    per_class: list[dict[str, Any]] | None = None
    labels_out_of_range: dict[str, Any] | None = None
    tta: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None
    worst: list[dict[str, Any]] | None = None
    created: str | None = None
    tool_version: str | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    arch: str | None = None
    artifact_sha256: str | None = None
    runtime: str | None = None
    device: str | None = None
    runtime_precision: str | None = None  # what ran (an INT8 model: its float parts)
    data: str | None = None
    split: str | None = None
    jetson: bool | None = None  # ran on a Jetson (None: an older rfdeploy did not record it)
    reference: dict[str, Any] | None = None  # the PyTorch reference it was compared with (source, path, digest)
    extra: dict[str, Any] = field(default_factory=dict)  # versions, artifact_from_this_checkpoint, ...
    read_order: tuple[str, ...] = field(default=(), compare=False, repr=False)  # the keys' order in the file read

    @property
    def static_size(self) -> tuple[int, int] | None:
        """The artifact's static input size as the parity run's input policy recorded it."""
        size = (self.policy or {}).get("static_size")
        if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(d, int) for d in size):
            return int(size[0]), int(size[1])
        return None

    @property
    def boundary_width_px(self) -> int | None:
        """The width of the band boundary agreement is measured in (the input policy's)."""
        value = (self.policy or {}).get("boundary_width_px")
        return value if isinstance(value, int) else None

    @property
    def tta_scales(self) -> list[float] | None:
        return (self.tta or {}).get("scales")

    @property
    def tta_flip(self) -> bool | None:
        return (self.tta or {}).get("flip")

    @property
    def reference_digest(self) -> str | None:
        """The digest of the saved reference it was compared with (None: a live or unrecorded reference)."""
        digest = (self.reference or {}).get("digest")
        return digest if isinstance(digest, str) else None

    @property
    def ran(self) -> str | None:
        """The precision that ran, in the one spelling."""
        return normalize_precision(self.runtime_precision)

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "read_order")}
        values.update(schema=self.SCHEMA, gates=self.gates.to_dict())
        out = {k: values[k] for k in _ORDER if not (k in _WHEN_SET and values[k] is None)}
        out.update(self.extra)
        first = [k for k in self.read_order if k in out]  # a file read is written back in its own order
        return {**{k: out[k] for k in first}, **out}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any = "parity result") -> ParityResult:
        version = check_version(doc, where, PARITY_SCHEMA, cls.READS)
        f = Fields(doc, where)
        f.required("artifact", "a string")
        g = Fields(f.required("gates", "an object"), where, "gates")
        gates = ParityGates(
            float(g.required("max_miou_drop", "a number")),
            float(g.required("min_agreement", "a number")),
            {k: v for k, v in doc["gates"].items() if k not in ("max_miou_drop", "min_agreement")},
        )
        values: dict[str, Any] = {"artifact": doc["artifact"], "gates": gates, "schema_version": version}
        values["passed"] = f.optional("passed", "true or false")
        values["failed_gates"] = f.optional("failed_gates", "a list")
        values["policy"] = f.optional("policy", "an object")
        values["num_classes"] = f.optional("num_classes", "an integer")
        for key in ("miou_drop_points", "pixel_agreement"):
            values[key] = f.optional(key, "a number")
        for key in ("arch", "checkpoint", "checkpoint_sha256", "data", "device", "runtime", "runtime_precision"):
            values[key] = f.optional(key, "a string")
        values["precision"] = f.optional("precision", "a string")
        values["jetson"] = f.optional("jetson", "true or false")
        values["reference"] = f.optional("reference", "an object")
        named = {x.name for x in fields(cls)} - {"extra", "read_order"}
        for key in named - values.keys():
            if key in doc:
                values[key] = doc[key]
        values["extra"] = {k: v for k, v in doc.items() if k not in named and k != "schema"}
        return cls(**values, read_order=tuple(doc))


__all__ = ["PARITY_SCHEMA", "PARITY_SCHEMA_VERSION", "ParityGates", "ParityResult"]
