"""Hybrid models (LFM2, Qwen3-Next, Mamba-2, Falcon-H1) against transformers: parameters exactly, and the
matmul and convolution FLOPs of prefill and decode against FlopCounterMode on tiny random-weight models.

transformers runs these layers' torch paths here (no kernels are installed): the short convolutions are
``F.conv1d`` (FlopCounterMode counts 2 x MAC per output, without the bias), the chunked scans are
matmuls and einsums (counted as bmm), Gated DeltaNet's one-token step is elementwise (not counted) and
Mamba-2's one-token step one bmm. Where that path does other work than the kernels we count
(``ops.py``, convention 8), the difference is derived below from the modeling code:

- the prefill convolution pads k - 1 zeros and computes L + k - 1 outputs of which it keeps L; the
  decode convolution keeps k inputs in its cache (we count k - 1) and computes 2 outputs, keeping 1;
- the chunked scans pad the last chunk to C tokens, and their per-token products run on the padding;
- Mamba-2's torch scan forms C B^T for every head (the kernels once per group) and passes the state
  between chunks as a dense (chunks + 1)^2 matrix product (the kernels as a sequential scan, which we count
  as 2PN elementwise FLOPs per chunk);
- Gated DeltaNet's triangular solves (``torch.linalg.solve_triangular``) are not in FlopCounterMode's
  registry; we count them (C(C-1) per right-hand column).

Our scan operators (kind ``scan``) hold those contractions plus the elementwise work fused into the kernel;
their full count is checked separately against the derivation of ``ops.gated_delta_rule`` and
``ops.ssd_scan``'s docstrings.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from conftest import require_module
from llm_roofline import analyze, custom_hardware
from llm_roofline.inputs.model_files import model_from_hf_config

ref = require_module("hf_reference")  # PyTorch and transformers

DEVICE = custom_hardware(1e12, {"fp32": 1e12})

HYBRID_CONFIGS: dict[str, dict[str, Any]] = {
    # Layers 0 and 2 short convolutions (3 taps), layer 1 GQA attention with per-head q/k norms; the MLP's
    # width: 2/3 of 96 = 64, rounded up to a multiple of 16.
    "lfm2": dict(model_type="lfm2", hidden_size=64, block_ff_dim=96, block_multiple_of=16, num_hidden_layers=3,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=128, max_position_embeddings=256,
                 full_attn_idxs=[1], conv_L_cache=3),
    # The convolution's bias on (in_proj, conv, out_proj), layer_types spelled out, untied embeddings.
    "lfm2-bias": dict(model_type="lfm2", hidden_size=48, intermediate_size=64, block_auto_adjust_ff_dim=False,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, vocab_size=100,
                      max_position_embeddings=256, layer_types=["conv", "full_attention"], conv_L_cache=4,
                      conv_bias=True, tie_word_embeddings=False),
    # Three Gated DeltaNet layers (2 key heads of 8, 4 value heads of 12, 4 taps), then gated attention with a
    # quarter of each head rotated; layer 0 dense, the others 4 experts top-2 of 32 plus a gated shared expert.
    "qwen3-next": dict(model_type="qwen3_next", hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                       shared_expert_intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16, linear_num_key_heads=2, linear_num_value_heads=4,
                       linear_key_head_dim=8, linear_value_head_dim=12, linear_conv_kernel_dim=4, num_experts=4,
                       num_experts_per_tok=2, mlp_only_layers=[0], vocab_size=128, max_position_embeddings=256),
    # A pure state-space stack: 8 heads of 8, state 16, 2 groups, chunks of 8, no MLP, no attention.
    "mamba2": dict(model_type="mamba2", hidden_size=32, num_heads=8, head_dim=8, state_size=16, n_groups=2,
                   num_hidden_layers=2, vocab_size=128, conv_kernel=4, chunk_size=8, expand=2),
    # Mamba-2 (6 heads of 8, 2 groups, state 16, chunks of 8) beside GQA attention in every layer, then an MLP.
    "falcon-h1": dict(model_type="falcon_h1", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, mamba_d_ssm=48, mamba_n_heads=6,
                      mamba_d_head=8, mamba_n_groups=2, mamba_d_state=16, mamba_d_conv=4, mamba_chunk_size=8,
                      vocab_size=128, max_position_embeddings=256),
    # The same with the gated RMSNorm on the mixer's output and biased projections.
    "falcon-h1-norm": dict(model_type="falcon_h1", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16, mamba_d_ssm=48,
                           mamba_n_heads=6, mamba_d_head=8, mamba_n_groups=2, mamba_d_state=16, mamba_d_conv=4,
                           mamba_chunk_size=8, mamba_rms_norm=True, mamba_proj_bias=True, projectors_bias=True,
                           vocab_size=128, max_position_embeddings=256),
}


# --- the layers of each tiny config, read from it by hand -----------------------------------------------------

def _conv_layers(config: dict[str, Any]) -> list[tuple[int, int, bool]]:
    """(channels, taps, bias) of each recurrent layer's convolution."""
    family, d = config["model_type"], config["hidden_size"]
    if family == "lfm2":
        types = config.get("layer_types") or ["full_attention" if i in config["full_attn_idxs"] else "conv"
                                              for i in range(config["num_hidden_layers"])]
        return [(d, config["conv_L_cache"], config.get("conv_bias", False)) for t in types if t == "conv"]
    if family == "qwen3_next":
        channels = (2 * config["linear_num_key_heads"] * config["linear_key_head_dim"]
                    + config["linear_num_value_heads"] * config["linear_value_head_dim"])
        linear = sum(1 for i in range(config["num_hidden_layers"]) if (i + 1) % 4)  # full_attention_interval 4
        return [(channels, config["linear_conv_kernel_dim"], False)] * linear
    heads, head_dim, groups, state = _ssm_shape(config)
    taps = config.get("conv_kernel") or config["mamba_d_conv"]
    bias = config.get("use_conv_bias", config.get("mamba_conv_bias", True))
    return [(heads * head_dim + 2 * groups * state, taps, bias)] * config["num_hidden_layers"]


