"""Whole design spaces at once: the cost model evaluated over numpy arrays of batch and length.

The sweep does not have a cost model of its own. It takes the ``transformer.StepPlan`` that
``analyze()`` uses — the formulas of ``ops.py`` as coefficients of the step counts — and evaluates
the FLOPs and bytes of a chunk's operators as matrix products; their times, the step's total and its
expected time are ``roofline.roofline``, ``roofline.step_time`` and ``efficiency.expected_step_time_s``,
the functions ``analyze()`` calls. Structural choices (model, phase, number formats, FlashAttention) are
looped over; devices are broadcast along a second axis.

A chunk of the grid is a few rectangles of batch rows x length columns. A step count that does not vary
along an axis (a decode step's tokens are the batch, whatever the length) is kept with that axis of 1,
so each operator is priced over only the axes its costs vary along: a decode step's weight matmuls once
per batch, its attention at every point. The operators' sums over a group are added with broadcasting:
the same terms as summing every operator at every point, in another order (tests/test_sweep_engine.py).

Grids are generated and processed in chunks of configurations (points x devices), each point
found from its index, so memory stays bounded by the chunk whatever the grid's size; the grid's
size and its lists are checked against the limits below before anything is allocated.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from llm_roofline.core.efficiency import expected_step_time_s, params_for, plan_dequantizes, plan_kernels
from llm_roofline.core.engines import Engine, check_engine_on, engine_device, fusion_of, get_engine, kv_padding_of
from llm_roofline.core.errors import InputError, one_of, shown
from llm_roofline.core.formats import NumberFormat, WeightScheme, get_format
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.limits import WORKLOAD, Limit, count, describe
from llm_roofline.core.memory import grid_footprint_bytes
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.quant import (
    WeightsSpec,
    default_weight_format,
    is_sparse,
    sparse_scheme,
    weight_scheme,
    weights_label,
)
from llm_roofline.core.roofline import bound_labels, roofline, step_compute_bound, step_time
from llm_roofline.core.transformer import (
    COST_FIELDS,
    FUSE_MODES,
    LM_HEAD_MODES,
    PHASES,
    SPARSITY_MODES,
    Op,
    StepCounts,
    StepPlan,
    mla_absorbed,
    over_operators,
    phase_lengths,
    step_counts,
    step_math,
    step_plan,
)
from llm_roofline.core.units import Array
from llm_roofline.inputs.device_files import load_hardware
from llm_roofline.inputs.model_files import load_model

DEFAULT_CHUNK = 1 << 16  # configurations (points x devices) evaluated at once: what bounds the memory
# The largest grids a sweep accepts, checked before anything is allocated (docs/sweep.md, "Limits"); each
# batch and length is within its Workload range (core/limits.WORKLOAD).
MAX_AXIS_VALUES = 10_000_000  # values in the batch list or in the length list
MAX_CONFIGURATIONS = 10**10  # the grid's size: hours of queries (the command line streams ~400,000 a second)
# Inside a chunk, work goes tile by tile so that its temporaries stay in the core's cache. A group of operators is
# priced _SLICE_ELEMENTS operators x devices x points at a time, but never fewer than _TILE_POINTS points (a
# prefill step's 18 operators made tiles of 910 points: Python's per-call cost dominated). Measured on the 2-vCPU
# VM (Llama-2-7B decode, bench/bench_sweep.py): 2^14 elements beat 2^13 by 8 % and 2^15 by 16 % (larger
# temporaries: the allocator hands pages back and faults them in again). The memory footprint is one call per
# rectangle of batches x lengths (core/memory.py broadcasts it).
_SLICE_ELEMENTS = 1 << 14
_TILE_POINTS = 1 << 10
# Columns of a sweep's output, in order. Figures are raw SI numbers (per configuration, per step).
COLUMNS = (
    "model", "hardware", "phase", "weights", "activations", "kv_cache", "flash_attention", "batch", "seq_len",
    "flops", "bytes", "arithmetic_intensity", "time_s", "tokens_per_s", "bound", "compute_bound_time_s",
    "weight_bytes", "kv_cache_bytes", "memory_bytes", "fits", "expected_time_s", "expected_tokens_per_s",
    "compute_time_share", "activation_bytes",
)


@dataclass(frozen=True)
class SweepSpec:
    """A grid: the product of every list below. ``batch`` and ``seq_len`` are vectorized."""

    models: tuple[ModelSpec, ...]
    hardware: tuple[HardwareSpec, ...]
    batch: tuple[int, ...]
    seq_len: tuple[int, ...]
    phases: tuple[str, ...] = ("decode",)
    weights: tuple[WeightsSpec, ...] = (None,)  # formats, llama.cpp mixes, or None: the model's own
    activations: tuple[NumberFormat, ...] = ()
    kv_cache: tuple[NumberFormat | None, ...] = (None,)
    flash_attention: tuple[bool, ...] = (False,)
    causal_skip: bool | None = None
    lm_head: str = "last"
    fuse: str = "none"  # Workload.fuse: "elementwise" folds norms, RoPE, activations, residual adds into the matmuls
    sparsity: str = "none"  # Workload.sparsity: "2:4" prunes the layers' projections on devices with sparse units
    engine: str | None = None  # Workload.engine: its fitted efficiency figures and fusion level (engines.py)

    def __post_init__(self) -> None:
        if not self.activations:
            object.__setattr__(self, "activations", (get_format("fp16"),))
        for label in ("models", "hardware", "batch", "seq_len", "phases", "weights", "kv_cache", "flash_attention"):
            if not getattr(self, label):
                raise InputError(f"sweep: {label} needs at least one value")
        if self.size > MAX_CONFIGURATIONS:
            raise InputError(f"sweep: the grid has {self.size:,} configurations, at most {MAX_CONFIGURATIONS:,} "
                             f"(fewer values or coarser ranges, e.g. 1..4096:log)")
        if self.engine is not None:
            for device in self.hardware:
                check_engine_on(self.engine, device.kind, device.name)
        for label in ("batch", "seq_len"):
            values = getattr(self, label)
            if len(values) > MAX_AXIS_VALUES:
                raise InputError(f"sweep: {label} has {len(values):,} values, at most {MAX_AXIS_VALUES:,}")
            if any(not isinstance(v, int) or isinstance(v, bool) for v in values):
                raise InputError(f"sweep: every {label} must be {describe(WORKLOAD[label])}")
            for extreme in (min(values), max(values)):
                count(f"sweep: every {label}", extreme, WORKLOAD[label])
        for phase in self.phases:
            one_of("phase", phase, PHASES, "sweep: ")
        for name, value, choices in (("lm_head", self.lm_head, LM_HEAD_MODES), ("fuse", self.fuse, FUSE_MODES),
                                     ("sparsity", self.sparsity, SPARSITY_MODES)):
            one_of(name, value, choices, "sweep: ")

    @property
    def size(self) -> int:
        """Number of configurations in the grid."""
        return math.prod(len(v) for v in (self.models, self.hardware, self.batch, self.seq_len, self.phases,
                                          self.weights, self.activations, self.kv_cache, self.flash_attention))


@dataclass(frozen=True)
class GridResult:
    """Figures of a block of configurations: per-configuration totals, and per-operator figures on demand.

    Arrays over configurations have shape (devices, points) for times and (points,) for work.
    """

    plan: StepPlan
    flops: np.ndarray
    bytes: np.ndarray
    time_s: np.ndarray
    compute_bound_time_s: np.ndarray  # the part of time_s in compute-bound operators, (devices, points)
    compute_bound: np.ndarray  # the step's bound (roofline.step_compute_bound), (devices, points)
    expected_time_s: np.ndarray  # the efficiency model's forecast (efficiency.py), (devices, points)
    tokens: np.ndarray
    kv_cache_bytes: np.ndarray
    weight_storage_bytes: float
    activation_bytes: np.ndarray  # peak activations (core/memory.py), (points,)
    memory_bytes: np.ndarray  # the footprint: weights + KV cache + activations + runtime overhead, (points,)
    pricing: _Pricing
    points: _Points

    @functools.cached_property
    def counts(self) -> StepCounts[Array]:
        """The step counts of every point (computed on demand)."""
        batch, seq_len = self.points.pairs()
        q_len, past_len = phase_lengths(self.pricing.phase, seq_len)
        pricing = self.pricing
        return step_counts(pricing.model, batch, q_len, past_len, pricing.causal_skip, pricing.kv_padding)

    @property
    def ops(self) -> tuple[Op[Array], ...]:
        """Every operator with its cost arrays over the points (computed on demand)."""
        return tuple(self.plan.ops(self.counts))

    @functools.cached_property
    def op_time_s(self) -> tuple[np.ndarray, ...]:
        """Every operator's time per instance, (devices, points) each (computed on demand)."""
        costs = self.plan.costs(self.counts)
        line = roofline(costs[0][:, None], costs[COST_FIELDS.index("bytes")][:, None], self.pricing.op_peaks,
                        self.pricing.bandwidth)
        return tuple(line.time_s)


