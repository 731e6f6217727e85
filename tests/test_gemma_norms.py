"""Gemma-2 and Gemma-3: the norms their layers add, their interleaved sliding windows, Gemma-2's soft-capping."""

from __future__ import annotations

import json

import pytest

from llm_roofline import analyze, load_model
from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli.main import main
from llm_roofline.inputs.model_files import model_from_hf_config


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


def test_gemma2_soft_caps_scores_and_logits() -> None:
    model = load_model("gemma-2-2b")
    assert (model.attn_logit_softcapping, model.final_logit_softcapping) == (50.0, 30.0)
    assert load_model("gemma-3-1b").attn_logit_softcapping is None  # its config sets no cap
    ops = {op.name: op for op in analyze(model, "nvidia-rtx-4090", phase="prefill", seq_len=10, batch=2).ops}
    # eager attention, no causal skipping: 2 x 10 x 10 scores per head, 8 heads; 3 FLOPs each, read + written
    cap = ops["layer.attn.softcap"]
    assert (cap.kind, cap.count, cap.flops) == ("elementwise", 13, 3 * 8 * 2 * 10 * 10)
    assert cap.act_read_bytes == cap.act_write_bytes == 8 * 200 * 2
    assert ops["layer.attn.window.softcap"].flops == cap.flops  # the window (4096) holds all 10 keys
    names = [op.name for op in analyze(model, "nvidia-rtx-4090", phase="prefill", seq_len=10).ops]
    assert names.index("layer.attn.qk") < names.index("layer.attn.softcap") < names.index("layer.attn.softmax")
    final = ops["final_softcap"]  # the last token's logits of each sequence: 2 x 256,000
    assert (final.group, final.flops, final.act_read_bytes) == ("lm_head", 3 * 2 * 256_000, 2 * 256_000 * 2)
    # FlashAttention caps on chip: the FLOPs join the fused kernel, no bytes
    plain = analyze("gemma-2-2b", "nvidia-rtx-4090", phase="prefill", seq_len=10, flash_attention=True)
    flash = {op.name: op for op in plain.ops}["layer.attn.flash"]
    uncapped = analyze(model_from_hf_config({**_gemma2_config(), "attn_logit_softcapping": None}),
                       "nvidia-rtx-4090", phase="prefill", seq_len=10, flash_attention=True)
    other = {op.name: op for op in uncapped.ops}["layer.attn.flash"]
    assert flash.flops - other.flops == 3 * 8 * 55  # causal skipping: 55 scores per head
    assert flash.bytes == other.bytes
    assert "layer.attn.softcap" not in {op.name for op in plain.ops}


def _gemma2_config() -> dict[str, object]:
    from importlib import resources

    return json.loads(resources.files("llm_roofline").joinpath("data/models/gemma-2-2b.json").read_text())


@pytest.mark.parametrize("value", [0, -1, "50", True])
def test_a_bad_softcap_is_refused(value: object) -> None:
    with pytest.raises(InputError, match="attn_logit_softcapping"):
        model_from_hf_config({**_gemma2_config(), "attn_logit_softcapping": value})


def test_model_json_names_the_caps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "-m", "gemma-2-2b", "-f", "json"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert (model["attn_logit_softcapping"], model["final_logit_softcapping"]) == (50.0, 30.0)
