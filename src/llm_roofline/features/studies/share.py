"""Attention's share of a layer's FLOPs: the chapter's closed form for the idealized layer.

Chapter 2.2.2-2.3.1 idealizes one layer as multi-head attention with d x d projections and a
plain 4d FFN, counts the full L x L score matrix, and drops softmax and activation FLOPs:

    attention = Q, K, V, O projections 4 x 2Ld^2 + Q K^T 2L^2 d + P V 2L^2 d = 8Ld^2 + 4L^2 d
    FFN       = two 2 x L x d x 4d products                                  = 16Ld^2
    ratio     = attention / FFN = 1/2 + L / (4d)
    share     = attention / (attention + FFN)

Beside it, the exact split of a real model from the operator list (``Op.group``), the length at which
attention reaches a given share, and the strategy the chapter's thresholds (2.3.3) recommend.

In a hybrid model (docs/hybrid-models.md) only the layers that attend count as attention: the recurrent
mixers that replace it in the other layers (short convolutions, linear attention, state spaces; group
``mixer``) are neither attention nor FFN, and are reported beside (``mixer_flops``). With a fraction f of
the layers attending, the idealized ratio becomes f (1/2 + L / (4d)) (``idealized_share`` at ``attending``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

from llm_roofline.core import limits
from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import Analysis, analyze
from llm_roofline.core.transformer import Workload, step_ops
from llm_roofline.core.units import Quantity
from llm_roofline.features.studies.steps import dense_only, group_flops, smallest_integer


def idealized_layer_flops(seq_len: Quantity, hidden_size: Quantity) -> tuple[Quantity, Quantity]:
    """(attention FLOPs, FFN FLOPs) of the chapter's idealized layer over ``seq_len`` tokens."""
    length, d = seq_len, hidden_size
    attention = 8 * length * d * d + 4 * length * length * d
    ffn = 16 * length * d * d
    return attention, ffn


def idealized_ratio(seq_len: Quantity, hidden_size: Quantity, attending: float = 1.0) -> Quantity:
    """Attention / FFN FLOPs of the idealized layer: 1/2 + L / (4d); of a stack where a fraction ``attending``
    of the layers attend (the others a recurrent mixer, each layer an FFN): f (1/2 + L / (4d))."""
    return attending * (0.5 + seq_len / (4 * hidden_size))


def idealized_share(seq_len: Quantity, hidden_size: Quantity, attending: float = 1.0) -> Quantity:
    """Attention / (attention + FFN) FLOPs of the idealized layer (of a stack with a fraction ``attending``
    of attending layers)."""
    attention, ffn = idealized_layer_flops(seq_len, hidden_size)
    return attending * attention / (attending * attention + ffn)


# --- The real model's split, from the operator model ------------------------------------------

# The chapter's thresholds (2.3.3) on attention / (attention + FFN) FLOPs.
LOW_SHARE = 0.35
HIGH_SHARE = 0.50
# Lengths searched for a crossover: every length a workload may have (limits.WORKLOAD), 1.6x the longest
# context window, so None means "not at any length the model could be run at".
MAX_SEARCH_LEN = int(limits.WORKLOAD["seq_len"].high)


class FlopSplit(NamedTuple):
    """Where one step's FLOPs go: attention (projections, scores, softmax, P·V, RoPE), FFN, the recurrent
    mixers of a hybrid's other layers, the rest."""

    attention_flops: float
    ffn_flops: float
    other_flops: float  # norms, residual adds, embedding, lm_head
    mixer_flops: float = 0.0  # short convolutions, linear attention, state spaces (the layers that do not attend)

    @property
    def share(self) -> float:
        """Attention / (attention + FFN): the chapter's share (0 when neither: a pure state-space stack)."""
        both = self.attention_flops + self.ffn_flops
        return self.attention_flops / both if both else 0.0