class _Pricing(NamedTuple):
    """What one structural choice (model, phase, formats, options) on one group of devices fixes for every
    chunk of its grid: the step plan, each operator's ceiling on each device, the efficiency parameters."""

    model: ModelSpec
    phase: str
    causal_skip: bool
    plan: StepPlan
    devices: tuple[HardwareSpec, ...]
    op_peaks: np.ndarray  # (operators, devices, 1): the ceiling of the precision each operator's math runs in
    bandwidth: np.ndarray  # (devices, 1)
    # The five efficiency parameters, (devices, 1) each: with the step's overhead, and with none (its other groups).
    efficiency: tuple[Sequence[np.ndarray], Sequence[np.ndarray]]
    ridge: np.ndarray  # (devices, 1): the ridge point of the step's matrix products
    footprint: Callable[[np.ndarray, np.ndarray], tuple[float, Array, Array, Array]]  # (batch, context) -> memory
    kernels: np.ndarray  # per operator: efficiency.plan_kernels under the engine's fusion
    groups: dict[tuple[tuple[bool, bool], ...], tuple[_Group, ...]]  # memo of ``_groups``
    # An engine that replays only steps of few positions as a captured graph (Engine.launches_ungraphed), and
    # what a larger step's launches add per device, (devices, 1) seconds (efficiency.launch_params); None: every
    # step alike.
    ungraphed: tuple[Engine, np.ndarray] | None = None
    kv_padding: int | None = None  # the engine's padding of the cache a step attends over (transformer.step_counts)


