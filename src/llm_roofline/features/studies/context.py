"""Decode cost and memory as the context grows: the comparison hybrid models are chosen on.

A transformer's decode step reads every cached key and value, so its time and its KV cache grow with the
context L; a layer with a recurrent mixer (a short convolution, linear attention, a state space) reads and
writes a state whose size does not depend on L. For each model and device, at each context length this
study prices one decode step (``analyze``: time per token, tokens/s), the prompt's prefill (time to first
token) and the memory the deployment holds at that context (``memory.memory_footprint``: weights, KV
cache, recurrent state, activations, overhead), and says whether it fits. Nothing here prices an operator:
every figure is ``analyze``'s. docs/hybrid-models.md has the derivations and a worked comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from llm_roofline.core import limits
from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import analyze
from llm_roofline.core.transformer import Workload

# 1 k to 128 k tokens, each length doubled: the range a phone model is chosen over.
DEFAULT_CONTEXTS = tuple(1024 * 2**k for k in range(8))


class ContextPoint(NamedTuple):
    """One model on one device at one context: a decode step and the memory it holds."""

    seq_len: int  # tokens cached before the decode step (and the prompt whose prefill is priced)
    decode_time_s: float  # one decode step over the batch
    tokens_per_s: float  # new tokens per second over the batch
    prefill_time_s: float  # the prompt of seq_len tokens: the time to the first token
    kv_cache_bytes: float
    state_bytes: float  # the recurrent mixers' state: the same at every context
    memory_bytes: float  # weights + KV cache + state + activations + overhead
    fits: bool | None  # None: the device's capacity is unknown
    decode_bound: str


class ContextCurve(NamedTuple):
    """One model on one device over the contexts, in increasing order."""

    model: str
    model_label: str
    hardware: str
    hardware_label: str
    capacity_bytes: float | None
    attention_layers: int
    layers: int
    context_window: int  # the model's max_position_embeddings: longer contexts were never trained
    points: tuple[ContextPoint, ...]

    @property
    def growth(self) -> float:
        """Decode time at the longest context / at the shortest: 1 for a flat per-token cost."""
        return self.points[-1].decode_time_s / self.points[0].decode_time_s


def context_point(model: ModelSpec, hardware: HardwareSpec, workload: Workload, seq_len: int) -> ContextPoint:
    """``model`` on ``hardware`` with ``seq_len`` tokens of context (``workload``'s batch and formats)."""
    decode = analyze(model, hardware, replace(workload, phase="decode", seq_len=seq_len, new_tokens=1))
    prefill = analyze(model, hardware, replace(workload, phase="prefill", seq_len=seq_len, new_tokens=1))
    memory = decode.memory
    return ContextPoint(seq_len, decode.totals.time_s, decode.totals.tokens_per_s, prefill.totals.time_s,
                        memory.kv_cache_bytes, memory.state_bytes, memory.total_bytes, memory.fits,
                        decode.totals.bound)


def context_study(models: Sequence[ModelSpec], devices: Sequence[HardwareSpec], workload: Workload,
                  seq_lens: Sequence[int] = DEFAULT_CONTEXTS) -> tuple[ContextCurve, ...]:
    """Every model on every device at every context length (models first, then devices)."""
    if not models or not devices or not seq_lens:
        raise InputError("context: give at least one model, one device and one context length")
    lengths = sorted({limits.count("seq_lens", length, limits.WORKLOAD["seq_len"]) for length in seq_lens})
    return tuple(
        ContextCurve(model.name, model.display_name or model.name, device.name, device.display_name,
                     device.available_memory_bytes, model.attention_layers, model.num_layers,
                     model.max_position_embeddings,
                     tuple(context_point(model, device, workload, length) for length in lengths))
        for model in models for device in devices)
