"""Our matmul FLOPs equal PyTorch's FlopCounterMode on real transformers models, exactly.

Each model is built from a small config (random weights, eager attention). Eager attention
computes the full L x L score matrix, so the comparison runs with causal skipping off (the
default without FlashAttention). torch counts a Linear's addmm as 2*M*N*K without the bias add,
so the expected value adds the bias FLOPs (one per output element of each biased projection),
derived here from the config by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import require_module
from llm_roofline import analyze, custom_hardware
from llm_roofline.inputs.model_files import model_from_hf_config

ref = require_module("hf_reference")  # PyTorch and transformers

DEVICE = custom_hardware(1e12, {"fp32": 1e12})

CONFIGS: dict[str, dict[str, Any]] = {
    # GQA: 8 query heads share 2 KV heads.
    "llama-gqa": dict(model_type="llama", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=8, num_key_value_heads=2, vocab_size=128, max_position_embeddings=256),
    # Biases on q, k and v (not o).
    "qwen2-bias": dict(model_type="qwen2", hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                       num_attention_heads=6, num_key_value_heads=2, vocab_size=100, max_position_embeddings=256,
                       tie_word_embeddings=True),
    # head_dim 32 != hidden / heads = 16, MQA, GeGLU, tied embeddings.
    "gemma-head-dim": dict(model_type="gemma", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=1, head_dim=32, vocab_size=96,
                           max_position_embeddings=256),
    # LayerNorm, plain GELU MLP, biases everywhere, learned positions.
    "gpt2": dict(model_type="gpt2", n_embd=64, n_head=4, n_layer=2, n_positions=128, vocab_size=100),
    "phi3": dict(model_type="phi3", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=4, vocab_size=120, max_position_embeddings=256,
                 pad_token_id=0),
    "mistral": dict(model_type="mistral", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=4, vocab_size=128, max_position_embeddings=256,
                    sliding_window=None),
    # Post-attention and post-MLP norms, head_dim 32 != 64 / 4, a window of 8 on every other layer (1-based odd).
    "gemma2": dict(model_type="gemma2", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, head_dim=32, vocab_size=96,
                   max_position_embeddings=256, sliding_window=8),
    # Gemma-2's norms plus per-head q/k norms, MQA; windowed layers 1 and 2 of 3 (pattern 3), window 8.
    "gemma3": dict(model_type="gemma3_text", hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                   num_attention_heads=4, num_key_value_heads=1, head_dim=32, vocab_size=96,
                   max_position_embeddings=256, sliding_window=8, sliding_window_pattern=3),
    # Per-head q/k RMSNorms, no biases.
    "qwen3": dict(model_type="qwen3", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32, vocab_size=128,
                  max_position_embeddings=256),
    # 4 experts top-2 of width 32 in layers 0 and 2; layer 1 dense (mlp_only_layers).
    "qwen3-moe": dict(model_type="qwen3_moe", hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                      num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=4,
                      num_experts_per_tok=2, mlp_only_layers=[1], vocab_size=128, max_position_embeddings=256),
    # Post-norms only, q/k norms over all heads at once.
    "olmo2": dict(model_type="olmo2", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, vocab_size=128, max_position_embeddings=256),
    # Every 4th layer without RoPE (NoPE); tied embeddings.
    "smollm3": dict(model_type="smollm3", hidden_size=64, intermediate_size=96, num_hidden_layers=4,
                    num_attention_heads=4, num_key_value_heads=2, vocab_size=128, max_position_embeddings=256,
                    pad_token_id=0),
    # Scalar multipliers (no matmul FLOPs of their own).
    "granite": dict(model_type="granite", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, vocab_size=128, max_position_embeddings=256,
                    embedding_multiplier=12.0, residual_multiplier=0.22, logits_scaling=8.0),
    # Parallel attention + MLP under one LayerNorm, RoPE on half of each head, biases everywhere (lm_head too).
    "phi": dict(model_type="phi", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                vocab_size=128, max_position_embeddings=256, partial_rotary_factor=0.5),
    # LayerNorm, ReLU, biases, a learned position table with 2 extra rows, tied embeddings.
    "opt": dict(model_type="opt", hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                vocab_size=128, max_position_embeddings=256, word_embed_proj_dim=64),
    # Sinks, sliding (8) and full layers alternating, 4 biased experts top-2, a biased router.
    "gpt-oss": dict(model_type="gpt_oss", hidden_size=64, intermediate_size=32, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_local_experts=4,
                    num_experts_per_tok=2, sliding_window=8, vocab_size=128, max_position_embeddings=256),
    # MLA (q rank 24, kv rank 16, RoPE 4 + no-RoPE 8 per key, values 12), layer 0 dense, then 4 experts top-2
    # and one shared expert. transformers caches the latent and decompresses every key each step: our naive form.
    "deepseek-v3": dict(model_type="deepseek_v3", hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                        num_hidden_layers=3, first_k_dense_replace=1, num_attention_heads=4, num_key_value_heads=4,
                        n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, n_group=2, topk_group=1,
                        q_lora_rank=24, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=12,
                        vocab_size=128, max_position_embeddings=256),
    # Chunked attention (8) on RoPE layers, a NoPE layer every 4th, MoE every other layer (top-1 of 4 + shared).
    "llama4": dict(model_type="llama4_text", hidden_size=64, intermediate_size=32, intermediate_size_mlp=96,
                   num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_local_experts=4,
                   num_experts_per_tok=1, interleave_moe_layer_step=2, attention_chunk_size=8, vocab_size=128,
                   max_position_embeddings=256),
}


def _bias_flops(config: dict[str, Any], tokens: int) -> int:
    """Bias adds (which torch's addmm count leaves out), by hand: tokens x (biased output widths) x layers;
    lm_head's bias counts once per scored row, added by the caller."""
    family = config["model_type"]
    if family in ("phi", "opt"):
        d, inter = config["hidden_size"], config.get("intermediate_size") or config["ffn_dim"]
        # q, k, v, o: 4d; fc1 inter; fc2 d
        return tokens * (4 * d + inter + d) * config["num_hidden_layers"]
    if family == "gpt_oss":
        d, hd, inter = config["hidden_size"], config["head_dim"], config["intermediate_size"]
        attn = config["num_attention_heads"] * hd + 2 * config["num_key_value_heads"] * hd + d  # q, k, v, o
        router = config["num_local_experts"]
        experts = config["num_experts_per_tok"] * (2 * inter + d)  # gate+up and down of each routed expert
        return tokens * (attn + router + experts) * config["num_hidden_layers"]
    if family == "qwen2":
        head_dim = config["hidden_size"] // config["num_attention_heads"]
        widths = (config["num_attention_heads"] + 2 * config["num_key_value_heads"]) * head_dim
        return tokens * widths * config["num_hidden_layers"]
    if family == "gpt2":
        d = config["n_embd"]
        # c_attn 3d, attn c_proj d, mlp c_fc 4d, mlp c_proj d
        return tokens * (3 * d + d + 4 * d + d) * config["n_layer"]
    return 0


def _lm_head_bias_flops(config: dict[str, Any], rows: int) -> int:
    return rows * config["vocab_size"] if config["model_type"] == "phi" else 0


def _dense_expert_flops(config: dict[str, Any], tokens: int) -> int:
    """transformers' Llama 4 runs every token through every expert (scores zero the unchosen ones); engines
    and we count the routed k only. The difference: (E - k) x tokens x one expert's 2·d·2I + 2·I·d, per MoE layer."""
    if config["model_type"] != "llama4_text":
        return 0
    d, inter = config["hidden_size"], config["intermediate_size"]
    moe_layers = config["num_hidden_layers"] // config["interleave_moe_layer_step"]
    unrouted = config["num_local_experts"] - config["num_experts_per_tok"]
    return moe_layers * unrouted * tokens * (2 * d * 2 * inter + 2 * inter * d)


def _chunk_cache_excess_flops(config: dict[str, Any], batch: int, cached: int) -> int:
    """transformers keeps a chunked layer's cache as a sliding window of C tokens and masks the keys outside
    the query's chunk, so a decode step multiplies min(kv, C) keys where the chunk holds kv - C·floor(past/C)
    (as engines and we count). Q K^T and P V each do 2·H·hd FLOPs per key: 4·H·hd per extra key, per chunked
    layer (the RoPE layers: 3 of every 4)."""
    if config["model_type"] != "llama4_text":
        return 0
    chunk, kv = config["attention_chunk_size"], cached + 1
    extra = min(kv, chunk) - (kv - chunk * (cached // chunk))
    chunked_layers = config["num_hidden_layers"] - config["num_hidden_layers"] // 4
    return chunked_layers * batch * 4 * config["num_attention_heads"] * config["head_dim"] * extra


def _matmul_flops(config: dict[str, Any], **workload: Any) -> float:
    result = analyze(model_from_hf_config(config), DEVICE, activations="fp32", **workload)
    return sum(op.flops * op.count for op in result.ops if op.kind == "matmul")


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def family(request: pytest.FixtureRequest) -> tuple[dict[str, Any], Any]:
    config = CONFIGS[request.param]
    return config, ref.build(config)


@pytest.mark.parametrize(("batch", "prompt_len"), [(1, 7), (3, 16)])
@pytest.mark.parametrize("lm_head", ["last", "all"])
def test_prefill_flops_equal_torch(family: tuple[dict[str, Any], Any], batch: int, prompt_len: int,
                                   lm_head: str) -> None:
    config, model = family
    torch_flops = ref.prefill_flops(model, batch, prompt_len, last_token_only=lm_head == "last")
    ours = _matmul_flops(config, phase="prefill", batch=batch, seq_len=prompt_len, lm_head=lm_head)
    tokens = batch * prompt_len
    scored = batch if lm_head == "last" else tokens
    assert ours == (torch_flops + _bias_flops(config, tokens) + _lm_head_bias_flops(config, scored)
                    - _dense_expert_flops(config, tokens))


@pytest.mark.parametrize(("batch", "cached"), [(1, 9), (2, 24)])
def test_decode_step_flops_equal_torch(family: tuple[dict[str, Any], Any], batch: int, cached: int) -> None:
    config, model = family
    torch_flops = ref.decode_step_flops(model, batch, cached)
    ours = _matmul_flops(config, phase="decode", batch=batch, seq_len=cached, mla="naive")
    assert ours == (torch_flops + _bias_flops(config, batch) + _lm_head_bias_flops(config, batch)
                    - _dense_expert_flops(config, batch) - _chunk_cache_excess_flops(config, batch, cached))
