"""GGUF files written by the ``gguf`` package's own writer: structure, per-tensor formats, exact bytes, errors."""

from __future__ import annotations

import re
import struct
import tempfile
from pathlib import Path

import pytest

from conftest import require_module

gguf = require_module("gguf")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gguf_factory import (  # noqa: E402
    T,
    Tensor,
    attention_tensors,
    llama_keys,
    llama_like_tensors,
    mla_tensors,
    mlp_tensors,
    moe_tensors,
    tensor_bytes,
    write_gguf,
)
from llm_roofline import InputError, analyze, load_hardware, load_model  # noqa: E402
from llm_roofline.faces.cli.main import main  # noqa: E402
from llm_roofline.inputs.gguf import read_gguf_header, read_gguf_model, read_gguf_model_start  # noqa: E402
from llm_roofline.inputs.model_files import model_from_hf_config  # noqa: E402

JETSON = "jetson-orin-nx"
# A small llama: rows of 256 so that every K-quant fits whole blocks.
D, LAYERS, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB = 256, 8, 4, 2, 64, 512, 320
LLAMA_TENSORS = llama_like_tensors(D, LAYERS, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB)
LLAMA_KEYS = llama_keys(D, LAYERS, HEADS, KV_HEADS, INTER)


def q4_k_m_style(name: str, shape: tuple[int, ...]) -> gguf.GGMLQuantizationType:
    """Q4_K, with Q6_K for the output and for attn_v/ffn_down in every other layer (like llama.cpp's Q4_K_M)."""
    if name == "output.weight":
        return T.Q6_K
    match = re.match(r"blk\.(\d+)\.(attn_v|ffn_down)", name)
    return T.Q6_K if match and int(match.group(1)) % 2 == 0 else T.Q4_K


def write_llama(path: Path, type_of=q4_k_m_style, **kwargs) -> int:  # type: ignore[no-untyped-def]
    return write_gguf(path, "llama", LLAMA_KEYS, LLAMA_TENSORS, type_of, **kwargs)


def test_mixed_gguf_weight_bytes_equal_its_tensor_bytes(tmp_path: Path) -> None:
    path = tmp_path / "mixed.gguf"
    file_bytes = write_llama(path, file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M, vocab_tokens=VOCAB)
    info = read_gguf_model(path)
    assert info.header.tensor_bytes == file_bytes and info.modelled_bytes == file_bytes
    result = analyze(str(path), JETSON)
    assert round(result.memory.weight_bytes) == file_bytes  # to the byte
    assert result.workload.weights_label == "gguf:q4_k_m"
    formats = dict(info.model.stored_weights.by_role)
    assert formats["attn.v_proj"].name == "q4_k+q6_k" and formats["lm_head"].name == "q6_k"
    assert formats["vectors"].name == "fp32"
    # Decode reads every layer matrix once, the output once and one embedding row per token:
    v = next(op for op in result.ops if op.name == "layer.attn.v_proj")
    assert v.weight_bytes * v.count == sum(tensor_bytes(s, q4_k_m_style(n, s)) for n, s in LLAMA_TENSORS
                                           if ".attn_v." in n)


def test_same_model_at_q8_0_and_f16_scales_as_the_bytes(tmp_path: Path) -> None:
    hw = load_hardware(JETSON)
    results, files = {}, {}
    for label, ggml_type in (("q4_k_m", None), ("q8_0", T.Q8_0), ("f16", T.F16)):
        path = tmp_path / f"{label}.gguf"
        files[label] = write_llama(path, q4_k_m_style if ggml_type is None else (lambda n, s, t=ggml_type: t))
        results[label] = analyze(str(path), hw, seq_len=16)
        assert round(results[label].memory.weight_bytes) == files[label]
        # batch-1 decode is memory-bound everywhere: time = bytes moved / bandwidth
        assert results[label].totals.time_s == pytest.approx(results[label].totals.bytes / hw.memory_bytes_per_s)
    weights = {k: r.totals.weight_bytes for k, r in results.items()}
    assert weights["q8_0"] / weights["f16"] == pytest.approx(8.5 / 16, rel=2e-3)  # norms stay fp32 in both
    assert weights["q4_k_m"] < weights["q8_0"] < weights["f16"]


def test_reader_agrees_with_gguf_reader(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path, vocab_tokens=VOCAB)
    ours = read_gguf_header(path)
    theirs = gguf.GGUFReader(path)
    assert ours.data_offset == theirs.data_offset
    assert [(t.name, t.ggml_type, t.dims, t.bytes, ours.data_offset + t.offset) for t in ours.tensors] == [
        (t.name, t.tensor_type.name, tuple(int(x) for x in t.shape), int(t.n_bytes), t.data_offset)
        for t in theirs.tensors]
    assert ours.metadata["llama.block_count"] == theirs.fields["llama.block_count"].contents()
    assert ours.metadata["tokenizer.ggml.tokens"].length == VOCAB


def test_model_structure_from_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path)
    model = load_model(str(path))
    config = dict(model_type="llama", hidden_size=D, intermediate_size=INTER, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, vocab_size=VOCAB,
                  max_position_embeddings=256)
    same = model_from_hf_config(config)
    for field in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
                  "vocab_size", "tied_embeddings", "params"):
        assert getattr(model, field) == getattr(same, field), field
    assert model.display_name == "test llama"


