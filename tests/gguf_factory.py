"""Real GGUF files for tests, written with the ``gguf`` package's own writer (llama.cpp's gguf-py).

``llama_like_tensors`` lists the tensors llama.cpp's converter writes for a llama-style model, in
numpy shape order (rows, columns); ``write_gguf`` writes them with the given ggml types, either with
their (zero) data or as a header followed by a sparse hole of the data's size.
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


def tensor_bytes(shape: Sequence[int], ggml_type: gguf.GGMLQuantizationType) -> int:
    block, type_bytes = gguf.GGML_QUANT_SIZES[ggml_type]
    return int(np.prod(shape)) // block * type_bytes


def write_gguf(path: Path, arch: str, keys: dict[str, Any], tensors: Sequence[Tensor],
               type_of: Callable[[str, tuple[int, ...]], gguf.GGMLQuantizationType],
               with_data: bool = True, file_type: int | None = None, vocab_tokens: int = 0) -> int:
    """Write a GGUF file; ``keys`` are ``{arch}.`` keys (ints) or full keys; returns the tensor bytes."""
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(f"test {arch}")
    if file_type is not None:
        writer.add_file_type(file_type)
    for key, value in keys.items():
        full = key if "." in key and key.split(".")[0] in ("general", "tokenizer") else f"{arch}.{key}"
        if isinstance(value, str):
            writer.add_string(full, value)
        else:
            writer.add_uint32(full, value)
    if vocab_tokens:
        writer.add_tokenizer_model("llama")
        writer.add_token_list([f"tok{i}" for i in range(vocab_tokens)])
    total = 0
    for name, shape in tensors:
        ggml_type = T.F32 if len(shape) == 1 else type_of(name, shape)
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
        data = sum(gguf.GGUFWriter.ggml_pad(tensor_bytes(s, T.F32 if len(s) == 1 else type_of(n, s)), 32)
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
