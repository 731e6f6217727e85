"""The generation timeline (chapter 2.3.4): vectorized, and equal to the sum of single-step analyses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_roofline import InputError, ModelSpec, Workload, analyze, load_hardware, load_model
from llm_roofline.features.studies.timeline import generation_timeline

# A small GQA model keeps each single-step analysis cheap.
TINY = ModelSpec.uniform(name="tiny", family="llama", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                 head_dim=16, intermediate_size=160, vocab_size=500, max_position_embeddings=4096)
DEVICES = [load_hardware(name) for name in ("jetson-orin-nx", "nvidia-a100-80gb-sxm", "raspberry-pi-5")]


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 8), prompt=st.integers(1, 300), steps=st.integers(1, 6), flash=st.booleans(),
       device=st.sampled_from(DEVICES), weights=st.sampled_from(["fp16", "int8", "int4"]))
def test_totals_equal_the_sum_of_single_steps(batch: int, prompt: int, steps: int, flash: bool, device,  # type: ignore[no-untyped-def]
                                              weights: str) -> None:
    workload = Workload(batch=batch, weights=weights, flash_attention=flash)
    timeline = generation_timeline(TINY, device, workload, prompt, steps)
    prefill = analyze(TINY, device, Workload(phase="prefill", batch=batch, seq_len=prompt, weights=weights,
                                             flash_attention=flash))
    # Decode step i (1-based) has prompt + i - 1 tokens cached.
    decode = [analyze(TINY, device, Workload(phase="decode", batch=batch, seq_len=prompt + i - 1, weights=weights,
                                             flash_attention=flash)) for i in range(1, steps + 1)]
    t = timeline.totals
    assert t.ttft_s == pytest.approx(prefill.totals.time_s, rel=1e-12)
    assert t.decode_time_s == pytest.approx(sum(a.totals.time_s for a in decode), rel=1e-12)
    assert t.flops == pytest.approx(prefill.totals.flops + sum(a.totals.flops for a in decode), rel=1e-12)
    assert t.bytes == pytest.approx(prefill.totals.bytes + sum(a.totals.bytes for a in decode), rel=1e-12)
    np.testing.assert_allclose(timeline.step_time_s, [a.totals.time_s for a in decode], rtol=1e-12)
    assert [bool(b) for b in timeline.step_compute_bound] == [a.totals.bound == "compute" for a in decode]
    # FLOPs_total(t) = FLOPs_prefill + sum_{i <= t} FLOPs_decode(i)
    np.testing.assert_allclose(timeline.cumulative_flops,
                               prefill.totals.flops + np.cumsum([a.totals.flops for a in decode]), rtol=1e-12)


def test_headline_figures() -> None:
    timeline = generation_timeline(TINY, DEVICES[0], Workload(batch=2), 10, 4)
    t = timeline.totals
    assert t.new_tokens == 5  # the prefill's token and one per step
    assert t.total_time_s == pytest.approx(t.ttft_s + t.decode_time_s)
    assert t.tokens_per_s == pytest.approx(2 * 5 / t.total_time_s)
    assert t.decode_tokens_per_s == pytest.approx(2 * 4 / t.decode_time_s)
    assert list(timeline.past_len) == [10, 11, 12, 13]
    # KV cache after 10 + 4 tokens: 2 (K, V) x 2 layers x 2 seqs x 14 tokens x 2 heads x 16 x 2 B = 7168 B.
    assert t.final_kv_cache_bytes == 2 * 2 * 2 * 14 * 2 * 16 * 2


def test_arrays_are_read_only() -> None:
    timeline = generation_timeline(TINY, DEVICES[0], Workload(), 4, 3)
    with pytest.raises(ValueError, match="read-only"):
        timeline.step_time_s[0] = 0.0


def test_a_hundred_thousand_steps() -> None:
    timeline = generation_timeline(load_model("llama-2-7b"), DEVICES[1], Workload(), 512, 100_000)
    assert timeline.step_time_s.shape == (100_000,)
    assert timeline.totals.exceeds_context  # 100,512 tokens > Llama-2's 4096
    # The KV cache grows: each step reads more than the one before.
    assert np.all(np.diff(timeline.step_bytes) > 0)


def test_the_step_that_changes_bound() -> None:
    # Batch 64 of int4 Llama-2-7B on the Orin NX: the weight matmuls are compute-bound at first,
    # then the growing KV cache (read per sequence) makes the step memory-bound.
    model, device = load_model("llama-2-7b"), DEVICES[0]
    workload = Workload(batch=64, weights="int4")
    timeline = generation_timeline(model, device, workload, 16, 2000)
    change = next(c for c in timeline.changes if c.name == "step")
    assert (change.from_bound, change.to_bound) == ("compute", "memory")

    def bound(cached: int) -> str:
        return analyze(model, device, Workload(phase="decode", batch=64, weights="int4", seq_len=cached)).totals.bound

    assert bound(change.past_len - 1) == "compute" and bound(change.past_len) == "memory"
    assert change.step == change.past_len - 16 + 1


@pytest.mark.parametrize("chunk", [1, 7, 43])
def test_chunks_change_nothing(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    # The steps are evaluated CHUNK_STEPS at a time; a bound that changes at a chunk's first step (43: step
    # 87 starts the third chunk), or inside one, is found as in one pass over all the steps. DeepSeek-V3's
    # latent attention on the Orin NX: Q·Kᵀ turns compute-bound at step 87, P·V at step 89.
    from llm_roofline.features.studies import timeline as module

    model, device, workload = load_model("deepseek-v3"), DEVICES[0], Workload(batch=16)
    whole = generation_timeline(model, device, workload, 16, 200)
    monkeypatch.setattr(module, "CHUNK_STEPS", chunk)
    chunked = generation_timeline(model, device, workload, 16, 200)
    assert [(c.name, c.step) for c in whole.changes] == [("layer.attn.qk", 87), ("layer.attn.sv", 89)]
    assert chunked.changes == whole.changes
    np.testing.assert_array_equal(chunked.past_len, whole.past_len)
    np.testing.assert_array_equal(chunked.step_compute_bound, whole.step_compute_bound)
    for name in ("step_time_s", "step_flops", "step_bytes"):  # a product's rounding depends on its length
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-14)
    assert chunked.totals.total_time_s == pytest.approx(whole.totals.total_time_s, rel=1e-14)


@pytest.mark.parametrize(("prompt", "steps"), [(0, 5), (-3, 5), (16, 0), (16, -1)])
def test_bad_lengths_are_input_errors(prompt: int, steps: int) -> None:
    with pytest.raises(InputError, match="must be an integer from 1 to"):
        generation_timeline(TINY, DEVICES[0], Workload(), prompt, steps)
