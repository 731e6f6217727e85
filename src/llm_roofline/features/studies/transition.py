"""When does an operator turn compute-bound? (chapter 2.4)

An operator is compute-bound when its arithmetic intensity I = F / B reaches the ridge point r = P /
W of the ceiling its math runs on (I >= r, the chapter's test: ``roofline.step_compute_bound``). For
each operator of a step, and for the step as a whole, we find the smallest integer batch (decode) or
prompt length (prefill) from which that holds — exactly, on the cost model itself. Every FLOP and
byte count is a polynomial of degree <= 2 in the batch and in the length (an MoE's expected experts
touched is concave in the batch, which keeps the margin convex), so the margin F - r·B is convex or
concave in n and integer bisection finds its sign changes without a scan
(``steps.positive_ranges``). Operators' intensities rise monotonically; the whole step's need not —
unfused attention's score traffic makes a long prefill memory-bound again — so every range at or
above the ridge is reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

from llm_roofline.core.engines import kv_padding_of
from llm_roofline.core.errors import InputError
from llm_roofline.core.formats import get_format
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.memory import max_batch, max_context
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.ops import gemm
from llm_roofline.core.transformer import (
    Op,
    Workload,
    count_layout,
    on_device,
    step_counts,
    step_math,
    step_ops,
    workload_plan,
)
from llm_roofline.core.units import Scalar
from llm_roofline.features.studies.steps import positive_ranges

# Searched up to here; beyond, an operator "never" turns compute-bound (its intensity saturates
# below the ridge). 2^30 sequences or tokens is far beyond any real batch or context.
MAX_SEARCH = 2**30
WHOLE_STEP = "whole step"


class CriticalPoint(NamedTuple):
    """One operator (or the whole step) against the ridge point as the batch or length grows."""

    name: str
    group: str
    ridge_flop_per_byte: float
    intensity_at_1: float  # at batch 1 (decode) or a 1-token prompt (prefill)
    intensity_at_max: float  # at MAX_SEARCH: the value it saturates to, if it saturates
    critical: int | None  # smallest integer at which I >= ridge; None: not up to MAX_SEARCH
    memory_bound_again: int | None  # where it falls back below the ridge (unfused attention at long prompts)
    compute_bound_ranges: tuple[tuple[int, int], ...]  # every [first, last] range with I >= ridge
    critical_fits: bool | None = None  # whether the step at ``critical`` fits the device (None: unknown or never)

    @property
    def gains(self) -> bool:
        """Whether the intensity grows at all with the swept variable (QKᵀ in decode does not)."""
        return self.intensity_at_max > self.intensity_at_1 * (1 + 1e-9)


def _critical_point(name: str, group: str, ridge: float,
                    cost_at: Callable[[int], tuple[float, float]]) -> CriticalPoint:
    """Solve F(n) >= ridge x B(n) over the integers 1..MAX_SEARCH (the chapter's I >= ridge)."""

    def margin(n: int) -> float:
        flops, moved = cost_at(n)
        return flops - ridge * moved

    ranges = positive_ranges(margin, MAX_SEARCH, inclusive=True)
    first, last = (cost_at(1), cost_at(MAX_SEARCH))
    critical = ranges[0][0] if ranges else None
    again = ranges[0][1] + 1 if ranges and ranges[0][1] < MAX_SEARCH else None
    return CriticalPoint(name, group, ridge, _ratio(*first), _ratio(*last), critical, again, ranges)


def _ratio(flops: float, moved: float) -> float:
    """FLOPs / bytes; infinite for an operator that moves no bytes (one fused into its matmul)."""
    return flops / moved if moved > 0 else math.inf


class QkRow(NamedTuple):
    """Intensity of QKᵀ vs batch and length (2.4.2), beside a weight matmul for contrast."""

    batch: int
    seq_len: int
    chapter_matmul_flop_per_byte: float  # [B, L, d] x [B, d, L] in fp32, no reuse (the chapter's)
    prefill_qk_flop_per_byte: float  # the model's Q·Kᵀ over a prompt of L tokens
    decode_qk_flop_per_byte: float  # the model's Q·Kᵀ for one new token against L cached
    decode_weight_matmul_flop_per_byte: float  # the model's q_proj in the same decode step


class PrecisionRow(NamedTuple):
    """The transition under one weight/activation format pair (2.4.3)."""

    weights: str
    activations: str
    math: str
    peak_precision: str  # the ceiling the math runs on (a wider one when the device lacks its own)
    ridge_flop_per_byte: float
    q_proj_intensity_at_1: float  # a weight matmul alone
    q_proj_critical_batch: int | None
    intensity_at_1: float  # whole decode step at batch 1
    critical_batch: int | None  # whole decode step
    max_batch: int | None = None  # the most sequences that fit at this length in these formats (None: unknown)


class TransitionStudy(NamedTuple):
    """Critical batch (decode) and critical prompt length (prefill) per operator, QKᵀ and precision tables."""

    model: str
    hardware: str
    workload: Workload
    decode_batch: tuple[CriticalPoint, ...]  # decode with workload.seq_len tokens cached
    prefill_len: tuple[CriticalPoint, ...]  # prefill at workload.batch sequences
    qk: tuple[QkRow, ...]
    precisions: tuple[PrecisionRow, ...]
    decode_max_batch: int | None = None  # the most sequences whose decode step at seq_len fits (None: unknown)
    prefill_max_len: int | None = None  # the longest prompt of workload.batch sequences that fits


def ridge_point(op: Op[Scalar], hardware: HardwareSpec) -> float:
    """The ridge point (FLOP/byte) of the ceiling this operator's math runs on."""
    return hardware.ridge_point(op.math)


def _whole_step(ops: Sequence[Op[Scalar]]) -> tuple[float, float]:
    return (sum(op.cost.flops * op.instances for op in ops), sum(op.cost.bytes * op.instances for op in ops))


def critical_points(hardware: HardwareSpec, precision: str,
                    ops_at: Callable[[int], list[Op[Scalar]]]) -> tuple[CriticalPoint, ...]:
    """For each operator of ``ops_at(n)`` and the whole step, where I >= ridge as n grows.

    The whole step uses the ridge of the matmul precision (the activations' math) and its aggregate
    intensity, total FLOPs / total bytes.
    """
    points = []
    for index, op in enumerate(ops_at(1)):

        def cost_at(n: int, index: int = index) -> tuple[float, float]:
            cost = ops_at(n)[index].cost
            return cost.flops, cost.bytes

        points.append(_critical_point(op.name, op.group, ridge_point(op, hardware), cost_at))
    ridge = hardware.ridge_point(precision)  # analyze's totals.ridge_flop_per_byte
    points.append(_critical_point(WHOLE_STEP, "", ridge, lambda n: _whole_step(ops_at(n))))
    return tuple(points)


def critical_batch(model: ModelSpec, hardware: HardwareSpec, workload: Workload) -> tuple[CriticalPoint, ...]:
    """Decode with ``workload.seq_len`` tokens cached: the batch at which each operator turns compute-bound."""
    decode = on_device(model, replace(workload, phase="decode"), hardware)[0]
    return critical_points(hardware, step_math(decode.activation_format, decode.weight_scheme(model)),
                           lambda n: step_ops(model, decode, batch=n))


def critical_prompt_len(model: ModelSpec, hardware: HardwareSpec, workload: Workload) -> tuple[CriticalPoint, ...]:
    """Prefill of ``workload.batch`` sequences: the prompt length at which each operator turns compute-bound.

    A model with chunked scans (Gated DeltaNet, Mamba-2) prices a prompt by its chunks, ceil(L / C): its
    margin is a staircase in L, which the exact bisection of ``positive_ranges`` (smooth margins) does not
    hold for; its lengths are evaluated one by one up to its context window (``_every_prompt_len``)."""
    prefill = on_device(model, replace(workload, phase="prefill"), hardware)[0]
    precision = step_math(prefill.activation_format, prefill.weight_scheme(model))
    if count_layout(model).chunk_sizes:
        return _every_prompt_len(model, hardware, prefill, precision)
    return critical_points(hardware, precision, lambda n: step_ops(model, prefill, q_len=n, past_len=0))


# Prompt lengths priced at once when every length is evaluated (temporaries: 7 cost fields x operators x this).
_LENGTHS_AT_ONCE = 1 << 14


def _every_prompt_len(model: ModelSpec, hardware: HardwareSpec, prefill: Workload,
                      precision: str) -> tuple[CriticalPoint, ...]:
    """``critical_prompt_len`` by evaluating every prompt length from 1 to the model's context window (the step
    plan over arrays of lengths, a block at a time): exact where the margin is a staircase. ``critical`` is
    None when no length up to the window is compute-bound, and ``intensity_at_max`` is at the window."""
    import numpy as np

    plan = workload_plan(model, prefill)
    limit = model.max_position_embeddings
    instances = np.array(plan.instances, dtype=np.float64)
    ridges = np.array([*(hardware.ridge_point(math) for math in plan.maths), hardware.ridge_point(precision)])
    ranges: list[list[tuple[int, int]]] = [[] for _ in ridges]
    for start in range(1, limit + 1, _LENGTHS_AT_ONCE):
        lengths = np.arange(start, min(start + _LENGTHS_AT_ONCE, limit + 1), dtype=np.float64)
        batch, cached = np.full_like(lengths, prefill.batch), np.zeros_like(lengths)  # a prompt: nothing cached
        costs = plan.costs(step_counts(model, batch, lengths, cached, prefill.skips_masked_scores,
                                       kv_padding_of(prefill.engine)))
        flops = np.vstack([costs[0], instances @ costs[0]])  # every operator per instance, then the whole step
        moved = np.vstack([costs[-1], instances @ costs[-1]])
        for row, compute_bound in zip(ranges, flops - ridges[:, None] * moved >= 0, strict=True):
            edges = np.diff(np.concatenate([[0], compute_bound.astype(np.int8), [0]]))
            for begins, ends_at in zip((np.flatnonzero(edges == 1) + start).tolist(),
                                       (np.flatnonzero(edges == -1) + start - 1).tolist(), strict=True):
                if row and row[-1][1] + 1 == begins:  # a range that goes on from the block before
                    row[-1] = (row[-1][0], ends_at)
                else:
                    row.append((begins, ends_at))
    ends = [step_ops(model, prefill, q_len=n, past_len=0) for n in (1, limit)]
    names = [*plan.names, WHOLE_STEP]
    groups = [*plan.groups, ""]
    points = []
    for index, (name, group, ridge, row) in enumerate(zip(names, groups, ridges.tolist(), ranges, strict=True)):
        at_1, at_limit = ((_whole_step(ops) if name == WHOLE_STEP else
                           (ops[index].cost.flops, ops[index].cost.bytes)) for ops in ends)
        critical = row[0][0] if row else None
        again = row[0][1] + 1 if row and row[0][1] < limit else None
        points.append(CriticalPoint(name, group, ridge, _ratio(*at_1), _ratio(*at_limit), critical, again, tuple(row)))
    return tuple(points)


def _intensity(ops: Sequence[Op[Scalar]], name: str) -> float:
    cost = next(op for op in ops if op.name == name).cost
    return cost.flops / cost.bytes


def qk_table(model: ModelSpec, workload: Workload, batches: Sequence[int],
             seq_lens: Sequence[int]) -> tuple[QkRow, ...]:
    """Q·Kᵀ intensity over batches x lengths: the chapter's [B, L, d] x [B, d, L] and the model's kernels.

    Without a FlashAttention kernel: with one, Q·Kᵀ is not a separate operator.
    """
    unfused = replace(workload, flash_attention=False)
    fp32 = get_format("fp32").bytes_per_element
    rows = []
    for batch in batches:
        for length in seq_lens:
            chapter = gemm(batch, length, length, model.hidden_size, fp32, fp32, fp32)
            prefill = step_ops(model, unfused, batch=batch, q_len=length, past_len=0)
            decode = step_ops(model, unfused, batch=batch, q_len=1, past_len=length)
            rows.append(QkRow(batch, length, chapter.flops / chapter.bytes, _intensity(prefill, "layer.attn.qk"),
                              _intensity(decode, "layer.attn.qk"), _intensity(decode, "layer.attn.q_proj")))
    return tuple(rows)


def precision_table(model: ModelSpec, hardware: HardwareSpec, workload: Workload,
                    formats: Sequence[tuple[str, str]]) -> tuple[PrecisionRow, ...]:
    """The decode transition of a weight matmul (q_proj) and of the whole step, per (weights, activations) pair."""
    rows = []
    for weights, activations in formats:
        variant = on_device(model, replace(workload, phase="decode", weights=weights, activations=activations,
                                           kv_cache=None), hardware)[0]
        points = critical_batch(model, hardware, variant)
        q_proj = next(p for p in points if p.name == "layer.attn.q_proj")
        whole = points[-1]
        math = step_math(variant.activation_format, variant.weight_scheme(model))
        rows.append(PrecisionRow(variant.weights_label, variant.activation_format.name, math,
                                 hardware.peak_for(math)[0], whole.ridge_flop_per_byte, q_proj.intensity_at_1,
                                 q_proj.critical, whole.intensity_at_1, whole.critical,
                                 max_batch(model, hardware, variant)))
    return tuple(rows)


DEFAULT_FORMATS = (("fp16", "fp16"), ("int8", "fp16"), ("int4", "fp16"), ("int8", "int8"))


def transition_study(model: ModelSpec, hardware: HardwareSpec, workload: Workload,
                     batches: Sequence[int] = (1, 4, 16, 64), seq_lens: Sequence[int] = (128, 1024, 4096),
                     formats: Sequence[tuple[str, str]] = DEFAULT_FORMATS) -> TransitionStudy:
    """Everything of chapter 2.4 for one model on one device."""
    for label, values in (("batches", batches), ("lengths", seq_lens)):
        if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
            raise InputError(f"{label} must be integers >= 1, got {list(values)!r}")
    decode = replace(workload, phase="decode")
    prefill = replace(workload, phase="prefill", new_tokens=1)
    most_sequences, longest_prompt = max_batch(model, hardware, decode), max_context(model, hardware, prefill)
    return TransitionStudy(
        model=model.name,
        hardware=hardware.name,
        workload=workload,
        decode_batch=_with_fit(critical_batch(model, hardware, workload), most_sequences),
        prefill_len=_with_fit(critical_prompt_len(model, hardware, workload), longest_prompt),
        qk=qk_table(model, workload, batches, seq_lens),
        precisions=precision_table(model, hardware, workload, formats),
        decode_max_batch=most_sequences,
        prefill_max_len=longest_prompt,
    )


def _with_fit(points: tuple[CriticalPoint, ...], largest: int | None) -> tuple[CriticalPoint, ...]:
    """Each point with whether its crossing fits: the footprint grows with the batch and the length, so a
    crossing fits exactly when it is at most the largest value that does (``core/memory.py``)."""
    return tuple(p._replace(critical_fits=None if largest is None or p.critical is None else p.critical <= largest)
                 for p in points)