class _Group(NamedTuple):
    """Operators whose costs vary along the same axes of a rectangle of points (batch rows, length columns)."""

    rows: bool  # their costs vary with the batch
    columns: bool  # ... with the length
    counts: tuple[int, ...]  # the step counts their costs depend on (a nonzero coefficient)
    work: np.ndarray  # (2 x operators, 1 + counts): the plan's FLOPs then bytes coefficients over (1, *counts)
    op_peaks: np.ndarray  # (operators, devices, 1)
    instances: np.ndarray
    dequantizes: np.ndarray
    kernels: np.ndarray  # 1: a kernel launch of its own, 0: run inside a neighbour (the engine's fusion)


class _Points(NamedTuple):
    """The points of a block: ``batch[i], seq_len[i]`` in parallel (``start`` None), or the segment
    [start, stop) of the grid ``batch x seq_len`` in batch-major order (every length of a batch, then the next)."""

    batch: np.ndarray
    seq_len: np.ndarray
    start: int | None = None
    stop: int = 0

    @property
    def size(self) -> int:
        return len(self.batch) if self.start is None else self.stop - self.start

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(batch, length) of every point, as parallel arrays."""
        if self.start is None:
            return self.batch, self.seq_len
        row, column = np.divmod(np.arange(self.start, self.stop, dtype=np.int64), len(self.seq_len))
        return self.batch[row], self.seq_len[column]

    def rectangles(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """The points as rectangles (offset of the first point, batch rows (B, 1), length columns (1, L)), in
        order: parallel points as one (n, 1) column; a segment as a partial row, full rows, a partial row."""
        if self.start is None:
            yield 0, self.batch[:, None], self.seq_len[:, None]
            return
        width = len(self.seq_len)
        position = self.start
        while position < self.stop:
            row, column = divmod(position, width)
            if column or self.stop - position < width:  # a part of one row
                end = min(self.stop, position - column + width)
                yield position - self.start, self.batch[row:row + 1, None], self.seq_len[None, column:end - row * width]
            else:  # whole rows
                end = position + (self.stop - position) // width * width
                yield position - self.start, self.batch[row:end // width, None], self.seq_len[None, :]
            position = end


def _pricing(model: ModelSpec, devices: Sequence[HardwareSpec], phase: str, weights: NumberFormat | WeightScheme,
             activations: NumberFormat, kv_format: NumberFormat, flash_attention: bool, causal_skip: bool | None,
             lm_head: str, mla: str | None, fuse: str, engine: str | None = None) -> _Pricing:
    skip = flash_attention if causal_skip is None else causal_skip
    plan = step_plan(model, weights, activations, kv_format, flash_attention, lm_head == "all",
                     mla_absorbed(phase, mla), fuse == "elementwise")
    seen = [engine_device(d, engine) for d in devices]  # an engine accumulating in fp16: that rate (engines.toml)
    ceilings = np.array([[d.peak_for(precision)[1] for d in seen] for precision in plan.unique_maths])
    params = [params_for(d, engine) for d in devices]
    kernels = plan_kernels(plan, fusion_of(engine))
    spec = None if engine is None else get_engine(engine)
    ungraphed = None
    if spec is not None and spec.graph_max_tokens is not None:  # a larger step pays another cost per kernel
        launches = float(plan.instance_weights.dot(kernels))
        ungraphed = (spec, np.array([[(params_for(d, engine, spec.graph_max_tokens + 1).overhead_per_op_s
                                       - p.overhead_per_op_s) * launches]
                                     for d, p in zip(devices, params, strict=True)]))
    with_step, without_step = ([column[:, None] for column in np.array([p.values() for p in ps]).T]
                               for ps in (params, [replace(p, overhead_per_step_s=0.0) for p in params]))

    def footprint(batch: np.ndarray, context: np.ndarray) -> tuple[float, Array, Array, Array]:
        return grid_footprint_bytes(model, weights, activations, kv_format, flash_attention, skip, lm_head == "all",
                                    mla, batch, context, fuse_elementwise=fuse == "elementwise")

    return _Pricing(
        model=model, phase=phase, causal_skip=skip, plan=plan, devices=tuple(devices),
        op_peaks=ceilings[list(plan.math_index)][:, :, None],
        bandwidth=np.array([[d.memory_bytes_per_s] for d in devices], dtype=np.float64),
        efficiency=(with_step, without_step),
        ridge=np.array([[d.peak_for(step_math(activations, weights))[1] / d.memory_bytes_per_s] for d in seen]),
        footprint=footprint,
        kernels=kernels,
        groups={},
        ungraphed=ungraphed,
        kv_padding=kv_padding_of(engine),
    )


def _groups(pricing: _Pricing, axes: tuple[tuple[bool, bool], ...]) -> tuple[_Group, ...]:
    """The plan's operators grouped by the axes their FLOPs and bytes vary along, given the axes each step
    count varies along (``axes[j]``: (with the batch, with the length)); memoized in ``pricing``."""
    if axes in pricing.groups:
        return pricing.groups[axes]
    plan = pricing.plan
    work = plan.coefficients[[0, COST_FIELDS.index("bytes")]]  # (2, operators, 1 + counts)
    uses = (work[:, :, 1:] != 0).any(axis=0)  # (operators, counts)
    keys = [(any(axes[j][0] for j in np.flatnonzero(used)), any(axes[j][1] for j in np.flatnonzero(used)))
            for used in uses]
    dequantizes = plan_dequantizes(plan)
    kernels = pricing.kernels
    groups = []
    for key in sorted(set(keys), key=lambda k: (-sum(k), k)):  # the group that varies along most axes first
        members = [i for i, k in enumerate(keys) if k == key]
        counts = tuple(int(j) for j in np.flatnonzero(uses[members].any(axis=0)))
        groups.append(_Group(key[0], key[1], counts,
                             work[:, members][:, :, [0, *(1 + j for j in counts)]].reshape(2 * len(members), -1),
                             pricing.op_peaks[members], plan.instance_weights[members], dequantizes[members],
                             kernels[members]))
    pricing.groups[axes] = tuple(groups)
    return pricing.groups[axes]


def _narrowed(values: np.ndarray) -> np.ndarray:
    """A row or column of values as one element when they are all equal: what does not vary along an axis."""
    flat = values.reshape(-1)
    return values[:1, :1] if flat.size > 1 and (flat == flat[0]).all() else values


def _tiles(rows: int, columns: int, width: int) -> Iterator[tuple[int, int, int, int]]:
    """(r0, r1, c0, c1): a rows x columns rectangle in tiles of about ``width`` points, each contiguous in the
    batch-major order: blocks of whole rows, or pieces of one row when a row is longer than ``width``."""
    if columns <= width:
        step = max(1, width // columns)
        for r0 in range(0, rows, step):
            yield r0, min(rows, r0 + step), 0, columns
    else:  # each row in equal pieces (1,000 lengths in tiles of 910 would be 910 + 90)
        piece = -(-columns // -(-columns // width))
        for r0 in range(rows):
            for c0 in range(0, columns, piece):
                yield r0, r0 + 1, c0, min(columns, c0 + piece)


def _tile(values: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """The part of an array over the tile [r0:r1, c0:c1] of its last two axes (rows or 1, columns or 1: an axis
    of 1 broadcasts)."""
    rows, columns = values.shape[-2:]
    return values[..., slice(r0, r1) if rows > 1 else slice(None), slice(c0, c1) if columns > 1 else slice(None)]


def _price_group(pricing: _Pricing, group: _Group, counts: Sequence[np.ndarray], shape: tuple[int, int],
                 params: Sequence[np.ndarray], out: Sequence[np.ndarray], addends: Sequence[np.ndarray] = ()) -> None:
    """A group's share of the totals over its own rectangle of points (``shape``: batch rows x length columns,
    each 1 where the group does not vary), written into ``out``: time, compute-bound time and expected
    time, (devices, points); FLOPs and bytes, (points,). ``addends``: the other groups' shares, (devices, rows
    or 1, columns or 1) and (rows or 1, columns or 1), added tile by tile as the tile is written."""
    operators, devices = len(group.instances), len(pricing.devices)
    rows, columns = shape
    for r0, r1, c0, c1 in _tiles(rows, columns, max(_TILE_POINTS, _SLICE_ELEMENTS // (operators * devices))):
        size = (r1 - r0) * (c1 - c0)
        matrix = np.empty((1 + len(group.counts), size))
        matrix[0] = 1.0
        for row, j in zip(matrix[1:], group.counts, strict=True):
            np.copyto(row.reshape(r1 - r0, c1 - c0), _tile(counts[j], r0, r1, c0, c1))
        op_flops, op_bytes = group.work.dot(matrix).reshape(2, operators, 1, size)  # (operators, 1, points)
        line = roofline(op_flops, op_bytes, group.op_peaks, pricing.bandwidth)
        step = step_time(line, group.instances)
        shares = (step.time_s, step.compute_bound_time_s,
                  expected_step_time_s(line.compute_time_s, line.memory_time_s, group.dequantizes, group.instances,
                                       params, group.kernels),
                  over_operators(op_flops[:, 0], group.instances), over_operators(op_bytes[:, 0], group.instances))
        points = slice(r0 * columns + c0, (r1 - 1) * columns + c1)
        for target, share, addend in itertools.zip_longest(out, shares, addends):
            tile = target[..., points].reshape(*target.shape[:-1], r1 - r0, c1 - c0)
            if addend is None:
                np.copyto(tile, share.reshape(tile.shape))
            else:
                np.add(share.reshape(tile.shape), _tile(addend, r0, r1, c0, c1), out=tile)


def _price(pricing: _Pricing, points: _Points) -> GridResult:
    """The totals of every configuration of ``points`` on the pricing's devices.

    Each rectangle of points (batch rows x length columns) is priced a group of operators at a time: the
    operators whose costs vary with the batch only (most of a decode step) over its rows, those that vary
    with the length too over every point, and the groups' sums added with broadcasting. The roofline, the
    step time and the expected time are the core's functions, called on each group's operators."""
    n, n_dev = points.size, len(pricing.devices)
    # One allocation for the float results: the previous chunk's block, freed as a whole, is reused as a whole
    # (separate arrays left holes the allocator gave back to the system and faulted in again, 13,000 pages a run).
    block = np.empty((3 * n_dev + 5) * n)
    time_s, compute_time_s, expected_s = block[:3 * n_dev * n].reshape(3, n_dev, n)
    flops, moved, kv, act, total = block[3 * n_dev * n:].reshape(5, n)
    tokens = np.empty(n, dtype=np.int64)
    stored = 0.0
    for offset, batch, seq_len in points.rectangles():
        rows, columns = batch.shape[0], seq_len.shape[1]
        where = slice(offset, offset + rows * columns)
        q_len, past_len = phase_lengths(pricing.phase, seq_len)
        counts = step_counts(pricing.model, _narrowed(batch), _narrowed(q_len), _narrowed(past_len),
                             pricing.causal_skip, pricing.kv_padding)
        counts_2d = [np.asarray(c, dtype=np.float64) for c in counts]  # (rows or 1, columns or 1) each
        groups = _groups(pricing, tuple((c.shape[0] > 1, c.shape[1] > 1) for c in counts_2d))
        outputs = [time_s[:, where], compute_time_s[:, where], expected_s[:, where], flops[where], moved[where]]
        # The groups that vary along fewer axes first, summed over their own shapes; then the one that varies
        # along every axis of the rectangle (at most one), tile by tile with those sums added.
        shapes = [(rows if group.rows else 1, columns if group.columns else 1) for group in groups]
        addends: list[np.ndarray] = []
        for group, shape in zip(groups, shapes, strict=True):
            if shape == (rows, columns):
                continue
            size = shape[0] * shape[1]
            shares = [*np.empty((3, n_dev, size)), *np.empty((2, size))]
            _price_group(pricing, group, counts_2d, shape, pricing.efficiency[bool(addends)], shares)
            shares = [share.reshape(*share.shape[:-1], *shape) for share in shares]
            addends = shares if not addends else [a + share for a, share in zip(addends, shares, strict=True)]
        whole = [group for group, shape in zip(groups, shapes, strict=True) if shape == (rows, columns)]
        if whole:
            _price_group(pricing, whole[0], counts_2d, (rows, columns), pricing.efficiency[bool(addends)], outputs,
                         addends)
        else:
            for target, addend in zip(outputs, addends, strict=True):
                np.copyto(target.reshape(*target.shape[:-1], rows, columns), addend)
        np.multiply(batch, q_len, out=tokens[where].reshape(rows, columns))
        # The footprint of the whole rectangle at once: batches as a column, contexts as a row (core/memory.py
        # prices a peak linear in the batch over the contexts alone, and broadcasts).
        stored, *rectangle = pricing.footprint(batch, past_len + q_len)
        for target, value in zip((kv, act, total), rectangle, strict=True):
            np.copyto(target[where].reshape(rows, columns), value)
    if pricing.ungraphed is not None:
        graph_engine, launches_s = pricing.ungraphed
        expected_s += launches_s * graph_engine.launches_ungraphed(tokens)[None, :]
    return GridResult(
        plan=pricing.plan,
        flops=flops,
        bytes=moved,
        time_s=time_s,
        compute_bound_time_s=compute_time_s,
        compute_bound=step_compute_bound(flops[None, :], moved[None, :], pricing.ridge),
        expected_time_s=expected_s,
        tokens=tokens,
        kv_cache_bytes=kv,
        weight_storage_bytes=stored,
        activation_bytes=act,
        memory_bytes=total,
        pricing=pricing,
        points=points,
    )


def evaluate_grid(model: ModelSpec, devices: Sequence[HardwareSpec], phase: str, batch: np.ndarray,
                  seq_len: np.ndarray, weights: NumberFormat | WeightScheme, activations: NumberFormat,
                  kv_format: NumberFormat, flash_attention: bool, causal_skip: bool | None = None,
                  lm_head: str = "last", mla: str | None = None, fuse: str = "none",
                  engine: str | None = None) -> GridResult:
    """The roofline of every (device, point) pair, for points given as parallel batch/seq_len arrays.

    ``weights``: one format, or the model's ``WeightScheme`` (``quant.weight_scheme(model, weights)``).
    """
    pricing = _pricing(model, devices, phase, weights, activations, kv_format, flash_attention, causal_skip,
                       lm_head, mla, fuse, engine)
    return _price(pricing, _Points(np.asarray(batch, dtype=np.int64), np.asarray(seq_len, dtype=np.int64)))


class _Block(NamedTuple):
    """One evaluated chunk of the grid, with the structural choices it was evaluated under."""

    model: ModelSpec
    phase: str
    weights: WeightsSpec
    scheme: WeightScheme
    activations: NumberFormat
    kv_format: NumberFormat
    flash_attention: bool
    grid: GridResult
    devices: tuple[HardwareSpec, ...] = ()  # the grid's devices (its first axis)


def _blocks(spec: SweepSpec, chunk_size: int, part: tuple[int, int] = (0, 1)) -> Iterator[_Block]:
    """The grid, chunk by chunk: structural choices looped over, batch x length vectorized, at most
    ``chunk_size`` configurations (points x devices) at a time (one point on every device if fewer).

    ``part`` = (k, n): only chunks k, k + n, k + 2n, ... of that sequence, the others not evaluated (n
    processes that each take one part, merged round-robin, give the whole grid in order)."""
    first, parts = part
    if not 0 <= first < parts:
        raise ValueError(f"part {first} of {parts}")
    index = -1
    if chunk_size < 1:
        raise InputError(f"sweep: chunk size must be >= 1, got {chunk_size}")
    batch_values = np.array(spec.batch, dtype=np.int64)
    seq_values = np.array(spec.seq_len, dtype=np.int64)
    total = len(batch_values) * len(seq_values)
    structure = itertools.product(spec.models, spec.phases, spec.weights, spec.activations, spec.kv_cache,
                                  spec.flash_attention)
    for model, phase, weights, activations, kv_cache, flash in structure:
        kv_format = activations if kv_cache is None else kv_cache
        scheme = weight_scheme(model, weights)
        for devices, device_scheme in _device_groups(spec, scheme):
            pricing = _pricing(model, devices, phase, device_scheme, activations, kv_format, flash, spec.causal_skip,
                               spec.lm_head, None, spec.fuse, spec.engine)
            size = max(1, chunk_size // len(devices))
            for start in range(0, total, size):
                index += 1
                if index % parts != first:
                    continue
                grid = _price(pricing, _Points(batch_values, seq_values, start, min(start + size, total)))
                yield _Block(model, phase, weights, device_scheme, activations, kv_format, flash, grid, devices)


def grid_points(batch: np.ndarray, seq_len: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every (batch, length) pair, ``size`` at a time, batch-major (every length of the first batch, then
    the next: ``np.meshgrid(batch, seq_len, indexing="ij")`` raveled). Point i is found from its index
    (batch ``i // len(seq_len)``, length ``i % len(seq_len)``), so only one chunk is ever allocated."""
    total = len(batch) * len(seq_len)
    for start in range(0, total, size):
        yield _Points(batch, seq_len, start, min(start + size, total)).pairs()


