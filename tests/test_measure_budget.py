"""``llm-roofline measure`` keeps its budget: the deadline logic, driven by a fake clock and a fake machine.

No test here reads a real clock. The fake backend's kernels, allocations and fills advance a fake clock by
the time a machine of known speed would take (``FakeMachine``); ``measure`` runs its real plan and schedule
on it. Slowing the fake machine down makes the deadline pass where a test wants it, and the tests check
that the measurement stops, says which figures it could not settle, and still gives a valid profile.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llm_roofline import cli, load_hardware
from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli import measure_commands
from llm_roofline.features.measure import backends, experiment, profile, system, timing
from llm_roofline.features.measure.backends import ELEMENT_BYTES, FillMeter, arena_layout, fill_in_chunks
from llm_roofline.features.measure.stream import KERNELS
from llm_roofline.features.measure.system import Cache
from llm_roofline.features.measure.timing import Clock, DeadlinePassed, Run


class FakeClock:
    """Seconds that pass only when the fake machine works."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> float:
        self.now_s += seconds
        return seconds


def timed(clock: FakeClock, seconds: float) -> Run:
    return lambda: clock.advance(seconds)


# --- sample, Timing, Schedule, fills: the pieces -----------------------------------------------------------

def test_sample_starts_no_run_that_would_end_past_the_deadline() -> None:
    clock = FakeClock()
    t = timing.sample(timed(clock, 1.0), budget_s=100.0, min_reps=5, stop_s=3.5, clock=clock)
    # warm-up 0 -> 1 s; runs 1 -> 2 and 2 -> 3; a third would end at 4 s > 3.5 s
    assert t.times_s == (1.0, 1.0)
    assert t.cut_short and not t.settled
    assert clock.now_s == 3.0


def test_sample_with_no_time_left_keeps_the_estimate_and_says_so() -> None:
    clock = FakeClock()
    t = timing.sample(timed(clock, 1.0), budget_s=1.0, estimate_s=0.7, stop_s=0.5, clock=clock)
    assert t.times_s == (0.7,) and t.cut_short
    assert clock.now_s == 0.0  # the estimate (a run just made elsewhere) replaced the warm-up: nothing ran


def test_sample_makes_its_minimum_runs_when_the_deadline_allows() -> None:
    clock = FakeClock()
    t = timing.sample(timed(clock, 1.0), budget_s=0.0, min_reps=5, stop_s=6.0, clock=clock)
    assert len(t.times_s) == 5 and not t.cut_short  # warm-up 0 -> 1, five runs 1 -> 6: the last ends at 6 s
    assert t.settled and t.rate(1.0, "bytes")["settled"] is True


def test_sample_expects_a_run_as_long_as_the_longest_of_the_last_and_the_median() -> None:
    clock = FakeClock()
    durations = iter([0.1, 0.1, 2.0, 0.1, 0.1])  # the third run is slow: the next is expected to be too

    def run() -> float:
        return clock.advance(next(durations))

    t = timing.sample(run, budget_s=10.0, min_reps=3, estimate_s=0.1, stop_s=3.0, clock=clock)
    assert t.times_s == (0.1, 0.1, 2.0)  # at 2.2 s a 2 s run would end at 4.2 s > 3 s
    assert t.cut_short is False  # the minimum of 3 runs was made


def test_a_noisy_timing_is_not_settled() -> None:
    assert timing.Timing((1.0, 1.0, 1.0, 1.0, 1.0)).settled
    noisy = timing.Timing((1.0, 1.0, 1.5, 2.0, 2.0))
    assert noisy.spread == (2.0 - 1.0) / 1.5 and not noisy.settled  # inclusive quartiles 1 and 2, median 1.5


def test_schedule_keeps_its_deadline_and_skipped_steps() -> None:
    clock = FakeClock()
    schedule = timing.Schedule(budget_s=10.0, total_weight=4.0, show=False, clock=clock)
    assert schedule.deadline_s == 10.0 and schedule.share_s(1.0) == 2.5  # a quarter of the weight, of 10 s
    with schedule.step("first", 1.0) as first:
        assert (first.budget_s, first.stop_s) == (2.5, 10.0)
        clock.advance(4.0)  # overran: 4 s for a 2.5 s share
    schedule.skip("second", 1.0, "too costly")
    assert schedule.skipped == [("second", "too costly")]
    assert schedule.left_s() == 6.0 and schedule.share_s(1.0) == 3.0  # half the weight is left: half of 6 s
    clock.advance(7.0)
    assert schedule.left_s() == -1.0
    with schedule.step("late", 1.0) as late:
        assert late.budget_s == 0.0 and late.stop_s == 10.0


