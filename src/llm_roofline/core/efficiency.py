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
calibrate`` writes it into a device profile), else the defaults of its class — ``HardwareSpec.kind``:
gpu, cpu or npu — fitted on published measurements and stored in ``data/efficiency.toml`` with the
command that produced them. This module is the one place the expected time is computed: ``analyze``
reports it as ``totals.expected_time_s``, and ``validate`` and ``calibrate`` fit and check it.
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from llm_roofline.core.errors import InputError
from llm_roofline.core.transformer import weight_role
from llm_roofline.core.units import Array, Scalar

if TYPE_CHECKING:
    from llm_roofline.core.formats import NumberFormat, WeightScheme
    from llm_roofline.core.hardware import HardwareSpec
    from llm_roofline.core.roofline import OpResult
    from llm_roofline.core.transformer import StepPlan

# The parameters in the order they are stored and reported, with their meaning.
PARAMETERS: dict[str, str] = {
    "bandwidth_efficiency": "fraction of the memory bandwidth that memory-bound operators achieve",
    "compute_efficiency": "fraction of the compute ceiling that compute-bound operators achieve",
    "dequant_compute_factor": "share of compute_efficiency left to a matmul that unpacks quantized weights",
    "overhead_per_op_s": "fixed time per operator instance (kernel launch, dispatch, sync), in seconds",
    "overhead_per_step_s": "fixed time per forward step (graph build, sampling, host round trip), in seconds",
}
# The range each parameter may take, which is also the box a fit searches. Fractions stop at 1, so the
# expectation is never faster than the bound: a device measured above its roof has a ceiling figure to fix.
BOUNDS: dict[str, tuple[float, float]] = {
    "bandwidth_efficiency": (0.05, 1.0),
    "compute_efficiency": (0.02, 1.0),
    "dequant_compute_factor": (0.2, 1.0),
    "overhead_per_op_s": (0.0, 1e-4),
    "overhead_per_step_s": (0.0, 0.1),
}


@dataclass(frozen=True, slots=True)
class EfficiencyParams:
    """Achievable fractions of the two roofs and the fixed costs, for one device or class of devices."""

    bandwidth_efficiency: float
    compute_efficiency: float
    dequant_compute_factor: float
    overhead_per_op_s: float
    overhead_per_step_s: float
    source: str = ""

    def __post_init__(self) -> None:
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not valid or not low <= value <= high:
                raise InputError(f"efficiency: {name} must be a number in [{low:g}, {high:g}], got {value!r}")

    def values(self) -> tuple[float, ...]:
        """The five parameters, in ``PARAMETERS`` order."""
        return (self.bandwidth_efficiency, self.compute_efficiency, self.dequant_compute_factor,
                self.overhead_per_op_s, self.overhead_per_step_s)

    def to_dict(self) -> dict[str, object]:
        return {**{name: getattr(self, name) for name in PARAMETERS}, "source": self.source}

    def rounded(self, digits: int = 4) -> EfficiencyParams:
        """The same parameters to ``digits`` significant digits (what a saved file holds)."""

        def to_digits(value: float) -> float:
            return float(f"{value:.{digits}g}")

        return replace(self, bandwidth_efficiency=to_digits(self.bandwidth_efficiency),
                       compute_efficiency=to_digits(self.compute_efficiency),
                       dequant_compute_factor=to_digits(self.dequant_compute_factor),
                       overhead_per_op_s=to_digits(self.overhead_per_op_s),
                       overhead_per_step_s=to_digits(self.overhead_per_step_s))


def params_from_dict(data: Mapping[str, Any], where: str) -> EfficiencyParams:
    """Parameters from a parsed ``[efficiency]`` table, with errors that name the file."""
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: efficiency must be a table of {', '.join(PARAMETERS)}")
    missing = [name for name in PARAMETERS if name not in data]
    if missing:
        raise InputError(f"{where}: efficiency is missing {', '.join(missing)}")
    try:
        return EfficiencyParams(**{name: data[name] for name in PARAMETERS}, source=str(data.get("source", "")))
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


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


def device_class(hardware: HardwareSpec) -> str:
    """The class whose defaults a device gets: its kind (gpu, cpu or npu)."""
    return hardware.kind


def params_for(hardware: HardwareSpec) -> EfficiencyParams:
    """A device's own fitted parameters (a calibrated profile), else its class's defaults."""
    return hardware.efficiency if hardware.efficiency is not None else default_params(device_class(hardware))


# --- the formula ------------------------------------------------------------------------------------

