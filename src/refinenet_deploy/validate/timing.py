"""Timing loops that receive a runner: warm-up, then per-iteration ``perf_counter_ns`` timings.

The steady-state protocol: after ``warmup`` iterations (the minimum), warm-up goes on in windows of ``window``
iterations until the medians of the last two windows differ by at most ``settle_tolerance`` (relative), or until
``max_warmup`` iterations / ``max_warmup_s`` seconds (the cap); what happened is recorded (``WarmupRecord``).
``max_warmup`` None (or equal to ``warmup``) is a fixed warm-up of ``warmup`` iterations.

``sync`` is called after each inference before the clock is read (for GPU runners: a CUDA stream
synchronisation), so every sample covers finished work. Compute-only timing feeds the same pre-built input
each iteration (runtime call + host<->device copies the runner does); end-to-end timing adds image decode,
preprocessing and the argmax on the host, and is labelled as such. ``throughput_loop`` keeps several
asynchronous requests in flight (OpenVINO's throughput hint) and measures images per second of wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

SETTLE_WINDOW = 5  # warm-up iterations per window
SETTLE_TOLERANCE = 0.05  # the last two windows' medians within 5 % of each other
MAX_WARMUP_S = 15.0  # the warm-up's time cap


@dataclass(frozen=True)
class TimingPlan:
    warmup: int = 10  # warm-up iterations: the minimum (steady state) or the exact count (fixed)
    iterations: int | None = 100  # fixed count, or
    duration_s: float | None = None  # run until this much time has passed (at least ``min_iterations``)
    min_iterations: int = 5
    max_warmup: int | None = None  # steady state: warm up until settled, at most this many; None: fixed warm-up
    max_warmup_s: float = MAX_WARMUP_S
    window: int = SETTLE_WINDOW
    settle_tolerance: float = SETTLE_TOLERANCE

    def __post_init__(self) -> None:
        if (self.iterations is None) == (self.duration_s is None):
            raise ValueError("give exactly one of iterations and duration_s")
        if self.warmup < 0 or (self.iterations is not None and self.iterations < 1):
            raise ValueError("warmup must be >= 0 and iterations >= 1")
        if self.max_warmup is not None and self.max_warmup < self.warmup:
            raise ValueError("max_warmup must be >= warmup")
        if self.window < 2 or not (0 < self.settle_tolerance < 1) or self.max_warmup_s <= 0:
            raise ValueError("window must be >= 2, settle_tolerance in (0, 1), max_warmup_s > 0")

    @property
    def steady(self) -> bool:
        """Whether warm-up searches for a steady state (else it is a fixed count)."""
        return self.max_warmup is not None and self.max_warmup > self.warmup

    def describe(self, *, device_sync: bool = False, warmup: WarmupRecord | None = None) -> str:
        """The protocol in words; ``device_sync`` (GPU runs only) says the device was synchronised per sample;
        ``warmup`` (what the warm-up did) replaces the planned count by what ran."""
        stop = f"{self.iterations} timed iterations" if self.iterations else f"timed iterations for {self.duration_s} s"
        if warmup is not None and warmup.steady:
            state = "settled" if warmup.converged else f"not settled, capped ({warmup.stopped_by})"
            warm = f"{warmup.iterations} warm-up iterations ({state})"
        else:
            warm = f"{warmup.iterations if warmup else self.warmup} warm-up iterations"
        return f"{warm}, then {stop}; perf_counter_ns around each" + (", device synchronised" if device_sync else "")


@dataclass(frozen=True)
class WarmupRecord:
    """What the warm-up did: how many iterations, whether the window medians settled, and why it stopped."""

    iterations: int
    steady: bool  # a steady-state search (else a fixed count)
    converged: bool | None  # None for a fixed warm-up (not checked)
    stopped_by: str  # "settled" | "iterations cap" | "time cap" | "fixed count"
    window: int
    settle_tolerance: float
    max_iterations: int
    max_seconds: float
    window_medians_ms: list[float]

    def to_dict(self) -> dict[str, object]:
        return {
            "iterations": self.iterations,
            "steady_state": self.steady,
            "converged": self.converged,
            "stopped_by": self.stopped_by,
            "window": self.window,
            "settle_tolerance": self.settle_tolerance,
            "max_iterations": self.max_iterations,
            "max_seconds": self.max_seconds,
            "window_medians_ms": [round(m, 6) for m in self.window_medians_ms],
        }


def settled(samples: list[int], window: int, tolerance: float) -> bool:
    """Whether the medians of the last two windows of ``samples`` are within ``tolerance`` of each other."""
    if len(samples) < 2 * window:
        return False
    previous = float(np.median(samples[-2 * window : -window]))
    last = float(np.median(samples[-window:]))
    return previous > 0 and abs(last - previous) <= tolerance * previous


def warm_up(
    step: Callable[[], object],
    plan: TimingPlan,
    *,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> WarmupRecord:
    """Run the plan's warm-up: a fixed count, or (steady state) at least ``plan.warmup`` iterations, then on until
    the last two windows' medians settle or a cap is reached."""
    samples: list[int] = []
    cap = plan.max_warmup if plan.steady else plan.warmup
    start = clock()
    stopped_by = "fixed count"
    while len(samples) < cap:
        t0 = clock()
        step()
        if sync:
            sync()
        t1 = clock()
        samples.append(t1 - t0)
        if not plan.steady or len(samples) < plan.warmup:
            continue
        if settled(samples, plan.window, plan.settle_tolerance):
            stopped_by = "settled"
            break
        if t1 - start >= plan.max_warmup_s * 1e9:
            stopped_by = "time cap"
            break
    else:
        if plan.steady:
            stopped_by = "iterations cap"
    medians = [
        float(np.median(samples[i : i + plan.window])) / 1e6
        for i in range(0, len(samples) - plan.window + 1, plan.window)
    ]
    return WarmupRecord(
        iterations=len(samples),
        steady=plan.steady,
        converged=(stopped_by == "settled") if plan.steady else None,
        stopped_by=stopped_by,
        window=plan.window,
        settle_tolerance=plan.settle_tolerance,
        max_iterations=cap,
        max_seconds=plan.max_warmup_s,
        window_medians_ms=medians,
    )