def test_mixtral_gguf(tmp_path: Path) -> None:
    path = tmp_path / "moe.gguf"
    tensors = llama_like_tensors(D, 2, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB, experts=4)
    file_bytes = write_gguf(path, "llama", llama_keys(D, 2, HEADS, KV_HEADS, INTER, experts=4, used=2), tensors,
                            lambda n, s: T.Q8_0 if "ffn_gate_inp" not in n else T.F32)
    model = load_model(str(path))
    assert model.family == "mixtral" and (model.num_experts, model.experts_per_token) == (4, 2)
    config = dict(model_type="mixtral", hidden_size=D, intermediate_size=INTER, num_hidden_layers=2,
                  num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, num_local_experts=4,
                  num_experts_per_tok=2, vocab_size=VOCAB, max_position_embeddings=256)
    assert model.params == model_from_hf_config(config).params
    assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes
    assert dict(model.stored_weights.by_role)["mlp.router"].name == "fp32"


def _family_files() -> dict[str, tuple[str, dict[str, int], list[tuple[str, tuple[int, ...]]]]]:
    d, i, v, layers = 64, 96, 100, 2
    qwen = llama_like_tensors(d, layers, 4, 2, 16, i, v, qkv_bias=True)
    phi3 = [("token_embd.weight", (v, d)), ("output_norm.weight", (d,)), ("output.weight", (v, d))]
    gemma = [("token_embd.weight", (v, d)), ("output_norm.weight", (d,))]
    gpt2 = [("token_embd.weight", (v, d)), ("position_embd.weight", (128, d)), ("output_norm.weight", (d,)),
            ("output_norm.bias", (d,))]
    for b in range(layers):
        p = f"blk.{b}"
        phi3 += [(f"{p}.attn_norm.weight", (d,)), (f"{p}.attn_qkv.weight", (3 * d, d)),
                 (f"{p}.attn_output.weight", (d, d)), (f"{p}.ffn_norm.weight", (d,)),
                 (f"{p}.ffn_up.weight", (2 * i, d)), (f"{p}.ffn_down.weight", (d, i))]
        gemma += [(f"{p}.attn_norm.weight", (d,)), (f"{p}.attn_q.weight", (4 * 32, d)),
                  (f"{p}.attn_k.weight", (32, d)), (f"{p}.attn_v.weight", (32, d)),
                  (f"{p}.attn_output.weight", (d, 4 * 32)), (f"{p}.ffn_norm.weight", (d,)),
                  (f"{p}.ffn_gate.weight", (i, d)), (f"{p}.ffn_up.weight", (i, d)), (f"{p}.ffn_down.weight", (d, i))]
        gpt2 += [(f"{p}.attn_norm.weight", (d,)), (f"{p}.attn_norm.bias", (d,)),
                 (f"{p}.attn_qkv.weight", (3 * d, d)), (f"{p}.attn_qkv.bias", (3 * d,)),
                 (f"{p}.attn_output.weight", (d, d)), (f"{p}.attn_output.bias", (d,)),
                 (f"{p}.ffn_norm.weight", (d,)), (f"{p}.ffn_norm.bias", (d,)),
                 (f"{p}.ffn_up.weight", (4 * d, d)), (f"{p}.ffn_up.bias", (4 * d,)),
                 (f"{p}.ffn_down.weight", (d, 4 * d)), (f"{p}.ffn_down.bias", (d,))]
    base = {"embedding_length": d, "block_count": layers, "context_length": 128}
    return {
        "qwen2": ("qwen2", {**base, "feed_forward_length": i, "attention.head_count": 4,
                            "attention.head_count_kv": 2}, qwen),
        "phi3": ("phi3", {**base, "feed_forward_length": i, "attention.head_count": 4}, phi3),
        "gemma": ("gemma", {**base, "feed_forward_length": i, "attention.head_count": 4,
                            "attention.head_count_kv": 1, "attention.key_length": 32}, gemma),
        "gpt2": ("gpt2", {**base, "feed_forward_length": 4 * d, "attention.head_count": 4}, gpt2),
    }


HF_EQUIVALENT = {
    "qwen2": dict(model_type="qwen2", hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=100, max_position_embeddings=128),
    "phi3": dict(model_type="phi3", hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                 vocab_size=100, max_position_embeddings=128),
    "gemma": dict(model_type="gemma", hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=1, head_dim=32, vocab_size=100, max_position_embeddings=128),
    "gpt2": dict(model_type="gpt2", n_embd=64, n_head=4, n_layer=2, n_positions=128, vocab_size=100),
}


@pytest.mark.parametrize("family", sorted(HF_EQUIVALENT))
def test_other_architectures(tmp_path: Path, family: str) -> None:
    arch, keys, tensors = _family_files()[family]
    path = tmp_path / f"{family}.gguf"
    file_bytes = write_gguf(path, arch, keys, tensors, lambda n, s: T.Q8_0)
    model = load_model(str(path))
    same = model_from_hf_config(HF_EQUIVALENT[family])
    assert model.layers == same.layers  # the same description of every layer
    for field in ("family", "hidden_size", "num_layers", "vocab_size", "norm", "tied_embeddings", "learned_positions",
                  "embedding_scale", "params"):
        assert getattr(model, field) == getattr(same, field), field
    assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes


