"""Deployments: memory fit, offload, tensor and pipeline parallelism, speculative decoding."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from llm_roofline import InputError, Workload, analyze, load_hardware, load_model
from llm_roofline.faces.cli.main import main
from llm_roofline.features.deploy import (
    Link,
    acceptance_rate_for_tokens,
    expected_tokens_per_target_pass,
    fit,
    memory_footprint,
    offload_to_storage,
    pipeline_parallel,
    required_acceptance_rate,
    ring_all_gather_time_s,
    ring_all_reduce_time_s,
    speculative_decoding,
    split_layers,
    tensor_parallel,
    tensor_parallel_shard,
)

ORIN_NANO = "nvidia-jetson-orin-nano-8gb"  # 8 GiB


def test_llama_2_7b_fits_8_gb_at_q4_0_not_f16() -> None:
    model, device = load_model("llama-2-7b"), load_hardware(ORIN_NANO)
    assert fit(model, device, Workload()).footprint.fits is False  # 13.5 GB of fp16 weights alone
    report = fit(model, device, Workload(weights="q4_0"))
    f = report.footprint
    # Q4_0 file (llama.cpp): 6,476,005,376 layer weights + 131,072,000 embedding at 4.5 bits, the output
    # (131,072,000) at Q6_K's 6.5625 bits, 266,240 norm weights in fp32.
    assert f.weight_bytes == 6_607_077_376 * 4.5 / 8 + 131_072_000 * 6.5625 / 8 + 266_240 * 4 == 3_825_065_984
    # KV cache: 2 x 32 layers x 1025 tokens x 4096 x 2 B
    assert f.kv_cache_bytes == 537_395_200
    # Peak activations: the last 512-token prompt chunk's softmax reads and writes 32 heads x 512 x 1025
    # scores (2 x 33,587,200 B), with the residual stream 512 x 4096 x 2 B.
    assert f.activation_bytes == 2 * 32 * 512 * 1025 * 2 + 512 * 4096 * 2
    assert f.total_bytes == f.weight_bytes + f.kv_cache_bytes + f.activation_bytes + 0.5e9
    # 4.9 GiB of the 8 GiB: what JetPack 6 and its desktop leave (the device file's usable_memory_bytes).
    assert f.fits is True and f.capacity_bytes == device.usable_memory_bytes == int(4.9 * 2**30)
    assert f.memory_pressure is False and f.physical_memory_bytes == 8 * 2**30
    assert report.max_context_tokens == 1580 and report.max_context_limited_by == "memory"
    assert report.max_batch == 1
    assert memory_footprint(model, device, Workload(weights="q4_0", batch=1)).fits
    assert not memory_footprint(model, device, Workload(weights="q4_0", batch=2)).fits


def test_usable_memory_of_a_phone_limits_the_context() -> None:
    model, phone = load_model("llama-2-7b"), load_hardware("apple-a17-pro-gpu")
    assert phone.available_memory_bytes == 6 * 2**30 < phone.memory_bytes
    report = fit(model, phone, Workload(weights="q4_0"))
    n = report.max_context_tokens
    assert report.max_context_limited_by == "memory" and 3000 < n < 4096
    at = lambda tokens: memory_footprint(model, phone, Workload(weights="q4_0", seq_len=tokens - 1)).fits  # noqa: E731
    assert at(n) and not at(n + 1)


def test_sliding_window_stretches_the_context() -> None:
    # Mistral's rolling KV buffer stops growing at 4096 tokens: the model's 32k limit binds, not memory.
    report = fit(load_model("mistral-7b"), load_hardware("jetson-orin-nx"), Workload(weights="q4_k_m"))
    assert report.max_context_tokens == 32768 and report.max_context_limited_by == "model"


def test_storage_offload() -> None:
    model, phone = load_model("llama-2-13b"), load_hardware("snapdragon-8-gen-3-gpu")
    workload = Workload(weights="q8_0")
    result = offload_to_storage(model, phone, workload)
    assert result.footprint.fits is False and result.feasible
    assert 0 < result.resident_layers < 40 and result.streamed_layers == 40 - result.resident_layers
    per_layer = result.streamed_bytes / result.streamed_layers
    assert phone.available_memory_bytes is not None  # the app's share of the phone, not its 12 GiB
    room = (phone.available_memory_bytes - result.footprint.kv_cache_bytes - result.footprint.activation_bytes - 0.5e9
            - (result.footprint.weight_bytes - 40 * per_layer))
    assert result.resident_layers * per_layer <= room < (result.resident_layers + 1) * per_layer
    assert result.storage_time_s == result.streamed_bytes / 4.2e9
    assert result.time_s == result.roofline_time_s + result.storage_time_s
    assert result.overlapped_time_s == max(result.roofline_time_s, result.storage_time_s)
    everything = offload_to_storage(load_model("tinyllama-1.1b"), phone, workload)
    assert everything.streamed_layers == 0 and everything.storage_time_s == 0
    with pytest.raises(InputError, match="no storage bandwidth"):
        offload_to_storage(model, load_hardware("nvidia-rtx-4090"), workload)


def test_split_layers_follows_llama_cpp_ngl() -> None:
    model, gpu, cpu = load_model("llama-2-7b"), load_hardware("nvidia-rtx-4090"), load_hardware("amd-ryzen-9-7950x")
    workload = Workload()
    none = split_layers(model, gpu, cpu, workload, gpu_layers=0)
    assert (none.accelerator_layers, none.output_on_accelerator, none.accelerator_time_s) == (0, False, 0)
    assert none.time_s == pytest.approx(analyze(model, cpu, workload).totals.time_s)
    output_only = split_layers(model, gpu, cpu, workload, gpu_layers=1)
    assert output_only.accelerator_layers == 0 and output_only.output_on_accelerator
    everything = split_layers(model, gpu, cpu, workload, gpu_layers=33)  # n_layer + 1
    assert everything.host_layers == 0
    on_cpu = next(op.time_s for op in analyze(model, cpu, workload).ops if op.name == "embed")
    assert everything.time_s == pytest.approx(analyze(model, gpu, workload).totals.time_s
                                              - next(op.time_s for op in analyze(model, gpu, workload).ops
                                                     if op.name == "embed") + on_cpu)
    assert split_layers(model, gpu, cpu, workload, gpu_layers=99).accelerator_layers == 32
    times = [split_layers(model, gpu, cpu, workload, gpu_layers=n).time_s for n in (0, 8, 16, 33)]
    assert times == sorted(times, reverse=True)


def test_split_picks_the_most_layers_that_fit() -> None:
    model, gpu, cpu = load_model("llama-2-70b"), load_hardware("nvidia-rtx-4090"), load_hardware("amd-ryzen-9-7950x")
    workload = Workload(weights="q4_k_m")
    auto = split_layers(model, gpu, cpu, workload)
    assert auto.accelerator_fits and 0 < auto.accelerator_layers < 80
    assert not split_layers(model, gpu, cpu, workload, gpu_layers=auto.gpu_layers + 1).accelerator_fits
    linked = split_layers(model, gpu, cpu, workload, gpu_layers=auto.gpu_layers, link=Link(32e9, 10e-6))
    # The hidden state in (8192 x 2 B) and the 32000 fp16 logits out, each one 10 µs message.
    assert linked.transfer_time_s == pytest.approx(2 * 10e-6 + (8192 * 2 + 32000 * 2) / 32e9)


def test_ring_all_reduce() -> None:
    link = Link(125e6, 100e-6)  # 1 GbE, 100 µs per message
    # 2(N-1)·alpha + 2(N-1)/N · n / beta = 6 x 100 µs + 1.5 x 16384 / 125e6 = 796.608 µs
    assert ring_all_reduce_time_s(16384, 4, link) == pytest.approx(796.608e-6)
    assert ring_all_gather_time_s(16384, 4, link) == pytest.approx(3 * 100e-6 + 0.75 * 16384 / 125e6)
    assert ring_all_reduce_time_s(1e9, 1, link) == 0


def test_tensor_parallel() -> None:
    model, device = load_model("llama-2-70b"), load_hardware("jetson-orin-nx")
    workload = Workload(weights="q4_k_m")
    shard = tensor_parallel_shard(model, 4)
    assert (shard.num_heads, shard.num_kv_heads, shard.intermediate_size, shard.vocab_size) == (16, 2, 7168, 8000)
    assert tensor_parallel_shard(model, 16).num_kv_heads == 1  # 8 KV heads replicated over 16 devices
    fast = tensor_parallel(model, device, workload, 4, Link(10e9, 5e-6))
    slow = tensor_parallel(model, device, workload, 4, Link(125e6, 100e-6))
    assert fast.all_reduces == 2 * 80 + 1 and fast.all_reduce_bytes == 8192 * 2
    assert fast.compute_time_s == slow.compute_time_s
    assert slow.communication_time_s > 0.1 > fast.communication_time_s  # 161 x 6 x 100 µs of latency alone
    assert fast.footprint_per_device.fits and fast.speedup > 3
    one = tensor_parallel(model, device, workload, 1, Link(1e9))
    assert one.communication_time_s == 0 and one.time_s == one.single_device_time_s
    with pytest.raises(InputError, match="multiples of 3"):
        tensor_parallel_shard(model, 3)


def test_pipeline_parallel() -> None:
    model, device = load_model("llama-2-70b"), load_hardware("jetson-orin-nx")
    link = Link(125e6, 100e-6)
    result = pipeline_parallel(model, device, Workload(weights="q4_k_m", batch=4), 3, link, micro_batches=4)
    assert [stage.layers for stage in result.stages] == [27, 27, 26]
    assert result.bubble_fraction == pytest.approx(2 / 6)
    assert result.time_s == pytest.approx(6 * result.slot_time_s)
    assert result.hop_time_s == pytest.approx(100e-6 + 8192 * 2 / 125e6)  # one micro-batch of 1 token
    assert result.steady_decode_tokens_per_s == pytest.approx(4 / (4 * result.slot_time_s))
    # A third of 41 GB of weights is more than the 12.9 GiB an Orin NX lends a program; a quarter is not.
    assert not result.fits
    assert pipeline_parallel(model, device, Workload(weights="q4_k_m", batch=4), 4, link, micro_batches=4).fits
    single = pipeline_parallel(model, device, Workload(weights="q4_k_m"), 4, link)
    assert single.time_s == pytest.approx(4 * single.slot_time_s) and single.bubble_fraction == 0.75
    with pytest.raises(InputError, match="multiple of micro_batches"):
        pipeline_parallel(model, device, Workload(batch=3), 2, link, micro_batches=2)


def test_expected_tokens_per_target_pass() -> None:
    # Leviathan et al. (2023), eq. 1: (1 - alpha^(gamma+1)) / (1 - alpha)
    assert expected_tokens_per_target_pass(0.7, 4) == pytest.approx((1 - 0.7**5) / 0.3) == pytest.approx(2.7731)
    assert expected_tokens_per_target_pass(1.0, 4) == 5
    assert expected_tokens_per_target_pass(0.0, 4) == 1
    assert expected_tokens_per_target_pass(0.5, 0) == 1
    with pytest.raises(InputError):
        expected_tokens_per_target_pass(1.2, 4)


def test_acceptance_rate_inverts_the_closed_form() -> None:
    for alpha in (0.1, 0.5, 0.8, 0.95):
        tokens = expected_tokens_per_target_pass(alpha, 5)
        assert acceptance_rate_for_tokens(tokens, 5) == pytest.approx(alpha, abs=1e-12)
    assert acceptance_rate_for_tokens(0.9, 5) == 0.0
    assert acceptance_rate_for_tokens(6.5, 5) is None


def test_speculative_decoding() -> None:
    target, draft, device = load_model("llama-2-7b"), load_model("tinyllama-1.1b"), load_hardware("jetson-orin-nx")
    workload = Workload(weights="q4_0")
    result = speculative_decoding(target, draft, device, workload, 4, 0.7)
    assert result.target_step_time_s == analyze(target, device, workload).totals.time_s
    assert result.verify_time_s == analyze(target, device, replace(workload, new_tokens=5)).totals.time_s
    assert result.cycle_time_s == pytest.approx(4 * result.draft_step_time_s + result.verify_time_s)
    assert result.speedup == pytest.approx(result.tokens_per_target_pass * result.target_step_time_s
                                           / result.cycle_time_s)
    # Memory-bound verification costs about one plain step: the speedup nears Leviathan's
    # (1 - a^(g+1)) / ((1 - a)(g c + 1)), c = draft / target time.
    c = result.draft_step_time_s / result.target_step_time_s
    assert result.speedup == pytest.approx((1 - 0.7**5) / (0.3 * (4 * c + 1)), rel=0.03)
    needed = required_acceptance_rate(target, draft, device, workload, 4, result.time_per_token_s)
    assert needed.acceptance_rate == pytest.approx(0.7, abs=1e-9)
    assert required_acceptance_rate(target, draft, device, workload, 4, 1e-4).acceptance_rate is None


@pytest.mark.parametrize("command", [
    ["fit", "-m", "llama-2-7b", "-H", ORIN_NANO, "-w", "q4_0"],
    ["offload", "-m", "llama-2-13b", "-H", "snapdragon-8-gen-3-gpu", "-w", "q8_0"],
    ["offload", "-m", "llama-2-70b", "-H", "nvidia-rtx-4090", "--host", "amd-ryzen-9-7950x", "-w", "q4_k_m"],
    ["parallel", "-m", "llama-2-70b", "-w", "q4_k_m", "-n", "4", "--link-gb-s", "1.25"],
    ["speculative", "-m", "llama-2-7b", "--draft", "tinyllama-1.1b", "--target-ms", "30"],
    ["formats"],
])
def test_cli_json(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    assert main([*command, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)
    assert main(command) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize(("command", "fragment"), [
    (["parallel", "-n", "4"], "--link-gb-s"),
    (["parallel", "-n", "3", "--link-gb-s", "1", "--mode", "tp"], "multiples of 3"),
    (["parallel", "-n", "2", "--link-gb-s", "1", "--mode", "pp", "-b", "3", "--micro-batches", "2"],
     "multiple of micro_batches"),
    (["speculative", "--draft", "tinyllama-1.1b", "--acceptance", "1.5"], "expected a number from 0 to 1"),
    (["speculative", "--draft", "tinyllama-1.1b", "--phase", "prefill"], "decode steps"),
    (["offload", "--host", "no-such-cpu"], "unknown hardware"),
    (["offload", "-H", "nvidia-rtx-4090"], "no storage bandwidth"),
    (["fit", "--bandwidth-gb-s", "100", "--peak-tflops", "10"], "no memory capacity"),
    (["fit", "-w", "q9_k"], "unknown precision"),
    (["analyze", "-m", "missing.gguf"], "missing.gguf: cannot read (no such file)"),
])
def test_cli_bad_input_one_line_exit_2(capsys: pytest.CaptureFixture[str], command: list[str],
                                       fragment: str) -> None:
    assert main(command) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and fragment in lines[0]
