"""Shared plumbing for the studies: a workload's operators at any batch or length, their roofline
sums, and exact integer searches on them.

Nothing here prices an operator: the FLOPs and bytes come from ``transformer.step_ops`` (which calls
the formulas of ``ops.py``), and their time and bound are ``roofline.roofline``'s. Plain Python numbers
throughout: the studies run without numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.roofline import roofline
from llm_roofline.core.transformer import Op, Workload
from llm_roofline.core.units import Scalar

# The kernels of attention proper (not its projections): unfused Q·Kᵀ, the scores' soft-capping (Gemma-2),
# softmax, P·V, or the fused one — ``layer.attn.qk``, and ``layer.attn.window.qk`` for the sliding-window
# layers of a mixed model.
ATTENTION_CORE_KERNELS = ("qk", "softcap", "softmax", "sv", "flash")


def is_attention_core(op_name: str) -> bool:
    return op_name.startswith("layer.attn.") and op_name.rsplit(".", 1)[-1] in ATTENTION_CORE_KERNELS


class StepSums(NamedTuple):
    """One step's operators on a device, summed (x count): the figures ``roofline.analyze`` totals (its
    bound is ``roofline.step_compute_bound`` of the FLOPs and bytes, at the ridge ``analyze`` reports)."""

    flops: float
    bytes: float
    time_s: float
    compute_bound_time_s: float
    memory_bound_time_s: float

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.bytes


def step_sums(ops: Sequence[Op[Scalar]], hardware: HardwareSpec) -> StepSums:
    """Sum of the roofline figures of scalar operators (one step): each operator's ``roofline.roofline``
    times its instances."""
    flops = moved = time_s = compute_time = 0.0
    bandwidth = hardware.memory_bytes_per_s
    for op in ops:
        op_flops, op_bytes = float(op.cost.flops), float(op.cost.bytes)
        line = roofline(op_flops, op_bytes, hardware.peak_for(op.math)[1], bandwidth)
        flops += op.instances * op_flops
        moved += op.instances * op_bytes
        time_s += op.instances * line.time_s
        if line.compute_bound:
            compute_time += op.instances * line.time_s
    return StepSums(flops, moved, time_s, compute_time, time_s - compute_time)


def dense_only(workload: Workload, study: str) -> None:
    """Refuse 2:4 sparsity in a study that prices operators without a device's sparse units (its FLOPs
    and bytes would be the dense ones while analyze's are not): one answer, or none."""
    if workload.sparsity != "none":
        raise InputError(f"{study}: sparsity {workload.sparsity} is priced per device by analyze, whatif, sweep, "
                         f"transition, timeline and fit; this study prices the dense model (give sparsity none)")


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


INFLECTION_SEARCH = 2**20


def positive_ranges(margin: Callable[[int], float], upper: int,
                    inclusive: bool = False) -> tuple[tuple[int, int], ...]:
    """The integer ranges [first, last] within [1, upper] where margin(n) > 0 (>= 0 when ``inclusive``),
    exactly.

    For a margin whose second difference changes sign at most once — every quantity here: the cost
    formulas are polynomials of degree <= 2 in the batch and in the length (a constant second
    difference), plus, for a mixture of experts, the experts a step touches, a concave count that
    saturates (a negative second difference shrinking toward 0), and for windowed attention a kink where
    the window fills (a step in the second difference). So the margin is convex on one side of an
    inflection point and concave on the other; the inflection is found by bisection on the sign of the
    second difference, and on each side the forward difference is monotone, which locates the vertex by
    bisection, and on each side of the vertex the margin is monotone, which locates the sign changes by
    bisection. No scan, no tolerance.
    """
    def holds(n: int) -> bool:
        value = margin(n)
        return value >= 0 if inclusive else value > 0

    if upper < 4:
        return _merged([(n, n) for n in range(1, upper + 1) if holds(n)])

    def curvature(n: int) -> float:  # the second difference over n, n + 1, n + 2
        return margin(n) - 2 * margin(n + 1) + margin(n + 2)

    # The inflection lies where the experts a step touches saturate, or where a window fills: within the
    # first 2^20 (a window of up to 1 M tokens). Beyond it the margin reaches 1e25 and its second difference
    # drowns in rounding, so it is not searched there.
    first_concave = curvature(1) < 0
    flip = smallest_integer(lambda n: (curvature(n) < 0) != first_concave, min(upper - 2, INFLECTION_SEARCH))
    if flip is None:
        return _merged(_segment_ranges(margin, holds, 1, upper, first_concave))
    return _merged(_segment_ranges(margin, holds, 1, flip, first_concave)
                   + _segment_ranges(margin, holds, flip + 1, upper, not first_concave))


def _segment_ranges(margin: Callable[[int], float], holds: Callable[[int], bool], lower: int, upper: int,
                    concave: bool) -> list[tuple[int, int]]:
    """``positive_ranges`` on [lower, upper], where the margin is concave (or convex) throughout."""
    if upper - lower < 2:
        return [(n, n) for n in range(lower, upper + 1) if holds(n)]

    def step(n: int) -> float:
        return margin(n + 1) - margin(n)

    if concave:  # rises to a maximum at the vertex, then falls
        vertex = smallest_integer(lambda n: step(n) <= 0, upper - 1, lower) or upper
        if not holds(vertex):
            return []
        first = smallest_integer(holds, vertex, lower)
        assert first is not None
        after = smallest_integer(lambda n: not holds(n), upper, lower=vertex)
        return [(first, upper if after is None else after - 1)]
    # convex: falls to a minimum at the vertex, then rises
    vertex = smallest_integer(lambda n: step(n) >= 0, upper - 1, lower) or upper
    ranges = []
    falls_to_zero = smallest_integer(lambda n: not holds(n), vertex, lower)
    if falls_to_zero is None:
        return [(lower, upper)]
    if falls_to_zero > lower:
        ranges.append((lower, falls_to_zero - 1))
    rises = smallest_integer(holds, upper, lower=vertex)
    if rises is not None:
        ranges.append((rises, upper))
    return ranges


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Ranges in order, those that touch (one ends at n, the next starts at n + 1) joined."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return tuple(out)