class Recommendation(NamedTuple):
    """What to optimize first, from the chapter's thresholds (2.3.3), and why."""

    band: str  # "< 35%", "35-50%", "> 50%"
    focus: str
    actions: tuple[str, ...]
    reason: str


class ShareRow(NamedTuple):
    """One length: the real model's split (the idealized layer's for a bare hidden size) beside the idealized layer."""

    seq_len: int
    attention_flops: float | None
    ffn_flops: float | None
    other_flops: float | None
    share: float  # the real model's share when there is one, else the idealized share
    idealized_ratio: float
    idealized_share: float
    attention_time_share: float | None  # attention / (attention + FFN) time on a device, if given
    recommendation: Recommendation
    mixer_flops: float | None = None  # a hybrid's recurrent mixers (None for the idealized layer)


class ShareStudy(NamedTuple):
    """Attention's share over a table of lengths, and where it crosses a target share."""

    model: str | None
    hidden_size: int
    phase: str
    hardware: str | None
    rows: tuple[ShareRow, ...]
    target_share: float
    crossover_seq_len: int | None  # smallest length with share >= target (real model); None: bare d
    idealized_crossover_seq_len: int | None  # None: no layer attends
    warnings: tuple[str, ...] = ()  # lengths past the model's context window
    attending_layers: int | None = None  # layers that attend, of ``layers`` (a hybrid has fewer)
    layers: int | None = None


def flop_split(model: ModelSpec, workload: Workload) -> FlopSplit:
    """The exact attention / FFN / other FLOPs of one step, summed from the operator list."""
    groups = group_flops(step_ops(model, workload))
    attention, ffn, mixer = groups.pop("attention", 0), groups.pop("ffn", 0), groups.pop("mixer", 0)
    return FlopSplit(float(attention), float(ffn), float(sum(groups.values())), float(mixer))


def recommend(share: float) -> Recommendation:
    """The chapter's strategy for an attention share (2.3.3), with the reason in one sentence."""
    if not 0 <= share <= 1:
        raise InputError(f"an attention share must be between 0 and 1, got {share!r}")
    if share < LOW_SHARE:
        return Recommendation(
            "< 35%", "FFN first", ("2:4 sparsity of the FFN weights", "quantize the FFN first"),
            f"attention is {share:.1%} of attention + FFN FLOPs, below 35%: the FFN holds most of the work")
    if share <= HIGH_SHARE:
        return Recommendation(
            "35-50%", "balanced", ("optimize attention and FFN together", "FlashAttention pays off"),
            f"attention is {share:.1%} of attention + FFN FLOPs, between 35 and 50%: neither part dominates")
    return Recommendation(
        "> 50%", "attention first", ("MQA/GQA", "KV-cache compression", "FlashAttention"),
        f"attention is {share:.1%} of attention + FFN FLOPs, above 50%: attention holds most of the work")


def idealized_crossover(target_share: float, hidden_size: int, attending: float = 1.0) -> int:
    """Smallest integer L at which the idealized layer's share reaches ``target_share`` (a stack's, with a
    fraction ``attending`` of its layers attending).

    share = r / (1 + r) with r = f (1/2 + L / (4d)), so L = 4d (s / (f (1 - s)) - 1/2); with every layer
    attending the share is above 1/3 for every L >= 1. The closed form is rounded up, then checked on the
    exact formula.
    """
    _check_target(target_share)
    length = max(1, math.ceil(4 * hidden_size * (target_share / (attending * (1 - target_share)) - 0.5)))
    while length > 1 and idealized_share(length - 1, hidden_size, attending) >= target_share:
        length -= 1
    while idealized_share(length, hidden_size, attending) < target_share:
        length += 1
    return length


