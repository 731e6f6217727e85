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
from llm_roofline.models import model_from_hf_config

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
}


def _bias_flops(config: dict[str, Any], tokens: int) -> int:
    """Bias adds, by hand: tokens x (biased output widths) x layers."""
    family = config["model_type"]
    if family == "qwen2":
        head_dim = config["hidden_size"] // config["num_attention_heads"]
        widths = (config["num_attention_heads"] + 2 * config["num_key_value_heads"]) * head_dim
        return tokens * widths * config["num_hidden_layers"]
    if family == "gpt2":
        d = config["n_embd"]
        # c_attn 3d, attn c_proj d, mlp c_fc 4d, mlp c_proj d
        return tokens * (3 * d + d + 4 * d + d) * config["n_layer"]
    return 0


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
    assert ours == torch_flops + _bias_flops(config, batch * prompt_len)


@pytest.mark.parametrize(("batch", "cached"), [(1, 9), (2, 24)])
def test_decode_step_flops_equal_torch(family: tuple[dict[str, Any], Any], batch: int, cached: int) -> None:
    config, model = family
    torch_flops = ref.decode_step_flops(model, batch, cached)
    ours = _matmul_flops(config, phase="decode", batch=batch, seq_len=cached)
    assert ours == torch_flops + _bias_flops(config, batch)
