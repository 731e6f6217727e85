"""Multi-head latent attention (DeepSeek-V2/V3): both ways an engine runs it, checked against independent counts.

Shapes (tiny config below): d = 64, H = 4 heads, q_lora_rank qr = 24, kv_lora_rank r = 16, RoPE key width
rope = 4, no-RoPE key width nope = 8 (so a head's query/key is 12 wide), value width v = 12.

Naive form (transformers, and engines for prefill): the cache holds the latent c (r) and the RoPE key (rope)
per token; each step decompresses every key it reads, K_nope, V = c W_kv_b (r -> H (nope + v)), and runs
ordinary attention: scores 2·H·(nope + rope) and values 2·H·v FLOPs per (query, key) pair.

Absorbed form (engines for decode): W_kv_b's key half folds into the query, q_lat = q_nope W_UK (per head
nope -> r), and its value half into the output, o = o_lat W_UV (per head r -> v); attention then runs on the
cached latent directly, as if one KV head of r + rope channels: scores 2·H·(r + rope), values 2·H·r FLOPs per
pair, and no decompression.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import require_module
from llm_roofline import InputError, analyze, custom_hardware, get_format, load_model
from llm_roofline.core.transformer import kv_cache_bytes
from llm_roofline.inputs.model_files import model_from_hf_config
from test_flops_vs_torch import CONFIGS

CONFIG: dict[str, Any] = CONFIGS["deepseek-v3"]
DEVICE = custom_hardware(1e12, {"fp32": 1e12})
D, H, QR, R, ROPE, NOPE, V = 64, 4, 24, 16, 4, 8, 12
LAYERS = 3


def _matmul_flops(**workload: Any) -> float:
    result = analyze(model_from_hf_config(CONFIG), DEVICE, activations="fp32", phase="decode", **workload)
    return sum(op.flops * op.count for op in result.ops if op.kind == "matmul")


def _naive_attention_flops(batch: int, keys: int) -> int:
    """Per layer: decompress every key read, then scores and values over the decompressed heads."""
    decompress = 2 * batch * keys * R * H * (NOPE + V)
    return decompress + 2 * batch * H * (NOPE + ROPE) * keys + 2 * batch * H * V * keys


def _absorbed_attention_flops(batch: int, keys: int) -> int:
    """Per layer: absorb W_UK into each query head and W_UV into each output head; attend in the latent."""
    absorb = 2 * batch * H * NOPE * R + 2 * batch * H * R * V
    return absorb + 2 * batch * H * (R + ROPE) * keys + 2 * batch * H * R * keys


@pytest.mark.parametrize(("batch", "cached"), [(1, 9), (2, 24), (3, 1000)])
def test_absorbed_form_equals_the_naive_form_plus_the_derived_difference(batch: int, cached: int) -> None:
    keys = cached + 1
    naive, absorbed = _matmul_flops(batch=batch, seq_len=cached, mla="naive"), _matmul_flops(
        batch=batch, seq_len=cached, mla="absorbed")
    assert absorbed - naive == LAYERS * (_absorbed_attention_flops(batch, keys) - _naive_attention_flops(batch, keys))


@pytest.mark.parametrize(("batch", "cached"), [(1, 9), (2, 24)])
def test_absorbed_decode_against_transformers(batch: int, cached: int) -> None:
    # transformers runs the naive form (test_flops_vs_torch checks it equals ours exactly); the absorbed
    # form is that count with the per-layer attention terms of the two derivations above swapped.
    ref = require_module("hf_reference")  # PyTorch and transformers
    torch_naive = ref.decode_step_flops(ref.build(CONFIG), batch, cached)
    keys = cached + 1
    expected = torch_naive + LAYERS * (_absorbed_attention_flops(batch, keys) - _naive_attention_flops(batch, keys))
    assert _matmul_flops(batch=batch, seq_len=cached) == expected  # decode defaults to the absorbed form


def test_absorbed_decode_reads_the_latent_once() -> None:
    # FlashMLA-style: the latent is both K and V; a step reads r + rope channels per cached token per layer.
    model = load_model("deepseek-v3")
    result = analyze(model, "nvidia-h200-sxm", seq_len=4095, flash_attention=True)
    flash = next(op for op in result.ops if op.name == "layer.attn.flash")
    assert flash.kv_read_bytes == 4096 * (512 + 64) * 2  # keys x (kv_lora_rank + qk_rope_head_dim) x fp16
    naive = analyze(model, "nvidia-h200-sxm", seq_len=4095, flash_attention=True, mla="naive")
    decompress = next(op for op in naive.ops if op.name == "layer.attn.kv_b_proj")
    assert decompress.flops == 2 * 4096 * 512 * 128 * (128 + 128)  # every key through kv_b_proj, every step
    assert result.totals.time_s < naive.totals.time_s


def test_the_cache_holds_the_latent() -> None:
    # DeepSeek-V3: 61 layers x (512 + 64) per token, whatever the form: 70,272 elements per token of context.
    model = load_model("deepseek-v3")
    assert model.kv_cache_elements_per_token == 61 * (512 + 64)
    assert kv_cache_bytes(model, 1, 1000, get_format("fp16")) == 61 * 576 * 1000 * 2


def test_prefill_defaults_to_the_naive_form() -> None:
    prefill = analyze(model_from_hf_config(CONFIG), DEVICE, phase="prefill", seq_len=16)
    assert prefill.workload.to_dict()["mla"] == "naive"
    assert any(op.name == "layer.attn.kv_b_proj" for op in prefill.ops)


def test_the_multi_token_prediction_module_only_when_asked() -> None:
    # DeepSeek-V3 ships one MTP module (num_nextn_predict_layers = 1): a decoder layer like the last (MLA + 256
    # experts + a shared one), eh_proj (2d -> d) and three d-wide RMSNorms (enorm, hnorm, its final norm); it
    # shares the embedding and the output head. transformers leaves it out, and so does inference by default.
    model = load_model("deepseek-v3")
    d = 7168
    assert model.mtp_modules == 1 and not model.mtp_included
    with_mtp = model.with_mtp()
    extra = with_mtp.params - model.params
    assert extra == model.layers[-1].params(d) + 2 * d * d + 3 * d == 11_610_067_968
    # The release's 685 B = 671.03 B + 11.61 B + the module's own stored copy of the embedding and the head
    # (2 x 129,280 x 7,168 = 1.85 B, shared at run time): 684.5 B.
    assert round((with_mtp.params + 2 * 129_280 * d) / 1e9, 1) == 684.5
    plain = analyze(model, "nvidia-h200-sxm", weights="fp8", seq_len=4096)
    mtp = analyze(with_mtp, "nvidia-h200-sxm", weights="fp8", seq_len=4096)
    head = {op.name: op for op in mtp.ops}
    assert head["mtp.lm_head"].weight_bytes == head["lm_head"].weight_bytes  # the shared head is read again
    assert head["mtp.eh_proj"].flops == 2 * 2 * d * d  # one token: 2 x (2d) x d
    assert mtp.totals.time_s > plain.totals.time_s
    stored = mtp.memory.weight_bytes - plain.memory.weight_bytes  # fp8: a byte per weight plus per-row scales
    assert 1.0 < stored / extra < 1.002


def test_no_module_no_mtp() -> None:
    with pytest.raises(InputError, match="no multi-token-prediction module"):
        load_model("gpt-oss-20b").with_mtp()


def test_the_studies_price_the_same_form_as_analyze() -> None:
    # share, transition and what-if take their operators from transformer.step_ops: absorbed decode there too.
    from llm_roofline.core.transformer import Workload, step_ops

    model = load_model("deepseek-v3")
    ops = step_ops(model, Workload(seq_len=4096))
    assert any(op.name == "layer.attn.q_absorb" for op in ops)
    flops = analyze(model, "nvidia-h200-sxm", seq_len=4096).totals.flops
    assert sum(op.cost.flops * op.instances for op in ops) == flops
