"""The range each count and figure may take: one table per domain, read by every check of that domain.

A value outside its range is a malformed file or a typo, not a bigger model or a faster device: each
bound sits well past the largest real value (the reason is beside it), and within the bounds every
figure the analyzer derives stays a finite float64 (the largest, a 2^20-sequence prefill of 2^24
tokens through the widest model, is ~1e40 FLOP), so no output holds inf or NaN and no loop over
layers, steps or threads runs unbounded.

The model's table is checked by ``architecture`` and ``models`` (so a ``ModelSpec`` built from Python,
a config.json or a GGUF header alike), the workload's by ``transformer.Workload``, the device's by
``hardware.HardwareSpec``, the studies' and the measurement's by their functions; the command line
bounds its flags with the same entries. Errors name the parameter; docs/security.md lists the ranges.
"""

from __future__ import annotations

from typing import NamedTuple

from llm_roofline.core.errors import InputError, shown


class Limit(NamedTuple):
    """The accepted range of one count (``integer``) or figure, both ends included."""

    low: float
    high: float
    integer: bool
    unit: str  # of a figure, in messages and the docs; "" for a count
    why: str  # the largest real value, or what the bound protects


def _count(low: int, high: int, why: str) -> Limit:
    return Limit(low, high, True, "", why)


def _figure(low: float, high: float, unit: str, why: str) -> Limit:
    return Limit(low, high, False, unit, why)


# --- a model: ModelSpec, Attention, MLP (and the config.json keys that set them) ---------------------
MODEL: dict[str, Limit] = {
    "layers": _count(1, 1024, "Llama-3.1-405B has 126 layers, PaLM 118; the deepest published decoder stack "
                              "(DeepNet) 500"),
    "hidden_size": _count(1, 1 << 17, "the widest published models: MT-NLG 20480, PaLM 18432"),
    "heads": _count(1, 1 << 12, "Llama-3.1-405B and DeepSeek-V3 have 128"),
    "kv_heads": _count(1, 1 << 12, "at most the heads"),
    "head_dim": _count(1, 1 << 13, "64 to 256 in every catalogue model (MLA's query/key: 192)"),
    "rotary_dims": _count(0, 1 << 13, "a part of head_dim (rope_dim, qk_rope_head_dim, v_head_dim)"),
    "lora_rank": _count(1, 1 << 17, "MLA's latents: DeepSeek-V3's kv_lora_rank 512, q_lora_rank 1536"),
    "intermediate_size": _count(1, 1 << 20, "MT-NLG's FFN is 81920 wide, PaLM's 73728"),
    "shared_intermediate_size": _count(0, 1 << 20, "shared experts: Llama 4's 8192, DeepSeek-V3's 2048"),
    "experts": _count(1, 1 << 16, "Kimi K2 routes among 384 experts, DeepSeek-V3 256"),
    "experts_per_token": _count(1, 1 << 16, "at most the experts; DeepSeek-V3 and Kimi K2 pick 8"),
    "vocab_size": _count(1, 1 << 24, "Gemma 3's 262208 is the largest in the catalogue"),
    "max_position_embeddings": _count(1, 1 << 26, "Llama 4 Scout's 10485760 is the longest context window"),
    "window": _count(1, 1 << 26, "a sliding window or attention chunk: at most a context window"),
    "position_rows": _count(0, (1 << 26) + 2, "a learned position table: a context window, plus OPT's 2 rows"),
    "layer_count": _count(0, 1024, "a number of layers or an index into them: DeepSeek-V3's first_k_dense_replace "
                                   "(3), num_nextn_predict_layers (1), Gemma 3's sliding_window_pattern (6)"),
    "softcap": _figure(1e-3, 1e6, "", "Gemma-2 caps scores at 50 and logits at 30"),
    "conv_kernel": _count(1, 1 << 10, "a recurrent mixer's short convolution: LFM2's 3 taps, Mamba-2's and "
                                      "Qwen3-Next's 4"),
}

# --- a workload: Workload --------------------------------------------------------------------------
WORKLOAD: dict[str, Limit] = {
    "batch": _count(1, 1 << 20, "serving engines batch at most a few thousand sequences (vLLM's default: 256 to 1024)"),
    "seq_len": _count(1, 1 << 24, "1.6x the longest context window (Llama 4 Scout: 10485760 tokens)"),
    "new_tokens": _count(1, 1024, "speculative verification: EAGLE-2's draft trees hold about 60 tokens"),
    "graph_tokens": _count(1, 1 << 16, "an NPU runtime's fixed decode graph: coreml-llm-cli computes 64 positions "
                                       "per step, QNN's prompt processors 128 to 1024"),
    "graph_context": _count(2, 1 << 24, "a compiled graph's KV cache: QNN's 1024 to 4096 positions; at most seq_len's"),
}

