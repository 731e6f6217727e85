"""Advice in plain words: what bounds a configuration, whether it fits, and the changes that pay most.

Nothing here prices anything. Every figure comes from a study the command line runs:
- the bound and its reason: ``analyze()``'s totals (the step's intensity against the ridge point of the
  ceiling its matrix products run on, ``Totals.peak_precision``);
- the levers: ``what_if()``, one knob changed per lever — the same ``Variant`` records that
  ``llm-roofline whatif --vary KNOB=VALUE --format json`` prints;
- the latency target: ``feasibility()`` — ``llm-roofline feasibility --target-ms`` (decode);
- what to optimise first: attention's share of the step's FLOPs and the chapter's thresholds (2.3.3,
  ``share.recommend``, as ``llm-roofline share`` words it), beside its share of the time.

The levers tried are the deployment's own knobs (no other model): lower-bit weights, a lower-bit KV
cache, FlashAttention, fused elementwise operators, 2:4 sparsity where the device has sparse units, and
a larger batch (throughput, not latency). They are ranked by the throughput they give; one that no
longer fits in the device's memory goes last.
"""

from __future__ import annotations

from typing import NamedTuple

from llm_roofline.core.errors import InputError
from llm_roofline.core.formats import get_format
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.limits import WORKLOAD
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import Analysis, analyze
from llm_roofline.core.transformer import Workload
from llm_roofline.core.units import seconds, si
from llm_roofline.features.studies.requirements import Feasibility, feasibility
from llm_roofline.features.studies.share import Recommendation, attention_time_share, flop_split, recommend
from llm_roofline.features.studies.whatif import Change, Variant, WhatIf, what_if

LEVER_WEIGHT_FORMATS = ("int8", "int4")  # tried when the weights are stored in more bits
LEVER_KV_FORMAT = "int8"
LEVER_BATCH_FACTOR = 8  # the batch lever: this many times the sequences
SHOWN = 3  # the levers the summary names
NO_GAIN = 1.02  # a lever within 2 % of the baseline's throughput gives "no gain"
MAX_BATCH = int(WORKLOAD["batch"].high)


class Lever(NamedTuple):
    """One change, its ``whatif`` figures, and what it means in words."""

    knob: str  # a whatif knob (whatif.KNOBS)
    value: str
    title: str  # "int4 weights"
    text: str  # the advice sentence, with its numbers
    tokens_per_s: float  # roofline bound, over the batch (whatif's variant)
    throughput_ratio: float  # tokens/s against the baseline's
    time_ratio: float  # the step's time against the baseline's (whatif's time_ratio)
    bound: str
    memory_bytes: float
    fits: bool | None  # against the device's usable memory (None: unknown)
    pays: bool  # at least NO_GAIN faster and still fits


class Advice(NamedTuple):
    model: str
    hardware: str
    workload: Workload
    bound: str
    arithmetic_intensity: float
    ridge_flop_per_byte: float
    peak_precision: str
    bound_reason: str
    tokens_per_s: float
    expected_tokens_per_s: float
    time_s: float
    expected_time_s: float
    memory_bytes: float
    capacity_bytes: float | None
    fits: bool | None
    fit_text: str
    attention_flop_share: float  # attention / (attention + FFN) FLOPs: the chapter's criterion (2.3.3)
    attention_time_share: float  # the same split of the step's roofline time on this device
    share_advice: Recommendation  # what to optimise first, from the FLOP share (``llm-roofline share``)
    levers: tuple[Lever, ...]  # ranked: those that pay first, by throughput
    whatif: WhatIf
    target_time_per_token_s: float | None
    feasibility: Feasibility | None
    feasibility_text: str
    summary: tuple[str, ...]  # the panel's sentences: bound, speed, fit, the SHOWN best levers, the target

    @property
    def top(self) -> tuple[Lever, ...]:
        return self.levers[:SHOWN]


