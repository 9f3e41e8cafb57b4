"""The core installs and imports without the optional backends."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED = ("tensorrt", "openvino", "nncf", "pycuda", "cuda", "modelopt")


def test_every_submodule_imports_with_optional_backends_blocked() -> None:
    code = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        for name in {BLOCKED!r}:
            sys.modules[name] = None  # any import of it now raises ImportError
        import refinenet_deploy
        names = [m.name for m in pkgutil.walk_packages(refinenet_deploy.__path__, "refinenet_deploy.")]
        for name in names:
            importlib.import_module(name)
        print(len(names))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 20


def test_cli_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, refinenet_deploy.cli; "
        "print(','.join(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""  # `rfdeploy --help` stays fast