# --- the newer families: a tiny file per llama.cpp architecture, its config.json twin ----------------
#
# Keys as llama.cpp's convert_hf_to_gguf.py writes them (the TextModel base: context_length, embedding_length,
# block_count, feed_forward_length, head_count(_kv), key/value_length when the config sets head_dim,
# rope.dimension_count, expert_count, expert_used_count; then each model's own), tensors named and shaped as
# its src/llama-model.cpp loads them. Rows of 256 take Q4_K, other rows Q8_0, gpt-oss experts MXFP4.


def _norms(b: str, d: int, *names: str) -> list[Tensor]:
    return [(f"{b}.{name}.weight", (d,)) for name in names]


def _head(d: int, vocab: int, tied: bool = False) -> tuple[list[Tensor], list[Tensor]]:
    """(the embedding, the final norm and output)."""
    return [("token_embd.weight", (vocab, d))], [("output_norm.weight", (d,))] + (
        [] if tied else [("output.weight", (vocab, d))])


def q4_k_where_rows_fit(name: str, shape: tuple[int, ...]) -> gguf.GGMLQuantizationType:
    """Q4_K for rows of whole 256-blocks (numpy's last axis is ggml's row), Q8_0 for the rest, the router F32."""
    if "ffn_gate_inp" in name:
        return T.F32
    return T.Q4_K if shape[-1] % 256 == 0 else T.Q8_0


def mxfp4_experts(name: str, shape: tuple[int, ...]) -> gguf.GGMLQuantizationType:
    """gpt-oss as published in GGUF: experts in MXFP4, the router F32, the rest Q8_0."""
    if "_exps" in name:
        return T.MXFP4
    return T.F32 if "ffn_gate_inp" in name else T.Q8_0


def _qwen3() -> tuple[dict[str, object], list[Tensor]]:
    d, layers, heads, kv, hd, inter, vocab = 256, 2, 4, 2, 128, 512, 320  # head_dim != d / heads, as in Qwen3
    front, back = _head(d, vocab, tied=True)
    for i in range(layers):
        b = f"blk.{i}"
        front += _norms(b, d, "attn_norm", "ffn_norm") + attention_tensors(b, d, heads, kv, hd, qk_norm="head")
        front += mlp_tensors(b, d, inter)
    keys = {"context_length": 256, "embedding_length": d, "block_count": layers, "feed_forward_length": inter,
            "attention.head_count": heads, "attention.head_count_kv": kv, "attention.key_length": hd,
            "attention.value_length": hd, "rope.dimension_count": hd, "rope.freq_base": 1e6}
    return keys, front + back


def _qwen3moe() -> tuple[dict[str, object], list[Tensor]]:
    d, layers, heads, kv, hd, experts, used, width, vocab = 256, 2, 4, 2, 128, 4, 2, 256, 320
    front, back = _head(d, vocab)
    for i in range(layers):
        b = f"blk.{i}"
        front += _norms(b, d, "attn_norm", "ffn_norm") + attention_tensors(b, d, heads, kv, hd, qk_norm="head")
        front += moe_tensors(b, d, width, experts)
    keys = {"context_length": 256, "embedding_length": d, "block_count": layers, "feed_forward_length": 768,
            "attention.head_count": heads, "attention.head_count_kv": kv, "attention.key_length": hd,
            "attention.value_length": hd, "expert_count": experts, "expert_used_count": used,
            "expert_feed_forward_length": width}
    return keys, front + back


def _gpt_oss() -> tuple[dict[str, object], list[Tensor]]:
    d, layers, heads, kv, hd, experts, used, width, vocab = 64, 4, 4, 2, 32, 4, 2, 96, 100
    front, back = _head(d, vocab)
    for i in range(layers):
        b = f"blk.{i}"
        front += _norms(b, d, "attn_norm", "post_attention_norm")
        front += attention_tensors(b, d, heads, kv, hd, bias=True, out_bias=True, sinks=True)
        front += moe_tensors(b, d, width, experts, bias=True)
    keys = {"context_length": 256, "embedding_length": d, "block_count": layers, "feed_forward_length": width,
            "attention.head_count": heads, "attention.head_count_kv": kv, "attention.key_length": hd,
            "attention.value_length": hd, "expert_count": experts, "expert_used_count": used,
            "expert_feed_forward_length": width, "attention.sliding_window": 16, "rope.scaling.factor": 32.0}
    return keys, front + back


DEEPSEEK = dict(d=256, layers=3, heads=2, q_lora=64, rank=64, nope=32, rope=16, v=32, dense=192, width=64,
                experts=4, used=2, shared=1, vocab=100)