def _device_groups(spec: SweepSpec, scheme: WeightScheme) -> list[tuple[tuple[HardwareSpec, ...], WeightScheme]]:
    """The devices and the weights they run: with 2:4 sparsity, those with sparse tensor cores run the pruned
    scheme and the others the dense one (``transformer.on_device``'s rule); else all devices, one scheme."""
    if spec.sparsity == "none":
        return [(spec.hardware, scheme)]
    sparse = tuple(d for d in spec.hardware if d.sparse_2_4)
    dense = tuple(d for d in spec.hardware if not d.sparse_2_4)
    return [(group, pruned) for group, pruned in ((sparse, sparse_scheme(scheme)), (dense, scheme)) if group]


def sweep_totals(spec: SweepSpec, chunk_size: int = DEFAULT_CHUNK) -> Iterator[GridResult]:
    """The grid as raw ``GridResult`` blocks (no per-row labels): the fastest path, for queries."""
    for block in _blocks(spec, chunk_size):
        yield block.grid


def iter_sweep(spec: SweepSpec, chunk_size: int = DEFAULT_CHUNK,
               part: tuple[int, int] = (0, 1)) -> Iterator[dict[str, np.ndarray]]:
    """The grid's totals, as column chunks of at most ``chunk_size`` rows (one point on every device when
    there are more devices than that); ``part``: every n-th chunk from the k-th (``_blocks``)."""
    words = bound_labels(np.array([False, True]))  # the bound's two labels, indexed by the flag
    for block in _blocks(spec, chunk_size, part):
        capacity = np.array([[d.available_memory_bytes or np.nan] for d in block.devices])
        device_names = np.array([d.name for d in block.devices], dtype=object)
        grid = block.grid
        batch, seq = grid.points.pairs()
        n_dev, n = grid.time_s.shape
        memory = grid.memory_bytes  # (points,), core/memory.py's footprint
        time_s = grid.time_s.ravel()
        compute_time = grid.compute_bound_time_s.ravel()
        tokens = _every_device(grid.tokens, n_dev)
        label = (block.scheme.name if block.weights is None or is_sparse(block.scheme)
                 else weights_label(block.weights))
        yield {
            "model": _labels(block.model.name, n_dev * n),
            "hardware": np.repeat(device_names, n),
            "phase": _labels(block.phase, n_dev * n),
            "weights": _labels(label, n_dev * n),
            "activations": _labels(block.activations.name, n_dev * n),
            "kv_cache": _labels(block.kv_format.name, n_dev * n),
            "flash_attention": np.full(n_dev * n, block.flash_attention),
            "batch": _every_device(batch, n_dev),
            "seq_len": _every_device(seq, n_dev),
            "flops": _every_device(grid.flops, n_dev),
            "bytes": _every_device(grid.bytes, n_dev),
            "arithmetic_intensity": _every_device(grid.flops / grid.bytes, n_dev),
            "time_s": time_s,
            "tokens_per_s": tokens / time_s,
            "bound": words.take(grid.compute_bound.ravel().view(np.uint8)),
            "compute_bound_time_s": compute_time,
            "weight_bytes": np.full(n_dev * n, grid.weight_storage_bytes),
            "kv_cache_bytes": _every_device(grid.kv_cache_bytes, n_dev),
            "memory_bytes": _every_device(memory, n_dev),
            "fits": (memory[None, :] <= capacity).ravel(),
            "expected_time_s": grid.expected_time_s.ravel(),
            "expected_tokens_per_s": tokens / grid.expected_time_s.ravel(),
            "compute_time_share": compute_time / time_s,
            "activation_bytes": _every_device(grid.activation_bytes, n_dev),
        }


