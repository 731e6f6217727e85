"""The efficiency model: its formula by hand, the bound as its special case, the defaults' data, the fit."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from llm_roofline import analyze, load_hardware
from llm_roofline.core.efficiency import (
    StepCost,
    default_params,
    defaults_table,
    expected_time_s,
    params_for,
    step_cost,
)
from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import KINDS, PARAMETERS, EfficiencyParams, hardware_from_dict
from llm_roofline.features.fidelity.fitting import Observation, fit_params
from llm_roofline.inputs.device_files import hardware_names
from llm_roofline.inputs.model_files import load_model

IDENTITY = EfficiencyParams(bandwidth_efficiency=1.0, compute_efficiency=1.0, dequant_compute_factor=1.0,
                            overhead_per_op_s=0.0, overhead_per_step_s=0.0)


def test_expected_time_by_hand() -> None:
    params = EfficiencyParams(bandwidth_efficiency=0.8, compute_efficiency=0.5, dequant_compute_factor=0.5,
                              overhead_per_op_s=2e-6, overhead_per_step_s=1e-3)
    cost = StepCost(counts=(32, 1), compute_time_s=(1e-4, 4e-6), memory_time_s=(2e-5, 1e-5), dequantizes=(1, 0))
    # op 1 (dequantizes): max(1e-4 / (0.5 * 0.5), 2e-5 / 0.8) + 2e-6 = 4e-4 + 2e-6 = 4.02e-4, x 32 = 1.2864e-2
    # op 2: max(4e-6 / 0.5, 1e-5 / 0.8) + 2e-6 = 1.25e-5 + 2e-6 = 1.45e-5
    # step: 1e-3 + 1.2864e-2 + 1.45e-5 = 1.38785e-2
    assert expected_time_s(cost, params) == pytest.approx(1.38785e-2, rel=1e-12)


@pytest.mark.parametrize(("model", "device", "phase", "weights"), [
    ("llama-2-7b", "jetson-orin-nx", "decode", "fp16"),
    ("llama-3-8b", "apple-m2-max-gpu", "prefill", "q4_k_m"),
    ("gemma-3-1b", "snapdragon-8-gen-3-cpu", "prefill", "int8"),
])
def test_the_bound_is_the_special_case_of_full_efficiency(model: str, device: str, phase: str, weights: str) -> None:
    result = analyze(model, device, phase=phase, seq_len=300, weights=weights)
    spec = load_model(model)
    cost = step_cost(result.ops, result.workload.weight_scheme(spec), result.workload.activation_format,
                     spec.tied_embeddings)
    assert expected_time_s(cost, IDENTITY) == pytest.approx(result.totals.time_s, rel=1e-12)


@pytest.mark.parametrize("device", hardware_names())
def test_expectation_is_never_faster_than_the_bound(device: str) -> None:
    if not {"fp16", "bf16", "fp32"} & set(load_hardware(device).peak_flops_per_s):
        pytest.skip("an int8-only device: norms and softmax have no ceiling to run on")
    for phase in ("prefill", "decode"):
        totals = analyze("llama-3.2-1b", device, phase=phase, seq_len=256).totals
        assert totals.expected_time_s >= totals.time_s
        assert totals.expected_tokens_per_s == pytest.approx(totals.tokens / totals.expected_time_s)


def test_analysis_json_carries_the_expectation() -> None:
    data = analyze("llama-2-7b", "apple-m1-max-gpu", seq_len=64, weights="q4_0").to_dict()
    totals = data["totals"]
    assert {"time_s", "tokens_per_s", "expected_time_s", "expected_tokens_per_s"} <= set(totals)
    assert totals["expected_time_s"] > totals["time_s"]


def test_only_matmuls_on_narrower_weights_dequantize() -> None:
    result = analyze("llama-2-7b", "apple-m1-max-gpu", weights="q4_0")
    spec = load_model("llama-2-7b")
    flags = dict(zip((op.name for op in result.ops),
                     step_cost(result.ops, result.workload.weight_scheme(spec), result.workload.activation_format,
                               False).dequantizes, strict=True))
    assert flags["layer.mlp.down_proj"] == flags["lm_head"] == 1
    assert flags["layer.attn.qk"] == flags["layer.attn_norm"] == flags["embed"] == 0
    fp16 = analyze("llama-2-7b", "apple-m1-max-gpu", weights="fp16")
    assert not any(step_cost(fp16.ops, fp16.workload.weight_scheme(spec), fp16.workload.activation_format,
                             False).dequantizes)


def test_defaults_are_cited_and_cover_every_class() -> None:
    table = defaults_table()
    assert table["source"] and table["command"].startswith("llm-roofline calibrate")
    for kind in KINDS:
        params = default_params(kind)
        assert params.source and table["class"][kind]["basis"]
        assert 0 < params.bandwidth_efficiency <= 1 and 0 < params.compute_efficiency <= 1


def test_a_device_can_carry_its_own_parameters() -> None:
    base = load_hardware("raspberry-pi-5")
    assert params_for(base) == default_params("cpu")
    data = {**base.to_dict(), "efficiency": {"bandwidth_efficiency": 0.5, "compute_efficiency": 0.25,
                                             "dequant_compute_factor": 1.0, "overhead_per_op_s": 0.0,
                                             "overhead_per_step_s": 0.0, "source": "test"}}
    own = hardware_from_dict(json.loads(json.dumps(data)), "test")
    assert params_for(own).bandwidth_efficiency == 0.5
    decode = analyze("llama-2-7b", own, seq_len=1, weights="q4_0").totals
    assert decode.expected_time_s == pytest.approx(decode.time_s * 2, rel=0.05)  # memory-bound at half the bandwidth


@pytest.mark.parametrize(("change", "message"), [
    ({"bandwidth_efficiency": 1.5}, "bandwidth_efficiency must be a number in"),
    ({"overhead_per_op_s": -1e-6}, "overhead_per_op_s must be"),
    ({"compute_efficiency": "fast"}, "compute_efficiency must be"),
])
def test_invalid_parameters_are_refused(change: dict[str, object], message: str) -> None:
    data = {**load_hardware("raspberry-pi-5").to_dict(),
            "efficiency": {**IDENTITY.to_dict(), **change}}
    with pytest.raises(InputError, match=message):
        hardware_from_dict(data, "my-board.toml")
    with pytest.raises(InputError, match="missing overhead_per_step_s"):
        hardware_from_dict({**data, "efficiency": {k: 1.0 for k in list(PARAMETERS)[:4]}}, "my-board.toml")


@pytest.mark.parametrize("fusion", ["none", "elementwise"])
def test_fit_recovers_known_parameters(fusion: str) -> None:
    """Measurements made by the model itself give its parameters back, for an engine that fuses the elementwise
    operators too (the fit prices launches as the prediction does: a fused operator launches nothing)."""
    truth = EfficiencyParams(bandwidth_efficiency=0.7, compute_efficiency=0.6, dequant_compute_factor=0.8,
                             overhead_per_op_s=5e-6, overhead_per_step_s=0.0)
    observations = []
    for model in ("llama-2-7b", "llama-3.2-1b", "qwen2.5-0.5b"):
        for phase, weights in (("prefill", "fp16"), ("prefill", "q4_0"), ("decode", "fp16"), ("decode", "q4_0")):
            result = analyze(model, "apple-m2-max-gpu", phase=phase, seq_len=256, weights=weights)
            spec = load_model(model)
            cost = step_cost(result.ops, result.workload.weight_scheme(spec), result.workload.activation_format,
                             spec.tied_embeddings, fusion)
            observations.append(Observation(cost, expected_time_s(cost, truth)))
    fitted = fit_params(observations)
    for name in ("bandwidth_efficiency", "compute_efficiency", "dequant_compute_factor"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=0.02), name
    assert fitted.overhead_per_op_s == pytest.approx(5e-6, rel=0.1)
    assert all(math.isclose(expected_time_s(o.cost, fitted), o.measured_time_s, rel_tol=0.01) for o in observations)


def test_a_fit_keeps_the_cost_per_kernel_a_step_pays_whatever_the_fit() -> None:
    """Steps launched without their engine's graph pay another engine's cost per kernel (an Observation's
    ``overhead_per_op_s``): the fit prices them at it, as the prediction does, and recovers the engine's own
    figures from the rest; read as the engine's own launches, the same measurements give another figure."""
    truth = EfficiencyParams(bandwidth_efficiency=0.8, compute_efficiency=0.6, dequant_compute_factor=1.0,
                             overhead_per_op_s=2e-6, overhead_per_step_s=0.0)
    ungraphed_s = 1e-5
    observations = []
    for model in ("llama-2-7b", "llama-3.2-1b", "qwen2.5-0.5b"):
        spec = load_model(model)
        for phase, batch in (("prefill", 1), ("decode", 1), ("decode", 8)):
            result = analyze(model, "nvidia-rtx-4090", phase=phase, seq_len=256, batch=batch, weights="q4_0")
            cost = step_cost(result.ops, result.workload.weight_scheme(spec), result.workload.activation_format,
                             spec.tied_embeddings)
            fixed = None if phase == "decode" and batch == 1 else ungraphed_s
            paid = truth if fixed is None else replace(truth, overhead_per_op_s=fixed)
            observations.append(Observation(cost, expected_time_s(cost, paid), fixed))
    fitted = fit_params(observations)
    assert fitted.overhead_per_op_s == pytest.approx(2e-6, rel=0.1)
    assert fitted.bandwidth_efficiency == pytest.approx(0.8, rel=0.02)
    unaware = fit_params([Observation(o.cost, o.measured_time_s) for o in observations])
    assert unaware.overhead_per_op_s > 2 * fitted.overhead_per_op_s


def test_a_prior_holds_what_the_data_cannot_tell() -> None:
    prior = default_params("gpu")
    result = analyze("llama-2-7b", "nvidia-rtx-3090", phase="prefill", seq_len=512)
    spec = load_model("llama-2-7b")
    cost = step_cost(result.ops, result.workload.weight_scheme(spec), result.workload.activation_format, False)
    # One prefill measurement: compute-bound, so the bandwidth fraction stays at the prior's value.
    fitted = fit_params([Observation(cost, result.totals.time_s / 0.6)], prior=prior)
    assert fitted.bandwidth_efficiency == pytest.approx(prior.bandwidth_efficiency, rel=0.05)
    assert expected_time_s(cost, fitted) == pytest.approx(result.totals.time_s / 0.6, rel=0.03)

