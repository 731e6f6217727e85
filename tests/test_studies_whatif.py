"""What-if comparisons (exercises 2.4, 2.8; section 2.4.3): one knob changed, exact ratios."""

from __future__ import annotations

import pytest

from llm_roofline import InputError, Workload, load_hardware, load_model
from llm_roofline.features.studies.whatif import Change, parse_change, what_if

LLAMA = load_model("llama-2-7b")  # 32 heads, all with their own K and V (MHA)
ORIN = load_hardware("jetson-orin-nx")


def test_exercise_2_8_gqa_and_mqa_shrink_the_kv_cache_4x_and_32x() -> None:
    # KV cache = 2 x layers x L x Hkv x hd x 2 B: 32 -> 8 KV heads is 4x smaller, 32 -> 1 is 32x.
    result = what_if(LLAMA, ORIN, Workload(seq_len=4096), parse_change("kv-heads=8,1"))
    gqa, mqa = result.variants
    assert result.baseline.kv_cache_bytes == 2 * 32 * 4097 * 32 * 128 * 2
    assert gqa.kv_cache_ratio == 1 / 4 and mqa.kv_cache_ratio == 1 / 32
    # The attention kernels gain ~4x and ~22x; the whole batch-1 step only ~13 % and ~18 %: weights dominate.
    assert gqa.attention_core_intensity_ratio == pytest.approx(3.82, abs=0.01)
    assert mqa.attention_core_intensity_ratio == pytest.approx(21.56, abs=0.01)
    assert gqa.intensity_ratio == pytest.approx(1.13, abs=0.01)
    assert mqa.intensity_ratio == pytest.approx(1.18, abs=0.01)


def test_exercise_2_4_flash_attention_removes_four_passes_over_the_scores() -> None:
    # Prefill L = 2048 without causal skipping on either side, so only the traffic changes.
    # Removed per layer: scores written by QKᵀ, read and written by softmax, read by PV:
    # 4 x H x L² x 2 B = 4 x 32 x 2048² x 2 = 1.07 GB; x 32 layers = 34.36 GB.
    result = what_if(LLAMA, ORIN, Workload(phase="prefill", seq_len=2048, causal_skip=False),
                     [Change("flash-attention", "on")])
    fused = result.variants[0]
    assert fused.bytes_saved == 32 * 4 * 32 * 2048**2 * 2
    assert fused.flops == result.baseline.flops
    # Attention-kernel intensity: (4HL²a + 4LH·hd·a) / (4LH·hd·a) = 1 + L/hd = 1 + 2048/128 = 17 (not L/d).
    assert fused.attention_core_intensity_ratio == pytest.approx(17.0, rel=1e-12)


def test_precision_knobs() -> None:
    result = what_if(LLAMA, ORIN, Workload(), parse_change("weights=int8,int4") + parse_change("kv-cache=int8"))
    int8, int4, kv8 = result.variants
    assert int8.weight_bytes_moved / result.baseline.weight_bytes_moved == pytest.approx(0.5, abs=0.01)
    assert int4.weight_bytes_moved / result.baseline.weight_bytes_moved == pytest.approx(0.25, abs=0.01)
    assert kv8.kv_cache_ratio == pytest.approx(0.5)
    assert result.baseline.time_ratio == 1.0


def test_batch_and_length_knobs() -> None:
    result = what_if(LLAMA, ORIN, Workload(), parse_change("batch=8") + parse_change("seq-len=2048"))
    batch8, longer = result.variants
    assert batch8.flops == pytest.approx(8 * result.baseline.flops, rel=0.01)
    assert longer.kv_cache_ratio == pytest.approx(2049 / 1025)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kv-heads=3", "multiple of num_key_value_heads"),  # 32 heads do not split into 3 groups
        ("kv-heads=0", "integer >= 1"),
        ("kv-heads=x", "must be an integer"),
        ("flash-attention=maybe", "on or off"),
        ("weights=int3x", "unknown precision"),
        ("colour=blue", "unknown knob"),
        ("kv-heads", "KNOB=VALUE"),
    ],
)
def test_bad_changes_are_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        what_if(LLAMA, ORIN, Workload(), parse_change(text))


def test_no_change_is_an_input_error() -> None:
    with pytest.raises(InputError, match="at least one change"):
        what_if(LLAMA, ORIN, Workload(), [])


def test_each_variant_says_what_it_moved() -> None:
    # GQA-8 on Llama-2-7B at 4096 cached tokens, batch 1: the K and V projections shrink from 4096 to
    # 1024 outputs (2 x 4096 x 3072 x 2 B x 32 layers = 1,610,612,736 B fewer weight bytes), and the
    # KV-cache traffic by the same 3/4.
    result = what_if(LLAMA, ORIN, Workload(seq_len=4096), [Change("kv-heads", "8")])
    variant = result.variants[0]
    assert variant.weight_bytes_saved == 2 * 4096 * 3072 * 2 * 32
    # 2 FLOPs per weight removed, and RoPE (3 FLOPs per channel) on 3072 fewer key channels per layer
    assert variant.flops_saved == 2 * (2 * 4096 * 3072) * 32 + 3 * 3072 * 32
    # K and V, 32 layers, 3072 fewer channels each: 4097 keys read (the cache and the new token) + 1 written
    assert variant.kv_bytes_saved == 2 * 32 * (4097 + 1) * 3072 * 2
    assert "K/V projection weights" in variant.changes
    saved = variant.weight_bytes_saved + variant.kv_bytes_saved + variant.activation_bytes_saved
    assert saved == pytest.approx(result.baseline.bytes - variant.bytes, rel=1e-12)