def _deepseek2(split: bool = True, nextn: int = 0) -> tuple[dict[str, object], list[Tensor]]:
    c = DEEPSEEK
    d = c["d"]
    front, back = _head(d, c["vocab"])
    for i in range(c["layers"] + nextn):
        b = f"blk.{i}"
        front += _norms(b, d, "attn_norm", "ffn_norm")
        front += mla_tensors(b, d, c["heads"], c["q_lora"], c["rank"], c["nope"], c["rope"], c["v"], split=split)
        front += mlp_tensors(b, d, c["dense"]) if i == 0 else moe_tensors(
            b, d, c["width"], c["experts"], shared=c["shared"] * c["width"], deepseek=True)
    keys = {"context_length": 256, "embedding_length": d, "block_count": c["layers"] + nextn,
            "feed_forward_length": c["dense"], "attention.head_count": c["heads"],
            "attention.q_lora_rank": c["q_lora"], "attention.kv_lora_rank": c["rank"],
            "rope.dimension_count": c["rope"], "leading_dense_block_count": 1,
            "expert_feed_forward_length": c["width"], "expert_count": c["experts"], "expert_used_count": c["used"],
            "expert_shared_count": c["shared"], "expert_weights_scale": 2.5, "expert_weights_norm": True,
            "expert_gating_func": 2}
    if split:  # since llama.cpp's MLA change: the latent as one KV head, each head's widths under *_mla
        keys |= {"attention.head_count_kv": 1, "attention.key_length": c["rank"] + c["rope"],
                 "attention.value_length": c["rank"], "attention.key_length_mla": c["nope"] + c["rope"],
                 "attention.value_length_mla": c["v"]}
    else:
        keys |= {"attention.head_count_kv": c["heads"], "attention.key_length": c["nope"] + c["rope"],
                 "attention.value_length": c["v"]}
    if nextn:
        keys["nextn_predict_layers"] = nextn
    return keys, front + back


def _small(layers: int = 2, tied: bool = False, qk_norm: str | None = None, pre: tuple[str, ...] = (
        "attn_norm", "ffn_norm"), mlp: object = None) -> list[Tensor]:
    """A small llama-shaped stack (d 64, 4 heads of 16, 2 KV heads, MLP 96, vocabulary 100)."""
    d = 64
    front, back = _head(d, 100, tied=tied)
    for i in range(layers):
        b = f"blk.{i}"
        front += _norms(b, d, *pre) + attention_tensors(b, d, 4, 2, 16, qk_norm=qk_norm)
        front += mlp(b, i) if callable(mlp) else mlp_tensors(b, d, 96)
    return front + back


def _small_keys(layers: int = 2, **more: object) -> dict[str, object]:
    return {"context_length": 128, "embedding_length": 64, "block_count": layers, "feed_forward_length": 96,
            "attention.head_count": 4, "attention.head_count_kv": 2, "rope.dimension_count": 16, **more}


def _phi2() -> tuple[dict[str, object], list[Tensor]]:
    d = 64
    front, back = _head(d, 100)
    for i in range(2):
        b = f"blk.{i}"
        front += [(f"{b}.attn_norm.weight", (d,)), (f"{b}.attn_norm.bias", (d,))]
        front += attention_tensors(b, d, 4, 4, 16, bias=True, out_bias=True) + mlp_tensors(b, d, 4 * d, gated=False,
                                                                                             bias=True)
    back += [("output_norm.bias", (d,)), ("output.bias", (100,))]
    # convert_hf_to_gguf's Phi2Model: feed_forward_length 4 x n_embd, rope.dimension_count from partial_rotary_factor
    keys = {"context_length": 128, "embedding_length": d, "block_count": 2, "feed_forward_length": 4 * d,
            "attention.head_count": 4, "attention.head_count_kv": 4, "rope.dimension_count": 8,
            "attention.layer_norm_epsilon": 1e-5}
    return keys, front + back


def _llama4() -> tuple[dict[str, object], list[Tensor]]:
    def mlp(b: str, i: int) -> list[Tensor]:  # interleave_moe_layer_step 2: layers 1 and 3 route
        return moe_tensors(b, 64, 64, 4, shared=64) if i % 2 else mlp_tensors(b, 64, 96)

    keys = _small_keys(4, **{"attention.key_length": 16, "attention.value_length": 16, "expert_count": 4,
                             "expert_used_count": 1, "expert_feed_forward_length": 64,
                             "interleave_moe_layer_step": 2})
    return keys, _small(4, mlp=mlp)


