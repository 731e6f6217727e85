"""Golden numbers and invariants of the operator cost model and the roofline."""

from __future__ import annotations

from dataclasses import replace

import pytest

from llm_roofline import Workload, analyze, custom_hardware, get_format, load_hardware, load_model
from llm_roofline.core.transformer import step_counts, step_ops, step_plan

A100 = "nvidia-a100-80gb-sxm"


def ops_by_name(result):  # type: ignore[no-untyped-def]
    return {op.name: op for op in result.ops}


def test_llama2_7b_decode_golden() -> None:
    # Llama-2-7B decode, batch 1, 2048 cached tokens, fp16 (d = 4096, I = 11008, 32 layers, V = 32000).
    r = analyze("llama-2-7b", A100, phase="decode", batch=1, seq_len=2048)
    ops = ops_by_name(r)
    # q_proj: 2 * 1 * 4096 * 4096 = 33,554,432 FLOP; bytes = 4096*4096*2 (W) + 4096*2 (x) + 4096*2 (y)
    assert ops["layer.attn.q_proj"].flops == 33_554_432
    assert ops["layer.attn.q_proj"].bytes == 4096 * 4096 * 2 + 2 * 4096 * 2
    # lm_head at 2 FLOP per MAC (LLM-Viewer counts 1): 2 * 4096 * 32000 = 262,144,000
    assert ops["lm_head"].flops == 262_144_000
    assert ops["lm_head"].arithmetic_intensity == pytest.approx(1.0, rel=1e-3)
    # SwiGLU multiply over the intermediate size (LLM-Viewer uses hidden): (4 + 1) * 11008 FLOP
    assert ops["layer.mlp.act"].flops == 5 * 11008
    # QK^T over the 2049 keys (2048 cached + itself): 2 * 32 heads * 2049 * 128
    assert ops["layer.attn.qk"].flops == 2 * 32 * 2049 * 128
    # KV cache after the step: 2 (K, V) * 32 layers * 2049 tokens * 4096 * 2 B = 1,074,266,112 B
    assert r.totals.kv_cache_bytes == 1_074_266_112
    # Stored weights = 6,738,415,616 params * 2 B
    assert r.memory.weight_bytes == 6_738_415_616 * 2
    # Streaming ~14.3 GB at 2039 GB/s: ~7.02 ms/token (peers.md's hand roofline: 7.01 ms)
    assert r.totals.time_s == pytest.approx(7.02e-3, rel=2e-3)
    assert r.totals.bound == "memory"


def test_gqa_reads_q_with_all_heads_and_kv_with_kv_heads() -> None:
    # Llama-2-70B: 64 query heads, 8 KV heads, head_dim 128. Prefill L = 512, eager (full square).
    r = analyze("llama-2-70b", A100, phase="prefill", seq_len=512)
    qk = ops_by_name(r)["layer.attn.qk"]
    assert qk.act_read_bytes == 512 * 64 * 128 * 2  # Q with 64 heads (LLM-Viewer loads 8)
    assert qk.kv_read_bytes == 512 * 8 * 128 * 2  # K with 8 heads
    assert qk.act_write_bytes == 64 * 512 * 512 * 2  # the score matrix


def test_flash_attention_removes_the_score_traffic() -> None:
    base = Workload(phase="prefill", seq_len=2048)
    eager = analyze("llama-2-7b", A100, base)
    fused = analyze("llama-2-7b", A100, replace(base, flash_attention=True, causal_skip=False))
    e, f = ops_by_name(eager), ops_by_name(fused)
    scores = 32 * 2048 * 2048 * 2  # one H x L x L fp16 matrix per layer
    unfused = e["layer.attn.qk"].bytes + e["layer.attn.softmax"].bytes + e["layer.attn.sv"].bytes
    # Scores written, read and rewritten by softmax, probabilities read: 4 passes, and K, V once each.
    assert unfused - f["layer.attn.flash"].bytes == pytest.approx(4 * scores)
    assert f["layer.attn.flash"].flops == (e["layer.attn.qk"].flops + e["layer.attn.softmax"].flops
                                          + e["layer.attn.sv"].flops)
    assert f["layer.attn.flash"].bound == "compute"  # FLOPs at 312 TFLOP/s, not 537 MB/layer of traffic
    assert fused.totals.time_s < eager.totals.time_s


def test_causal_skip_halves_the_prefill_scores() -> None:
    # pairs = L(L+1)/2 with causal skipping vs L^2 without
    full = analyze("gpt2", A100, phase="prefill", seq_len=1024, causal_skip=False)
    half = analyze("gpt2", A100, phase="prefill", seq_len=1024, causal_skip=True)
    assert ops_by_name(half)["layer.attn.qk"].flops / ops_by_name(full)["layer.attn.qk"].flops == pytest.approx(
        (1024 * 1025 / 2) / 1024**2)