def _ssm_shape(config: dict[str, Any]) -> tuple[int, int, int, int]:
    """(heads H, head width P, groups G, state N) of a Mamba-2 mixer."""
    if config["model_type"] == "mamba2":
        return config["num_heads"], config["head_dim"], config["n_groups"], config["state_size"]
    return config["mamba_n_heads"], config["mamba_d_head"], config["mamba_n_groups"], config["mamba_d_state"]


def _scan_layers(config: dict[str, Any]) -> int:
    family = config["model_type"]
    if family == "qwen3_next":
        return sum(1 for i in range(config["num_hidden_layers"]) if (i + 1) % 4)
    return config["num_hidden_layers"] if family in ("mamba2", "falcon_h1") else 0


def _chunk(config: dict[str, Any]) -> int:
    """The scan's chunk: transformers' torch_chunk_gated_delta_rule's 64, or Mamba-2's chunk_size."""
    if config["model_type"] == "qwen3_next":
        return 64
    return config.get("chunk_size") or config["mamba_chunk_size"]


# --- what transformers' torch path multiplies (FlopCounterMode's view), derived from its modeling code ------

def torch_conv_flops(config: dict[str, Any], batch: int, q_len: int, decode: bool) -> int:
    """F.conv1d over C channels of k taps: 2k FLOPs per output, counted on every output it computes: L + k - 1
    in prefill (padding=k-1, the extra outputs sliced off), 2 in decode (the cache holds k inputs, so k + 1 in,
    k + 1 - k + 1 = 2 out, the last kept)."""
    return sum(2 * batch * c * k * (2 if decode else q_len + k - 1) for c, k, _ in _conv_layers(config))


def ours_conv_flops(config: dict[str, Any], tokens: int) -> int:
    """Our convolution: 2k per output of the step's tokens, + 1 for a bias (which torch's count leaves out)."""
    return sum(tokens * c * (2 * k + bias) for c, k, bias in _conv_layers(config))


