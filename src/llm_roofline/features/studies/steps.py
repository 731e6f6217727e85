"""Shared plumbing for the studies: a workload's operators at any batch or length, their roofline
sums, and exact integer searches on them.

Nothing here prices an operator: the FLOPs and bytes come from ``transformer.step_ops`` (which calls
the formulas of ``ops.py``), and their time and bound are ``roofline.step_time``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.roofline import bound_label, operators_roofline, step_compute_bound, step_time
from llm_roofline.core.transformer import Op, over_operators
from llm_roofline.core.units import Scalar

# The kernels of attention proper (not its projections): unfused Q·Kᵀ, the scores' soft-capping (Gemma-2),
# softmax, P·V, or the fused one — ``layer.attn.qk``, and ``layer.attn.window.qk`` for the sliding-window
# layers of a mixed model.
ATTENTION_CORE_KERNELS = ("qk", "softcap", "softmax", "sv", "flash")


def is_attention_core(op_name: str) -> bool:
    return op_name.startswith("layer.attn.") and op_name.rsplit(".", 1)[-1] in ATTENTION_CORE_KERNELS


class StepSums(NamedTuple):
    """One step's operators on a device, summed (x count): the figures ``roofline.analyze`` totals."""

    flops: float
    bytes: float
    time_s: float
    compute_bound_time_s: float
    memory_bound_time_s: float

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.bytes

    @property
    def bound(self) -> str:
        return bound_label(bool(step_compute_bound(np.asarray(self.time_s), np.asarray(self.compute_bound_time_s))))


def step_sums(ops: Sequence[Op[Scalar]], hardware: HardwareSpec) -> StepSums:
    """Sum of the roofline figures of scalar operators (one step), through ``roofline.step_time``."""
    instances = np.array([op.instances for op in ops], dtype=np.float64)
    flops = over_operators(np.array([op.cost.flops for op in ops], dtype=np.float64), instances)
    moved = over_operators(np.array([op.cost.bytes for op in ops], dtype=np.float64), instances)
    step = step_time(operators_roofline(ops, hardware), instances)
    time_s, compute_time = float(step.time_s), float(step.compute_bound_time_s)
    return StepSums(float(flops), float(moved), time_s, compute_time, time_s - compute_time)


def group_flops(ops: Sequence[Op[Scalar]]) -> dict[str, float]:
    """FLOPs (x instances) by operator group: attention, ffn, norm, residual, embedding, lm_head."""
    sums: dict[str, float] = {}
    for op in ops:
        sums[op.group] = sums.get(op.group, 0) + op.cost.flops * op.instances
    return sums


def smallest_integer(predicate: Callable[[int], bool], upper: int, lower: int = 1) -> int | None:
    """The smallest n in [lower, upper] with predicate(n) true, for a predicate false-then-true in n.

    Exact: an integer bisection on the predicate itself, no scan and no tolerance. None if
    predicate(upper) is false.
    """
    if predicate(lower):
        return lower
    if not predicate(upper):
        return None
    false_at, true_at = lower, upper
    while true_at - false_at > 1:
        middle = (false_at + true_at) // 2
        if predicate(middle):
            true_at = middle
        else:
            false_at = middle
    return true_at


def positive_ranges(margin: Callable[[int], float], upper: int) -> tuple[tuple[int, int], ...]:
    """The integer ranges [first, last] within [1, upper] where margin(n) > 0, exactly.

    For a margin convex or concave in n — every quantity here is: the cost formulas are polynomials
    of degree <= 2 in the batch and in the length, so F - r·B is a quadratic. Its forward difference
    is then monotone, which locates the vertex by bisection; on each side of the vertex the margin is
    monotone, which locates the sign changes by bisection. No scan, no tolerance.
    """
    if upper < 3:
        return tuple((n, n) for n in range(1, upper + 1) if margin(n) > 0)
    concave = margin(1) - 2 * margin(2) + margin(3) < 0

    def step(n: int) -> float:
        return margin(n + 1) - margin(n)

    if concave:  # rises to a maximum at the vertex, then falls
        vertex = smallest_integer(lambda n: step(n) <= 0, upper - 1) or upper
        if margin(vertex) <= 0:
            return ()
        first = smallest_integer(lambda n: margin(n) > 0, vertex)
        assert first is not None
        after = smallest_integer(lambda n: margin(n) <= 0, upper, lower=vertex)
        return ((first, upper if after is None else after - 1),)
    # convex: falls to a minimum at the vertex, then rises
    vertex = smallest_integer(lambda n: step(n) >= 0, upper - 1) or upper
    ranges = []
    falls_to_zero = smallest_integer(lambda n: margin(n) <= 0, vertex)
    if falls_to_zero is None:
        return ((1, upper),)
    if falls_to_zero > 1:
        ranges.append((1, falls_to_zero - 1))
    rises = smallest_integer(lambda n: margin(n) > 0, upper, lower=vertex)
    if rises is not None:
        ranges.append((rises, upper))
    return tuple(ranges)
