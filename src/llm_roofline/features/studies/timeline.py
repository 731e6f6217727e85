"""A whole generation: prefill of P tokens, then T decode steps with a growing KV cache (chapter 2.3.4).

    FLOPs_total(t) = FLOPs_prefill + sum_{i=1..t} FLOPs_decode(past = P + i - 1)

Decode step i (1-based) feeds the token produced by the step before it: P + i - 1 tokens are cached
and it attends to P + i (the chapter's L_context + i). The prefill emits the first new token, so T
steps give T + 1 new tokens per sequence. The steps are a few calls into the operator model, each with
``past_len`` a numpy array of ``CHUNK_STEPS`` steps (``sweep.evaluate_grid``, the vectorized roofline
that is tested against ``analyze`` operator by operator): 100 000 steps take a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from llm_roofline.core import limits
from llm_roofline.core.engines import engine_device
from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.memory import memory_footprint
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import analyze, bound_label, roofline
from llm_roofline.core.transformer import Workload, on_device
from llm_roofline.features.sweep import evaluate_grid

CHUNK_STEPS = 1 << 14  # decode steps evaluated at once: ~10 MB of operator arrays


class BoundChange(NamedTuple):
    """An operator (or the whole step) whose bound differs from the previous decode step's."""

    name: str  # operator name, or "step" for the step as a whole
    step: int  # 1-based decode step at which the new bound starts
    past_len: int  # tokens cached at that step
    from_bound: str
    to_bound: str


class TimelineTotals(NamedTuple):
    """The generation's headline figures, in SI units."""

    ttft_s: float  # time to first token: the prefill
    decode_time_s: float
    total_time_s: float
    first_step_time_s: float
    last_step_time_s: float
    mean_step_time_s: float
    new_tokens: int  # per sequence: T + 1
    tokens_per_s: float  # batch x new tokens / total time (end to end, over the whole batch)
    decode_tokens_per_s: float  # batch x T / decode time
    prefill_flops: float
    prefill_bytes: float
    flops: float  # prefill + every decode step
    bytes: float
    prefill_bound: str
    final_kv_cache_bytes: float
    memory_bytes: float  # the footprint at the final context: weights + KV cache + activations + overhead
    fits: bool | None  # against what the device lets a model use (None: unknown)
    exceeds_context: bool  # P + T beyond the model's max_position_embeddings
    state_bytes: float = 0.0  # the recurrent mixers' state (a hybrid's): the same at every step


@dataclass(frozen=True)
class Timeline:
    """Per-step arrays (index i = decode step i + 1) and the totals; arrays are read-only."""

    model: str
    hardware: str
    workload: Workload  # batch, formats, kernels; its phase and seq_len are not used
    prompt_len: int
    steps: int
    totals: TimelineTotals
    changes: tuple[BoundChange, ...]
    past_len: np.ndarray  # tokens cached at each step
    step_time_s: np.ndarray
    step_flops: np.ndarray
    step_bytes: np.ndarray
    step_compute_bound: np.ndarray  # bool: the step's intensity is at or above the ridge (step_compute_bound)

    @property
    def cumulative_flops(self) -> np.ndarray:
        """FLOPs_total(t) for t = 1..T: prefill plus the first t decode steps."""
        return self.totals.prefill_flops + np.cumsum(self.step_flops)

    @property
    def cumulative_bytes(self) -> np.ndarray:
        return self.totals.prefill_bytes + np.cumsum(self.step_bytes)

    @property
    def cumulative_time_s(self) -> np.ndarray:
        return self.totals.ttft_s + np.cumsum(self.step_time_s)

    def sample_steps(self, count: int) -> list[int]:
        """``count`` 1-based steps spread evenly from the first to the last, plus every bound change."""
        if count < 1:
            return sorted({c.step for c in self.changes})
        spread = np.unique(np.linspace(1, self.steps, min(count, self.steps)).round().astype(int))
        return sorted({int(s) for s in spread} | {c.step for c in self.changes})


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _changes(name: str, compute_bound: np.ndarray, first: int, before: bool | None,
             prompt_len: int) -> list[BoundChange]:
    """The steps where ``compute_bound`` (decode steps ``first + 1``.., 1-based) differs from the step before;
    ``before``: the bound of step ``first`` (None when the array starts at step 1)."""
    joined = compute_bound if before is None else np.concatenate(([before], compute_bound))
    start = first if before is None else first - 1  # the 0-based step index of joined[0]
    flips = np.flatnonzero(joined[1:] != joined[:-1]) + 1
    return [BoundChange(name, start + int(i) + 1, prompt_len + start + int(i), bound_label(bool(joined[i - 1])),
                        bound_label(bool(joined[i]))) for i in flips]


