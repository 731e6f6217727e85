"""The measurement: plan it within a time budget, run it, and hold the results as frozen records.

Three parts, in this order, each with its share of the budget:

1. bandwidth: the four STREAM kernels over working sets from 16 KiB to well past the last-level
   cache; each working set is labelled with the cache level it fits in (DRAM from four times the
   last-level cache on, STREAM's rule), and each level's figure is its best median;
2. peaks: square GEMMs per precision, growing while the budget allows, timed at the largest size; a
   precision's peak is the best median among all its GEMMs, these and the shape points';
3. shapes: the chapter's exercise 2.5, GEMMs of equal FLOPs from tall-skinny (1×N×N²) through square
   to wide (N²×N×1), and a weight matrix multiplied by 1, 2, 4, ... rows (GEMV to GEMM); operands are
   rotated through enough copies to span four times the last-level cache, so each call reads them
   from memory as an LLM's weights would be.

Ridge point per precision = measured peak / measured DRAM bandwidth.

The budget is a deadline (``timing.Schedule``): the headline figures come first in their parts (the
largest, DRAM, working set; then fp32 and the other fast peaks) and are always measured, with at least
one run; every other step is skipped when its predicted cost no longer fits in the time left, and runs
stop at the deadline. What could not be settled (skipped, cut short, or with too wide a spread) is
listed by ``Measurement.unsettled``.
"""

from __future__ import annotations

import datetime
import itertools
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

from llm_roofline.core import limits
from llm_roofline.core.errors import InputError
from llm_roofline.core.ops import gemm
from llm_roofline.core.roofline import attainable_flops_per_s, bound_label, roofline
from llm_roofline.core.units import binary_bytes, si
from llm_roofline.features.measure import system
from llm_roofline.features.measure.backends import (
    ELEMENT_BYTES,
    OUTPUT_BYTES,
    Backend,
    StreamBench,
    choose_backend_here,
    open_backend,
    operand_copies,
)
from llm_roofline.features.measure.stream import KERNELS
from llm_roofline.features.measure.timing import (
    NOISY_SPREAD,
    Clock,
    DeadlinePassed,
    Run,
    Schedule,
    Slice,
    Timing,
    autorange,
    sample,
)

BANDWIDTH_SHARE, PEAK_SHARE, SHAPE_SHARE = 0.40, 0.35, 0.25
QUICK_BUDGET_S, DEFAULT_BUDGET_S = 12.0, 70.0  # seconds, allocation and warm-ups included
SLOW_FRACTION = 0.5  # a sub-32-bit precision below half the fp32 rate has no fast kernel here
LOW_PRECISIONS = ("tf32", "bf16", "fp16", "fp8", "int8")
MIN_REPS = 5
NOISY_SHARE = 0.5  # more noisy figures than this share (or a noisy headline figure) earns a warning
MAX_RUN_S = 0.1  # the longest run a step asks for
RESERVE_S, RESERVE_SHARE = 0.2, 0.02  # kept back from the budget: freeing memory, the report, the exit
ALLOCATION_SHARE = 0.4  # the STREAM arrays' first touch may take this share of the time left, no more
COST_MARGIN = 1.5  # a step is skipped unless this times its predicted cost fits in the time left ...
MAX_SHARES = 4.0  # ... and in this many times its share of it


@dataclass(frozen=True, slots=True)
class MeasureOptions:
    backend: str = "numpy"
    device: str = "auto"
    threads: int | None = None  # None: every CPU this process may use
    quick: bool = False
    budget_s: float | None = None  # None: the mode's default
    precisions: tuple[str, ...] | None = None  # None: every precision the backend offers
    progress: bool = False
    command: str = "llm-roofline measure"
    spent_s: float = 0.0  # seconds of the budget already gone before measure() (the CLI: its process's start)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to measure, and how much time each part gets."""

    budget_s: float
    working_sets_bytes: tuple[int, ...]
    dram_min_bytes: int
    precisions: tuple[str, ...]
    gemm_start_n: int
    gemm_floor_n: int  # fast kernels are measured at least this large
    gemm_max_n: int
    shape_precision: str
    shape_n: int  # N of the equal-FLOPs series
    series_k: int  # the GEMV -> GEMM series multiplies rows by a series_k × series_k weight matrix
    series_m: tuple[int, ...]
    min_run_s: float  # a run lasts at least this long (short kernels are repeated within a run)


@dataclass(frozen=True, slots=True)
class BandwidthPoint:
    kernel: str
    requested_bytes: int  # the planned working set
    working_set_bytes: int  # the one used: slices are whole cache lines, so a few bytes less
    level: str
    counted_bytes: int  # per run, STREAM's count
    repeat: int  # passes per run
    timing: Timing

    @property
    def bytes_per_s(self) -> float:
        return self.counted_bytes / self.timing.median_s


@dataclass(frozen=True, slots=True)
class ComputePeak:
    precision: str
    n: int  # square GEMM size
    flops: float  # per run
    kernel: str
    fast: bool
    timing: Timing

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.timing.median_s


@dataclass(frozen=True, slots=True)
class ShapePoint:
    series: str  # "equal-flops" or "gemv-to-gemm"
    shape: str  # "tall-skinny", "square", "wide", or "M=…" in the series
    m: int
    k: int
    n: int
    precision: str
    flops: float  # one product
    bytes: float  # one product, each operand read once and the result written once (no reuse)
    copies: int  # operand sets rotated through
    repeat: int  # products per run
    timing: Timing

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.bytes

    @property
    def time_s(self) -> float:
        return self.timing.median_s / self.repeat

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.time_s


