"""Attention's share (chapter 2.3): the idealized layer's closed form, the real split, crossovers, advice."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_roofline import InputError, Workload, load_model
from llm_roofline.features.studies.share import (
    crossover_seq_len,
    flop_split,
    idealized_crossover,
    idealized_share,
    recommend,
    share_study,
)

LLAMA = load_model("llama-2-7b")


def test_share_at_l_equals_d_is_42_9_percent_not_58() -> None:
    # Ratio = 1/2 + L/(4d) = 3/4 at L = d, so share = 0.75 / 1.75 = 3/7 = 42.857 % (chapter 2.3.1 says 58 %).
    assert idealized_share(4096, 4096) == pytest.approx(3 / 7, rel=1e-15)
    # 58 % is reached only near L = 3.5d: ratio 0.5 + 3.5/4 = 1.375, share 1.375 / 2.375 = 57.9 %.
    assert idealized_share(3.5 * 4096, 4096) == pytest.approx(0.5789, abs=1e-4)


@pytest.mark.parametrize(
    ("target", "hidden", "expected"),
    [
        # share 1/2 <=> ratio 1 <=> L/(4d) = 1/2 <=> L = 2d = 8192.
        (0.5, 4096, 8192),
        # share 0.6 <=> ratio 1.5 <=> L = 4d (1.5 - 0.5) = 16384.
        (0.6, 4096, 16384),
        # share 0.3 < 1/3, the L -> 0 limit: every L >= 1 is above it.
        (0.3, 4096, 1),
        # exercise 2.2's d = 2048: 1/2 at L = 2d = 4096.
        (0.5, 2048, 4096),
    ],
)
def test_idealized_crossover_closed_form(target: float, hidden: int, expected: int) -> None:
    assert idealized_crossover(target, hidden) == expected


def test_llama2_7b_prefill_2048_split_is_11_0_and_17_7_tflop() -> None:
    # Chapter 2.3.2 says 1.1 and 2.2 TFLOP. Per layer, L = 2048, d = 4096, H = 32 heads of 128, I = 11008:
    # attention = Q, K, V, O 8Ld² + QKᵀ and PV 4L²d + softmax 5HL² + RoPE 3L(H + Hkv)hd
    # FFN       = gate, up, down 6LdI + SwiGLU (4 + 1)LI
    L, d, H, hd, inter, layers = 2048, 4096, 32, 128, 11008, 32
    attention = layers * (8 * L * d * d + 4 * L * L * d + 5 * H * L * L + 3 * L * (H + H) * hd)
    ffn = layers * (6 * L * d * inter + 5 * L * inter)
    split = flop_split(LLAMA, Workload(phase="prefill", seq_len=L))
    assert split.attention_flops == attention  # 11.02e12
    assert split.ffn_flops == ffn  # 17.73e12
    assert split.attention_flops == pytest.approx(11.02e12, rel=1e-3)
    assert split.ffn_flops == pytest.approx(17.73e12, rel=1e-3)
    assert split.share == pytest.approx(0.383, abs=5e-4)  # not 33.3 %


def test_llama2_7b_decode_2048_cached_split() -> None:
    # One token against 2048 cached (it attends to 2049 keys), per layer:
    # attention = 8d² + 4 x 2049 x d + 5H x 2049 + 3(H + Hkv)hd ; FFN = 6dI + 5I. Chapter: 17 and 34 GFLOP.
    d, H, hd, inter, layers, keys = 4096, 32, 128, 11008, 32, 2049
    split = flop_split(LLAMA, Workload(phase="decode", seq_len=2048))
    assert split.attention_flops == layers * (8 * d * d + 4 * keys * d + 5 * H * keys + 3 * 2 * H * hd)  # 5.38e9
    assert split.ffn_flops == layers * (6 * d * inter + 5 * inter)  # 8.66e9
    assert split.attention_flops == pytest.approx(5.38e9, rel=1e-3)
    assert split.ffn_flops == pytest.approx(8.66e9, rel=1e-3)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20_000), st.integers(1, 20_000), st.sampled_from(["prefill", "decode"]), st.booleans())
def test_share_rises_with_length(a: int, b: int, phase: str, flash: bool) -> None:
    short, long = sorted((a, b))
    shares = [flop_split(LLAMA, Workload(phase=phase, seq_len=n, flash_attention=flash)).share for n in (short, long)]
    assert shares[0] <= shares[1]
    if short < long:
        assert shares[0] < shares[1]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 50_000), st.integers(64, 8192))
def test_idealized_share_rises_with_length(length: int, hidden: int) -> None:
    assert idealized_share(length, hidden) < idealized_share(length + 1, hidden)


@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("target", [0.4, 0.5, 0.6])
def test_crossover_is_the_smallest_length(phase: str, target: float) -> None:
    workload = Workload(phase=phase)
    length = crossover_seq_len(LLAMA, workload, target)
    assert length is not None and length > 1

    def share(n: int) -> float:
        return flop_split(LLAMA, Workload(phase=phase, seq_len=n)).share

    assert share(length) >= target > share(length - 1)


@pytest.mark.parametrize(
    ("share", "band", "focus"),
    [(0.30, "< 35%", "FFN first"), (0.35, "35-50%", "balanced"), (0.50, "35-50%", "balanced"),
     (0.51, "> 50%", "attention first")],
)
def test_recommendation_follows_the_chapter_thresholds(share: float, band: str, focus: str) -> None:
    advice = recommend(share)
    assert (advice.band, advice.focus) == (band, focus)
    assert f"{share:.1%}" in advice.reason


def test_recommendation_names_the_chapter_actions() -> None:
    assert "2:4 sparsity of the FFN weights" in recommend(0.2).actions
    assert "FlashAttention pays off" in recommend(0.4).actions
    assert "MQA/GQA" in recommend(0.7).actions and "KV-cache compression" in recommend(0.7).actions


def test_study_table_beside_the_closed_form() -> None:
    study = share_study(LLAMA, Workload(phase="prefill"), [512, 4096], 0.5)
    assert [r.seq_len for r in study.rows] == [512, 4096]
    # The real model tracks the idealized layer closely (SwiGLU 6dI = 16.1 d² vs the ideal 16 d²).
    for row in study.rows:
        assert row.share == pytest.approx(row.idealized_share, abs=0.005)
    assert study.idealized_crossover_seq_len == 8192
    assert study.crossover_seq_len == crossover_seq_len(LLAMA, Workload(phase="prefill"), 0.5)


def test_bare_hidden_size_is_the_idealized_layer_only() -> None:
    # Exercise 2.2: L = 1024, d = 2048 -> 42.95 / (42.95 + 68.72) = 38.5 %.
    study = share_study(None, Workload(phase="prefill"), [1024], hidden_size=2048)
    assert study.rows[0].share == pytest.approx(0.3846, abs=5e-5)
    assert study.crossover_seq_len is None
    # The FLOPs the exercise asks for: 8·1024·2048² + 4·1024²·2048 and 16·1024·2048², exactly.
    row = study.rows[0]
    assert (row.attention_flops, row.ffn_flops, row.other_flops) == (42_949_672_960, 68_719_476_736, 0)


@pytest.mark.parametrize("target", [0.0, 1.0, 1.5, -0.2])
def test_target_share_out_of_range_is_an_input_error(target: float) -> None:
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        share_study(LLAMA, Workload(), [1024], target)


def test_lengths_must_be_positive() -> None:
    with pytest.raises(InputError, match="seq_lens must be an integer from 1 to"):
        share_study(LLAMA, Workload(), [0])
    with pytest.raises(InputError, match="at least one"):
        share_study(LLAMA, Workload(), [])