# --- a device: HardwareSpec ------------------------------------------------------------------------
DEVICE: dict[str, Limit] = {
    "memory_bytes": _figure(1e6, 1e15, "B", "a GB200 NVL72 rack holds 13.4 TB of HBM, a big server 12 TB of DRAM"),
    "memory_bytes_per_s": _figure(1e6, 1e18, "B/s", "B200's HBM: 8e12 B/s; Cerebras WSE-3's SRAM: 2.1e16 B/s; "
                                                    "an SD card: 1e7 B/s"),
    "peak_flops_per_s": _figure(1e6, 1e19, "FLOP/s", "a GB200 NVL72 rack: 1.4e18 FLOP/s (sparse FP4); "
                                                      "a microcontroller: 1e8 FLOP/s"),
}

# --- the studies, deployments and the measurement ------------------------------------------------
STUDY: dict[str, Limit] = {
    "tokens_per_s": _figure(1e-6, 1e6, "tokens/s", "per sequence: the fastest served decode is ~3e3 tokens/s"),
    "time_per_token_s": _figure(1e-6, 1e6, "s", "the inverse of tokens_per_s's range"),
    "params": _figure(1, 1e15, "parameters", "the largest published models hold ~2e12"),
    "dram_pj_per_byte": _figure(1e-3, 1e5, "pJ/B", "HBM3 ~30 pJ/B, DDR4 ~150 pJ/B, on-chip SRAM ~1 pJ/B"),
    "steps": _count(1, 1 << 18, "decode steps: twice the longest outputs models allow (~1.3e5 tokens)"),
    "devices": _count(1, 4096, "tensor parallelism splits the heads, pipeline parallelism the layers"),
    "draft_tokens": _count(0, 1023, "a verification pass of new_tokens = draft_tokens + 1"),
    "gpu_layers": _count(0, 1 << 16, "llama.cpp's -ngl: past the layers means all of them (people write 99 or 999)"),
    "prefill_chunk_tokens": _count(1, 1 << 24, "llama.cpp's n_ubatch (512 by default): at most a sequence"),
    "link_bytes_per_s": _figure(1e6, 1e18, "B/s", "NVLink 5: 1.8e12 B/s per GPU; as the memory bandwidth"),
    "link_latency_s": _figure(0, 1, "s", "NVLink ~1e-6 s, Ethernet ~1e-5 s"),
    "overhead_bytes": _figure(0, 1e15, "B", "a runtime's own memory: at most a device's"),
    "threads": _count(1, 1024, "two 192-core SMT processors run 768 hardware threads"),
    "budget_s": _figure(1, 86400, "s", "the default measurement takes 70 s; a day at most"),
    "arithmetic_intensity": _figure(0, 1e12, "FLOP/B", "a square GEMM of n = 2^24 in fp32: 2.8e6 FLOP/B"),
    "matrix_size": _count(1, 1 << 24, "a matmul's rows, columns or depth: a sequence or a layer's width"),
}


def describe(limit: Limit) -> str:
    """The range in words: 'an integer from 1 to 1024', 'a number from 1e+06 to 1e+18 B/s'."""
    if limit.integer:
        return f"an integer from {int(limit.low)} to {int(limit.high)}"
    unit = f" {limit.unit}" if limit.unit else ""
    return f"a number from {limit.low:g} to {limit.high:g}{unit}"


def count(name: str, value: object, limit: Limit, where: str = "") -> int:
    """``value`` if it is an integer within ``limit``, else an InputError naming ``name`` and the range
    (``where``: a prefix such as "model 'x': ")."""
    if not isinstance(value, int) or isinstance(value, bool) or not limit.low <= value <= limit.high:
        raise InputError(f"{where}{name} must be {describe(limit)}, got {shown(value)}")
    return value


def figure(name: str, value: object, limit: Limit, where: str = "") -> float:
    """``value`` as a float if it is a finite number within ``limit``, else an InputError naming ``name``."""
    # Compared before any conversion (a 400-digit integer is out of range, not an OverflowError); NaN and
    # infinities fail the comparison.
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not limit.low <= value <= limit.high:
        raise InputError(f"{where}{name} must be {describe(limit)}, got {shown(value)}")
    return float(value)
