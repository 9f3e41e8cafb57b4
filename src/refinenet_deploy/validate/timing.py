"""Timing loops that receive a runner: warm-up, then per-iteration ``perf_counter_ns`` timings.

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


@dataclass(frozen=True)
class TimingPlan:
    warmup: int = 10
    iterations: int | None = 100  # fixed count, or
    duration_s: float | None = None  # run until this much time has passed (at least ``min_iterations``)
    min_iterations: int = 5

    def __post_init__(self) -> None:
        if (self.iterations is None) == (self.duration_s is None):
            raise ValueError("give exactly one of iterations and duration_s")
        if self.warmup < 0 or (self.iterations is not None and self.iterations < 1):
            raise ValueError("warmup must be >= 0 and iterations >= 1")

    def describe(self, *, device_sync: bool = False) -> str:
        """The protocol in words; ``device_sync`` (GPU runs only) says the device was synchronised per sample."""
        stop = f"{self.iterations} timed iterations" if self.iterations else f"timed iterations for {self.duration_s} s"
        return f"{self.warmup} warm-up iterations, then {stop}; perf_counter_ns around each" + (
            ", device synchronised" if device_sync else ""
        )


def time_loop(
    step: Callable[[], object],
    plan: TimingPlan,
    *,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> list[int]:
    """Nanoseconds per call of ``step`` after ``plan.warmup`` untimed calls."""
    for _ in range(plan.warmup):
        step()
        if sync:
            sync()
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
