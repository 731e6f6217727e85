"""Honest timing: warm up, size the repetitions from a time budget, report the median and the spread.

Every figure the measurement reports is a rate (bytes/s or FLOP/s) derived from a ``Timing``: the
median of repeated runs, with the interquartile range and the best run beside it. A run is a callable
that does the work once and returns its own elapsed seconds, so a GPU run can time itself with
device events and a thread-pool run can leave its dispatch outside the clock.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

Run = Callable[[], float]  # does the work once; returns the seconds it took

NOISY_SPREAD = 0.10  # a figure whose interquartile range exceeds 10 % of its median is flagged as noisy


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds per run over repeated runs (warm-up excluded)."""

    times_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def quartiles_s(self) -> tuple[float, float]:
        """First and third quartile; with fewer than 4 runs, the fastest and slowest."""
        if len(self.times_s) < 4:
            return min(self.times_s), max(self.times_s)
        q1, _, q3 = statistics.quantiles(self.times_s, n=4, method="inclusive")
        return q1, q3

    @property
    def min_s(self) -> float:
        return min(self.times_s)

    @property
    def spread(self) -> float:
        """Interquartile range over the median: 0.02 means the middle half of the runs lie within 2 %."""
        q1, q3 = self.quartiles_s
        return (q3 - q1) / self.median_s

    def rate(self, work: float, unit: str) -> dict[str, float | list[float]]:
        """``work`` per second (``unit`` = "bytes" or "flops"): median, IQR, best, spread, repetitions."""
        q1, q3 = self.quartiles_s
        return {
            f"{unit}_per_s": work / self.median_s,
            f"{unit}_per_s_iqr": [work / q3, work / q1],
            f"{unit}_per_s_best": work / self.min_s,
            "time_s": self.median_s,
            "spread": self.spread,
            "repetitions": len(self.times_s),
        }


def autorange(make_run: Callable[[int], Run], min_run_s: float, max_repeat: int = 1 << 24) -> tuple[int, Run]:
    """A repeat count whose run lasts at least ``min_run_s``, and that run.

    ``make_run(repeat)`` builds a run that does the work ``repeat`` times. The count grows from 1 by
    the ratio still missing (at least doubling); each trial run doubles as a warm-up.
    """
    repeat = 1
    while True:
        run = make_run(repeat)
        elapsed_s = run()
        if elapsed_s >= min_run_s or repeat >= max_repeat:
            return repeat, run
        repeat = min(max_repeat, max(2 * repeat, int(1.2 * repeat * min_run_s / max(elapsed_s, 1e-9))))


def sample(run: Run, budget_s: float, min_reps: int = 5, max_reps: int = 200, warmup: int = 1) -> Timing:
    """Warm up, then repeat ``run`` as often as ``budget_s`` allows (at least ``min_reps`` times).

    The first warm-up run also estimates the cost of one run, which sizes the repetitions. Runs stop
    early once twice the budget is spent (a machine that slowed down must not blow the budget),
    but never before ``min_reps``.
    """
    estimate_s = max(run() for _ in range(max(1, warmup)))
    reps = int(min(max_reps, max(min_reps, budget_s / max(estimate_s, 1e-9))))
    times: list[float] = []
    spent_s = 0.0
    for _ in range(reps):
        elapsed_s = run()
        times.append(elapsed_s)
        spent_s += elapsed_s
        if len(times) >= min_reps and spent_s > 2 * budget_s:
            break
    return Timing(tuple(times))


class Schedule:
    """Shares a time budget among weighted steps, and draws a one-line progress bar on stderr.

    Each step gets its weight's share of the time still left, so a step that overran (a loaded
    machine, a slow allocation) is paid for by the steps after it, and the whole measurement ends
    close to the budget. A step whose share has run out still makes its minimum repetitions.
    """

    def __init__(self, budget_s: float, total_weight: float, show: bool, stream: TextIO | None = None) -> None:
        self.budget_s = budget_s
        self.total_weight = max(total_weight, 1e-9)
        self.show = show
        self.stream = stream or sys.stderr
        self.done_weight = 0.0
        self.start_s = time.perf_counter()
        self._last_len = 0

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.start_s

    @contextmanager
    def step(self, label: str, weight: float) -> Iterator[float]:
        """Run one step: yields its time slice in seconds; its weight counts as done afterwards."""
        remaining_weight = max(self.total_weight - self.done_weight, weight, 1e-9)
        slice_s = max(0.0, weight * (self.budget_s - self.elapsed_s()) / remaining_weight)
        self._draw(label)
        yield slice_s
        self.done_weight = min(self.total_weight, self.done_weight + weight)

    def _draw(self, label: str) -> None:
        if not self.show:
            return
        fraction = self.done_weight / self.total_weight
        bar = "#" * round(fraction * 28)
        line = f"measure [{bar.ljust(28, '.')}] {100 * fraction:3.0f}% {self.elapsed_s():5.1f} s  {label}"
        self.stream.write("\r" + line.ljust(self._last_len))
        self.stream.flush()
        self._last_len = len(line)

    def finish(self) -> None:
        if self.show and self._last_len:
            self.stream.write("\r" + " " * self._last_len + "\r")
            self.stream.flush()