def crossover_seq_len(model: ModelSpec, workload: Workload, target_share: float) -> int | None:
    """Smallest integer length at which the real model's attention share reaches ``target_share``.

    Attention FLOPs grow with the length faster than FFN FLOPs (scores are L x L in prefill, L per
    token in decode), so the share rises monotonically and an integer bisection is exact.
    """
    _check_target(target_share)
    if not model.attention_layers:
        return None  # no layer attends: the share is 0 at every length
    return smallest_integer(lambda n: flop_split(model, replace(workload, seq_len=n)).share >= target_share,
                            MAX_SEARCH_LEN)


def attention_time_share(analysis: Analysis) -> float:
    """Attention / (attention + FFN) of the step's roofline time."""
    times = {"attention": 0.0, "ffn": 0.0}
    for op in analysis.ops:
        if op.group in times:
            times[op.group] += op.time_s * op.count
    both = times["attention"] + times["ffn"]
    return times["attention"] / both if both else 0.0


def share_study(model: ModelSpec | None, workload: Workload, seq_lens: Sequence[int], target_share: float = 0.5,
                hidden_size: int | None = None, hardware: HardwareSpec | None = None) -> ShareStudy:
    """Attention's share at each length, the real model's (``model``) or the idealized layer's alone
    (``hidden_size``, no model), with the crossover length for ``target_share``."""
    dense_only(workload, "share")
    _check_target(target_share)
    if not seq_lens:
        raise InputError("give at least one sequence length")
    for length in seq_lens:
        limits.count("seq_lens", length, limits.WORKLOAD["seq_len"])
    if model is not None and hidden_size is None:
        d = model.hidden_size
    elif model is None and hidden_size is not None:
        d = hidden_size
    else:
        raise InputError("give a model or a bare hidden size (the idealized layer alone), not both")
    limits.count("hidden_size", d, limits.MODEL["hidden_size"])
    # a hybrid: the idealized stack attends in the same fraction of its layers (none: no idealized share)
    attending = 1.0 if model is None else model.attention_layers / model.num_layers
    rows = []
    for length in seq_lens:
        ideal = float(idealized_share(length, d, attending)) if attending else 0.0
        ratio = float(idealized_ratio(length, d, attending))
        if model is None:  # the idealized layer has attention and FFN only: nothing else to count
            attention, ffn = idealized_layer_flops(float(length), float(d))
            rows.append(ShareRow(length, attention, ffn, 0.0, ideal, ratio, ideal, None, recommend(ideal)))
            continue
        step = replace(workload, seq_len=length)
        split = flop_split(model, step)
        time_share = attention_time_share(analyze(model, hardware, step)) if hardware is not None else None
        rows.append(ShareRow(length, split.attention_flops, split.ffn_flops, split.other_flops, split.share,
                             ratio, ideal, time_share, recommend(split.share), split.mixer_flops))
    return ShareStudy(
        model=None if model is None else model.name,
        hidden_size=d,
        phase=workload.phase,
        hardware=None if hardware is None else hardware.name,
        rows=tuple(rows),
        target_share=target_share,
        crossover_seq_len=None if model is None else crossover_seq_len(model, workload, target_share),
        idealized_crossover_seq_len=idealized_crossover(target_share, d, attending) if attending else None,
        warnings=() if model is None else _context_warnings(model, workload, seq_lens),
        attending_layers=None if model is None else model.attention_layers,
        layers=None if model is None else model.num_layers,
    )


def _context_warnings(model: ModelSpec, workload: Workload, seq_lens: Sequence[int]) -> tuple[str, ...]:
    longest = replace(workload, seq_len=max(seq_lens))
    beyond = model.context_warning(longest.past_len + longest.q_len)
    notes: tuple[str, ...] = () if beyond is None else (beyond,)
    if not model.attention_layers:
        notes += (f"no layer of {model.name} attends: the attention share is 0 at every length; its recurrent "
                  f"mixers' FLOPs are the mixer column",)
    return notes


def _check_target(target_share: float) -> None:
    if not isinstance(target_share, (int, float)) or not 0 < target_share < 1:
        raise InputError(f"target share must be a fraction strictly between 0 and 1 (e.g. 0.5), got {target_share!r}")