def test_a_fill_that_would_end_past_the_deadline_stops_after_its_first_chunk() -> None:
    clock = FakeClock()
    meter = FillMeter()
    element = 4
    elements = 10 * backends.FILL_CHUNK_BYTES // element  # 10 chunks of 64 MiB, 1 s each

    def fill(begin: int, end: int) -> None:
        clock.advance((end - begin) * element / backends.FILL_CHUNK_BYTES)

    with pytest.raises(DeadlinePassed, match="would have ended past the deadline"):
        fill_in_chunks(0, elements, element, fill, clock, stop_s=5.0, meter=meter)
    assert clock.now_s == 1.0  # one chunk: 1 s now + 9 s to go > 5 s
    assert meter.bytes_per_s() == backends.FILL_CHUNK_BYTES  # what it learnt: 64 MiB/s
    fill_in_chunks(0, elements, element, fill, clock, stop_s=11.0, meter=meter)  # 1 + 10 s: it fits
    assert clock.now_s == 11.0


# --- a fake machine: STREAM, GEMMs, allocation and fills at known speeds on the fake clock -----------------

@dataclass
class FakeMachine:
    """Speeds of a 2-core machine; ``slowdown`` stretches every kernel (a neighbour taking a core)."""

    clock: FakeClock
    slowdown: float = 1.0
    alloc_bytes_per_s: float = 4e9  # first touch of new memory
    fill_bytes_per_s: float = 4e9
    big_fill_bytes_per_s: float | None = None  # fills over BIG_FILL_BYTES, if slower (memory the host must find)
    dram_bytes_per_s: float = 20e9
    flops_per_s: tuple[tuple[str, float], ...] = (("fp64", 100e9), ("fp32", 200e9), ("fp16", 1e9), ("int8", 4e9))

    def stream_bytes_per_s(self, working_set_bytes: int) -> float:
        for limit, rate in ((2**16, 200e9), (2**21, 100e9), (2**25, 50e9)):
            if working_set_bytes <= limit:
                return rate / self.slowdown
        return self.dram_bytes_per_s / self.slowdown


BIG_FILL_BYTES = 64 * 2**20
FIRST_CHUNK_BYTES = 64 * 2**20


