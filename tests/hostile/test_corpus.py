"""Issue #14: every case of the hostile-input corpus (``corpus.CASES``) gets its exit code, a one-line ``error:``
message naming what is wrong, no traceback, and a working folder that is byte-identical afterwards except for the
outputs of a successful run (hidden staging debris included). Cases run in-process; the few where a broken tool
could allocate without bound run in a subprocess under an address-space limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from .corpus import CASES, Case, check_case


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(case: Case, work: Path) -> None:
    problems = check_case(case, work)
    assert not problems, "\n".join(problems)


def test_no_case_expects_an_internal_error() -> None:
    """Exit 1 is for bugs in rfdeploy: no hostile input may be answered with it (``check_case`` also fails any case
    whose stderr says "internal error", whatever its exit code)."""
    assert [c.id for c in CASES if c.exit_code == 1] == []


def test_corpus_size_and_groups() -> None:
    groups = {c.group for c in CASES}
    assert len(CASES) >= 150
    assert groups == {"checkpoint", "onnx", "image", "label", "option", "report", "output"}
    assert len({c.id for c in CASES}) == len(CASES)
