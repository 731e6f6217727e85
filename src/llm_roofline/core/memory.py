"""What a deployment keeps in memory: the one footprint every command checks against a device.

    total = weights + KV cache + recurrent state + peak activations + runtime overhead

- **weights**: every tensor in its stored format (``transformer.weight_storage_bytes``);
- **KV cache**: batch x the context after the step, capped at a sliding window where a layer has one
  (``transformer.kv_cache_bytes``);
- **recurrent state**: what the layers that do not attend keep per sequence whatever the context (a
  short convolution's last inputs, linear attention's and state spaces' states: ``transformer.state_bytes``);
- **peak activations**: the largest live set of one operator's inputs and outputs plus the residual
  stream, over a decode step at that context and over the last chunk of a prompt processed
  ``prefill_chunk_tokens`` at a time (llama.cpp's n_ubatch, 512: ``common/common.h``) — the chunk with the
  most keys to attend to. It comes from the same operator costs as the roofline (the activation reads
  and writes of the step plan);
- **runtime overhead**: a fixed 0.5 GB by default (a CUDA context with cuBLAS workspaces takes
  300–500 MB; allocator slack), a parameter everywhere.

It is checked against ``HardwareSpec.available_memory_bytes``: what the device lets a model use (a
phone's OS keeps part of its RAM, macOS lets the GPU wire 2/3 to 3/4 of it). A footprint beyond that but
within the device's memory is under *memory pressure*: it does not run at the roofline (the OS swaps, or an
engine leaves layers to the CPU: ``deploy.fit`` prices that fallback). ``analyze`` (its ``memory``), the
sweep's ``memory_bytes`` and ``fits``, ``fit``, ``transition``, the studies and the web page all use this
module, for numbers or numpy arrays of batch and context.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

from llm_roofline.core import compiled, limits
from llm_roofline.core.formats import NumberFormat, WeightScheme
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.transformer import (
    COST_FIELDS,
    StepCounts,
    StepPlan,
    Workload,
    count_layout,
    count_matrix,
    kv_cache_bytes,
    mla_absorbed,
    on_device,
    state_bytes,
    step_counts,
    step_plan,
    weight_storage_bytes,
)
from llm_roofline.core.units import Array, Quantity, is_array

if TYPE_CHECKING:
    import numpy as np

DEFAULT_OVERHEAD_BYTES = 0.5e9  # runtime (CUDA context, allocator slack); a CPU runtime needs less
DEFAULT_PREFILL_CHUNK_TOKENS = 512  # llama.cpp's default n_ubatch (common/common.h)
MAX_BATCH_SEARCHED = int(limits.WORKLOAD["batch"].high)
MAX_CONTEXT_SEARCHED = int(limits.WORKLOAD["seq_len"].high)
_ACT_READ, _ACT_WRITE = COST_FIELDS.index("act_read_bytes"), COST_FIELDS.index("act_write_bytes")


class MemoryFootprint(NamedTuple):
    """What one deployment keeps in memory, against what the device lets it use."""

    weight_bytes: float
    kv_cache_bytes: float
    total_bytes: float  # weights + KV cache + recurrent state + activations + overhead
    capacity_bytes: float | None  # the usable memory (None: unknown)
    fits: bool | None
    activation_bytes: float = 0.0
    overhead_bytes: float = 0.0
    headroom_bytes: float | None = None  # capacity - total
    state_bytes: float = 0.0  # the recurrent mixers' state per sequence x batch (0 for a transformer)
    physical_memory_bytes: float | None = None  # the device's memory, of which capacity_bytes is usable
    memory_pressure: bool | None = None  # beyond the usable memory, within the physical one (None: unknown)

    def to_dict(self) -> dict[str, object]:
        return self._asdict()


def activation_peak(model: ModelSpec, weights: WeightScheme | NumberFormat, activations: NumberFormat,
                    kv_format: NumberFormat, flash_attention: bool, causal_skip: bool, lm_head_all: bool,
                    mla: str | None, batch: Quantity, context: Quantity,
                    prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS, fuse_elementwise: bool = False
                    ) -> Quantity:
    """The largest live activation set (bytes) of serving ``batch`` sequences up to ``context`` tokens.

    Over two steps: a decode step of one token at that context, and the last prompt chunk of
    ``min(prefill_chunk_tokens, context)`` tokens. Numbers, or numpy arrays of batch and context.
    """
    residual_bytes_per_token = model.hidden_size * activations.bytes_per_element  # the residual stream
    if not is_array(context) and not is_array(batch):  # one deployment: plain numbers
        largest = _largest_functions(model, weights, activations, kv_format, flash_attention, lm_head_all, mla,
                                     fuse_elementwise)
        chunk = min(prefill_chunk_tokens, context)
        peak = 0.0
        for past, q_len in ((context - 1, 1), (context - chunk, chunk)):
            # A step with nothing cached is a prefill (latent attention naive by default), else a decode step.
            operator = largest[past == 0](*step_counts(model, batch, q_len, past, causal_skip))
            peak = max(peak, batch * q_len * residual_bytes_per_token + operator)
        return peak
    plans = _plans(model, weights, activations, kv_format, flash_attention, lm_head_all, mla, fuse_elementwise)
    import numpy as np

    if all(_linear_in_batch(model, plan) for plan in plans.values()):
        # Every term is batch x a per-sequence figure (no MoE expert count, no constant): the peak of b
        # sequences is b x the peak of one, computed over the contexts alone (a grid's rectangle of
        # batches x lengths then costs one row of lengths, not every point).
        per_sequence = _grid_peak(model, plans, causal_skip, mla, np.ones(1), np.asarray(context),
                                  residual_bytes_per_token, prefill_chunk_tokens)
        scaled: Array = batch * per_sequence
        return scaled
    return _grid_peak(model, plans, causal_skip, mla, np.asarray(batch), np.asarray(context), residual_bytes_per_token,
                      prefill_chunk_tokens)


def _grid_peak(model: ModelSpec, plans: dict[bool, StepPlan], causal_skip: bool, mla: str | None, batch: Array,
               context: Array, residual_bytes_per_token: float, prefill_chunk_tokens: int) -> Array:
    """``activation_peak`` over arrays of batch and context that broadcast, point by point."""
    import numpy as np

    chunks = np.minimum(prefill_chunk_tokens, context)
    peaks = np.zeros(np.broadcast(batch, context).shape)
    for past, q_len in ((context - 1, context * 0 + 1), (context - chunks, chunks)):
        counts = step_counts(model, batch, q_len, past, causal_skip)
        largest_of = {absorbed: _largest_operator(plan, counts) for absorbed, plan in plans.items()}
        if len(largest_of) == 1:
            operator = next(iter(largest_of.values()))
        else:
            operator = np.where(past == 0, largest_of[mla_absorbed("prefill", mla)],
                                largest_of[mla_absorbed("decode", mla)])
        peaks = np.maximum(peaks, batch * q_len * residual_bytes_per_token + operator)
    return peaks


def _plans(model: ModelSpec, weights: WeightScheme | NumberFormat, activations: NumberFormat,
           kv_format: NumberFormat, flash_attention: bool, lm_head_all: bool, mla: str | None,
           fuse_elementwise: bool) -> dict[bool, StepPlan]:
    """The plans of the footprint's steps, by whether latent attention runs absorbed (one plan unless the
    model has latent attention, whose prefill and decode forms differ)."""
    latent = model.is_mla
    forms = {mla_absorbed("prefill", mla), mla_absorbed("decode", mla)} if latent else {False}
    return {absorbed: step_plan(model, weights, activations, kv_format, flash_attention, lm_head_all, absorbed,
                                fuse_elementwise) for absorbed in forms}


@functools.lru_cache(maxsize=256)
def _largest_functions(model: ModelSpec, weights: WeightScheme | NumberFormat, activations: NumberFormat,
                       kv_format: NumberFormat, flash_attention: bool, lm_head_all: bool, mla: str | None,
                       fuse_elementwise: bool) -> tuple[Callable[..., float], Callable[..., float]]:
    """The compiled largest-operator functions of a step with cached tokens and of one without (a prefill),
    memoized per deployment's formats and options: one lookup per footprint."""
    plans = _plans(model, weights, activations, kv_format, flash_attention, lm_head_all, mla, fuse_elementwise)
    if len(plans) == 1:
        only = _largest_activation(next(iter(plans.values())))
        return only, only
    return (_largest_activation(plans[mla_absorbed("decode", mla)]),
            _largest_activation(plans[mla_absorbed("prefill", mla)]))


