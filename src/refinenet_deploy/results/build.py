"""``BuildResult``: an artifact's sidecar (``<artifact>.meta.json``, written by ``artifacts.sidecar``) as a typed
document: the model it holds, its precision, its provenance and, for an OpenVINO IR, the precision audit of what
the plugin really runs (``PrecisionAudit``: "INT8 convolutions: 78/78").

The sidecar's ``format`` is ``refinenet-deploy/<kind>`` (onnx, openvino, tensorrt, calibration...) and its
``schema_version`` 1 or 2. ``artifacts`` still writes the dict; readers (bench, report) use this class."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from ..errors import IncompatibleArtifactError, InvalidModelError, read_json
from .base import Fields, JsonWriter

SIDECAR_PREFIX = "refinenet-deploy/"
SIDECAR_SCHEMA_VERSION = 2
SIDECAR_SCHEMA_VERSIONS = (1, 2)


@dataclass(frozen=True)
class PrecisionAudit:
    """What the OpenVINO plugin runs, counted over the compiled model's convolutions (``backends.openvino.audit``),
    with whether the requested precision was realised (and the warning when not), or the error that stopped it."""

    summary: str | None = None  # "INT8 convolutions: 78/78"
    device: str | None = None
    convolutions: int | None = None
    by_precision: dict[str, int] = field(default_factory=dict)
    int8_share: float | None = None
    realised: bool | None = None
    warning: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # inference_precision_hint, device_capabilities

    @property
    def shown(self) -> str:
        """One line for a report cell: the summary (and the warning), or why there is none."""
        if self.error:
            return f"audit failed: {self.error}"
        text = self.summary or "not audited"
        return text + (f" (on {self.device})" if self.device and self.summary else "") + (" !" if self.warning else "")

    def to_dict(self) -> dict[str, Any]:
        known = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out = {k: v for k, v in known.items() if v is not None and not (k == "by_precision" and not v)}
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any = "precision_audit") -> PrecisionAudit:
        f = Fields(doc, where, "precision_audit")
        by = f.optional("by_precision", "an object") or {}
        known = {x.name for x in fields(cls)} - {"extra"}
        return cls(
            summary=f.optional("summary", "a string"),
            device=f.optional("device", "a string"),
            convolutions=f.optional("convolutions", "an integer"),
            by_precision={str(k): int(v) for k, v in by.items() if isinstance(v, int)},
            int8_share=f.optional("int8_share", "a number"),
            realised=f.optional("realised", "true or false"),
            warning=f.optional("warning", "a string"),
            error=f.optional("error", "a string"),
            extra={k: v for k, v in doc.items() if k not in known},
        )


@dataclass
class BuildResult:
    """An artifact's sidecar: what the artifact is and how it was made."""

    SCHEMA_VERSIONS: ClassVar[tuple[int, ...]] = SIDECAR_SCHEMA_VERSIONS

    kind: str  # the part of ``format`` after "refinenet-deploy/": onnx, openvino, tensorrt, ...
    precision: str | None = None
    schema_version: int = SIDECAR_SCHEMA_VERSION
    arch: str | None = None
    num_classes: int | None = None
    export_size: tuple[int, int] | None = None
    batch: int | None = None
    checkpoint: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    artifact: dict[str, Any] | None = None  # file, sha256, bytes
    precision_audit: PrecisionAudit | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # normalization, inputs, outputs, verification, ...

    @property
    def artifact_bytes(self) -> int | None:
        value = (self.artifact or {}).get("bytes")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": SIDECAR_PREFIX + self.kind, "schema_version": self.schema_version}
        out["precision"] = self.precision
        for key in ("arch", "num_classes", "batch", "checkpoint", "provenance", "artifact"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.export_size is not None:
            out["export_size"] = list(self.export_size)
        if self.precision_audit is not None:
            out["precision_audit"] = self.precision_audit.to_dict()
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any = "sidecar") -> BuildResult:
        """A sidecar as read by ``artifacts.read_metadata`` (or from its file): refused (InvalidModelError, exit 5)
        when it is not a sidecar, (IncompatibleArtifactError, exit 7) when its schema version is unknown."""
        fmt = doc.get("format", None)
        if not isinstance(fmt, str) or not fmt.startswith(SIDECAR_PREFIX):
            raise InvalidModelError(f"{where}: not an rfdeploy sidecar (format {fmt!r}). Re-export the model")
        version = doc.get("schema_version", 1)
        if version not in cls.SCHEMA_VERSIONS:
            raise IncompatibleArtifactError(
                f"{where}: sidecar schema version {version!r}; this rfdeploy reads "
                f"{', '.join(map(str, cls.SCHEMA_VERSIONS))}. Upgrade refinenet-deploy or re-export the model"
            )
        named = {"format", "schema_version", "precision", "arch", "num_classes", "export_size", "batch"}
        named |= {"checkpoint", "provenance", "artifact", "precision_audit"}
        size = doc.get("export_size", None)
        audit = doc.get("precision_audit", None)
        return cls(
            kind=fmt[len(SIDECAR_PREFIX) :],
            precision=doc.get("precision", None),
            schema_version=int(version),
            arch=doc.get("arch", None),
            num_classes=doc.get("num_classes", None),
            export_size=(int(size[0]), int(size[1])) if isinstance(size, list) and len(size) == 2 else None,
            batch=doc.get("batch", None),
            checkpoint=doc["checkpoint"] if isinstance(doc.get("checkpoint"), dict) else None,
            provenance=doc["provenance"] if isinstance(doc.get("provenance"), dict) else None,
            artifact=doc["artifact"] if isinstance(doc.get("artifact"), dict) else None,
            precision_audit=PrecisionAudit.from_dict(audit, where) if isinstance(audit, dict) else None,
            extra={k: v for k, v in doc.items() if k not in named},
        )

    @classmethod
    def read(cls, path: str | Path) -> BuildResult:
        """A sidecar file (bounded read); InvalidModelError (exit 5) when it is not readable JSON."""
        try:
            doc = read_json(path)
        except (OSError, ValueError) as exc:
            raise InvalidModelError(f"cannot read the sidecar {path}: {exc}. Re-export the model") from None
        if not isinstance(doc, dict):
            raise InvalidModelError(f"{path}: a sidecar holds a JSON object. Re-export the model")
        return cls.from_dict(doc, path)

    def write(self, path: str | Path, write_json: JsonWriter) -> Path:
        return write_json(path, self.to_dict())


__all__ = ["SIDECAR_SCHEMA_VERSION", "SIDECAR_SCHEMA_VERSIONS", "BuildResult", "PrecisionAudit"]
