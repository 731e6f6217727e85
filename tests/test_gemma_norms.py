"""Gemma-2 and Gemma-3: the norms their layers add, and their interleaved sliding windows."""

from __future__ import annotations

from llm_roofline import analyze, load_model


def test_gemma2_normalizes_each_sublayer_output() -> None:
    ops = {op.name: op for op in analyze("gemma-2-2b", "nvidia-rtx-4090", phase="prefill", seq_len=10).ops}
    post = ops["layer.attn_post_norm"]
    # RMSNorm: 4 FLOPs per element over 10 tokens x 2304 channels = 92,160
    assert (post.count, post.flops) == (26, 4 * 10 * 2304)
    assert ops["layer.mlp_post_norm"].flops == post.flops
    assert "layer.attn.q_norm" not in ops


def test_gemma3_normalizes_queries_and_keys_per_head() -> None:
    ops = {op.name: op for op in analyze("gemma-3-1b", "nvidia-rtx-4090", phase="prefill", seq_len=10).ops}
    # 10 tokens x 4 query heads x 256 = 10,240 elements x 4 FLOPs; 1 KV head: a quarter of that
    assert ops["layer.attn.q_norm"].flops == 4 * 10 * 4 * 256
    assert ops["layer.attn.k_norm"].flops == 4 * 10 * 1 * 256
    assert ops["layer.attn.q_norm"].weight_bytes == 256 * 2  # one head_dim-wide weight, fp16


def test_interleaved_windows() -> None:
    gemma2, gemma3 = load_model("gemma-2-9b"), load_model("gemma-3-1b")
    assert (gemma2.sliding_window, gemma2.windowed_layers) == (4096, 21)  # 42 layers, every other one
    assert (gemma3.sliding_window, gemma3.windowed_layers) == (512, 22)  # 26 layers, 5 of every 6
    ops = {op.name: op for op in analyze(gemma3, "nvidia-rtx-4090", seq_len=4000).ops}
    assert ops["layer.attn.window.qk"].count == 22 and ops["layer.attn.qk"].count == 4
    # A windowed layer's decode step reads the last 512 keys; a global layer all 4001.
    assert ops["layer.attn.window.qk"].kv_read_bytes == 512 * 256 * 2
    assert ops["layer.attn.qk"].kv_read_bytes == 4001 * 256 * 2
