"""A model and a workload become a list of named operators: prefill and decode are one code path.

A step processes ``q_len`` new tokens per sequence against ``past_len`` tokens already in the KV
cache: prefill is q_len = prompt length, past_len = 0; decode is q_len = 1 (or the ``new_tokens`` a
speculative verification checks), past_len = tokens cached. Layers are identical, so each per-layer
operator appears once with ``count = num_layers``; where layers differ (a per-layer mix of weight
formats), the per-instance figures are the mean over layers, so count x figures is the exact total.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import ops
from .errors import InputError
from .formats import NumberFormat, WeightScheme, get_format
from .models import ModelSpec
from .quant import WeightsSpec, default_weight_format, weight_scheme, weights_label
from .units import Quantity, minimum

PHASES = ("prefill", "decode")
LM_HEAD_MODES = ("last", "all")
# Elementwise kernels (norms, softmax, adds) run in 16-bit even when the matmuls take 8-bit inputs.
_NARROW_MATH = {"int8": "fp16", "int4": "fp16", "fp8": "fp16", "fp4": "fp16"}


@dataclass(frozen=True, slots=True)
class Workload:
    """What is run: the phase, batch and length, the number formats, and the kernel options.

    ``seq_len`` is the prompt length for prefill and the number of tokens already cached for
    decode (the new token attends to them and to itself).

    ``weights``: a format (every matrix in it), a llama.cpp mix (``q4_k_m``), a ``WeightScheme``, or
    None for the model's own formats (a GGUF file's tensor types; fp16 for a config.json model).
    ``weight_format`` is the format most weights are in; ``weight_scheme(model)`` is the full scheme.
    ``new_tokens``: decode only, the tokens each sequence processes in the step (1; gamma + 1 when a
    target model verifies gamma drafted tokens).
    """

    phase: str = "decode"
    batch: int = 1
    seq_len: int = 1024
    weights: WeightsSpec = None
    activations: NumberFormat | str | float = "fp16"
    kv_cache: NumberFormat | str | float | None = None  # None: the activations' format
    flash_attention: bool = False
    causal_skip: bool | None = None  # None: skip masked scores exactly when flash_attention is on
    lm_head: str = "last"  # "last": logits for the last token of each sequence; "all": every token
    new_tokens: int = 1
    weight_format: NumberFormat = field(init=False, repr=False, compare=False)
    activation_format: NumberFormat = field(init=False, repr=False, compare=False)
    kv_format: NumberFormat = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise InputError(f"phase must be one of {', '.join(PHASES)}, got {self.phase!r}")
        for label, value in (("batch", self.batch), ("seq_len", self.seq_len), ("new_tokens", self.new_tokens)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"{label} must be an integer >= 1, got {value!r}")
        if self.phase == "prefill" and self.new_tokens != 1:
            raise InputError("new_tokens applies to decode steps; a prefill step processes seq_len tokens")
        if self.lm_head not in LM_HEAD_MODES:
            raise InputError(f"lm_head must be one of {', '.join(LM_HEAD_MODES)}, got {self.lm_head!r}")
        activations = get_format(self.activations)
        object.__setattr__(self, "weight_format", default_weight_format(self.weights))
        object.__setattr__(self, "activation_format", activations)
        object.__setattr__(self, "kv_format", activations if self.kv_cache is None else get_format(self.kv_cache))

    @property
    def q_len(self) -> int:
        return self.seq_len if self.phase == "prefill" else self.new_tokens

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

    @property
    def weights_label(self) -> str:
        """The weights' name in outputs: a mix's or scheme's name, else the format's."""
        return weights_label(self.weights)

    def weight_scheme(self, model: ModelSpec) -> WeightScheme:
        """The format of each of ``model``'s weight tensors under this workload."""
        return weight_scheme(model, self.weights)

    def to_dict(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "batch": self.batch,
            "seq_len": self.seq_len,
            "q_len": self.q_len,
            "past_len": self.past_len,
            "weights": self.weights_label,
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


def attention_pairs(q_len: Quantity, past_len: Quantity, causal_skip: bool, window: int | None = None) -> Quantity:
    """(query, key) scores per sequence and head (conventions 4 and 6 in ops.py)."""
    kv_len = past_len + q_len
    if window is not None:
        if causal_skip:
            return _window_prefix_pairs(kv_len, window) - _window_prefix_pairs(past_len, window)
        return q_len * keys_read(q_len, past_len, window)
    if causal_skip:
        return q_len * past_len + q_len * (q_len + 1) // 2
    return q_len * kv_len


def keys_read(q_len: Quantity, past_len: Quantity, window: int | None = None) -> Quantity:
    """Keys (and values) per sequence a step reads: all of them, or the window its queries span."""
    kv_len = past_len + q_len
    return kv_len if window is None else minimum(kv_len, window + q_len - 1)


def _window_prefix_pairs(length: Quantity, window: int) -> Quantity:
    """Causal pairs of the first ``length`` positions with a window: sum over j <= length of min(j, W)."""
    inside = minimum(length, window)
    return inside * (inside + 1) // 2 + (length - inside) * window


class StepCounts(NamedTuple):
    """The counts a step's cost is affine in: every operator's FLOPs and bytes are c0 + sum_j c_j x count_j.

    Each is a total over the batch (numbers, or numpy arrays for a grid of steps).
    """

    sequences: Quantity  # batch: the rows lm_head scores when only the last token is kept
    tokens: Quantity  # batch x q_len: the rows through every token-wise operator
    keys: Quantity  # batch x the cached keys a full-attention layer reads per sequence
    scores: Quantity  # batch x the (query, key) pairs a full-attention head computes per sequence
    window_keys: Quantity  # the same two for the sliding-window layers (0 when the model has none)
    window_scores: Quantity
    experts_touched: Quantity  # distinct experts an MoE layer's tokens route to, in expectation (0 when dense)


def step_counts(model: ModelSpec, batch: Quantity, q_len: Quantity, past_len: Quantity,
                causal_skip: bool) -> StepCounts:
    """The counts of a step of ``q_len`` new tokens per sequence over ``past_len`` cached ones."""
    full = window = (0, 0)
    if model.windowed_layers < model.num_layers:
        full = (batch * keys_read(q_len, past_len), batch * attention_pairs(q_len, past_len, causal_skip))
    if model.windowed_layers:
        w = model.sliding_window
        window = (batch * keys_read(q_len, past_len, w), batch * attention_pairs(q_len, past_len, causal_skip, w))
    tokens = batch * q_len
    touched = ops.expected_experts_touched(tokens, model.num_experts, model.experts_per_token) if model.is_moe else 0
    return StepCounts(batch, tokens, *full, *window, touched)


# The rows of a plan's coefficients: OpCost's fields (flops, weight_bytes, act_read_bytes, act_write_bytes,
# kv_read_bytes, kv_write_bytes), then their five byte categories summed.
COST_FIELDS = (*ops.OpCost._fields, "bytes")


@dataclass(frozen=True, eq=False)
class StepPlan:
    """The operators of a step, each cost field kept as coefficients of the step counts.

    Built once per (model, weights, formats, kernel options) by evaluating ``step_operators`` — the
    formulas of ``ops.py`` — at the zero counts and at each unit count; checked at a generic point
    (a formula that is not affine in the counts raises). Every step of that plan is then one product:
    ``coefficients @ (1, *counts)``, for one step or a whole grid.
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    groups: tuple[str, ...]
    instances: tuple[int, ...]  # Op.count: layers for per-layer operators, else 1
    instance_weights: np.ndarray  # the same as float64, to sum figures x count
    maths: tuple[str, ...]
    weight_formats: tuple[NumberFormat | None, ...]  # the format of a matmul's weight matrix; None: reads none
    activations: NumberFormat
    coefficients: np.ndarray  # (COST_FIELDS, operators, 1 + counts): the constant first
    unique_maths: tuple[str, ...]  # the precisions in ``maths``, each once
    math_index: tuple[int, ...]  # maths[i] == unique_maths[math_index[i]]

    def costs(self, counts: StepCounts) -> np.ndarray:
        """Every operator's ``COST_FIELDS``: (7, operators) for numbers, (7, operators, n) for arrays of n steps."""
        vector = _count_vector(counts)
        if vector.ndim == 1:
            return self.coefficients.dot(vector)
        fields, operators, size = self.coefficients.shape  # a grid: one 2-D product (BLAS), reshaped
        return self.coefficients.reshape(fields * operators, size).dot(vector).reshape(fields, operators, -1)

    def ops(self, counts: StepCounts) -> list[Op]:
        """The operators at ``counts``, as ``Op`` records (costs are Python floats, or arrays for a grid)."""
        costs = self.costs(counts)[:-1]
        rows = costs.T.tolist() if costs.ndim == 2 else list(costs.swapaxes(0, 1))
        return [Op(name, kind, group, n, ops.OpCost(*fields), math) for name, kind, group, n, math, fields
                in zip(self.names, self.kinds, self.groups, self.instances, self.maths, rows, strict=True)]


def _count_vector(counts: StepCounts) -> np.ndarray:
    """(1, *counts) as float64: a vector for numbers, a (1 + counts, n) matrix for arrays of n steps."""
    try:
        return np.array((1.0, *counts), dtype=np.float64)
    except ValueError:  # some counts are arrays
        return count_matrix(counts, np.broadcast(*counts).shape[0])


def count_matrix(counts: StepCounts, n: int) -> np.ndarray:
    """(1, *counts) for ``n`` steps, as a (1 + counts, n) float64 matrix (numbers are repeated)."""
    matrix = np.empty((1 + len(counts), n), dtype=np.float64)
    matrix[0] = 1.0
    for row, count in zip(matrix[1:], counts, strict=True):
        row[...] = count
    return matrix


@functools.lru_cache(maxsize=256)
def step_plan(model: ModelSpec, weights: NumberFormat | WeightScheme, activations: NumberFormat,
              kv_format: NumberFormat, flash_attention: bool, lm_head_all_tokens: bool) -> StepPlan:
    """The plan of ``model``'s steps under these formats and options (memoized: a pure function of
    frozen records; what varies from step to step is only the counts)."""
    scheme = weights if isinstance(weights, WeightScheme) else WeightScheme.uniform(weights)
    size = len(StepCounts._fields)
    # Probe points, one per column: all counts 0, each count 1 alone, then two generic points (small and
    # large counts, every count nonzero) where the coefficients must reproduce the formulas.
    checks = np.array([[3.0, 7.0, 11.0, 13.0, 17.0, 19.0, 23.0],
                       [4.1e3, 2.9e6, 7.3e7, 3.7e10, 5.9e7, 1.3e10, 97.0]]).T
    probes = np.hstack([np.zeros((size, 1)), np.eye(size), checks])
    operators = step_operators(model, StepCounts(*probes), scheme, activations, kv_format, flash_attention,
                               lm_head_all_tokens)
    values = np.array([[np.broadcast_to(field, probes.shape[1:]) for field in (*op.cost, op.cost.bytes)]
                       for op in operators]).transpose(1, 0, 2)  # (COST_FIELDS, operators, probes)
    constant = values[:, :, :1]
    coefficients = np.concatenate([constant, values[:, :, 1:1 + size] - constant], axis=2)
    predicted = coefficients @ np.vstack([np.ones((1, checks.shape[1])), checks])
    wrong = ~np.isclose(predicted, values[:, :, 1 + size:], rtol=1e-12, atol=0).all(axis=(0, 2))
    if wrong.any():
        bad = operators[int(np.argmax(wrong))].name
        raise ValueError(f"the cost of operator {bad!r} is not affine in the step counts; see ops.py")
    unique_maths = tuple(dict.fromkeys(op.math for op in operators))
    return StepPlan(
        names=tuple(op.name for op in operators),
        kinds=tuple(op.kind for op in operators),
        groups=tuple(op.group for op in operators),
        instances=tuple(op.count for op in operators),
        instance_weights=_frozen(np.array([op.count for op in operators], dtype=np.float64)),
        maths=tuple(op.math for op in operators),
        weight_formats=tuple(scheme.format_for(weight_role(op.name, model.tied_embeddings))
                             if op.kind == "matmul" and coefficients[1, i].any() else None
                             for i, op in enumerate(operators)),
        activations=activations,
        coefficients=_frozen(coefficients),
        unique_maths=unique_maths,
        math_index=tuple(unique_maths.index(op.math) for op in operators),
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def weight_role(op_name: str, tied_embeddings: bool) -> str:
    """The weight tensor an operator reads: its name without ``layer.`` (a tied lm_head reads the embedding)."""
    if op_name == "lm_head" and tied_embeddings:
        return "embed"
    return op_name.removeprefix("layer.")


def build_ops(model: ModelSpec, workload: Workload) -> list[Op]:
    """The operators of one forward step, in execution order, layers aggregated."""
    return step_ops(model, workload.batch, workload.q_len, workload.past_len, workload.weight_scheme(model),
                    workload.activation_format, workload.kv_format, workload.flash_attention,
                    workload.skips_masked_scores, workload.lm_head == "all")


def step_ops(model: ModelSpec, batch: Quantity, q_len: Quantity, past_len: Quantity,
             weights: NumberFormat | WeightScheme, activations: NumberFormat, kv_format: NumberFormat,
             flash_attention: bool, causal_skip: bool, lm_head_all_tokens: bool) -> list[Op]:
    """The operator list for any batch, q_len and past_len (numbers or numpy arrays), through the plan.

    ``weights``: one format for every matrix, or a ``WeightScheme`` built for this model
    (``Workload.weight_scheme(model)``) that gives each tensor role its own.
    """
    plan = step_plan(model, weights, activations, kv_format, flash_attention, lm_head_all_tokens)
    return plan.ops(step_counts(model, batch, q_len, past_len, causal_skip))


def step_operators(model: ModelSpec, counts: StepCounts, scheme: WeightScheme, activations: NumberFormat,
                   kv_format: NumberFormat, flash_attention: bool, lm_head_all_tokens: bool) -> list[Op]:
    """The operators of a step, in execution order, each priced by its formula in ``ops.py``.

    This is the model's structure: which operators run, with which shapes and formats. ``step_plan``
    evaluates it once per model and set of formats; ``step_ops`` is the way to price a step.
    """
    d, inter, layers = model.hidden_size, model.intermediate_size, model.num_layers
    heads, kv_heads, head_dim = model.num_heads, model.num_kv_heads, model.head_dim
    act = activations.bytes_per_element
    kv = kv_format.bytes_per_element
    matmul_math = activations.math
    other_math = _NARROW_MATH.get(matmul_math, matmul_math)
    vectors = scheme.vector_format()
    param_bytes = vector_param_bytes(activations) if vectors is None else vectors.bytes_per_element
    tokens = counts.tokens

    def layer(name: str, kind: str, group: str, cost: ops.OpCost, math: str = other_math,
              count: int = layers) -> Op:
        return Op(f"layer.{name}", kind, group, count, cost, math)

    def proj(name: str, group: str, n_in: int, n_out: int, bias: bool, to_kv: bool = False) -> Op:
        cost = ops.linear(tokens, n_in, n_out, scheme.format_for(name), act, kv if to_kv else act, bias, to_kv,
                          bias_bytes=param_bytes)
        return layer(name, "matmul", group, cost, matmul_math)

    def attention_core(prefix: str, count: int, keys: Quantity, scores: Quantity) -> list[Op]:
        shape = (tokens, keys, scores, heads, kv_heads, head_dim, act, kv)
        capped = model.attn_logit_softcapping is not None
        if flash_attention:
            return [layer(f"{prefix}.flash", "attention", "attention", ops.flash_attention(*shape, softcapped=capped),
                          matmul_math, count)]
        capping = [layer(f"{prefix}.softcap", "elementwise", "attention", ops.softcap(heads * scores, act),
                         count=count)] if capped else []
        return [
            layer(f"{prefix}.qk", "matmul", "attention", ops.attention_scores(*shape), matmul_math, count),
            *capping,
            layer(f"{prefix}.softmax", "softmax", "attention", ops.softmax(scores, heads, act), count=count),
            layer(f"{prefix}.sv", "matmul", "attention", ops.attention_values(*shape), matmul_math, count),
        ]

    embed = ops.embedding(tokens, d, scheme.format_for("embed"), act, model.learned_positions,
                          model.embedding_scale, positions=scheme.format_for("embed.positions"))
    result = [Op("embed", "embedding", "embedding", 1, embed, other_math)]
    result.append(layer("attn_norm", "norm", "norm", ops.norm(tokens, d, model.norm, act, param_bytes)))
    result.append(proj("attn.q_proj", "attention", d, model.q_size, model.qkv_bias))
    result.append(proj("attn.k_proj", "attention", d, model.kv_size, model.qkv_bias, to_kv=True))
    result.append(proj("attn.v_proj", "attention", d, model.kv_size, model.qkv_bias, to_kv=True))
    if model.qk_norm:  # one head_dim-wide norm over each query head and each new key head
        result.append(layer("attn.q_norm", "norm", "norm", ops.norm(tokens * heads, head_dim, model.norm, act,
                                                                    param_bytes)))
        result.append(layer("attn.k_norm", "norm", "norm", ops.norm(tokens * kv_heads, head_dim, model.norm, act,
                                                                    param_bytes)))
    if not model.learned_positions:
        result.append(layer("attn.rope", "elementwise", "attention",
                            ops.rope(tokens, heads, kv_heads, head_dim, act)))
    windowed = model.windowed_layers
    if windowed < layers:
        result += attention_core("attn", layers - windowed, counts.keys, counts.scores)
    if windowed:
        result += attention_core("attn" if windowed == layers else "attn.window", windowed, counts.window_keys,
                                 counts.window_scores)
    result.append(proj("attn.o_proj", "attention", model.q_size, d, model.out_bias))
    if model.post_norms:
        result.append(layer("attn_post_norm", "norm", "norm", ops.norm(tokens, d, model.norm, act, param_bytes)))
    result.append(layer("attn_residual", "elementwise", "residual", ops.residual_add(tokens, d, act)))
    result.append(layer("mlp_norm", "norm", "norm", ops.norm(tokens, d, model.norm, act, param_bytes)))
    if model.is_moe:
        result += _moe_ops(model, tokens, counts.experts_touched, scheme, act, layer, matmul_math)
    else:
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
    if model.post_norms:
        result.append(layer("mlp_post_norm", "norm", "norm", ops.norm(tokens, d, model.norm, act, param_bytes)))
    result.append(layer("mlp_residual", "elementwise", "residual", ops.residual_add(tokens, d, act)))
    result.append(Op("final_norm", "norm", "norm", 1, ops.norm(tokens, d, model.norm, act, param_bytes), other_math))
    lm_tokens = tokens if lm_head_all_tokens else counts.sequences
    lm_format = scheme.format_for("embed" if model.tied_embeddings else "lm_head")
    result.append(Op("lm_head", "matmul", "lm_head", 1,
                     ops.linear(lm_tokens, d, model.vocab_size, lm_format, act, act), matmul_math))
    if model.final_logit_softcapping is not None:
        result.append(Op("final_softcap", "elementwise", "lm_head", 1, ops.softcap(lm_tokens * model.vocab_size, act),
                         other_math))
    return result


def _moe_ops(model: ModelSpec, tokens: Quantity, touched: Quantity, scheme: WeightScheme, act: float,
             layer: Callable[..., Op], matmul_math: str) -> list[Op]:
    """A mixture-of-experts MLP: router, softmax/top-k over its logits, the routed experts, the weighted sum."""
    d, inter, experts, k = model.hidden_size, model.intermediate_size, model.num_experts, model.experts_per_token

    def expert(name: str, n_in: int, n_out: int) -> Op:
        cost = ops.expert_linear(tokens, k, touched, n_in, n_out, scheme.format_for(name), act, act)
        return layer(name, "matmul", "ffn", cost, matmul_math)

    router = ops.linear(tokens, d, experts, scheme.format_for("mlp.router"), act, act)
    return [
        layer("mlp.router", "matmul", "ffn", router, matmul_math),
        layer("mlp.router_softmax", "softmax", "ffn", ops.softmax(tokens, experts, act)),
        expert("mlp.gate_proj", d, inter),
        expert("mlp.up_proj", d, inter),
        layer("mlp.act", "activation", "ffn", ops.activation(tokens * k, inter, model.activation, True, act)),
        expert("mlp.down_proj", inter, d),
        layer("mlp.combine", "elementwise", "ffn", ops.moe_combine(tokens, k, d, act)),
    ]


def vector_param_bytes(activations: NumberFormat) -> float:
    """Bytes per norm weight or bias: these stay unquantized, in the activations' format or 16-bit."""
    return max(activations.bytes_per_element, 2.0)


def kv_cache_bytes(model: ModelSpec, batch: Quantity, context_len: Quantity, kv_format: NumberFormat) -> Quantity:
    """KV cache held for ``batch`` sequences of ``context_len`` tokens: K and V, every layer.

    A layer with a sliding window keeps only its last W tokens (a rolling buffer, as Mistral's
    reference implementation does: Jiang et al. 2023, arXiv:2310.06825, section 2).
    """
    windowed = model.windowed_layers
    held = (model.num_layers - windowed) * context_len
    if windowed:
        held = held + windowed * minimum(context_len, model.sliding_window)
    elements = 2 * batch * held * model.kv_size
    return kv_format.tensor_bytes(elements)


@functools.lru_cache(maxsize=1024)
def weight_storage_bytes(model: ModelSpec, weights: NumberFormat | WeightScheme, activations: NumberFormat) -> float:
    """Bytes of the stored weights: every tensor in its scheme's format (norms and biases unquantized
    unless the scheme names their format); a tied lm_head is stored once.

    Memoized: a pure function of frozen records, asked again for every workload of the same model.
    """
    scheme = weights if isinstance(weights, WeightScheme) else WeightScheme.uniform(weights)
    total = 0.0
    for tensor in model.weight_tensors():
        if tensor.role == "vectors":
            vectors = scheme.vector_format()
            per_element = vector_param_bytes(activations) if vectors is None else vectors.bytes_per_element
            total += tensor.elements * per_element
        else:
            fmt = scheme.format_for(tensor.role)
            total += tensor.count * fmt.tensor_bytes(tensor.elements, tensor.rows, tensor.columns)
    return total
