"""The artifact layer is a package with one job per module; callers keep importing every name from
``refinenet_deploy.artifacts``, and the renames that put files into place live in ``staging`` alone."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import refinenet_deploy.artifacts as artifacts

PACKAGE = Path(artifacts.__file__).parent

# Where each public name lives; the package re-exports all of them (callers across src/ and tests/ use them).
HOMES = {
    "paths": (
        "FORMATS check_output_path companion_paths ensure_parent is_inside probe_output remove_created sha256_file "
        "sidecar_path utc_now"
    ),
    "staging": (
        "OWNER_FILE TMP_SUFFIX ArtifactResult Staging clean_stale staged_artifact staged_dir write_atomic "
        "write_json_atomic write_refused"
    ),
    "metadata": (
        "MODEL_KEYS ONNX_METADATA_KEY artifact_precision embed_onnx_metadata "
        "load_onnx_artifact provenance read_metadata sidecar"
    ),
    "onnx": (
        "INLINE_LIMIT_BYTES check_external_data check_onnx_graph copy_model_files external_data_files load_onnx "
        "onnx_precision"
    ),
    "inputs": (
        "INPUT_FORMATS MAX_PIXELS MAX_SIDE MIN_SIDE InputPolicy checkpoint_input_size parse_hw resolve_input_size "
        "spatial_size"
    ),
}


@pytest.mark.parametrize("module", sorted(HOMES))
def test_every_name_is_reexported_from_its_home(module: str) -> None:
    home = importlib.import_module(f"refinenet_deploy.artifacts.{module}")
    for name in HOMES[module].split():
        assert getattr(artifacts, name) is getattr(home, name), name
        assert name in artifacts.__all__, name


def test_all_lists_exactly_the_homes() -> None:
    assert sorted(artifacts.__all__) == sorted(n for names in HOMES.values() for n in names.split())


def test_modules_stay_small_and_only_staging_renames() -> None:
    rename = re.compile(r"\bos\.replace\(|\bos\.rename\(|\.rename\(|shutil\.move\(")
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) <= 450, path.name
        assert path.name == "staging.py" or not rename.search(text), path.name


def test_the_sidecar_schema_version_is_defined_once_in_results() -> None:
    from refinenet_deploy.artifacts import metadata
    from refinenet_deploy.results import SIDECAR_SCHEMA_VERSION

    assert metadata.sidecar("onnx", "fp32")["schema_version"] == SIDECAR_SCHEMA_VERSION
    for path in sorted(PACKAGE.glob("*.py")):
        assert not re.search(r"^\w*SCHEMA_VERSIONS? *=", path.read_text(), re.M), path.name
