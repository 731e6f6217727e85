"""Weight formats as data: exact bits per weight (scales, mins, zero-points included), llama.cpp's mixes."""

from __future__ import annotations

import gguf
import pytest

from llm_roofline import InputError, Workload, analyze, get_format, load_hardware, load_model
from llm_roofline.core.formats import (
    PEAK_FALLBACK,
    PRECISIONS,
    WeightScheme,
    blend_formats,
    format_for_ggml_type,
    format_names,
)
from llm_roofline.core.quant import llama_cpp_mix, mix_names, use_more_bits, weight_scheme

A100 = "nvidia-a100-80gb-sxm"


@pytest.mark.parametrize(("name", "bits"), [
    ("q8_0", 8.5),  # fp16 scale + 32 int8 = 34 B per 32
    ("q4_0", 4.5),  # fp16 scale + 16 B nibbles = 18 B per 32
    ("q5_0", 5.5),  # 22 B per 32
    ("q4_k", 4.5),  # 144 B per 256
    ("q5_k", 5.5),  # 176 B per 256
    ("q6_k", 6.5625),  # 210 B per 256
    ("q3_k", 3.4375),  # 110 B per 256
    ("q2_k", 2.625),  # 84 B per 256
    ("mxfp4", 4.25),  # 4 + 8-bit E8M0 scale / 32
    ("awq", 4 + (16 + 4) / 128),  # fp16 scale + 4-bit zero per group of 128
    ("gptq", 4 + (16 + 4) / 128),  # same, plus g_idx per input column (below)
    ("nf4", 4 + 8 / 64 + 32 / (64 * 256)),  # 8-bit absmax per 64, fp32 per 256 blocks (double quantization)
    ("nf4_nodq", 4 + 32 / 64),  # fp32 absmax per 64
    ("fp8_e5m2", 8),
    ("fp8", 8),
    ("int8", 8),
    ("int4", 4),
    ("bf16", 16),
])
def test_bits_per_weight_golden(name: str, bits: float) -> None:
    assert get_format(name).bits_per_element == bits


def test_ggml_formats_equal_the_gguf_package_block_sizes() -> None:
    # Independent reference: gguf-py's GGML_QUANT_SIZES (block elements, block bytes).
    checked = 0
    for name in format_names():
        fmt = get_format(name)
        if fmt.ggml_type is None:
            continue
        block, type_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[fmt.ggml_type]]
        assert fmt.bits_per_element == 8 * type_bytes / block, name
        assert fmt.block_elements == block, name
        assert format_for_ggml_type(fmt.ggml_type) is fmt
        checked += 1
    assert checked >= 22


def test_every_format_has_a_source_and_a_known_math_precision() -> None:
    for name in format_names():
        fmt = get_format(name)
        assert fmt.source.strip() and fmt.math in PRECISIONS
    assert PEAK_FALLBACK["fp4"][:2] == ("fp4", "fp8")


def test_row_and_column_overheads() -> None:
    # int4 per channel: 4096 x 4096 nibbles + fp16 scale and zero per output row
    assert get_format("int4").tensor_bytes(4096 * 4096, 4096) == 4096 * 4096 / 2 + 4096 * 4
    # GPTQ g128 on a 4096 x 4096 q_proj: (4 + 20/128) bits per weight + one int32 g_idx per input channel
    r = analyze("llama-2-7b", A100, weights="gptq")
    q = next(op for op in r.ops if op.name == "layer.attn.q_proj")
    assert q.weight_bytes == 4096 * 4096 * 4.15625 / 8 + 4096 * 4


def test_formats_by_name_wherever_a_precision_is() -> None:
    w = Workload(weights="q4_0", kv_cache="q8_0", seq_len=2048)
    assert w.weight_format.name == "q4_0" and w.kv_format.name == "q8_0"
    fp16 = analyze("llama-2-7b", A100, seq_len=2048)
    q8 = analyze("llama-2-7b", A100, w)
    # KV cache at 8.5 bits per element: 34/32 of a byte instead of 2
    assert q8.totals.kv_cache_bytes == pytest.approx(fp16.totals.kv_cache_bytes * 8.5 / 16)
    assert get_format("4.5").bits_per_element == 4.5  # bits as a number stay possible
    assert get_format("F16") is get_format("fp16")
    with pytest.raises(InputError, match="unknown precision 'q4_z'"):
        Workload(weights="q4_z")


def test_blend_is_exact_over_layers() -> None:
    q4, q6 = get_format("q4_k"), get_format("q6_k")
    mixed = blend_formats([(q4, 16), (q6, 16)])
    assert mixed.bits_per_element == (4.5 + 6.5625) / 2 and mixed.name == "q4_k+q6_k"
    assert blend_formats([(q4, 3), (q6, 0)]) is q4
    assert WeightScheme.uniform(q4).format_for("lm_head") is q4
    with pytest.raises(InputError, match="unknown tensor role"):
        WeightScheme("bad", q4, (("attn.qkv", q4),))


