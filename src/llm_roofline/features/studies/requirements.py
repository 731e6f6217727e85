"""What a target needs, and what would meet it (exercises 2.3, 2.6 and 2.7).

A model is a catalogue model (every operator, KV cache included) or a bare parameter count — the
chapter's model of decode: every weight read once per token and nothing else. The bare count is
priced by the registry's own ``linear`` formula, as one matrix-vector product with ``params``
weights (2 FLOPs per weight per token, the weights' bytes at the format's bits per element; no
activations), so the chapter's numbers come out exactly: 7e9 x 2 B = 14 GB, / 50 GB/s = 280 ms.

Targets are per sequence: a latency per token is the decode step's time; a rate in tokens/s is
its inverse. The bandwidth a target needs solves sum_i max(F_i / P_i, B_i / W) = step time for W,
exactly (the sum is piecewise in 1/W with one break per operator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from llm_roofline.core import limits, ops
from llm_roofline.core.engines import engine_device
from llm_roofline.core.errors import InputError
from llm_roofline.core.formats import NumberFormat, get_format
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.memory import workload_footprint_bytes
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import evaluate_op
from llm_roofline.core.transformer import Op, Workload, step_ops, weight_storage_bytes
from llm_roofline.core.units import Scalar
from llm_roofline.features.deploy import acceptance_rate_for_tokens
from llm_roofline.features.studies.energy import step_energy
from llm_roofline.features.studies.steps import dense_only, smallest_integer, step_sums
from llm_roofline.inputs.device_files import hardware_names, load_hardware

# What the remedies try, from the format catalogue: lower-precision weights and KV cache.
REMEDY_WEIGHT_FORMATS = ("fp8", "int8", "int4")
REMEDY_KV_FORMATS = ("fp8", "int8", "int4")
DEVICES_SHOWN = 3  # the smallest catalogue devices that meet the target
MAX_DRAFT_TOKENS = 8  # speculative decoding: draft lengths tried, 1..8
MAX_BATCH = int(limits.WORKLOAD["batch"].high)


@dataclass(frozen=True, slots=True)
class ParamsOnly:
    """A model known only by its parameter count (the chapter's exercises 2.3, 2.6, 2.7)."""

    params: float

    def __post_init__(self) -> None:
        limits.figure("params", self.params, limits.STUDY["params"])

    @property
    def name(self) -> str:
        return f"{self.params / 1e9:g}B params"


Subject = ModelSpec | ParamsOnly


def decode_ops(subject: Subject, workload: Workload, batch: int | None = None, q_len: int = 1) -> list[Op[Scalar]]:
    """One decode step (``q_len`` tokens per sequence: > 1 for a speculative verification pass)."""
    batch = workload.batch if batch is None else batch
    if isinstance(subject, ModelSpec):
        return step_ops(subject, replace(workload, phase="decode"), batch=batch, q_len=q_len)
    # Every weight once, 2 FLOPs per weight per token: one linear layer of ``params`` inputs and no
    # activations. A bare count has no rows or columns to carry scales or indices: the format's bits
    # per element only.
    weights = replace(workload.weight_format, row_overhead_bits=0.0, column_overhead_bits=0.0)
    cost = ops.linear(batch * q_len, round(subject.params), 1, weights, 0.0, 0.0)
    return [Op("weights", "matmul", "weights", 1, cost, workload.activation_format.math)]


def resident_bytes(subject: Subject, workload: Workload, batch: int | None = None) -> float:
    """Memory a decode step with ``seq_len`` tokens cached needs resident: ``core/memory.py``'s footprint
    (weights, the KV cache of ``seq_len + 1`` tokens per sequence, peak activations, the runtime overhead),
    as ``analyze`` and ``fit`` count it. A bare parameter count is the chapter's model: its weights alone."""
    batch = workload.batch if batch is None else batch
    if isinstance(subject, ParamsOnly):
        return float(decode_ops(subject, workload, batch)[0].cost.weight_bytes)
    return workload_footprint_bytes(subject, replace(workload, phase="decode", batch=batch, new_tokens=1))[3]


def step_time_s(subject: Subject, hardware: HardwareSpec, workload: Workload, batch: int | None = None,
                q_len: int = 1) -> float:
    return step_sums(decode_ops(subject, workload, batch, q_len), engine_device(hardware, workload.engine)).time_s


def bandwidth_for_time(operators: Sequence[Op[Scalar]], hardware: HardwareSpec | None, time_s: float) -> float:
    """The memory bandwidth (B/s) at which the step takes exactly ``time_s`` on the roofline.

    Without a device, memory time only: bytes / time. With one, its compute ceilings count: above
    W_i = B_i P_i / F_i operator i is compute-bound, so the step time is
    sum_{W_i > W} B_i / W + sum_{W_i <= W} F_i / P_i, continuous and falling in W; each segment
    between breaks is solved in closed form. Raises InputError if compute alone exceeds the time.
    """
    limits.figure("time_s", time_s, limits.STUDY["time_per_token_s"])
    moved = [op.cost.bytes * op.instances for op in operators]
    if hardware is None:
        return sum(moved) / time_s
    compute = [evaluate_op(op, hardware).compute_time_s * op.instances for op in operators]
    floor = sum(compute)
    if floor >= time_s:
        raise InputError(f"the target of {time_s:.3g} s per step is impossible on {hardware.name} at any bandwidth: "
                         f"its compute ceilings alone take {floor:.3g} s (at most {1 / floor:.4g} steps/s)")
    breaks = sorted(zip((b / c if c else math.inf for b, c in zip(moved, compute, strict=True)), moved, compute,
                        strict=True))
    low = 0.0
    for k in range(len(breaks) + 1):
        # Operators breaks[:k] compute-bound, breaks[k:] memory-bound.
        memory_bytes = sum(b for _, b, _ in breaks[k:])
        compute_time = sum(c for _, _, c in breaks[:k])
        high = breaks[k][0] if k < len(breaks) else math.inf
        bandwidth = memory_bytes / (time_s - compute_time) if memory_bytes else low
        if low <= bandwidth <= high:
            return bandwidth
        low = high
    raise AssertionError("the step time is continuous and falling in W: a segment holds the solution")


class BandwidthRequirement(NamedTuple):
    """What a decode rate needs (exercise 2.3), and whether a device has it."""

    model: str
    weights: str
    batch: int
    seq_len: int  # tokens cached (0 for a bare parameter count)
    tokens_per_s: float  # per sequence
    step_time_s: float
    bytes_per_step: float
    flops_per_step: float
    bytes_per_s: float  # memory traffic only: bytes per step x steps per second (the chapter's answer)
    flops_per_s: float
    hardware: str | None
    roofline_bytes_per_s: float | None  # with the device's compute ceilings counted
    hardware_bytes_per_s: float | None
    meets: bool | None
    hardware_tokens_per_s: float | None  # per sequence, on the device as it is


def required_bandwidth(subject: Subject, workload: Workload, tokens_per_s: float,
                       hardware: HardwareSpec | None = None) -> BandwidthRequirement:
    """The bandwidth a decode rate of ``tokens_per_s`` per sequence needs."""
    dense_only(workload, "required bandwidth")
    limits.figure("tokens_per_s", tokens_per_s, limits.STUDY["tokens_per_s"])
    step_s = 1 / tokens_per_s
    operators = decode_ops(subject, workload)
    moved = sum(op.cost.bytes * op.instances for op in operators)
    flops = sum(op.cost.flops * op.instances for op in operators)
    seen = None if hardware is None else engine_device(hardware, workload.engine)  # its engine's ceilings, as analyze
    roofline = None if seen is None else bandwidth_for_time(operators, seen, step_s)
    on_device = None if seen is None else step_sums(operators, seen).time_s
    return BandwidthRequirement(
        model=subject.name, weights=workload.weights_label, batch=workload.batch,
        seq_len=workload.seq_len if isinstance(subject, ModelSpec) else 0, tokens_per_s=tokens_per_s,
        step_time_s=step_s, bytes_per_step=moved, flops_per_step=flops, bytes_per_s=moved / step_s,
        flops_per_s=flops / step_s, hardware=None if hardware is None else hardware.name,
        roofline_bytes_per_s=roofline,
        hardware_bytes_per_s=None if hardware is None else hardware.memory_bytes_per_s,
        meets=None if hardware is None or roofline is None else hardware.memory_bytes_per_s >= roofline,
        hardware_tokens_per_s=None if on_device is None else 1 / on_device,
    )


# --- feasibility of a latency target ----------------------------------------------------------

class FormatVerdict(NamedTuple):
    """One weight format against the latency target."""

    weights: str
    weight_bytes: float
    bytes_per_step: float
    time_per_token_s: float
    tokens_per_s: float  # per sequence
    meets: bool
    memory_bytes: float
    fits: bool | None


class Remedy(NamedTuple):
    """One change that could meet the target, with the time per token it gives."""

    kind: str  # weights, kv-cache, device, speculative, batching
    change: str
    time_per_token_s: float | None
    meets: bool
    figures: dict[str, float]  # the numbers behind it, SI units in the keys (the faces word them)


class SpeculativeOption(NamedTuple):
    """Speculative decoding with ``draft_tokens`` (gamma) drafted per target pass (Leviathan et al. 2023).

    Expected tokens per target pass E = (1 - a^(g+1)) / (1 - a); the pass verifies g + 1 tokens and
    the draft runs g steps, so the time per token is (t_verify + g t_draft) / E.
    """

    draft_tokens: int
    verify_time_s: float
    draft_time_s: float  # per draft step
    iteration_time_s: float
    tokens_per_pass_needed: float
    acceptance_rate_needed: float | None  # None: not reachable even with every draft accepted


class Feasibility(NamedTuple):
    model: str
    hardware: str
    target_time_per_token_s: float
    batch: int
    seq_len: int
    baseline: FormatVerdict
    formats: tuple[FormatVerdict, ...]
    remedies: tuple[Remedy, ...]  # ranked: those that meet first, then by time per token
    speculative: tuple[SpeculativeOption, ...]


def speculative_options(subject: Subject, hardware: HardwareSpec, workload: Workload, target_s: float,
                        draft: Subject | None = None, draft_cost_ratio: float = 0.0) -> tuple[SpeculativeOption, ...]:
    """The acceptance rate each draft length needs to reach ``target_s`` per token.

    The draft step costs ``draft``'s decode step on the same device if given, else ``draft_cost_ratio``
    x the target's step (0: a free draft — the lower bound on the acceptance rate needed).
    """
    dense_only(workload, "speculative decoding")
    if not 0 <= draft_cost_ratio < 1:
        raise InputError(f"draft cost ratio must be >= 0 and < 1, got {draft_cost_ratio!r}")
    step_s = step_time_s(subject, hardware, workload)
    draft_s = step_time_s(draft, hardware, workload) if draft is not None else draft_cost_ratio * step_s
    options = []
    for gamma in range(1, MAX_DRAFT_TOKENS + 1):
        verify_s = step_time_s(subject, hardware, workload, q_len=gamma + 1)
        iteration_s = verify_s + gamma * draft_s
        needed = iteration_s / target_s
        options.append(SpeculativeOption(gamma, verify_s, draft_s, iteration_s, needed,
                                         acceptance_rate_for_tokens(needed, gamma)))
    return tuple(options)


def _verdict(subject: Subject, hardware: HardwareSpec, workload: Workload, target_s: float) -> FormatVerdict:
    operators = decode_ops(subject, workload)
    time_s = step_sums(operators, engine_device(hardware, workload.engine)).time_s
    memory = resident_bytes(subject, workload)
    weights = (float(operators[0].cost.weight_bytes) if isinstance(subject, ParamsOnly)
               else weight_storage_bytes(subject, workload.weight_scheme(subject), workload.activation_format))
    capacity = hardware.available_memory_bytes
    return FormatVerdict(workload.weights_label, weights, sum(op.cost.bytes * op.instances for op in operators),
                         time_s, 1 / time_s, time_s <= target_s, memory,
                         None if capacity is None else memory <= capacity)


def _lower(formats: Sequence[str], than: NumberFormat) -> list[NumberFormat]:
    return [f for f in map(get_format, formats) if f.bits_per_element < than.bits_per_element]


def _fits(subject: Subject, hardware: HardwareSpec, workload: Workload, batch: int | None = None) -> bool:
    capacity = hardware.available_memory_bytes
    return capacity is None or resident_bytes(subject, workload, batch) <= capacity


def _device_remedies(subject: Subject, hardware: HardwareSpec, workload: Workload, target_s: float) -> list[Remedy]:
    """The smallest-bandwidth catalogue devices on which the same model meets the target and fits."""
    found = []
    for name in hardware_names():
        device = load_hardware(name)
        if device.memory_bytes_per_s <= hardware.memory_bytes_per_s:
            continue
        try:
            time_s = step_time_s(subject, device, workload)
        except InputError:  # no compute ceiling for this math
            continue
        if time_s <= target_s and _fits(subject, device, workload):
            found.append((device.memory_bytes_per_s, name, time_s))
    return [Remedy("device", f"device {name}", time_s, True, {"memory_bytes_per_s": bandwidth})
            for bandwidth, name, time_s in sorted(found)[:DEVICES_SHOWN]]


def _speculative_remedy(options: Sequence[SpeculativeOption], target_s: float, free_draft: bool) -> Remedy:
    """The draft length needing the lowest acceptance rate."""
    reachable = [o for o in options if o.acceptance_rate_needed is not None]
    if not reachable:
        return Remedy("speculative", "speculative decoding", None, False, {"draft_tokens": MAX_DRAFT_TOKENS})
    best = min(reachable, key=lambda o: o.acceptance_rate_needed or 0.0)
    figures = {"draft_tokens": best.draft_tokens, "acceptance_rate_needed": best.acceptance_rate_needed or 0.0,
               "tokens_per_pass_needed": best.tokens_per_pass_needed or 0.0,
               "draft_time_s": 0.0 if free_draft else best.draft_time_s}
    return Remedy("speculative", f"speculative decoding, {best.draft_tokens} drafted per pass", target_s, True,
                  figures)


def _batching_remedy(subject: Subject, hardware: HardwareSpec, workload: Workload, target_s: float,
                     baseline: FormatVerdict) -> Remedy:
    """Batching raises throughput, not per-token latency: the largest batch still within the target."""
    if not baseline.meets:
        return Remedy("batching", "batch more sequences", None, False, {})

    def too_slow(batch: int) -> bool:
        return step_time_s(subject, hardware, workload, batch) > target_s or not _fits(subject, hardware, workload,
                                                                                       batch)

    first_bad = smallest_integer(too_slow, MAX_BATCH, lower=workload.batch)
    largest = MAX_BATCH if first_bad is None else first_bad - 1
    time_s = step_time_s(subject, hardware, workload, largest)
    return Remedy("batching", f"batch up to {largest}", time_s, True,
                  {"batch": largest, "tokens_per_s": largest / time_s})


def feasibility(subject: Subject, hardware: HardwareSpec, workload: Workload, target_time_per_token_s: float,
                formats: Sequence[str] = ("fp16", "int8", "int4"), draft: Subject | None = None,
                draft_cost_ratio: float = 0.0) -> Feasibility:
    """Whether each weight format meets a latency target, and what would meet it for the workload's own."""
    dense_only(workload, "feasibility")
    target = limits.figure("target_time_per_token_s", target_time_per_token_s, limits.STUDY["time_per_token_s"])
    if not formats:
        raise InputError("give at least one weight format")
    decode = replace(workload, phase="decode")
    verdicts = tuple(_verdict(subject, hardware, replace(decode, weights=f), target) for f in formats)
    baseline = _verdict(subject, hardware, decode, target)
    remedies: list[Remedy] = []
    for fmt in _lower(REMEDY_WEIGHT_FORMATS, decode.weight_format):
        v = _verdict(subject, hardware, replace(decode, weights=fmt), target)
        remedies.append(Remedy("weights", f"weights {fmt.name}", v.time_per_token_s, v.meets and v.fits is not False,
                               {"weight_bytes": v.weight_bytes}))
    if isinstance(subject, ModelSpec):
        for fmt in _lower(REMEDY_KV_FORMATS, decode.kv_format):
            v = _verdict(subject, hardware, replace(decode, kv_cache=fmt), target)
            remedies.append(Remedy("kv-cache", f"KV cache {fmt.name}", v.time_per_token_s, v.meets,
                                   {"bytes_per_step": v.bytes_per_step}))
    remedies += _device_remedies(subject, hardware, decode, target)
    speculative = speculative_options(subject, hardware, decode, target, draft, draft_cost_ratio)
    if not baseline.meets:
        remedies.append(_speculative_remedy(speculative, target, draft is None and draft_cost_ratio == 0))
    remedies.append(_batching_remedy(subject, hardware, decode, target, baseline))
    remedies.sort(key=lambda r: (not r.meets, math.inf if r.time_per_token_s is None else r.time_per_token_s))
    return Feasibility(subject.name, hardware.name, target, decode.batch,
                       decode.seq_len if isinstance(subject, ModelSpec) else 0, baseline, verdicts, tuple(remedies),
                       speculative)


# --- model scaling (exercise 2.7) -------------------------------------------------------------

class ScalingRow(NamedTuple):
    """One model in one weight format on one device, for side-by-side comparison."""

    model: str
    params: float
    weights: str
    weight_bytes: float
    kv_cache_bytes: float
    memory_bytes: float
    capacity_bytes: float | None
    fits: bool | None
    bytes_per_token: float
    flops_per_token: float
    arithmetic_intensity: float
    time_per_token_s: float
    tokens_per_s: float
    bytes_per_s_for_target: float | None  # memory traffic for the target time per token
    energy_per_token_j: float
    data_movement_share: float


def model_scaling(subjects: Sequence[Subject], hardware: HardwareSpec, workload: Workload,
                  formats: Sequence[str] = ("fp16", "int4"),
                  target_time_per_token_s: float | None = None) -> tuple[ScalingRow, ...]:
    """Capacity, traffic, time and energy per token of each model and format, batch 1 decode, one device."""
    dense_only(workload, "scaling")
    if target_time_per_token_s is not None:
        limits.figure("target_time_per_token_s", target_time_per_token_s, limits.STUDY["time_per_token_s"])
    if not subjects or not formats:
        raise InputError("give at least one model and one weight format")
    rows = []
    for subject in subjects:
        for fmt in formats:
            decode = replace(workload, phase="decode", weights=fmt)
            operators = decode_ops(subject, decode)
            sums = step_sums(operators, engine_device(hardware, workload.engine))
            memory = resident_bytes(subject, decode)
            weights = (float(operators[0].cost.weight_bytes) if isinstance(subject, ParamsOnly)
                       else weight_storage_bytes(subject, decode.weight_scheme(subject), decode.activation_format))
            energy = step_energy(operators, decode.batch, time_s=sums.time_s)
            rows.append(ScalingRow(
                model=subject.name, params=float(subject.params),
                weights=decode.weights_label, weight_bytes=weights, kv_cache_bytes=memory - weights,
                memory_bytes=memory, capacity_bytes=hardware.available_memory_bytes,
                fits=None if hardware.available_memory_bytes is None else memory <= hardware.available_memory_bytes,
                bytes_per_token=sums.bytes / decode.batch, flops_per_token=sums.flops / decode.batch,
                arithmetic_intensity=sums.arithmetic_intensity, time_per_token_s=sums.time_s,
                tokens_per_s=decode.batch / sums.time_s,
                bytes_per_s_for_target=None if target_time_per_token_s is None
                else sums.bytes / target_time_per_token_s,
                energy_per_token_j=energy.energy_per_token_j, data_movement_share=energy.data_movement_share,
            ))
    return tuple(rows)
