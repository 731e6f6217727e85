"""Real GGUF files for tests, written with the ``gguf`` package's own writer (llama.cpp's gguf-py).

``llama_like_tensors`` lists the tensors llama.cpp's converter writes for a llama-style model, in
numpy shape order (rows, columns); ``attention_tensors``, ``mla_tensors``, ``mlp_tensors`` and
``moe_tensors`` list one layer's pieces for the other architectures (names from ``gguf.TENSOR_NAMES``,
shapes as llama.cpp's loader creates them, reversed). ``write_gguf`` writes them with the given ggml
types, either with their (zero) data or as a header followed by a sparse hole of the data's size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np

T = gguf.GGMLQuantizationType
Tensor = tuple[str, tuple[int, ...]]


def llama_like_tensors(d: int, layers: int, heads: int, kv_heads: int, head_dim: int, inter: int, vocab: int,
                       tied: bool = False, experts: int = 1, qkv_bias: bool = False) -> list[Tensor]:
    """Tensor names and numpy shapes of a llama/qwen2/mixtral GGUF (experts merged as *_exps)."""
    tensors: list[Tensor] = [("token_embd.weight", (vocab, d))]
    for i in range(layers):
        b = f"blk.{i}"
        tensors += [(f"{b}.attn_norm.weight", (d,)),
                    (f"{b}.attn_q.weight", (heads * head_dim, d)),
                    (f"{b}.attn_k.weight", (kv_heads * head_dim, d)),
                    (f"{b}.attn_v.weight", (kv_heads * head_dim, d)),
                    (f"{b}.attn_output.weight", (d, heads * head_dim)),
                    (f"{b}.ffn_norm.weight", (d,))]
        if qkv_bias:
            tensors += [(f"{b}.attn_q.bias", (heads * head_dim,)), (f"{b}.attn_k.bias", (kv_heads * head_dim,)),
                        (f"{b}.attn_v.bias", (kv_heads * head_dim,))]
        if experts > 1:
            tensors += [(f"{b}.ffn_gate_inp.weight", (experts, d)),
                        (f"{b}.ffn_gate_exps.weight", (experts, inter, d)),
                        (f"{b}.ffn_up_exps.weight", (experts, inter, d)),
                        (f"{b}.ffn_down_exps.weight", (experts, d, inter))]
        else:
            tensors += [(f"{b}.ffn_gate.weight", (inter, d)), (f"{b}.ffn_up.weight", (inter, d)),
                        (f"{b}.ffn_down.weight", (d, inter))]
    tensors.append(("output_norm.weight", (d,)))
    if not tied:
        tensors.append(("output.weight", (vocab, d)))
    return tensors


def attention_tensors(b: str, d: int, heads: int, kv_heads: int, head_dim: int, bias: bool = False,
                      out_bias: bool = False, qk_norm: str | None = None, sinks: bool = False) -> list[Tensor]:
    """One layer's multi-head attention: q/k/v/output, their biases, q/k norms ("head": per head, "full":
    over all heads, OLMo-2) and gpt-oss's sinks."""
    q, kv = heads * head_dim, kv_heads * head_dim
    tensors: list[Tensor] = [(f"{b}.attn_q.weight", (q, d)), (f"{b}.attn_k.weight", (kv, d)),
                             (f"{b}.attn_v.weight", (kv, d)), (f"{b}.attn_output.weight", (d, q))]
    if bias:
        tensors += [(f"{b}.attn_q.bias", (q,)), (f"{b}.attn_k.bias", (kv,)), (f"{b}.attn_v.bias", (kv,))]
    if out_bias:
        tensors.append((f"{b}.attn_output.bias", (d,)))
    if qk_norm == "head":
        tensors += [(f"{b}.attn_q_norm.weight", (head_dim,)), (f"{b}.attn_k_norm.weight", (head_dim,))]
    elif qk_norm == "full":
        tensors += [(f"{b}.attn_q_norm.weight", (q,)), (f"{b}.attn_k_norm.weight", (kv,))]
    if sinks:
        tensors.append((f"{b}.attn_sinks.weight", (heads,)))
    return tensors


def mla_tensors(b: str, d: int, heads: int, q_lora: int, rank: int, nope: int, rope: int, v: int,
                split: bool = True) -> list[Tensor]:
    """One layer of DeepSeek's latent attention. ``split``: attn_kv_b as llama.cpp's converter writes it since
    its MLA change, attn_k_b (heads, rank, nope) and attn_v_b (heads, v, rank); else the one attn_kv_b."""
    tensors: list[Tensor] = [(f"{b}.attn_q_a.weight", (q_lora, d)), (f"{b}.attn_q_a_norm.weight", (q_lora,)),
                             (f"{b}.attn_q_b.weight", (heads * (nope + rope), q_lora)),
                             (f"{b}.attn_kv_a_mqa.weight", (rank + rope, d)), (f"{b}.attn_kv_a_norm.weight", (rank,))]
    if split:
        tensors += [(f"{b}.attn_k_b.weight", (heads, rank, nope)), (f"{b}.attn_v_b.weight", (heads, v, rank))]
    else:
        tensors.append((f"{b}.attn_kv_b.weight", (heads * (nope + v), rank)))
    return [*tensors, (f"{b}.attn_output.weight", (d, heads * v))]