def test_use_more_bits_picks_half_the_layers() -> None:
    # llama.cpp: i < n/8 or i >= 7n/8 or (i - n/8) % 3 == 2. For n = 32: 0-3, 28-31 and 6, 9, ..., 27.
    chosen = [i for i in range(32) if use_more_bits(i, 32)]
    assert chosen == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]


def test_q4_k_m_mix_on_llama_2_7b() -> None:
    scheme = dict(llama_cpp_mix(load_model("llama-2-7b"), "q4_k_m").by_role)
    assert scheme["attn.q_proj"].name == "q4_k" and scheme["embed"].name == "q4_k"
    assert scheme["attn.v_proj"].bits_per_element == (16 * 6.5625 + 16 * 4.5) / 32  # 16 of 32 layers Q6_K
    assert scheme["mlp.down_proj"].bits_per_element == (16 * 6.5625 + 16 * 4.5) / 32
    assert scheme["lm_head"].name == "q6_k" and scheme["vectors"].name == "fp32"
    weight_bytes = analyze("llama-2-7b", A100, weights="q4_k_m").memory.weight_bytes
    # By hand: q, k, o, gate, up at 4.5 bits; v and down at 5.53125; embed 4.5, output 6.5625; norms fp32.
    d, inter, layers, vocab = 4096, 11008, 32, 32000
    expected = (layers * ((3 * d * d + 2 * d * inter) * 4.5 + (d * d + d * inter) * 5.53125) / 8
                + vocab * d * 4.5 / 8 + vocab * d * 6.5625 / 8 + (2 * layers + 1) * d * 4)
    assert weight_bytes == expected == 4_080_263_168


def test_q4_k_m_matches_a_published_file_size() -> None:
    # localmodels/Llama-2-13B-ggml README (k-quant files, llama.cpp 2d43387): llama-2-13b q4_K_M is 7.87 GB,
    # "GGML_TYPE_Q6_K for half of the attention.wv and feed_forward.w2 tensors, else GGML_TYPE_Q4_K".
    # The file adds a vocabulary header of well under 5 MB.
    weight_bytes = analyze("llama-2-13b", A100, weights="q4_k_m").memory.weight_bytes
    assert 7.865e9 <= weight_bytes <= 7.875e9


def test_mix_rules_for_eight_experts_70b_and_row_fallbacks() -> None:
    mixtral = dict(llama_cpp_mix(load_model("mixtral-8x7b"), "q4_k_m").by_role)
    assert mixtral["attn.v_proj"].name == mixtral["attn.k_proj"].name == "q8_0"  # n_expert == 8
    assert mixtral["attn.o_proj"].name == "q5_k"
    assert mixtral["mlp.router"].name == "fp32"  # ffn_gate_inp is never quantized
    llama70 = dict(llama_cpp_mix(load_model("llama-2-70b"), "q4_k_m").by_role)
    assert llama70["attn.v_proj"].name == "q5_k+q6_k"  # the 70B bump: Q4_K layers become Q5_K
    # Qwen2.5-0.5B: rows of 896 are not whole 256-blocks, so Q4_K falls back to Q5_0 and the tied
    # output/embedding to Q8_0; ffn_down's rows of 4864 = 19 x 256 keep the K-quants.
    qwen = dict(llama_cpp_mix(load_model("qwen2.5-0.5b"), "q4_k_m").by_role)
    assert qwen["attn.q_proj"].name == "q5_0" and qwen["embed"].name == "q8_0"
    assert set(qwen["mlp.down_proj"].name.split("+")) == {"q4_k", "q6_k"}
    assert dict(llama_cpp_mix(load_model("llama-2-7b"), "q8_0").by_role)["lm_head"].name == "q8_0"


def test_mxfp4_moe_mix_matches_the_published_gpt_oss_files() -> None:
    # llama.cpp's MXFP4_MOE file type: the experts' 3-D tensors MXFP4, every other matrix (output too) Q8_0, no
    # other rule. llama-bench prints the ggml-org GGUF files at 11.27 GiB and 59.02 GiB
    # (ggml-org/llama.cpp benches/dgx-spark.md @ 4c7e989); the checkpoints' own bf16 tensors would not fit that.
    scheme = dict(llama_cpp_mix(load_model("gpt-oss-20b"), "mxfp4_moe").by_role)
    assert {scheme[role].name for role in ("mlp.experts.gate_proj", "mlp.experts.up_proj",
                                           "mlp.experts.down_proj")} == {"mxfp4"}
    assert {scheme[role].name for role in ("attn.q_proj", "attn.v_proj", "embed", "lm_head")} == {"q8_0"}
    assert scheme["mlp.router"].name == scheme["vectors"].name == "fp32"
    for model, gib in (("gpt-oss-20b", 11.27), ("gpt-oss-120b", 59.02)):
        weight_bytes = analyze(model, A100, weights="mxfp4_moe").memory.weight_bytes
        assert round(weight_bytes / 2**30, 2) == gib
        assert round(analyze(model, A100).memory.weight_bytes / 2**30, 2) > gib + 0.5  # bf16 attention and embeddings


