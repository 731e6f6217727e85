"""Bound transitions (chapter 2.4): exact critical batch and prompt length, QKᵀ, precision."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_roofline import Workload, analyze, load_hardware, load_model
from llm_roofline.core.transformer import step_ops
from llm_roofline.features.studies.steps import positive_ranges
from llm_roofline.features.studies.transition import (
    WHOLE_STEP,
    critical_batch,
    critical_prompt_len,
    precision_table,
    qk_table,
)

LLAMA = load_model("llama-2-7b")
ORIN = load_hardware("jetson-orin-nx")  # ridge 5300 / 102.4 = 51.7578125 FLOP/B (fp16)
A100 = load_hardware("nvidia-a100-80gb-sxm")


def _point(points: tuple, name: str):  # type: ignore[no-untyped-def]
    return next(p for p in points if p.name == name)


def test_q_proj_critical_batch_by_hand() -> None:
    # q_proj in decode, fp16: F = 2Bd², bytes = 2d² (weights) + 2Bd (in) + 2Bd (out).
    # F > r bytes <=> B (2d² - 4rd) > 2rd² <=> B > r d / (d - 2r)
    # = 51.7578125 x 4096 / (4096 - 103.515625) = 212000 / 3992.484375 = 53.10 -> B = 54.
    points = critical_batch(LLAMA, ORIN, Workload())
    assert _point(points, "layer.attn.q_proj").critical == 54


def test_ffn_critical_batch_by_hand() -> None:
    # gate_proj: F = 2BdI, bytes = 2dI + 2Bd + 2BI. F > r bytes <=> B > r d I / (d I - r (d + I))
    # = 2,333,696,000 / (45,088,768 - 781,750) = 52.67 -> B = 53 (d = 4096, I = 11008, r = 51.7578125).
    points = critical_batch(LLAMA, ORIN, Workload())
    assert _point(points, "layer.mlp.gate_proj").critical == 53


def test_critical_batch_agrees_with_a_scan() -> None:
    # The bisection is exact: the first batch a plain scan finds, for every operator that turns.
    workload = Workload(seq_len=128)
    points = critical_batch(LLAMA, ORIN, workload)
    scans = {}
    for batch in range(1, 120):
        for index, op in enumerate(step_ops(LLAMA, workload, batch=batch)):
            ridge = points[index].ridge_flop_per_byte
            if op.name not in scans and op.cost.flops > ridge * op.cost.bytes:
                scans[op.name] = batch
    for point in points[:-1]:
        assert point.critical == scans.get(point.name), point.name
    assert points[-1].critical == 75  # whole step, 128 cached (KV grows with the batch)


def test_whole_decode_step_never_turns_when_kv_dominates() -> None:
    # 1024 cached: per sequence 537 MB of KV read for 13.8 GFLOP, so the intensity saturates below
    # 13.8e9 / 537e6 = 25.6 FLOP/B < 51.8 whatever the batch.
    whole = critical_batch(LLAMA, ORIN, Workload(seq_len=1024))[-1]
    assert whole.critical is None
    assert whole.intensity_at_max < 25.7


def test_qk_does_not_gain_from_batching_but_projections_do() -> None:
    points = critical_batch(LLAMA, ORIN, Workload())
    assert not _point(points, "layer.attn.qk").gains
    assert _point(points, "layer.attn.qk").critical is None
    assert _point(points, "layer.attn.q_proj").gains


def test_qk_table_chapter_forms() -> None:
    rows = qk_table(LLAMA, Workload(), batches=[1, 8, 64], seq_lens=[1024])
    # [B, L, d] x [B, d, L] in fp32: 2BL²d / (4B(2Ld + L²)) = Ld / (2 (2d + L)), batch-free
    # = 1024 x 4096 / (2 x (8192 + 1024)) = 227.56 (the chapter's Ld/6 would be 699,051).
    for row in rows:
        assert row.chapter_matmul_flop_per_byte == pytest.approx(1024 * 4096 / (2 * (2 * 4096 + 1024)))
    assert len({round(r.decode_qk_flop_per_byte, 12) for r in rows}) == 1  # QKᵀ: same at every batch
    assert len({round(r.prefill_qk_flop_per_byte, 12) for r in rows}) == 1
    q_proj = [r.decode_weight_matmul_flop_per_byte for r in rows]
    assert q_proj[0] < q_proj[1] < q_proj[2]  # a weight matmul: rises with the batch


def test_prefill_critical_lengths_and_the_fall_back() -> None:
    # A100 (ridge 312e12 / 2039e9 = 153): the whole unfused prefill step is compute-bound only for
    # a range of lengths: beyond it the L² score traffic (softmax at 1.25 FLOP/B) pulls it back.
    whole = critical_prompt_len(LLAMA, A100, Workload())[-1]
    assert whole.critical is not None and whole.memory_bound_again is not None

    def above(length: int) -> bool:
        ops = step_ops(LLAMA, Workload(phase="prefill"), q_len=length, past_len=0)
        flops = sum(op.cost.flops * op.instances for op in ops)
        moved = sum(op.cost.bytes * op.instances for op in ops)
        return flops > whole.ridge_flop_per_byte * moved

    assert above(whole.critical) and not above(whole.critical - 1)
    assert above(whole.memory_bound_again - 1) and not above(whole.memory_bound_again)
    # FlashAttention removes that traffic: compute-bound from some length on, for good.
    fused = critical_prompt_len(LLAMA, A100, Workload(flash_attention=True))[-1]
    assert fused.critical is not None and fused.memory_bound_again is None


def test_precision_moves_the_transition() -> None:
    # Weight-only int8 halves the weight bytes: the projection's critical batch halves (2.4.3).
    # W8A8 doubles the ridge too on a device with int8 units (A100: 624 vs 312 TOPS): no gain.
    rows = {(r.weights, r.activations): r for r in precision_table(
        LLAMA, A100, Workload(seq_len=128), [("fp16", "fp16"), ("int8", "fp16"), ("int8", "int8")])}
    fp16, w8, w8a8 = rows["fp16", "fp16"], rows["int8", "fp16"], rows["int8", "int8"]
    assert w8.q_proj_critical_batch == pytest.approx(fp16.q_proj_critical_batch / 2, abs=1)
    assert w8a8.ridge_flop_per_byte == pytest.approx(2 * fp16.ridge_flop_per_byte)
    assert w8a8.q_proj_critical_batch >= fp16.q_proj_critical_batch - 1


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 4000))
def test_weight_matmul_intensity_rises_with_batch_and_saturates(a: int, b: int) -> None:
    small, large = sorted((a, b))

    def intensity(batch: int) -> float:
        cost = next(op for op in step_ops(LLAMA, Workload(), batch=batch) if op.name == "layer.mlp.down_proj").cost
        return cost.flops / cost.bytes

    # Limit: 2 I d / ((I + d) x 2 B) = 2 x 11008 x 4096 / (15104 x 2) = 2985.2 FLOP/B.
    limit = 2 * 11008 * 4096 / (15104 * 2)
    assert intensity(small) <= intensity(large) < limit
    if small < large:
        assert intensity(small) < intensity(large)


@settings(max_examples=25, deadline=None)
@given(st.floats(2, 16), st.floats(2, 16))
def test_critical_batch_falls_as_bits_fall(bits_a: float, bits_b: float) -> None:
    # Weight-only formats: fp16 math and the same ridge; fewer bits per weight -> fewer bytes per FLOP.
    fewer, more = sorted((bits_a, bits_b))

    def critical(bits: float) -> int:
        point = _point(critical_batch(LLAMA, ORIN, Workload(weights=bits, seq_len=128)), "layer.attn.q_proj")
        assert point.critical is not None
        return point.critical

    assert critical(fewer) <= critical(more)


@settings(max_examples=60, deadline=None)
@given(st.integers(-50, 50), st.integers(-3000, 3000), st.integers(-100_000, 100_000), st.integers(5, 300))
def test_positive_ranges_match_a_scan(a: int, b: int, c: int, upper: int) -> None:
    # Any quadratic margin: the exact ranges equal the ones a scan of every integer finds.
    def margin(n: int) -> float:
        return a * n * n + b * n + c

    scan: list[tuple[int, int]] = []
    for n in range(1, upper + 1):
        if margin(n) > 0:
            if scan and scan[-1][1] == n - 1:
                scan[-1] = (scan[-1][0], n)
            else:
                scan.append((n, n))
    assert list(positive_ranges(margin, upper)) == scan


def _scan(margin: Callable[[int], float], upper: int, inclusive: bool) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for n in range(1, upper + 1):
        value = margin(n)
        if value >= 0 if inclusive else value > 0:
            if found and found[-1][1] == n - 1:
                found[-1] = (found[-1][0], n)
            else:
                found.append((n, n))
    return found


@settings(max_examples=150, deadline=None)
@given(st.integers(-50, 50), st.integers(-3000, 3000), st.integers(-100_000, 100_000),
       st.floats(-1e6, 1e6), st.floats(0.001, 0.5), st.integers(0, 200), st.integers(5, 400), st.booleans())
def test_positive_ranges_match_a_scan_past_an_inflection(a: int, b: int, c: int, d: float, p: float, window: int,
                                                         upper: int, inclusive: bool) -> None:
    # A quadratic plus what a mixture of experts adds (d x the experts touched, concave and saturating,
    # 1 - (1 - p)^n) and what a window adds (a kink where it fills): convex on one side of an inflection,
    # concave on the other. The exact ranges equal a scan of every integer.
    def margin(n: int) -> float:
        return a * n * n + b * n + c + d * (1 - (1 - p) ** n) - 7 * max(0, n - window) * (a > 0)

    assert list(positive_ranges(margin, upper, inclusive)) == _scan(margin, upper, inclusive)


def test_a_mixture_of_experts_prefill_crossing_matches_analyze() -> None:
    # qwen3-30b-a3b on an A100, 54 sequences: the step turns compute-bound at a 60-token prompt, when the
    # 128 experts are all touched and the tokens share them, and memory-bound again at 2636, when the
    # unfused score matrices outgrow the weights. Each end checked against analyze one token either side.
    model, device = load_model("qwen3-30b-a3b"), load_hardware("nvidia-a100-80gb-sxm")
    points = critical_prompt_len(model, device, Workload(phase="prefill", batch=54))
    whole = next(p for p in points if p.name == WHOLE_STEP)
    assert whole.compute_bound_ranges == ((60, 2635),)
    for length, bound in ((59, "memory"), (60, "compute"), (2635, "compute"), (2636, "memory")):
        assert analyze(model, device, Workload(phase="prefill", batch=54, seq_len=length)).totals.bound == bound
