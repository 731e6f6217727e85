"""Model files: a Hugging Face ``config.json`` (a file, or a folder holding one) through one small adapter
per family, a GGUF file (``gguf.py``), or the built-in catalogue under ``data/models/`` (the same JSON
form, plus ``_source`` and ``_display_name``), each read into a ``ModelSpec``."""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from llm_roofline.core import architecture as arch
from llm_roofline.core import limits
from llm_roofline.core.architecture import MLP, Attention, Block, LinearAttention, ShortConv, StateSpace
from llm_roofline.core.errors import InputError, shown
from llm_roofline.core.formats import WeightScheme, get_format
from llm_roofline.core.limits import MODEL, Limit
from llm_roofline.core.models import ModelSpec
from llm_roofline.inputs.printable import printable
from llm_roofline.inputs.reading import parse_json, path_kind, read_text

_HF_ACTIVATIONS = {
    "silu": "silu", "swish": "silu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
    "relu": "relu",
}
# The range of each count a config.json sets: the entry of ``limits.MODEL`` for what the key describes.
CONFIG_LIMITS: dict[str, str] = {
    **dict.fromkeys(("num_hidden_layers", "n_layer"), "layers"),
    **dict.fromkeys(("hidden_size", "n_embd"), "hidden_size"),
    **dict.fromkeys(("num_attention_heads", "n_head", "num_heads", "linear_num_key_heads", "linear_num_value_heads",
                     "mamba_n_heads", "n_groups", "mamba_n_groups"), "heads"),
    "num_key_value_heads": "kv_heads",
    **dict.fromkeys(("head_dim", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "linear_key_head_dim",
                     "linear_value_head_dim", "mamba_d_head", "state_size", "mamba_d_state"), "head_dim"),
    **dict.fromkeys(("q_lora_rank", "kv_lora_rank"), "lora_rank"),
    **dict.fromkeys(("intermediate_size", "ffn_dim", "n_inner", "moe_intermediate_size", "intermediate_size_mlp",
                     "shared_expert_intermediate_size", "block_ff_dim", "block_multiple_of", "mamba_d_ssm"),
                    "intermediate_size"),
    **dict.fromkeys(("num_local_experts", "num_experts", "n_routed_experts", "n_shared_experts"), "experts"),
    "num_experts_per_tok": "experts_per_token",
    "vocab_size": "vocab_size",
    **dict.fromkeys(("max_position_embeddings", "n_positions"), "max_position_embeddings"),
    **dict.fromkeys(("sliding_window", "attention_chunk_size", "chunk_size", "mamba_chunk_size"), "window"),
    **dict.fromkeys(("no_rope_layer_interval", "decoder_sparse_step", "interleave_moe_layer_step",
                     "sliding_window_pattern", "max_window_layers", "first_k_dense_replace",
                     "num_nextn_predict_layers", "full_attention_interval"), "layer_count"),
    **dict.fromkeys(("attn_logit_softcapping", "final_logit_softcapping"), "softcap"),
    **dict.fromkeys(("conv_L_cache", "linear_conv_kernel_dim", "conv_kernel", "mamba_d_conv"), "conv_kernel"),
}
# LFM2's block_ffn_dim_multiplier scales its MLP's width before rounding (1.0 in every release).
FFN_MULTIPLIER = Limit(1e-3, 1e3, False, "", "LFM2's block_ffn_dim_multiplier: 1.0 in every release")


def config_limit(key: str) -> Limit:
    """The range of a config.json key's value."""
    return MODEL[CONFIG_LIMITS[key]]


