"""``BundleManifest``: a pipeline bundle's ``manifest.json`` as a typed document: per target its status, numbers
and gates, and every file the bundle holds with its digest (schema ``refinenet-deploy/bundle-manifest``, version 1).
``to_dict`` gives the JSON the pipeline writes, key for key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import Fields, JsonWriter, bad, check_version, load_json

MANIFEST_SCHEMA = "refinenet-deploy/bundle-manifest"
MANIFEST_SCHEMA_VERSION = 1


@dataclass
class ManifestTarget:
    """One target's line: what it is, how it ended, its p50 and parity numbers, and the gates it was judged by."""

    summary: str | None
    status: str
    reason: str | None = None
    artifact: str | None = None
    commands: list[str] | None = None  # pending: what to run on the device
    predicted_on_cpu: dict[str, Any] | None = None
    p50_ms: float | None = None
    miou_drop_points: float | None = None
    pixel_agreement: float | None = None
    gates_passed: bool | None = None
    gates: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "status": self.status,
            "reason": self.reason,
            "artifact": self.artifact,
            "commands": self.commands or None,
            "predicted_on_cpu": self.predicted_on_cpu,
            "p50_ms": self.p50_ms,
            "miou_drop_points": self.miou_drop_points,
            "pixel_agreement": self.pixel_agreement,
            "gates_passed": self.gates_passed,
            "gates": self.gates,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any, name: str) -> ManifestTarget:
        f = Fields(doc, where, f"targets.{name}")
        return cls(
            summary=f.optional("summary", "a string"),
            status=f.required("status", "a string"),
            reason=f.optional("reason", "a string"),
            artifact=f.optional("artifact", "a string"),
            commands=f.optional("commands", "a list"),
            predicted_on_cpu=f.optional("predicted_on_cpu", "an object"),
            p50_ms=f.optional("p50_ms", "a number"),
            miou_drop_points=f.optional("miou_drop_points", "a number"),
            pixel_agreement=f.optional("pixel_agreement", "a number"),
            gates_passed=f.optional("gates_passed", "true or false"),
            gates=f.optional("gates", "an object") or {},
        )


@dataclass
class ManifestArtifact:
    """One file of the bundle: its path (relative to the bundle), digest, size, the step that wrote it; a model's
    provenance and precision from its sidecar (``described``); a parity result's verdict with the bundle's gates."""

    path: str
    sha256: str
    bytes: int
    step: str
    described: bool = False  # the sidecar was read: provenance and precision are written (even when null)
    provenance: dict[str, Any] | None = None
    precision: str | None = None
    gates: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "bytes": self.bytes, "step": self.step}
        if self.described:
            out.update(provenance=self.provenance, precision=self.precision)
        if self.gates is not None:
            out["gates"] = self.gates
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any, index: int) -> ManifestArtifact:
        f = Fields(doc, where, f"artifacts[{index}]")
        return cls(
            path=f.required("path", "a string"),
            sha256=f.required("sha256", "a string"),
            bytes=f.required("bytes", "an integer"),
            step=f.required("step", "a string"),
            described="provenance" in doc or "precision" in doc,
            provenance=f.optional("provenance", "an object"),
            precision=f.optional("precision", "a string"),
            gates=f.optional("gates", "an object"),
        )


@dataclass
class BundleManifest:
    """A bundle's manifest: the tool that wrote it, when, the settings file, the targets and the files."""

    SCHEMA = MANIFEST_SCHEMA
    VERSION = MANIFEST_SCHEMA_VERSION
    READS = (1,)

    tool_version: str
    updated: str
    config: str
    targets: dict[str, ManifestTarget] = field(default_factory=dict)
    artifacts: list[ManifestArtifact] = field(default_factory=list)
    schema_version: int = MANIFEST_SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA,
            "schema_version": self.schema_version,
            "tool_version": self.tool_version,
            "updated": self.updated,
            "config": self.config,
            "targets": {name: t.to_dict() for name, t in self.targets.items()},
            "artifacts": [a.to_dict() for a in self.artifacts],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any = "manifest.json") -> BundleManifest:
        f = Fields(doc, where)
        if f.required("schema", "a string") != MANIFEST_SCHEMA:
            raise bad(where, f"not a bundle manifest (schema {doc['schema']!r})")
        version = check_version(doc, where, MANIFEST_SCHEMA, cls.READS)
        targets = f.required("targets", "an object")
        for name in targets:
            Fields(targets, where, "targets").required(name, "an object")
        listed = f.required("artifacts", "a list")
        for i in range(len(listed)):
            Fields({str(i): listed[i]}, where, "artifacts").required(str(i), "an object")
        return cls(
            tool_version=f.required("tool_version", "a string"),
            updated=f.required("updated", "a string"),
            config=f.required("config", "a string"),
            targets={name: ManifestTarget.from_dict(t, where, name) for name, t in targets.items()},
            artifacts=[ManifestArtifact.from_dict(a, where, i) for i, a in enumerate(listed)],
            schema_version=version,
        )

    @classmethod
    def read(cls, path: str | Path) -> BundleManifest:
        """A bundle's manifest.json (bounded read); DataError (exit 5) naming the file and field otherwise."""
        doc = load_json(path, "a bundle manifest")
        if not isinstance(doc, dict):
            raise bad(path, "a bundle manifest is a JSON object")
        return cls.from_dict(doc, path)

    def write(self, path: str | Path, write_json: JsonWriter) -> Path:
        return write_json(path, self.to_dict())


__all__ = ["MANIFEST_SCHEMA", "MANIFEST_SCHEMA_VERSION", "BundleManifest", "ManifestArtifact", "ManifestTarget"]