def op_time_s(compute_time_s: Array, memory_time_s: Array, dequantizes: Array | Scalar,
              params: Sequence[Array | Scalar]) -> Array:
    """The expected time of one operator instance (numpy arrays that broadcast).

    ``params``: the five parameters in ``PARAMETERS`` order; ``dequantizes``: 1 for a matmul that
    unpacks quantized weights, else 0.
    """
    eta_m, eta_c, dequant, per_op, _ = params
    compute_efficiency = eta_c + dequantizes * (eta_c * (dequant - 1))  # eta_c x (dequant if dequantizes else 1)
    time_s: Array = np.maximum(compute_time_s / compute_efficiency, memory_time_s / eta_m) + per_op  # stubs: Any
    return time_s


class StepCost(NamedTuple):
    """What the expected time of a step depends on: per operator, its instances, its roofline times
    and whether it unpacks quantized weights (tuples, or numpy arrays over the operators)."""

    counts: Sequence[int] | Array
    compute_time_s: Sequence[float] | Array  # per instance, at the device's peak
    memory_time_s: Sequence[float] | Array  # per instance, at the device's bandwidth
    dequantizes: Sequence[int] | Array  # 1 or 0


def dequantizes(weight_format: NumberFormat | None, activations: NumberFormat) -> int:
    """1 when a matmul's weights are stored in fewer bits per element than the activations they
    multiply (the kernel unpacks them as it goes), else 0; ``None``: the operator reads no weights."""
    return int(weight_format is not None and weight_format.bits_per_element < activations.bits_per_element)


@functools.lru_cache(maxsize=256)
def plan_dequantizes(plan: StepPlan) -> np.ndarray:
    """``dequantizes`` for each operator of a step plan, as floats (memoized: a plan is built once and kept)."""
    flags = np.array([dequantizes(fmt, plan.activations) for fmt in plan.weight_formats], dtype=np.float64)
    flags.setflags(write=False)
    return flags


def step_cost(ops: Iterable[OpResult], weights: WeightScheme, activations: NumberFormat,
              tied_embeddings: bool = False) -> StepCost:
    """The figures of an analysis' operators that the expected time needs."""
    rows = [(op.count, op.compute_time_s, op.memory_time_s,
             dequantizes(weights.format_for(weight_role(op.name, tied_embeddings))
                         if op.kind == "matmul" and op.weight_bytes > 0 else None, activations))
            for op in ops]
    if not rows:
        return StepCost((), (), (), ())
    counts, compute, memory, flags = zip(*rows, strict=True)
    return StepCost(counts, compute, memory, flags)


def expected_time_s(cost: StepCost, params: EfficiencyParams) -> float:
    """The expected time of one step: the per-step overhead plus every operator instance's time."""
    values = params.values()
    per_op = op_time_s(np.asarray(cost.compute_time_s, dtype=float), np.asarray(cost.memory_time_s, dtype=float),
                       np.asarray(cost.dequantizes, dtype=float), values)
    return float(values[4] + per_op.dot(np.asarray(cost.counts, dtype=float)))


# --- fitting ------------------------------------------------------------------------------------------

class Observation(NamedTuple):
    """A measured step: its cost under the roofline and the time it took."""

    cost: StepCost
    measured_time_s: float


class _Stacked:
    """Many steps' operators in flat arrays, so a fit evaluates many candidates at once."""

    def __init__(self, costs: Sequence[StepCost]) -> None:
        self.counts = np.concatenate([np.asarray(c.counts, dtype=float) for c in costs])
        self.compute = np.concatenate([np.asarray(c.compute_time_s, dtype=float) for c in costs])
        self.memory = np.concatenate([np.asarray(c.memory_time_s, dtype=float) for c in costs])
        self.dequantizes = np.concatenate([np.asarray(c.dequantizes, dtype=float) for c in costs])
        self.starts = np.cumsum([0] + [len(c.counts) for c in costs[:-1]])

    def expected_times_s(self, candidates: np.ndarray) -> np.ndarray:
        """candidates (k, 5) -> expected step times (k, steps), through ``op_time_s``."""
        columns = [candidates[:, i:i + 1] for i in range(candidates.shape[1])]
        per_op = op_time_s(self.compute[None, :], self.memory[None, :], self.dequantizes[None, :], columns)
        times_s: np.ndarray = np.add.reduceat(per_op * self.counts[None, :], self.starts, axis=1) + columns[4]
        return times_s


ROBUST_SCALE = 0.1  # pseudo-Huber loss: squared below a 10 % miss, linear above (outliers do not steer a fit)
PRIOR_SCALE = math.log(2)  # a prior lets a parameter move by a factor of 2 for the cost of one robust-scale miss
_STARTS = 6  # the best grid points refined by the simplex search
_OVERHEAD_FLOOR_S = {"overhead_per_op_s": 1e-7, "overhead_per_step_s": 1e-5}  # where a prior on overheads turns


