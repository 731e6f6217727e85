"""Fitting the efficiency model's parameters to measured step times (``validate``, ``calibrate``).

The model itself (``core/efficiency.py``) turns parameters into an expected time; this module finds
the parameters whose expected times best match measurements: a robust loss, a prior towards the
class defaults, a grid and a simplex search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from llm_roofline.core.efficiency import StepCost, op_time_s
from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import BOUNDS, PARAMETERS, EfficiencyParams


class Observation(NamedTuple):
    """A measured step: its cost under the roofline and the time it took; ``overhead_per_op_s``: the cost per
    kernel the step pays whatever the fitted one (a step an engine launches without its graph, at another
    engine's cost: ``efficiency.launch_overhead_s``), None: the fitted one."""

    cost: StepCost
    measured_time_s: float
    overhead_per_op_s: float | None = None


class _Stacked:
    """Many steps' operators in flat arrays, so a fit evaluates many candidates at once."""

    def __init__(self, costs: Sequence[StepCost], per_op_s: Sequence[float | None] = ()) -> None:
        self.counts = np.concatenate([np.asarray(c.counts, dtype=float) for c in costs])
        self.compute = np.concatenate([np.asarray(c.compute_time_s, dtype=float) for c in costs])
        self.memory = np.concatenate([np.asarray(c.memory_time_s, dtype=float) for c in costs])
        self.dequantizes = np.concatenate([np.asarray(c.dequantizes, dtype=float) for c in costs])
        # as ``expected_time_s``: an operator an engine fuses into a neighbour launches nothing
        self.kernels = np.concatenate([np.asarray(c.kernels if len(c.kernels) else np.ones(len(c.counts)), dtype=float)
                                       for c in costs])
        self.starts = np.cumsum([0] + [len(c.counts) for c in costs[:-1]])
        # per operator, the cost per kernel its step pays whatever the candidate's (NaN: the candidate's)
        fixed = [np.nan if value is None else value for value in per_op_s] or [np.nan] * len(costs)
        self.fixed_per_op = np.repeat(np.array(fixed, dtype=float), [len(c.counts) for c in costs])
        self.has_fixed = bool(np.isfinite(self.fixed_per_op).any())

    def expected_times_s(self, candidates: np.ndarray) -> np.ndarray:
        """candidates (k, 5) -> expected step times (k, steps), through ``op_time_s``."""
        columns = [candidates[:, i:i + 1] for i in range(candidates.shape[1])]
        if self.has_fixed:
            fixed = np.isfinite(self.fixed_per_op)[None, :]
            columns[3] = np.where(fixed, np.nan_to_num(self.fixed_per_op)[None, :], columns[3])
        per_op = op_time_s(self.compute[None, :], self.memory[None, :], self.dequantizes[None, :], columns,
                           self.kernels[None, :])
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
    stacked = _Stacked([o.cost for o in observations], [o.overhead_per_op_s for o in observations])
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
