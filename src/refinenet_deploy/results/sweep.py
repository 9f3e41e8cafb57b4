"""``SweepDocument``: what ``rfdeploy sweep`` writes to ``sweep.json`` (every cell, the fronts, the picks), and
``CellMeasurement``: one cell's numbers, the file each measuring step writes (``cells/TARGET/SIZE.json``) and the
sweep reads back, also after a run on a device. Schema ``refinenet-deploy/sweep``, version 1; ``to_dict`` gives
the JSON the sweep writes, key for key. The picks are computed by ``validate.pareto`` from the numbers; this module
only carries them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import nonfinite_field
from .base import Fields, JsonWriter, bad, check_version, load_json

SWEEP_SCHEMA = "refinenet-deploy/sweep"
SWEEP_SCHEMA_VERSION = 1
SWEEP_HINT = "run 'rfdeploy sweep' again (it re-measures a cell whose file changed or does not read)"


def _fields(doc: Mapping[str, Any], where: Any, prefix: str = "") -> Fields:
    return Fields(doc, where, prefix, SWEEP_HINT)


def _check_finite(doc: Any, where: Any) -> None:
    bad_number = nonfinite_field(doc)
    if bad_number is not None:  # NaN or Infinity: Python's json reads them, no measurement holds one
        raise bad(where, f"field {bad_number!r} is not a finite number (NaN or Infinity)", SWEEP_HINT)


def _list_of(f: Fields, key: str, kind: str, check: Any, *, required: bool = True) -> list[Any] | None:
    """``doc[key]`` as a list whose items pass ``check`` (``kind`` names them in the refusal)."""
    value = f.required(key, "a list") if required else f.optional(key, "a list")
    if value is None:
        return None
    for i, item in enumerate(value):
        if not check(item):
            raise bad(f.where, f"field '{f.name_of(key)}[{i}]' must be {kind}", SWEEP_HINT)
    return list(value)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0


def _fraction(f: Fields, key: str, *, required: bool = True) -> float | None:
    value = f.required(key, "a number") if required else f.optional(key, "a number")
    if value is not None and not _is_fraction(value):
        raise bad(f.where, f"field '{f.name_of(key)}' must be a fraction from 0 to 1, found {value}", SWEEP_HINT)
    return value


def _positive_ms(f: Fields, key: str) -> float:
    value = f.required(key, "a number")
    if not value > 0:
        raise bad(f.where, f"field '{f.name_of(key)}' must be a positive time in ms, found {value}", SWEEP_HINT)
    return float(value)


@dataclass(frozen=True)
class CellLatency:
    """Compute-only latency of a cell under the steady-state protocol, and what ran."""

    p50_ms: float
    p99_ms: float
    iterations: int
    kind: str | None = None
    protocol: str | None = None  # how it was timed, in words (bench's protocol.timing)
    stable: bool | None = None  # False: flagged unstable (validate.latency's limits)
    runtime: str | None = None
    inference_precision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "iterations": self.iterations,
            "kind": self.kind,
            "protocol": self.protocol,
            "stable": self.stable,
            "runtime": self.runtime,
            "inference_precision": self.inference_precision,
        }

    @classmethod
    def from_fields(cls, f: Fields) -> CellLatency:
        return cls(
            p50_ms=_positive_ms(f, "p50_ms"),
            p99_ms=_positive_ms(f, "p99_ms"),
            iterations=f.required("iterations", "a positive integer"),
            kind=f.optional("kind", "a string"),
            protocol=f.optional("protocol", "a string"),
            stable=f.optional("stable", "true or false"),
            runtime=f.optional("runtime", "a string"),
            inference_precision=f.optional("inference_precision", "a string"),
        )


@dataclass(frozen=True)
class CellMeasurement:
    """One cell's numbers: mIoU against the ground truth at the labels' resolution, per-class IoU (None: a class
    absent from labels and predictions), latency, the bytes it ships and its peak memory (None: not measured,
    ``peak_memory`` says why)."""

    input_size: list[int]
    num_images: int
    miou: float
    pixel_accuracy: float
    iou: list[float | None]
    class_names: list[str]
    latency: CellLatency
    model_bytes: int
    peak_memory_mib: float | None
    peak_memory: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": list(self.input_size),
            "num_images": self.num_images,
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "iou": list(self.iou),
            "class_names": list(self.class_names),
            "latency": self.latency.to_dict(),
            "model_bytes": self.model_bytes,
            "peak_memory_mib": self.peak_memory_mib,
            "peak_memory": self.peak_memory,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any, prefix: str = "") -> CellMeasurement:
        f = _fields(doc, where, prefix)
        latency = f.child("latency")
        if latency is None:
            raise bad(where, f"missing required field '{f.name_of('latency')}'", SWEEP_HINT)
        iou = _list_of(f, "iou", "a fraction from 0 to 1 or null", lambda v: v is None or _is_fraction(v))
        names = _list_of(f, "class_names", "a string", _is_str)
        if len(iou or []) != len(names or []):
            raise bad(where, f"'{f.name_of('iou')}' and '{f.name_of('class_names')}' differ in length", SWEEP_HINT)
        memory = f.optional("peak_memory_mib", "a number")
        if memory is not None and memory < 0:
            raise bad(where, f"field '{f.name_of('peak_memory_mib')}' must not be negative", SWEEP_HINT)
        model_bytes = f.required("model_bytes", "an integer")
        if model_bytes < 0:
            raise bad(where, f"field '{f.name_of('model_bytes')}' must not be negative", SWEEP_HINT)
        return cls(
            input_size=f.required("input_size", "[height, width]"),
            num_images=f.required("num_images", "a positive integer"),
            miou=_fraction(f, "miou"),  # type: ignore[arg-type]
            pixel_accuracy=_fraction(f, "pixel_accuracy"),  # type: ignore[arg-type]
            iou=iou or [],
            class_names=names or [],
            latency=CellLatency.from_fields(latency),
            model_bytes=model_bytes,
            peak_memory_mib=memory,
            peak_memory=f.required("peak_memory", "a string"),
        )

    @classmethod
    def read(cls, path: str | Path) -> CellMeasurement:
        """A cell file (bounded read); DataError (exit 5) naming the file and the field otherwise."""
        return cls.parse(load_json(path, "a sweep cell file", SWEEP_HINT), path)

    @classmethod
    def parse(cls, doc: Any, where: Any) -> CellMeasurement:
        """A cell file's JSON as read (or about to be written): an object of finite numbers with every field."""
        if not isinstance(doc, dict):
            raise bad(where, "a sweep cell is a JSON object", SWEEP_HINT)
        _check_finite(doc, where)
        return cls.from_dict(doc, where)