def lever_changes(model: ModelSpec, hardware: HardwareSpec, workload: Workload) -> list[Change]:
    """The knobs worth trying for this deployment (``whatif`` changes)."""
    changes = []
    matrix_bits = workload.weight_scheme(model).default.bits_per_element  # the main matrices' format (a mix's)
    for name in LEVER_WEIGHT_FORMATS:
        if get_format(name).bits_per_element < matrix_bits:
            changes.append(Change("weights", name))
    has_cache = bool(model.attention_layers)
    if has_cache and get_format(LEVER_KV_FORMAT).bits_per_element < workload.kv_format.bits_per_element:
        changes.append(Change("kv-cache", LEVER_KV_FORMAT))
    if has_cache and not workload.flash_attention:
        changes.append(Change("flash-attention", "on"))
    if workload.fuse == "none":
        changes.append(Change("fuse", "elementwise"))
    if workload.sparsity == "none" and hardware.sparse_2_4:
        changes.append(Change("sparsity", "2:4"))
    batch = min(workload.batch * LEVER_BATCH_FACTOR, MAX_BATCH)
    if batch > workload.batch:
        changes.append(Change("batch", str(batch)))
    return changes


def rate(tokens_per_s: float) -> str:
    """A tokens/s figure as the advice words it: 7.435, 26.48, 1,404, 18,803."""
    return f"{tokens_per_s:,.0f}" if tokens_per_s >= 1000 else f"{tokens_per_s:.4g}"


def _fit_words(memory_bytes: float, capacity_bytes: float | None) -> str:
    if capacity_bytes is None:
        return f"needs {si(memory_bytes, 'B')} (the device's memory is not known)"
    if memory_bytes <= capacity_bytes:
        return f"fits: {si(memory_bytes, 'B')} of {si(capacity_bytes, 'B')}"
    return f"does not fit: needs {si(memory_bytes, 'B')}, the device lets it use {si(capacity_bytes, 'B')}"


def _lever(variant: Variant, base: Variant, capacity_bytes: float | None, workload: Workload) -> Lever:
    knob, value = variant.knob or "", variant.value or ""
    ratio = variant.tokens_per_s / base.tokens_per_s
    fits = None if capacity_bytes is None else variant.memory_bytes <= capacity_bytes
    pays = ratio >= NO_GAIN and fits is not False
    speed = f"{ratio:.3g}× faster, {rate(variant.tokens_per_s)} tokens/s" if ratio >= NO_GAIN else (
        f"no gain ({ratio:.3g}×)" if ratio > 1 / NO_GAIN else f"{1 / ratio:.3g}× slower")
    fit = "" if fits is None else (f", fits in {si(capacity_bytes or 0, 'B')}" if fits else
                                   f", does not fit ({si(variant.memory_bytes, 'B')} > {si(capacity_bytes or 0, 'B')})")
    if knob == "weights":
        title = f"{value} weights"
        text = f"{title}: {speed}{fit}"
    elif knob == "kv-cache":
        title = f"{value} KV cache"
        text = (f"{title}: {speed}, cache {si(base.kv_cache_bytes, 'B')} → {si(variant.kv_cache_bytes, 'B')}"
                f"{fit}")
    elif knob == "flash-attention":
        title = "FlashAttention"
        where = f"at this length ({workload.seq_len} tokens)" if ratio < NO_GAIN else ""
        text = f"{title}: {speed} {where}".rstrip()
    elif knob == "fuse":
        title = "fused elementwise operators"
        text = f"{title}: {speed}"
    elif knob == "sparsity":
        title = "2:4 sparsity"
        text = f"{title}: {speed}{fit}"
    else:  # batch: throughput, paid for in latency
        title = f"batch {value}"
        still = "still " if variant.bound == base.bound else "now "
        gain = (f"{ratio:.3g}× throughput ({rate(variant.tokens_per_s)} tokens/s in all)" if ratio >= NO_GAIN
                else f"no throughput gain ({ratio:.3g}×)")
        text = (f"{title}: {gain}, each step {variant.time_ratio:.3g}× as long, {still}{variant.bound}-bound"
                f"{fit}")
    return Lever(knob, value, title, text, variant.tokens_per_s, ratio, variant.time_ratio, variant.bound,
                 variant.memory_bytes, fits, pays)


