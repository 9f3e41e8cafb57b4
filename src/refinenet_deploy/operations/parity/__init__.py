"""``rfdeploy parity``: does a deployed artifact still segment like PyTorch? One job per module:

| module | job |
|---|---|
| ``options`` | ``ParityOptions``, the bounds of every option, checked once; the checks of inputs and outputs |
| ``source`` | the PyTorch side, chosen once: a saved ``reference.npz``, a cached one, or the checkpoint live |
| ``run`` | ``validate_parity``: one artifact, one comparison path, one report |
| ``compare`` | ``compare_artifacts``: several artifacts, one PyTorch pass (a temporary reference cache) |
| ``save`` | ``save_reference``: the PyTorch side alone, saved to compare with later without PyTorch |
| ``outputs`` | the JSON/Markdown report and the exits a run ends with (gates: 3, labels: 5) |

PyTorch and the models are imported only where the PyTorch side actually runs.
"""

from __future__ import annotations

from .compare import compare_artifacts
from .options import (
    SCALE_RANGE,
    ParityOptions,
    check_gate_options,
    check_parity_outputs,
    check_request,
    check_save_worst,
    check_scales,
    check_torch_options,
    parse_scales,
    resolve_reference_cache,
)
from .outputs import raise_for_comparison, raise_for_gates, raise_for_labels, write_parity_outputs
from .run import validate_parity
from .save import SavedReferenceResult, save_reference
from .source import REFERENCE_PACKAGES, ReferenceSource, _load, choose_reference

__all__ = [
    "REFERENCE_PACKAGES",
    "SCALE_RANGE",
    "ParityOptions",
    "ReferenceSource",
    "SavedReferenceResult",
    "_load",
    "check_gate_options",
    "check_parity_outputs",
    "check_request",
    "check_save_worst",
    "check_scales",
    "check_torch_options",
    "choose_reference",
    "compare_artifacts",
    "parse_scales",
    "raise_for_comparison",
    "raise_for_gates",
    "raise_for_labels",
    "resolve_reference_cache",
    "save_reference",
    "validate_parity",
    "write_parity_outputs",
]