def torch_scan_flops(config: dict[str, Any], batch: int, q_len: int, decode: bool) -> int:
    """The matmuls and einsums of one step's scans in transformers' torch path, per scan layer x layers."""
    if not _scan_layers(config):
        return 0
    family, c = config["model_type"], _chunk(config)
    chunks = math.ceil(q_len / c)  # per sequence, the last one padded to C
    if family == "qwen3_next":
        if decode:
            return 0  # torch_recurrent_gated_delta_rule: elementwise products and sums only
        hv, dk, dv = config["linear_num_value_heads"], config["linear_key_head_dim"], config["linear_value_head_dim"]
        # per value head and chunk: k_beta k^T and q k^T (2 x 2C^2 dk), then in the loop k_cumdecay S, q S and
        # k^T v_new (3 x 2C dk dv) and the intra-chunk scores times v_new (2C^2 dv)
        per_chunk = 4 * c * c * dk + 6 * c * dk * dv + 2 * c * c * dv
        return _scan_layers(config) * batch * hv * chunks * per_chunk
    heads, p, _, n = _ssm_shape(config)
    if decode:
        return _scan_layers(config) * batch * heads * 2 * p * n  # mamba2_selective_state_update: bmm(h, C)
    # mamba2_chunk_scan's einsums, per sequence: C B^T per head 2 c C^2 N H; the masked scores times x
    # 2 c C^2 P H; the chunk states 2 c C P N H; the state passing, a dense (c+1) x (c+1) product over
    # P N H: 2 (c+1)^2 P N H; C times the carried states 2 c C P N H
    per_sequence = (2 * chunks * c * c * n * heads + 2 * chunks * c * c * p * heads + 4 * chunks * c * p * n * heads
                    + 2 * (chunks + 1) ** 2 * p * n * heads)
    return _scan_layers(config) * batch * per_sequence


def ours_scan_flops(config: dict[str, Any], batch: int, q_len: int, decode: bool) -> int:
    """Our scan operators over a step (ops.py, convention 8): contractions on the step's tokens and whole C x C
    chunks, plus the elementwise work the kernels fuse, per the derivations in ops.gated_delta_rule and
    ops.ssd_scan."""
    if not _scan_layers(config):
        return 0
    family, c = config["model_type"], _chunk(config)
    tokens = batch * q_len
    chunks = 0 if decode else batch * math.ceil(q_len / c)
    recurrent = tokens if decode else 0
    chunked = tokens - recurrent
    if family == "qwen3_next":
        hk, hv = config["linear_num_key_heads"], config["linear_num_value_heads"]
        dk, dv = config["linear_key_head_dim"], config["linear_value_head_dim"]
        per_value_head = (tokens * (6 * dk * dv + 9) + recurrent * (dk * dv + 2 * dv) + chunked * (3 * dk + 3 * dv)
                          + chunks * (4 * c * c * dk + 2 * c * c * dv + c * (c - 1) * (dk + dv) + 3 * c * c
                                      + 2 * dk * dv))
        return _scan_layers(config) * (hv * per_value_head + hk * tokens * 7 * dk)
    heads, p, groups, n = _ssm_shape(config)
    per_head = (tokens * (6 + 2 * p) + recurrent * (5 * p * n + n) + chunked * (4 * p * n + n + 3 * p)
                + chunks * (2 * c * c * p + 3 * c * c + 2 * p * n))
    return _scan_layers(config) * (heads * per_head + groups * chunks * 2 * c * c * n)