def test_8da4w_recipe_matches_the_published_executorch_files() -> None:
    # Meta's quantized Llama 3.2 for ExecuTorch: blocks int4 in groups of 32 (fp32 scales: 5 bits per weight),
    # embedding and output int8 per channel, the tied table stored twice; the .pte files are 1083 MiB (1B
    # SpinQuant) and 2435 MiB (3B) (bench/data/calibration.csv rows 70 and 73).
    spec = load_model("llama-3.2-1b")
    scheme = weight_scheme(spec, "8da4w")
    assert scheme.untied_head and scheme.default.name == "int4_g32" and scheme.default.bits_per_element == 5
    assert scheme.format_for("embed").name == scheme.format_for("lm_head").name == "int8"
    for model, mib in (("llama-3.2-1b", 1083), ("llama-3.2-3b", 2435)):
        result = analyze(model, "snapdragon-8-gen-3-cpu", weights="8da4w", activations="int8", seq_len=1)
        assert result.memory.weight_bytes / 2**20 == pytest.approx(mib, rel=0.003)
        assert result.workload.weights_label == "8da4w"
    # A decode step reads the output copy in full and one row of the lookup table: the blocks at 5 bits, the
    # 128,256 x 2,048 output matrix at 8 bits plus a 16-bit scale per row.
    blocks = sum(t.instances * t.elements for t in spec.weight_tensors() if t.role not in ("embed", "vectors"))
    step = analyze(spec, "snapdragon-8-gen-3-cpu", weights="8da4w", activations="int8", seq_len=1)
    head = next(op for op in step.ops if op.name == "lm_head")
    assert head.weight_bytes == 128_256 * 2_048 + 128_256 * 2
    assert step.totals.weight_bytes == pytest.approx(blocks * 5 / 8 + head.weight_bytes + 2_048 * 1.0, rel=1e-3)
    # Storage counts the table twice; one copy is read per step.
    assert step.memory.weight_bytes > step.totals.weight_bytes + 0.99 * head.weight_bytes


def test_weight_scheme_resolution() -> None:
    model = load_model("llama-2-7b")
    assert weight_scheme(model, None).default.name == "fp16"
    assert weight_scheme(model, "int4").name == "int4"
    assert weight_scheme(model, "q5_k_m").name == "q5_k_m"
    assert set(mix_names()) >= {"q4_k_m", "q5_k_m", "q8_0"}
    assert Workload(weights="q4_k_m").weights_label == "q4_k_m"
    assert Workload(weights="q4_k_m").weight_format.name == "q4_k"


def test_decode_time_scales_with_mix_bytes() -> None:
    hw = load_hardware("jetson-orin-nx")
    times = {w: analyze("llama-2-7b", hw, weights=w, seq_len=1) for w in ("fp16", "q8_0", "q4_k_m")}
    for r in times.values():  # batch-1 decode: every operator memory-bound, time = bytes / bandwidth
        assert r.totals.time_s == pytest.approx(r.totals.bytes / hw.memory_bytes_per_s)
    assert times["q8_0"].totals.time_s < times["fp16"].totals.time_s / 1.8


@pytest.mark.parametrize(("weights", "activations", "math", "ceiling"), [
    ("fp16", "fp16", "fp16", "fp16"),
    ("int4", "fp16", "fp16", "fp16"),  # W4A16: weights unpacked to the activations
    ("q4_k", "fp16", "fp16", "fp16"),
    ("int8", "int8", "int8", "int8"),  # W8A8 reaches the int8 units
    ("int4", "int8", "int8", "int8"),  # W4A8: the int8 side
    ("fp16", "int8", "fp16", "fp16"),  # W16A8: no 8-bit unit takes a 16-bit operand
    ("fp8", "fp16", "fp16", "fp16"),
])
def test_a_product_runs_in_the_wider_of_its_operands(weights: str, activations: str, math: str,
                                                     ceiling: str) -> None:
    # The A100 has fp16 and int8 units; the step's ridge is that of its weight matmuls' product.
    result = analyze("llama-2-7b", "nvidia-a100-80gb-sxm", Workload(weights=weights, activations=activations))
    q_proj = next(op for op in result.ops if op.name == "layer.attn.q_proj")
    assert (q_proj.precision, q_proj.peak_precision) == (math, ceiling)
    assert result.totals.peak_precision == ceiling
    device = load_hardware("nvidia-a100-80gb-sxm")
    assert result.totals.ridge_flop_per_byte == device.ridge_point(ceiling)
    # Attention's operands are the activations and the KV cache (in the activations' format here).
    qk = next(op for op in result.ops if op.name == "layer.attn.qk")
    assert qk.precision == get_format(activations).math
    fp16_cache = analyze("llama-2-7b", "nvidia-a100-80gb-sxm", Workload(weights=weights, activations=activations,
                                                                          kv_cache="fp16"))
    assert next(op for op in fp16_cache.ops if op.name == "layer.attn.qk").precision == "fp16"
