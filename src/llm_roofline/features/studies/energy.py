"""Energy per token (exercise 2.7): the bytes and FLOPs of the operator model, priced in joules.

    E = sum over operators of count x (bytes x pJ/byte of the memory + FLOPs x pJ/FLOP of its math)

Bytes are the operator model's DRAM traffic, so the data-movement term is what the roofline's memory
side moves. Coefficients live in ``data/energy.toml``, each with its source; a memory figure of your
own (a datasheet's pJ/bit x 8) replaces the table's.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

from llm_roofline.core import limits
from llm_roofline.core.errors import InputError, unknown_name
from llm_roofline.core.formats import PEAK_FALLBACK
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.roofline import analyze
from llm_roofline.core.transformer import Op, Workload, step_ops
from llm_roofline.core.units import Scalar
from llm_roofline.features.studies.steps import dense_only

PICO = 1e-12


@dataclass(frozen=True, slots=True)
class EnergyCoefficient:
    """One cited figure: picojoules per byte (memory) or per FLOP (arithmetic)."""

    name: str
    picojoules: float
    source: str
    notes: str = ""


@dataclass(frozen=True, slots=True)
class EnergyTable:
    memory: dict[str, EnergyCoefficient]  # pJ per byte, by memory technology
    arithmetic: dict[str, EnergyCoefficient]  # pJ per FLOP, by math precision
    default_memory: str

    def memory_coefficient(self, technology: str | None = None) -> EnergyCoefficient:
        name = self.default_memory if technology is None else technology
        if name not in self.memory:
            raise unknown_name("memory technology", name, self.memory)
        return self.memory[name]

    def flop_coefficient(self, precision: str) -> EnergyCoefficient:
        """The coefficient for ``precision``, or the next wider precision's (formats.PEAK_FALLBACK)."""
        for candidate in PEAK_FALLBACK.get(precision, (precision,)):
            if candidate in self.arithmetic:
                return self.arithmetic[candidate]
        raise InputError(f"no energy coefficient for {precision} arithmetic; data/energy.toml has "
                         f"{', '.join(self.arithmetic)}")


def _coefficient(name: str, entry: dict[str, object], unit_key: str, where: str) -> EnergyCoefficient:
    source = str(entry.get("source", "")).strip()
    if not source:
        raise ValueError(f"{where}: {name}: every energy coefficient needs a source")
    value = entry.get(unit_key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{where}: {name}: {unit_key} must be a number > 0, got {value!r}")
    return EnergyCoefficient(name, float(value), source, str(entry.get("notes", "")))


@functools.cache
def load_energy_table() -> EnergyTable:
    """The built-in table, validated: a coefficient without a source does not load."""
    where = "data/energy.toml"
    data = tomllib.loads(resources.files("llm_roofline").joinpath(where).read_text())
    memory = {name: _coefficient(name, entry, "pj_per_byte", where) for name, entry in data["memory"].items()}
    arithmetic = {name: _coefficient(name, entry, "pj_per_flop", where)
                  for name, entry in data["arithmetic"].items()}
    table = EnergyTable(memory, arithmetic, str(data["default_memory"]))
    table.memory_coefficient()  # the default must exist
    return table


class EnergyEstimate(NamedTuple):
    """Energy of one step, split into data movement and arithmetic, in joules."""

    memory: str  # the memory technology (or "user-given")
    dram_pj_per_byte: float
    bytes: float
    flops: float
    weight_movement_j: float
    kv_movement_j: float
    activation_movement_j: float
    data_movement_j: float
    arithmetic_j: float
    total_j: float
    tokens: int
    energy_per_token_j: float
    data_movement_share: float
    time_s: float | None  # the step's roofline time, if known
    average_power_w: float | None  # total_j / time_s: the power the roofline speed implies


def step_energy(ops: Sequence[Op[Scalar]], tokens: int, table: EnergyTable | None = None, memory: str | None = None,
                dram_pj_per_byte: float | None = None, time_s: float | None = None) -> EnergyEstimate:
    """Price one step's operators. ``dram_pj_per_byte`` (a figure of your own) overrides ``memory``."""
    table = table or load_energy_table()
    if dram_pj_per_byte is None:
        coefficient = table.memory_coefficient(memory)
        memory_name, per_byte = coefficient.name, coefficient.picojoules
    else:
        memory_name, per_byte = "user-given", limits.figure("dram_pj_per_byte", dram_pj_per_byte,
                                                            limits.STUDY["dram_pj_per_byte"])
    weight = kv = act = arithmetic = flops = 0.0
    for op in ops:
        cost, n = op.cost, op.instances
        weight += cost.weight_bytes * n
        kv += (cost.kv_read_bytes + cost.kv_write_bytes) * n
        act += (cost.act_read_bytes + cost.act_write_bytes) * n
        flops += cost.flops * n
        arithmetic += cost.flops * n * table.flop_coefficient(op.math).picojoules
    moved = weight + kv + act
    movement_j = moved * per_byte * PICO
    arithmetic_j = arithmetic * PICO
    total = movement_j + arithmetic_j
    return EnergyEstimate(
        memory=memory_name, dram_pj_per_byte=per_byte, bytes=moved, flops=flops,
        weight_movement_j=weight * per_byte * PICO, kv_movement_j=kv * per_byte * PICO,
        activation_movement_j=act * per_byte * PICO, data_movement_j=movement_j, arithmetic_j=arithmetic_j,
        total_j=total, tokens=tokens, energy_per_token_j=total / tokens, data_movement_share=movement_j / total,
        time_s=time_s, average_power_w=None if time_s is None else total / time_s,
    )


def workload_energy(model: ModelSpec, hardware: HardwareSpec, workload: Workload, memory: str | None = None,
                    dram_pj_per_byte: float | None = None) -> EnergyEstimate:
    """Energy of one step of ``workload``, per token of that step, with the power its roofline time implies."""
    dense_only(workload, "energy")
    time_s = analyze(model, hardware, workload).totals.time_s
    return step_energy(step_ops(model, workload), workload.tokens, memory=memory,
                       dram_pj_per_byte=dram_pj_per_byte, time_s=time_s)