def ours_scan_contractions(config: dict[str, Any], batch: int, q_len: int, decode: bool) -> int:
    """The matrix-product part of ``ours_scan_flops`` as transformers' torch path runs it: ours, plus the padding
    rows, plus (Mamba-2) C B^T per head and the dense state passing, less (DeltaNet) the triangular solves."""
    if not _scan_layers(config):
        return 0
    family, c = config["model_type"], _chunk(config)
    chunks = math.ceil(q_len / c)
    padding = batch * (chunks * c - q_len)  # the rows the last chunk of each sequence is padded with
    if family == "qwen3_next":
        if decode:
            return 0
        hv, dk, dv = config["linear_num_value_heads"], config["linear_key_head_dim"], config["linear_value_head_dim"]
        tokens, blocks = batch * q_len, batch * chunks
        ours = hv * (6 * dk * dv * tokens + blocks * (4 * c * c * dk + 2 * c * c * dv))
        return _scan_layers(config) * (ours + hv * 6 * dk * dv * padding)
    heads, p, groups, n = _ssm_shape(config)
    if decode:
        return _scan_layers(config) * batch * heads * 2 * p * n
    tokens, blocks = batch * q_len, batch * chunks
    ours = heads * (4 * p * n * tokens + blocks * 2 * c * c * p) + groups * blocks * 2 * c * c * n
    per_head_cb = (heads - groups) * blocks * 2 * c * c * n
    dense_passing = batch * 2 * (chunks + 1) ** 2 * p * n * heads
    return _scan_layers(config) * (ours + heads * 4 * p * n * padding + per_head_cb + dense_passing)


# --- the checks -------------------------------------------------------------------------------------------------

# Full-size shapes the catalogue does not hold (its LFM2, Qwen3-Next and Falcon-H1 entries are checked by
# test_params_vs_transformers.py), counted on the meta device.
FULL_SIZE: dict[str, dict[str, Any]] = {
    # state-spaces/mamba2-2.7b: d_model 2560, 64 layers, headdim 64 (80 heads), d_state 128, 1 group, tied: 2.70 B
    "mamba2-2.7b": dict(model_type="mamba2", hidden_size=2560, num_heads=80, head_dim=64, state_size=128,
                        n_groups=1, num_hidden_layers=64, vocab_size=50288, conv_kernel=4, chunk_size=256, expand=2,
                        tie_word_embeddings=True),
    # LFM2's later spelling: layer_types and intermediate_size, no width adjustment (LFM2-2.6B's shape)
    "lfm2-2.6b": dict(model_type="lfm2", hidden_size=2048, intermediate_size=10752, block_auto_adjust_ff_dim=False,
                      num_hidden_layers=30, num_attention_heads=32, num_key_value_heads=8, vocab_size=65536,
                      max_position_embeddings=128000, conv_L_cache=3,
                      layer_types=["conv", "conv", "full_attention", "conv", "conv", "full_attention", "conv", "conv",
                                   "conv", "full_attention", "conv", "conv", "conv", "full_attention", "conv", "conv",
                                   "conv", "full_attention", "conv", "conv", "conv", "full_attention", "conv", "conv",
                                   "full_attention", "conv", "conv", "full_attention", "conv", "conv"]),
    # Falcon-H1-7B's shape (44 layers of 3072, 24 Mamba heads of 128, state 256), the gated norm on
    "falcon-h1-7b": dict(model_type="falcon_h1", hidden_size=3072, num_hidden_layers=44, num_attention_heads=12,
                         num_key_value_heads=2, head_dim=128, intermediate_size=12288, vocab_size=130048,
                         mamba_d_state=256, mamba_n_groups=1, mamba_n_heads=24, mamba_d_head=128, mamba_d_ssm=3072,
                         mamba_d_conv=4, mamba_chunk_size=128, mamba_rms_norm=True, max_position_embeddings=262144),
}


@pytest.mark.parametrize("name", sorted(HYBRID_CONFIGS))
def test_tiny_config_params_equal_transformers(name: str) -> None:
    assert model_from_hf_config(HYBRID_CONFIGS[name]).params == ref.param_count(HYBRID_CONFIGS[name])


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_params_equal_transformers(name: str) -> None:
    assert model_from_hf_config(FULL_SIZE[name]).params == ref.param_count(FULL_SIZE[name])


def _flops_by_kind(config: dict[str, Any], **workload: Any) -> dict[str, float]:
    result = analyze(model_from_hf_config(config), DEVICE, activations="fp32", **workload)
    sums: dict[str, float] = {}
    for op in result.ops:
        sums[op.kind] = sums.get(op.kind, 0) + op.flops * op.count
    return sums