SMALL_HF = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=100, max_position_embeddings=128)
# family: (GGUF architecture, keys, tensors, tensor types, the equivalent config.json)
NEW_FAMILIES = {
    "qwen3": ("qwen3", *_qwen3(), q4_k_m_style, dict(
        model_type="qwen3", hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=128, vocab_size=320, max_position_embeddings=256, tie_word_embeddings=True)),
    "qwen3_moe": ("qwen3moe", *_qwen3moe(), q4_k_where_rows_fit, dict(
        model_type="qwen3_moe", hidden_size=256, intermediate_size=768, moe_intermediate_size=256,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=128, num_experts=4,
        num_experts_per_tok=2, vocab_size=320, max_position_embeddings=256, tie_word_embeddings=False)),
    "gpt_oss": ("gpt-oss", *_gpt_oss(), mxfp4_experts, dict(
        model_type="gpt_oss", hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, num_local_experts=4, num_experts_per_tok=2, sliding_window=16,
        vocab_size=100, max_position_embeddings=256, tie_word_embeddings=False)),
    "deepseek_v3": ("deepseek2", *_deepseek2(), q4_k_where_rows_fit, dict(
        model_type="deepseek_v3", hidden_size=256, intermediate_size=192, moe_intermediate_size=64,
        num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=2, q_lora_rank=64, kv_lora_rank=64,
        qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32, n_routed_experts=4, num_experts_per_tok=2,
        n_shared_experts=1, first_k_dense_replace=1, vocab_size=100, max_position_embeddings=256)),
    "olmo2": ("olmo2", _small_keys(), _small(qk_norm="full", pre=("post_attention_norm", "post_ffw_norm")),
              lambda n, s: T.Q8_0, dict(model_type="olmo2", **SMALL_HF)),
    "smollm3": ("smollm3", _small_keys(4), _small(4, tied=True), lambda n, s: T.Q8_0,
                dict(model_type="smollm3", **{**SMALL_HF, "num_hidden_layers": 4}, tie_word_embeddings=True)),
    "granite": ("granite", _small_keys(**{"embedding_scale": 12.0, "residual_scale": 0.22, "logit_scale": 8.0,
                                          "attention.scale": 0.0078125}),
                _small(tied=True), lambda n, s: T.Q8_0,
                dict(model_type="granite", **SMALL_HF, tie_word_embeddings=True, embedding_multiplier=12.0,
                     residual_multiplier=0.22, logits_scaling=8.0, attention_multiplier=0.0078125)),
    "phi": ("phi2", *_phi2(), lambda n, s: T.Q8_0, dict(
        model_type="phi", hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
        partial_rotary_factor=0.5, vocab_size=100, max_position_embeddings=128, hidden_act="gelu_new")),
    "llama4_text": ("llama4", *_llama4(), lambda n, s: T.F32 if "ffn_gate_inp" in n else T.Q8_0, dict(
        model_type="llama4_text", **{**SMALL_HF, "num_hidden_layers": 4, "intermediate_size": 64,
                                     "max_position_embeddings": 128}, intermediate_size_mlp=96, head_dim=16,
        num_local_experts=4, num_experts_per_tok=1, interleave_moe_layer_step=2, attention_chunk_size=8192)),
}


@pytest.mark.parametrize("family", sorted(NEW_FAMILIES))
def test_new_architectures_equal_their_config_and_store_exact_bytes(tmp_path: Path, family: str) -> None:
    arch, keys, tensors, type_of, config = NEW_FAMILIES[family]
    path = tmp_path / f"{family}.gguf"
    file_bytes = write_gguf(path, arch, keys, tensors, type_of)
    info = read_gguf_model(path)
    model, same = info.model, model_from_hf_config(config)
    assert model.layers == same.layers  # the same description of every layer
    for field in ("family", "hidden_size", "vocab_size", "norm", "tied_embeddings", "embedding_scale",
                  "residual_scale", "logits_scale", "lm_head_bias", "params", "active_params",
                  "kv_cache_elements_per_token"):
        assert getattr(model, field) == getattr(same, field), field
    assert all("exp_probs_b" in name for name in info.unmodelled_tensors)  # DeepSeek's routing correction only
    assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes - info.unmodelled_bytes


def test_qwen3_files_store_their_q4_k_mix() -> None:
    formats = {}
    with tempfile.TemporaryDirectory() as folder:
        for family in ("qwen3", "qwen3_moe"):
            arch, keys, tensors, type_of, _ = NEW_FAMILIES[family]
            path = Path(folder) / f"{family}.gguf"
            file_bytes = write_gguf(path, arch, keys, tensors, type_of)
            model = load_model(str(path))
            assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes
            formats[family] = {role: fmt.name for role, fmt in model.stored_weights.by_role}
    assert formats["qwen3"]["attn.v_proj"] == "q4_k+q6_k" and "lm_head" not in formats["qwen3"]  # tied
    assert formats["qwen3_moe"]["mlp.experts.gate_proj"] == "q4_k" and formats["qwen3_moe"]["mlp.router"] == "fp32"


def test_gpt_oss_gguf_windows_sinks_and_mxfp4_experts(tmp_path: Path) -> None:
    arch, keys, tensors, type_of, _ = NEW_FAMILIES["gpt_oss"]
    path = tmp_path / "gpt-oss.gguf"
    file_bytes = write_gguf(path, arch, keys, tensors, type_of)
    model = load_model(str(path))
    # llama.cpp's set_swa_pattern(2): layer i windowed when i % 2 < 1, as transformers' layer_types
    assert [block.attention.window for block in model.layers] == [16, None, 16, None]
    assert all(block.attention.sinks and block.mlp.bias and block.mlp.router_bias for block in model.layers)
    formats = dict(model.stored_weights.by_role)
    assert {formats[role].name for role in ("mlp.experts.gate_proj", "mlp.experts.up_proj",
                                            "mlp.experts.down_proj")} == {"mxfp4"}
    # 4 layers x 4 experts x 3 matrices x 64 x 96 = 294,912 weights at 17 bytes per 32 = 156,672 B
    assert sum(tensor_bytes(s, T.MXFP4) for n, s in tensors if n.endswith("_exps.weight")) == 156_672
    assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes
    # one period per file: attention.sliding_window_pattern = 4 windows 3 layers of every 4
    path = tmp_path / "pattern.gguf"
    write_gguf(path, arch, {**keys, "attention.sliding_window_pattern": 4}, tensors, type_of)
    assert [block.attention.window for block in load_model(str(path)).layers] == [16, 16, 16, None]
    write_gguf(path, arch, {**keys, "attention.sliding_window_pattern": [False, True, True, False]}, tensors,
               type_of)
    assert [block.attention.window for block in load_model(str(path)).layers] == [None, 16, 16, None]


