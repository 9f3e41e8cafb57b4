"""The one table of tolerances and gates: the README and the module docstring show what the code uses."""

from __future__ import annotations

from pathlib import Path

from refinenet_deploy.enums import Precision
from refinenet_deploy.validate import tolerances
from refinenet_deploy.validate.parity_engine import DEFAULT_GATES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_and_docstring_show_the_table_in_use() -> None:
    table = tolerances.markdown_table()
    assert table in README.read_text(), "README's 'Tolerances and gates' table is out of date: paste markdown_table()"
    assert table in tolerances.__doc__


def test_one_table_for_export_and_parity() -> None:
    # tf32 is PyTorch's mode of an FP32 model, not an artifact precision: judged by the fp16 row (10 mantissa bits)
    assert set(tolerances.TOLERANCES) == set(Precision) - {Precision.TF32}
    assert tolerances.tolerance_for("tf32") is tolerances.TOLERANCES[Precision.FP16]
    for precision, tol in tolerances.TOLERANCES.items():
        assert DEFAULT_GATES[precision.value] == tol.gates  # parity defaults come from the same rows
        assert tolerances.tolerance_for(precision.value) is tol
    assert tolerances.FP32.logits_bound(20.0) == 1e-4 + 1e-5 * 20.0
    assert tolerances.INT8.min_agreement == tolerances.DEFAULT_GATES["int8"].min_agreement == 0.97
    assert tolerances.tolerance_for("unknown") is tolerances.FP32
