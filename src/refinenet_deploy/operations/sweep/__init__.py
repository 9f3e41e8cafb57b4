"""``rfdeploy sweep``: which input size, precision and runtime meet a latency budget with the least mIoU loss.

| module | job |
|---|---|
| ``plan`` | ``SweepSettings`` (sizes, targets, budgets), checked once; the ``[sweep]`` config table |
| ``build`` | each artifact declared once: the call here and the command elsewhere (``BuildSpec``) |
| ``steps`` | the keyed steps: data, one dynamic export, IRs, engines per size, a cell per (size, target) |
| ``measure`` | one cell: mIoU at the label's resolution, per-class IoU, latency p50/p99, size, memory |
| ``run`` | ``Sweep``: the folder, its lock and state (``pipeline.bundle``), resumable |
| ``report`` | ``sweep.json`` (a ``results.SweepDocument``), fronts and picks (``validate.pareto``), Markdown, chart |
"""

from __future__ import annotations

from ...results.sweep import SWEEP_SCHEMA, SWEEP_SCHEMA_VERSION, SweepDocument
from .plan import (
    DEFAULT_SIZES,
    DEFAULT_TARGETS,
    SIZE_MULTIPLE,
    SizeSpec,
    SweepSettings,
    load_folder_settings,
    load_sweep_config,
    make_settings,
    parse_sizes,
)
from .report import SWEEP_FILE
from .run import Sweep, SweepResult

__all__ = [
    "DEFAULT_SIZES",
    "DEFAULT_TARGETS",
    "SIZE_MULTIPLE",
    "SWEEP_FILE",
    "SWEEP_SCHEMA",
    "SWEEP_SCHEMA_VERSION",
    "SizeSpec",
    "Sweep",
    "SweepDocument",
    "SweepResult",
    "SweepSettings",
    "load_folder_settings",
    "load_sweep_config",
    "make_settings",
    "parse_sizes",
]