def _every_device(values: np.ndarray, devices: int) -> np.ndarray:
    """A per-point column for the rows of every device (device-major): the column itself for one device."""
    return values if devices == 1 else np.tile(values, devices)


def _labels(label: str, n: int) -> np.ndarray:
    """A column of ``n`` copies of one label (``fill``: ``np.full`` is some 40x slower on object arrays)."""
    column = np.empty(n, dtype=object)
    column.fill(label)
    return column


PANEL_KEY = ("model", "hardware", "phase", "weights", "activations", "kv_cache", "flash_attention")


class HeatmapPanel(NamedTuple):
    """One structural choice of a sweep over its batch x length grid (rows: batch, columns: seq_len)."""

    key: tuple[object, ...]  # the PANEL_KEY values
    batch: np.ndarray  # sorted, (rows,)
    seq_len: np.ndarray  # sorted, (columns,)
    tokens_per_s: np.ndarray  # (rows, columns)
    compute_bound: np.ndarray  # (rows, columns), the step's bound
    fits: np.ndarray  # (rows, columns), weights + KV cache within the device's memory

    @property
    def label(self) -> str:
        """The key's values that say which panel this is (model, device, phase, formats)."""
        model, hardware, phase, weights, activations, kv, flash = self.key
        label = f"{model} on {hardware}, {phase}, weights {weights}, act {activations}"
        return label + (f", KV {kv}" if kv != activations else "") + (", FlashAttention" if flash else "")

    def boundary(self) -> np.ndarray:
        """Per length, the smallest batch whose step is compute-bound (NaN where none is)."""
        first = np.where(self.compute_bound.any(axis=0), self.compute_bound.argmax(axis=0), -1)
        return np.where(first >= 0, self.batch[first].astype(float), np.nan)


