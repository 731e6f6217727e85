"""Energy per token (exercise 2.7): cited coefficients, the data-movement/arithmetic split."""

from __future__ import annotations

import pytest

from llm_roofline import InputError, Workload, load_hardware, load_model
from llm_roofline.features.studies.energy import (
    EnergyCoefficient,
    _coefficient,
    load_energy_table,
    step_energy,
    workload_energy,
)
from llm_roofline.features.studies.requirements import ParamsOnly, decode_ops


def test_every_coefficient_is_cited() -> None:
    table = load_energy_table()
    for coefficient in [*table.memory.values(), *table.arithmetic.values()]:
        assert isinstance(coefficient, EnergyCoefficient)
        assert "Horowitz" in coefficient.source and coefficient.picojoules > 0
    # Horowitz ISSCC 2014, 45 nm: DRAM 1.3 nJ per 64-bit access = 162.5 pJ/B; FP32 (3.7 + 0.9) / 2 = 2.3 pJ/FLOP;
    # FP16 x FP16 into FP32: (1.1 + 0.9) / 2 = 1.0; INT8 into INT32: (0.2 + 0.1) / 2 = 0.15.
    assert table.memory_coefficient().picojoules == 162.5
    assert {p: c.picojoules for p, c in table.arithmetic.items()} == {"fp32": 2.3, "fp16": 1.0, "int8": 0.15}


def test_a_coefficient_without_a_source_does_not_load() -> None:
    with pytest.raises(ValueError, match="needs a source"):
        _coefficient("hbm", {"pj_per_byte": 30.0}, "pj_per_byte", "energy.toml")


def test_precisions_fall_back_to_a_wider_coefficient() -> None:
    table = load_energy_table()
    assert table.flop_coefficient("bf16").name == "fp16"
    assert table.flop_coefficient("fp8").name == "fp16"
    assert table.flop_coefficient("int4").name == "int8"
    with pytest.raises(InputError, match="no energy coefficient for fp64"):
        table.flop_coefficient("fp64")


def test_7b_fp16_token_by_hand() -> None:
    # 14e9 B x 162.5 pJ/B = 2.275 J of data movement; 14e9 FLOP x 1.0 pJ = 0.014 J of arithmetic.
    estimate = step_energy(decode_ops(ParamsOnly(7e9), Workload()), tokens=1)
    assert estimate.data_movement_j == pytest.approx(2.275, rel=1e-12)
    assert estimate.arithmetic_j == pytest.approx(0.014, rel=1e-12)
    assert estimate.energy_per_token_j == pytest.approx(2.289, rel=1e-12)
    assert estimate.data_movement_share == pytest.approx(2.275 / 2.289)


def test_split_adds_up_and_power_follows_the_roofline_time() -> None:
    model, device = load_model("llama-2-7b"), load_hardware("jetson-orin-nx")
    e = workload_energy(model, device, Workload(batch=4))
    assert e.weight_movement_j + e.kv_movement_j + e.activation_movement_j == pytest.approx(e.data_movement_j)
    assert e.data_movement_j + e.arithmetic_j == pytest.approx(e.total_j)
    assert e.energy_per_token_j == pytest.approx(e.total_j / 4)
    assert e.average_power_w == pytest.approx(e.total_j / e.time_s)
    # Batching shares the weight reads: the energy per token falls.
    assert e.energy_per_token_j < workload_energy(model, device, Workload(batch=1)).energy_per_token_j


def test_memory_choices() -> None:
    model, device = load_model("llama-2-7b"), load_hardware("jetson-orin-nx")
    sram = workload_energy(model, device, Workload(), memory="sram-1mb-45nm")
    assert sram.dram_pj_per_byte == 12.5  # 100 pJ per 64-bit access / 8 B
    own = workload_energy(model, device, Workload(), dram_pj_per_byte=40.0)
    assert own.memory == "user-given" and own.data_movement_j == pytest.approx(own.bytes * 40e-12)
    with pytest.raises(InputError, match="unknown memory technology"):
        workload_energy(model, device, Workload(), memory="hbm9")
    with pytest.raises(InputError, match="dram_pj_per_byte must be a number from"):
        workload_energy(model, device, Workload(), dram_pj_per_byte=0.0)
