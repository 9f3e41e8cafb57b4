"""Per-precision tolerances, passed explicitly wherever outputs are compared.

FP32 logits must satisfy |test - ref| <= ATOL + RTOL * |ref| element-wise; for exports that is 1e-4
absolute (RTOL 0). A class-map output (argmax head) at FP32 must equal PyTorch's upsampled argmax except
at numerical ties: pixels whose two best reference logits are within ATOL of each other. Lower
precisions are judged on argmax agreement of the class map.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    atol: float | None  # element-wise logits tolerance; None: logits are not compared element-wise
    rtol: float
    min_agreement: float  # fraction of pixels whose argmax class must agree


FP32 = Tolerance(atol=1e-4, rtol=0.0, min_agreement=0.999)
FP16 = Tolerance(atol=None, rtol=0.0, min_agreement=0.995)
INT8 = Tolerance(atol=None, rtol=0.0, min_agreement=0.95)

BY_PRECISION = {"fp32": FP32, "fp16": FP16, "int8": INT8}
