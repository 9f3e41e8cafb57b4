"""What ``rfdeploy bench`` may be asked: one frozen group of options, checked once (``BenchOptions``), built by the
CLI and by the pipeline alike. Bounds are exit 2 (``UsageError``) naming the bound, before any work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...artifacts import MAX_PIXELS, MAX_SIDE, MIN_SIDE
from ...enums import Precision
from ...errors import UsageError

DEFAULT_ITERATIONS = 100
DEFAULT_WARMUP = 10  # the warm-up's minimum
DEFAULT_MAX_WARMUP = 200  # the steady-state search's cap (iterations; a time cap applies too)

MAX_ITERATIONS = 1_000_000
MAX_WARMUP = 10_000
MIN_DURATION_S, MAX_DURATION_S = 0.1, 3600.0
MAX_BATCH = 256
MAX_BATCH_PIXELS = 4 * MAX_PIXELS  # batch x height x width: 64 Mpx, a 768 MiB FP32 input
MAX_THREADS = 1024
INFERENCE_PRECISIONS = ("fp32", "fp16", "bf16")
HINTS = ("latency", "throughput")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_bench_options(
    *,
    warmup: int,
    iterations: int | None,
    duration_s: float | None,
    batch: int | None,
    input_size: tuple[int, int] | None,
    threads: int | None,
    max_warmup: int | None = None,
) -> None:
    """UsageError (exit 2) naming the bound for a numeric option out of range, before any work."""

    def bounded(name: str, value: float | None, low: float, high: float) -> None:
        if value is not None and not (low <= value <= high):
            raise UsageError(f"{name} must be {_num(low)}..{_num(high)}, got {_num(value)}")

    if iterations is not None and duration_s is not None:
        raise UsageError("--iterations and --duration exclude each other. Pass one")
    bounded("--warmup", warmup, 0, MAX_WARMUP)
    bounded("--max-warmup", max_warmup, 0, MAX_WARMUP)
    if max_warmup is not None and max_warmup < warmup:
        raise UsageError(
            f"--max-warmup {max_warmup} is below --warmup {warmup}. Pass --max-warmup {warmup} for a fixed warm-up"
        )
    bounded("--iterations", iterations, 1, MAX_ITERATIONS)
    bounded("--duration", duration_s, MIN_DURATION_S, MAX_DURATION_S)
    bounded("--batch", batch, 1, MAX_BATCH)
    bounded("--threads", threads, 1, MAX_THREADS)
    if input_size is not None:
        h, w = (int(d) for d in input_size)
        if not all(MIN_SIDE <= d <= MAX_SIDE for d in (h, w)):
            raise UsageError(f"--input-size: each side must be {MIN_SIDE}..{MAX_SIDE} pixels, got {h}x{w}")
        if h * w > MAX_PIXELS:
            raise UsageError(f"--input-size: {h}x{w} is more than {MAX_PIXELS / 1e6:.1f} MP (4096x4096)")
        if (batch or 1) * h * w > MAX_BATCH_PIXELS:
            raise UsageError(
                f"--batch {batch} x {h}x{w} is {(batch or 1) * h * w / 1e6:.0f} Mpx per inference; at most "
                f"{MAX_BATCH_PIXELS / 1e6:.0f} Mpx. Lower --batch or --input-size"
            )


def normalize_inference_precision(value: str | None) -> str | None:
    """fp32 | fp16 | bf16 in any spelling ``enums.Precision`` accepts (OpenVINO's f32/f16 too); None stays None."""
    if value is None:
        return None
    allowed = tuple(Precision(p) for p in INFERENCE_PRECISIONS)
    return Precision.parse(value, allowed=allowed, option="--inference-precision").value


@dataclass(frozen=True)
class BenchOptions:
    """How to time an artifact. Checked in ``__post_init__`` (exit 2 naming the option); what does not apply to
    the artifact's runtime or device is refused when the artifact is known (``benchmark``), never ignored.

    ``warmup`` is the warm-up's minimum; warm-up then goes on until the timings settle (``validate.timing``), at
    most ``max_warmup`` iterations (default ``max(warmup, 200)``); ``max_warmup == warmup`` is a fixed warm-up."""

    runtime: str = "auto"
    device: str | None = None
    batch: int | None = None
    input_size: tuple[int, int] | None = None
    warmup: int = DEFAULT_WARMUP
    max_warmup: int | None = None
    iterations: int | None = None
    duration_s: float | None = None
    threads: int | None = None
    hint: str = "latency"
    inference_precision: str | None = None
    allow_fallback: bool = False
    end_to_end: bool = False
    data: str | Path | None = None
    peak: bool = True
    cuda_graph: bool = False
    torch_precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None
    cudnn_benchmark: bool | None = None  # None: on for a GPU (recorded), not applicable on the CPU

    def __post_init__(self) -> None:
        check_bench_options(
            warmup=self.warmup,
            iterations=self.iterations,
            duration_s=self.duration_s,
            batch=self.batch,
            input_size=self.input_size,
            threads=self.threads,
            max_warmup=self.max_warmup,
        )
        if self.hint not in HINTS:
            raise UsageError(f"unsupported --hint: {self.hint}. Use latency or throughput")
        object.__setattr__(self, "inference_precision", normalize_inference_precision(self.inference_precision))
        if self.data is not None and not self.end_to_end:
            raise UsageError("--data is the image folder for --end-to-end. Add --end-to-end or drop --data")
        if self.compile_mode is not None and not self.compile:
            object.__setattr__(self, "compile", True)  # --compile-mode MODE implies --compile

    @property
    def warmup_cap(self) -> int:
        return self.max_warmup if self.max_warmup is not None else max(self.warmup, DEFAULT_MAX_WARMUP)

    @property
    def timed_iterations(self) -> int | None:
        return None if self.duration_s else (self.iterations or DEFAULT_ITERATIONS)
