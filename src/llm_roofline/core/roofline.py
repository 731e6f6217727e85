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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple, overload

import numpy as np

from llm_roofline.core.efficiency import expected_step_time_s, params_for, plan_dequantizes
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.memory import MemoryFootprint, memory_footprint
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.transformer import (
    Op,
    Workload,
    kv_cache_bytes,
    on_device,
    over_operators,
    step_counts,
    step_math,
    workload_plan,
)
from llm_roofline.core.units import Quantity, Scalar


def attainable_flops_per_s(intensity_flop_per_byte: Quantity, peak_flops_per_s: Quantity | Scalar,
                           memory_bytes_per_s: Quantity | Scalar) -> Quantity:
    """P = min(P_peak, I x BW) (numbers, or numpy arrays that broadcast)."""
    attainable: Quantity = np.minimum(peak_flops_per_s, intensity_flop_per_byte * memory_bytes_per_s)  # stubs: Any
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
    """A model run on a device: every operator's roofline figures, the totals, and the memory fit."""

    model: ModelSpec
    hardware: HardwareSpec
    workload: Workload
    ops: tuple[OpResult, ...]
    totals: Totals
    memory: MemoryFootprint
    warnings: tuple[str, ...] = ()  # what the figures do not say: e.g. a length past the context window

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


class Roofline(NamedTuple):
    """Operators' times under the roofline (numpy arrays that broadcast: operators, devices, grid points)."""

    compute_time_s: np.ndarray  # F / P
    memory_time_s: np.ndarray  # B / W
    time_s: np.ndarray  # max(F / P, B / W)
    compute_bound: np.ndarray  # F / P > B / W


def roofline(flops: np.ndarray | float, moved_bytes: np.ndarray | float, peak_flops_per_s: np.ndarray | float,
             memory_bytes_per_s: np.ndarray | float) -> Roofline:
    """The roofline of a point (an operator, a kernel, a measured GEMM): the one place its time and bound
    are computed. ``analyze``, ``evaluate_op``, the sweep, the timeline and ``measure`` call it."""
    compute_time = np.divide(flops, peak_flops_per_s)
    memory_time = np.divide(moved_bytes, memory_bytes_per_s)
    # At the ridge (F / P = B / W) compute-bound, as the chapter's I >= ridge.
    return Roofline(compute_time, memory_time, np.maximum(compute_time, memory_time), compute_time >= memory_time)


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


def step_time(line: Roofline, instances: np.ndarray) -> StepTime:
    """A step's time and its split by the operators' bounds, from its operators' roofline (operators on
    axis 0) and their instances: the one place they are summed (``analyze``, the sweep, the studies)."""
    return StepTime(over_operators(line.time_s, instances), over_operators(line.time_s * line.compute_bound, instances))


def operators_roofline(ops: Sequence[Op[Scalar]], hardware: HardwareSpec) -> Roofline:
    """The roofline of a list of scalar operators on a device, per instance (operators on axis 0)."""
    flops = np.array([op.cost.flops for op in ops], dtype=np.float64)
    moved = np.array([op.cost.bytes for op in ops], dtype=np.float64)
    peaks = np.array([hardware.peak_for(op.math)[1] for op in ops], dtype=np.float64)
    return roofline(flops, moved, peaks, hardware.memory_bytes_per_s)


def evaluate_op(op: Op[Scalar], hardware: HardwareSpec) -> OpResult:
    """The roofline figures of one operator instance on a device."""
    costs = np.array([(*op.cost, op.cost.bytes)], dtype=np.float64).T
    peak_precision, peak = hardware.peak_for(op.math)
    return _results((op.name,), (op.kind,), (op.group,), (op.instances,), (op.math,), (peak_precision,), (peak,), costs,
                    hardware.memory_bytes_per_s)[0][0]


