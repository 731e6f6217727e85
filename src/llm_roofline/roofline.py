"""The roofline: operators + a device -> per-operator time and bound, totals and memory fit.

For an operator of F FLOPs moving B bytes, with the compute ceiling P of the precision its math runs
in and the device's memory bandwidth W:

    arithmetic intensity  I = F / B                      (FLOP/byte)
    attainable            P_att = min(P, I x W)          (FLOP/s)
    time                  t = max(F / P, B / W)          (= F / P_att)
    bound                 "compute" if F / P > B / W, else "memory"

Operators run one after another: the step time is the sum of the operators' times (no overlap
between kernels, no launch overhead: a pure roofline is an upper bound on speed). Beside it, the totals
carry the efficiency model's expected time (``efficiency.py``: achievable fractions of the two roofs and
fixed overheads, fitted on published measurements; docs/validation.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from .efficiency import expected_time_s, params_for, step_cost
from .hardware import HardwareSpec
from .models import ModelSpec
from .transformer import Op, Workload, build_ops, kv_cache_bytes, weight_storage_bytes


def attainable_flops_per_s(intensity_flop_per_byte: float, peak_flops_per_s: float,
                           memory_bytes_per_s: float) -> float:
    """P = min(P_peak, I x BW)."""
    return min(peak_flops_per_s, intensity_flop_per_byte * memory_bytes_per_s)


def bound_of(intensity_flop_per_byte: float, ridge_flop_per_byte: float) -> str:
    """'compute' when the intensity is above the ridge point, else 'memory'."""
    return "compute" if intensity_flop_per_byte > ridge_flop_per_byte else "memory"


class OpResult(NamedTuple):
    """One operator's figures, per instance; its share of the totals is its figures x count."""

    name: str
    kind: str
    group: str
    count: int
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

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


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
    compute_bound_time_s: float
    memory_bound_time_s: float
    bound: str
    tokens: int
    tokens_per_s: float
    kv_cache_bytes: float
    expected_time_s: float  # the efficiency model's forecast (efficiency.py): fractions of the roofs + overheads
    expected_tokens_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class MemoryFit(NamedTuple):
    """What must be resident in device memory, against its capacity."""

    weight_bytes: float
    kv_cache_bytes: float
    total_bytes: float
    capacity_bytes: float | None
    fits: bool | None

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True, slots=True)
class Analysis:
    """A model run on a device: every operator's roofline figures, the totals, and the memory fit."""

    model: ModelSpec
    hardware: HardwareSpec
    workload: Workload
    ops: tuple[OpResult, ...]
    totals: Totals
    memory: MemoryFit

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "hardware": self.hardware.to_dict(),
            "workload": self.workload.to_dict(),
            "ops": [op.to_dict() for op in self.ops],
            "totals": self.totals.to_dict(),
            "memory": self.memory.to_dict(),
        }


def evaluate_op(op: Op, hardware: HardwareSpec) -> OpResult:
    """The roofline figures of one operator instance on a device."""
    return _evaluate(op, hardware.peak_for(op.math), hardware.memory_bytes_per_s)


def _evaluate(op: Op, peak: tuple[str, float], bandwidth: float) -> OpResult:
    flops, weight, act_read, act_write, kv_read, kv_write = op.cost
    moved = weight + act_read + act_write + kv_read + kv_write
    peak_precision, peak_flops = peak
    compute_time = flops / peak_flops
    memory_time = moved / bandwidth
    intensity = flops / moved
    compute_bound = compute_time > memory_time
    # Positional, in OpResult's field order (hot path: one call per operator).
    return OpResult(
        op.name, op.kind, op.group, op.count, flops, moved, weight, act_read, act_write, kv_read, kv_write,
        intensity, op.math, peak_precision, peak_flops, peak_flops if compute_bound else intensity * bandwidth,
        compute_time, memory_time, compute_time if compute_bound else memory_time,
        "compute" if compute_bound else "memory",
    )


def analyze(model: ModelSpec, hardware: HardwareSpec, workload: Workload) -> Analysis:
    """Every operator of one forward step of ``model`` on ``hardware`` under the roofline."""
    if workload.weights is None and model.stored_weights is not None:
        workload = replace(workload, weights=model.stored_weights)  # the file's formats, named in the result
    bandwidth = hardware.memory_bytes_per_s
    peaks: dict[str, tuple[str, float]] = {}
    results = []
    flops = moved = weight = act_read = act_write = kv_read = kv_write = 0.0
    compute_bound_time = memory_bound_time = 0.0
    for op in build_ops(model, workload):
        peak = peaks.get(op.math) or peaks.setdefault(op.math, hardware.peak_for(op.math))
        result = _evaluate(op, peak, bandwidth)
        results.append(result)
        n = op.count
        op_flops, op_weight, op_act_read, op_act_write, op_kv_read, op_kv_write = op.cost
        flops += op_flops * n
        moved += result.bytes * n
        weight += op_weight * n
        act_read += op_act_read * n
        act_write += op_act_write * n
        kv_read += op_kv_read * n
        kv_write += op_kv_write * n
        if result.bound == "compute":
            compute_bound_time += result.time_s * n
        else:
            memory_bound_time += result.time_s * n
    time_s = compute_bound_time + memory_bound_time
    context_len = workload.past_len + workload.q_len
    kv_bytes = kv_cache_bytes(model, workload.batch, context_len, workload.kv_format)
    cost = step_cost(results, workload.weight_scheme(model), workload.activation_format, model.tied_embeddings)
    expected_s = expected_time_s(cost, params_for(hardware))
    totals = Totals(
        flops=flops, bytes=moved, weight_bytes=weight, act_read_bytes=act_read, act_write_bytes=act_write,
        kv_read_bytes=kv_read, kv_write_bytes=kv_write,
        arithmetic_intensity=flops / moved,
        time_s=time_s,
        compute_bound_time_s=compute_bound_time,
        memory_bound_time_s=memory_bound_time,
        bound="compute" if compute_bound_time > memory_bound_time else "memory",
        tokens=workload.tokens,
        tokens_per_s=workload.tokens / time_s,
        kv_cache_bytes=kv_bytes,
        expected_time_s=expected_s,
        expected_tokens_per_s=workload.tokens / expected_s,
    )
    weights = weight_storage_bytes(model, workload.weight_scheme(model), workload.activation_format)
    capacity = hardware.available_memory_bytes  # what the OS lets a model use (phones keep some)
    resident = weights + kv_bytes
    memory = MemoryFit(
        weight_bytes=weights,
        kv_cache_bytes=kv_bytes,
        total_bytes=resident,
        capacity_bytes=capacity,
        fits=None if capacity is None else resident <= capacity,
    )
    return Analysis(model, hardware, workload, tuple(results), totals, memory)
