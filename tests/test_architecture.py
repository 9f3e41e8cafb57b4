"""The layout stays as the README's Architecture section draws it: layers with no arrow running back, optional
backends imported only inside their own package, and artifact files renamed into place only by the artifact
layer. These tests read the source (``ast``); they import nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "refinenet_deploy"
PACKAGE = "refinenet_deploy"

# Bottom to top. A module may import from its own rank or below, never above.
LAYERS: dict[str, int] = {
    "__init__": 0,
    "errors": 0,
    "_optional": 0,
    "enums": 0,
    "environment": 1,
    "jetson": 1,
    "telemetry": 1,
    "results": 1,  # typed result documents: errors, enums and the standard library only
    "data": 1,
    "artifacts": 2,
    "models": 2,
    "backends": 3,
    "calibration": 4,
    "validate": 5,
    "operations": 6,
    "cli": 7,
    "__main__": 7,  # python -m refinenet_deploy: the CLI
}

# Optional third-party packages and the only places that may import them.
OPTIONAL_HOMES = {
    "tensorrt": ("backends/tensorrt",),
    "tensorrt_rtx": ("backends/tensorrt",),
    "cuda": ("backends/tensorrt",),
    "openvino": ("backends/openvino",),
    "nncf": ("calibration/nncf.py",),
    "modelopt": ("calibration/qdq.py",),
}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
        out.append((".".join([PACKAGE, *parts]) if parts != ["__init__"] else PACKAGE, path))
    return out


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) for every import in the file, module level or inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.level and not node.module:  # from . import x, y: each name may be a module
                found += [(f"{target}.{a.name}", node.lineno) for a in node.names]
            else:
                found.append((target, node.lineno))
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts == [PACKAGE]:
        return "__init__"
    return parts[1]


def test_every_top_level_module_has_a_layer() -> None:
    tops = {_layer(m) for m, _ in _modules()}
    assert tops <= set(LAYERS), f"modules without a layer (add them to LAYERS and the README): {tops - set(LAYERS)}"


def test_no_import_runs_back_down_the_layers() -> None:
    backward = []
    for module, path in _modules():
        here = LAYERS[_layer(module)]
        for target, line in _imports(module, path):
            if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
                continue
            layer = _layer(target)
            if layer not in LAYERS:  # e.g. "from . import __version__" resolved to refinenet_deploy.__version__
                continue
            if LAYERS[layer] > here:
                backward.append(f"{path.relative_to(SRC)}:{line} ({_layer(module)}) imports {target} ({layer})")
    assert not backward, "imports that run back up the layers:\n" + "\n".join(backward)


def test_validate_receives_runners_and_imports_no_backend() -> None:
    """``validate`` sits above the backends but never imports them (or calibration): it is handed runners."""
    found = []
    for module, path in _modules():
        if _layer(module) != "validate":
            continue
        for target, line in _imports(module, path):
            if target.startswith(PACKAGE + ".") and _layer(target) in ("backends", "calibration"):
                found.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert not found, "\n".join(found)


def test_backends_do_not_import_each_other() -> None:
    names = ("onnxruntime", "openvino", "tensorrt", "torch")
    crossing = []
    for module, path in _modules():
        parts = module.split(".")
        if len(parts) < 3 or parts[1] != "backends" or parts[2] not in names:
            continue
        for target, line in _imports(module, path):
            t = target.split(".")
            if len(t) >= 3 and t[:2] == [PACKAGE, "backends"] and t[2] in names and t[2] != parts[2]:
                crossing.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert not crossing, "\n".join(crossing)


@pytest.mark.parametrize("package", sorted(OPTIONAL_HOMES))
def test_optional_backends_are_imported_only_in_their_package(package: str) -> None:
    homes = OPTIONAL_HOMES[package]
    outside = []
    for module, path in _modules():
        rel = str(path.relative_to(SRC))
        if rel.startswith(homes):
            continue
        for target, line in _imports(module, path):
            if target == package or target.startswith(package + "."):
                outside.append(f"{rel}:{line}")
        # _optional.require("openvino", ...) is an import too
        for m in re.finditer(rf"""require\(\s*["']{re.escape(package)}[."']""", path.read_text()):
            outside.append(f"{rel}: require({package!r}) at offset {m.start()}")
    assert not outside, f"{package} imported outside {homes}: {outside}"


def test_only_the_artifact_layer_renames_files_into_place() -> None:
    """Model files, sidecars, checkpoints and reports reach the disk through ``artifacts`` (``write_atomic``,
    ``staged_artifact``); the synthetic-dataset writer in ``data`` (below that layer) keeps its own for images."""
    allowed = {"artifacts/staging.py", "data/synth.py"}
    pattern = re.compile(r"\bos\.replace\(|\bos\.rename\(|\.rename\(|shutil\.move\(")
    found = []
    for _, path in _modules():
        rel = str(path.relative_to(SRC))
        if rel in allowed:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{rel}:{i}: {line.strip()}")
    assert not found, "renames outside the artifact layer:\n" + "\n".join(found)


def test_the_import_reader_sees_relative_imports() -> None:
    """The checks above would pass vacuously if relative imports were not resolved: spot-check one."""
    path = SRC / "operations" / "parity" / "run.py"
    targets = {t for t, _ in _imports(f"{PACKAGE}.operations.parity.run", path)}
    assert f"{PACKAGE}.validate.parity_engine" in targets and f"{PACKAGE}.backends" in targets


def test_no_private_module_of_another_package_is_imported() -> None:
    """Public APIs only (``typer._click`` was one: Typer's vendored Click is reached through ``typer``'s names)."""
    bad = []
    for module, path in _modules():
        for target, line in _imports(module, path):
            parts = target.split(".")
            if parts[0] != PACKAGE and any(p.startswith("_") and not p.startswith("__") for p in parts[1:]):
                bad.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert not bad, "\n".join(bad)