@pytest.mark.parametrize("split", [True, False], ids=["attn_k_b+attn_v_b", "attn_kv_b"])
def test_deepseek2_gguf_either_kv_b_layout(tmp_path: Path, split: bool) -> None:
    keys, tensors = _deepseek2(split=split)
    path = tmp_path / "deepseek.gguf"
    file_bytes = write_gguf(path, "deepseek2", keys, tensors, q4_k_where_rows_fit)
    info = read_gguf_model(path)
    model = info.model
    assert model.layers == model_from_hf_config(NEW_FAMILIES["deepseek_v3"][4]).layers
    assert [block.mlp.is_moe for block in model.layers] == [False, True, True]  # leading_dense_block_count 1
    # the cache holds the latent and the shared RoPE key: (64 + 16) x 3 layers = 240 elements per token
    assert model.kv_cache_elements_per_token == 240
    # exp_probs_b (the routing correction, a buffer in transformers) is outside the model: 2 MoE layers x 4 x 4 B
    assert info.unmodelled_tensors == ("blk.1.exp_probs_b.bias", "blk.2.exp_probs_b.bias")
    assert info.unmodelled_bytes == 32
    assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes - 32
    formats = dict(model.stored_weights.by_role)
    assert formats["attn.kv_a_proj"].name == "q4_k" and formats["attn.kv_b_proj"].name == "q8_0"


def test_deepseek2_prediction_layers_are_not_counted(tmp_path: Path) -> None:
    keys, tensors = _deepseek2(nextn=1)  # a multi-token-prediction layer stored as blk.3
    path = tmp_path / "mtp.gguf"
    write_gguf(path, "deepseek2", keys, tensors, q4_k_where_rows_fit)
    info = read_gguf_model(path)
    assert info.model.num_layers == 3
    assert all(name.startswith("blk.3.") or "exp_probs_b" in name for name in info.unmodelled_tensors)
    assert info.model.params == model_from_hf_config(NEW_FAMILIES["deepseek_v3"][4]).params


def test_llama4_gguf_chunks_nope_layers_and_interleaved_experts(tmp_path: Path) -> None:
    arch, keys, tensors, type_of, _ = NEW_FAMILIES["llama4_text"]
    path = tmp_path / "llama4.gguf"
    write_gguf(path, arch, keys, tensors, type_of)
    layers = load_model(str(path)).layers
    # llama.cpp: set_swa_pattern(4) chunks layers 0-2 of every 4 (8192 tokens), n_no_rope_layer_step 4 makes
    # layer 3 NoPE; interleave_moe_layer_step 2 routes layers 1 and 3
    assert [(b.attention.chunk, b.attention.rotary_dim, b.attention.qk_norm) for b in layers] == [
        (8192, 16, "l2"), (8192, 16, "l2"), (8192, 16, "l2"), (None, 0, None)]
    assert [b.mlp.experts for b in layers] == [1, 4, 1, 4]
    # llama.cpp turns the L2 q/k norm off for 128 experts (Maverick), as its config.json does
    maverick = [(n, (128, *s[1:]) if "_exps" in n or "gate_inp" in n else s) for n, s in tensors]
    write_gguf(path, arch, {**keys, "expert_count": 128}, maverick, type_of, with_data=False)
    assert {b.attention.qk_norm for b in load_model(str(path)).layers} == {None}