def _bound_reason(analysis: Analysis) -> str:
    t, hw = analysis.totals, analysis.hardware
    peak = t.ridge_flop_per_byte * hw.memory_bytes_per_s  # the ceiling the step was priced at (its engine's)
    where = (f"{hw.display_name}'s ridge point, {t.ridge_flop_per_byte:.3g} FLOP/B ({t.peak_precision} peak "
             f"{si(peak, 'FLOP/s')} ÷ {si(hw.memory_bytes_per_s, 'B/s')})")
    if t.bound == "memory":
        return (f"memory-bound: the step does {t.arithmetic_intensity:.3g} FLOP per byte it moves, below {where}; "
                f"its time is the {si(t.bytes, 'B')} it moves")
    return (f"compute-bound: the step does {t.arithmetic_intensity:.3g} FLOP per byte it moves, at or above "
            f"{where}; its time is the {si(t.flops, 'FLOP')} it computes")


def _feasibility_text(result: Feasibility) -> str:
    target = seconds(result.target_time_per_token_s)
    base = result.baseline
    if base.meets:
        return (f"meets the {target}/token target: decode takes {seconds(base.time_per_token_s)} per token "
                f"({rate(base.tokens_per_s)} tokens/s per sequence)")
    meeting = [r for r in result.remedies if r.meets]
    ways = "; ".join(f"{r.change} ({seconds(r.time_per_token_s)})" if r.time_per_token_s is not None else r.change
                     for r in meeting[:SHOWN])
    return (f"misses the {target}/token target: decode takes {seconds(base.time_per_token_s)} per token"
            + (f"; would meet it: {ways}" if ways else "; nothing tried meets it"))


def advise(model: ModelSpec, hardware: HardwareSpec, workload: Workload,
           target_time_per_token_s: float | None = None) -> Advice:
    """The advice for one model on one device under ``workload`` (``target_time_per_token_s``: a latency
    target per output token, judged by ``feasibility``)."""
    base = analyze(model, hardware, workload)
    changes = lever_changes(model, hardware, workload)
    if not changes:
        raise InputError("nothing to try: the deployment already uses every lever the advice knows")
    study = what_if(model, hardware, workload, changes)
    capacity = base.memory.capacity_bytes
    levers = [_lever(v, study.baseline, capacity, workload) for v in study.variants]
    levers.sort(key=lambda lever: (not lever.pays, lever.fits is False, -lever.throughput_ratio))
    flop_share = flop_split(model, workload).share
    result = None
    feasible = ""
    if target_time_per_token_s is not None:
        if workload.sparsity != "none":
            feasible = "latency target: not judged with 2:4 sparsity (feasibility prices the dense model)"
        else:
            result = feasibility(model, hardware, workload, target_time_per_token_s)
            feasible = _feasibility_text(result)
    t = base.totals
    fit = _fit_words(base.memory.total_bytes, capacity)
    summary = [_bound_reason(base),
               f"{rate(t.tokens_per_s)} tokens/s at the roofline bound, {rate(t.expected_tokens_per_s)} expected "
               f"({seconds(t.time_s)} and {seconds(t.expected_time_s)} per step)", fit]
    summary += [lever.text for lever in levers[:SHOWN]]
    if feasible:
        summary.append(feasible)
    return Advice(model.name, hardware.name, workload, t.bound, t.arithmetic_intensity, t.ridge_flop_per_byte,
                  t.peak_precision, summary[0], t.tokens_per_s, t.expected_tokens_per_s, t.time_s, t.expected_time_s,
                  base.memory.total_bytes, capacity, base.memory.fits, fit, flop_share, attention_time_share(base),
                  recommend(flop_share), tuple(levers),
                  study, target_time_per_token_s, result, feasible, tuple(summary))