def heatmap_panels(chunks: Iterable[dict[str, np.ndarray]], value: str = "tokens_per_s") -> list[HeatmapPanel]:
    """``iter_sweep``'s chunks as one batch x length grid per structural choice (``value`` is the
    tokens/s column to show: ``tokens_per_s``, the roofline's, or ``expected_tokens_per_s``)."""
    columns: dict[tuple[Any, ...], list[dict[str, np.ndarray]]] = {}
    for chunk in chunks:
        # Label every row with its panel: a code from the key columns that vary in this chunk (usually
        # only the device: a chunk is one structural choice on every device).
        code = np.zeros(len(chunk["batch"]), dtype=np.int64)
        for name in PANEL_KEY:
            column = chunk[name]
            if (column == column[0]).all():
                continue
            values, inverse = np.unique(column.astype(str), return_inverse=True)
            code = code * len(values) + inverse
        for panel in np.unique(code):
            rows = code == panel
            first = int(np.argmax(rows))
            key = tuple(chunk[name][first] for name in PANEL_KEY)
            columns.setdefault(key, []).append({name: chunk[name][rows] for name in
                                                ("batch", "seq_len", value, "bound", "fits")})
    panels = []
    for key, parts in columns.items():
        data = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        batch, row = np.unique(data["batch"], return_inverse=True)
        seq_len, column = np.unique(data["seq_len"], return_inverse=True)
        grids = {name: np.full((len(batch), len(seq_len)), fill) for name, fill in
                 ((value, np.nan), ("bound", False), ("fits", False))}
        grids[value][row, column] = data[value]
        grids["bound"][row, column] = data["bound"] == "compute"
        grids["fits"][row, column] = data["fits"]
        panels.append(HeatmapPanel(tuple(plain_value(k) for k in key), batch, seq_len, grids[value], grids["bound"],
                                   grids["fits"]))
    return panels