@pytest.mark.parametrize(("family", "change", "message"), [
    ("deepseek_v3", {"attention.kv_lora_rank": None}, r"missing metadata key 'deepseek2\.attention\.kv_lora_rank'"),
    ("deepseek_v3", {"rope.dimension_count": 48}, r"'deepseek2\.rope\.dimension_count' \(48\) must be less than"),
    ("qwen3_moe", {"expert_used_count": 5}, r"'qwen3moe\.expert_used_count' \(5\) exceeds 'qwen3moe\.expert_count'"),
    ("qwen3", {"attention.value_length": 64}, r"'qwen3\.attention\.value_length' \(64\) differs from"),
    ("qwen3", {"attention.head_count_kv": 3}, r"'qwen3\.attention\.head_count' \(4\) must be a multiple of"),
    ("qwen3", {"attention.head_count_kv": [2, 2]}, r"'qwen3\.attention\.head_count_kv' is an array"),
    ("qwen3", {"block_count": 1 << 20}, r"'qwen3\.block_count' must be at most 1024"),
    ("gpt_oss", {"attention.sliding_window": None}, r"missing metadata key 'gpt-oss\.attention\.sliding_window'"),
    ("gpt_oss", {"attention.sliding_window_pattern": [True, False]},
     r"'gpt-oss\.attention\.sliding_window_pattern' must be a number or one true/false per layer \(4\)"),
    # 4 layers x 4 experts x 64 x 96 in the file, x 64 x 64 by the metadata
    ("gpt_oss", {"expert_feed_forward_length": 64}, r"'mlp\.experts\.gate_proj' hold 98304 elements; the metadata "
                                                    r"implies 65536"),
    ("llama4_text", {"attention.sliding_window": 0}, r"'llama4\.attention\.sliding_window' = 0"),
])
def test_malformed_metadata_is_one_line_naming_file_and_key(tmp_path: Path, family: str, change: dict[str, object],
                                                            message: str) -> None:
    arch, keys, tensors, type_of, _ = NEW_FAMILIES[family]
    keys = {k: v for k, v in {**keys, **change}.items() if v is not None}
    path = tmp_path / f"{family}.gguf"
    write_gguf(path, arch, keys, tensors, type_of)
    with pytest.raises(InputError, match=message) as err:
        load_model(str(path))
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_40_gb_file_is_read_from_its_header(tmp_path: Path) -> None:
    # Llama-2-70B shapes at Q4_K: ~38.8 GB of tensor data, written as a sparse hole (no disk used).
    path = tmp_path / "big.gguf"
    tensors = llama_like_tensors(8192, 80, 64, 8, 128, 28672, 32000)
    file_bytes = write_gguf(path, "llama", llama_keys(8192, 80, 64, 8, 28672, 4096), tensors, lambda n, s: T.Q4_K,
                            with_data=False, vocab_tokens=32000)
    assert path.stat().st_size > 38e9
    model = load_model(str(path))
    assert model.params == load_model("llama-2-70b").params
    assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes


# --- bad files ------------------------------------------------------------------------------------


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path)
    data = path.read_bytes()
    header_end = read_gguf_header(path).data_offset
    for cut in (0, 3, 10, 30, header_end // 2, header_end - 1, len(data) - 1):
        broken = tmp_path / f"cut{cut}.gguf"
        broken.write_bytes(data[:cut])
        with pytest.raises(InputError) as err:
            load_model(str(broken))
        assert "\n" not in str(err.value)


def test_not_gguf_and_unknown_architecture(tmp_path: Path) -> None:
    text = tmp_path / "a.gguf"
    text.write_text("hello, this is not a model file at all\n")
    with pytest.raises(InputError, match="not a GGUF file"):
        load_model(str(text))
    with pytest.raises(InputError, match=r"GGUF file .*: cannot read"):
        load_model(str(tmp_path / "missing.gguf"))
    path = tmp_path / "mamba.gguf"
    write_gguf(path, "mamba", LLAMA_KEYS, LLAMA_TENSORS, lambda n, s: T.F16)
    with pytest.raises(InputError, match=r"unsupported architecture 'mamba'; supported: llama, .*qwen3, qwen3moe, "
                                         r"gpt-oss, deepseek2, "):
        load_model(str(path))


def test_missing_key_and_missing_tensor(tmp_path: Path) -> None:
    path = tmp_path / "nokey.gguf"
    write_gguf(path, "llama", {k: v for k, v in LLAMA_KEYS.items() if k != "block_count"}, LLAMA_TENSORS,
               lambda n, s: T.F16)
    with pytest.raises(InputError, match=r"missing metadata key 'llama\.block_count'"):
        load_model(str(path))
    path = tmp_path / "notensor.gguf"
    write_gguf(path, "llama", LLAMA_KEYS, [t for t in LLAMA_TENSORS if t[0] != "blk.3.ffn_up.weight"],
               lambda n, s: T.F16)
    with pytest.raises(InputError, match=r"'mlp\.up_proj'"):
        load_model(str(path))


def test_unknown_tensor_type_id(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path, lambda n, s: T.F16)
    data = bytearray(path.read_bytes())
    name = b"blk.0.attn_q.weight"
    at = data.index(name) + len(name) + 4 + 2 * 8  # past n_dims and two dims: the type id
    struct.pack_into("<I", data, at, 999)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="unknown ggml type id 999"):
        load_model(str(path))


