"""Deployments: does the model fit, how far it stretches, and how it runs when it does not fit one device.

Every figure comes from ``roofline.analyze`` (the per-operator roofline) plus the closed forms below;
each result is a frozen record in SI units.

- **Memory footprint** (``core/memory.py``, the one every command uses) = weights + KV cache + peak
  activations + a runtime overhead, against what the device lets a model use. ``fit`` adds how far the
  context and the batch stretch, and, under memory pressure (beyond the usable memory, within the
  physical one), the fallback: the split with the same SoC's CPU below.
- **Offload to storage**: the layers that do not fit are read from storage every step at
  ``storage_bytes_per_s`` (UFS, NVMe, SD card), the others stay resident.
- **Split accelerator/CPU** (llama.cpp ``-ngl N``): the last N - 1 layers and the output layer run on
  the accelerator, the rest on the host CPU, each at its own roofline.
- **Tensor parallelism** (Megatron-LM): heads, the MLP width and the vocabulary split N ways; two
  all-reduces per layer; ring all-reduce time 2(N-1)·alpha + 2(N-1)/N · bytes / beta.
- **Pipeline parallelism** (GPipe): contiguous stages of layers; (M + N - 1) slots per step for M
  micro-batches, a bubble of (N - 1) / (M + N - 1).
- **Speculative decoding** (Leviathan et al. 2023): gamma drafted tokens accepted with rate alpha give
  (1 - alpha^(gamma+1)) / (1 - alpha) tokens per target pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from llm_roofline.core import limits
from llm_roofline.core.architecture import Block
from llm_roofline.core.engines import get_engine
from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.memory import (  # re-exported: the footprint lived here before core/memory.py
    DEFAULT_OVERHEAD_BYTES,
    DEFAULT_PREFILL_CHUNK_TOKENS,
    MemoryFootprint,
    context_tokens,
    max_batch,
    max_context,
    memory_footprint,
    peak_activation_bytes,
)
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import Analysis, analyze
from llm_roofline.core.transformer import (
    Workload,
    kv_cache_bytes,
    state_bytes,
    vector_param_bytes,
    weight_storage_bytes,
)
from llm_roofline.inputs.device_files import hardware_names, load_hardware

_NON_LAYER_ROLES = ("embed", "embed.positions", "lm_head")


def _as_dict(record: Any) -> dict[str, Any]:
    return {key: (value.to_dict() if hasattr(value, "to_dict") else value) for key, value in record._asdict().items()}


# --- memory footprint and fit -------------------------------------------------------------------


class FitReport(NamedTuple):
    """The footprint of a workload, and how far the context and the batch stretch on the device."""

    model: str
    hardware: str
    weights: str
    batch: int
    context_tokens: int
    footprint: MemoryFootprint
    max_context_tokens: int  # at this batch; 0 if nothing fits
    max_context_limited_by: str  # "memory", or "model" (its max_position_embeddings)
    model_max_context_tokens: int
    max_batch: int  # at this context; 0 if nothing fits
    usable_memory_bytes: float | None = None  # what the OS lets the model use (footprint.capacity_bytes)
    physical_memory_bytes: float | None = None
    memory_pressure: bool | None = None  # beyond the usable memory, within the physical one
    fallback: LayerSplit | None = None  # under memory pressure, when the limit binds the accelerator alone
    fallback_host_assumed: str = ""  # how the host CPU of the fallback was taken, when the catalogue has none

    def to_dict(self) -> dict[str, object]:
        return _as_dict(self)


def fit(model: ModelSpec, hardware: HardwareSpec, workload: Workload,
        overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
        prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> FitReport:
    """Footprint, fit, and the largest context (at this batch) and batch (at this context) that fit.

    Under memory pressure (the footprint exceeds what the OS lets the model use but not the device's memory),
    and where the limit binds the accelerator alone (``usable_memory_scope = "accelerator"``: macOS's Metal
    working set), the fallback is ``split_layers`` with the same SoC's CPU (``soc_cpu``): as many layers on
    the accelerator as its usable memory holds, the rest on the CPU, which reads the same memory (no link).
    Where the limit binds the whole process (a phone's app, a Jetson's OS share), nothing falls back: the OS
    swaps or ends the program.
    """
    if hardware.available_memory_bytes is None:
        raise InputError(f"hardware '{hardware.name}' has no memory capacity: give one (memory_bytes)")
    _check_runtime(overhead_bytes, prefill_chunk_tokens)
    footprint = memory_footprint(model, hardware, workload, overhead_bytes, prefill_chunk_tokens)
    limit = model.max_position_embeddings
    context = context_tokens(workload)
    max_context_tokens = max_context(model, hardware, workload, overhead_bytes, prefill_chunk_tokens) or 0
    largest_batch = max_batch(model, hardware, workload, overhead_bytes, prefill_chunk_tokens) or 0
    fallback, assumed = None, ""
    if footprint.memory_pressure and hardware.usable_memory_scope == "accelerator" and hardware.kind != "cpu":
        host, assumed = soc_cpu(hardware)
        fallback = split_layers(model, hardware, host, workload, None, None, overhead_bytes, prefill_chunk_tokens)
    return FitReport(
        model=model.name, hardware=hardware.name, weights=workload.weight_scheme(model).name, batch=workload.batch,
        context_tokens=context, footprint=footprint, max_context_tokens=max_context_tokens,
        max_context_limited_by="model" if max_context_tokens == limit else "memory", model_max_context_tokens=limit,
        max_batch=largest_batch, usable_memory_bytes=footprint.capacity_bytes,
        physical_memory_bytes=footprint.physical_memory_bytes, memory_pressure=footprint.memory_pressure,
        fallback=fallback, fallback_host_assumed=assumed,
    )


def soc_cpu(hardware: HardwareSpec) -> tuple[HardwareSpec, str]:
    """The CPU of ``hardware``'s SoC: (the device, "") where the catalogue has it (``<soc>-gpu`` or ``<soc>-npu``
    beside ``<soc>-cpu``), else (an assumed one, the assumption in words).

    The assumed CPU reads the same memory at the accelerator's bandwidth and compute ceilings, with the CPU
    class's efficiency; it is not held to the accelerator's usable memory (its own limit is the device's).
    """
    stem, _, suffix = hardware.name.rpartition("-")
    if suffix in ("gpu", "npu") and f"{stem}-cpu" in hardware_names():
        return load_hardware(f"{stem}-cpu"), ""
    assumed = replace(hardware, name=f"{hardware.name}:cpu", display_name=f"{hardware.display_name}'s CPU (assumed)",
                      kind="cpu", usable_memory_bytes=None, usable_memory_source="", usable_memory_scope="process",
                      efficiency=None, sparse_2_4=False, sparse_2_4_source="")
    return assumed, (f"no CPU of this SoC in the catalogue: taken to read the same memory at "
                     f"{hardware.memory_bytes_per_s / 1e9:g} GB/s, with the {hardware.kind.upper()}'s compute "
                     f"ceilings and the CPU class's efficiency")


def _check_runtime(overhead_bytes: float, prefill_chunk_tokens: int) -> None:
    """The runtime's figures every deployment takes: its own memory, and the prompt chunk it prefills at once."""
    limits.figure("overhead_bytes", overhead_bytes, limits.STUDY["overhead_bytes"])
    limits.count("prefill_chunk_tokens", prefill_chunk_tokens, limits.STUDY["prefill_chunk_tokens"])


# --- per-layer accounting shared by offload and parallelism -------------------------------------


def _layer_split(model: ModelSpec, workload: Workload) -> tuple[float, float]:
    """(stored bytes of one transformer layer, stored bytes outside the layers: embeddings, lm_head, final norm)."""
    scheme = workload.weight_scheme(model)
    total = weight_storage_bytes(model, scheme, workload.activation_format)
    outside = sum(scheme.format_for(t.role).tensor_bytes(t.elements, t.rows, t.columns) * t.instances
                  for t in model.weight_tensors() if t.role in _NON_LAYER_ROLES)
    vectors = scheme.vector_format()
    outside += model.head_vector_params * (vector_param_bytes(workload.activation_format) if vectors is None
                                           else vectors.bytes_per_element)
    return (total - outside) / model.num_layers, outside


def _layer_time(result: Analysis) -> float:
    """Time of one transformer layer's operators in an analysis (the mean over layers)."""
    return sum(op.time_s * op.count for op in result.ops if op.name.startswith("layer.")) / result.model.num_layers


def _op_time(result: Analysis, names: tuple[str, ...]) -> float:
    return sum(op.time_s * op.count for op in result.ops if op.name in names)


# --- offload ------------------------------------------------------------------------------------


class StorageOffload(NamedTuple):
    """Layers that do not fit are read from storage every step."""

    model: str
    hardware: str
    weights: str
    storage_bytes_per_s: float
    feasible: bool  # False: the KV cache, activations and non-layer weights alone exceed the memory
    resident_layers: int
    streamed_layers: int
    streamed_bytes: float  # per step
    roofline_time_s: float  # the step from memory, all layers
    storage_time_s: float
    time_s: float  # no overlap: roofline + storage (a page fault waits for its read)
    overlapped_time_s: float  # perfect prefetch: max(roofline, storage)
    tokens_per_s: float
    overlapped_tokens_per_s: float
    footprint: MemoryFootprint  # of the whole model, as if resident

    def to_dict(self) -> dict[str, object]:
        return _as_dict(self)


def offload_to_storage(model: ModelSpec, hardware: HardwareSpec, workload: Workload,
                       storage_bytes_per_s: float | None = None,
                       overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
                       prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> StorageOffload:
    """Stream the layers that do not fit from storage: the resident ones stay, the rest are read per step.

    What fits: usable memory - KV cache - activations - overhead - the weights outside the layers
    (embeddings, lm_head), in whole layers. Assumes the engine pins the resident layers; an LRU page
    cache over an mmap-ed file that is larger than memory evicts every layer before its reuse, so it
    rereads the whole model each step.
    """
    bandwidth = storage_bytes_per_s or hardware.storage_bytes_per_s
    if bandwidth is None:
        raise InputError(f"hardware '{hardware.name}' has no storage bandwidth: give one (storage_bytes_per_s)")
    limits.figure("storage_bytes_per_s", bandwidth, limits.DEVICE["memory_bytes_per_s"])
    _check_runtime(overhead_bytes, prefill_chunk_tokens)
    footprint = memory_footprint(model, hardware, workload, overhead_bytes, prefill_chunk_tokens)
    if footprint.capacity_bytes is None:
        raise InputError(f"hardware '{hardware.name}' has no memory capacity: give one (memory_bytes)")
    layer_bytes, outside_bytes = _layer_split(model, workload)
    room = (footprint.capacity_bytes - footprint.kv_cache_bytes - footprint.state_bytes - footprint.activation_bytes
            - overhead_bytes)
    room -= outside_bytes
    resident = max(0, min(model.num_layers, math.floor(room / layer_bytes))) if room > 0 else 0
    streamed = model.num_layers - resident
    streamed_bytes = streamed * layer_bytes
    roofline_time = analyze(model, hardware, workload).totals.time_s
    storage_time = streamed_bytes / bandwidth
    time_s = roofline_time + storage_time
    overlapped = max(roofline_time, storage_time)
    return StorageOffload(
        model=model.name, hardware=hardware.name, weights=workload.weight_scheme(model).name,
        storage_bytes_per_s=bandwidth, feasible=room >= 0, resident_layers=resident, streamed_layers=streamed,
        streamed_bytes=streamed_bytes, roofline_time_s=roofline_time, storage_time_s=storage_time,
        time_s=time_s, overlapped_time_s=overlapped, tokens_per_s=workload.tokens / time_s,
        overlapped_tokens_per_s=workload.tokens / overlapped, footprint=footprint,
    )


@dataclass(frozen=True, slots=True)
class Link:
    """A link between two devices: bandwidth, and the latency of one message (alpha)."""

    bytes_per_s: float
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        limits.figure("bytes_per_s", self.bytes_per_s, limits.STUDY["link_bytes_per_s"], "link: ")
        limits.figure("latency_s", self.latency_s, limits.STUDY["link_latency_s"], "link: ")

    def transfer_time_s(self, nbytes: float) -> float:
        """One message: alpha + bytes / beta."""
        return self.latency_s + nbytes / self.bytes_per_s


class LayerSplit(NamedTuple):
    """llama.cpp's -ngl N: the last N - 1 layers and the output layer on the accelerator, the rest on the host."""

    model: str
    accelerator: str
    host: str
    weights: str
    gpu_layers: int  # the -ngl value
    accelerator_layers: int  # transformer layers on the accelerator
    host_layers: int
    output_on_accelerator: bool
    accelerator_time_s: float
    host_time_s: float
    transfer_time_s: float
    time_s: float
    tokens_per_s: float
    accelerator_bytes: float  # weights, KV cache, activations and overhead held on the accelerator
    accelerator_capacity_bytes: float | None
    accelerator_fits: bool | None
    host_bytes: float
    host_capacity_bytes: float | None
    host_fits: bool | None
    # Each part's time scaled by its device's expected / roofline time of the whole step (the efficiency model)
    expected_time_s: float
    expected_tokens_per_s: float

    def to_dict(self) -> dict[str, object]:
        return _as_dict(self)


def split_layers(model: ModelSpec, accelerator: HardwareSpec, host: HardwareSpec, workload: Workload,
                 gpu_layers: int | None = None, link: Link | None = None,
                 overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
                 prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> LayerSplit:
    """Run ``gpu_layers`` (llama.cpp -ngl) on the accelerator and the rest on the host CPU.

    llama.cpp numbers the output layer n_layer and offloads the layers from max(n_layer + 1 - N, 0)
    on (src/llama-model.cpp, ``i_gpu_start``); the input embedding always stays on the CPU. Each
    layer's KV cache lives with the layer. ``gpu_layers=None``: the largest N whose share fits the
    accelerator. Activations cross the link once into the accelerator and the logits once back. The expected
    time scales each part by its device's expected over roofline time for the whole step; an engine that does
    not run on the host's kind leaves the host its class's efficiency.
    """
    _check_runtime(overhead_bytes, prefill_chunk_tokens)
    layers = model.num_layers
    if gpu_layers is None:
        fitting = [n for n in range(layers + 2) if _split(model, accelerator, host, workload, n, link,
                                                          overhead_bytes, prefill_chunk_tokens).accelerator_fits]
        gpu_layers = max(fitting) if fitting else 0
    limits.count("gpu_layers", gpu_layers, limits.STUDY["gpu_layers"])
    return _split(model, accelerator, host, workload, gpu_layers, link, overhead_bytes, prefill_chunk_tokens)


def _split(model: ModelSpec, accelerator: HardwareSpec, host: HardwareSpec, workload: Workload, gpu_layers: int,
           link: Link | None, overhead_bytes: float, prefill_chunk_tokens: int) -> LayerSplit:
    layers = model.num_layers
    on_accelerator = max(0, min(gpu_layers, layers + 1) - 1)
    output_on_accelerator = gpu_layers >= 1
    on_host = workload
    if workload.engine is not None and host.kind not in get_engine(workload.engine).kinds:
        on_host = replace(workload, engine=None)
    fast, slow = analyze(model, accelerator, workload), analyze(model, host, on_host)
    fast_layer, slow_layer = _layer_time(fast), _layer_time(slow)
    output_ops = ("final_norm", "lm_head")
    output_time = _op_time(fast if output_on_accelerator else slow, output_ops)
    accelerator_time = on_accelerator * fast_layer + (output_time if output_on_accelerator else 0.0)
    host_time = ((layers - on_accelerator) * slow_layer + _op_time(slow, ("embed",))
                 + (0.0 if output_on_accelerator else output_time))
    act = workload.activation_format.bytes_per_element
    transfer = 0.0
    if link is not None and output_on_accelerator:
        logits_tokens = workload.tokens if workload.lm_head == "all" else workload.batch
        transfer = (link.transfer_time_s(workload.tokens * model.hidden_size * act)
                    + link.transfer_time_s(logits_tokens * model.vocab_size * act))
    time_s = accelerator_time + host_time + transfer
    expected_s = (accelerator_time * fast.totals.expected_time_s / fast.totals.time_s
                  + host_time * slow.totals.expected_time_s / slow.totals.time_s + transfer)
    layer_bytes, outside_bytes = _layer_split(model, workload)
    scheme = workload.weight_scheme(model)
    output_bytes = sum(scheme.format_for(t.role).tensor_bytes(t.elements, t.rows, t.columns)
                       for t in model.weight_tensors() if t.role == "lm_head")
    kv_per_layer = (kv_cache_bytes(model, workload.batch, context_tokens(workload), workload.kv_format)
                    + state_bytes(model, workload.batch, workload.kv_format)) / layers
    activations = peak_activation_bytes(model, workload, prefill_chunk_tokens)
    accelerator_bytes = (on_accelerator * (layer_bytes + kv_per_layer)
                         + (output_bytes if output_on_accelerator else 0.0) + activations + overhead_bytes)
    host_bytes = ((layers - on_accelerator) * (layer_bytes + kv_per_layer) + outside_bytes
                  - (output_bytes if output_on_accelerator else 0.0) + activations)
    fast_capacity, slow_capacity = accelerator.available_memory_bytes, host.available_memory_bytes
    return LayerSplit(
        model=model.name, accelerator=accelerator.name, host=host.name, weights=scheme.name, gpu_layers=gpu_layers,
        accelerator_layers=on_accelerator, host_layers=layers - on_accelerator,
        output_on_accelerator=output_on_accelerator, accelerator_time_s=accelerator_time, host_time_s=host_time,
        transfer_time_s=transfer, time_s=time_s, tokens_per_s=workload.tokens / time_s,
        accelerator_bytes=accelerator_bytes, accelerator_capacity_bytes=fast_capacity,
        accelerator_fits=None if fast_capacity is None else accelerator_bytes <= fast_capacity,
        host_bytes=host_bytes, host_capacity_bytes=slow_capacity,
        host_fits=None if slow_capacity is None else host_bytes <= slow_capacity,
        expected_time_s=expected_s, expected_tokens_per_s=workload.tokens / expected_s,
    )


# --- multi-device -------------------------------------------------------------------------------


def ring_all_reduce_time_s(nbytes: float, devices: int, link: Link) -> float:
    """Ring all-reduce of ``nbytes`` over ``devices``: 2(N-1) steps of alpha + bytes/N/beta.

    Thakur, Rabenseifner and Gropp, "Optimization of Collective Communication Operations in MPICH"
    (IJHPCA 2005), ring (bandwidth-optimal) reduce-scatter + all-gather: 2(N-1)·alpha + 2(N-1)/N·n·beta.
    """
    if devices == 1:
        return 0.0
    return 2 * (devices - 1) * link.latency_s + 2 * (devices - 1) / devices * nbytes / link.bytes_per_s


def ring_all_gather_time_s(nbytes: float, devices: int, link: Link) -> float:
    """Ring all-gather of ``nbytes`` in total: (N-1)·alpha + (N-1)/N·n·beta (same source)."""
    if devices == 1:
        return 0.0
    return (devices - 1) * link.latency_s + (devices - 1) / devices * nbytes / link.bytes_per_s


class TensorParallel(NamedTuple):
    """One step with every layer split over N devices (Megatron-LM)."""

    model: str
    hardware: str
    weights: str
    devices: int
    compute_time_s: float  # one device's share of the step (its roofline)
    all_reduces: int
    all_reduce_bytes: float  # each
    communication_time_s: float
    time_s: float
    tokens_per_s: float
    single_device_time_s: float  # the whole model on one device (whether or not it fits)
    speedup: float
    footprint_per_device: MemoryFootprint

    def to_dict(self) -> dict[str, object]:
        return _as_dict(self)


def tensor_parallel_shard(model: ModelSpec, devices: int) -> ModelSpec:
    """One device's share: 1/N of the heads, of the MLP width and of the vocabulary; KV heads split, or
    replicated when there are fewer than N (as vLLM does)."""
    def shard(block: Block) -> Block:
        a, m = block.attention, block.mlp
        if a is None or m is None or block.mixer is not None:
            raise InputError(f"tensor parallelism is modelled for attention and MLP layers; {model.name} has "
                             f"{block.mixer_kind} layers" + ("" if m is not None else " without an MLP"))
        if a.heads % devices or m.intermediate_size % devices or m.shared_intermediate_size % devices:
            raise InputError(f"tensor parallelism over {devices} devices needs the heads ({a.heads}) and the "
                             f"MLP width ({m.intermediate_size}) to be multiples of {devices}")
        if a.kv_heads % devices and devices % a.kv_heads:
            raise InputError(f"tensor parallelism over {devices} devices needs the KV heads ({a.kv_heads}) to "
                             f"divide, or be divided by, {devices}")
        return replace(block, attention=replace(a, heads=a.heads // devices, kv_heads=max(a.kv_heads // devices, 1)),
                       mlp=replace(m, intermediate_size=m.intermediate_size // devices,
                                   shared_intermediate_size=m.shared_intermediate_size // devices))

    return model.map_blocks(shard, name=f"{model.name}/tp{devices}", vocab_size=-(-model.vocab_size // devices))


def tensor_parallel(model: ModelSpec, hardware: HardwareSpec, workload: Workload, devices: int, link: Link,
                    overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
                    prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> TensorParallel:
    """Tensor parallelism over ``devices`` identical devices joined by ``link``.

    Per step: each device runs its shard (``tensor_parallel_shard``); 2 all-reduces per layer of the
    B·q·d activations (after attention and after the MLP, Shoeybi et al. 2019, Megatron-LM, section 3)
    plus one after the vocabulary-parallel embedding, and an all-gather of the logits. No overlap of
    communication with compute.
    """
    limits.count("devices", devices, limits.STUDY["devices"])
    _check_runtime(overhead_bytes, prefill_chunk_tokens)
    shard = tensor_parallel_shard(model, devices)
    compute = analyze(shard, hardware, workload).totals.time_s
    act = workload.activation_format.bytes_per_element
    activation_bytes = workload.tokens * model.hidden_size * act
    logits_tokens = workload.tokens if workload.lm_head == "all" else workload.batch
    all_reduces = 2 * model.num_layers + 1
    communication = (all_reduces * ring_all_reduce_time_s(activation_bytes, devices, link)
                     + ring_all_gather_time_s(logits_tokens * model.vocab_size * act, devices, link))
    single = analyze(model, hardware, workload).totals.time_s
    time_s = compute + communication
    return TensorParallel(
        model=model.name, hardware=hardware.name, weights=workload.weight_scheme(model).name, devices=devices,
        compute_time_s=compute, all_reduces=all_reduces if devices > 1 else 0, all_reduce_bytes=activation_bytes,
        communication_time_s=communication, time_s=time_s, tokens_per_s=workload.tokens / time_s,
        single_device_time_s=single, speedup=single / time_s,
        footprint_per_device=memory_footprint(shard, hardware, workload, overhead_bytes, prefill_chunk_tokens),
    )


class PipelineStage(NamedTuple):
    layers: int
    time_s: float  # one micro-batch through the stage
    memory_bytes: float
    fits: bool | None


class PipelineParallel(NamedTuple):
    """One step with the layers cut into N contiguous stages, M micro-batches in flight (GPipe)."""

    model: str
    hardware: str
    weights: str
    devices: int
    micro_batches: int
    stages: tuple[PipelineStage, ...]
    hop_time_s: float  # one micro-batch's activations to the next stage
    slot_time_s: float  # slowest stage + hop
    time_s: float  # (M + N - 1) slots
    bubble_fraction: float  # (N - 1) / (M + N - 1)
    tokens_per_s: float
    steady_decode_tokens_per_s: float  # decode with the pipe kept full: B tokens per max(M, N) slots
    single_device_time_s: float
    fits: bool | None

    def to_dict(self) -> dict[str, object]:
        out = self._asdict()
        out["stages"] = [stage._asdict() for stage in self.stages]
        return out


def pipeline_parallel(model: ModelSpec, hardware: HardwareSpec, workload: Workload, devices: int, link: Link,
                      micro_batches: int = 1, overhead_bytes: float = DEFAULT_OVERHEAD_BYTES,
                      prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> PipelineParallel:
    """Pipeline parallelism over ``devices`` joined by ``link``, the batch split into ``micro_batches``.

    Stages get contiguous layers (the first L mod N stages one more); the first holds the embedding,
    the last the final norm and lm_head. A slot is the slowest stage's time for one micro-batch plus
    one hop (alpha + b·q·d·act / beta; for decode the last hop returns the new token to the first
    stage). One step, filled and drained: (M + N - 1) slots (Huang et al. 2019, GPipe, bubble
    (N - 1)/(M + N - 1)). Decode with the pipe kept full advances every micro-batch once per
    max(M, N) slots.
    """
    limits.count("devices", devices, limits.STUDY["devices"])
    limits.count("micro_batches", micro_batches, limits.WORKLOAD["batch"])
    _check_runtime(overhead_bytes, prefill_chunk_tokens)
    if devices > model.num_layers:
        raise InputError(f"{devices} pipeline stages need at least as many layers; the model has {model.num_layers}")
    if workload.batch % micro_batches:
        raise InputError(f"the batch ({workload.batch}) must be a multiple of micro_batches ({micro_batches})")
    micro = replace(workload, batch=workload.batch // micro_batches)
    result = analyze(model, hardware, micro)
    layer_time = _layer_time(result)
    embed_time = _op_time(result, ("embed",))
    output_time = _op_time(result, ("final_norm", "lm_head"))
    layer_bytes, _ = _layer_split(model, workload)
    scheme = workload.weight_scheme(model)
    role_bytes = {t.role: scheme.format_for(t.role).tensor_bytes(t.elements, t.rows, t.columns) * t.instances
                  for t in model.weight_tensors() if t.role in _NON_LAYER_ROLES}
    first_bytes = role_bytes.get("embed", 0.0) + role_bytes.get("embed.positions", 0.0)
    last_bytes = role_bytes.get("lm_head", 0.0)
    kv_bytes = (kv_cache_bytes(model, workload.batch, context_tokens(workload), workload.kv_format)
                + state_bytes(model, workload.batch, workload.kv_format))
    kv_per_layer = kv_bytes / model.num_layers
    activations = peak_activation_bytes(model, micro, prefill_chunk_tokens)
    capacity = hardware.available_memory_bytes
    base, extra = divmod(model.num_layers, devices)
    stages = []
    for index in range(devices):
        layers = base + (index < extra)
        time_s = layers * layer_time + (embed_time if index == 0 else 0.0) + (
            output_time if index == devices - 1 else 0.0)
        memory = (layers * (layer_bytes + kv_per_layer) + (first_bytes if index == 0 else 0.0)
                  + (last_bytes if index == devices - 1 else 0.0) + activations + overhead_bytes)
        stages.append(PipelineStage(layers, time_s, memory, None if capacity is None else memory <= capacity))
    act = workload.activation_format.bytes_per_element
    hop = link.transfer_time_s(micro.tokens * model.hidden_size * act) if devices > 1 else 0.0
    slot = max(stage.time_s for stage in stages) + hop
    time_s = (micro_batches + devices - 1) * slot
    fits = None if capacity is None else all(stage.fits for stage in stages)
    return PipelineParallel(
        model=model.name, hardware=hardware.name, weights=scheme.name, devices=devices,
        micro_batches=micro_batches, stages=tuple(stages), hop_time_s=hop, slot_time_s=slot, time_s=time_s,
        bubble_fraction=(devices - 1) / (micro_batches + devices - 1), tokens_per_s=workload.tokens / time_s,
        steady_decode_tokens_per_s=workload.tokens / (max(micro_batches, devices) * slot),
        single_device_time_s=analyze(model, hardware, workload).totals.time_s, fits=fits,
    )


# --- speculative decoding -----------------------------------------------------------------------


def expected_tokens_per_target_pass(acceptance_rate: float, draft_tokens: int) -> float:
    """Tokens one target pass yields with ``draft_tokens`` (gamma) drafted, each accepted with
    probability ``acceptance_rate`` (alpha): (1 - alpha^(gamma+1)) / (1 - alpha); gamma + 1 at alpha = 1.

    Leviathan, Kalman and Matias, "Fast Inference from Transformers via Speculative Decoding",
    ICML 2023 (arXiv:2211.17192), equation (1); acceptances are i.i.d. with rate alpha.
    """
    if not 0 <= acceptance_rate <= 1:
        raise InputError(f"acceptance rate must be between 0 and 1, got {acceptance_rate!r}")
    limits.count("draft_tokens", draft_tokens, limits.STUDY["draft_tokens"])
    if acceptance_rate == 1:
        return float(draft_tokens + 1)
    return (1 - acceptance_rate ** (draft_tokens + 1)) / (1 - acceptance_rate)


class SpeculativeDecoding(NamedTuple):
    """A draft model proposing gamma tokens, the target verifying them in one pass."""

    target: str
    draft: str
    hardware: str
    draft_tokens: int
    acceptance_rate: float
    tokens_per_target_pass: float
    draft_step_time_s: float
    target_step_time_s: float  # plain decode, one token
    verify_time_s: float  # the target on gamma + 1 tokens
    cycle_time_s: float  # gamma draft steps + one verification
    time_per_token_s: float
    tokens_per_s: float
    baseline_tokens_per_s: float
    speedup: float

    def to_dict(self) -> dict[str, object]:
        return self._asdict()


def _speculative_times(target: ModelSpec, draft: ModelSpec, hardware: HardwareSpec, workload: Workload,
                       draft_tokens: int, draft_workload: Workload | None) -> tuple[float, float, float, float]:
    """Seconds of a draft step, a plain target step, the verification, and a whole cycle (gamma draft
    steps and one verification)."""
    if workload.phase != "decode" or workload.new_tokens != 1:
        raise InputError("speculative decoding applies to decode steps of one new token")
    limits.count("draft_tokens", draft_tokens, limits.STUDY["draft_tokens"])
    draft_step = analyze(draft, hardware, draft_workload or workload).totals.time_s
    target_step = analyze(target, hardware, workload).totals.time_s
    verify = analyze(target, hardware, replace(workload, new_tokens=draft_tokens + 1)).totals.time_s
    return draft_step, target_step, verify, draft_tokens * draft_step + verify


def speculative_decoding(target: ModelSpec, draft: ModelSpec, hardware: HardwareSpec, workload: Workload,
                         draft_tokens: int, acceptance_rate: float,
                         draft_workload: Workload | None = None) -> SpeculativeDecoding:
    """Speed of speculative decoding: a cycle is gamma draft decode steps and one target step on gamma + 1
    tokens (both from the roofline), yielding ``expected_tokens_per_target_pass`` tokens.

    With the verification costing one plain target step this is Leviathan et al.'s speedup
    (1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1)), c = draft / target step time (Theorem 3.8).
    """
    tokens = expected_tokens_per_target_pass(acceptance_rate, draft_tokens)
    draft_step, target_step, verify, cycle = _speculative_times(target, draft, hardware, workload, draft_tokens,
                                                                draft_workload)
    per_token = cycle / tokens
    return SpeculativeDecoding(
        target=target.name, draft=draft.name, hardware=hardware.name, draft_tokens=draft_tokens,
        acceptance_rate=acceptance_rate, tokens_per_target_pass=tokens, draft_step_time_s=draft_step,
        target_step_time_s=target_step, verify_time_s=verify, cycle_time_s=cycle, time_per_token_s=per_token,
        tokens_per_s=workload.batch / per_token, baseline_tokens_per_s=workload.batch / target_step,
        speedup=target_step / per_token,
    )


def acceptance_rate_for_tokens(tokens_per_pass: float, draft_tokens: int) -> float | None:
    """The alpha at which a target pass yields ``tokens_per_pass`` tokens: the root of
    1 + alpha + ... + alpha^gamma = tokens, by bisection (the sum increases with alpha).

    0 when one token a pass is enough; None when even gamma + 1 tokens are too few.
    """
    if tokens_per_pass <= 1:
        return 0.0
    if tokens_per_pass > draft_tokens + 1:
        return None
    low, high = 0.0, 1.0
    for _ in range(200):
        middle = (low + high) / 2
        if expected_tokens_per_target_pass(middle, draft_tokens) < tokens_per_pass:
            low = middle
        else:
            high = middle
        if high - low < 1e-15:
            break
    return high


class AcceptanceNeeded(NamedTuple):
    """The acceptance rate speculative decoding needs to reach a time per token."""

    target: str
    draft: str
    hardware: str
    draft_tokens: int
    target_time_per_token_s: float
    cycle_time_s: float
    tokens_per_pass_needed: float
    acceptance_rate: float | None  # None: unreachable with this draft length
    baseline_time_per_token_s: float

    def to_dict(self) -> dict[str, object]:
        return self._asdict()


def required_acceptance_rate(target: ModelSpec, draft: ModelSpec, hardware: HardwareSpec, workload: Workload,
                             draft_tokens: int, time_per_token_s: float,
                             draft_workload: Workload | None = None) -> AcceptanceNeeded:
    """The smallest alpha for which a cycle's expected tokens bring the time per token to the target."""
    limits.figure("time_per_token_s", time_per_token_s, limits.STUDY["time_per_token_s"])
    _, target_step, _, cycle = _speculative_times(target, draft, hardware, workload, draft_tokens, draft_workload)
    # Time per token = cycle / tokens per pass, and the batch decodes together: per sequence.
    needed = cycle / time_per_token_s
    return AcceptanceNeeded(
        target=target.name, draft=draft.name, hardware=hardware.name, draft_tokens=draft_tokens,
        target_time_per_token_s=time_per_token_s, cycle_time_s=cycle, tokens_per_pass_needed=needed,
        acceptance_rate=acceptance_rate_for_tokens(needed, draft_tokens),
        baseline_time_per_token_s=target_step,
    )
