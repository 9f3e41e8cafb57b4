"""One table of per-precision tolerances and gates, used by export verification, parity defaults and the README.

| precision | logits atol | logits rtol | min argmax/pixel agreement | max abs mIoU drop (pt) |
|---|---|---|---|---|
| fp32 | 1e-4 | 1e-5 | 99.9 % | 0.1 |
| fp16 | - | - | 99.5 % | 0.3 |
| bf16 | - | - | 99.0 % | 0.5 |
| int8 | - | - | 97.0 % | 1.0 |

FP32 logits must satisfy max|test - ref| <= ATOL + RTOL * max|ref|: 1e-4 absolute plus 1e-5 of the largest logit.
The relative term exists because float32 results depend on summation order, which differs between CPU kernels
(AVX2, AVX-512, AMX), BN folding and runtimes, and the error grows with the activations' scale: RF-152 with random
weights at 64x64 measured 1.06e-4 on an AVX-512/AMX Xeon and 3.05e-4 on an AVX2-only EPYC (3.41e-4 for the 2-scale
RF-101 at 75x101), all within this bound. A class-map output (argmax head) at FP32 must equal PyTorch's upsampled
argmax except at numerical ties: pixels whose two best reference logits are within ATOL of each other. Lower
precisions are judged on argmax agreement of the class map (export verification) and on the parity gates (mIoU drop
and pixel agreement against PyTorch); the two use the same agreement number.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..enums import Precision


@dataclass(frozen=True)
class Gates:
    """Parity pass/fail thresholds; the mIoU gate is two-sided (an unexpected improvement fails too)."""

    max_miou_drop: float  # points of mIoU (0-100 scale), |reference - backend|
    min_agreement: float  # fraction of pixels whose class agrees with PyTorch


@dataclass(frozen=True)
class Tolerance:
    """How closely a precision must follow PyTorch FP32."""

    atol: float | None  # element-wise logits tolerance; None: logits are not compared element-wise
    rtol: float
    min_agreement: float  # fraction of pixels whose argmax class must agree
    max_miou_drop: float = 0.1  # parity gate, points of mIoU

    @property
    def gates(self) -> Gates:
        return Gates(max_miou_drop=self.max_miou_drop, min_agreement=self.min_agreement)

    def logits_bound(self, ref_scale: float) -> float | None:
        """The largest allowed max|test - ref| for logits whose largest |value| is ``ref_scale``."""
        return None if self.atol is None else self.atol + self.rtol * ref_scale


FP32 = Tolerance(atol=1e-4, rtol=1e-5, min_agreement=0.999, max_miou_drop=0.1)
FP16 = Tolerance(atol=None, rtol=0.0, min_agreement=0.995, max_miou_drop=0.3)
BF16 = Tolerance(atol=None, rtol=0.0, min_agreement=0.99, max_miou_drop=0.5)
INT8 = Tolerance(atol=None, rtol=0.0, min_agreement=0.97, max_miou_drop=1.0)

TOLERANCES: dict[Precision, Tolerance] = {
    Precision.FP32: FP32,
    Precision.FP16: FP16,
    Precision.BF16: BF16,
    Precision.INT8: INT8,
}
DEFAULT_GATES: dict[str, Gates] = {p.value: t.gates for p, t in TOLERANCES.items()}


def tolerance_for(precision: str) -> Tolerance:
    """The tolerance row of ``precision`` (fp32 for anything unknown; PyTorch's tf32, 10 mantissa bits like fp16,
    takes the fp16 row)."""
    if str(precision).lower() == "tf32":
        return TOLERANCES[Precision.FP16]
    try:
        return TOLERANCES[Precision(precision)]
    except ValueError:
        return FP32


def markdown_table() -> str:
    """The table above, rendered from ``TOLERANCES`` (the README's copy is checked against it)."""
    lines = [
        "| precision | logits atol | logits rtol | min argmax/pixel agreement | max abs mIoU drop (pt) |",
        "|---|---|---|---|---|",
    ]
    for p, t in TOLERANCES.items():
        atol = "-" if t.atol is None else f"{t.atol:.0e}".replace("e-0", "e-")
        rtol = "-" if t.atol is None else f"{t.rtol:.0e}".replace("e-0", "e-")
        lines.append(f"| {p} | {atol} | {rtol} | {t.min_agreement * 100:.1f} % | {t.max_miou_drop:.1f} |")
    return "\n".join(lines)
