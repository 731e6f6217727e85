"""A model and a workload become a list of named operators: prefill and decode are one code path.

A step processes ``q_len`` new tokens per sequence against ``past_len`` tokens already in the KV
cache: prefill is q_len = prompt length, past_len = 0; decode is q_len = 1, past_len = tokens
cached. Layers are identical, so each per-layer operator appears once with ``count = num_layers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from . import ops
from .errors import InputError
from .formats import NumberFormat, get_format
from .models import ModelSpec
from .units import Quantity

PHASES = ("prefill", "decode")
LM_HEAD_MODES = ("last", "all")
# Elementwise kernels (norms, softmax, adds) run in 16-bit even when the matmuls take 8-bit inputs.
_NARROW_MATH = {"int8": "fp16", "int4": "fp16", "fp8": "fp16"}


@dataclass(frozen=True, slots=True)
class Workload:
    """What is run: the phase, batch and length, the number formats, and the kernel options.

    ``seq_len`` is the prompt length for prefill and the number of tokens already cached for
    decode (the new token attends to them and to itself).
    """

    phase: str = "decode"
    batch: int = 1
    seq_len: int = 1024
    weights: NumberFormat | str | float = "fp16"
    activations: NumberFormat | str | float = "fp16"
    kv_cache: NumberFormat | str | float | None = None  # None: the activations' format
    flash_attention: bool = False
    causal_skip: bool | None = None  # None: skip masked scores exactly when flash_attention is on
    lm_head: str = "last"  # "last": logits for the last token of each sequence; "all": every token
    weight_format: NumberFormat = field(init=False, repr=False, compare=False)
    activation_format: NumberFormat = field(init=False, repr=False, compare=False)
    kv_format: NumberFormat = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise InputError(f"phase must be one of {', '.join(PHASES)}, got {self.phase!r}")
        for label, value in (("batch", self.batch), ("seq_len", self.seq_len)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"{label} must be an integer >= 1, got {value!r}")
        if self.lm_head not in LM_HEAD_MODES:
            raise InputError(f"lm_head must be one of {', '.join(LM_HEAD_MODES)}, got {self.lm_head!r}")
        activations = get_format(self.activations)
        object.__setattr__(self, "weight_format", get_format(self.weights))
        object.__setattr__(self, "activation_format", activations)
        object.__setattr__(self, "kv_format", activations if self.kv_cache is None else get_format(self.kv_cache))

    @property
    def q_len(self) -> int:
        return self.seq_len if self.phase == "prefill" else 1

    @property
    def past_len(self) -> int:
        return 0 if self.phase == "prefill" else self.seq_len

    @property
    def skips_masked_scores(self) -> bool:
        return self.flash_attention if self.causal_skip is None else self.causal_skip

    @property
    def tokens(self) -> int:
        """Tokens this step produces per second of work: prompt tokens (prefill) or new tokens (decode)."""
        return self.batch * self.q_len

    def to_dict(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "batch": self.batch,
            "seq_len": self.seq_len,
            "q_len": self.q_len,
            "past_len": self.past_len,
            "weights": self.weight_format.name,
            "activations": self.activation_format.name,
            "kv_cache": self.kv_format.name,
            "flash_attention": self.flash_attention,
            "causal_skip": self.skips_masked_scores,
            "lm_head": self.lm_head,
        }


class Op(NamedTuple):
    """One named operator of the model, its cost per instance, and how many instances run."""

    name: str
    kind: str
    group: str  # attention, ffn, norm, residual, embedding, lm_head
    count: int
    cost: ops.OpCost
    math: str  # the precision its arithmetic runs in


def attention_pairs(q_len: Quantity, past_len: Quantity, causal_skip: bool) -> Quantity:
    """(query, key) scores per sequence and head (conventions 4 in ops.py)."""
    kv_len = past_len + q_len
    if causal_skip:
        return q_len * past_len + q_len * (q_len + 1) // 2
    return q_len * kv_len


def build_ops(model: ModelSpec, workload: Workload) -> list[Op]:
    """The operators of one forward step, in execution order, layers aggregated."""
    return step_ops(model, workload.batch, workload.q_len, workload.past_len, workload.weight_format,
                    workload.activation_format, workload.kv_format, workload.flash_attention,
                    workload.skips_masked_scores, workload.lm_head == "all")


def step_ops(model: ModelSpec, batch: Quantity, q_len: Quantity, past_len: Quantity,
             weights: NumberFormat, activations: NumberFormat, kv_format: NumberFormat,
             flash_attention: bool, causal_skip: bool, lm_head_all_tokens: bool) -> list[Op]:
    """The operator list for any batch, q_len and past_len (numbers or numpy arrays)."""
    d, inter, layers = model.hidden_size, model.intermediate_size, model.num_layers
    heads, kv_heads, head_dim = model.num_heads, model.num_kv_heads, model.head_dim
    act = activations.bytes_per_element
    kv = kv_format.bytes_per_element
    matmul_math = activations.math
    other_math = _NARROW_MATH.get(matmul_math, matmul_math)
    param_bytes = vector_param_bytes(activations)
    tokens = batch * q_len
    kv_len = past_len + q_len
    pairs = attention_pairs(q_len, past_len, causal_skip)

    def layer(name: str, kind: str, group: str, cost: ops.OpCost, math: str = other_math) -> Op:
        return Op(f"layer.{name}", kind, group, layers, cost, math)

    def proj(name: str, group: str, n_in: int, n_out: int, bias: bool, to_kv: bool = False) -> Op:
        cost = ops.linear(tokens, n_in, n_out, weights, act, kv if to_kv else act, bias, to_kv)
        return layer(name, "matmul", group, cost, matmul_math)

    result = [Op("embed", "embedding", "embedding", 1,
                 ops.embedding(tokens, d, weights, act, model.learned_positions, model.embedding_scale),
                 other_math)]
    result.append(layer("attn_norm", "norm", "norm", ops.norm(tokens, d, model.norm, act, param_bytes)))
    result.append(proj("attn.q_proj", "attention", d, model.q_size, model.qkv_bias))
    result.append(proj("attn.k_proj", "attention", d, model.kv_size, model.qkv_bias, to_kv=True))
    result.append(proj("attn.v_proj", "attention", d, model.kv_size, model.qkv_bias, to_kv=True))
    if not model.learned_positions:
        result.append(layer("attn.rope", "elementwise", "attention",
                            ops.rope(tokens, heads, kv_heads, head_dim, act)))
    attention_shape = (batch, q_len, kv_len, pairs, heads, kv_heads, head_dim, act, kv)
    if flash_attention:
        result.append(layer("attn.flash", "attention", "attention",
                            ops.flash_attention(*attention_shape), matmul_math))
    else:
        result += [
            layer("attn.qk", "matmul", "attention", ops.attention_scores(*attention_shape), matmul_math),
            layer("attn.softmax", "softmax", "attention", ops.softmax(batch, pairs, heads, act)),
            layer("attn.sv", "matmul", "attention", ops.attention_values(*attention_shape), matmul_math),
        ]
    result.append(proj("attn.o_proj", "attention", model.q_size, d, model.out_bias))
    result.append(layer("attn_residual", "elementwise", "residual", ops.residual_add(tokens, d, act)))
    result.append(layer("mlp_norm", "norm", "norm", ops.norm(tokens, d, model.norm, act, param_bytes)))
    mlp_act = layer("mlp.act", "activation", "ffn",
                    ops.activation(tokens, inter, model.activation, model.gated_mlp, act))
    if model.gated_mlp:
        result.append(proj("mlp.gate_proj", "ffn", d, inter, model.mlp_bias))
        result.append(proj("mlp.up_proj", "ffn", d, inter, model.mlp_bias))
        result.append(mlp_act)
        result.append(proj("mlp.down_proj", "ffn", inter, d, model.mlp_bias))
    else:
        result.append(proj("mlp.fc", "ffn", d, inter, model.mlp_bias))
        result.append(mlp_act)
        result.append(proj("mlp.proj", "ffn", inter, d, model.mlp_bias))
    result.append(layer("mlp_residual", "elementwise", "residual", ops.residual_add(tokens, d, act)))
    result.append(Op("final_norm", "norm", "norm", 1, ops.norm(tokens, d, model.norm, act, param_bytes), other_math))
    lm_tokens = tokens if lm_head_all_tokens else batch
    result.append(Op("lm_head", "matmul", "lm_head", 1,
                     ops.linear(lm_tokens, d, model.vocab_size, weights, act, act), matmul_math))
    return result


def vector_param_bytes(activations: NumberFormat) -> float:
    """Bytes per norm weight or bias: these stay unquantized, in the activations' format or 16-bit."""
    return max(activations.bytes_per_element, 2.0)