def plain_value(value: object) -> object:
    """A numpy scalar as the Python number or bool it holds (JSON-ready); anything else as it is."""
    return value.item() if hasattr(value, "item") else value


_LIST_SYNTAX = "a list (1,2,8) or a range (1..256, 1..256:8, 128..32768:log, 1..1000:x10)"


class _Piece(NamedTuple):
    """One comma-separated piece of a list: ``low..high`` by an integer ``step``, or geometric (``factor`` > 1:
    each value the previous times the factor, rounded). Its size is arithmetic, known before any value is made."""

    low: int
    high: int
    step: int = 1
    factor: float = 0.0

    @property
    def size(self) -> int:
        """How many values the piece makes (before duplicates are removed)."""
        if not self.factor:
            return (self.high - self.low) // self.step + 1
        return math.floor(math.log(self._top() / self.low) / math.log(self.factor)) + 1

    def _top(self) -> float:
        return self.high * (1 + 1e-12)  # a value that lands on ``high`` up to rounding is kept

    def values(self) -> np.ndarray:
        if not self.factor:
            return np.arange(self.low, self.high + 1, self.step, dtype=np.int64)
        # low, low x f, (low x f) x f, ...: the products in the order a loop would take them (accumulate is
        # sequential), two more than the logarithm's count in case it rounded down.
        with np.errstate(over="ignore"):  # a huge factor overflows to inf, which is past ``high``
            walk = np.multiply.accumulate(np.r_[float(self.low), np.full(self.size + 1, self.factor)])
        return np.round(walk[walk <= self._top()]).astype(np.int64)


