"""Typed result documents read the JSON every landed version wrote, write it back unchanged, and refuse a version
they do not know with a message naming it and the fix.

The files under tests/assets/results/ are REAL: written by the landed code paths (bench schema 1 at a7d5040~1, schema
2 at f21e915~1, schema 3 and parity schema 1 at 5506688) on a tiny rf_lw_test model, with the artifact path made
relative; their numbers are measurements and no test asserts one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from refinenet_deploy.cli import app
from refinenet_deploy.errors import DataError
from refinenet_deploy.results import (
    BENCH_SCHEMA,
    BenchResult,
    LatencyStats,
    ParityResult,
    known_schema_versions,
    p50_ms,
    read_document,
    speedup_of,
)

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "results"
BENCH = {1: ["bench-v1-ort.json"], 2: ["bench-v2-ort.json", "bench-v2-torch.json"]}
BENCH[3] = ["bench-v3-ort.json", "bench-v3-torch.json"]
PARITY = ["parity-v1-v2.json", "parity-v1-v3.json"]


def _raw(name: str) -> dict:
    return json.loads((ASSETS / name).read_text())


@pytest.mark.parametrize(("version", "name"), [(v, n) for v, names in BENCH.items() for n in names])
def test_every_landed_bench_version_reads_as_a_typed_result(version: int, name: str) -> None:
    raw = _raw(name)
    result = read_document(ASSETS / name)
    assert isinstance(result, BenchResult) and result.schema_version == version == raw["schema_version"]
    assert result.runtime == raw["runtime"] and result.artifact == raw["artifact"]
    assert result.p50_ms == raw["compute_only"]["p50_ms"] == p50_ms(result) == p50_ms(raw)
    assert result.input_size == tuple(raw["input_size"]) and result.batch == raw["batch"]
    # schema 1 spelled the artifact's precision "precision" and what ran "runtime_precision": read in one place
    assert result.artifact_precision == raw.get("artifact_precision", raw["precision"])
    assert result.inference_precision == raw.get("inference_precision", raw["runtime_precision"])


@pytest.mark.parametrize("name", [n for names in BENCH.values() for n in names] + PARITY)
def test_a_result_writes_back_what_it_read(name: str) -> None:
    """Nothing is lost on a round trip: fields the class does not name are kept in ``extra``."""
    raw = _raw(name)
    result = read_document(ASSETS / name)
    again = type(result).from_dict(result.to_dict())
    assert again == result
    out = result.to_dict()
    assert {k: v for k, v in out.items() if k in raw} == raw  # every field, every value, as written
    if raw["schema_version"] == type(result).VERSION:  # the current writer's files come back key for key
        assert list(out) == list(raw)


def test_written_document_is_the_json_written(tmp_path: Path) -> None:
    result = read_document(ASSETS / "bench-v3-ort.json")

    def write_json(path: Path, obj: dict) -> Path:  # a test double of artifacts.write_json_atomic
        Path(path).write_text(json.dumps(obj))
        return Path(path)

    path = result.write(tmp_path / "b.json", write_json)
    assert BenchResult.read(path) == result


@pytest.mark.parametrize("name", PARITY)
def test_parity_reads_as_a_typed_result(name: str) -> None:
    raw = _raw(name)
    result = read_document(ASSETS / name)
    assert isinstance(result, ParityResult)
    assert result.gates.max_miou_drop == raw["gates"]["max_miou_drop"]
    assert result.pixel_agreement == raw["pixel_agreement"] and result.artifact == raw["artifact"]
    assert result.boundary_width_px == raw["policy"]["boundary_width_px"]


@pytest.mark.parametrize(
    ("name", "schema", "version", "knows"),
    [
        ("bench-v3-ort.json", "refinenet-deploy/bench", 4, "1, 2, 3"),
        ("bench-v3-ort.json", "refinenet-deploy/bench", 0, "1, 2, 3"),
        ("parity-v1-v3.json", "refinenet-deploy/parity", 2, "1"),
    ],
)
def test_an_unknown_version_is_refused_naming_it_and_the_fix(
    tmp_path: Path, name: str, schema: str, version: int, knows: str
) -> None:
    doc = {**_raw(name), "schema_version": version}
    path = tmp_path / "future.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as info:
        read_document(path)
    message = str(info.value.message)
    assert f"{schema} schema_version {version} is not one this rfdeploy reads (it knows {knows})" in message
    assert "Upgrade refinenet-deploy or re-run the step" in message and str(path) in message
    assert info.value.exit_code == 5
    res = CliRunner().invoke(app, ["report", str(path), "-o", str(tmp_path / "r.md")])  # the same for a user
    assert res.exit_code == 5 and f"schema_version {version} is not one this rfdeploy reads" in res.stderr


def test_versions_read_are_the_class_declarations() -> None:
    assert known_schema_versions() == {BENCH_SCHEMA: BenchResult.READS, ParityResult.SCHEMA: ParityResult.READS}
    assert max(BenchResult.READS) == BenchResult.VERSION


def test_one_speedup_rule_and_one_p50() -> None:
    fast = BenchResult("a.onnx", "onnxruntime", "cpu", LatencyStats(25.0))
    slow = BenchResult("a.safetensors", "torch", "cpu", LatencyStats(100.0))
    assert speedup_of(slow.p50_ms, fast.p50_ms) == 4.0
    assert speedup_of(None, fast.p50_ms) is None and speedup_of(slow.p50_ms, 0.0) is None
    assert p50_ms(None) is None and p50_ms({"schema": BENCH_SCHEMA}) is None  # not a readable result: no p50
    import importlib.util

    assert importlib.util.find_spec("refinenet_deploy.validate.speedup") is None  # no second home for the rule


def test_a_mistyped_field_is_refused_naming_the_field() -> None:
    doc = {**_raw("bench-v3-ort.json"), "batch": "one"}
    with pytest.raises(DataError, match=r"field 'batch' must be a positive integer"):
        BenchResult.from_dict(doc, "b.json")
    stats = {**_raw("bench-v3-ort.json")["compute_only"], "p99_ms": "slow"}
    with pytest.raises(DataError, match=r"field 'compute_only.p99_ms' must be a number"):
        BenchResult.from_dict({**_raw("bench-v3-ort.json"), "compute_only": stats}, "b.json")


def test_a_timing_without_its_p50_is_refused_naming_it() -> None:
    """Found by tests/hostile/test_fuzz.py: an empty ``compute_only`` object must be refused, not half-read."""
    doc = {**_raw("bench-v1-ort.json"), "compute_only": {}}
    with pytest.raises(DataError, match=r"missing required field 'compute_only.p50_ms'"):
        BenchResult.from_dict(doc, "b.json")


def test_parity_records_jetson_and_its_reference_as_typed_fields() -> None:
    """What the pipeline checks before importing a parity result made on a device (no ``.get`` on ``extra``)."""
    raw = _raw("parity-v1-v3.json")
    result = ParityResult.from_dict(raw, "p.json")
    assert result.jetson is False and result.reference == raw["reference"] and result.reference_digest is None
    assert "jetson" not in result.extra and "reference" not in result.extra
    assert json.dumps(result.to_dict()) == json.dumps(raw)  # written back key for key, in the file's order
    saved = ParityResult.from_dict({**raw, "reference": {**raw["reference"], "digest": "ab12"}}, "p.json")
    assert saved.reference_digest == "ab12"
    older = ParityResult.from_dict({k: v for k, v in raw.items() if k not in ("jetson", "reference")}, "p.json")
    assert older.jetson is None and "jetson" not in older.to_dict()  # not recorded: stays unrecorded
    with pytest.raises(DataError, match=r"field 'jetson' must be true or false"):
        ParityResult.from_dict({**raw, "jetson": "yes"}, "p.json")
