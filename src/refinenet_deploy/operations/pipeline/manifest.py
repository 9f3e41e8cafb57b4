"""What a bundle says when a run ends: ``report.md`` / ``report.html`` (the bundle's table and pending commands
first, then the results) and ``manifest.json`` (every target's status and every file with its SHA-256)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ... import __version__
from ...artifacts import read_metadata, sha256_file, sidecar_path, utc_now, write_atomic, write_json_atomic
from ...errors import RefineNetDeployError
from ...results.bench import BenchResult
from ...results.manifest import MANIFEST_SCHEMA, MANIFEST_SCHEMA_VERSION, BundleManifest
from ...validate.verdict import judge_parity_result
from .bundle import BundleState, step_key
from .config import TARGETS
from .layout import CONFIG_FILE, MANIFEST_FILE, BundleLayout, read_parity_result
from .outcomes import TargetOutcome, gates_for, taken_result_files, verdict_for


def write_bundle_report(
    layout: BundleLayout,
    state: BundleState,
    outcomes: Sequence[TargetOutcome],
    baseline: BenchResult | None,
    gpu_baselines: Mapping[str, BenchResult],
    *,
    force: bool = False,
    warn: Callable[[str], None] = lambda _msg: None,
) -> list[Path]:
    """``report.md`` and ``report.html``, keyed by the summary and the result files (skipped when unchanged)."""
    from .summary import summary_markdown

    files = taken_result_files(layout, outcomes)
    md, html = layout.p("report.md"), layout.p("report.html")
    digests = {layout.rel(f): sha256_file(f) for f in files}
    summary = summary_markdown(outcomes, baseline, layout.rel, gpu_baselines=gpu_baselines)
    key = step_key("report", {"summary": summary}, digests)
    outputs = [p for p in (md, html) if p.exists()]
    if not force and outputs and state.is_current("report", key, outputs):
        return outputs
    written = _write_reports(files, [md, html], summary, warn) if files else []
    if not written:  # no result yet (or none readable): the summary alone
        from ..report import summary_page

        write_atomic(md, lambda tmp: tmp.write_text(summary))
        write_atomic(html, lambda tmp: tmp.write_text(summary_page(summary)))
        written = [md, html]
    state.record("report", key, [p for p in written if p.exists()])
    return sorted(written)


def _write_reports(files: list[Path], outputs: list[Path], summary: str, warn: Callable[[str], None]) -> list[Path]:
    """The report of ``files`` in each output's format (by suffix), built once, the bundle's summary first."""
    from ..report import write_reports

    try:
        write_reports(files, outputs, preamble=summary)
    except RefineNetDeployError as exc:
        warn(f"report: {exc.message}")
        return []
    return list(outputs)


def write_manifest(layout: BundleLayout, state: BundleState, outcomes: Sequence[TargetOutcome]) -> Path:
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "tool_version": __version__,
        "updated": utc_now(),
        "config": CONFIG_FILE,
        "targets": {o.target.name: _target_entry(layout, o) for o in outcomes},
        "artifacts": _artifact_entries(layout, state),
    }
    # through the typed document: what is written is what BundleManifest reads back
    return BundleManifest.from_dict(manifest).write(layout.p(MANIFEST_FILE), write_json_atomic)


def _target_entry(layout: BundleLayout, o: TargetOutcome) -> dict[str, Any]:
    verdict = verdict_for(layout.config, o.target, o.parity)
    parity = o.parity
    return {
        "summary": o.target.summary,
        "status": o.status,
        "reason": o.reason,
        "artifact": layout.rel(layout.artifact_for(o.target)),
        "commands": o.commands or None,
        "predicted_on_cpu": o.predicted,
        "p50_ms": o.bench.p50_ms if o.bench is not None else None,
        "miou_drop_points": parity.miou_drop_points if parity is not None else None,
        "pixel_agreement": parity.pixel_agreement if parity is not None else None,
        "gates_passed": None if verdict is None else verdict.passed,
        "gates": asdict(gates_for(layout.config, o.target)),
    }


def _artifact_entries(layout: BundleLayout, state: BundleState) -> list[dict[str, Any]]:
    artifacts = []
    seen: set[str] = set()
    for rec_id, rec in sorted(state.steps.items()):
        for rel_path, sha in rec.outputs.items():
            path = layout.bundle / rel_path
            if rel_path in seen or not path.is_file():
                continue
            seen.add(rel_path)
            entry: dict[str, Any] = {"path": rel_path, "sha256": sha, "bytes": path.stat().st_size, "step": rec_id}
            if path.suffix in (".onnx", ".xml", ".engine") and sidecar_path(path).is_file():
                try:
                    meta = read_metadata(path)
                    entry["provenance"] = meta.get("provenance")
                    entry["precision"] = meta.get("precision")
                except RefineNetDeployError:
                    pass
            target = TARGETS.get(Path(rel_path).parent.name)
            if rel_path.endswith("parity.json") and target is not None:
                # recomputed with the bundle's gates, as the targets' entries
                gates = gates_for(layout.config, target)
                result = read_parity_result(path)
                verdict = judge_parity_result(result, gates) if result is not None else None
                entry["gates"] = {
                    "passed": verdict.passed if verdict else None,
                    "failed": verdict.failed if verdict else [],
                    "not_evaluated": verdict.not_evaluated if verdict else ["not a parity result this rfdeploy reads"],
                    "gates": asdict(gates),
                }
            artifacts.append(entry)
    return artifacts
