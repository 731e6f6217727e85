"""The efficiency model: from the roofline bound to the time a real engine takes.

The roofline (``roofline.py``) is an upper bound on speed: every operator at its device's peak
bandwidth or peak compute, nothing else. Real engines reach a fraction of either ceiling and pay a
fixed cost per kernel and per step. The expected time of one operator instance is

    op_time_s = max(compute_time_s / (compute_efficiency x d),  memory_time_s / bandwidth_efficiency)
                + overhead_per_op_s
    d         = dequant_compute_factor for a matmul whose weights are stored in fewer bits than the
                activations it multiplies (unpacked inside the kernel), else 1

and of a step, ``overhead_per_step_s + sum over operators of count x op_time_s``. ``compute_time_s``
(FLOPs / peak) and ``memory_time_s`` (bytes / bandwidth) are the roofline's own per-instance figures,
so the bound is the special case of efficiencies 1 and overheads 0. Five parameters, each a meaning:

- ``bandwidth_efficiency``: the fraction of the memory bandwidth memory-bound kernels achieve (what
  decode at batch 1 is made of); peers call it MBU or HBM efficiency.
- ``compute_efficiency``: the fraction of the compute ceiling compute-bound kernels achieve (prefill's
  large matrix products); peers call it MFU or FLOPs efficiency.
- ``dequant_compute_factor``: what is left of that fraction when a compute-bound matmul unpacks
  quantized weights (Q4_0, Q4_K, ... under fp16 math) as it goes.
- ``overhead_per_op_s``: a fixed cost per operator instance (kernel launch or dispatch,
  synchronisation, the tail of a small kernel), the same for a tiny norm as for a large GEMV.
- ``overhead_per_step_s``: a fixed cost per forward step (graph build, sampling, host round trip).

Which parameters a device gets: its own ``[efficiency]`` table when it has one (``llm-roofline
calibrate`` writes it into a device profile); else, when an engine is named (``Workload.engine``,
``--engine``: ``engines.py``), that engine's figures, fitted on the measurements made with it; else the
defaults of its class — ``HardwareSpec.kind``: gpu, cpu or npu. Both are stored in
``data/efficiency.toml`` with the command that produced them. An engine that runs on several kinds of
unit has a runtime per kind (LiteRT: XNNPACK on CPU cores, ML Drift on GPUs; ExecuTorch: XNNPACK on CPU
cores, QNN on the Hexagon), so its figures are fitted and looked up per kind (``efficiency_key``).

An engine that replays a step's kernels as a captured graph (llama.cpp's CUDA backend: CUDA graphs)
does so only for steps of few positions (``graph_max_tokens`` in ``data/engines.toml``: one); a larger
step launches every kernel from the CPU, at the cost per kernel fitted for an engine that never captures
graphs (``ungraphed_launches``: llama.cpp's 2023 CUDA builds), ``launch_overhead_s``.

The per-operator overhead is paid per **kernel**: an engine whose fusion level is ``elementwise`` (MLX,
MLC, vLLM, TensorRT-LLM, QNN) runs norms, activations, RoPE and residual adds inside a neighbouring
kernel, so those operators add their roofline time but launch nothing (``engines.kernel_flags``).

This module is the one place the expected time is computed: ``analyze`` reports it as
``totals.expected_time_s``, and ``validate`` and ``calibrate`` fit (``features/fidelity/fitting.py``) and
check it. The parameter record, ``EfficiencyParams``, is part of the device record (``hardware.py``).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple

from llm_roofline.core.engines import check_engine_on, get_engine, kernel_flags
from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import EfficiencyParams, params_from_dict
from llm_roofline.core.transformer import over_operators, weight_role
from llm_roofline.core.units import Array, Scalar, is_array

if TYPE_CHECKING:
    import numpy as np

    from llm_roofline.core.formats import NumberFormat, WeightScheme
    from llm_roofline.core.hardware import HardwareSpec
    from llm_roofline.core.roofline import OpResult
    from llm_roofline.core.transformer import StepPlan

@functools.cache
def defaults_table() -> dict[str, Any]:
    """``data/efficiency.toml`` as parsed: ``source``, ``command`` and one ``[class.<kind>]`` per class."""
    return tomllib.loads(resources.files("llm_roofline").joinpath("data/efficiency.toml").read_text())


@functools.cache
def default_params(device_class: str) -> EfficiencyParams:
    """The fitted defaults of a device class (gpu, cpu, npu)."""
    classes = defaults_table().get("class", {})
    if device_class not in classes:
        raise InputError(f"no efficiency defaults for device class {device_class!r}; known: {', '.join(classes)}")
    entry = classes[device_class]
    params = params_from_dict(entry, f"data/efficiency.toml [class.{device_class}]")
    return replace(params, source=f"class '{device_class}' defaults, data/efficiency.toml: {entry.get('basis', '')}")


def efficiency_key(engine: str, device_kind: str | None = None) -> str:
    """The name an engine's fitted figures go by (``[engine."<key>"]`` of data/efficiency.toml, the fit's
    engines): the engine's own name where it runs on one kind of unit, else ``<engine>/<kind>`` (``litert/cpu``,
    ``litert/gpu``): one runtime per kind, each with its own figures. ``device_kind`` None: the engine's only
    kind (an engine of several kinds then has no figures under its bare name)."""
    kinds = get_engine(engine).kinds
    if len(kinds) == 1 or device_kind is None:
        return engine
    return f"{engine}/{device_kind}"


@functools.cache
def engine_params(engine: str, device_kind: str | None = None) -> EfficiencyParams | None:
    """An engine's fitted figures on a kind of device (``efficiency_key``), or None where it has too few
    measurements there to fit (it then gets its device class's)."""
    key = efficiency_key(engine, device_kind)
    entry = defaults_table().get("engine", {}).get(key)
    if entry is None:
        return None
    params = params_from_dict(entry, f"data/efficiency.toml [engine.{key}]")
    where = "" if key == engine else f" on {device_kind} devices"
    return replace(params, source=f"engine '{engine}'{where}, data/efficiency.toml: {entry.get('basis', '')}")


def device_class(hardware: HardwareSpec) -> str:
    """The class whose defaults a device gets: its kind (gpu, cpu or npu)."""
    return hardware.kind


def params_for(hardware: HardwareSpec, engine: str | None = None, step_tokens: int = 1) -> EfficiencyParams:
    """A device's own fitted parameters (a calibrated profile), else the named engine's, else its class's
    defaults. An engine that does not run on the device's kind is an input error. ``step_tokens``: the
    positions the step computes (batch x new positions), which decide whether an engine that captures
    graphs replays this step as one (``launch_params``)."""
    if hardware.efficiency is not None:
        return hardware.efficiency
    if engine is not None:
        check_engine_on(engine, hardware.kind, hardware.name)
        fitted = engine_params(engine, hardware.kind)
        if fitted is not None:
            return launch_params(fitted, engine, step_tokens, engine_params)
    return default_params(device_class(hardware))


def launch_params(params: EfficiencyParams, engine: str | None, step_tokens: int,
                  fitted: Callable[[str], EfficiencyParams | None]) -> EfficiencyParams:
    """An engine's figures ``params`` for a step of ``step_tokens`` positions: as they are, or with the cost per
    kernel ``launch_overhead_s`` gives where the step launches its kernels without a graph."""
    per_op = launch_overhead_s(engine, step_tokens, fitted)
    if engine is None or per_op is None:
        return params
    return replace(params, overhead_per_op_s=per_op,
                   source=f"{params.source}; {per_op * 1e6:.3g} us per kernel, engine "
                          f"'{get_engine(engine).ungraphed_launches}': a step of {step_tokens} positions launches its "
                          f"kernels without a graph")


def launch_overhead_s(engine: str | None, step_tokens: int,
                      fitted: Callable[[str], EfficiencyParams | None]) -> float | None:
    """The cost per kernel a step of ``step_tokens`` positions pays whatever the engine's own figure, or None
    (its own). An engine that replays steps as captured graphs does so only up to its ``graph_max_tokens``
    (llama.cpp's CUDA backend disables CUDA graphs above one position); a larger step launches each kernel
    from the CPU, at the cost per kernel of the engine its ``ungraphed_launches`` names, as ``fitted`` (engine
    name -> figures, or None) gives it; that engine without figures: None."""
    spec = None if engine is None else get_engine(engine)
    if spec is None or spec.ungraphed_launches is None or not spec.launches_ungraphed(step_tokens):
        return None
    ungraphed = fitted(spec.ungraphed_launches)
    return None if ungraphed is None else ungraphed.overhead_per_op_s


# --- the formula ------------------------------------------------------------------------------------

def op_time_s(compute_time_s: Array, memory_time_s: Array, dequantizes: Array | Scalar,
              params: Sequence[Array | Scalar], kernels: Array | Scalar = 1) -> Array:
    """The expected time of one operator instance (numbers, or numpy arrays that broadcast).

    ``params``: the five parameters in ``PARAMETERS`` order; ``dequantizes``: 1 for a matmul that
    unpacks quantized weights, else 0; ``kernels``: 1 for an operator that is a kernel launch of its own,
    0 for one the engine runs inside a neighbour. (``roofline.analyze``'s compiled step writes the same
    lines for plain numbers.)
    """
    eta_m, eta_c, dequant, per_op, _ = params
    compute_efficiency = eta_c + dequantizes * (eta_c * (dequant - 1))  # eta_c x (dequant if dequantizes else 1)
    compute, memory = compute_time_s / compute_efficiency, memory_time_s / eta_m
    if not is_array(compute) and not is_array(memory) and not is_array(kernels):
        return max(compute, memory) + per_op * kernels
    import numpy as np

    time_s: Array = np.maximum(compute, memory) + per_op * kernels  # stubs: Any
    return time_s


class StepCost(NamedTuple):
    """What the expected time of a step depends on: per operator, its instances, its roofline times
    and whether it unpacks quantized weights (tuples, or numpy arrays over the operators)."""

    counts: Sequence[int] | Array
    compute_time_s: Sequence[float] | Array  # per instance, at the device's peak
    memory_time_s: Sequence[float] | Array  # per instance, at the device's bandwidth
    dequantizes: Sequence[int] | Array  # 1 or 0
    kernels: Sequence[int] | Array = ()  # 1: a kernel launch of its own, 0: fused into a neighbour; (): all 1


def dequantizes(weight_format: NumberFormat | None, activations: NumberFormat) -> int:
    """1 when a matmul's weights are stored in fewer bits per element than the activations they
    multiply (the kernel unpacks them as it goes), else 0; ``None``: the operator reads no weights."""
    return int(weight_format is not None and weight_format.value_bits < activations.bits_per_element)


@functools.lru_cache(maxsize=256)
def plan_kernels(plan: StepPlan, fusion: str) -> np.ndarray:
    """``engines.kernel_flags`` for each operator of a step plan, as floats (memoized)."""
    import numpy as np

    flags = np.array(kernel_flags(plan.kinds, fusion), dtype=np.float64)
    flags.setflags(write=False)
    return flags


@functools.lru_cache(maxsize=256)
def plan_dequantizes(plan: StepPlan) -> np.ndarray:
    """``dequantizes`` for each operator of a step plan, as floats (memoized: a plan is built once and kept)."""
    import numpy as np

    flags = np.array([dequantizes(fmt, plan.activations) for fmt in plan.weight_formats], dtype=np.float64)
    flags.setflags(write=False)
    return flags


def step_cost(ops: Iterable[OpResult], weights: WeightScheme, activations: NumberFormat,
              tied_embeddings: bool = False, fusion: str = "none") -> StepCost:
    """The figures of an analysis' operators that the expected time needs (``fusion``: the engine's level,
    ``engines.fusion_of``)."""
    ops = list(ops)
    rows = [(op.count, op.compute_time_s, op.memory_time_s,
             dequantizes(weights.format_for(weight_role(op.name, tied_embeddings))
                         if op.kind == "matmul" and op.weight_bytes > 0 else None, activations))
            for op in ops]
    if not rows:
        return StepCost((), (), (), (), ())
    counts, compute, memory, flags = zip(*rows, strict=True)
    return StepCost(counts, compute, memory, flags, kernel_flags([op.kind for op in ops], fusion))


def expected_time_s(cost: StepCost, params: EfficiencyParams) -> float:
    """The expected time of one step: the per-step overhead plus every operator instance's time."""
    values = params.values()
    total = values[4]
    kernels = cost.kernels if len(cost.kernels) else (1,) * len(cost.counts)
    for count, compute, memory, flag, kernel in zip(cost.counts, cost.compute_time_s, cost.memory_time_s,
                                                    cost.dequantizes, kernels, strict=True):
        total += float(count) * float(op_time_s(compute, memory, flag, values, kernel))
    return total


def expected_step_time_s(compute_time_s: Array, memory_time_s: Array, dequantizes: Array, instances: Array,
                         params: Sequence[Array | Scalar], kernels: Array | None = None) -> Array:
    """The expected time of steps, operators on axis 0 of the roofline times (further axes: devices and
    configurations, with ``params`` broadcasting over them); ``dequantizes``, ``instances`` and ``kernels``
    (None: every operator a kernel) per operator."""
    shape = (-1,) + (1,) * (compute_time_s.ndim - 1)
    flags = dequantizes if compute_time_s.ndim == 1 else dequantizes.reshape(shape)
    launches: Array | Scalar = 1 if kernels is None else (kernels if compute_time_s.ndim == 1 else
                                                          kernels.reshape(shape))
    return params[4] + over_operators(op_time_s(compute_time_s, memory_time_s, flags, params, launches), instances)
