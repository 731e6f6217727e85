"""Mixture of experts: parameters equal transformers', FLOPs equal PyTorch's, expert weights read per step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import require_module
from llm_roofline import Workload, analyze, custom_hardware, get_format, load_model
from llm_roofline.core.ops import expected_experts_touched
from llm_roofline.core.transformer import step_counts, step_plan
from llm_roofline.inputs.model_files import model_from_hf_config

A100 = "nvidia-a100-80gb-sxm"
TINY_MIXTRAL: dict[str, Any] = dict(
    model_type="mixtral", hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=8,
    num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, vocab_size=128, max_position_embeddings=256,
    sliding_window=None)


def test_mixtral_8x7b_parameters() -> None:
    m = load_model("mixtral-8x7b")
    # Per layer: attention 2·4096² + 2·4096·1024 = 41,943,040; router 4096·8 = 32,768;
    # 8 experts x 3·4096·14336 = 1,409,286,144; 2 norms 8,192 -> 1,451,270,144 x 32 layers,
    # + embedding and lm_head 2 x 32000·4096 + final norm 4096 = 46,702,792,704 (transformers' count).
    assert m.params == 46_702_792_704
    # Active: 2 of 8 experts per token: 32 x (41,943,040 + 32,768 + 2·176,160,768 + 8,192) + 262,148,096
    assert m.active_params == 12_879_925_248  # "about 12.9 B"
    assert (m.num_experts, m.experts_per_token, m.sliding_window) == (8, 2, None)


def test_params_equal_transformers_for_a_small_mixtral() -> None:
    # (The built-in Mixtral-8x7B is checked with every catalogue model in test_params_vs_transformers.py.)
    ref = require_module("hf_reference")
    assert model_from_hf_config(TINY_MIXTRAL).params == ref.param_count(TINY_MIXTRAL)


@pytest.fixture(scope="module")
def tiny_mixtral() -> Any:
    require_module("torch")
    transformers = require_module("transformers")
    import torch

    config = transformers.AutoConfig.for_model(**TINY_MIXTRAL)
    torch.manual_seed(0)
    # The eager experts loop runs each expert's F.linear on its routed tokens, which FlopCounterMode counts;
    # the default grouped_mm kernel is not in its registry.
    return transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager",
                                                         experts_implementation="eager").eval()


def _matmul_flops(**workload: Any) -> float:
    result = analyze(model_from_hf_config(TINY_MIXTRAL), custom_hardware(1e12, {"fp32": 1e12}), activations="fp32",
                     **workload)
    return sum(op.flops * op.count for op in result.ops if op.kind == "matmul")


@pytest.mark.parametrize(("batch", "prompt_len", "lm_head"), [(1, 7, "last"), (3, 16, "all")])
def test_prefill_flops_equal_torch(tiny_mixtral: Any, batch: int, prompt_len: int, lm_head: str) -> None:
    # Every token runs through k experts, whichever they are: expert FLOPs = T·k·(2·d·2I + 2·I·d), exactly.
    ref = require_module("hf_reference")
    torch_flops = ref.prefill_flops(tiny_mixtral, batch, prompt_len, last_token_only=lm_head == "last")
    assert _matmul_flops(phase="prefill", batch=batch, seq_len=prompt_len, lm_head=lm_head) == torch_flops


@pytest.mark.parametrize(("batch", "cached"), [(1, 9), (2, 24)])
def test_decode_flops_equal_torch(tiny_mixtral: Any, batch: int, cached: int) -> None:
    ref = require_module("hf_reference")
    assert _matmul_flops(phase="decode", batch=batch, seq_len=cached) == ref.decode_step_flops(tiny_mixtral, batch,
                                                                                               cached)


def test_expected_experts_touched() -> None:
    # E (1 - (1 - k/E)^T): one token touches exactly k; many tokens touch nearly all E.
    assert expected_experts_touched(1, 8, 2) == pytest.approx(2)
    assert expected_experts_touched(2, 8, 2) == pytest.approx(8 * (1 - 0.75**2))  # 3.5
    assert expected_experts_touched(4096, 8, 2) == pytest.approx(8)
    assert expected_experts_touched(5, 4, 4) == 4
    tokens = np.array([1, 2, 4, 8, 64])
    assert np.allclose(expected_experts_touched(tokens, 8, 2), 8 * (1 - 0.75**tokens))


def test_decode_bytes_go_from_active_to_total_weights() -> None:
    model = load_model("mixtral-8x7b")
    weight_bytes = {b: analyze(model, A100, batch=b, seq_len=512).totals.weight_bytes for b in (1, 2, 8, 64, 512)}
    # Batch 1 reads the active weights in fp16 but only one embedding row (not the 131M-entry table).
    embed_table = 32000 * 4096 * 2
    assert weight_bytes[1] == pytest.approx(2 * model.active_params - embed_table, rel=1e-4)
    assert list(weight_bytes.values()) == sorted(weight_bytes.values())
    assert weight_bytes[512] == pytest.approx(2 * model.params - embed_table, rel=1e-4)


def test_decode_intensity_of_the_experts() -> None:
    # An expert matmul does 2·T·k FLOPs per weight element while reading touched(T) experts' weights:
    # in fp16, intensity ≈ T·k / touched(T) -> 1 at T = 1, k·T/E once every expert is touched.
    model = load_model("mixtral-8x7b")
    for batch in (1, 4, 64):
        up = next(op for op in analyze(model, A100, batch=batch).ops if op.name == "layer.mlp.experts.up_proj")
        touched = expected_experts_touched(batch, 8, 2)
        assert up.flops / up.weight_bytes == pytest.approx(batch * 2 / touched)
    dense = next(op for op in analyze("mistral-7b", A100, batch=64).ops if op.name == "layer.mlp.up_proj")
    assert dense.flops / dense.weight_bytes == pytest.approx(64)  # a dense MLP reuses its weights 64 times


def test_router_and_combine_operators() -> None:
    ops = {op.name: op for op in analyze("mixtral-8x7b", A100, batch=4).ops}
    assert ops["layer.mlp.router"].flops == 2 * 4 * 4096 * 8  # T x d x E matmul
    assert ops["layer.mlp.router_softmax"].kind == "softmax"
    assert ops["layer.mlp.combine"].flops == 2 * 4 * 2 * 4096  # scale and add k expert outputs per token
    assert ops["layer.mlp.act"].flops == (4 + 1) * 4 * 2 * 14336  # SwiGLU over T·k rows


def test_step_ops_evaluates_arrays_for_moe_and_windows() -> None:
    fp16 = get_format("fp16")
    for name in ("mixtral-8x7b", "mistral-7b"):
        model = load_model(name)
        batch, past = np.array([1, 3, 16]), np.array([100, 5000, 9000])
        plan = step_plan(model, fp16, fp16, fp16, False, False)
        grid = plan.ops(step_counts(model, batch, np.ones(3, dtype=np.int64), past, True))
        for j in range(3):
            scalar = plan.ops(step_counts(model, int(batch[j]), 1, int(past[j]), True))
            for g, s in zip(grid, scalar, strict=True):
                assert np.broadcast_to(g.cost.bytes, (3,))[j] == pytest.approx(s.cost.bytes)
                assert np.broadcast_to(g.cost.flops, (3,))[j] == pytest.approx(s.cost.flops)


def test_mixtral_workload_with_a_mix() -> None:
    r = analyze("mixtral-8x7b", A100, Workload(weights="q4_k_m"))
    assert r.workload.weights_label == "q4_k_m"
    assert r.memory.weight_bytes < 46.7e9 * 0.7
