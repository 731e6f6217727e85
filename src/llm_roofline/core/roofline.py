"""The roofline: operators + a device -> per-operator time and bound, totals and memory fit.

For an operator of F FLOPs moving B bytes, with the compute ceiling P of the precision its math runs
in and the device's memory bandwidth W:

    arithmetic intensity  I = F / B                      (FLOP/byte)
    attainable            P_att = min(P, I x W)          (FLOP/s)
    time                  t = max(F / P, B / W)          (= F / P_att)
    bound                 "compute" if F / P >= B / W (I >= P / W, the ridge point), else "memory"

Operators run one after another: the step time is the sum of the operators' times (no overlap
between kernels, no launch overhead: a pure roofline is an upper bound on speed). A step is bound the
way the chapter tests it: its intensity (total FLOPs / total bytes) against the ridge point of the
precision its matrix products run in, ``I >= ridge`` is compute (ties go to compute, the chapter's ≥).
How its time splits between compute- and memory-bound operators is reported beside it, under its own
name (``compute_time_share``), never as a second meaning of "bound". Beside them, the totals
carry the efficiency model's expected time (``efficiency.py``: achievable fractions of the two roofs and
fixed overheads, fitted on published measurements; docs/validation.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, overload

from llm_roofline.core import compiled
from llm_roofline.core.efficiency import dequantizes, params_for
from llm_roofline.core.engines import engine_device, fusion_of, kernel_flags, kv_padding_of
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.memory import MemoryFootprint, memory_footprint
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.transformer import (
    COST_FIELDS,
    Op,
    StepPlan,
    Workload,
    on_device,
    over_operators,
    step_counts,
    step_math,
    workload_plan,
)
from llm_roofline.core.units import Array, Quantity, Scalar, is_array

if TYPE_CHECKING:
    import numpy as np


def attainable_flops_per_s(intensity_flop_per_byte: Quantity, peak_flops_per_s: Quantity | Scalar,
                           memory_bytes_per_s: Quantity | Scalar) -> Quantity:
    """P = min(P_peak, I x BW) (numbers, or numpy arrays that broadcast)."""
    slope = intensity_flop_per_byte * memory_bytes_per_s
    if not is_array(slope) and not is_array(peak_flops_per_s):
        return min(peak_flops_per_s, slope)
    import numpy as np

    attainable: Quantity = np.minimum(peak_flops_per_s, slope)  # stubs: Any
    return attainable


def bound_of(intensity_flop_per_byte: float, ridge_flop_per_byte: float) -> str:
    """'compute' when the intensity is at or above the ridge point, else 'memory' (the chapter's test)."""
    return bound_label(bool(step_compute_bound(intensity_flop_per_byte, 1.0, ridge_flop_per_byte)))


@overload
def step_compute_bound(flops: float, moved_bytes: float, ridge_flop_per_byte: float) -> bool: ...
@overload
def step_compute_bound(flops: np.ndarray, moved_bytes: np.ndarray, ridge_flop_per_byte: np.ndarray | float
                       ) -> np.ndarray: ...
def step_compute_bound(flops: float | np.ndarray, moved_bytes: float | np.ndarray,
                       ridge_flop_per_byte: float | np.ndarray) -> bool | np.ndarray:
    """The bound of a step (or of any point given by its work): compute-bound when its intensity F / B
    is at or above the ridge point, the chapter's I >= P_peak / BW. The one rule for a step's bound:
    ``analyze``'s ``totals.bound``, the sweep's column, the timeline, the studies, the web page."""
    return flops >= ridge_flop_per_byte * moved_bytes


def bound_label(compute_bound: bool) -> str:
    """The word for a bound in outputs: 'compute' or 'memory'."""
    return "compute" if compute_bound else "memory"


def bound_labels(compute_bound: np.ndarray) -> np.ndarray:
    """``bound_label`` over an array of flags (object array of 'compute' / 'memory')."""
    import numpy as np

    return np.where(compute_bound, "compute", "memory").astype(object)


class OpResult(NamedTuple):
    """One operator's figures, per instance; its share of the totals is its figures x count."""

    name: str
    kind: str
    group: str
    # Shadows tuple.count (a method no caller uses on a record) on purpose: ``count`` is a public attribute
    # and the key of analyze's JSON and CSV; Op names the same figure ``instances``.
    count: int  # type: ignore[assignment]
    flops: float
    bytes: float
    weight_bytes: float
    act_read_bytes: float
    act_write_bytes: float
    kv_read_bytes: float
    kv_write_bytes: float
    arithmetic_intensity: float
    precision: str
    peak_precision: str
    peak_flops_per_s: float
    attainable_flops_per_s: float
    compute_time_s: float
    memory_time_s: float
    time_s: float
    bound: str

    def to_dict(self) -> dict[str, object]:
        """The record as JSON takes it: an infinite intensity (no bytes moved) is null."""
        record: dict[str, object] = self._asdict()
        if not math.isfinite(self.arithmetic_intensity):
            record["arithmetic_intensity"] = None
        return record


class Totals(NamedTuple):
    """Sums over all operators (x count) for one step."""

    flops: float
    bytes: float
    weight_bytes: float
    act_read_bytes: float
    act_write_bytes: float
    kv_read_bytes: float
    kv_write_bytes: float
    arithmetic_intensity: float
    time_s: float
    compute_bound_time_s: float  # the part of time_s spent in compute-bound operators
    memory_bound_time_s: float
    bound: str  # the step's: arithmetic_intensity >= ridge_flop_per_byte is compute (step_compute_bound)
    tokens: int
    tokens_per_s: float
    kv_cache_bytes: float
    expected_time_s: float  # the efficiency model's forecast (efficiency.py): fractions of the roofs + overheads
    expected_tokens_per_s: float
    peak_precision: str  # the ceiling the step's matrix products run on (the activations' math, after fallback)
    ridge_flop_per_byte: float  # that ceiling / the memory bandwidth
    compute_time_share: float  # compute_bound_time_s / time_s

    def to_dict(self) -> dict[str, object]:
        return self._asdict()


MemoryFit = MemoryFootprint  # the name of analyze's memory record before core/memory.py (same keys, and more)


@dataclass(frozen=True, slots=True)
class Analysis:
    """A model run on a device: every operator's roofline figures, the totals, and the memory fit.

    ``ops`` is built on first use (``records``: the step's compiled record maker, bound to its counts and
    device): the totals need the operators' times, not their twenty-field records, and a loop of analyses
    that reads only the totals (a study's search, the web page's ranking) should not pay for them.
    """

    model: ModelSpec
    hardware: HardwareSpec
    workload: Workload
    totals: Totals
    memory: MemoryFootprint
    warnings: tuple[str, ...] = ()  # what the figures do not say: e.g. a length past the context window
    records: Callable[[], tuple[OpResult, ...]] = field(default=tuple, repr=False, compare=False)
    _ops: tuple[OpResult, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def ops(self) -> tuple[OpResult, ...]:
        """Every operator's figures, in execution order, layers aggregated (``count`` instances each)."""
        if self._ops is None:
            object.__setattr__(self, "_ops", self.records())
        return self._ops  # type: ignore[return-value]

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model.to_dict(),
            "hardware": self.hardware.to_dict(),
            "workload": self.workload.to_dict(),
            "ops": [op.to_dict() for op in self.ops],
            "totals": self.totals.to_dict(),
            "memory": self.memory.to_dict(),
            "warnings": list(self.warnings),
        }


class Roofline(NamedTuple, Generic[Quantity]):
    """Operators' times under the roofline: ``Roofline[Scalar]`` of one point (numbers), ``Roofline[Array]``
    of many (numpy arrays that broadcast: operators, devices, grid points)."""

    compute_time_s: Quantity  # F / P
    memory_time_s: Quantity  # B / W
    time_s: Quantity  # max(F / P, B / W)
    compute_bound: Any  # F / P >= B / W: a bool for one point, a boolean array for many


@overload
def roofline(flops: float, moved_bytes: float, peak_flops_per_s: float, memory_bytes_per_s: float
             ) -> Roofline[Scalar]: ...
@overload
def roofline(flops: Array, moved_bytes: Array | float, peak_flops_per_s: Array | float,
             memory_bytes_per_s: Array | float) -> Roofline[Array]: ...
def roofline(flops: Array | float, moved_bytes: Array | float, peak_flops_per_s: Array | float,
             memory_bytes_per_s: Array | float) -> Roofline[Scalar] | Roofline[Array]:
    """The roofline of a point (an operator, a kernel, a measured GEMM) or of arrays of them: the one place
    its time and bound are computed (``analyze``'s compiled step, ``_step_source``, writes the same lines
    for its operators). ``evaluate_op``, the sweep, the timeline and ``measure`` call it."""
    # At the ridge (F / P = B / W) compute-bound, as the chapter's I >= ridge.
    if is_array(flops) or is_array(moved_bytes) or is_array(peak_flops_per_s) or is_array(memory_bytes_per_s):
        import numpy as np

        compute: Array = np.divide(flops, peak_flops_per_s)
        memory: Array = np.divide(moved_bytes, memory_bytes_per_s)
        return Roofline(compute, memory, np.maximum(compute, memory), compute >= memory)
    compute_time_s, memory_time_s = flops / peak_flops_per_s, moved_bytes / memory_bytes_per_s
    return Roofline(compute_time_s, memory_time_s, max(compute_time_s, memory_time_s), compute_time_s >= memory_time_s)


class StepTime(NamedTuple):
    """A step's time under the roofline and the part of it spent in compute-bound operators (numbers, or
    arrays over configurations)."""

    time_s: np.ndarray
    compute_bound_time_s: np.ndarray

    @property
    def memory_bound_time_s(self) -> np.ndarray:
        memory_bound: np.ndarray = self.time_s - self.compute_bound_time_s
        return memory_bound

    @property
    def compute_time_share(self) -> np.ndarray:
        """The fraction of the step's time spent in compute-bound operators (not its bound: see
        ``step_compute_bound``)."""
        share: np.ndarray = self.compute_bound_time_s / self.time_s
        return share


def step_time(line: Roofline[Array], instances: np.ndarray) -> StepTime:
    """A step's time and its split by the operators' bounds, from its operators' roofline (operators on
    axis 0) and their instances: the one place they are summed (``analyze``, the sweep, the studies)."""
    return StepTime(over_operators(line.time_s, instances), over_operators(line.time_s * line.compute_bound, instances))


def evaluate_op(op: Op[Scalar], hardware: HardwareSpec) -> OpResult:
    """The roofline figures of one operator instance on a device."""
    flops, moved, bandwidth = float(op.cost.flops), float(op.cost.bytes), hardware.memory_bytes_per_s
    peak_precision, peak = hardware.peak_for(op.math)
    line = roofline(flops, moved, peak, bandwidth)
    intensity = flops / moved if moved > 0 else math.inf  # no bytes moved (fused away): infinite intensity
    cost = op.cost
    return OpResult(op.name, op.kind, op.group, op.instances, flops, moved, float(cost.weight_bytes),
                    float(cost.act_read_bytes), float(cost.act_write_bytes), float(cost.kv_read_bytes),
                    float(cost.kv_write_bytes), intensity, op.math, peak_precision, peak,
                    attainable_flops_per_s(intensity, peak, bandwidth), line.compute_time_s, line.memory_time_s,
                    line.time_s, bound_label(bool(line.compute_bound)))


_new_result = functools.partial(tuple.__new__, OpResult)  # OpResult from a row in field order (hot path)
_new_totals = functools.partial(tuple.__new__, Totals)


def _ceilings(hardware: HardwareSpec, maths: Sequence[str]) -> tuple[list[float], list[str]]:
    """The ceiling (FLOP/s) each precision of ``maths`` runs at on ``hardware``, and the precision it is."""
    peaks, precisions = [], []
    for math_precision in maths:
        precision, peak = hardware.peak_for(math_precision)
        peaks.append(peak)
        precisions.append(precision)
    return peaks, precisions


@functools.lru_cache(maxsize=256)
def _step_function(plan: StepPlan, records: bool, fusion: str = "none") -> Callable[..., Any]:
    """``plan``'s step for one configuration on one device, compiled to straight-line Python.

    Called with (the step's counts, the ceiling and its precision per ``plan.unique_maths``, the memory
    bandwidth, the efficiency parameters). Returns, with ``records``, the operators' ``OpResult``s; else
    (the totals of ``COST_FIELDS``, the roofline time, its compute-bound part, the operators' expected
    time). The arithmetic is ``roofline``'s and ``efficiency.op_time_s``'s, written for plain numbers; the
    sweep's arrays and these functions are held to each other in tests/test_sweep.py and tests/test_plan.py.
    ``fusion``: the engine's (``engines.py``): an operator it runs inside a neighbour pays no per-kernel cost.
    """
    return compiled.compile_function("step", _step_source(plan, records, fusion),
                                     {"new": _new_result, "INF": math.inf})


def _step_source(plan: StepPlan, records: bool, fusion: str = "none") -> list[str]:
    launches = kernel_flags(plan.kinds, fusion)
    count_names = [f"c{j}" for j in range(1, len(plan.rows[0][0]))]
    unique = range(len(plan.unique_maths))
    lines = ["def step(c, peak, precision, bandwidth, eta_m, eta_c, dequant, per_op):",
             f"    {''.join(f'{name}, ' for name in count_names)}= c",
             f"    {''.join(f'k{j}, ' for j in unique)}= peak"]
    if records:
        lines.append(f"    {''.join(f'q{j}, ' for j in unique)}= precision")
    else:
        # The compute efficiency of an operator that does not dequantize, and of one that does.
        lines += ["    e0 = eta_c",
                  "    e1 = eta_c + eta_c * (dequant - 1)",
                  "    time = busy = expected = 0.0"]
    made = []
    for i, name in enumerate(plan.names):
        field = {key: compiled.affine_source(plan.rows[k][i], count_names) for k, key in enumerate(COST_FIELDS)}
        n, j = plan.instances[i], plan.math_index[i]
        lines += [f"    f = {field['flops']}",
                  f"    b = {field['bytes']}",
                  f"    ct = f / k{j}",
                  "    mt = b / bandwidth"]
        if records:
            lines += ["    i = f / b if b > 0 else INF",
                      "    a = i * bandwidth",
                      f"    r{i} = new(({name!r}, {plan.kinds[i]!r}, {plan.groups[i]!r}, {n}, f, b, "
                      f"{field['weight_bytes']}, {field['act_read_bytes']}, {field['act_write_bytes']}, "
                      f"{field['kv_read_bytes']}, {field['kv_write_bytes']}, i, {plan.maths[i]!r}, q{j}, k{j}, "
                      f"k{j} if k{j} <= a else a, ct, mt, ct if ct >= mt else mt, "
                      "'compute' if ct >= mt else 'memory'))"]
            made.append(f"r{i}, ")
            continue
        e = dequantizes(plan.weight_formats[i], plan.activations)
        lines += ["    if ct >= mt:",
                  f"        time += {n} * ct",
                  f"        busy += {n} * ct",
                  "    else:",
                  f"        time += {n} * mt",
                  f"    u, v = ct / e{e}, mt / eta_m",
                  f"    expected += {n} * ((u if u >= v else v) + per_op)" if launches[i] else
                  f"    expected += {n} * (u if u >= v else v)"]
    if records:
        lines.append(f"    return ({''.join(made)})")
    else:
        totals = ", ".join(compiled.affine_source(row, count_names) for row in plan.totals_rows)
        lines.append(f"    return ({totals}), time, busy, expected")
    return lines


def analyze(model: ModelSpec, hardware: HardwareSpec, workload: Workload) -> Analysis:
    """Every operator of one forward step of ``model`` on ``hardware`` under the roofline."""
    if workload.weights is None and model.stored_weights is not None:
        workload = replace(workload, weights=model.stored_weights)  # the file's formats, named in the result
    workload, device_note = on_device(model, workload, hardware)  # 2:4 sparsity where the device runs it
    plan = workload_plan(model, workload)
    counts = step_counts(model, workload.batch, workload.q_len, workload.past_len, workload.skips_masked_scores,
                         kv_padding_of(workload.engine))
    ceilings = engine_device(hardware, workload.engine)  # an engine accumulating in fp16: that rate (engines.toml)
    peaks, precisions = _ceilings(ceilings, plan.unique_maths)
    bandwidth = hardware.memory_bytes_per_s
    eta_m, eta_c, dequant, per_op, per_step = params_for(hardware, workload.engine, workload.step_positions).values()
    fusion = fusion_of(workload.engine)
    (flops, weight, act_read, act_write, kv_read, kv_write, moved), time_s, compute_bound_time, operators_s = (
        _step_function(plan, False, fusion)(counts, peaks, precisions, bandwidth, eta_m, eta_c, dequant, per_op))
    step_precision, step_peak = ceilings.peak_for(step_math(workload.activation_format, workload.weight_scheme(model)))
    ridge = step_peak / bandwidth
    expected_s = per_step + operators_s
    tokens = workload.tokens
    memory = memory_footprint(model, hardware, workload)  # weights + KV cache + activations + runtime overhead
    totals = _new_totals((  # Totals' fields in order (the hot path: a tuple, not twenty keywords)
        flops, moved, weight, act_read, act_write, kv_read, kv_write, flops / moved, time_s, compute_bound_time,
        time_s - compute_bound_time, bound_label(step_compute_bound(flops, moved, ridge)), tokens, tokens / time_s,
        memory.kv_cache_bytes, expected_s, tokens / expected_s, step_precision, ridge, compute_bound_time / time_s))
    context_len = workload.past_len + workload.q_len
    notes = tuple(note for note in (model.context_warning(context_len), device_note) if note is not None)
    records = functools.partial(_step_function(plan, True), counts, peaks, precisions, bandwidth, eta_m, eta_c,
                                dequant, per_op)
    return Analysis(model, hardware, workload, totals, memory, notes, records)