@functools.lru_cache(maxsize=256)
def _activation_rows(plan: StepPlan) -> tuple[tuple[float, ...], ...]:
    """Per operator, the coefficients of its activation reads + writes over (1, *counts), without the
    operators another one dominates (memoized per plan). Counts are never negative, so a row no larger
    than another in every coefficient is never the largest: dropping it changes no maximum."""
    unique = sorted({tuple(r + w for r, w in zip(read, write, strict=True))
                     for read, write in zip(plan.rows[_ACT_READ], plan.rows[_ACT_WRITE], strict=True)})
    return tuple(row for i, row in enumerate(unique)
                 if not any(all(o >= x for o, x in zip(other, row, strict=True))
                            for j, other in enumerate(unique) if j != i))


@functools.lru_cache(maxsize=256)
def _linear_in_batch(model: ModelSpec, plan: StepPlan) -> bool:
    """Whether the plan's activation rows are linear in the batch: no constant term and no weight on the
    experts a mixture touches (``E (1 - (1 - k/E)^T)``, the one count that is not batch x a per-sequence
    figure)."""
    layout = count_layout(model)
    first = 1 + 2 + 2 * len(layout.spans)  # a row's column of the first mixture's count (the constant is column 0)
    experts = range(first, first + len(layout.mixtures))
    return all(row[0] == 0 and not any(row[j] for j in experts) for row in _activation_rows(plan))