def kv_cache_bytes(model: ModelSpec, batch: Quantity, context_len: Quantity, kv_format: NumberFormat) -> Quantity:
    """KV cache held for ``batch`` sequences of ``context_len`` tokens: K and V, every layer."""
    elements = 2 * model.num_layers * batch * context_len * model.kv_size
    return kv_format.tensor_bytes(elements)


def weight_storage_bytes(model: ModelSpec, weights: NumberFormat, activations: NumberFormat) -> float:
    """Bytes of the stored weights: matrices (and embedding tables) in the weight format, norms and
    biases unquantized; a tied lm_head is stored once."""
    d, inter, q, kv = model.hidden_size, model.intermediate_size, model.q_size, model.kv_size
    mlp_shapes = [(d, inter), (d, inter), (inter, d)] if model.gated_mlp else [(d, inter), (inter, d)]
    matrices = [(d, q), (d, kv), (d, kv), (q, d), *mlp_shapes]
    per_layer = sum(weights.tensor_bytes(n_in * n_out, n_out) for n_in, n_out in matrices)
    vectors = model.num_layers * (model.layer_params - sum(n_in * n_out for n_in, n_out in matrices))
    vectors += model.norm_params
    tables = weights.tensor_bytes(model.embedding_params, model.embedding_params // d)
    lm_head = 0 if model.tied_embeddings else weights.tensor_bytes(model.vocab_size * d, model.vocab_size)
    return model.num_layers * per_layer + vectors * vector_param_bytes(activations) + tables + lm_head