@dataclass(frozen=True)
class SweepCell:
    """One configuration (target at a size): what it is, how its step ended, the commands still to run (pending),
    its numbers when done, and the commands that build its artifact (every cell but the reference)."""

    config: str
    target: str
    device: str
    runtime: str
    precision: str
    size: str
    requested_size: list[str]
    status: str
    reason: str | None
    commands: list[str]
    artifact: str
    measured: CellMeasurement | None = None
    build_commands: list[str] | None = None

    @property
    def done(self) -> bool:
        return self.status == "done" and self.measured is not None

    @property
    def miou(self) -> float | None:
        return self.measured.miou if self.measured is not None else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "config": self.config,
            "target": self.target,
            "device": self.device,
            "runtime": self.runtime,
            "precision": self.precision,
            "size": self.size,
            "requested_size": list(self.requested_size),
            "status": self.status,
            "reason": self.reason,
            "commands": list(self.commands),
            "artifact": self.artifact,
        }
        if self.measured is not None:
            out.update(self.measured.to_dict())
        if self.build_commands is not None:
            out["build_commands"] = list(self.build_commands)
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any, prefix: str) -> SweepCell:
        f = _fields(doc, where, prefix)
        status = f.required("status", "a string")
        if status not in ("done", "pending", "failed"):
            raise bad(where, f"field '{prefix}.status' must be done, pending or failed, found {status!r}", SWEEP_HINT)
        return cls(
            config=f.required("config", "a string"),
            target=f.required("target", "a string"),
            device=f.required("device", "a string"),
            runtime=f.required("runtime", "a string"),
            precision=f.required("precision", "a string"),
            size=f.required("size", "a string"),
            requested_size=_list_of(f, "requested_size", "a string", _is_str) or [],
            status=status,
            reason=f.optional("reason", "a string"),
            commands=_list_of(f, "commands", "a string", _is_str) or [],
            artifact=f.required("artifact", "a string"),
            measured=CellMeasurement.from_dict(doc, where, prefix) if status == "done" else None,
            build_commands=_list_of(f, "build_commands", "a string", _is_str, required=False),
        )


@dataclass(frozen=True)
class SweepPick:
    """One recommendation rule's answer: the configuration (None: none meets the budget, ``reason`` says so), its
    numbers and the commands that build it."""

    rule: str
    config: str | None
    reason: str
    miou: float | None = None
    p50_ms: float | None = None
    miou_drop_pt: float | None = None
    commands: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "config": self.config,
            "reason": self.reason,
            "miou": self.miou,
            "p50_ms": self.p50_ms,
            "miou_drop_pt": self.miou_drop_pt,
            "commands": list(self.commands),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any, prefix: str) -> SweepPick:
        f = _fields(doc, where, prefix)
        return cls(
            rule=f.required("rule", "a string"),
            config=f.optional("config", "a string"),
            reason=f.required("reason", "a string"),
            miou=_fraction(f, "miou", required=False),
            p50_ms=f.optional("p50_ms", "a number"),
            miou_drop_pt=f.optional("miou_drop_pt", "a number"),
            commands=_list_of(f, "commands", "a string", _is_str) or [],
        )


@dataclass(frozen=True)
class SweepRecommendation:
    """A device's two picks (None: that budget was not given)."""

    device: str
    best_within_latency: SweepPick | None
    fastest_within_drop: SweepPick | None

    RULES = ("best_within_latency", "fastest_within_drop")

    def picks(self) -> list[tuple[str, SweepPick | None]]:
        return [(rule, getattr(self, rule)) for rule in self.RULES]

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            **{rule: None if pick is None else pick.to_dict() for rule, pick in self.picks()},
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any, prefix: str) -> SweepRecommendation:
        f = _fields(doc, where, prefix)
        picks = {}
        for rule in cls.RULES:
            picked = f.optional(rule, "an object")
            picks[rule] = None if picked is None else SweepPick.from_dict(picked, where, f"{prefix}.{rule}")
        return cls(device=f.required("device", "a string"), **picks)


