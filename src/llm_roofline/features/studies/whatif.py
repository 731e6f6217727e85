"""The same workload with one knob changed, side by side (exercises 2.4 and 2.8, section 2.4.3).

Each variant is ``dataclasses.replace`` of the model (GQA/MQA: ``num_kv_heads``) or of the workload
(formats, FlashAttention, batch, length), analyzed by the core; deltas are ratios to the baseline.
Besides the step's totals, the attention kernels proper (Q·Kᵀ, softmax, P·V, or the fused kernel)
are summed on their own: that is where FlashAttention and GQA act, and where the chapter's claimed
gains are measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

from llm_roofline.core.errors import InputError, shown
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import Analysis, analyze
from llm_roofline.core.transformer import Workload
from llm_roofline.features.studies.steps import is_attention_core

# knob -> (what it changes, how a value is read)
KNOBS = {
    "kv-heads": "model.num_kv_heads (GQA/MQA groups): the KV cache and the K/V projection weights",
    "flash-attention": "FlashAttention on/off",
    "causal-skip": "skip the masked half of the scores on/off",
    "fuse": "elementwise operators inside the neighbouring matmul (none/elementwise): their activation traffic",
    "sparsity": "2:4 structured sparsity of the layers' projections (none/2:4): their weights and multiplies",
    "weights": "weight format",
    "activations": "activation format",
    "kv-cache": "KV-cache format",
    "batch": "sequences in the batch",
    "seq-len": "prompt length (prefill) or tokens cached (decode)",
}
_SWITCH = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False}


class Change(NamedTuple):
    knob: str
    value: str


class Variant(NamedTuple):
    """One configuration's totals, and its ratios to the baseline (1.0 for the baseline itself)."""

    label: str
    knob: str | None
    value: str | None
    flops: float
    bytes: float
    arithmetic_intensity: float
    time_s: float
    tokens_per_s: float
    bound: str
    weight_bytes_moved: float
    kv_read_bytes: float
    kv_cache_bytes: float
    memory_bytes: float
    attention_core_flops: float
    attention_core_bytes: float
    attention_core_intensity: float
    time_ratio: float
    bytes_ratio: float
    bytes_saved: float
    intensity_ratio: float
    kv_cache_ratio: float
    attention_core_intensity_ratio: float
    changes: str = ""  # what the knob changes (KNOBS), empty for the baseline
    # Where the step's bytes and FLOPs went against the baseline (positive: saved), by category: what a
    # knob really moved (kv-heads shrinks the K/V projection weights as well as the cache).
    weight_bytes_saved: float = 0.0
    kv_bytes_saved: float = 0.0  # KV-cache reads and writes
    activation_bytes_saved: float = 0.0
    flops_saved: float = 0.0


class WhatIf(NamedTuple):
    model: str
    hardware: str
    workload: Workload
    baseline: Variant
    variants: tuple[Variant, ...]


def parse_change(text: str) -> list[Change]:
    """``knob=v1,v2`` -> one change per value: ``kv-heads=8,1`` is two variants."""
    knob, sep, values = text.partition("=")
    knob = knob.strip()
    if not sep or not values.strip():
        raise InputError(f"expected KNOB=VALUE[,VALUE...], got {text!r}; knobs: {', '.join(KNOBS)}")
    if knob not in KNOBS:
        raise InputError(f"unknown knob {knob!r}; known: {', '.join(KNOBS)}")
    return [Change(knob, v.strip()) for v in values.split(",") if v.strip()]


def _integer(change: Change) -> int:
    try:
        value = int(change.value)
    except ValueError:
        raise InputError(f"{change.knob} must be an integer, got {shown(change.value)}") from None
    if value < 1:
        raise InputError(f"{change.knob} must be an integer >= 1, got {value}")
    return value


def _switch(change: Change) -> bool:
    if change.value.lower() not in _SWITCH:
        raise InputError(f"{change.knob} must be on or off, got {change.value!r}")
    return _SWITCH[change.value.lower()]