def test_decode_is_prefill_with_one_query_token() -> None:
    model = load_model("qwen2.5-0.5b")
    fmt = get_format("fp16")
    plan = step_plan(model, fmt, fmt, fmt, False, False)
    decode = step_ops(model, Workload(phase="decode", batch=3, seq_len=100))
    same = plan.ops(step_counts(model, 3, 1, 100, False))
    assert [(o.name, o.cost) for o in decode] == [(o.name, o.cost) for o in same]
    first = step_ops(model, Workload(phase="prefill", batch=3, seq_len=1))
    one_token = plan.ops(step_counts(model, 3, 1, 0, False))
    assert [(o.name, o.cost) for o in first] == [(o.name, o.cost) for o in one_token]


@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("device", ["jetson-orin-nx", "nvidia-h100-sxm", "apple-m2-gpu", "raspberry-pi-5"])
def test_time_is_max_of_compute_and_memory(phase: str, device: str) -> None:
    hw = load_hardware(device)
    r = analyze("llama-3.2-1b", hw, phase=phase, batch=4, seq_len=256,
                activations="fp16" if "fp16" in hw.peak_flops_per_s else "fp32")
    for op in r.ops:
        _, peak = hw.peak_for(op.precision)
        assert op.time_s == pytest.approx(max(op.flops / peak, op.bytes / hw.memory_bytes_per_s))
        assert op.bound == ("compute" if op.flops / peak > op.bytes / hw.memory_bytes_per_s else "memory")
        assert op.bytes == pytest.approx(op.weight_bytes + op.act_read_bytes + op.act_write_bytes
                                         + op.kv_read_bytes + op.kv_write_bytes)
        assert op.attainable_flops_per_s <= op.peak_flops_per_s * (1 + 1e-12)


def test_weight_only_int4_runs_fp16_math() -> None:
    r = analyze("llama-2-7b", "nvidia-rtx-4090", weights="int4", activations="fp16")
    q = ops_by_name(r)["layer.attn.q_proj"]
    assert q.precision == "fp16" and q.peak_precision == "fp16"
    # 4 bits per weight + one fp16 scale and zero per output row: 4096*4096/2 + 4096*4
    assert q.weight_bytes == 4096 * 4096 / 2 + 4096 * 4
    w8a8 = analyze("llama-2-7b", "nvidia-rtx-4090", weights="int8", activations="int8")
    assert ops_by_name(w8a8)["layer.attn.q_proj"].peak_precision == "int8"
    assert ops_by_name(w8a8)["layer.attn.softmax"].precision == "fp16"


def test_peak_falls_back_to_a_wider_unit() -> None:
    # The chapter's Snapdragon CPU has only an fp32 ceiling: fp16 math runs there.
    r = analyze("tinyllama-1.1b", "snapdragon-8-gen-3-cpu", activations="fp16")
    assert {op.peak_precision for op in r.ops} == {"fp32"}
    with pytest.raises(ValueError, match="no compute ceiling"):
        custom_hardware(1e9, {"int8": 1e12}).peak_for("fp32")


def test_kv_cache_precision_is_independent() -> None:
    fp16 = analyze("llama-3-8b", A100, seq_len=4096)
    int8 = analyze("llama-3-8b", A100, seq_len=4096, kv_cache="int8")
    assert int8.totals.kv_cache_bytes == pytest.approx(fp16.totals.kv_cache_bytes / 2)
    assert int8.totals.kv_read_bytes == pytest.approx(fp16.totals.kv_read_bytes / 2)
    assert int8.totals.weight_bytes == fp16.totals.weight_bytes


def test_memory_fit() -> None:
    # 13.5 GB of fp16 weights do not fit an 8 GB Jetson Orin Nano; int4 (~3.5 GB) does.
    assert analyze("llama-2-7b", "nvidia-jetson-orin-nano-8gb").memory.fits is False
    assert analyze("llama-2-7b", "nvidia-jetson-orin-nano-8gb", weights="int4").memory.fits is True
    assert analyze("llama-2-7b", custom_hardware(1e11, {"fp16": 1e13})).memory.fits is None


def test_intensity_of_weight_matmuls_rises_with_batch() -> None:
    intensities = [ops_by_name(analyze("llama-2-7b", A100, batch=b)).get("layer.mlp.up_proj").arithmetic_intensity
                   for b in (1, 2, 8, 64, 512)]
    assert intensities == sorted(intensities)
    assert intensities[0] == pytest.approx(1.0, rel=1e-3)
