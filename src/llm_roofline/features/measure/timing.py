"""Honest timing: warm up, size the repetitions from a time budget, report the median and the spread.

Every figure the measurement reports is a rate (bytes/s or FLOP/s) derived from a ``Timing``: the
median of repeated runs, with the interquartile range and the best run beside it. A run is a callable
that does the work once and returns its own elapsed seconds, so a GPU run can time itself with
device events and a thread-pool run can leave its dispatch outside the clock.

The budget is a deadline, not a wish: a ``Schedule`` holds the moment the whole measurement must end
and shares the time still left among the steps; ``sample`` starts no run that would end past it, and
says so (``Timing.cut_short``) when that left a figure with fewer runs than it asked for. The clock is
a parameter everywhere, so that tests can drive the deadline with a fake one.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

Run = Callable[[], float]  # does the work once; returns the seconds it took
Clock = Callable[[], float]  # seconds on a monotonic clock (time.perf_counter)

NOISY_SPREAD = 0.10  # a figure whose interquartile range exceeds 10 % of its median is flagged as noisy


class DeadlinePassed(Exception):
    """Work stopped because it would have ended past the deadline (a fill of operands, say)."""


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds per run over repeated runs (warm-up excluded).

    ``cut_short``: the deadline stopped the runs before the minimum asked for (with no time for any
    run at all, the only time is the warm-up's).
    """

    times_s: tuple[float, ...]
    cut_short: bool = False

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

    @property
    def settled(self) -> bool:
        """Enough runs, and their middle half within ``NOISY_SPREAD`` of the median."""
        return not self.cut_short and self.spread <= NOISY_SPREAD

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
            "settled": self.settled,
        }


def autorange(make_run: Callable[[int], Run], min_run_s: float, max_repeat: int = 1 << 24,
              start_repeat: int = 1) -> tuple[int, Run, float]:
    """A repeat count whose run lasts at least ``min_run_s``, that run, and the seconds its last trial took.

    ``make_run(repeat)`` builds a run that does the work ``repeat`` times. The count grows from
    ``start_repeat`` (a guess from a figure already measured saves trials) by the ratio still missing,
    at least doubling; each trial run doubles as a warm-up, so the last one's time is an estimate of the
    run's cost.
    """
    repeat = max(1, min(start_repeat, max_repeat))
    while True:
        run = make_run(repeat)
        elapsed_s = run()
        if elapsed_s >= min_run_s or repeat >= max_repeat:
            return repeat, run, elapsed_s
        repeat = min(max_repeat, max(2 * repeat, int(1.2 * repeat * min_run_s / max(elapsed_s, 1e-9))))


def sample(run: Run, budget_s: float, min_reps: int = 5, max_reps: int = 200, warmup: int = 1, *,
           estimate_s: float | None = None, stop_s: float = math.inf, clock: Clock = time.perf_counter) -> Timing:
    """Warm up, then repeat ``run`` as often as ``budget_s`` allows (at least ``min_reps`` times if there is time).

    The warm-up runs estimate the cost of one run, which sizes the repetitions; ``estimate_s``, an
    estimate from a run just made (an ``autorange`` trial), replaces them. Runs stop early once twice the
    budget is spent (a machine that slowed down must not blow the budget), but not before ``min_reps``;
    and no run starts that would end after ``stop_s`` on ``clock`` (the deadline), ``min_reps`` or not:
    the timing is then ``cut_short``. A run is expected to last as long as the longer of the last one
    and the median so far. With no time for any run, the estimate is the only time.
    """
    if estimate_s is None:
        estimate_s = max(run() for _ in range(max(1, warmup)))
    reps = int(min(max_reps, max(min_reps, budget_s / max(estimate_s, 1e-9))))
    times: list[float] = []
    spent_s = 0.0
    for _ in range(reps):
        expected_s = max(times[-1], statistics.median(times)) if times else estimate_s
        if clock() + expected_s > stop_s:
            break
        elapsed_s = run()
        times.append(elapsed_s)
        spent_s += elapsed_s
        if len(times) >= min_reps and spent_s > 2 * budget_s:
            break
    if not times:
        return Timing((estimate_s,), cut_short=True)
    return Timing(tuple(times), cut_short=len(times) < min(min_reps, reps))


@dataclass(frozen=True, slots=True)
class Slice:
    """A step's time: its share of what is left (``budget_s``), and the deadline on the schedule's clock."""

    budget_s: float
    stop_s: float


class Schedule:
    """Shares a time budget among weighted steps, keeps its deadline, and draws a progress bar on stderr.

    Each step gets its weight's share of the time still left, so a step that overran (a loaded
    machine, a slow allocation) is paid for by the steps after it. The deadline (``budget_s`` after
    the schedule starts) is firm: a step's runs stop there (``Slice.stop_s``), and a step the caller
    finds too costly for the time left is ``skip``-ped, its weight counted done and the reason kept in
    ``skipped``.
    """

    def __init__(self, budget_s: float, total_weight: float, show: bool, stream: TextIO | None = None,
                 clock: Clock = time.perf_counter) -> None:
        self.budget_s = budget_s
        self.total_weight = max(total_weight, 1e-9)
        self.show = show
        self.stream = stream or sys.stderr
        self.clock = clock
        self.done_weight = 0.0
        self.start_s = clock()
        self.deadline_s = self.start_s + budget_s
        self.skipped: list[tuple[str, str]] = []  # (step label, why)
        self._last_len = 0

    def elapsed_s(self) -> float:
        return self.clock() - self.start_s

    def left_s(self) -> float:
        """Seconds to the deadline (negative once it has passed)."""
        return self.deadline_s - self.clock()

    def share_s(self, weight: float, reserved_s: float = 0.0) -> float:
        """The time slice a step of ``weight`` would get if it started now: its share of the time left, less
        ``reserved_s`` (what the steps still to come, this one included, need at least)."""
        remaining_weight = max(self.total_weight - self.done_weight, weight, 1e-9)
        return max(0.0, weight * (self.left_s() - reserved_s) / remaining_weight)

    @contextmanager
    def step(self, label: str, weight: float, reserved_s: float = 0.0, kept_s: float = 0.0) -> Iterator[Slice]:
        """Run one step: yields its time slice (``share_s``) and when its runs must stop, ``kept_s`` before the
        deadline (what the steps after it must have, whatever happens); its weight counts as done afterwards."""
        slice_s = self.share_s(weight, reserved_s)
        self._draw(label)
        yield Slice(slice_s, self.deadline_s - kept_s)
        self.done_weight = min(self.total_weight, self.done_weight + weight)

    def skip(self, label: str, weight: float, why: str) -> None:
        """Leave a step out: its weight counts as done (the time goes to the steps after it)."""
        self.skipped.append((label, why))
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
