"""Sliding-window attention: keys read and KV cache capped at the window, causal pairs inside it."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import require_module
from llm_roofline import analyze, custom_hardware, load_model
from llm_roofline.core.transformer import attention_pairs, keys_read, kv_cache_bytes
from llm_roofline.inputs.model_files import model_from_hf_config

A100 = "nvidia-a100-80gb-sxm"
SMALL_MISTRAL: dict[str, Any] = dict(
    model_type="mistral", hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=8,
    num_key_value_heads=4, vocab_size=128, max_position_embeddings=256, sliding_window=8)


def brute_pairs(q_len: int, past: int, window: int, causal: bool) -> int:
    """Count by enumeration: query at position p meets keys in (p - W, p] (causal), or every key loaded."""
    if causal:
        return sum(min(past + i + 1, window) for i in range(q_len))
    return q_len * min(past + q_len, window + q_len - 1)


@pytest.mark.parametrize("causal", [True, False])
def test_pairs_equal_enumeration(causal: bool) -> None:
    for q_len in (1, 2, 7, 40):
        for past in (0, 1, 5, 8, 30, 100):
            assert attention_pairs(q_len, past, causal, ("window", 8)) == brute_pairs(q_len, past, 8, causal)
    # No window: the plain formulas.
    assert attention_pairs(4, 10, True) == 4 * 10 + 4 * 5 // 2  # q·past + q(q+1)/2
    assert keys_read(1, 9000) == 9001


def brute_chunk(q_len: int, past: int, chunk: int, causal: bool) -> tuple[int, int]:
    """(keys read, pairs) by enumeration: a query at position p meets the keys of its own chunk up to p."""
    first = past // chunk * chunk  # the first query's chunk starts here; later keys are read anyway
    keys = past + q_len - first
    if causal:
        return keys, sum(p % chunk + 1 for p in range(past, past + q_len))
    return keys, q_len * keys


@pytest.mark.parametrize("causal", [True, False])
def test_chunked_pairs_equal_enumeration(causal: bool) -> None:
    for q_len in (1, 2, 7, 40):
        for past in (0, 1, 5, 8, 30, 100):
            keys, pairs = brute_chunk(q_len, past, 8, causal)
            assert keys_read(q_len, past, ("chunk", 8)) == keys
            assert attention_pairs(q_len, past, causal, ("chunk", 8)) == pairs


def test_mistral_decode_reads_the_window() -> None:
    # Mistral-7B v0.1: window 4096. At 8000 cached tokens a decode step reads 4096 keys, not 8001.
    ops = {op.name: op for op in analyze("mistral-7b", A100, seq_len=8000).ops}
    assert ops["layer.attn.qk"].kv_read_bytes == 4096 * 8 * 128 * 2  # keys x KV heads x head_dim x fp16
    assert ops["layer.attn.qk"].flops == 2 * 32 * 4096 * 128
    short = {op.name: op for op in analyze("mistral-7b", A100, seq_len=1000).ops}
    assert short["layer.attn.qk"].kv_read_bytes == 1001 * 8 * 128 * 2


def test_kv_cache_is_a_rolling_buffer() -> None:
    mistral = load_model("mistral-7b")
    fmt = analyze(mistral, A100).workload.kv_format
    per_token = 2 * 32 * 8 * 128 * 2  # K and V, 32 layers, 8 heads x 128, fp16 = 131,072 B
    assert kv_cache_bytes(mistral, 1, 3000, fmt) == 3000 * per_token
    assert kv_cache_bytes(mistral, 2, 32768, fmt) == 2 * 4096 * per_token


def test_qwen2_window_only_above_max_window_layers() -> None:
    base = dict(model_type="qwen2", hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=100, max_position_embeddings=512, sliding_window=16)
    assert model_from_hf_config({**base, "use_sliding_window": False}).windowed_layers == 0
    assert model_from_hf_config({**base, "use_sliding_window": True, "max_window_layers": 4}).windowed_layers == 0
    partial = model_from_hf_config({**base, "use_sliding_window": True, "max_window_layers": 3})
    assert (partial.sliding_window, partial.windowed_layers) == (16, 1)
    ops = {op.name: op for op in analyze(partial, A100, seq_len=200).ops}
    assert ops["layer.attn.qk"].count == 3 and ops["layer.attn.window.qk"].count == 1
    assert ops["layer.attn.window.qk"].kv_read_bytes < ops["layer.attn.qk"].kv_read_bytes
    assert load_model("qwen2.5-7b").windowed_layers == 0  # use_sliding_window: false


@pytest.mark.parametrize(("phase", "batch", "length"), [("prefill", 1, 7), ("prefill", 2, 20), ("decode", 1, 5),
                                                        ("decode", 2, 24)])
def test_flops_equal_torch_with_a_window(phase: str, batch: int, length: int) -> None:
    # transformers' eager attention computes the full rectangle of the keys it holds (its sliding cache keeps
    # the last W - 1), which is our count without causal skipping.
    ref = require_module("hf_reference")
    model = ref.build(SMALL_MISTRAL)
    torch_flops = (ref.prefill_flops(model, batch, length, last_token_only=True) if phase == "prefill"
                   else ref.decode_step_flops(model, batch, length))
    result = analyze(model_from_hf_config(SMALL_MISTRAL), custom_hardware(1e12, {"fp32": 1e12}), activations="fp32",
                     phase=phase, batch=batch, seq_len=length)
    assert sum(op.flops * op.count for op in result.ops if op.kind == "matmul") == torch_flops