def mlp_tensors(b: str, d: int, inter: int, gated: bool = True, bias: bool = False) -> list[Tensor]:
    """One layer's dense MLP (gate, up, down; ungated: up, down) and its biases."""
    tensors: list[Tensor] = [(f"{b}.ffn_gate.weight", (inter, d))] if gated else []
    tensors += [(f"{b}.ffn_up.weight", (inter, d)), (f"{b}.ffn_down.weight", (d, inter))]
    if bias:
        tensors += [(f"{b}.ffn_up.bias", (inter,)), (f"{b}.ffn_down.bias", (d,))]
    return tensors


def moe_tensors(b: str, d: int, inter: int, experts: int, shared: int = 0, bias: bool = False,
                deepseek: bool = False) -> list[Tensor]:
    """One layer's mixture of experts: router, merged experts, shared experts of width ``shared``; ``bias``:
    gpt-oss's router and expert biases; ``deepseek``: the routing correction exp_probs_b (a buffer)."""
    tensors: list[Tensor] = [(f"{b}.ffn_gate_inp.weight", (experts, d)),
                             (f"{b}.ffn_gate_exps.weight", (experts, inter, d)),
                             (f"{b}.ffn_up_exps.weight", (experts, inter, d)),
                             (f"{b}.ffn_down_exps.weight", (experts, d, inter))]
    if bias:
        tensors += [(f"{b}.ffn_gate_inp.bias", (experts,)), (f"{b}.ffn_gate_exps.bias", (experts, inter)),
                    (f"{b}.ffn_up_exps.bias", (experts, inter)), (f"{b}.ffn_down_exps.bias", (experts, d))]
    if deepseek:
        tensors.append((f"{b}.exp_probs_b.bias", (experts,)))
    if shared:
        tensors += [(f"{b}.ffn_gate_shexp.weight", (shared, d)), (f"{b}.ffn_up_shexp.weight", (shared, d)),
                    (f"{b}.ffn_down_shexp.weight", (d, shared))]
    return tensors


def _ggml_type(name: str, shape: tuple[int, ...],
               type_of: Callable[[str, tuple[int, ...]], gguf.GGMLQuantizationType]) -> gguf.GGMLQuantizationType:
    """Vectors and biases stay F32, as llama.cpp's converter and quantizer keep them."""
    return T.F32 if len(shape) == 1 or name.endswith(".bias") else type_of(name, shape)


def tensor_bytes(shape: Sequence[int], ggml_type: gguf.GGMLQuantizationType) -> int:
    block, type_bytes = gguf.GGML_QUANT_SIZES[ggml_type]
    return int(np.prod(shape)) // block * type_bytes


def write_gguf(path: Path, arch: str, keys: dict[str, Any], tensors: Sequence[Tensor],
               type_of: Callable[[str, tuple[int, ...]], gguf.GGMLQuantizationType],
               with_data: bool = True, file_type: int | None = None, vocab_tokens: int = 0) -> int:
    """Write a GGUF file; ``keys`` are ``{arch}.`` keys or full keys (ints as uint32, floats as float32, bools,
    strings, lists as arrays); returns the tensor bytes."""
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(f"test {arch}")
    if file_type is not None:
        writer.add_file_type(file_type)
    for key, value in keys.items():
        full = key if "." in key and key.split(".")[0] in ("general", "tokenizer") else f"{arch}.{key}"
        if isinstance(value, str):
            writer.add_string(full, value)
        elif isinstance(value, bool):
            writer.add_bool(full, value)
        elif isinstance(value, float):
            writer.add_float32(full, value)
        elif isinstance(value, list):
            writer.add_array(full, value)
        else:
            writer.add_uint32(full, value)
    if vocab_tokens:
        writer.add_tokenizer_model("llama")
        writer.add_token_list([f"tok{i}" for i in range(vocab_tokens)])
    total = 0
    for name, shape in tensors:
        ggml_type = _ggml_type(name, shape, type_of)
        nbytes = tensor_bytes(shape, ggml_type)
        total += nbytes
        block, type_bytes = gguf.GGML_QUANT_SIZES[ggml_type]
        byte_shape = (*shape[:-1], shape[-1] // block * type_bytes)
        if with_data:
            writer.add_tensor(name, np.zeros(byte_shape, dtype=np.uint8), raw_dtype=ggml_type)
        else:
            writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=ggml_type)
    if with_data:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    else:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        writer.close()
        header = os.path.getsize(path)
        data = sum(gguf.GGUFWriter.ggml_pad(tensor_bytes(s, _ggml_type(n, s, type_of)), 32)
                   for n, s in tensors)
        os.truncate(path, gguf.GGUFWriter.ggml_pad(header, 32) + data)  # a sparse hole: no disk used
    return total


def llama_keys(d: int, layers: int, heads: int, kv_heads: int, inter: int, context: int = 256,
               experts: int = 1, used: int = 1) -> dict[str, int]:
    keys = {"context_length": context, "embedding_length": d, "block_count": layers, "feed_forward_length": inter,
            "attention.head_count": heads, "attention.head_count_kv": kv_heads}
    if experts > 1:
        keys |= {"expert_count": experts, "expert_used_count": used}
    return keys