@dataclass(frozen=True)
class SweepDocument:
    """``sweep.json``: the settings, the data, the reference row (PyTorch FP32 at full resolution), every cell,
    the Pareto front per device (its configurations), the picks, the tie rule, why artifacts were reused as they
    were, and which steps ran."""

    SCHEMA = SWEEP_SCHEMA
    VERSION = SWEEP_SCHEMA_VERSION
    READS = (1,)

    tool_version: str
    updated: str
    command: str
    settings: dict[str, Any]
    data_path: str
    data_size: list[int]
    reference: SweepCell | None
    cells: list[SweepCell]
    fronts: dict[str, list[str]]
    recommendations: list[SweepRecommendation]
    tie_rule: str
    choices: dict[str, str]
    ran: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)

    @property
    def reference_miou(self) -> float | None:
        return self.reference.miou if self.reference is not None and self.reference.done else None

    def on_front(self) -> set[str]:
        return {config for front in self.fronts.values() for config in front}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA,
            "schema_version": self.VERSION,
            "tool_version": self.tool_version,
            "updated": self.updated,
            "command": self.command,
            "settings": self.settings,
            "data": {"path": self.data_path, "size": list(self.data_size)},
            "reference": None if self.reference is None else self.reference.to_dict(),
            "cells": [c.to_dict() for c in self.cells],
            "fronts": {device: list(configs) for device, configs in self.fronts.items()},
            "recommendations": [r.to_dict() for r in self.recommendations],
            "tie_rule": self.tie_rule,
            "choices": self.choices,
            "steps": {"ran": list(self.ran), "up_to_date": list(self.up_to_date)},
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: Any = "sweep.json") -> SweepDocument:
        f = _fields(doc, where)
        if f.required("schema", "a string") != SWEEP_SCHEMA:
            raise bad(where, f"not a sweep result (schema {doc['schema']!r}; expected {SWEEP_SCHEMA})", SWEEP_HINT)
        check_version(doc, where, SWEEP_SCHEMA, cls.READS, SWEEP_HINT)
        data = f.child("data") or _fields({}, where, "data")
        reference = f.optional("reference", "an object")
        cells = f.required("cells", "a list")
        fronts = f.required("fronts", "an object")
        front_fields = _fields(fronts, where, "fronts")
        recs = f.required("recommendations", "a list")
        steps = f.child("steps") or _fields({}, where, "steps")
        choices = f.required("choices", "an object")
        return cls(
            tool_version=f.required("tool_version", "a string"),
            updated=f.required("updated", "a string"),
            command=f.required("command", "a string"),
            settings=f.required("settings", "an object"),
            data_path=data.required("path", "a string"),
            data_size=data.required("size", "[height, width]"),
            reference=None if reference is None else SweepCell.from_dict(reference, where, "reference"),
            cells=[
                SweepCell.from_dict(_object(c, where, f"cells[{i}]"), where, f"cells[{i}]") for i, c in enumerate(cells)
            ],
            fronts={d: _list_of(front_fields, d, "a configuration name", _is_str) or [] for d in fronts},
            recommendations=[
                SweepRecommendation.from_dict(
                    _object(r, where, f"recommendations[{i}]"), where, f"recommendations[{i}]"
                )
                for i, r in enumerate(recs)
            ],
            tie_rule=f.required("tie_rule", "a string"),
            choices={str(k): _object_str(v, where, f"choices.{k}") for k, v in choices.items()},
            ran=_list_of(steps, "ran", "a step id", _is_str) or [],
            up_to_date=_list_of(steps, "up_to_date", "a step id", _is_str) or [],
        )

    @classmethod
    def read(cls, path: str | Path) -> SweepDocument:
        """A ``sweep.json`` (bounded read); DataError (exit 5) naming the file and the field otherwise."""
        doc = load_json(path, "a sweep result", SWEEP_HINT)
        if not isinstance(doc, dict):
            raise bad(path, "a sweep result is a JSON object", SWEEP_HINT)
        _check_finite(doc, path)
        return cls.from_dict(doc, path)

    def write(self, path: str | Path, write_json: JsonWriter) -> Path:
        return write_json(path, self.to_dict())


def _object(value: Any, where: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise bad(where, f"field '{name}' must be an object", SWEEP_HINT)
    return value


def _object_str(value: Any, where: Any, name: str) -> str:
    if not isinstance(value, str):
        raise bad(where, f"field '{name}' must be a string", SWEEP_HINT)
    return value


__all__ = [
    "SWEEP_SCHEMA",
    "SWEEP_SCHEMA_VERSION",
    "CellLatency",
    "CellMeasurement",
    "SweepCell",
    "SweepDocument",
    "SweepPick",
    "SweepRecommendation",
]