@functools.lru_cache(maxsize=256)
def _largest_activation(plan: StepPlan) -> Callable[..., float]:
    """``(counts...) -> the largest activation reads + writes of one operator instance``, compiled."""
    names = [f"c{j}" for j in range(1, len(plan.rows[0][0]))]
    rows = [compiled.affine_source(row, names) for row in _activation_rows(plan)]
    largest = rows[0] if len(rows) == 1 else f"max({', '.join(rows)})"
    function: Callable[..., Any] = compiled.compile_function(
        "largest", [f"def largest({', '.join(names)}):", f"    return {largest}"], {})
    return function


def _largest_operator(plan: StepPlan, counts: StepCounts[Quantity]) -> np.ndarray:
    """The largest activation reads + writes of one operator instance of the step (per step for arrays)."""
    import numpy as np

    shape = np.broadcast(*counts).shape  # points of any shape (a grid's rectangle: batches x lengths)
    flat = [np.broadcast_to(count, shape).ravel() for count in counts]
    moved: np.ndarray = np.array(_activation_rows(plan)).dot(count_matrix(flat, math.prod(shape))).max(axis=0)
    return moved.reshape(shape)


def grid_footprint_bytes(model: ModelSpec, weights: WeightScheme | NumberFormat, activations: NumberFormat,
                    kv_format: NumberFormat, flash_attention: bool, causal_skip: bool, lm_head_all: bool,
                    mla: str | None, batch: Quantity, context: Quantity,
                    overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
                    prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS, fuse_elementwise: bool = False
                    ) -> tuple[float, Quantity, Quantity, Quantity]:
    """(weights, KV cache, peak activations, total) in bytes, for numbers or arrays of batch and context; the
    total holds the recurrent state too (``transformer.state_bytes``, 0 for a transformer)."""
    weight_bytes = weight_storage_bytes(model, weights, activations)
    kv: Quantity = kv_cache_bytes(model, batch, context, kv_format)
    act = activation_peak(model, weights, activations, kv_format, flash_attention, causal_skip, lm_head_all, mla,
                          batch, context, prefill_chunk_tokens, fuse_elementwise)
    return weight_bytes, kv, act, weight_bytes + kv + state_bytes(model, batch, kv_format) + act + overhead_bytes