class _Config:
    """Typed access to a config dict, with errors that name the file and the key; every count is checked
    against its range in ``limits.MODEL``."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def int(self, *keys: str, default: int | None = None) -> int:
        """The first of ``keys`` the config sets, an integer > 0 in its range (``default`` when none is set;
        no default: the first key is required)."""
        for key in keys:
            value = self.data.get(key)
            if value is not None:
                limit = config_limit(key)
                return limits.count(f"'{key}'", value, limit._replace(low=max(limit.low, 1)), f"{self.where}: ")
        if default is None:
            raise InputError(f"{self.where}: missing required key '{keys[0]}'")
        return default

    def optional_int(self, key: str) -> builtins.int | None:
        return None if self.data.get(key) is None else self.int(key)

    def count(self, key: str, default: builtins.int) -> builtins.int:
        """An integer >= 0 in its range (a number of layers or experts that may be none)."""
        value = self.data.get(key, default)
        return default if value is None else limits.count(f"'{key}'", value, config_limit(key)._replace(low=0),
                                                   f"{self.where}: ")

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        return default if value is None else limits.figure(f"'{key}'", value, config_limit(key), f"{self.where}: ")

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InputError(f"{self.where}: '{key}' must be true or false, got {shown(value)}")
        return value

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise InputError(f"{self.where}: '{key}' must be a string, got {shown(value)}")
        return printable(value)  # a label: shown by the page and the reports, so escaped where it is read

    def activation(self, *keys: str, default: str) -> str:
        for key in keys:
            value = self.data.get(key)
            if value is not None:
                if not isinstance(value, str) or value not in _HF_ACTIVATIONS:
                    raise InputError(f"{self.where}: unsupported activation {shown(value)} in '{key}'; "
                                     f"supported: {', '.join(_HF_ACTIVATIONS)}")
                return _HF_ACTIVATIONS[value]
        return default

    def per_layer(self, key: str, layers: builtins.int) -> list[Any] | None:
        """A list with one entry per layer, or None when the key is absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != layers:
            raise InputError(f"{self.where}: '{key}' must list one entry per layer ({layers})")
        return value

    def layer_flags(self, key: str, layers: builtins.int) -> list[builtins.bool] | None:
        """One 0/1 (or false/true) per layer, or None when the key is absent."""
        flags = self.per_layer(key, layers)
        if flags is not None and not all(flag in (0, 1) and isinstance(flag, (bool, builtins.int)) for flag in flags):
            raise InputError(f"{self.where}: '{key}' must hold 0 or 1 for each layer")
        return None if flags is None else [bool(flag) for flag in flags]

    def layer_indices(self, key: str, layers: builtins.int) -> set[builtins.int] | None:
        """Indices of layers (each from 0 to layers - 1), or None when the key is absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(i, builtins.int) and not isinstance(i, builtins.bool)
                                                  and 0 <= i < layers for i in value):
            raise InputError(f"{self.where}: '{key}' must be a list of layer indices, each from 0 to {layers - 1}")
        return set(value)

    def rope_fraction(self, default: float = 1.0) -> float:
        """partial_rotary_factor (top level, or inside rope_parameters / rope_scaling); ``default`` when unset."""
        for holder in (self.data, self.data.get("rope_parameters"), self.data.get("rope_scaling")):
            if isinstance(holder, dict) and holder.get("partial_rotary_factor") is not None:
                value = holder["partial_rotary_factor"]
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
                    raise InputError(f"{self.where}: 'partial_rotary_factor' must be between 0 and 1, got "
                                     f"{shown(value)}")
                return float(value)
        return default


def _attention(cfg: _Config, *, qkv_bias: bool | None = None, out_bias: bool | None = None,
               **more: Any) -> Attention:
    """The usual attention keys: heads, KV heads (GQA), head_dim, attention_bias."""
    hidden = cfg.int("hidden_size")
    heads = cfg.int("num_attention_heads")
    bias = cfg.bool("attention_bias", False)
    return Attention(
        heads=heads,
        kv_heads=cfg.int("num_key_value_heads", default=heads),
        head_dim=cfg.int("head_dim", default=hidden // heads if hidden % heads == 0 else None),
        qkv_bias=bias if qkv_bias is None else qkv_bias,
        out_bias=bias if out_bias is None else out_bias,
        **more,
    )


def _dense_mlp(cfg: _Config, key: str = "intermediate_size", activation: str = "silu") -> MLP:
    return MLP(intermediate_size=cfg.int(key),
               activation=cfg.activation("hidden_act", default=activation), bias=cfg.bool("mlp_bias", False))


def _layers(cfg: _Config) -> int:
    return cfg.int("num_hidden_layers")


def _spans(cfg: _Config, layers: int, default: Callable[[int], str]) -> list[str]:
    """Each layer's attention type, as transformers names it: ``layer_types`` when the config lists it,
    else ``default(i)`` ("full_attention", "sliding_attention", "chunked_attention")."""
    types = cfg.per_layer("layer_types", layers)
    kinds = [default(i) for i in range(layers)] if types is None else types
    known = ("full_attention", "sliding_attention", "chunked_attention")
    for kind in kinds:
        if kind not in known:
            raise InputError(f"{cfg.where}: unsupported layer type {shown(kind)} in 'layer_types'; "
                             f"supported: {', '.join(known)}")
    return kinds


def _with_span(cfg: _Config, attention: Attention, kind: str) -> Attention:
    """The attention of a layer of type ``kind`` (a window or chunk only where the config sets its size)."""
    if kind == "sliding_attention" and cfg.data.get("sliding_window") is not None:
        return replace(attention, window=cfg.int("sliding_window"))
    if kind == "chunked_attention" and cfg.data.get("attention_chunk_size") is not None:
        return replace(attention, chunk=cfg.int("attention_chunk_size"))
    return attention


def _rope_layers(cfg: _Config, layers: int) -> list[bool]:
    """SmolLM3 / Llama 4: ``no_rope_layers[i]`` is 1 where layer i uses RoPE (default: every 4th layer skips it)."""
    flags = cfg.layer_flags("no_rope_layers", layers)
    if flags is None:
        interval = cfg.int("no_rope_layer_interval", default=4)
        return [(i + 1) % interval != 0 for i in range(layers)]
    return flags


def _stack(blocks: list[Block]) -> tuple[Block, ...]:
    """The layer tuple, equal blocks shared (one object per kind of layer)."""
    interned: dict[Block, Block] = {}
    return tuple(interned.setdefault(block, block) for block in blocks)


def _model(cfg: _Config, name: str, family: str, layers: list[Block], *, tied_default: bool = False,
           **more: Any) -> ModelSpec:
    return ModelSpec(
        name=name,
        family=family,
        hidden_size=cfg.int("hidden_size"),
        vocab_size=cfg.int("vocab_size"),
        max_position_embeddings=cfg.int("max_position_embeddings", default=2048),
        layers=_stack(layers),
        tied_embeddings=cfg.bool("tie_word_embeddings", tied_default),
        **more,
    )


def _llama_like(cfg: _Config, name: str, family: str, *, qkv_bias: bool | None = None,
                out_bias: bool | None = None, tied_default: bool = False, qk_norm: str | None = None,
                span: Callable[[int], str] = lambda i: "full_attention", rope: list[bool] | None = None,
                mlp: Callable[[int], MLP] | None = None, post_norms: bool = False, pre_norms: bool = True,
                softcap: float | None = None, activation: str = "silu", **model: Any) -> ModelSpec:
    """A decoder of RMSNorm, RoPE attention and a gated MLP, and the variations families make of it."""
    cfg.int("hidden_size")
    layers = _layers(cfg)
    base = _attention(cfg, qkv_bias=qkv_bias, out_bias=out_bias, qk_norm=qk_norm, softcap=softcap)
    kinds = _spans(cfg, layers, span)
    dense = _dense_mlp(cfg, activation=activation)
    blocks = []
    for i in range(layers):
        attention = _with_span(cfg, base, kinds[i])
        if rope is not None and not rope[i]:
            attention = replace(attention, rope_dim=0)
        blocks.append(Block(attention, dense if mlp is None else mlp(i), pre_norms=pre_norms, post_norms=post_norms))
    return _model(cfg, name, family, blocks, tied_default=tied_default, **model)


def _llama(cfg: _Config, name: str) -> ModelSpec:
    return _llama_like(cfg, name, "llama")


def _mistral(cfg: _Config, name: str) -> ModelSpec:
    return _llama_like(cfg, name, "mistral", qkv_bias=False, out_bias=False, span=lambda i: "sliding_attention")


def _moe(cfg: _Config, intermediate_key: str, experts_keys: tuple[str, ...], **more: Any) -> MLP:
    return MLP(intermediate_size=cfg.int(intermediate_key),
               activation=cfg.activation("hidden_act", default="silu"),
               experts=cfg.int(*experts_keys),
               experts_per_token=cfg.int("num_experts_per_tok"), **more)


def _mixtral(cfg: _Config, name: str) -> ModelSpec:
    experts = _moe(cfg, "intermediate_size", ("num_local_experts",))
    return _llama_like(cfg, name, "mixtral", qkv_bias=False, out_bias=False, span=lambda i: "sliding_attention",
                       mlp=lambda i: experts)


def _qwen_span(cfg: _Config) -> Callable[[int], str]:
    """Qwen2/3: layers i >= max_window_layers use the window, when use_sliding_window is set."""
    if not cfg.bool("use_sliding_window", False):
        cfg.data = {**cfg.data, "layer_types": None}  # transformers ignores the list without the switch
        return lambda i: "full_attention"
    first = cfg.count("max_window_layers", 28)
    return lambda i: "sliding_attention" if i >= first else "full_attention"


def _qwen2(cfg: _Config, name: str) -> ModelSpec:
    return _llama_like(cfg, name, "qwen2", qkv_bias=True, out_bias=False, span=_qwen_span(cfg))


def _qwen3(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Qwen3: Qwen2 without the q/k/v biases, with a head_dim-wide RMSNorm on every query and key head.
    return _llama_like(cfg, name, "qwen3", qk_norm="head", span=_qwen_span(cfg))


def _qwen3_moe(cfg: _Config, name: str) -> ModelSpec:
    # Layer i is sparse unless listed in mlp_only_layers, when (i + 1) is a multiple of decoder_sparse_step.
    layers = _layers(cfg)
    dense_only = cfg.layer_indices("mlp_only_layers", layers) or set()
    step = cfg.int("decoder_sparse_step", default=1)
    sparse = cfg.count("num_experts", 0) > 0
    experts = _moe(cfg, "moe_intermediate_size", ("num_experts",)) if sparse else None
    dense = _dense_mlp(cfg)

    def mlp(i: int) -> MLP:
        return experts if experts is not None and i not in dense_only and (i + 1) % step == 0 else dense

    return _llama_like(cfg, name, "qwen3_moe", qk_norm="head", span=_qwen_span(cfg), mlp=mlp)


def _phi3(cfg: _Config, name: str) -> ModelSpec:
    return _llama_like(cfg, name, "phi3", qkv_bias=False, out_bias=False)


def _smollm3(cfg: _Config, name: str) -> ModelSpec:
    # transformers' SmolLM3: Llama with every no_rope_layer_interval-th layer attending without RoPE (NoPE).
    layers = _layers(cfg)
    rope = _rope_layers(cfg, layers)
    windowed = cfg.bool("use_sliding_window", False)
    return _llama_like(cfg, name, "smollm3", rope=rope, tied_default=True,
                       span=lambda i: "sliding_attention" if windowed and not rope[i] else "full_attention")


def _granite(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Granite: Llama with scalar multipliers on the embeddings, each residual branch and the logits.
    return _llama_like(cfg, name, "granite", embedding_scale=True, residual_scale=True, logits_scale=True)


def _olmo2(cfg: _Config, name: str) -> ModelSpec:
    # transformers' OLMo-2: norms after attention and after the MLP only (none before), and RMSNorms over all
    # query heads and all key heads at once.
    return _llama_like(cfg, name, "olmo2", qk_norm="full", pre_norms=False, post_norms=True)


def _gemma(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Gemma uses hidden_activation, and the tanh GELU when it is unset.
    return _gemma_like(cfg, name, "gemma")


def _gemma_like(cfg: _Config, name: str, family: str, **more: Any) -> ModelSpec:
    cfg.data = {**cfg.data, "hidden_act": cfg.data.get("hidden_activation") or "gelu_pytorch_tanh"}
    return _llama_like(cfg, name, family, tied_default=True, embedding_scale=True, **more)


def _softcap(cfg: _Config, key: str) -> float | None:
    return None if cfg.data.get(key) is None else cfg.number(key, 1.0)


def _gemma2(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Gemma2: a norm after attention and after the MLP too; odd layers (1-based) windowed;
    # scores and logits soft-capped.
    return _gemma_like(cfg, name, "gemma2", post_norms=True, softcap=_softcap(cfg, "attn_logit_softcapping"),
                       final_logit_softcapping=_softcap(cfg, "final_logit_softcapping"),
                       span=lambda i: "sliding_attention" if (i + 1) % 2 else "full_attention")


def _gemma3_text(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Gemma3 (text): Gemma-2's norms plus per-head q/k norms; 5 of every 6 layers windowed.
    pattern = cfg.int("sliding_window_pattern", default=6)
    return _gemma_like(cfg, name, "gemma3_text", post_norms=True, qk_norm="head",
                       softcap=_softcap(cfg, "attn_logit_softcapping"),
                       final_logit_softcapping=_softcap(cfg, "final_logit_softcapping"),
                       span=lambda i: "sliding_attention" if (i + 1) % pattern else "full_attention")


def _gpt_oss(cfg: _Config, name: str) -> ModelSpec:
    # transformers' GptOss: biased q/k/v/o, a learned sink logit per head, sliding and full layers alternating,
    # every layer a mixture of experts with biased experts and router and a clamped SwiGLU.
    experts = replace(_moe(cfg, "intermediate_size", ("num_local_experts",), bias=True, router_bias=True),
                      activation="swiglu_clamp")
    base = _attention(cfg, qkv_bias=True, out_bias=True, sinks=True)
    layers = _layers(cfg)
    kinds = _spans(cfg, layers, lambda i: "sliding_attention" if (i + 1) % 2 else "full_attention")
    blocks = [Block(_with_span(cfg, base, kinds[i]), experts) for i in range(layers)]
    return _model(cfg, name, "gpt_oss", blocks, stored_weights=_stored_mxfp4_experts(cfg))


def _stored_mxfp4_experts(cfg: _Config) -> WeightScheme | None:
    """gpt-oss ships its experts in MXFP4 (quantization_config) and everything else in bf16: its own formats."""
    quant = cfg.data.get("quantization_config")
    if not isinstance(quant, dict) or quant.get("quant_method") != "mxfp4":
        return None
    mxfp4, bf16 = get_format("mxfp4"), get_format("bf16")
    return WeightScheme(name="mxfp4-experts", default=bf16, by_role=tuple((role, mxfp4) for role in arch.EXPERT_ROLES),
                        source="quantization_config of the model's config.json: MXFP4 experts, the rest bf16")


def _deepseek_v3(cfg: _Config, name: str) -> ModelSpec:
    # transformers' DeepseekV3: multi-head latent attention; the first first_k_dense_replace layers dense, the
    # rest a mixture of experts with shared experts. The multi-token-prediction layer (num_nextn_predict_layers)
    # is not part of inference and is not counted.
    nope, rope = cfg.int("qk_nope_head_dim"), cfg.int("qk_rope_head_dim")
    heads = cfg.int("num_attention_heads")
    bias = cfg.bool("attention_bias", False)
    attention = Attention(heads=heads, kv_heads=heads, head_dim=nope + rope, qkv_bias=bias, out_bias=bias,
                          q_lora_rank=cfg.optional_int("q_lora_rank"), kv_lora_rank=cfg.int("kv_lora_rank"),
                          qk_rope_head_dim=rope, v_head_dim=cfg.int("v_head_dim"))
    layers = _layers(cfg)
    first_dense = cfg.count("first_k_dense_replace", 0)
    shared = cfg.count("n_shared_experts", 0) * cfg.int("moe_intermediate_size")
    experts = _moe(cfg, "moe_intermediate_size", ("n_routed_experts", "num_local_experts"),
                   shared_intermediate_size=shared)
    dense = _dense_mlp(cfg)
    blocks = [Block(attention, dense if i < first_dense else experts) for i in range(layers)]
    return _model(cfg, name, "deepseek_v3", blocks, mtp_modules=cfg.count("num_nextn_predict_layers", 0))


def _llama4_text(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Llama4 (text): RoPE layers use chunked attention and a weightless L2 q/k norm, every 4th
    # layer is NoPE with full attention; MoE layers (every interleave_moe_layer_step-th) route to top-k experts
    # plus a shared expert; the other layers are dense with intermediate_size_mlp.
    layers = _layers(cfg)
    rope = _rope_layers(cfg, layers)
    step = cfg.int("interleave_moe_layer_step", default=1)
    sparse = cfg.layer_indices("moe_layers", layers)
    if sparse is None:
        sparse = set(range(step - 1, layers, step))
    width = cfg.int("intermediate_size")
    experts = _moe(cfg, "intermediate_size", ("num_local_experts",), shared_intermediate_size=width)
    dense = _dense_mlp(cfg, key="intermediate_size_mlp")
    base = _attention(cfg)
    qk_norm = "l2" if cfg.bool("use_qk_norm", True) else None
    kinds = _spans(cfg, layers, lambda i: "chunked_attention" if rope[i] else "full_attention")
    blocks = []
    for i in range(layers):
        attention = _with_span(cfg, base, kinds[i])
        attention = replace(attention, qk_norm=qk_norm) if rope[i] else replace(attention, rope_dim=0)
        blocks.append(Block(attention, experts if i in sparse else dense))
    return _model(cfg, name, "llama4_text", blocks)


def _phi(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Phi (Phi-1/1.5/2): one LayerNorm feeding attention and MLP in parallel, biases everywhere
    # (lm_head too), RoPE on the first partial_rotary_factor of each head, a plain GELU MLP.
    base = _attention(cfg, qkv_bias=True, out_bias=True,
                      qk_norm="head" if cfg.bool("qk_layernorm", False) else None)
    base = replace(base, rope_dim=int(base.head_dim * cfg.rope_fraction()))
    mlp = MLP(intermediate_size=cfg.int("intermediate_size"), gated=False, bias=True,
              activation=cfg.activation("hidden_act", default="gelu_tanh"))
    block = Block(base, mlp, norm="layernorm", parallel=True)
    return _model(cfg, name, "phi", [block] * _layers(cfg), norm="layernorm", lm_head_bias=True)


def _opt(cfg: _Config, name: str) -> ModelSpec:
    # transformers' OPT: LayerNorm, ReLU MLP of ffn_dim, biases (enable_bias), a learned position table with 2
    # extra rows, tied embeddings. do_layer_norm_before=false (OPT-350M) normalizes after each residual add
    # and has no final norm.
    hidden = cfg.int("hidden_size")
    if cfg.data.get("word_embed_proj_dim", hidden) != hidden:
        raise InputError(f"{cfg.where}: word_embed_proj_dim different from hidden_size (OPT-350M's projections) "
                         f"is not supported")
    if not cfg.bool("layer_norm_elementwise_affine", True):
        raise InputError(f"{cfg.where}: layer_norm_elementwise_affine=false is not supported")
    bias = cfg.bool("enable_bias", True)
    pre = cfg.bool("do_layer_norm_before", True)
    attention = _attention(cfg, qkv_bias=bias, out_bias=bias, rope_dim=0)
    mlp = MLP(intermediate_size=cfg.int("ffn_dim"), gated=False, bias=bias,
              activation=cfg.activation("activation_function", default="relu"))
    block = Block(attention, mlp, norm="layernorm", pre_norms=pre, post_norms=not pre)
    positions = cfg.int("max_position_embeddings", default=2048)
    return _model(cfg, name, "opt", [block] * _layers(cfg), tied_default=True, norm="layernorm", final_norm=pre,
                  learned_positions=True, position_rows=positions + 2)


def _gpt2(cfg: _Config, name: str) -> ModelSpec:
    hidden = cfg.int("n_embd", "hidden_size")
    heads = cfg.int("n_head", "num_attention_heads")
    if hidden % heads:
        raise InputError(f"{cfg.where}: n_embd ({hidden}) must be a multiple of n_head ({heads})")
    attention = Attention(heads=heads, kv_heads=heads, head_dim=hidden // heads, qkv_bias=True, out_bias=True,
                          rope_dim=0)
    mlp = MLP(intermediate_size=cfg.int("n_inner", default=4 * hidden), gated=False, bias=True,
              activation=cfg.activation("activation_function", default="gelu_tanh"))
    block = Block(attention, mlp, norm="layernorm")
    return ModelSpec(
        name=name,
        family="gpt2",
        hidden_size=hidden,
        vocab_size=cfg.int("vocab_size"),
        max_position_embeddings=cfg.int("n_positions", "max_position_embeddings", default=1024),
        layers=(block,) * cfg.int("n_layer", "num_hidden_layers"),
        norm="layernorm",
        tied_embeddings=cfg.bool("tie_word_embeddings", True),
        learned_positions=True,
    )


def _lfm2(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Lfm2: layers listed in layer_types as "conv" (or, in the first releases' spelling, not in
    # full_attn_idxs) run a gated short convolution instead of attention; the attention has per-head q/k norms
    # and no biases; the MLP is a SwiGLU whose width is 2/3 of block_ff_dim (or intermediate_size), times
    # block_ffn_dim_multiplier, rounded up to block_multiple_of (block_auto_adjust_ff_dim); embeddings tied.
    layers = _layers(cfg)
    kinds = cfg.per_layer("layer_types", layers)
    if kinds is None:
        attending = cfg.layer_indices("full_attn_idxs", layers)
        kinds = ["full_attention" if attending is None or i in attending else "conv" for i in range(layers)]
    for kind in kinds:
        if kind not in ("full_attention", "conv"):
            raise InputError(f"{cfg.where}: unsupported layer type {shown(kind)} in 'layer_types'; supported: "
                             f"full_attention, conv")
    width = cfg.int("block_ff_dim", "intermediate_size")  # transformers: block_ff_dim replaces intermediate_size
    if cfg.bool("block_auto_adjust_ff_dim", True):
        width = int(2 * width / 3)
        multiplier = cfg.data.get("block_ffn_dim_multiplier", 1.0)
        if multiplier is not None:
            factor = limits.figure("'block_ffn_dim_multiplier'", multiplier, FFN_MULTIPLIER, f"{cfg.where}: ")
            multiple = cfg.int("block_multiple_of", default=256)
            width = multiple * -(-int(factor * width) // multiple)
    mlp = MLP(intermediate_size=limits.count("the MLP width", width, MODEL["intermediate_size"], f"{cfg.where}: "))
    attention = _attention(cfg, qkv_bias=False, out_bias=False, qk_norm="head")
    conv = ShortConv(kernel=cfg.int("conv_L_cache", default=3), bias=cfg.bool("conv_bias", False))
    blocks = [Block(attention, mlp) if kind == "full_attention" else Block(None, mlp, mixer=conv) for kind in kinds]
    tied = cfg.bool("tie_embedding", cfg.bool("tie_word_embeddings", True))
    return replace(_model(cfg, name, "lfm2", blocks), tied_embeddings=tied)


def _qwen3_next(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Qwen3Next: three Gated DeltaNet layers for every gated full-attention layer
    # (full_attention_interval, or layer_types); the attention has per-head q/k norms, RoPE on a quarter of each
    # head (partial_rotary_factor) and an output gate from q_proj; layers are a mixture of experts with a gated
    # shared expert (unless listed in mlp_only_layers). Defaults are transformers' (Qwen3-Next-80B-A3B's).
    layers = _layers(cfg)
    kinds = cfg.per_layer("layer_types", layers)
    if kinds is None:
        interval = cfg.int("full_attention_interval", default=4)
        kinds = ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(layers)]
    for kind in kinds:
        if kind not in ("full_attention", "linear_attention"):
            raise InputError(f"{cfg.where}: unsupported layer type {shown(kind)} in 'layer_types'; supported: "
                             f"full_attention, linear_attention")
    heads = cfg.int("num_attention_heads", default=16)
    head_dim = cfg.int("head_dim", default=256)
    bias = cfg.bool("attention_bias", False)
    attention = Attention(heads=heads, kv_heads=cfg.int("num_key_value_heads", default=2), head_dim=head_dim,
                          qkv_bias=bias, out_bias=bias, qk_norm="head", output_gate=True,
                          rope_dim=int(head_dim * cfg.rope_fraction(default=0.25)))
    linear = LinearAttention(key_heads=cfg.int("linear_num_key_heads", default=16),
                             value_heads=cfg.int("linear_num_value_heads", default=32),
                             key_head_dim=cfg.int("linear_key_head_dim", default=128),
                             value_head_dim=cfg.int("linear_value_head_dim", default=128),
                             conv_kernel=cfg.int("linear_conv_kernel_dim", default=4))
    dense_only = cfg.layer_indices("mlp_only_layers", layers) or set()
    step = cfg.int("decoder_sparse_step", default=1)
    dense = _dense_mlp(cfg)
    experts = (replace(_moe(cfg, "moe_intermediate_size", ("num_experts",)),
                       shared_intermediate_size=cfg.int("shared_expert_intermediate_size", default=512),
                       shared_gate=True)
               if cfg.count("num_experts", 512) > 0 else None)
    blocks = []
    for i, kind in enumerate(kinds):
        mlp = experts if experts is not None and i not in dense_only and (i + 1) % step == 0 else dense
        blocks.append(Block(attention, mlp) if kind == "full_attention" else Block(None, mlp, mixer=linear))
    return _model(cfg, name, "qwen3_next", blocks)


def _mamba2(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Mamba2: each layer a norm and a Mamba-2 mixer, no MLP and no attention; d_inner is
    # num_heads x head_dim (transformers checks it equals expand x hidden_size); the mixer's output goes
    # through a gated RMSNorm; use_bias on in_proj and out_proj, use_conv_bias on the convolution.
    # A state space has no position table: its context is the longest a workload may have unless set.
    use_bias = cfg.bool("use_bias", False)
    ssm = StateSpace(heads=cfg.int("num_heads", default=128), head_dim=cfg.int("head_dim", default=64),
                     state_size=cfg.int("state_size", default=128), groups=cfg.int("n_groups", default=8),
                     conv_kernel=cfg.int("conv_kernel", default=4), chunk=cfg.int("chunk_size", default=256),
                     conv_bias=cfg.bool("use_conv_bias", True), in_bias=use_bias, out_bias=use_bias)
    block = Block(None, None, mixer=ssm)
    context = cfg.int("max_position_embeddings", default=int(limits.WORKLOAD["seq_len"].high))
    return replace(_model(cfg, name, "mamba2", [block] * _layers(cfg)), max_position_embeddings=context)


def _falcon_h1(cfg: _Config, name: str) -> ModelSpec:
    # transformers' FalconH1: every layer runs a Mamba-2 mixer and GQA attention side by side on the same
    # normed input and adds both outputs to the residual, then a SwiGLU MLP. The mixer is mamba_d_ssm wide
    # (transformers' default 1024; null: mamba_n_heads x mamba_d_head); its output is multiplied by SiLU(z),
    # through a gated RMSNorm when mamba_rms_norm. The muP multipliers (embedding, key, attention and SSM in
    # and out, the MLP's, lm_head's) are constants folded into the weights (llama.cpp's converter does so):
    # they add no operators.
    heads = cfg.int("mamba_n_heads", default=128)
    d_head = cfg.data.get("mamba_d_head", "auto")
    d_ssm = cfg.data.get("mamba_d_ssm", 1024)
    if d_ssm is None:
        if d_head == "auto":
            raise InputError(f"{cfg.where}: give 'mamba_d_ssm' or 'mamba_d_head' (the mixer's width)")
        d_ssm = heads * cfg.int("mamba_d_head")
    inner = limits.count("'mamba_d_ssm'", d_ssm, config_limit("mamba_d_ssm"), f"{cfg.where}: ")
    head_dim = inner // heads if d_head == "auto" else cfg.int("mamba_d_head")
    if head_dim * heads != inner:
        raise InputError(f"{cfg.where}: mamba_d_head ({head_dim}) x mamba_n_heads ({heads}) must equal mamba_d_ssm "
                         f"({inner})")
    ssm = StateSpace(heads=heads, head_dim=head_dim, state_size=cfg.int("mamba_d_state", default=256),
                     groups=cfg.int("mamba_n_groups", default=1), conv_kernel=cfg.int("mamba_d_conv", default=4),
                     chunk=cfg.int("mamba_chunk_size", default=256), conv_bias=cfg.bool("mamba_conv_bias", True),
                     in_bias=cfg.bool("mamba_proj_bias", False), out_bias=cfg.bool("projectors_bias", False),
                     gated_norm=cfg.bool("mamba_rms_norm", False))
    attention = _attention(cfg)
    mlp = _dense_mlp(cfg)
    blocks = [Block(attention, mlp, mixer=ssm)] * _layers(cfg)
    return _model(cfg, name, "falcon_h1", blocks)


FAMILIES: dict[str, Callable[[_Config, str], ModelSpec]] = {
    "llama": _llama,
    "mistral": _mistral,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe,
    "phi3": _phi3,
    "phi": _phi,
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3_text": _gemma3_text,
    "gpt2": _gpt2,
    "opt": _opt,
    "olmo2": _olmo2,
    "smollm3": _smollm3,
    "granite": _granite,
    "gpt_oss": _gpt_oss,
    "deepseek_v3": _deepseek_v3,
    "llama4_text": _llama4_text,
    "lfm2": _lfm2,
    "qwen3_next": _qwen3_next,
    "mamba2": _mamba2,
    "falcon_h1": _falcon_h1,
}


def model_from_hf_config(data: dict[str, Any], name: str = "custom", where: str = "config") -> ModelSpec:
    """A model from a parsed Hugging Face config.json."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object")
    family = data.get("model_type")
    if family is not None and not isinstance(family, str):
        raise InputError(f"{where}: 'model_type' must be a string (one of {', '.join(FAMILIES)}), got {shown(family)}")
    if family is None:
        raise InputError(f"{where}: missing required key 'model_type' (one of {', '.join(FAMILIES)})")
    if family not in FAMILIES:
        raise InputError(f"{where}: unsupported model_type {shown(family)}; supported: {', '.join(FAMILIES)}")
    try:
        spec = FAMILIES[family](_Config(data, where), name)
    except InputError as err:
        message = str(err)
        raise InputError(message if message.startswith(where) else f"{where}: {message}") from None
    labels = _Config(data, where)
    return replace(spec, display_name=labels.text("_display_name", name), source=labels.text("_source", where))


