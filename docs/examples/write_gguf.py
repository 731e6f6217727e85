"""Write a Llama-2-7B GGUF file with llama.cpp's Q4_K_M tensor types, its 4 GB of data a sparse hole.

    python docs/examples/write_gguf.py llama-2-7b.Q4_K_M.gguf

The header is real (metadata, tensor names, shapes and ggml types, written by gguf-py's GGUFWriter);
the tensor data is a hole the file system does not store, so the file takes a few kB of disk while its
size is what a real Q4_K_M file's is. llm-roofline reads only the header. The types follow llama.cpp's
llama_tensor_get_type for Q4_K_M: Q6_K for output.weight, and for attn_v and ffn_down in the layers
use_more_bits() picks; Q4_K for the other matrices; F32 for the norms.
"""

import os
import sys

import gguf
import numpy as np

D, LAYERS, HEADS, INTER, VOCAB, CONTEXT = 4096, 32, 32, 11008, 32000, 4096
T = gguf.GGMLQuantizationType


def use_more_bits(layer: int, layers: int) -> bool:
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def tensors() -> list[tuple[str, tuple[int, ...], gguf.GGMLQuantizationType]]:
    """(name, numpy shape, type) in llama.cpp's naming."""
    out = [("token_embd.weight", (VOCAB, D), T.Q4_K)]
    for i in range(LAYERS):
        more = T.Q6_K if use_more_bits(i, LAYERS) else T.Q4_K
        out += [(f"blk.{i}.attn_norm.weight", (D,), T.F32), (f"blk.{i}.attn_q.weight", (D, D), T.Q4_K),
                (f"blk.{i}.attn_k.weight", (D, D), T.Q4_K), (f"blk.{i}.attn_v.weight", (D, D), more),
                (f"blk.{i}.attn_output.weight", (D, D), T.Q4_K), (f"blk.{i}.ffn_norm.weight", (D,), T.F32),
                (f"blk.{i}.ffn_gate.weight", (INTER, D), T.Q4_K), (f"blk.{i}.ffn_up.weight", (INTER, D), T.Q4_K),
                (f"blk.{i}.ffn_down.weight", (D, INTER), more)]
    return out + [("output_norm.weight", (D,), T.F32), ("output.weight", (VOCAB, D), T.Q6_K)]


def main(path: str) -> None:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("Llama-2-7B (header only)")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(D)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(INTER)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    data_bytes = 0
    for name, shape, ggml_type in tensors():
        block, type_bytes = gguf.GGML_QUANT_SIZES[ggml_type]
        nbytes = int(np.prod(shape)) // block * type_bytes
        byte_shape = (*shape[:-1], shape[-1] // block * type_bytes)
        writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=ggml_type)
        data_bytes += gguf.GGUFWriter.ggml_pad(nbytes, 32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header = gguf.GGUFWriter.ggml_pad(os.path.getsize(path), 32)
    os.truncate(path, header + data_bytes)


if __name__ == "__main__":
    main(sys.argv[1])
