"""Hybrid models: the recurrent state in golden numbers, the step counts of a chunked scan, the flat per-token
cost, and the chapter's studies on layers that do not attend (docs/hybrid-models.md)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from llm_roofline import Workload, analyze, load_hardware, load_model
from llm_roofline.core.memory import max_batch, memory_footprint
from llm_roofline.core.transformer import count_layout, state_bytes, step_counts, step_ops
from llm_roofline.features.studies.context import context_study
from llm_roofline.features.studies.share import flop_split, share_study
from llm_roofline.features.studies.timeline import generation_timeline
from llm_roofline.features.studies.transition import critical_batch
from llm_roofline.inputs.model_files import model_from_hf_config

FP16 = 2  # bytes per element of the default KV-cache (and state) format
ORIN = load_hardware("jetson-orin-nx")

# A pure Mamba-2 stack the size of state-spaces/mamba2-780m (48 layers of d = 1536; 48 heads of 64, state 128,
# 1 group): no attention, no MLP.
MAMBA2 = dict(model_type="mamba2", hidden_size=1536, num_heads=48, head_dim=64, state_size=128, n_groups=1,
              num_hidden_layers=48, vocab_size=50288, conv_kernel=4, chunk_size=256, expand=2)


# --- the recurrent state: per sequence, whatever the context ---------------------------------------------------------

def test_lfm2_keeps_the_last_two_inputs_of_ten_convolutions() -> None:
    model = load_model("lfm2-1.2b")
    # 10 conv layers x (k - 1 = 2) x d = 2048 channels = 40,960 elements; fp16: 81,920 B per sequence
    assert model.state_elements_per_sequence == 40_960
    assert state_bytes(model, 3, Workload().kv_format) == 3 * 81_920
    # the KV cache: only the 6 attending layers, 2 x 8 KV heads x 64 = 1024 elements each per token
    assert model.kv_cache_elements_per_token == 6 * 1024
    assert (model.attention_layers, model.recurrent_layers) == (6, 10)


def test_qwen3_next_state_is_a_matrix_per_value_head() -> None:
    model = load_model("qwen3-next-80b-a3b")
    # 36 Gated DeltaNet layers x (32 value heads x 128 x 128 = 524,288 state
    #                             + 3 x (2 x 16 x 128 + 32 x 128 = 8192) conv inputs = 24,576) = 19,759,104
    assert model.state_elements_per_sequence == 36 * (524_288 + 24_576) == 19_759_104
    assert state_bytes(model, 1, Workload().kv_format) == 19_759_104 * FP16 == 39_518_208
    assert model.kv_cache_elements_per_token == 12 * 2 * 2 * 256  # 12 gated-attention layers, 2 KV heads of 256


def test_falcon_h1_keeps_a_kv_cache_and_a_state_in_every_layer() -> None:
    model = load_model("falcon-h1-0.5b")
    # 36 layers x (24 heads x 64 x 128 = 196,608 + 3 x (1536 + 2 x 128 = 1792) = 5,376) = 7,271,424
    assert model.state_elements_per_sequence == 36 * (196_608 + 5_376) == 7_271_424
    assert model.kv_cache_elements_per_token == 36 * 2 * 2 * 64


def test_the_footprint_adds_the_state_to_the_kv_cache() -> None:
    model = load_model("qwen3-next-80b-a3b")
    workload = Workload(batch=4, seq_len=8192, weights="int4")
    footprint = memory_footprint(model, load_hardware("nvidia-h200-sxm"), workload)
    assert footprint.state_bytes == 4 * 39_518_208
    assert footprint.total_bytes == pytest.approx(footprint.weight_bytes + footprint.kv_cache_bytes
                                                  + footprint.state_bytes + footprint.activation_bytes
                                                  + footprint.overhead_bytes, rel=1e-12)
    assert analyze(model, "nvidia-h200-sxm", workload).memory.to_dict()["state_bytes"] == 4 * 39_518_208


def test_max_batch_sees_the_state() -> None:
    # A device whose usable memory is the footprint of 9 sequences less half of one sequence's state: 9 would fit
    # on the KV cache alone, but not with their states; 8 do.
    model, workload = load_model("falcon-h1-0.5b"), Workload(weights="int4", seq_len=4096)
    nine = memory_footprint(model, ORIN, replace(workload, batch=9))
    one_state = nine.state_bytes / 9
    assert one_state == 14_542_848
    device = replace(ORIN, usable_memory_bytes=nine.total_bytes - one_state / 2)
    assert nine.total_bytes - nine.state_bytes < device.available_memory_bytes < nine.total_bytes
    assert max_batch(model, device, workload) == 8


# --- the counts of a step: resumed sequences, recurrent tokens, chunks ------------------------------------------------

def test_step_counts_of_a_chunked_scan() -> None:
    model = load_model("qwen3-next-80b-a3b")
    layout = count_layout(model)
    assert layout.recurrent and layout.chunk_sizes == (64,)  # flash-linear-attention's chunk
    prefill = step_counts(model, 2, 70, 0, False)  # 2 prompts of 70 tokens: ceil(70 / 64) = 2 chunks each
    assert (prefill.resumed, prefill.recurrent_tokens, prefill.chunks(64)) == (0, 0, 4)
    decode = step_counts(model, 3, 1, 1000, False)  # one token each: the recurrent form, from 3 stored states
    assert (decode.resumed, decode.recurrent_tokens, decode.chunks(64)) == (3, 3, 0)
    later_chunk = step_counts(model, 2, 512, 4096, False)  # a prompt's later chunk resumes from the state
    assert (later_chunk.resumed, later_chunk.recurrent_tokens, later_chunk.chunks(64)) == (2, 0, 16)
    assert count_layout(load_model("llama-3.2-1b")).size == 4  # a transformer's counts are unchanged


def test_the_step_counts_of_a_grid_equal_those_of_each_step() -> None:
    import numpy as np

    model = load_model("falcon-h1-0.5b")
    batch, q_len, past = np.array([1, 2, 3, 4]), np.array([1, 129, 256, 1]), np.array([0, 0, 512, 9])
    grid = step_counts(model, batch, q_len, past, False)
    for i in range(4):
        one = step_counts(model, int(batch[i]), int(q_len[i]), int(past[i]), False)
        assert [float(c[i]) for c in grid] == [float(c) for c in one]


# --- golden operators -----------------------------------------------------------------------------------------------

def _op(model_name: str, name: str, **workload: object) -> object:
    ops = step_ops(load_model(model_name), Workload(**workload))  # type: ignore[arg-type]
    (op,) = [op for op in ops if op.name == name]
    return op


def test_lfm2_decode_convolution() -> None:
    op = _op("lfm2-1.2b", "layer.conv.conv")
    # 2048 channels x 3 taps x 2 = 12,288 FLOPs; taps 2048 x 3 x 2 B = 12,288 B; B x read and the output written
    # 2 x 2048 x 2 B = 8192 B; the cache's 2 inputs read and written back: 2 x 2048 x 2 B = 8192 B each way
    assert op.instances == 10  # type: ignore[attr-defined]
    cost = op.cost  # type: ignore[attr-defined]
    assert (cost.flops, cost.weight_bytes, cost.act_read_bytes + cost.act_write_bytes) == (12_288, 12_288, 8192)
    assert (cost.kv_read_bytes, cost.kv_write_bytes) == (8192, 8192)


def test_falcon_h1_decode_scan() -> None:
    cost = _op("falcon-h1-0.5b", "layer.ssm.scan").cost  # type: ignore[attr-defined]
    # 24 heads, P = 64, N = 128, one token, recurrent form:
    #   per head (6 + 2P) + (5PN + N) = 134 + 41,088  ->  24 x 41,222 = 989,328 FLOPs
    #   read x, B, C, dt: (24 x 64 + 2 x 128 + 24) x 2 B = 3632 B; y written 1536 x 2 B = 3072 B
    #   the state read and written: 24 x 64 x 128 x 2 B = 393,216 B each way
    assert cost.flops == 989_328
    assert (cost.act_read_bytes, cost.act_write_bytes) == (3632, 3072)
    assert (cost.kv_read_bytes, cost.kv_write_bytes) == (393_216, 393_216)


def test_qwen3_next_prefill_scan_counts_whole_chunks() -> None:
    cost = _op("qwen3-next-80b-a3b", "layer.linear_attn.scan", phase="prefill", seq_len=100).cost  # type: ignore
    hv, hk, dk, dv, c, tokens, chunks = 32, 16, 128, 128, 64, 100, 2
    # per value head: 100 tokens x (6 dk dv + 9 + 3dk + 3dv) + 2 chunks x (4C^2 dk + 2C^2 dv + C(C-1)(dk + dv)
    # + 3C^2 + 2 dk dv); per key head 7 dk per token (the L2 norms)
    per_head = tokens * (6 * dk * dv + 9 + 3 * dk + 3 * dv) + chunks * (
        4 * c * c * dk + 2 * c * c * dv + c * (c - 1) * (dk + dv) + 3 * c * c + 2 * dk * dv)
    assert cost.flops == hv * per_head + hk * tokens * 7 * dk
    assert cost.kv_read_bytes == 0 and cost.kv_write_bytes == hv * dk * dv * FP16  # nothing to resume


# --- the flat per-token cost --------------------------------------------------------------------------------------

def test_a_pure_state_space_decodes_in_the_same_time_at_any_context() -> None:
    model = model_from_hf_config(MAMBA2, name="mamba2-780m-like")
    short, long = (analyze(model, ORIN, Workload(seq_len=n)) for n in (1024, 32768))
    assert short.totals.time_s == long.totals.time_s and short.totals.bytes == long.totals.bytes
    assert short.memory.kv_cache_bytes == long.memory.kv_cache_bytes == 0
    # 48 layers x (48 heads x 64 x 128 + 3 x (3072 + 256)) = 48 x 403,200 = 19,353,600 elements, fp16
    assert short.memory.state_bytes == 19_353_600 * FP16


def test_a_hybrid_grows_only_through_its_attention_layers() -> None:
    model = load_model("lfm2-1.2b")
    short, long = (step_ops(model, Workload(seq_len=n)) for n in (1024, 32768))
    grew = {a.name for a, b in zip(short, long, strict=True) if a.cost != b.cost}
    assert grew == {"layer.attn.qk", "layer.attn.softmax", "layer.attn.sv"}
    assert all(next(o for o in short if o.name == name).instances == 6 for name in grew)


def test_context_study_growth() -> None:
    models = [load_model("llama-3.2-1b"), load_model("lfm2-1.2b"), model_from_hf_config(MAMBA2, name="mamba2")]
    curves = context_study(models, [ORIN], Workload(flash_attention=True, weights="q4_k_m"), (1024, 32768))
    llama, lfm2, mamba = curves
    assert mamba.growth == 1.0
    assert 1.0 < lfm2.growth < llama.growth
    assert lfm2.points[0].state_bytes == lfm2.points[1].state_bytes == 81_920
    assert llama.points[1].kv_cache_bytes == pytest.approx(32 * llama.points[0].kv_cache_bytes, rel=1e-3)


def test_timeline_of_a_state_space_is_flat() -> None:
    model = model_from_hf_config(MAMBA2, name="mamba2")
    timeline = generation_timeline(model, ORIN, Workload(), 512, 64)
    assert float(timeline.step_time_s.min()) == float(timeline.step_time_s.max())
    assert timeline.totals.state_bytes == 19_353_600 * FP16 and timeline.totals.final_kv_cache_bytes == 0


def test_transition_on_a_hybrid() -> None:
    points = critical_batch(load_model("falcon-h1-0.5b"), ORIN, Workload(seq_len=1024))
    scan = next(p for p in points if p.name == "layer.ssm.scan")
    # one decode step's scan reads and writes 2 bytes of state per ~5 FLOPs whatever the batch: never compute-bound
    assert scan.critical is None and scan.intensity_at_max == pytest.approx(scan.intensity_at_1, rel=0.05)



@pytest.mark.parametrize(("name", "device", "batch"), [
    ("falcon-h1-0.5b", "jetson-orin-nx", 1), ("falcon-h1-0.5b", "qualcomm-snapdragon-8-elite-gpu", 3),
    ("falcon-h1-0.5b", "nvidia-a100-80gb-sxm", 3), ("qwen3-next-80b-a3b", "jetson-orin-nx", 3),
    ("qwen3-next-80b-a3b", "qualcomm-snapdragon-8-elite-gpu", 3)])
def test_prefill_transition_of_a_chunked_scan_is_the_first_compute_bound_length(name: str, device: str,
                                                                                 batch: int) -> None:
    """A chunked scan prices ceil(L / C) chunks: the margin F - ridge x B is a staircase in L, not the smooth
    curve positive_ranges' bisection is exact for. The study evaluates every length; here each operator's
    critical length and the whole step's are checked one length at a time through the scalar path:
    compute-bound there, and at no shorter prompt."""
    from llm_roofline.features.studies.transition import WHOLE_STEP, critical_prompt_len

    model, hardware = load_model(name), load_hardware(device)
    prefill = Workload(phase="prefill", batch=batch)
    points = critical_prompt_len(model, hardware, prefill)
    checked = [p for p in points if p.critical is not None and p.critical <= 1200]
    assert any(p.name == WHOLE_STEP for p in checked) and any(".scan" in p.name for p in points)
    by_length = {n: step_ops(model, prefill, q_len=n, past_len=0) for n in range(1, 1201)}

    def margin(point: object, n: int) -> float:
        ops = by_length[n]
        if point.name == WHOLE_STEP:  # type: ignore[attr-defined]
            flops, moved = sum(o.cost.flops * o.instances for o in ops), sum(o.cost.bytes * o.instances for o in ops)
        else:
            op = next(o for o in ops if o.name == point.name)  # type: ignore[attr-defined]
            flops, moved = op.cost.flops, op.cost.bytes
        return flops - point.ridge_flop_per_byte * moved  # type: ignore[attr-defined]

    for point in checked:
        assert margin(point, point.critical) >= 0, point.name
        assert all(margin(point, n) < 0 for n in range(1, point.critical)), point.name
    for point in points:
        if point.critical is None or point.critical > 1200:
            assert all(margin(point, n) < 0 for n in range(1, 1201)), point.name


# --- the attention share counts only the layers that attend -----------------------------------------------------

def test_share_counts_only_attending_layers() -> None:
    model = load_model("lfm2-1.2b")
    workload = Workload(phase="prefill", seq_len=4096)
    split = flop_split(model, workload)
    ops = step_ops(model, workload)
    assert split.attention_flops == sum(o.cost.flops * o.instances for o in ops if o.group == "attention")
    assert split.mixer_flops == sum(o.cost.flops * o.instances for o in ops if o.name.startswith("layer.conv."))
    assert split.share == split.attention_flops / (split.attention_flops + split.ffn_flops)
    study = share_study(model, workload, [4096])
    # the idealized stack attends in 6 of 16 layers: share = f r / (1 + f r), r = 1/2 + L / (4d) = 1, f = 3/8
    assert study.rows[0].idealized_share == pytest.approx(0.375 / 1.375)
    assert (study.attending_layers, study.layers) == (6, 16)


def test_share_of_a_stack_that_never_attends() -> None:
    study = share_study(model_from_hf_config(MAMBA2, name="mamba2"), Workload(phase="prefill"), [1024, 8192])
    assert [r.share for r in study.rows] == [0.0, 0.0]
    assert study.crossover_seq_len is None and study.idealized_crossover_seq_len is None
    assert any("no layer" in w for w in study.warnings)


def test_context_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from llm_roofline.faces.report.plots import context_figure, save_figure

    curves = context_study([load_model("llama-3.2-1b"), load_model("lfm2-1.2b")], [ORIN], Workload(),
                           (1024, 4096, 16384))
    fig = context_figure(curves, Workload())
    gids = {artist.get_gid() for artist in fig.findobj() if artist.get_gid()}
    assert {"decode-time:lfm2-1.2b:jetson-orin-nx", "held:llama-3.2-1b:jetson-orin-nx",
            "capacity:jetson-orin-nx"} <= gids
    assert save_figure(fig, tmp_path / "context.svg").read_bytes().startswith(b"<?xml")
    assert math.isfinite(curves[0].growth)