def load_model_file(path: str | Path) -> ModelSpec:
    """A model from a config.json file, or from a folder that holds one."""
    path = Path(path)
    if path_kind(path) == "folder":
        path = path / "config.json"
    data = parse_json(read_text(path, "model config"), str(path))
    stem = path.parent.name if path.name == "config.json" else path.stem
    return model_from_hf_config(data, name=stem or "custom", where=str(path))


@functools.cache
def _catalogue_files() -> dict[str, Any]:
    folder = resources.files("llm_roofline").joinpath("data/models")
    return {entry.name.removesuffix(".json"): entry for entry in folder.iterdir() if entry.name.endswith(".json")}


def model_names() -> list[str]:
    return sorted(_catalogue_files())


@functools.cache
def _load_catalogue_entry(name: str) -> ModelSpec:
    entry = _catalogue_files()[name]
    return model_from_hf_config(json.loads(entry.read_text()), name=name, where=f"data/models/{entry.name}")


def catalogue_config(name: str) -> dict[str, Any]:
    """The raw config.json dict of a built-in model (without the catalogue's own keys)."""
    data = json.loads(_catalogue_files()[name].read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def load_model(name_or_path: str | ModelSpec) -> ModelSpec:
    """A built-in model by name as people write it (``meta-llama/Llama-3.1-8B-Instruct``, ``qwen3-8b``: see
    ``names.resolve_model``), a GGUF file, or a config.json file or folder by path."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    key = str(name_or_path).strip()
    if key.lower() in _catalogue_files():
        return _load_catalogue_entry(key.lower())
    path = Path(key)
    if key.lower().endswith(".gguf"):
        from llm_roofline.inputs.gguf import load_gguf_model

        return load_gguf_model(key)
    if key.lower().endswith(".json") or path_kind(path) is not None:
        return load_model_file(key)
    return _load_catalogue_entry(resolve_model_name(key))


def resolve_model_name(text: str) -> str:
    """The catalogue name ``text`` means (fine-tune, chat and quantization suffixes and organisation
    prefixes ignored); an unknown or ambiguous name raises an ``InputError`` with the closest three."""
    from llm_roofline.inputs.names import resolve_model

    return resolve_model(text, catalogue_entries())


@functools.cache
def catalogue_entries() -> tuple[tuple[str, str], ...]:
    """(name, display name) of every built-in model."""
    return tuple((name, _load_catalogue_entry(name).display_name) for name in model_names())