def apply_change(model: ModelSpec, workload: Workload, change: Change) -> tuple[ModelSpec, Workload]:
    """The model and workload with one knob changed (validated by their own constructors)."""
    knob = change.knob
    if knob == "kv-heads":
        if model.is_mla:
            raise InputError("kv-heads does not apply to latent attention (MLA caches one latent per token)")
        kv_heads = _integer(change)
        if not model.attention_layers:
            raise InputError(f"kv-heads does not apply to {model.name}: no layer attends")
        return model.map_blocks(lambda b: b if b.attention is None else replace(
            b, attention=replace(b.attention, kv_heads=kv_heads))), workload
    changed: dict[str, Callable[[], Workload]] = {
        "flash-attention": lambda: replace(workload, flash_attention=_switch(change)),
        "causal-skip": lambda: replace(workload, causal_skip=_switch(change)),
        "fuse": lambda: replace(workload, fuse=change.value),
        "sparsity": lambda: replace(workload, sparsity=change.value),
        "weights": lambda: replace(workload, weights=change.value),
        "activations": lambda: replace(workload, activations=change.value),
        "kv-cache": lambda: replace(workload, kv_cache=change.value),
        "batch": lambda: replace(workload, batch=_integer(change)),
        "seq-len": lambda: replace(workload, seq_len=_integer(change)),
    }
    if knob not in changed:
        raise InputError(f"unknown knob {knob!r}; known: {', '.join(KNOBS)}")
    return model, changed[knob]()


def _core(analysis: Analysis) -> tuple[float, float]:
    core = [op for op in analysis.ops if is_attention_core(op.name)]
    return sum(op.flops * op.count for op in core), sum(op.bytes * op.count for op in core)


def _variant(label: str, change: Change | None, analysis: Analysis, base: Analysis | None) -> Variant:
    t, base_t = analysis.totals, (base or analysis).totals
    core_flops, core_bytes = _core(analysis)
    base_core_flops, base_core_bytes = _core(base or analysis)
    core_intensity = core_flops / core_bytes
    base_kv = (base or analysis).memory.kv_cache_bytes
    return Variant(
        label=label, knob=None if change is None else change.knob, value=None if change is None else change.value,
        flops=t.flops, bytes=t.bytes, arithmetic_intensity=t.arithmetic_intensity, time_s=t.time_s,
        tokens_per_s=t.tokens_per_s, bound=t.bound, weight_bytes_moved=t.weight_bytes, kv_read_bytes=t.kv_read_bytes,
        kv_cache_bytes=analysis.memory.kv_cache_bytes, memory_bytes=analysis.memory.total_bytes,
        attention_core_flops=core_flops, attention_core_bytes=core_bytes, attention_core_intensity=core_intensity,
        time_ratio=t.time_s / base_t.time_s, bytes_ratio=t.bytes / base_t.bytes, bytes_saved=base_t.bytes - t.bytes,
        intensity_ratio=t.arithmetic_intensity / base_t.arithmetic_intensity,
        kv_cache_ratio=analysis.memory.kv_cache_bytes / base_kv,
        attention_core_intensity_ratio=core_intensity / (base_core_flops / base_core_bytes),
        changes="" if change is None else KNOBS[change.knob],
        weight_bytes_saved=base_t.weight_bytes - t.weight_bytes,
        kv_bytes_saved=(base_t.kv_read_bytes + base_t.kv_write_bytes) - (t.kv_read_bytes + t.kv_write_bytes),
        activation_bytes_saved=((base_t.act_read_bytes + base_t.act_write_bytes)
                                - (t.act_read_bytes + t.act_write_bytes)),
        flops_saved=base_t.flops - t.flops,
    )


def what_if(model: ModelSpec, hardware: HardwareSpec, workload: Workload, changes: Sequence[Change]) -> WhatIf:
    """The baseline and one variant per change, each with its ratios to the baseline."""
    if not changes:
        raise InputError(f"give at least one change, KNOB=VALUE; knobs: {', '.join(KNOBS)}")
    base = analyze(model, hardware, workload)
    variants = []
    for change in changes:
        variant_model, variant_workload = apply_change(model, workload, change)
        variants.append(_variant(f"{change.knob}={change.value}", change,
                                 analyze(variant_model, hardware, variant_workload), base))
    return WhatIf(model.name, hardware.name, workload, _variant("baseline", None, base, None), tuple(variants))