def _piece(text: str, label: str, limit: Limit) -> _Piece:
    """A piece of ``parse_values``' text, its numbers checked; refused in one line."""
    step = ""
    try:
        if ".." not in text:
            low = high = int(text)
        else:
            bounds, _, step = text.partition(":")
            low_text, high_text = bounds.split("..")
            low, high = int(low_text), int(high_text)
        geometric = step == "log" or step.startswith("x")
        factor = 2.0 if step == "log" else float(step[1:]) if geometric else 0.0
        stride = int(step) if step and not geometric else 1
    except ValueError:
        raise InputError(f"--{label}: cannot read {shown(text)}; use {_LIST_SYNTAX}") from None
    for value in (low, high):
        if not limit.low <= value <= limit.high:
            raise InputError(f"--{label}: {shown(value)} is out of range; each value must be {describe(limit)}")
    if high < low:
        raise InputError(f"--{label}: range {shown(text)} ends below its start")
    if stride < 1:
        raise InputError(f"--{label}: step must be >= 1, got {shown(stride)} in {shown(text)}")
    if geometric and not (math.isfinite(factor) and factor > 1):
        raise InputError(f"--{label}: a geometric range needs a finite factor > 1, got {shown(step)} in {shown(text)}")
    return _Piece(low, high, stride, factor)


def parse_values(text: str, label: str, limit: Limit) -> tuple[int, ...]:
    """Integers from a list or a range: ``1,2,8``, ``1..256`` (every integer), ``1..256:8`` (step 8),
    ``128..32768:log`` (doubling), ``1..1000:x10`` (factor 10); pieces can be mixed with commas. Each value
    within ``limit`` (``limits.WORKLOAD["batch"]`` or ``["seq_len"]``), duplicates dropped (the first kept),
    at most ``MAX_AXIS_VALUES`` made in all: that count is arithmetic and checked before any value is made,
    so a factor too close to 1 to progress (``x1.0000000001``) is refused, not looped over."""
    pieces = [_piece(piece.strip(), label, limit) for piece in text.split(",")]
    made = sum(piece.size for piece in pieces)
    if made > MAX_AXIS_VALUES:
        raise InputError(f"--{label}: {shown(text)} makes {made:,} values, at most {MAX_AXIS_VALUES:,} "
                         f"(use a step or a factor: 1..1000000:1000, 1..1000000:x2)")
    if len(pieces) == 1 and not pieces[0].factor:  # one arithmetic range: made without an intermediate array
        return tuple(range(pieces[0].low, pieces[0].high + 1, pieces[0].step))
    values = np.concatenate([piece.values() for piece in pieces])
    first = np.sort(np.unique(values, return_index=True)[1])
    return tuple(values[first].tolist())


def make_spec(models: Sequence[str | ModelSpec], hardware: Sequence[str | HardwareSpec], batch: Sequence[int],
              seq_len: Sequence[int], phases: Sequence[str] = ("decode",),
              weights: Sequence[WeightsSpec] = (None,),
              activations: Sequence[str | float | NumberFormat] = ("fp16",),
              kv_cache: Sequence[str | float | NumberFormat | None] = (None,),
              flash_attention: Sequence[bool] = (False,), causal_skip: bool | None = None,
              lm_head: str = "last", fuse: str = "none", sparsity: str = "none",
              engine: str | None = None) -> SweepSpec:
    """A ``SweepSpec`` from names (models, devices, formats) as the CLI and users give them."""
    return SweepSpec(
        models=tuple(load_model(m) for m in models),
        hardware=tuple(load_hardware(h) for h in hardware),
        batch=_axis(batch, "batch"),
        seq_len=_axis(seq_len, "seq_len"),
        phases=tuple(phases),
        weights=tuple(_checked_weights(w) for w in weights),
        activations=tuple(get_format(a) for a in activations),
        kv_cache=tuple(None if k is None else get_format(k) for k in kv_cache),
        flash_attention=tuple(flash_attention),
        causal_skip=causal_skip,
        lm_head=lm_head,
        fuse=fuse,
        sparsity=sparsity,
        engine=engine,
    )


def _axis(values: Sequence[int], label: str) -> tuple[int, ...]:
    """The batch or length list as a tuple of ints, its length checked before it is copied (``SweepSpec``
    checks the values); numpy integers are accepted, floats are not (2.5 sequences is not a batch)."""
    if len(values) > MAX_AXIS_VALUES:
        raise InputError(f"sweep: {label} has {len(values):,} values, at most {MAX_AXIS_VALUES:,}")
    if isinstance(values, tuple) and all(type(v) is int for v in values):
        return values  # parse_values' tuples, kept rather than copied (10 M values take 360 MB)
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError:
        raise InputError(f"sweep: every {label} must be {describe(WORKLOAD[label])}") from None


def _checked_weights(weights: WeightsSpec) -> WeightsSpec:
    """A format or mix name, validated now (an unknown name fails before the sweep starts)."""
    if weights is not None and not isinstance(weights, WeightScheme):
        default_weight_format(weights)
    return weights