@dataclass(frozen=True, slots=True)
class Measurement:
    host: str
    date: str
    command: str
    backend: str
    device: str
    kind: str
    display_name: str
    threads: int
    memory_bytes: int | None
    library: dict[str, str] = field(hash=False)
    caches: tuple[system.Cache, ...]
    plan: Plan
    bandwidth: tuple[BandwidthPoint, ...]
    peaks: tuple[ComputePeak, ...]
    unavailable: dict[str, str] = field(hash=False)  # precision -> why the backend offers none
    shapes: tuple[ShapePoint, ...]
    load_before: float | None  # one-minute load average before measuring
    neighbours: dict[str, float] | None = field(hash=False)  # CPUs others used while measuring (NeighbourMeter)
    elapsed_s: float
    warnings: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (figure, why): steps the deadline left out

    def unsettled(self) -> list[dict[str, Any]]:
        """The figures that could not be settled, and why: ``cut_short`` (the deadline stopped its runs
        before the minimum), ``noisy`` (an interquartile range above ``NOISY_SPREAD`` of the median),
        ``skipped`` (not measured: the time left could not pay for it)."""
        out: list[dict[str, Any]] = []
        for name, t in self.timings():
            if t.cut_short:
                out.append({"figure": name, "reason": "cut_short", "repetitions": len(t.times_s),
                            "spread": t.spread, "detail": f"the deadline stopped it after {len(t.times_s)} runs"})
            elif t.spread > NOISY_SPREAD:
                out.append({"figure": name, "reason": "noisy", "repetitions": len(t.times_s), "spread": t.spread,
                            "detail": f"interquartile range {100 * t.spread:.0f}% of the median"})
        out += [{"figure": name, "reason": "skipped", "detail": why} for name, why in self.skipped]
        return out

    def levels(self) -> list[dict[str, Any]]:
        """Per working set: the best kernel's bandwidth, with every kernel's figures beside it."""
        by_size: dict[int, list[BandwidthPoint]] = {}
        for point in self.bandwidth:
            by_size.setdefault(point.requested_bytes, []).append(point)
        levels = []
        for _, points in sorted(by_size.items()):
            best = max(points, key=lambda p: p.bytes_per_s)
            levels.append({
                "requested_bytes": best.requested_bytes,
                "working_set_bytes": best.working_set_bytes,
                "level": best.level,
                "bytes_per_s": best.bytes_per_s,
                "kernel": best.kernel,
                "spread": best.timing.spread,
                "kernels": {p.kernel: {"working_set_bytes": p.working_set_bytes, "counted_bytes": p.counted_bytes,
                                       "repeat": p.repeat, **p.timing.rate(p.counted_bytes, "bytes")}
                            for p in points},
            })
        return levels

    def hierarchy(self) -> list[dict[str, Any]]:
        """One figure per cache level and DRAM: the best median among its working sets and kernels."""
        summary: dict[str, dict[str, Any]] = {}
        for level in self.levels():
            name = level["level"]
            if "/" in name:  # between the last-level cache and DRAM: neither
                continue
            if name not in summary or level["bytes_per_s"] > summary[name]["bytes_per_s"]:
                summary[name] = {"level": name, "bytes_per_s": level["bytes_per_s"], "kernel": level["kernel"],
                                 "requested_bytes": level["requested_bytes"],
                                 "working_set_bytes": level["working_set_bytes"], "spread": level["spread"]}
        fill_threads = self.threads if self.kind == "cpu" else 1  # a GPU's caches are filled by the device
        capacities = {c.level: c.capacity_for(fill_threads) for c in self.caches}
        order = [c.level for c in self.caches] + ["DRAM"]
        return [{**summary[name], "capacity_bytes": capacities.get(name)} for name in order if name in summary]

    def dram(self) -> dict[str, Any]:
        """The DRAM figure: the best median of any kernel at a DRAM-sized working set."""
        points = [p for p in self.bandwidth if p.level == "DRAM"] or [
            p for p in self.bandwidth if p.working_set_bytes == max(q.working_set_bytes for q in self.bandwidth)]
        best = max(points, key=lambda p: p.bytes_per_s)
        return {"bytes_per_s": best.bytes_per_s, "kernel": best.kernel, "requested_bytes": best.requested_bytes,
                "working_set_bytes": best.working_set_bytes,
                **{k: v for k, v in best.timing.rate(best.counted_bytes, "bytes").items() if k != "bytes_per_s"}}

    @property
    def dram_bytes_per_s(self) -> float:
        return float(self.dram()["bytes_per_s"])

    def timings(self) -> list[tuple[str, Timing]]:
        """Every figure's name and timing, for the noise report."""
        return ([(f"bandwidth {p.kernel} {binary_bytes(p.requested_bytes)}", p.timing) for p in self.bandwidth]
                + [(f"peak {p.precision}", p.timing) for p in self.peaks]
                + [(f"shape {p.m}×{p.k}×{p.n}", p.timing) for p in self.shapes])

    def where(self) -> str:
        """"numpy on cpu, 2 threads" or "torch on cuda" (host threads do not drive a GPU's kernels)."""
        return f"{self.backend} on {self.device}" + (f", {self.threads} threads" if self.kind == "cpu" else "")

    def library_text(self) -> str:
        """numpy 2.4.6, OpenBLAS 0.3.31 (SkylakeX kernel)"""
        lib = self.library
        parts = [f"{key} {lib[key]}" for key in ("numpy", "torch", "cuda") if key in lib]
        if "blas" in lib:
            parts.append(lib["blas"] + (f" ({lib['blas_kernel']} kernel)" if "blas_kernel" in lib else ""))
        parts += [f"{key} {lib[key]}" for key in ("mkl", "onednn", "cpu_capability") if key in lib]
        return ", ".join(parts)

    def best_gemm(self, precision: str) -> tuple[float, str, float]:
        """(FLOP/s, which GEMM, its spread): the best median among the square ladder's and the shape points' GEMMs.

        Every candidate is a median of repeated runs; taking the best of them (as ERT takes the best
        configuration) keeps one neighbour's burst during the square GEMM from sinking the roof.
        """
        peak = next(p for p in self.peaks if p.precision == precision)
        best = (peak.flops_per_s, f"square n={peak.n}", peak.timing.spread)
        for point in self.shapes:
            if point.precision == precision and point.flops_per_s > best[0]:
                best = (point.flops_per_s, f"shape {point.m}x{point.k}x{point.n}", point.timing.spread)
        return best

    def flops_per_s(self) -> dict[str, float]:
        return {p.precision: self.best_gemm(p.precision)[0] for p in self.peaks}

    def ridge(self) -> dict[str, float]:
        bandwidth = self.dram_bytes_per_s
        return {precision: flops / bandwidth for precision, flops in self.flops_per_s().items()}

    def fast_peaks(self) -> dict[str, float]:
        """The peaks of precisions the library has a fast kernel for: what a saved profile keeps."""
        return {p.precision: self.best_gemm(p.precision)[0] for p in self.peaks if p.fast}

    def point_dict(self, point: ShapePoint) -> dict[str, Any]:
        peaks, bandwidth = self.flops_per_s(), self.dram_bytes_per_s
        rate = point.timing.rate(point.flops * point.repeat, "flops")
        out: dict[str, Any] = {
            "series": point.series, "shape": point.shape, "m": point.m, "k": point.k, "n": point.n,
            "precision": point.precision, "flops": point.flops, "bytes": point.bytes,
            "arithmetic_intensity": point.arithmetic_intensity, "time_s": point.time_s,
            "time_s_iqr": [t / point.repeat for t in point.timing.quartiles_s],
            "flops_per_s": point.flops_per_s, "flops_per_s_iqr": rate["flops_per_s_iqr"],
            "flops_per_s_best": rate["flops_per_s_best"], "bytes_per_s": point.bytes / point.time_s,
            "spread": point.timing.spread, "repetitions": len(point.timing.times_s), "repeat": point.repeat,
            "operand_copies": point.copies, "settled": point.timing.settled,
        }
        if point.precision in peaks:
            peak = peaks[point.precision]
            line = roofline(point.flops, point.bytes, peak, bandwidth)  # the core's bound, as analyze's
            attainable = float(attainable_flops_per_s(point.arithmetic_intensity, peak, bandwidth))
            out |= {"attainable_flops_per_s": attainable, "roofline_fraction": point.flops_per_s / attainable,
                    "bound": bound_label(bool(line.compute_bound))}
        return out

    def conditions(self) -> dict[str, object]:
        """What the machine was doing: load, neighbours, noisy figures, usable CPUs, and (last) the caches."""
        return {"load_average_before": self.load_before, **(self.neighbours or {}),
                "noisy_figures": sum(t.spread > NOISY_SPREAD for _, t in self.timings()),
                "figures": len(self.timings()),
                "usable_cpus": system.usable_cpus(),
                "caches": [{"level": c.level, "bytes_per_instance": c.bytes_per_instance,
                            "shared_by_cpus": c.shared_by_cpus} for c in self.caches]}

    def memory_figure(self) -> dict[str, Any]:
        """The DRAM figure and how its bytes are counted."""
        return {**self.dram(), "counting": "STREAM: bytes of each array read or written once, no write-allocate"}

    def compute_details(self) -> dict[str, dict[str, object]]:
        """Per precision: where its peak comes from, the square GEMM's size, kernel and figures."""
        return {p.precision: {"peak_from": self.best_gemm(p.precision)[1], "n": p.n, "kernel": p.kernel,
                              "fast": p.fast, "square": p.timing.rate(p.flops, "flops")}
                for p in self.peaks}

    def points(self) -> list[dict[str, Any]]:
        """The shape experiment's points, each with its roofline figures."""
        return [self.point_dict(p) for p in self.shapes]

    def to_dict(self) -> dict[str, object]:
        return {
            "host": self.host, "date": self.date, "command": self.command, "backend": self.backend,
            "device": self.device, "kind": self.kind, "display_name": self.display_name, "threads": self.threads,
            "memory_bytes": self.memory_bytes, "library": dict(self.library),
            "budget_s": self.plan.budget_s, "elapsed_s": self.elapsed_s,
            "conditions": self.conditions(),
            "memory": {**self.memory_figure(), "levels": self.levels(), "hierarchy": self.hierarchy()},
            "compute": {
                "flops_per_s": self.flops_per_s(),
                "details": self.compute_details(),
                "unavailable": dict(self.unavailable),
            },
            "ridge": self.ridge(),
            "points": self.points(),
            "warnings": list(self.warnings),
            "unsettled": self.unsettled(),
        }