def test_cli_gguf_command_and_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path)
    assert main(["gguf", str(path), "--format", "json"]) == 0
    assert '"modelled_tensor_bytes"' in capsys.readouterr().out
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(path.read_bytes()[:100])
    assert main(["analyze", "-m", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("llm-roofline: error:")


def _small_file() -> tuple[bytes, int]:
    """A valid small GGUF file (its data a sparse hole) and where its header ends."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "h.gguf"
        write_gguf(path, "llama", llama_keys(64, 2, 4, 2, 96), llama_like_tensors(64, 2, 4, 2, 16, 96, 100),
                   lambda n, s: T.Q8_0, with_data=False, vocab_tokens=20)
        return path.read_bytes(), read_gguf_header(path).data_offset


HEADER, HEADER_END = _small_file()


def _load_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.gguf"
        path.write_bytes(data)
        try:
            load_model(str(path))
        except InputError as err:
            assert "\n" not in str(err)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, HEADER_END - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, HEADER_END))
def test_fuzzed_headers_never_crash(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(HEADER)
    for position, value in edits:
        data[position] = value
    _load_bytes(bytes(data))  # a valid model or one InputError line, never another exception
    _load_bytes(bytes(data[:cut]))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_after_the_magic_never_crash(tail: bytes) -> None:
    _load_bytes(b"GGUF" + struct.pack("<I", 3) + tail)


# --- caps: what a header may hold, so that reading one is bounded in time and memory ---------------


def _string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _raw_header(kvs: bytes, n_kv: int, tensors: bytes = b"", n_tensors: int = 0) -> bytes:
    """A GGUF v3 header from raw key/value and tensor-info bytes (as a hostile writer would make one)."""
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kvs + tensors


def _read_start(data: bytes | bytearray) -> None:
    read_gguf_model_start(data, len(data) + (1 << 30), "hostile.gguf")


def _string_array(key: bytes, count: int) -> bytes:
    return _string(key) + struct.pack("<IIQ", 9, 8, count) + _string(b"") * count  # ARRAY of STRING, all empty


@pytest.mark.parametrize(("data", "message"), [
    # counts over the caps are refused before anything is read: 5,000 keys of 14 bytes, 40,000 tensors
    (_raw_header(b"".join(_string(b"k%04d" % i) + struct.pack("<IB", 0, 1) for i in range(5000)), 5000),
     "5000 metadata keys; at most 4096 allowed"),
    (_raw_header(b"", 0, b"".join(_string(b"t%05d" % i) + struct.pack("<IQIQ", 1, 32, 0, 0) for i in range(40_000)),
                 40_000), "40000 tensors; at most 32768 allowed"),
    (_raw_header(_string(b"k" * 65_536) + struct.pack("<IB", 0, 1), 1), "65536 bytes long; at most 65535 allowed"),
    (_raw_header(b"", 0, _string(b"t" * 64) + struct.pack("<IQIQ", 1, 32, 0, 0), 1),
     "tensor name at byte 24 is 64 bytes long; at most 63 allowed"),
    # an array longer than 4x the largest vocabulary, refused from its length alone
    (_raw_header(_string(b"a") + struct.pack("<IIQ", 9, 8, (1 << 20) + 1) + b"\0" * 64, 1),
     "array 'a' has 1048577 elements; at most 1048576 allowed"),
])
def test_headers_over_the_caps_are_refused_in_one_line(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as err:
        _read_start(data)
    assert "\n" not in str(err.value) and str(err.value).startswith("hostile.gguf: ")


def test_strings_and_nested_arrays_share_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import llm_roofline.inputs.gguf as reader

    monkeypatch.setattr(reader, "_MAX_ARRAY_ITEMS", 100)
    under = _string_array(b"a", 60) + _string_array(b"b", 40)  # 100 strings: at the cap
    with pytest.raises(InputError, match=r"missing metadata key 'general\.architecture'"):
        _read_start(_raw_header(under, 2))  # read through to the model, which has none
    nested = _string(b"c") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 0, 0)  # one nested (empty) array
    with pytest.raises(InputError, match="hold more than 100 strings or nested arrays in all"):
        _read_start(_raw_header(under + nested, 3))


def test_numeric_array_values_are_decoded_up_to_a_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import llm_roofline.inputs.gguf as reader

    monkeypatch.setattr(reader, "_KEPT_VALUES", 10)
    arrays = [_string(b"k%d" % i) + struct.pack("<IIQ", 9, 5, 4) + struct.pack("<4i", i, i, i, i) for i in range(4)]
    data = _raw_header(b"".join(arrays), 4)
    cursor = reader._Cursor(data, len(data), "h", "<")
    cursor.offset = 24
    scalars = reader._value_codes()
    values = []
    for _ in range(4):
        key = cursor.string("key")
        values.append(reader._read_value(cursor, cursor.integer("I", "type"), key, scalars).values)
    assert values == [(0, 0, 0, 0), (1, 1, 1, 1), None, None]  # 4 + 4 decoded; the next 4 would pass 10


def test_a_string_array_cut_short_says_where() -> None:
    data = _raw_header(_string_array(b"tokens", 1000), 1)
    with pytest.raises(InputError, match="send more of its start"):
        read_gguf_model_start(data[:5000], len(data) + 100, "cut.gguf")
    long_string = _raw_header(_string(b"a") + struct.pack("<IIQ", 9, 8, 2) + _string(b"x" * 100) + _string(b"y"), 1)
    with pytest.raises(InputError, match="truncated or corrupt GGUF file: array 'a' at byte"):
        read_gguf_model_start(long_string[:-3], len(long_string) - 3, "cut.gguf")


def test_an_upload_in_a_bytearray_reads_like_bytes(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path)
    data = path.read_bytes()
    assert read_gguf_model_start(bytearray(data), len(data), "m").model == read_gguf_model_start(data, len(data),
                                                                                                  "m").model
