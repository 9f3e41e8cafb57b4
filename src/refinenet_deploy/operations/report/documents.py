"""The report's inputs: every path checked before any work, known non-result rfdeploy files skipped with a note,
results read as typed documents (``results.read_document``: bounded, schema and version checked), and the header
facts (checkpoints, data, dates, sizes, tool versions) found in them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...results import BenchResult, ParityResult, known_schema_versions, parse_document
from ...results.base import load_json
from ...results.build import SIDECAR_PREFIX
from ...results.manifest import MANIFEST_SCHEMA

Result = BenchResult | ParityResult

# files rfdeploy writes that are not results (what a ``report out/*`` glob also picks up), known by suffix
NON_RESULT_SUFFIXES = {
    ".onnx": "an ONNX model",
    ".xml": "an OpenVINO IR",
    ".bin": "OpenVINO IR weights",
    ".engine": "a TensorRT engine",
    ".npz": "a saved PyTorch reference",
    ".png": "an image (chart or panel)",
    ".md": "a Markdown report",
    ".html": "an HTML report",
    ".safetensors": "a checkpoint",
    ".cache": "a TensorRT calibration cache",
}


@dataclass(frozen=True)
class Document:
    """One bench or parity result and the file it was read from."""

    path: Path
    result: Result

    @property
    def kind(self) -> str:
        return "bench" if isinstance(self.result, BenchResult) else "parity"


def _is_sidecar(path: Path, doc: Any) -> bool:
    if path.name.endswith(".meta.json"):
        return True
    if not isinstance(doc, dict):
        return False
    fmt = doc.get("format")  # any JSON a glob picked up (not a result): plain mapping reads
    if isinstance(fmt, str) and fmt.startswith(SIDECAR_PREFIX):
        return True
    return "schema_version" in doc and isinstance(doc.get("artifact"), dict) and "schema" not in doc


def non_result_kind(path: Path, doc: Any = None) -> str | None:
    """What a known non-result rfdeploy file is (a sidecar, a calibration manifest, a bundle's manifest, ...), or
    None. ``doc``: its parsed JSON, when it is JSON (any mapping: this is how a non-result is recognised)."""
    if path.suffix.lower() in NON_RESULT_SUFFIXES:
        return NON_RESULT_SUFFIXES[path.suffix.lower()]
    if _is_sidecar(path, doc):
        return "an artifact sidecar (.meta.json)"
    if not isinstance(doc, dict):
        return None
    if path.name.endswith(".calibration.json") or {"files", "resize_policy", "sampling"} <= doc.keys():
        return "a calibration set manifest (.calibration.json, written by calibrate)"
    if doc.get("schema") == MANIFEST_SCHEMA:
        return "a pipeline bundle's manifest.json"
    if {"targets", "calib_images", "input_size"} <= doc.keys() and "schema" not in doc:
        return "a pipeline bundle's settings (pipeline.json)"
    if {"schema_version", "steps"} == set(doc.keys()):
        return "a pipeline bundle's step state (.pipeline/state.json)"
    if {"pid", "host", "started"} == set(doc.keys()):
        return "a pipeline bundle's lock"
    if doc.get("generator") == "refinenet_deploy.synth":
        return "a synthetic dataset's description (dataset.json)"
    if "cache_key" in doc and "calibration cache" in str(doc.get("format")):
        return "a TensorRT calibration cache key"
    return None


def read_documents(inputs: Sequence[str | Path]) -> tuple[list[Document], list[str]]:
    """Read and check every input. Returns the bench/parity documents and one note per skipped file: every file
    rfdeploy writes that is not a result (``non_result_kind``: sidecars, calibration manifests, a bundle's
    manifest, settings and state, models, references, reports, charts).

    Raises ``DataError`` (exit 5) naming the file (and the field) for anything that is not a readable result:
    a missing file, a folder, invalid JSON, not an object, an unknown schema or schema version, a missing or
    mistyped required field."""
    docs: list[Document] = []
    notes: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            raise DataError(f"{path}: a folder, not a bench or parity JSON file. Pass the files in it ({path}/*.json)")
        if not path.exists() and not path.is_symlink():
            raise DataError(f"{path}: input not found. Check the path")
        kind = non_result_kind(path)
        if kind is None:
            raw = load_json(path)  # a regular file only (a FIFO would block), bounded in size and depth
            kind = non_result_kind(path, raw)
        if kind is not None:
            notes.append(f"skipped {path}: {kind}, not a bench or parity result")
            continue
        docs.append(Document(path, parse_document(raw, path)))
    return docs, notes


def as_document(doc: Document | Result | Mapping[str, Any]) -> Document:
    """A Document from a Document, a typed result or a result's JSON object (named by its artifact)."""
    if isinstance(doc, Document):
        return doc
    result = doc if isinstance(doc, (BenchResult, ParityResult)) else parse_document(dict(doc), "result")
    return Document(Path(result.artifact), result)


def _size_text(size: tuple[int, int] | None) -> str | None:
    return f"{size[0]}x{size[1]}" if size else None


def summarize_inputs(docs: Sequence[Document]) -> dict[str, list[str]]:
    """Checkpoints, data, dates, input sizes and tool versions found in the inputs (for the report header)."""
    checkpoints: list[str] = []
    data: list[str] = []
    dates: list[str] = []
    sizes: list[str] = []
    tools: list[str] = []

    def add(items: list[str], value: str | None) -> None:
        if value and value not in items:
            items.append(value)

    for doc in sorted(docs, key=lambda x: x.kind != "parity"):  # parity first: it names the checkpoint fully
        r = doc.result
        if isinstance(r, ParityResult):
            sha = r.checkpoint_sha256
            if r.checkpoint:
                add(checkpoints, Path(r.checkpoint).name + (f" (sha256 {sha[:12]})" if sha else ""))
            if r.data:
                split = f", split {r.split}" if r.split else ""
                images = "?" if r.num_images is None else r.num_images
                add(data, f"{r.data}{split} ({images} images)")
            add(sizes, _size_text(r.static_size))
        else:
            name = Path(r.artifact).name
            if r.runtime == "torch" and not any(c.split(" (")[0] == name for c in checkpoints):
                add(checkpoints, name + " (PyTorch bench)")
            add(sizes, _size_text(r.input_size))
        if isinstance(r.created, str):
            add(dates, r.created)
        if r.tool_version:
            add(tools, str(r.tool_version))
    dates.sort()
    return {
        "checkpoint": checkpoints,
        "data": data,
        "date": [dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"] if dates else [],
        "input sizes (HxW)": sorted(sizes, key=lambda s: tuple(int(x) for x in s.split("x"))),
        "rfdeploy": tools,
    }


__all__ = [
    "NON_RESULT_SUFFIXES",
    "Document",
    "Result",
    "as_document",
    "known_schema_versions",
    "non_result_kind",
    "read_documents",
    "summarize_inputs",
]