def _results(names: Sequence[str], kinds: Sequence[str], groups: Sequence[str], counts: Sequence[int],
             maths: Sequence[str], peak_precisions: Sequence[str], peaks: Sequence[float], costs: np.ndarray,
             bandwidth: float) -> tuple[tuple[OpResult, ...], Roofline]:
    """Per-operator records from costs per instance, (``transformer.COST_FIELDS``, operators)."""
    peak = np.array(peaks)
    line = roofline(costs[0], costs[6], peak, bandwidth)
    # An operator that moves no bytes (an elementwise one fused into its matmul) has infinite intensity.
    intensity = np.divide(costs[0], costs[6], out=np.full(costs.shape[1], np.inf), where=costs[6] > 0)
    flops, weight, act_read, act_write, kv_read, kv_write, moved = costs.tolist()
    bounds = [bound_label(bound) for bound in line.compute_bound.tolist()]
    # Columns in OpResult's field order.
    columns = (names, kinds, groups, counts, flops, moved, weight, act_read, act_write, kv_read, kv_write,
               intensity.tolist(), maths, peak_precisions, peaks,
               attainable_flops_per_s(intensity, peak, bandwidth).tolist(), line.compute_time_s.tolist(),
               line.memory_time_s.tolist(),
               line.time_s.tolist(), bounds)
    return tuple(map(_new_result, zip(*columns, strict=True))), line


_new_result = functools.partial(tuple.__new__, OpResult)  # OpResult from a row in field order (hot path)


def analyze(model: ModelSpec, hardware: HardwareSpec, workload: Workload) -> Analysis:
    """Every operator of one forward step of ``model`` on ``hardware`` under the roofline."""
    if workload.weights is None and model.stored_weights is not None:
        workload = replace(workload, weights=model.stored_weights)  # the file's formats, named in the result
    workload, device_note = on_device(model, workload, hardware)  # 2:4 sparsity where the device runs it
    plan = workload_plan(model, workload)
    costs = plan.costs(step_counts(model, workload.batch, workload.q_len, workload.past_len,
                                   workload.skips_masked_scores))
    ceilings = [hardware.peak_for(math) for math in plan.unique_maths]
    peak_precisions, peaks = zip(*[ceilings[i] for i in plan.math_index], strict=True)
    results, line = _results(plan.names, plan.kinds, plan.groups, plan.instances, plan.maths, peak_precisions,
                             peaks, costs, hardware.memory_bytes_per_s)
    instances = plan.instance_weights
    flops, weight, act_read, act_write, kv_read, kv_write, moved = costs.dot(instances).tolist()
    step = step_time(line, instances)
    time_s, compute_bound_time = float(step.time_s), float(step.compute_bound_time_s)
    step_precision, step_peak = hardware.peak_for(step_math(workload.activation_format, workload.weight_scheme(model)))
    ridge = step_peak / hardware.memory_bytes_per_s
    context_len = workload.past_len + workload.q_len
    kv_bytes = kv_cache_bytes(model, workload.batch, context_len, workload.kv_format)
    expected_s = float(expected_step_time_s(line.compute_time_s, line.memory_time_s, plan_dequantizes(plan),
                                            instances, params_for(hardware).values()))
    tokens = workload.tokens
    totals = Totals(
        flops=flops, bytes=moved, weight_bytes=weight, act_read_bytes=act_read, act_write_bytes=act_write,
        kv_read_bytes=kv_read, kv_write_bytes=kv_write,
        arithmetic_intensity=flops / moved,
        time_s=time_s,
        compute_bound_time_s=compute_bound_time,
        memory_bound_time_s=float(step.memory_bound_time_s),
        bound=bound_label(step_compute_bound(flops, moved, ridge)),
        tokens=tokens,
        tokens_per_s=tokens / time_s,
        kv_cache_bytes=kv_bytes,
        expected_time_s=expected_s,
        expected_tokens_per_s=tokens / expected_s,
        peak_precision=step_precision,
        ridge_flop_per_byte=ridge,
        compute_time_share=compute_bound_time / time_s,
    )
    memory = memory_footprint(model, hardware, workload)  # weights + KV cache + activations + runtime overhead
    notes = tuple(note for note in (model.context_warning(context_len), device_note) if note is not None)
    return Analysis(model, hardware, workload, results, totals, memory, notes)