def _bias_flops(config: dict[str, Any], tokens: int) -> int:
    """Bias adds of biased projections (torch's addmm count leaves them out): LFM2's conv_bias on in_proj (3d)
    and out_proj (d); Falcon-H1's mamba_proj_bias on in_proj and projectors_bias on the mixer's out_proj."""
    family, d = config["model_type"], config["hidden_size"]
    if family == "lfm2" and config.get("conv_bias"):
        return tokens * (3 * d + d) * len(_conv_layers(config))
    if family == "falcon_h1":
        heads, p, groups, n = _ssm_shape(config)
        projected = 2 * heads * p + 2 * groups * n + heads
        return tokens * config["num_hidden_layers"] * (config.get("mamba_proj_bias", False) * projected
                                                       + config.get("projectors_bias", False) * d)
    return 0


@pytest.fixture(scope="module", params=sorted(HYBRID_CONFIGS))
def family(request: pytest.FixtureRequest) -> tuple[dict[str, Any], Any]:
    config = HYBRID_CONFIGS[request.param]
    return config, ref.build(config)


@pytest.mark.parametrize(("batch", "prompt_len"), [(1, 7), (2, 11), (2, 70)])
def test_prefill_flops_equal_torch(family: tuple[dict[str, Any], Any], batch: int, prompt_len: int) -> None:
    config, model = family
    torch_flops = ref.prefill_flops(model, batch, prompt_len, last_token_only=True)
    ours = _flops_by_kind(config, phase="prefill", batch=batch, seq_len=prompt_len)
    tokens = batch * prompt_len
    conv_torch = torch_conv_flops(config, batch, prompt_len, decode=False)
    assert ours.get("conv", 0) == ours_conv_flops(config, tokens)
    assert ours["matmul"] - _bias_flops(config, tokens) + conv_torch + ours_scan_contractions(
        config, batch, prompt_len, decode=False) == torch_flops
    assert ours_scan_contractions(config, batch, prompt_len, decode=False) == torch_scan_flops(
        config, batch, prompt_len, decode=False)
    assert ours.get("scan", 0) == ours_scan_flops(config, batch, prompt_len, decode=False)


def _decode_step_flops(model: Any, batch: int, cached: int) -> int:
    """FlopCounterMode over one decode step after a prefill of ``cached`` tokens filled the model's own cache
    (hf_reference's, without its attention-length check: a Mamba-2 cache has no attention layer)."""
    import torch
    import transformers

    cache = transformers.DynamicCache(config=model.config)
    key = "cache_params" if model.config.model_type == "mamba2" else "past_key_values"  # Mamba2's own name
    with torch.no_grad():
        model(input_ids=torch.randint(0, model.config.vocab_size, (batch, cached)), use_cache=True, **{key: cache})
        new = torch.randint(0, model.config.vocab_size, (batch, 1))
        return int(ref._count(lambda: model(input_ids=new, use_cache=True, **{key: cache})))


@pytest.mark.parametrize(("batch", "cached"), [(1, 9), (2, 70)])
def test_decode_step_flops_equal_torch(family: tuple[dict[str, Any], Any], batch: int, cached: int) -> None:
    config, model = family
    torch_flops = _decode_step_flops(model, batch, cached)
    ours = _flops_by_kind(config, phase="decode", batch=batch, seq_len=cached)
    conv_torch = torch_conv_flops(config, batch, 1, decode=True)
    assert ours.get("conv", 0) == ours_conv_flops(config, batch)
    assert ours["matmul"] - _bias_flops(config, batch) + conv_torch + ours_scan_contractions(
        config, batch, 1, decode=True) == torch_flops
    assert ours_scan_contractions(config, batch, 1, decode=True) == torch_scan_flops(config, batch, 1, decode=True)
    assert ours.get("scan", 0) == ours_scan_flops(config, batch, 1, decode=True)
