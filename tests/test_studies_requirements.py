"""Requirements, feasibility and scaling (exercises 2.3, 2.6, 2.7), with the chapter's numbers exact."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_roofline import InputError, Workload, custom_hardware, load_hardware, load_model
from llm_roofline.core import limits
from llm_roofline.features.deploy import acceptance_rate_for_tokens, expected_tokens_per_target_pass
from llm_roofline.features.studies.requirements import (
    ParamsOnly,
    bandwidth_for_time,
    decode_ops,
    feasibility,
    model_scaling,
    required_bandwidth,
    step_time_s,
)
from llm_roofline.features.studies.steps import step_sums

LLAMA = load_model("llama-2-7b")
# Exercise 2.6's device: 50 GB/s. The chapter gives no peak; 2 TFLOP/s keeps batch-1 decode memory-bound.
EDGE = custom_hardware(50e9, {"fp16": 2e12}, 16e9)


def test_exercise_2_3_bandwidth_for_10_tokens_per_s() -> None:
    # 3e9 params x 1 B (int8) = 3 GB per token; x 10 tokens/s = 30 GB/s.
    need = required_bandwidth(ParamsOnly(3e9), Workload(weights="int8"), 10)
    assert need.bytes_per_step == 3e9
    assert need.bytes_per_s == 30e9
    assert need.flops_per_s == 2 * 3e9 * 10  # 2 FLOPs per weight per token


def test_exercise_2_6_chapter_numbers_exactly() -> None:
    # fp16: 7e9 x 2 B = 14 GB; 14 GB / 50 GB/s = 280 ms > 100 ms.
    # int4: 7e9 x 0.5 B = 3.5 GB; 3.5 GB / 50 GB/s = 70 ms < 100 ms.
    result = feasibility(ParamsOnly(7e9), EDGE, Workload(), 0.1, formats=("fp16", "int4"))
    fp16, int4 = result.formats
    assert (fp16.weight_bytes, int4.weight_bytes) == (14e9, 3.5e9)
    assert fp16.time_per_token_s == pytest.approx(0.280, rel=1e-12) and not fp16.meets
    assert int4.time_per_token_s == pytest.approx(0.070, rel=1e-12) and int4.meets


def test_exercise_2_6_real_llama_2_7b() -> None:
    # The real model moves more than its weights (KV cache at 1024 tokens, activations) and has
    # 6.74e9 parameters: 13.77 GB -> 275 ms in fp16; int4 with per-channel scales -> 77 ms.
    result = feasibility(LLAMA, EDGE, Workload(), 0.1, formats=("fp16", "int4"))
    fp16, int4 = result.formats
    assert fp16.time_per_token_s == pytest.approx(0.2754, abs=5e-4) and not fp16.meets
    assert int4.time_per_token_s == pytest.approx(0.0773, abs=5e-4) and int4.meets


def test_remedies_are_ranked_and_include_every_kind() -> None:
    result = feasibility(LLAMA, EDGE, Workload(), 0.1)
    kinds = {r.kind for r in result.remedies}
    assert {"weights", "kv-cache", "device", "speculative", "batching"} <= kinds
    meets = [r.meets for r in result.remedies]
    assert meets == sorted(meets, reverse=True)  # those that meet come first
    times = [r.time_per_token_s for r in result.remedies if r.meets]
    assert times == sorted(times)
    for remedy in result.remedies:
        if remedy.kind == "device":
            assert load_hardware(remedy.change.removeprefix("device ")).memory_bytes_per_s > EDGE.memory_bytes_per_s


def test_speculative_decoding_closed_form() -> None:
    # Leviathan et al. 2023: E = (1 - a^(g+1)) / (1 - a). a = 0.5, g = 4: (1 - 1/32) / 0.5 = 1.9375.
    assert expected_tokens_per_target_pass(0.5, 4) == pytest.approx(1.9375)
    assert expected_tokens_per_target_pass(1.0, 4) == 5
    assert acceptance_rate_for_tokens(1.9375, 4) == pytest.approx(0.5, abs=1e-12)
    assert acceptance_rate_for_tokens(5.1, 4) is None  # more than g + 1 tokens per pass is impossible


def test_speculative_acceptance_needed_for_exercise_2_6() -> None:
    # 7B fp16: a verification pass of g + 1 tokens still reads 14 GB: 280 ms (+ negligible compute).
    # With a free draft the pass must yield 280 / 100 = 2.8 tokens: E(a, g) = 2.8.
    result = feasibility(ParamsOnly(7e9), EDGE, Workload(), 0.1)
    for option in result.speculative:
        assert option.tokens_per_pass_needed == pytest.approx(2.8, rel=1e-3)
        if option.acceptance_rate_needed is not None:
            assert expected_tokens_per_target_pass(option.acceptance_rate_needed, option.draft_tokens) == pytest.approx(
                option.tokens_per_pass_needed, rel=1e-9)
    assert result.speculative[0].acceptance_rate_needed is None  # g = 1 gives at most 2 tokens per pass


def test_batching_gives_the_largest_batch_within_the_target() -> None:
    workload = Workload(weights="int4")
    result = feasibility(LLAMA, load_hardware("jetson-orin-nx"), workload, 0.1, formats=("int4",))
    batching = next(r for r in result.remedies if r.kind == "batching")
    largest = int(batching.change.rsplit(" ", 1)[1])
    device = load_hardware("jetson-orin-nx")
    assert step_time_s(LLAMA, device, workload, largest) <= 0.1
    slower = step_time_s(LLAMA, device, workload, largest + 1) > 0.1
    weights_and_kv = 3.375e9 + (largest + 1) * 537.4e6  # int4 weights + one more sequence's KV at 1025 tokens
    assert slower or weights_and_kv > device.memory_bytes


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 256), st.floats(0.005, 2.0), st.sampled_from(["fp16", "int4"]))
def test_bandwidth_for_time_is_exact(batch: int, time_s: float, weights: str) -> None:
    # On a device with exactly the bandwidth found, the roofline step takes exactly the target.
    device = load_hardware("jetson-orin-nx")
    ops = decode_ops(LLAMA, Workload(batch=batch, weights=weights))
    try:
        bandwidth = bandwidth_for_time(ops, device, time_s)
    except InputError:
        fastest = limits.DEVICE["memory_bytes_per_s"].high  # the most bandwidth a device may have
        assert step_sums(ops, replace(device, memory_bytes_per_s=fastest)).time_s >= time_s * (1 - 1e-9)
        return
    assert step_sums(ops, replace(device, memory_bytes_per_s=bandwidth)).time_s == pytest.approx(time_s, rel=1e-9)


def test_impossible_target_is_an_input_error() -> None:
    # 10,000 tokens/s from a 7B model on the Orin NX: compute alone takes 2.6 ms per token.
    with pytest.raises(InputError, match=r"impossible .* at any bandwidth"):
        required_bandwidth(LLAMA, Workload(), 10_000, load_hardware("jetson-orin-nx"))


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_non_positive_targets_are_input_errors(bad: float) -> None:
    with pytest.raises(InputError):
        required_bandwidth(LLAMA, Workload(), bad)
    with pytest.raises(InputError):
        feasibility(LLAMA, EDGE, Workload(), bad)
    with pytest.raises(InputError):
        ParamsOnly(bad)


def test_exercise_2_7_scaling_7b_to_70b() -> None:
    # Bare counts on a 64 GiB AGX Orin (204.8 GB/s): 14 GB / 140 GB in fp16, 3.5 / 35 GB in int4.
    device = load_hardware("nvidia-jetson-agx-orin-64gb")
    rows = {(r.model, r.weights): r for r in model_scaling([ParamsOnly(7e9), ParamsOnly(70e9)], device, Workload(),
                                                           ("fp16", "int4"), target_time_per_token_s=0.1)}
    small, big = rows["7B params", "fp16"], rows["70B params", "fp16"]
    assert (small.weight_bytes, big.weight_bytes) == (14e9, 140e9)
    assert small.fits and not big.fits and rows["70B params", "int4"].fits  # 140 GB > 64 GiB > 35 GB
    # Decode intensity does not fall with size: 2 FLOPs per 2-byte weight = 1 FLOP/B for both.
    assert small.arithmetic_intensity == pytest.approx(1.0) and big.arithmetic_intensity == pytest.approx(1.0)
    assert big.time_per_token_s == pytest.approx(10 * small.time_per_token_s, rel=1e-3)
    assert big.bytes_per_s_for_target == pytest.approx(1.4e12)  # 140 GB per 100 ms


def test_the_studies_price_a_named_engines_ceilings_as_analyze_does() -> None:
    """llama.cpp's CUDA engine accumulates fp16 products in fp16, at twice an RTX 4090's fp32-accumulate fp16
    figure (engines.toml, HardwareSpec.for_engine), and pads the cache it reads to 256 positions: a study's step
    with that engine named is analyze's step, not the device's plain roofline (a compute-bound step of 1024
    positions runs nearly twice as fast)."""
    from llm_roofline import analyze

    gpu = load_hardware("nvidia-rtx-4090")
    plain = Workload(seq_len=16, new_tokens=1024, weights="fp16")
    named = replace(plain, engine="llama.cpp-cuda")
    for workload in (plain, named):  # a verification pass of 1024 positions (speculative decoding's step)
        assert step_time_s(LLAMA, gpu, workload, q_len=1024) == pytest.approx(
            analyze(LLAMA, gpu, workload).totals.time_s, rel=1e-9)
    assert step_time_s(LLAMA, gpu, named, q_len=1024) < 0.65 * step_time_s(LLAMA, gpu, plain, q_len=1024)
    one = replace(named, new_tokens=1)
    assert step_time_s(LLAMA, gpu, one) == pytest.approx(analyze(LLAMA, gpu, one).totals.time_s, rel=1e-9)
    need = required_bandwidth(LLAMA, one, 10, gpu)
    assert need.hardware_tokens_per_s == pytest.approx(1 / step_time_s(LLAMA, gpu, one), rel=1e-9)
    scaling = model_scaling([LLAMA], gpu, one, formats=("fp16",))[0]
    assert scaling.time_per_token_s == pytest.approx(step_time_s(LLAMA, gpu, one), rel=1e-9)