def level_of(working_set_bytes: int, caches: list[system.Cache], threads: int, dram_min_bytes: int) -> str:
    """The innermost level a working set fits in, "DRAM" from ``dram_min_bytes`` on, "L3/DRAM" between."""
    for cache in caches:
        if working_set_bytes <= cache.capacity_for(threads):
            return cache.level
    if working_set_bytes >= dram_min_bytes:
        return "DRAM"
    return f"{caches[-1].level}/DRAM" if caches else "DRAM"


def geometric_sizes(smallest: int, largest: int, factor: int) -> tuple[int, ...]:
    sizes = []
    size = smallest
    while size < largest:
        sizes.append(size)
        size *= factor
    return (*sizes, largest)


def plan_measurement(options: MeasureOptions, backend: Backend) -> Plan:
    """Sizes and budget for this machine: the caches set the working sets, the mode sets the breadth."""
    budget_s = options.budget_s or (QUICK_BUDGET_S if options.quick else DEFAULT_BUDGET_S)
    caches = backend.caches()
    llc = system.last_level_cache_bytes(caches)
    memory = backend.memory_bytes() or 8 * 2**30
    gpu = backend.kind == "gpu"
    top = min(max((8 if options.quick else 16) * llc, 64 * 2**20), 2 * 2**30, memory // 8)
    offered = backend.precisions()
    precisions = tuple(options.precisions or offered)
    missing = [p for p in precisions if p not in offered]
    if missing:
        raise InputError(f"the {backend.name} backend on {backend.device} offers no {', '.join(missing)}; "
                         f"it offers {', '.join(offered)}")
    preferred = "bf16" if gpu else "fp32"
    shape_precision = preferred if preferred in precisions else precisions[0]
    element = ELEMENT_BYTES[shape_precision]
    # the equal-FLOPs series: N³ elements in the skinny operand, at least 4 × LLC of them (STREAM's rule)
    shape_n = 1024 if gpu else 64 * math.ceil((4 * llc / element) ** (1 / 3) / 64)
    if options.quick:
        series_m: tuple[int, ...] = (1, 4, 16, 64, 256) if not gpu else (1, 16, 256, 4096)
    else:
        series_m = tuple(2**i for i in range(10)) if not gpu else tuple(4**i for i in range(7))
    return Plan(
        budget_s=budget_s,
        # from 16 KiB per thread (smaller slices measure the Python call, not the cache) to past the LLC
        working_sets_bytes=geometric_sizes(2**20 if gpu else 16 * 2**10 * backend.threads, top,
                                           4 if options.quick else 2),
        dram_min_bytes=4 * llc,
        precisions=precisions,
        gemm_start_n=1024 if gpu else 128,
        gemm_floor_n=4096 if gpu else 512,
        gemm_max_n=(4096 if options.quick else 8192) if gpu else (2048 if options.quick else 4096),
        shape_precision=shape_precision,
        shape_n=shape_n,
        series_k=8192 if gpu else 4096,
        series_m=series_m,
        min_run_s=0.002 if options.quick else 0.005,
    )


def equal_flops_shapes(n: int, quick: bool) -> list[tuple[str, int, int, int]]:
    """(label, M, K, N) of equal FLOPs 2·N³: M·N_out = N² with K = N, from 1×N×N² to N²×N×1."""
    steps = [4**i for i in range(8) if n * n % 4**i == 0 and 4**i < n]
    if quick:
        steps = steps[::2]
    shapes = [("tall-skinny", m, n, n * n // m) for m in steps]
    shapes.append(("square", n, n, n))
    shapes += [("wide", n * n // m, n, m) for m in reversed(steps)]
    return shapes


def _run_length_s(plan: Plan, dispatch_s: float, budget_s: float) -> float:
    """How long one bandwidth run should last: 50 hand-offs (the dispatch then costs under 2 %; on some VMs
    a hand-off takes a millisecond), at most ``MAX_RUN_S``, and short enough for the step's minimum runs
    to fit its share of the time (on a loaded machine the hand-offs' cost then shows, in a lower figure)."""
    wanted_s = min(max(plan.min_run_s, 50 * dispatch_s), MAX_RUN_S)
    return min(wanted_s, max(plan.min_run_s, budget_s / (MIN_REPS + 2)))


def _nearest_rate(points: list[BandwidthPoint], kernel: str, size: int) -> float | None:
    """The bytes/s of ``kernel`` at the nearest working set measured no larger than ``size`` (else any)."""
    same = [p for p in points if p.kernel == kernel] or points
    if not same:
        return None
    smaller = [p for p in same if p.requested_bytes <= size]
    nearest = max(smaller, key=lambda p: p.requested_bytes) if smaller else min(same, key=lambda p: p.requested_bytes)
    return nearest.bytes_per_s


def _bandwidth_cost_s(stream: StreamBench, kernel: str, size: int, plan: Plan, budget_s: float,
                      points: list[BandwidthPoint]) -> float | None:
    """A bandwidth step's least cost: a trial and the minimum runs, each a pass at the slowest rate yet."""
    if not points:
        return None
    slowest = min(p.bytes_per_s for p in points)
    pass_s = stream.working_set_bytes(kernel, size) / slowest
    return (MIN_REPS + 2) * max(_run_length_s(plan, stream.dispatch_s, budget_s), pass_s)


def _bandwidth_point(stream: StreamBench, kernel: str, size: int, plan: Plan, time_slice: Slice,
                     caches: list[system.Cache], points: list[BandwidthPoint], clock: Clock) -> BandwidthPoint:
    counted: dict[int, int] = {}

    def make_run(repeat: int) -> Run:
        run, counted[repeat] = stream.make_run(kernel, size, repeat)
        return run

    # Repeated passes over a DRAM-sized working set still stream from DRAM: each pass evicts the last.
    run_s = _run_length_s(plan, stream.dispatch_s, time_slice.budget_s)
    rate = _nearest_rate(points, kernel, size)  # a guess of the repeat count saves autorange's trials
    start_repeat = max(1, int(run_s * rate / stream.working_set_bytes(kernel, size))) if rate else 1
    repeat, run, estimate_s = autorange(make_run, run_s, start_repeat=start_repeat)
    timing = sample(run, time_slice.budget_s, min_reps=MIN_REPS, estimate_s=estimate_s, stop_s=time_slice.stop_s,
                    clock=clock)
    used = stream.working_set_bytes(kernel, size)
    level = level_of(size, caches, stream.threads, plan.dram_min_bytes)
    return BandwidthPoint(kernel, size, used, level, counted[repeat], repeat, timing)


def _bandwidth_name(kernel: str, size: int) -> str:
    return f"bandwidth {kernel} {binary_bytes(size)}"


def _measure_bandwidth(backend: Backend, plan: Plan, schedule: Schedule) -> list[BandwidthPoint]:
    """The bandwidth points, by working set, then kernel.

    The arrays' allocation may take ``ALLOCATION_SHARE`` of the time left; the working sets beyond what it
    reached are skipped, and that reach is measured instead. The largest working set goes first, measured
    whatever the time left: it holds the DRAM figure, the profile's; each of its kernels' runs stop early
    enough for the ones after it and for the fast peaks to make their least runs. Then the other DRAM sizes,
    the cache levels' from the smallest, and those between the last-level cache and DRAM (summarised
    nowhere), each skipped if its predicted cost no longer fits.
    """
    caches = backend.caches()
    weight = BANDWIDTH_SHARE / (len(plan.working_sets_bytes) * len(KERNELS))
    allowance_s = ALLOCATION_SHARE * max(schedule.left_s(), 0.0)
    stream = backend.stream(max(plan.working_sets_bytes), allowance_s, schedule.clock)
    largest = stream.max_working_set_bytes  # the arrays' first touch may have stopped short of the plan
    sizes = [s for s in plan.working_sets_bytes if s < largest] + [largest]
    for size in (s for s in plan.working_sets_bytes if s > largest):
        for kernel in KERNELS:
            schedule.skip(_bandwidth_name(kernel, size), weight, f"its arrays could not be allocated in the "
                          f"{allowance_s:.2g} s allowed (they reached {binary_bytes(largest)}, measured instead)")
    levels = {s: level_of(s, caches, stream.threads, plan.dram_min_bytes) for s in sizes}
    order = sorted(sizes, key=lambda s: (s != largest, levels[s] != "DRAM", "/" in levels[s], s))
    peaks_kept_s = COST_MARGIN * _peaks_least_s(backend, plan, plan.precisions)
    points: list[BandwidthPoint] = []
    try:
        for size in order:
            for kernel in KERNELS:
                name = _bandwidth_name(kernel, size)
                kept_s = peaks_kept_s
                if size == largest:  # the DRAM figure's kernels still to come make at least one trial pass each
                    measured = [p.bytes_per_s for p in points if p.requested_bytes == size]
                    pass_s = stream.working_set_bytes(kernel, size) / min(measured) if measured else 0.0
                    kept_s += COST_MARGIN * (len(KERNELS) - 1 - KERNELS.index(kernel)) * pass_s
                else:
                    cost_s = _bandwidth_cost_s(stream, kernel, size, plan, schedule.share_s(weight), points)
                    why = _unaffordable(schedule, weight, cost_s, kept_s)
                    if why:
                        schedule.skip(name, weight, why)
                        continue
                with schedule.step(name, weight, kept_s=kept_s) as time_slice:
                    points.append(_bandwidth_point(stream, kernel, size, plan, time_slice, caches, points,
                                                   schedule.clock))
        # faulted in already: the shapes' big operands reuse it
        backend.adopt_memory(stream.take_memory(), plan.shape_precision, stream.fill_bytes_per_s)
    finally:
        stream.close()
    points.sort(key=lambda p: (p.requested_bytes, KERNELS.index(p.kernel)))
    return points


def _unaffordable(schedule: Schedule, weight: float, cost_s: float | None, kept_s: float = 0.0) -> str | None:
    """Why an optional step that would cost ``cost_s`` at least is left out now (None: it is not).

    It must fit, with a margin, in the time left less ``kept_s`` (what the headline figures after it need),
    and in ``MAX_SHARES`` times its share of it, so that one costly step cannot take the time of many cheap
    ones.
    """
    if cost_s is None:
        return None
    left_s, share_s = max(schedule.left_s() - kept_s, 0.0), schedule.share_s(weight, kept_s)
    if COST_MARGIN * cost_s > left_s:
        return f"needs about {cost_s:.2g} s, {left_s:.2g} s were left"
    if cost_s > MAX_SHARES * share_s:
        return f"needs about {cost_s:.2g} s, over {MAX_SHARES:g} times its share of the time left ({share_s:.2g} s)"
    return None


def _gemm_timing(backend: Backend, precision: str, m: int, k: int, n: int, copies: int, plan: Plan,
                 budget_s: float, stop_s: float, clock: Clock, first_call_s: float | None = None
                 ) -> tuple[int, Timing]:
    """(products per run, timing): short products are repeated within a run to last ``plan.min_run_s``.

    With no time before ``stop_s`` for a warm-up and a run, the first call is the only time (cut short).
    """
    if first_call_s is None:
        first_call_s = backend.gemm_run(precision, m, k, n, copies, 1)()
    repeat = max(1, math.ceil(plan.min_run_s / max(first_call_s, 1e-9)))
    if clock() + 2 * repeat * first_call_s > stop_s:
        return 1, Timing((first_call_s,), cut_short=True)
    run = backend.gemm_run(precision, m, k, n, copies, repeat)
    return repeat, sample(run, budget_s, min_reps=MIN_REPS, stop_s=stop_s, clock=clock)


def _measure_peak(backend: Backend, precision: str, plan: Plan, time_slice: Slice,
                  fp32_flops_per_s: float | None, clock: Clock) -> ComputePeak:
    """The median FLOP/s of a square GEMM, grown from ``gemm_start_n`` as far as the time slice allows.

    Fast kernels grow to at least ``gemm_floor_n`` whatever the slice (a loaded machine must not stop
    the ladder at a size that only measures overhead), unless the next size's call would end past
    ``time_slice.stop_s``: the figure is then cut short. A reference path stays at the starting size.
    """
    start_s = clock()
    slice_s = time_slice.budget_s
    label, fast = backend.kernel(precision)
    n = plan.gemm_start_n
    first = backend.gemm_run(precision, n, n, n, 1, 1)
    call_s = min(first(), first())  # a warm-up, then the first estimate
    slow = fast is False or (fast is None and fp32_flops_per_s is not None
                             and 2 * n**3 / call_s < 0.1 * fp32_flops_per_s)
    if slow:  # a reference path: keep it small so that it does not eat the budget
        slice_s /= 4
    stopped = False  # by the deadline, below the floor
    while not slow and 2 * n <= plan.gemm_max_n and (
            2 * n <= plan.gemm_floor_n
            or (8 * call_s * (MIN_REPS + 2) <= slice_s and clock() + 8 * call_s * (MIN_REPS + 2) <= time_slice.stop_s)):
        if clock() + 8 * call_s > time_slice.stop_s:
            stopped = True
            break
        n *= 2
        call_s = backend.gemm_run(precision, n, n, n, 1, 1)()
    remaining_s = max(slice_s - (clock() - start_s), 0.0)
    repeat, timing = _gemm_timing(backend, precision, n, n, n, 1, plan, remaining_s, time_slice.stop_s, clock, call_s)
    if stopped:
        timing = replace(timing, cut_short=True)
    flops = 2.0 * n**3 * repeat
    if fast is None:
        fast = not (precision in LOW_PRECISIONS and fp32_flops_per_s is not None
                    and flops / timing.median_s < SLOW_FRACTION * fp32_flops_per_s)
    if not fast and "no BLAS" not in label:
        label += ", no fast kernel on this machine"
    return ComputePeak(precision, n, flops, label, fast, timing)


def _peaks_least_s(backend: Backend, plan: Plan, precisions: list[str] | tuple[str, ...]) -> float:
    """What the fast peaks among ``precisions`` cost at least, guessed before measuring: per peak, its trial
    calls and its ladder's (about four), a warm-up run and one run, each about the shortest run."""
    return sum(6 * plan.min_run_s for p in precisions if backend.kernel(p)[1] is not False)


def _measure_peaks(backend: Backend, plan: Plan, schedule: Schedule) -> list[ComputePeak]:
    """fp32 first (it judges the rest), then fp64, then the others. The precisions with a fast kernel are
    always measured, each one's runs stopping early enough for those after it to make their least runs;
    the others are skipped when the time left cannot pay for their least runs."""
    order = sorted(plan.precisions, key=lambda p: (p != "fp32", p != "fp64"))
    weight = PEAK_SHARE / len(plan.precisions)
    peaks: dict[str, ComputePeak] = {}
    for index, precision in enumerate(order):
        kept_s = COST_MARGIN * _peaks_least_s(backend, plan, order[index + 1:])
        why = _unaffordable(schedule, weight, (MIN_REPS + 3) * plan.min_run_s, kept_s)  # trials, warm-up, runs
        if backend.kernel(precision)[1] is False and why:
            schedule.skip(f"peak {precision}", weight, why)
            continue
        with schedule.step(f"peak {precision}", weight, kept_s=kept_s) as time_slice:
            fp32 = peaks["fp32"].flops_per_s if "fp32" in peaks else None
            peaks[precision] = _measure_peak(backend, precision, plan, time_slice, fp32, schedule.clock)
    return [peaks[p] for p in plan.precisions if p in peaks]


@dataclass(frozen=True, slots=True)
class _ShapeStep:
    index: int  # in the plan's order, which the points keep
    series: str
    label: str
    m: int
    k: int
    n: int
    copies: int

    @property
    def name(self) -> str:
        return f"shape {self.m}×{self.k}×{self.n}"


def _shape_cost_s(backend: Backend, step: _ShapeStep, precision: str, plan: Plan, flops_per_s: float | None,
                  bytes_per_s: float | None) -> float:
    """A shape point's least cost, as the roofline just measured predicts it: filling what its operands
    need beyond what is filled, a first call, a warm-up run and the minimum runs."""
    fill_s = backend.operand_fill_s(precision, step.m, step.k, step.n, step.copies)
    if not flops_per_s or not bytes_per_s:
        return fill_s
    element, out_element = ELEMENT_BYTES[precision], OUTPUT_BYTES.get(precision, ELEMENT_BYTES[precision])
    cost = gemm(1, step.m, step.n, step.k, element, element, out_element)
    product_s = max(cost.flops / flops_per_s, cost.bytes / bytes_per_s)
    run_s = math.ceil(plan.min_run_s / product_s) * product_s
    return fill_s + product_s + (1 + MIN_REPS) * run_s


def _measure_shapes(backend: Backend, plan: Plan, schedule: Schedule, quick: bool, peaks: list[ComputePeak],
                    dram_bytes_per_s: float | None) -> list[ShapePoint]:
    """The shape points, returned in the plan's order, measured cheapest first as the measured roofline
    predicts them (filling their operands included). Before each, the costliest are left out until the least
    costs of all those left fit in the time left; each step's slice is its weight's share of what those
    least costs leave over (on top of its least runs, which ``sample`` makes anyway)."""
    precision = plan.shape_precision
    element, out_element = ELEMENT_BYTES[precision], OUTPUT_BYTES.get(precision, ELEMENT_BYTES[precision])
    llc = system.last_level_cache_bytes(backend.caches())
    todo = [("equal-flops", label, m, k, n) for label, m, k, n in equal_flops_shapes(plan.shape_n, quick)]
    todo += [("gemv-to-gemm", f"M={m}", m, plan.series_k, plan.series_k) for m in plan.series_m]
    steps = [_ShapeStep(i, series, label, m, k, n, operand_copies((m * k + k * n) * element, llc))
             for i, (series, label, m, k, n) in enumerate(todo)]
    peak = next((p.flops_per_s for p in peaks if p.precision == precision), None)
    weight = SHAPE_SHARE / len(steps)
    points: list[tuple[int, ShapePoint]] = []
    while steps:
        costs = {s.index: COST_MARGIN * _shape_cost_s(backend, s, precision, plan, peak, dram_bytes_per_s)
                 for s in steps}
        if sum(costs.values()) > schedule.left_s():  # the costliest goes: its weight is the others' now
            costliest = max(steps, key=lambda s: (costs[s.index], -s.index))
            steps.remove(costliest)
            schedule.skip(costliest.name, weight, f"needs about {costs[costliest.index] / COST_MARGIN:.2g} s; with "
                          f"the {len(steps)} cheaper points, more than the {max(schedule.left_s(), 0.0):.2g} s left")
            continue
        step = min(steps, key=lambda s: (costs[s.index], s.index))
        steps.remove(step)
        with schedule.step(f"{step.name} {precision}", weight, sum(costs.values())) as time_slice:
            cost = gemm(1, step.m, step.n, step.k, element, element, out_element)
            try:
                repeat, timing = _gemm_timing(backend, precision, step.m, step.k, step.n, step.copies, plan,
                                              time_slice.budget_s, time_slice.stop_s, schedule.clock)
            except DeadlinePassed as passed:  # filling its operands would have run past the deadline
                schedule.skip(step.name, 0.0, str(passed))
                continue
            points.append((step.index, ShapePoint(step.series, step.label, step.m, step.k, step.n, precision,
                                                  float(cost.flops), float(cost.bytes), step.copies, repeat,
                                                  timing)))
    return [point for _, point in sorted(points, key=lambda item: item[0])]


def _warnings(m: Measurement) -> list[str]:
    """What a reader must know before trusting the figures: noise, neighbours, unresolved levels."""
    warnings = []
    named = m.timings()
    noisy = sorted(((t.spread, name) for name, t in named if t.spread > NOISY_SPREAD), reverse=True)
    headline = [f"DRAM bandwidth {100 * m.dram()['spread']:.0f}%"] if m.dram()["spread"] > NOISY_SPREAD else []
    headline += [f"{p.precision} peak {100 * m.best_gemm(p.precision)[2]:.0f}%" for p in m.peaks
                 if p.fast and m.best_gemm(p.precision)[2] > NOISY_SPREAD]
    if headline or len(noisy) > NOISY_SHARE * len(named):
        worst = ", ".join(f"{name} {100 * spread:.0f}%" for spread, name in noisy[:3])
        warnings.append(f"noisy machine: {len(noisy)} of {len(named)} figures have an interquartile range above "
                        f"{100 * NOISY_SPREAD:.0f}% of their median (worst: {worst}"
                        + (f"; among the headline figures: {', '.join(headline)}" if headline else "")
                        + "); other processes may be running: measure again on a quiet machine")
    cpus = system.usable_cpus()
    if m.neighbours and (m.neighbours["other_processes_cpus"] > 0.25 or m.neighbours["stolen_cpus"] > 0.1):
        warnings.append(f"other processes kept {m.neighbours['other_processes_cpus']:.2f} of {cpus} CPUs busy on "
                        f"average while measuring (and the hypervisor took {m.neighbours['stolen_cpus']:.2f}): "
                        f"the figures may be low")
    if m.threads > cpus and m.kind == "cpu":
        warnings.append(f"{m.threads} threads on {cpus} CPUs: oversubscribed, figures are low")
    skipped, cut = [name for name, _ in m.skipped], [name for name, t in named if t.cut_short]
    if skipped or cut:
        parts = [f"{len(skipped)} figures not measured ({_first_three(skipped)})"] if skipped else []
        parts += [f"{len(cut)} cut short to fewer than {MIN_REPS} runs ({_first_three(cut)})"] if cut else []
        warnings.append(f"the {m.plan.budget_s:g} s budget ran out: {'; '.join(parts)}: give the measurement more "
                        f"time for every figure")
    if not any(p.level == "DRAM" for p in m.bandwidth):
        warnings.append(f"no working set reached 4 × the last-level cache ({binary_bytes(m.plan.dram_min_bytes)}); "
                        f"the memory figure may include cache hits")
    hierarchy = m.hierarchy()
    unresolved = [f"{inner['level']} ({si(inner['bytes_per_s'], 'B/s')} < {outer['level']} "
                  f"{si(outer['bytes_per_s'], 'B/s')})"
                  for inner, outer in itertools.pairwise(hierarchy) if inner["bytes_per_s"] < outer["bytes_per_s"]]
    if unresolved:
        cause = "kernel launches" if m.kind == "gpu" else "Python calls and thread hand-offs"
        warnings.append(f"level not resolved: {', '.join(unresolved)}; at working sets this small the per-run "
                        f"overhead ({cause}) outweighs the transfer, so the figure is a floor, not the level's "
                        f"bandwidth")
    return warnings


def _first_three(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


UNAVAILABLE = {
    "numpy": {"bf16": "numpy has no bfloat16 dtype", "fp8": "numpy has no fp8 dtype",
              "tf32": "TF32 is a GPU tensor-core mode"},
    "torch-cpu": {"tf32": "TF32 is a GPU tensor-core mode", "fp8": "no fp8 matrix product on the CPU"},
    "torch-cuda": {"fp8": "fp8 products need compute capability 8.9 or newer"},
}


def measure(options: MeasureOptions, clock: Clock = time.perf_counter) -> Measurement:
    """Measure this machine's roofline with the chosen backend; see the module docstring.

    It ends within ``budget_s`` of its start less ``options.spent_s`` (the time already gone), keeping back
    ``RESERVE_S`` and ``RESERVE_SHARE`` of the budget for what follows it. Only the headline figures' least
    runs may take it past: the STREAM arrays' allocation, one trial run of each kernel over the largest
    working set, and each fast peak's trial calls and warm-up run.
    """
    if options.budget_s is not None:
        limits.figure("budget_s", options.budget_s, limits.STUDY["budget_s"])
    if options.threads is not None:
        limits.count("threads", options.threads, limits.STUDY["threads"])
    if not 0 <= options.spent_s < math.inf:
        raise InputError(f"spent_s must be a number of seconds >= 0, got {options.spent_s!r}")
    choice = choose_backend_here(options.backend, options.device)
    threads = options.threads or system.usable_cpus()
    load_before = system.load_average()
    meter = system.NeighbourMeter()
    start_s = clock()
    backend = open_backend(choice, threads)
    try:
        plan = plan_measurement(options, backend)
        reserve_s = RESERVE_S + RESERVE_SHARE * plan.budget_s
        schedule = Schedule(plan.budget_s - options.spent_s - reserve_s - (clock() - start_s),
                            BANDWIDTH_SHARE + PEAK_SHARE + SHAPE_SHARE, options.progress, clock=clock)
        backend.set_fill_deadline(schedule.deadline_s, clock)
        try:
            bandwidth = _measure_bandwidth(backend, plan, schedule)
            peaks = _measure_peaks(backend, plan, schedule)
            dram = [p for p in bandwidth if p.level == "DRAM"] or [max(bandwidth, key=lambda p: p.requested_bytes)]
            shapes = _measure_shapes(backend, plan, schedule, options.quick, peaks, max(p.bytes_per_s for p in dram))
        finally:
            schedule.finish()
    finally:
        backend.close()
    neighbours = meter.read()
    key = "numpy" if choice.backend == "numpy" else f"torch-{choice.device}"
    unavailable = {p: why for p, why in UNAVAILABLE[key].items() if p not in backend.precisions()}
    measurement = Measurement(
        host=system.host_name(),
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        command=options.command,
        backend=choice.backend,
        device=choice.device,
        kind=backend.kind,
        display_name=backend.display_name(),
        threads=threads,
        memory_bytes=backend.memory_bytes(),
        library=dict(backend.library),
        caches=tuple(backend.caches()),
        plan=plan,
        bandwidth=tuple(bandwidth),
        peaks=tuple(peaks),
        unavailable=unavailable,
        shapes=tuple(shapes),
        load_before=load_before,
        neighbours=neighbours,
        elapsed_s=clock() - start_s,
        warnings=(),
        skipped=tuple(schedule.skipped),
    )
    return replace(measurement, warnings=tuple(_warnings(measurement)))