def context_tokens(workload: Workload) -> int:
    """Tokens per sequence held in the KV cache after the workload's step."""
    return workload.past_len + workload.q_len


def workload_footprint_bytes(model: ModelSpec, workload: Workload, overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
                             prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS
                             ) -> tuple[float, float, float, float]:
    """``grid_footprint_bytes`` of ``workload``'s formats, kernel options, batch and context (no device:
    ``memory_footprint`` applies the device's 2:4 sparsity first)."""
    weights, kv, act, total = grid_footprint_bytes(
        model, workload.weight_scheme(model), workload.activation_format, workload.kv_format,
        workload.flash_attention, workload.skips_masked_scores, workload.lm_head == "all", workload.mla,
        workload.batch, context_tokens(workload), overhead_bytes, prefill_chunk_tokens, workload.fuse == "elementwise")
    return weights, float(kv), float(act), float(total)


def peak_activation_bytes(model: ModelSpec, workload: Workload,
                          prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> float:
    """The peak activations of ``workload`` (``activation_peak``)."""
    return workload_footprint_bytes(model, workload, 0.0, prefill_chunk_tokens)[2]


def memory_footprint(model: ModelSpec, hardware: HardwareSpec, workload: Workload,
                     overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
                     prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> MemoryFootprint:
    """Weights + KV cache + peak activations + overhead of serving ``workload`` on ``hardware``."""
    workload = on_device(model, workload, hardware)[0]  # 2:4 sparsity stores half the pruned matrices
    weights, kv, act, total = workload_footprint_bytes(model, workload, overhead_bytes, prefill_chunk_tokens)
    capacity, physical = hardware.available_memory_bytes, hardware.memory_bytes
    state = float(state_bytes(model, workload.batch, workload.kv_format))
    if capacity is None:
        return MemoryFootprint(weights, kv, total, None, None, act, overhead_bytes, None, state, physical, None)
    fits = total <= capacity
    return MemoryFootprint(weights, kv, total, capacity, fits, act, overhead_bytes, capacity - total, state,
                           physical, not fits and physical is not None and total <= physical)


def _largest(fits: Callable[[int], bool], upper: int) -> int:
    """The largest n in [1, upper] with fits(n), for fits monotone (True then False); 0 if none."""
    if not fits(1):
        return 0
    low, high = 1, upper
    if fits(high):
        return high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def step_workload(workload: Workload, past_len: int, q_len: int, batch: int | None = None) -> Workload:
    """``workload`` changed to a step of ``q_len`` new tokens on ``past_len`` cached ones (a prefill when
    nothing is cached)."""
    batch = workload.batch if batch is None else batch
    if past_len == 0:
        return replace(workload, phase="prefill", batch=batch, seq_len=q_len, new_tokens=1, graph_tokens=1,
                       graph_context=None)
    return replace(workload, phase="decode", batch=batch, seq_len=past_len, new_tokens=q_len, graph_tokens=1,
                   graph_context=None)


def max_batch(model: ModelSpec, hardware: HardwareSpec, workload: Workload,
              overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
              prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> int | None:
    """The most sequences whose footprint at ``workload``'s context fits (0: not one; None: capacity unknown)."""
    if hardware.available_memory_bytes is None:
        return None
    context = context_tokens(workload)
    return _largest(lambda n: bool(memory_footprint(model, hardware, step_workload(workload, context - 1, 1, n),
                                                    overhead_bytes, prefill_chunk_tokens).fits), MAX_BATCH_SEARCHED)


def max_context(model: ModelSpec, hardware: HardwareSpec, workload: Workload,
                overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
                prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> int | None:
    """The longest context (up to the model's window) whose footprint at ``workload``'s batch fits (0: not
    one token; None: capacity unknown)."""
    if hardware.available_memory_bytes is None:
        return None
    return _largest(lambda n: bool(memory_footprint(model, hardware, step_workload(workload, n - 1, 1),
                                                    overhead_bytes, prefill_chunk_tokens).fits),
                    min(model.max_position_embeddings, MAX_CONTEXT_SEARCHED))