@dataclass(frozen=True)
class TimedRun:
    samples_ns: list[int]
    warmup: WarmupRecord


def timed_run(
    step: Callable[[], object],
    plan: TimingPlan,
    *,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> TimedRun:
    """The warm-up (``warm_up``), then the timed iterations: nanoseconds per call of ``step``."""
    record = warm_up(step, plan, sync=sync, clock=clock)
    return TimedRun(_timed(step, plan, sync, clock), record)


def time_loop(
    step: Callable[[], object],
    plan: TimingPlan,
    *,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> list[int]:
    """Nanoseconds per call of ``step`` after the plan's warm-up."""
    return timed_run(step, plan, sync=sync, clock=clock).samples_ns


def _timed(
    step: Callable[[], object], plan: TimingPlan, sync: Callable[[], None] | None, clock: Callable[[], int]
) -> list[int]:
    samples: list[int] = []
    deadline = None if plan.duration_s is None else clock() + int(plan.duration_s * 1e9)
    while True:
        t0 = clock()
        step()
        if sync:
            sync()
        t1 = clock()
        samples.append(t1 - t0)
        if plan.iterations is not None and len(samples) >= plan.iterations:
            break
        if deadline is not None and t1 >= deadline and len(samples) >= plan.min_iterations:
            break
    return samples


def compute_step(runner: object, inputs: Mapping[str, np.ndarray]) -> Callable[[], object]:
    """One inference on a fixed input: what 'compute-only' latency measures."""
    infer = runner.infer  # type: ignore[attr-defined]
    return lambda: infer(inputs)


def end_to_end_step(
    runner: object,
    input_name: str,
    load: Callable[[int], np.ndarray],
    prepare: Callable[[np.ndarray], np.ndarray],
    count: int,
) -> Callable[[], object]:
    """Decode an image, preprocess it, infer, argmax on the host: what a deployed pipeline pays per frame."""
    infer = runner.infer  # type: ignore[attr-defined]
    state = {"i": 0}

    def step() -> object:
        image = load(state["i"] % count)
        state["i"] += 1
        out = next(iter(infer({input_name: prepare(image)}).values()))
        return out if np.issubdtype(out.dtype, np.integer) else out.argmax(1)

    return step


@dataclass(frozen=True)
class ThroughputSamples:
    """What ``throughput_loop`` saw: each request's own latency, and the wall time of the timed phase."""

    latencies_ns: list[int]
    wall_ns: int
    requests: int  # infer requests kept in flight


def throughput_loop(
    pool: object,
    inputs: Mapping[str, np.ndarray],
    plan: TimingPlan,
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> ThroughputSamples:
    """Keep ``pool.jobs`` asynchronous requests busy, as benchmark_app does for the throughput hint.

    ``pool`` has ``jobs``, ``submit(inputs)`` (blocks while every request is busy), ``wait_all()`` and
    ``latencies_ms`` (appended by each completion). Warm-up: ``max(plan.warmup, jobs)`` submissions, then a wait.
    Timed: submissions until ``plan.iterations`` were started or ``plan.duration_s`` passed, then a wait for the
    last ones; the wall time runs from the first timed submission to the last completion."""
    jobs = int(pool.jobs)  # type: ignore[attr-defined]
    submit, wait_all = pool.submit, pool.wait_all  # type: ignore[attr-defined]
    latencies: list[float] = pool.latencies_ms  # type: ignore[attr-defined]
    for _ in range(max(plan.warmup, jobs) if plan.warmup else 0):
        submit(inputs)
    wait_all()
    del latencies[:]
    started = 0
    t0 = clock()
    deadline = None if plan.duration_s is None else t0 + int(plan.duration_s * 1e9)
    while True:
        submit(inputs)
        started += 1
        if plan.iterations is not None and started >= plan.iterations:
            break
        if deadline is not None and clock() >= deadline and started >= max(plan.min_iterations, jobs):
            break
    wait_all()
    wall = clock() - t0
    return ThroughputSamples([int(ms * 1e6) for ms in latencies], wall, jobs)