class FakeStream:
    threads = 2
    dispatch_s = 1e-5

    def __init__(self, machine: FakeMachine, max_working_set_bytes: int, allowance_s: float) -> None:
        """Three arrays of half the working set each, first touched as far as ``allowance_s`` allows (at least
        ``FIRST_CHUNK_BYTES`` of working set: the first chunk is always touched)."""
        self.machine = machine
        reach = max(FIRST_CHUNK_BYTES, int(allowance_s * machine.alloc_bytes_per_s / 1.5) // 4096 * 4096)
        self.max_working_set_bytes = min(max_working_set_bytes, reach)
        seconds = machine.clock.advance(1.5 * self.max_working_set_bytes / machine.alloc_bytes_per_s)
        self.fill_bytes_per_s: float | None = 1.5 * self.max_working_set_bytes / seconds
        self.closed = False

    def working_set_bytes(self, kernel: str, working_set_bytes: int) -> int:
        return working_set_bytes

    def make_run(self, kernel: str, working_set_bytes: int, repeat: int) -> tuple[Run, int]:
        pass_s = working_set_bytes / self.machine.stream_bytes_per_s(working_set_bytes)
        return timed(self.machine.clock, repeat * pass_s), working_set_bytes * repeat

    def take_memory(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class FakeBackend:
    """The ``Backend`` protocol on the fake machine: numpy's precisions, fp16 and int8 without a fast kernel."""

    name = "numpy"
    device = "cpu"
    kind = "cpu"

    def __init__(self, machine: FakeMachine) -> None:
        self.machine = machine
        self.threads = 2
        self.library = {"numpy": "fake", "blas": "FakeBLAS 1.0", "blas_kernel": "Fake"}
        self.arena_elements: dict[str, int] = {}
        self.fill_stop_s = math.inf
        self.fills = FillMeter()
        self.fill_guess_bytes_per_s = machine.fill_bytes_per_s
        self.closed = False

    def precisions(self) -> list[str]:
        return [p for p, _ in self.machine.flops_per_s]

    def kernel(self, precision: str) -> tuple[str, bool | None]:
        return f"fake {precision} GEMM", precision in ("fp64", "fp32")

    def _need(self, precision: str, m: int, k: int, n: int, copies: int) -> int:
        return arena_layout(copies * m * k, copies * k * n, ELEMENT_BYTES[precision])[1]

    def gemm_run(self, precision: str, m: int, k: int, n: int, copies: int, repeat: int) -> Run:
        machine, element = self.machine, ELEMENT_BYTES[precision]
        need = self._need(precision, m, k, n, copies)
        if self.arena_elements.get(precision, 0) < need:  # fill the operands, the deadline checked per chunk
            rate = machine.fill_bytes_per_s
            if machine.big_fill_bytes_per_s and need * element > BIG_FILL_BYTES:
                rate = machine.big_fill_bytes_per_s
            fill_in_chunks(0, need, element, lambda begin, end: machine.clock.advance((end - begin) * element / rate),
                           machine.clock, self.fill_stop_s, self.fills)
            self.arena_elements[precision] = need
        peak = dict(machine.flops_per_s)[precision]
        product_s = max(2 * m * k * n / peak, element * (m * k + k * n + m * n) / machine.dram_bytes_per_s)
        return timed(machine.clock, repeat * product_s * machine.slowdown)

    def operand_fill_s(self, precision: str, m: int, k: int, n: int, copies: int) -> float:
        need = self._need(precision, m, k, n, copies)
        if self.arena_elements.get(precision, 0) >= need:
            return 0.0
        return need * ELEMENT_BYTES[precision] / (self.fills.bytes_per_s() or self.fill_guess_bytes_per_s)

    def set_fill_deadline(self, stop_s: float, clock: Clock) -> None:
        self.fill_stop_s = stop_s

    def adopt_memory(self, memory: Any, precision: str, fill_bytes_per_s: float | None) -> None:
        self.fill_guess_bytes_per_s = fill_bytes_per_s or self.fill_guess_bytes_per_s  # as numpy's: the STREAM rate

    def stream(self, max_working_set_bytes: int, allowance_s: float, clock: Clock) -> FakeStream:
        return FakeStream(self.machine, max_working_set_bytes, allowance_s)

    def caches(self) -> list[Cache]:
        return [Cache("L1", 32 * 2**10, 1), Cache("L2", 2**20, 1), Cache("L3", 32 * 2**20, 2)]

    def memory_bytes(self) -> int:
        return 16 * 2**30

    def display_name(self) -> str:
        return "Fake CPU"

    def close(self) -> None:
        self.closed = True


def fake_measure(monkeypatch: pytest.MonkeyPatch, machine: FakeMachine,
                 **options: Any) -> tuple[experiment.Measurement, FakeBackend]:
    opened: list[FakeBackend] = []

    def open_fake(choice: backends.BackendChoice, threads: int) -> FakeBackend:
        opened.append(FakeBackend(machine))
        return opened[0]

    monkeypatch.setattr(experiment, "open_backend", open_fake)
    m = experiment.measure(experiment.MeasureOptions(**options), clock=machine.clock)
    assert opened[0].closed
    return m, opened[0]


def planned(quick: bool = True) -> dict[str, int]:
    """What the fake machine's plan holds (32 MiB L3, 2 threads, --quick): 8 working sets from 32 KiB to
    256 MiB (x4, then 8 x the L3), 4 precisions, 7 equal-FLOPs shapes (N = 384) and 5 GEMV -> GEMM points."""
    return {"working_sets": 8, "bandwidth": 8 * len(KERNELS), "peaks": 4, "shapes": 7 + 5} if quick else {}


def names(m: experiment.Measurement) -> set[str]:
    return {name for name, _ in m.timings()}


def reserve_s(budget_s: float) -> float:
    return experiment.RESERVE_S + experiment.RESERVE_SHARE * budget_s


# --- the measurement on the fake machine ---------------------------------------------------------------------

def test_a_fast_machine_measures_every_figure_and_all_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = FakeMachine(FakeClock())
    m, _ = fake_measure(monkeypatch, machine, quick=True)
    assert len(m.bandwidth) == planned()["bandwidth"] and len(m.peaks) == planned()["peaks"]
    assert len(m.shapes) == planned()["shapes"]
    assert m.skipped == () and m.unsettled() == []  # the fake machine's runs never vary
    assert [p.m for p in m.shapes if p.series == "gemv-to-gemm"] == [1, 4, 16, 64, 256]  # the plan's order
    assert [(p.requested_bytes, p.kernel) for p in m.bandwidth] == sorted(
        ((p.requested_bytes, p.kernel) for p in m.bandwidth), key=lambda x: (x[0], KERNELS.index(x[1])))
    assert m.elapsed_s <= 12.0 - reserve_s(12.0)
    assert not any("budget ran out" in w for w in m.warnings)


def test_a_slow_machine_stops_at_the_deadline_and_says_what_it_left_out(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every kernel 4 x slower, memory faulted in at 0.25 GB/s (384 MiB of STREAM arrays: 1.6 s)."""
    machine = FakeMachine(FakeClock(), slowdown=4.0, alloc_bytes_per_s=0.25e9, fill_bytes_per_s=0.25e9)
    m, _ = fake_measure(monkeypatch, machine, quick=True)
    assert m.elapsed_s <= 12.0 - reserve_s(12.0)  # every step that ran fitted before the deadline
    unsettled = m.unsettled()
    skipped = [u["figure"] for u in unsettled if u["reason"] == "skipped"]
    assert skipped and [name for name, _ in m.skipped] == skipped
    assert all(u["detail"].startswith("needs about") or "deadline" in u["detail"]
               for u in unsettled if u["reason"] == "skipped")
    # every planned figure is measured or listed as skipped
    assert len(names(m)) + len(skipped) == sum(planned()[k] for k in ("bandwidth", "peaks", "shapes"))
    assert not names(m) & set(skipped)
    # the headline figures are always there: the DRAM working sets (>= 4 x 32 MiB) and the fast peaks
    assert {(p.kernel, p.requested_bytes) for p in m.bandwidth if p.level == "DRAM"} == {
        (k, s) for k in KERNELS for s in (128 * 2**20, 256 * 2**20)}
    assert {p.precision for p in m.peaks} >= {"fp32", "fp64"}
    assert any("budget ran out" in w and "not measured" in w for w in m.warnings)
    # the JSON and the profile carry the list; the profile loads
    data = json.loads(json.dumps(m.to_dict()))
    assert data["unsettled"] == unsettled and data["warnings"] == list(m.warnings)
    spec = profile.save_profile(m, tmp_path / "slow.toml")
    assert load_hardware(str(tmp_path / "slow.toml")) == spec
    assert spec.memory_bytes_per_s == m.dram_bytes_per_s and set(spec.peak_flops_per_s) == {"fp32", "fp64"}
    assert json.loads(json.dumps(profile.profile_dict(m)))["measured"]["unsettled"] == unsettled


def test_the_cheapest_shapes_are_kept_when_time_is_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shapes are measured cheapest first (the measured roofline predicts each one's cost), so what the
    deadline leaves out are the costliest: here the equal-FLOPs ends, whose operands span 4 x the L3."""
    machine = FakeMachine(FakeClock(), slowdown=4.0, alloc_bytes_per_s=0.25e9, fill_bytes_per_s=0.25e9)
    m, _ = fake_measure(monkeypatch, machine, quick=True)
    kept = {f"shape {p.m}×{p.k}×{p.n}" for p in m.shapes}
    left_out = {name for name, _ in m.skipped if name.startswith("shape")}
    assert kept and left_out
    assert "shape 1×384×147456" in left_out and "shape 147456×384×1" in left_out  # 1 x N x N², N² x N x 1


def test_a_fill_cut_by_the_deadline_skips_its_point_and_keeps_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fill rate learnt from the small fills (the peaks') is wrong for the large ones (1000 x slower):
    the first large fill is stopped by the deadline as soon as its rate shows it, its point is reported
    skipped, and the measurement goes on and ends in time. (Chunks of 1 MiB: the deadline is checked
    between chunks.)"""
    monkeypatch.setattr(backends, "FILL_CHUNK_BYTES", 2**20)
    machine = FakeMachine(FakeClock(), big_fill_bytes_per_s=4e6)
    m, _ = fake_measure(monkeypatch, machine, quick=True)
    filled_out = [(name, why) for name, why in m.skipped if "would have ended past the deadline" in why]
    assert filled_out, m.skipped
    assert m.elapsed_s <= 12.0 - reserve_s(12.0)
    assert filled_out[0][0] in {u["figure"] for u in m.unsettled() if u["reason"] == "skipped"}


def test_with_the_deadline_already_gone_only_the_headline_figures_are_measured_once(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """All of the budget spent before measuring (a very slow start): the arrays get their first chunk only
    (a 64 MiB working set here), the four kernels there and the fast peaks are measured, one run each, cut
    short; everything else is skipped; the profile is still valid, and says its memory figure is no DRAM's."""
    machine = FakeMachine(FakeClock())
    m, _ = fake_measure(monkeypatch, machine, quick=True, budget_s=12.0, spent_s=12.0)
    assert {(p.requested_bytes, p.level) for p in m.bandwidth} == {(FIRST_CHUNK_BYTES, "L3/DRAM")}
    assert len(m.bandwidth) == len(KERNELS)
    assert {p.precision for p in m.peaks} == {"fp32", "fp64"}
    assert all(t.cut_short and len(t.times_s) == 1 for _, t in m.timings())
    assert m.shapes == ()
    reasons = {u["reason"] for u in m.unsettled()}
    assert reasons == {"cut_short", "skipped"}
    # of the 8 working sets planned, 6 below the reach and 2 (128, 256 MiB) beyond it; the reach itself
    assert len(m.unsettled()) == len(KERNELS) * (6 + 2 + 1) + planned()["peaks"] + planned()["shapes"]
    assert any(w.startswith("no working set reached 4 × the last-level cache") for w in m.warnings)
    spec = profile.save_profile(m, tmp_path / "late.json")
    assert load_hardware(str(tmp_path / "late.json")) == spec


def test_an_allocation_too_slow_for_the_plan_stops_and_measures_what_it_reached(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory faulted in at 0.05 GB/s: the plan's 256 MiB working set needs 384 MiB of arrays (7.7 s), more
    than the allocation's share of the time (40 % of the 11.56 s left: 4.6 s). The arrays stop at about
    147 MiB of working set: 256 MiB is skipped, that reach is measured instead, the DRAM figure with it."""
    machine = FakeMachine(FakeClock(), alloc_bytes_per_s=0.05e9)
    m, _ = fake_measure(monkeypatch, machine, quick=True)
    allowance_s = experiment.ALLOCATION_SHARE * (12.0 - reserve_s(12.0))
    reach = int(allowance_s * 0.05e9 / 1.5) // 4096 * 4096  # 154,140,672 B, 147 MiB
    assert [name for name, why in m.skipped if "could not be allocated" in why] == [
        f"bandwidth {k} 256 MiB" for k in KERNELS]
    assert max(p.requested_bytes for p in m.bandwidth) == reach
    assert m.dram()["requested_bytes"] in (reach, 128 * 2**20)  # both are >= 4 x the 32 MiB L3: DRAM
    assert m.elapsed_s <= 12.0 - reserve_s(12.0)


@pytest.mark.parametrize(("options", "budget_s", "fill_bytes_per_s"), [
    ({}, experiment.DEFAULT_BUDGET_S, 0.1e9),  # 768 MiB of STREAM arrays: 8 s
    ({"budget_s": 5.0}, 5.0, 1e9),
    ({"budget_s": 5.0, "quick": True}, 5.0, 1e9),
])
def test_the_default_mode_and_a_budget_flag_keep_theirs(monkeypatch: pytest.MonkeyPatch, options: dict[str, Any],
                                                       budget_s: float, fill_bytes_per_s: float) -> None:
    machine = FakeMachine(FakeClock(), slowdown=8.0, alloc_bytes_per_s=fill_bytes_per_s,
                          fill_bytes_per_s=fill_bytes_per_s)
    m, _ = fake_measure(monkeypatch, machine, **options)
    assert m.plan.budget_s == budget_s
    assert m.elapsed_s <= budget_s - reserve_s(budget_s)
    assert m.skipped  # 8 x slower: something had to go


def test_spent_time_must_be_a_number_of_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="spent_s"):
        fake_measure(monkeypatch, FakeMachine(FakeClock()), spent_s=-1.0)


# --- the command: text and JSON say what is unsettled; the process's start counts -------------------------

def run_cli(monkeypatch: pytest.MonkeyPatch, machine: FakeMachine, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(experiment, "open_backend", lambda choice, threads: FakeBackend(machine))
    monkeypatch.setattr(experiment, "measure", functools.partial(experiment.measure, clock=machine.clock))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["measure", "--no-progress", *argv])
    return code, out.getvalue(), err.getvalue()


def slow_machine() -> FakeMachine:
    return FakeMachine(FakeClock(), slowdown=4.0, alloc_bytes_per_s=0.25e9, fill_bytes_per_s=0.25e9)


def test_the_text_lists_the_unsettled_figures_by_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(system, "process_age_s", lambda: 0.5)
    code, out, _ = run_cli(monkeypatch, slow_machine(), "--quick", "--save", str(tmp_path / "m.toml"))
    assert code == 0
    lines = out.splitlines()
    heading = next(line for line in lines if line.startswith("unsettled figures: "))
    assert "settled: measured, at least 5 runs, an interquartile range within 10% of the median" in heading
    skipped = next(line for line in lines if line.startswith("  skipped, the time left could not pay for them: "))
    assert "shape 1×384×147456" in skipped
    assert any(line.startswith("warning: the 12 s budget ran out: ") for line in lines)
    assert load_hardware(str(tmp_path / "m.toml")).memory_bytes_per_s > 0


def test_the_json_lists_them_with_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "process_age_s", lambda: 0.5)
    code, out, _ = run_cli(monkeypatch, slow_machine(), "--quick", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["unsettled"] and all(set(u) >= {"figure", "reason", "detail"} for u in data["unsettled"])
    assert {u["reason"] for u in data["unsettled"]} <= {"skipped", "cut_short", "noisy"}
    for level in data["memory"]["levels"]:  # every figure says whether it settled
        assert all(isinstance(k["settled"], bool) for k in level["kernels"].values())
    assert all(isinstance(p["settled"], bool) for p in data["points"])
    assert all(isinstance(d["square"]["settled"], bool) for d in data["compute"]["details"].values())
    assert data["budget_s"] == 12.0 and data["elapsed_s"] <= 12.0 - 0.5 - reserve_s(12.0)  # 0.5 s: the start


def test_the_text_says_when_every_figure_settled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "process_age_s", lambda: 0.1)
    code, out, _ = run_cli(monkeypatch, FakeMachine(FakeClock()), "--quick")
    assert code == 0
    assert out.splitlines()[-1] == ("unsettled figures: none of 48 (settled: measured, at least 5 runs, an "
                                    "interquartile range within 10% of the median)")  # 32 + 4 + 12 figures


@pytest.mark.parametrize(("age_s", "spent_s"), [(0.4, 0.4), (4.9, 4.9), (5.0, 0.0), (300.0, 0.0), (None, 0.0)])
def test_the_command_counts_its_process_start_against_the_budget(
        monkeypatch: pytest.MonkeyPatch, age_s: float | None, spent_s: float) -> None:
    """A process just started for this command has spent its age (Python's start, the imports) of the
    budget; an older one (a test runner, a notebook) was started for something else."""
    seen: list[experiment.MeasureOptions] = []
    real: Callable[..., experiment.Measurement] = experiment.measure
    machine = FakeMachine(FakeClock())

    def spy(options: experiment.MeasureOptions) -> experiment.Measurement:
        seen.append(options)
        return real(options, clock=machine.clock)

    monkeypatch.setattr(system, "process_age_s", lambda: age_s)
    monkeypatch.setattr(experiment, "open_backend", lambda choice, threads: FakeBackend(machine))
    monkeypatch.setattr(experiment, "measure", spy)
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["measure", "--quick", "--no-progress", "--format", "json"]) == 0
    assert seen[0].spent_s == spent_s
    assert measure_commands.YOUNG_PROCESS_S == 5.0


def test_process_age_is_read_from_proc() -> None:
    age_s = system.process_age_s()
    assert age_s is None or 0.0 <= age_s < 1e7