def generation_timeline(model: ModelSpec, hardware: HardwareSpec, workload: Workload, prompt_len: int,
                        steps: int) -> Timeline:
    """Prefill ``prompt_len`` tokens, then ``steps`` decode steps, for ``workload.batch`` sequences.

    The steps are evaluated ``CHUNK_STEPS`` at a time, so memory holds the per-step arrays and one chunk's
    operators, whatever the number of steps."""
    limits.count("prompt_len", prompt_len, limits.WORKLOAD["seq_len"])
    limits.count("steps", steps, limits.STUDY["steps"])
    longest = int(limits.WORKLOAD["seq_len"].high)
    if prompt_len + steps - 1 > longest:
        raise InputError(f"prompt_len + steps - 1 (the tokens cached at the last step) must be at most {longest}, "
                         f"got {prompt_len + steps - 1}")
    workload = on_device(model, workload, hardware)[0]  # 2:4 sparsity where the device runs it
    prefill = analyze(model, hardware, replace(workload, phase="prefill", seq_len=prompt_len))
    past_len = np.arange(prompt_len, prompt_len + steps)
    step_time, step_flops, step_bytes = np.empty(steps), np.empty(steps), np.empty(steps)
    compute_bound_steps = np.empty(steps, dtype=bool)
    changes: list[BoundChange] = []
    last_bound: dict[int, bool] = {}  # the step's and each operator's bound at the end of the previous chunk
    ceilings = engine_device(hardware, workload.engine)  # the sweep's ceilings (an engine accumulating in fp16)
    for first in range(0, steps, CHUNK_STEPS):
        chunk = slice(first, min(first + CHUNK_STEPS, steps))
        cached = past_len[chunk]
        grid = evaluate_grid(model, [hardware], "decode", np.full(cached.shape, workload.batch), cached,
                             workload.weight_scheme(model), workload.activation_format, workload.kv_format,
                             workload.flash_attention, workload.causal_skip, workload.lm_head, workload.mla,
                             workload.fuse, workload.engine)
        step_time[chunk], step_flops[chunk], step_bytes[chunk] = grid.time_s[0], grid.flops, grid.bytes
        compute_bound_steps[chunk] = grid.compute_bound[0]
        bounds = [("step", compute_bound_steps[chunk])]
        for op in grid.ops:
            line = roofline(np.asarray(op.cost.flops), np.asarray(op.cost.bytes), ceilings.peak_for(op.math)[1],
                            hardware.memory_bytes_per_s)
            bounds.append((op.name, np.broadcast_to(line.compute_bound, cached.shape)))
        for index, (name, bound) in enumerate(bounds):
            changes += _changes(name, bound, first, last_bound.get(index), prompt_len)
            last_bound[index] = bool(bound[-1])
    decode_time = float(step_time.sum())
    total_time = prefill.totals.time_s + decode_time
    # What the last step holds: core/memory.py's footprint at the final context (as analyze and fit count it).
    footprint = memory_footprint(model, hardware, replace(workload, phase="decode", seq_len=prompt_len + steps - 1,
                                                          new_tokens=1))
    totals = TimelineTotals(
        ttft_s=prefill.totals.time_s,
        decode_time_s=decode_time,
        total_time_s=total_time,
        first_step_time_s=float(step_time[0]),
        last_step_time_s=float(step_time[-1]),
        mean_step_time_s=decode_time / steps,
        new_tokens=steps + 1,
        tokens_per_s=workload.batch * (steps + 1) / total_time,
        decode_tokens_per_s=workload.batch * steps / decode_time,
        prefill_flops=prefill.totals.flops,
        prefill_bytes=prefill.totals.bytes,
        flops=prefill.totals.flops + float(step_flops.sum()),
        bytes=prefill.totals.bytes + float(step_bytes.sum()),
        prefill_bound=prefill.totals.bound,
        final_kv_cache_bytes=footprint.kv_cache_bytes,
        memory_bytes=footprint.total_bytes,
        fits=footprint.fits,
        exceeds_context=model.context_warning(prompt_len + steps) is not None,
        state_bytes=footprint.state_bytes,
    )
    return Timeline(
        model=model.name, hardware=hardware.name, workload=workload, prompt_len=prompt_len, steps=steps,
        totals=totals, changes=tuple(sorted(changes, key=lambda c: (c.step, c.name != "step", c.name))),
        past_len=_read_only(past_len), step_time_s=_read_only(step_time), step_flops=_read_only(step_flops),
        step_bytes=_read_only(step_bytes), step_compute_bound=_read_only(compute_bound_steps),
    )