def fit_params(observations: Sequence[Observation], prior: EfficiencyParams | None = None,
               source: str = "") -> EfficiencyParams:
    """The parameters whose expected times best match the measured ones.

    Minimizes the pseudo-Huber loss of log(expected / measured) — a 10 % miss counts the same on a phone
    as on a data-centre GPU, and a handful of odd rows cannot drag the fit. With a ``prior`` (the
    class's defaults, when calibrating one device from a few measurements) each parameter is also
    pulled toward it, (log ratio / log 2)^2 x the loss of a 10 % miss, so what the measurements
    cannot tell apart stays near the prior. Deterministic: a coarse grid over ``BOUNDS``; from its six
    best points (and the prior), a Nelder-Mead simplex search; the best result.
    """
    if not observations:
        raise InputError("nothing to fit: no measurement could be predicted")
    stacked = _Stacked([o.cost for o in observations])
    measured = np.log([o.measured_time_s for o in observations])
    names = list(PARAMETERS)
    prior_at = None if prior is None else _prior_coordinates(np.array([prior.values()]), names)
    unit_loss = ROBUST_SCALE ** 2 * (math.sqrt(2) - 1)  # the loss of one miss at the robust scale

    def loss(candidates: np.ndarray) -> np.ndarray:
        error = np.log(stacked.expected_times_s(candidates)) - measured[None, :]
        total: np.ndarray = (ROBUST_SCALE ** 2 * (np.sqrt(1 + (error / ROBUST_SCALE) ** 2) - 1)).sum(axis=1)
        if prior_at is not None:
            distance = (_prior_coordinates(candidates, names) - prior_at) / PRIOR_SCALE
            total = total + unit_loss * (distance ** 2).sum(axis=1)
        return total

    grids = [_grid(name) for name in names]
    mesh = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, len(names))
    starts = list(mesh[np.argsort(loss(mesh), kind="stable")[:_STARTS]])
    if prior is not None:
        starts.append(np.array(prior.values()))
    low, high = (np.array([BOUNDS[name][i] for name in names]) for i in (0, 1))
    best, best_loss = starts[0], math.inf
    for start in starts:  # refine the best grid points (and the prior); keep the best result
        point = _nelder_mead(lambda u: float(loss((low + np.clip(u, 0, 1) * (high - low))[None, :])[0]),
                             (start - low) / (high - low))
        candidate = low + np.clip(point, 0, 1) * (high - low)
        candidate_loss = float(loss(candidate[None, :])[0])
        if candidate_loss < best_loss:
            best, best_loss = candidate, candidate_loss
    return EfficiencyParams(**dict(zip(names, (float(v) for v in best), strict=True)), source=source).rounded()


def _prior_coordinates(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Where a prior measures distance: log of each parameter (an overhead floored at a small time)."""
    floors = np.array([_OVERHEAD_FLOOR_S.get(name, 0.0) for name in names])
    coordinates: np.ndarray = np.log(values + floors)
    return coordinates


def _grid(name: str) -> np.ndarray:
    low, high = BOUNDS[name]
    if name.startswith("overhead"):
        return np.concatenate([[0.0], np.geomspace(high * 1e-2, high, 3)])
    if name == "dequant_compute_factor":
        return np.array([0.5, 1.0])
    return np.geomspace(low, high, 5)


def _nelder_mead(loss: Callable[[np.ndarray], float], start: np.ndarray, step: float = 0.05, tolerance: float = 1e-7,
                 max_iterations: int = 800) -> np.ndarray:
    """The downhill simplex method (Nelder & Mead 1965) from ``start``, in coordinates scaled to [0, 1]:
    reflect, expand, contract or shrink until the simplex's losses agree within ``tolerance``."""
    size = len(start)
    simplex = np.vstack([start, start + step * np.eye(size)])
    losses = np.array([loss(vertex) for vertex in simplex])
    for _ in range(max_iterations):
        order = np.argsort(losses, kind="stable")
        simplex, losses = simplex[order], losses[order]
        if losses[-1] - losses[0] <= tolerance * (abs(losses[0]) + tolerance):
            break
        centroid = simplex[:-1].mean(axis=0)
        reflected = centroid + (centroid - simplex[-1])
        reflected_loss = loss(reflected)
        if reflected_loss < losses[0]:
            expanded = centroid + 2 * (centroid - simplex[-1])
            expanded_loss = loss(expanded)
            simplex[-1], losses[-1] = (expanded, expanded_loss) if expanded_loss < reflected_loss \
                else (reflected, reflected_loss)
        elif reflected_loss < losses[-2]:
            simplex[-1], losses[-1] = reflected, reflected_loss
        else:
            contracted = centroid + 0.5 * (simplex[-1] - centroid)
            contracted_loss = loss(contracted)
            if contracted_loss < losses[-1]:
                simplex[-1], losses[-1] = contracted, contracted_loss
            else:
                simplex[1:] = simplex[0] + 0.5 * (simplex[1:] - simplex[0])
                losses[1:] = [loss(vertex) for vertex in simplex[1:]]
    best: np.ndarray = simplex[int(np.argmin(losses))]
    return best
