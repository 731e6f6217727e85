"""The registry of operator cost formulas: every FLOP and byte the analyzer counts comes from here.

Counting conventions, stated once:

1. **FLOP = 2 x MAC** for every matrix product, lm_head included. A bias add is one FLOP per output
   element, counted in the projection that owns the bias.
2. **Bytes are compulsory DRAM traffic** of one kernel: each input read once, each output written
   once (perfect on-chip reuse inside an operator, none across operators unless they are fused).
   Bytes are split into weights read, activations read and written, KV cache read and written.
3. **Elementwise FLOPs** count each arithmetic operation and each transcendental (exp, tanh, erf,
   rsqrt) as one FLOP. Per element: residual add 1; RMSNorm 4 (square, accumulate, scale by the
   inverse RMS, scale by the weight); LayerNorm 7 (mean, subtract, square, accumulate, normalize,
   weight, bias); softmax 5 (max, subtract, exp, sum, divide); RoPE 3 (x cos + rotate(x) sin);
   SiLU 4 (negate, exp, add 1, divide); tanh-GELU 9; erf-GELU 5; ReLU 1; the gated multiply of
   SwiGLU/GeGLU 1 more; gpt-oss's clamped SwiGLU 9 (clamp the gate 1, clamp up 2, scale the gate 1,
   sigmoid 4, up + 1 1) and the gated multiply 1; soft-capping 3 (cap x tanh(x / cap): divide, tanh,
   multiply); a scalar multiply 1 (Granite's embedding, residual and logit multipliers).
4. **Attention pairs.** ``pairs`` is the number of (query, key) scores per sequence and head. The
   full count is q_len x kv_len; with causal skipping (as efficient kernels do) a query only meets
   the keys at or before it: q_len x past + q_len (q_len + 1) / 2.
5. **GQA/MQA.** K and V have ``kv_heads`` heads; each is read once for its whole group of query
   heads. Q, the scores and the output always have ``heads`` heads.
6. **Sliding window.** With a window of W keys a query at position p meets the keys in (p - W, p]:
   a step reads min(kv_len, W + q_len - 1) cached keys, and causal pairs are counted inside the window.
7. **Mixture of experts.** Each token runs through ``experts_per_token`` (k) of ``experts`` (E) expert
   MLPs: FLOPs are those of T·k token rows. Weights are read once per *distinct* expert a step touches;
   under uniform, independent top-k routing that is E (1 - (1 - k/E)^T) experts in expectation.

Every formula is a pure function of shapes and byte sizes made of arithmetic only, so it evaluates
on numpy arrays (a grid of configurations) exactly as on Python numbers. And every formula is
**affine in the counts it is given** — rows (tokens), key rows read, scores computed, experts touched:
work scales with how many of each a kernel processes. ``transformer.StepPlan`` relies on this (and
checks it when it builds a plan): it evaluates the formulas once per model and set of formats, as
coefficients of the counts, and every later step is a matrix-vector product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar

from llm_roofline.core.architecture import NORM_PARAMS_PER_CHANNEL
from llm_roofline.core.formats import NumberFormat
from llm_roofline.core.units import Array, Quantity, Scalar


class OpCost(NamedTuple, Generic[Quantity]):
    """The work of one operator instance: FLOPs and the DRAM bytes it moves, by category.

    ``OpCost[Scalar]``: one step's figures. ``OpCost[Array]``: a grid's, where a figure that does not
    depend on the counts (a weight read) stays a Scalar and broadcasts.
    A named tuple: immutable, and cheap to build (the analyzer makes thousands per millisecond).
    """

    flops: Quantity | Scalar
    weight_bytes: Quantity | Scalar = 0
    act_read_bytes: Quantity | Scalar = 0
    act_write_bytes: Quantity | Scalar = 0
    kv_read_bytes: Quantity | Scalar = 0
    kv_write_bytes: Quantity | Scalar = 0

    @property
    def bytes(self) -> Quantity | Scalar:
        return (self.weight_bytes + self.act_read_bytes + self.act_write_bytes
                + self.kv_read_bytes + self.kv_write_bytes)


# A formula is generic over the kind of its counts: it returns a Scalar or an Array OpCost.
CostFormula: TypeAlias = Callable[..., "OpCost[Scalar] | OpCost[Array]"]
_F = TypeVar("_F", bound=CostFormula)


def _nothing_kept(cost: OpCost[Any]) -> Any:
    return cost.act_read_bytes * 0


@dataclass(frozen=True, slots=True)
class Formula:
    """A registered cost formula, the kind of operator it prices, and — for an elementwise kind — the
    activation reads it keeps when fused into its neighbouring matmul (``fused_cost``)."""

    name: str
    kind: str
    cost: CostFormula
    fused_reads: Callable[[OpCost[Any]], Any] = _nothing_kept


FORMULAS: dict[str, Formula] = {}
_BY_FUNCTION: dict[CostFormula, Formula] = {}
# Kinds whose arithmetic runs on the matrix units (the activations' precision); the rest are elementwise work.
MATMUL_KINDS = ("matmul", "attention")
# Kinds that elementwise fusion (Workload.fuse = "elementwise") folds into the neighbouring matmul's
# prologue or epilogue: a norm before a projection, RoPE and the gated activation after one, the
# residual add, soft-capping, scaling and the MoE combine after one. Not the softmax of unfused
# attention: folding it into its matmuls is FlashAttention, a workload option of its own.
FUSIBLE_KINDS = ("elementwise", "norm", "activation")


def register(name: str, kind: str,
             fused_reads: Callable[[OpCost[Any]], Any] = _nothing_kept) -> Callable[[_F], _F]:
    """Add a formula to the registry; registering a name twice is an error."""

    def add(cost: _F) -> _F:
        if name in FORMULAS:
            raise ValueError(f"cost formula {name!r} is registered twice")
        FORMULAS[name] = _BY_FUNCTION[cost] = Formula(name, kind, cost, fused_reads)
        return cost

    return add


def fused_cost(formula: CostFormula, cost: OpCost[Quantity]) -> OpCost[Quantity]:
    """An elementwise operator run inside its neighbouring matmul: its input arrives in the matmul's
    registers and its output leaves with the matmul's own write, so its activation reads and writes are
    no DRAM traffic — except what it reads that the matmul does not (a residual add's residual stream).
    FLOPs and weight bytes (a norm's weights) stay."""
    entry = _BY_FUNCTION[formula]
    if entry.kind not in FUSIBLE_KINDS:
        return cost
    return cost._replace(act_read_bytes=entry.fused_reads(cost), act_write_bytes=cost.act_write_bytes * 0)


def kind_of(formula: CostFormula) -> str:
    """The operator kind of a registered formula (an unregistered function has none: KeyError)."""
    return _BY_FUNCTION[formula].kind


ACTIVATION_FLOPS_PER_ELEMENT = {"silu": 4, "gelu_tanh": 9, "gelu": 5, "relu": 1, "swiglu_clamp": 9}
NORM_FLOPS_PER_ELEMENT = {"rmsnorm": 4, "layernorm": 7}
SOFTMAX_FLOPS_PER_ELEMENT = 5
SOFTCAP_FLOPS_PER_ELEMENT = 3
ROPE_FLOPS_PER_ELEMENT = 3


@register("linear", kind="matmul")
def linear(tokens: Quantity, in_features: int, out_features: int, weight: NumberFormat,
           act_bytes: float, out_bytes: float, bias: bool = False, to_kv_cache: bool = False,
           bias_bytes: float | None = None) -> OpCost[Quantity]:
    """y = x W (+ b): a projection of ``tokens`` rows; its output goes to activations or the KV cache.

    ``bias_bytes``: bytes per bias element (default: ``act_bytes``).
    """
    # x (tokens, in) @ W (in, out) -> y (tokens, out)
    flops = 2 * tokens * in_features * out_features * weight.density + bias * tokens * out_features
    per_bias = act_bytes if bias_bytes is None else bias_bytes
    weight_bytes = (weight.tensor_bytes(in_features * out_features, out_features, in_features)
                    + bias * out_features * per_bias)
    written = tokens * out_features * out_bytes
    return OpCost(
        flops=flops,
        weight_bytes=weight_bytes,
        act_read_bytes=tokens * in_features * act_bytes,
        act_write_bytes=0 if to_kv_cache else written,
        kv_write_bytes=written if to_kv_cache else 0,
    )


@register("attention_scores", kind="matmul")
def attention_scores(rows: Quantity, keys: Quantity, scores: Quantity, heads: int, kv_heads: int, head_dim: int,
                     act_bytes: float, kv_bytes: float, keys_from_cache: bool = True) -> OpCost[Quantity]:
    """S = Q K^T over a batch: ``rows`` query rows (batch x q_len), ``keys`` cached key rows read
    (batch x keys per sequence), ``scores`` (query, key) pairs computed per head (batch x pairs).

    ``keys_from_cache``: False when the keys were decompressed this step (MLA's naive form): activations.
    """
    # Q (B, H, q, hd) @ K^T (B, Hkv, hd, kv) -> S (B, H, q, kv), the scores of the q x kv computed
    key_bytes = keys * kv_heads * head_dim * kv_bytes
    return OpCost(
        flops=2 * heads * scores * head_dim,
        act_read_bytes=rows * heads * head_dim * act_bytes + (0 if keys_from_cache else key_bytes),
        kv_read_bytes=key_bytes if keys_from_cache else 0,
        act_write_bytes=heads * scores * act_bytes,
    )


@register("softmax", kind="softmax")
def softmax(scores: Quantity, heads: int, act_bytes: float) -> OpCost[Quantity]:
    """P = softmax(S / sqrt(hd)) row by row over ``scores`` entries per head: read, and the probabilities written."""
    # S (B, H, q, kv) -> P (B, H, q, kv)
    elements = heads * scores
    return OpCost(
        flops=SOFTMAX_FLOPS_PER_ELEMENT * elements,
        act_read_bytes=elements * act_bytes,
        act_write_bytes=elements * act_bytes,
    )


@register("attention_values", kind="matmul")
def attention_values(rows: Quantity, keys: Quantity, scores: Quantity, heads: int, kv_heads: int, head_dim: int,
                     act_bytes: float, kv_bytes: float, value_dim: int | None = None,
                     keys_from_cache: bool = True) -> OpCost[Quantity]:
    """O = P V: probabilities read back, V read from the cache, the per-head outputs written.

    ``value_dim``: the value width per head when it differs from the query/key width (MLA);
    ``keys_from_cache``: False when the values were decompressed this step (read as activations).
    """
    # P (B, H, q, kv) @ V (B, Hkv, kv, hv) -> O (B, H, q, hv)
    width = head_dim if value_dim is None else value_dim
    value_bytes = keys * kv_heads * width * kv_bytes
    return OpCost(
        flops=2 * heads * scores * width,
        act_read_bytes=heads * scores * act_bytes + (0 if keys_from_cache else value_bytes),
        kv_read_bytes=value_bytes if keys_from_cache else 0,
        act_write_bytes=rows * heads * width * act_bytes,
    )


@register("flash_attention", kind="attention")
def flash_attention(rows: Quantity, keys: Quantity, scores: Quantity, heads: int, kv_heads: int, head_dim: int,
                    act_bytes: float, kv_bytes: float, softcapped: bool = False, value_dim: int | None = None,
                    values_share_keys: bool = False, sink_rows: Quantity | Scalar = 0,
                    keys_from_cache: bool = True) -> OpCost[Quantity]:
    """Fused attention (FlashAttention): scores and probabilities never leave the chip.

    FLOPs are those of Q K^T, softmax and P V composed (and the scores' soft-capping, ``softcapped``;
    one more softmax logit per query row and head for ``sink_rows`` rows with attention sinks).
    Bytes: Q read once, K and V read once per KV head (the query blocks of a head, and the query
    heads of a GQA group, share them through on-chip memory and the last-level cache), O written once.
    ``values_share_keys``: V is the first ``value_dim`` channels of K (absorbed MLA), read with K;
    ``keys_from_cache``: False when K and V were decompressed this step (read as activations).
    """
    shape = (rows, keys, scores, heads, kv_heads, head_dim, act_bytes, kv_bytes)
    qk, pv = attention_scores(*shape), attention_values(*shape, value_dim=value_dim)
    capping = softcapped * softcap(heads * scores, act_bytes).flops
    kv_read = qk.kv_read_bytes + (0 if values_share_keys else pv.kv_read_bytes)  # K and V, once
    return OpCost(
        flops=qk.flops + softmax(scores + sink_rows, heads, act_bytes).flops + capping + pv.flops,
        act_read_bytes=rows * heads * head_dim * act_bytes + (0 if keys_from_cache else kv_read),
        kv_read_bytes=kv_read if keys_from_cache else 0,
        act_write_bytes=pv.act_write_bytes,
    )


@register("head_linear", kind="matmul")
def head_linear(tokens: Quantity, heads: int, in_features: int, out_features: int, weight: NumberFormat,
                act_bytes: float, out_bytes: float, stored_rows: int | None = None) -> OpCost[Quantity]:
    """Each head's own in x out matrix applied to that head's slice (MLA's absorbed kv_b_proj halves).

    ``stored_rows``: the rows the weights are stored in (their scales), when not heads x out.
    """
    # x (tokens, H, in) @ W (H, in, out) -> y (tokens, H, out)
    elements = heads * in_features * out_features
    rows = heads * out_features if stored_rows is None else stored_rows
    return OpCost(
        flops=2 * tokens * elements,
        weight_bytes=weight.tensor_bytes(elements, rows),
        act_read_bytes=tokens * heads * in_features * act_bytes,
        act_write_bytes=tokens * heads * out_features * out_bytes,
    )


@register("latent_decompress", kind="matmul")
def latent_decompress(keys: Quantity, heads: int, rank: int, rope_dim: int, nope_dim: int, value_dim: int,
                      weight: NumberFormat, act_bytes: float, kv_bytes: float) -> OpCost[Quantity]:
    """MLA's naive form: the cached latents of ``keys`` rows through kv_b_proj into every head's key and
    value; the shared RoPE key is copied into each head's key (composed from ``linear``)."""
    # c (keys, rank) @ W (rank, H (nope + v)) -> K_nope, V; k_rope (keys, rope) -> K (keys, H, nope + rope)
    up = linear(keys, rank, heads * (nope_dim + value_dim), weight, kv_bytes, act_bytes)
    return up._replace(act_read_bytes=0, kv_read_bytes=up.act_read_bytes + keys * rope_dim * kv_bytes,
                       act_write_bytes=up.act_write_bytes + keys * heads * rope_dim * act_bytes)


@register("softcap", kind="elementwise")
def softcap(elements: Quantity, act_bytes: float) -> OpCost[Quantity]:
    """y = cap x tanh(x / cap) over ``elements`` values (Gemma-2's scores and logits): read and written."""
    # x (elements,) -> y (elements,)
    return OpCost(
        flops=SOFTCAP_FLOPS_PER_ELEMENT * elements,
        act_read_bytes=elements * act_bytes,
        act_write_bytes=elements * act_bytes,
    )


@register("norm", kind="norm")
def norm(tokens: Quantity, width: int, kind: str, act_bytes: float, param_bytes: float) -> OpCost[Quantity]:
    """RMSNorm or LayerNorm over ``width`` channels, with its weight (and LayerNorm's bias)."""
    # x (tokens, width) -> y (tokens, width)
    return OpCost(
        flops=NORM_FLOPS_PER_ELEMENT[kind] * tokens * width,
        weight_bytes=NORM_PARAMS_PER_CHANNEL[kind] * width * param_bytes,
        act_read_bytes=tokens * width * act_bytes,
        act_write_bytes=tokens * width * act_bytes,
    )


@register("activation", kind="activation")
def activation(tokens: Quantity, width: int, function: str, gated: bool, act_bytes: float) -> OpCost[Quantity]:
    """act(x), or act(gate) * up for a gated MLP (SwiGLU, GeGLU): both inputs are read."""
    # gate (tokens, width) [, up (tokens, width)] -> h (tokens, width)
    elements = tokens * width
    return OpCost(
        flops=(ACTIVATION_FLOPS_PER_ELEMENT[function] + gated) * elements,
        act_read_bytes=(1 + gated) * elements * act_bytes,
        act_write_bytes=elements * act_bytes,
    )


@register("residual_add", kind="elementwise", fused_reads=lambda cost: cost.act_write_bytes)  # the residual
def residual_add(tokens: Quantity, width: int, act_bytes: float, branches: int = 1,
                 scaled: bool = False) -> OpCost[Quantity]:
    """x + f(x): the residual and ``branches`` sublayer outputs read (two in a parallel block), one written;
    ``scaled``: each branch multiplied by a constant first (Granite's residual multiplier)."""
    # x (tokens, width) + y (tokens, width) [+ z] -> (tokens, width)
    elements = tokens * width
    return OpCost(flops=branches * (1 + scaled) * elements, act_read_bytes=(1 + branches) * elements * act_bytes,
                  act_write_bytes=elements * act_bytes)


@register("scale", kind="elementwise")
def scale(elements: Quantity, act_bytes: float) -> OpCost[Quantity]:
    """y = x * c (or x / c) over ``elements`` values: read and written (Granite's logit scaling)."""
    return OpCost(flops=elements, act_read_bytes=elements * act_bytes, act_write_bytes=elements * act_bytes)


@register("rope", kind="elementwise", fused_reads=lambda cost: cost.act_read_bytes - cost.act_write_bytes)  # cos, sin
def rope(tokens: Quantity, heads: int, kv_heads: int, head_dim: int, act_bytes: float) -> OpCost[Quantity]:
    """Rotary position embedding applied to Q and the new K, with its cos/sin rows read."""
    # q (tokens, H, hd), k (tokens, Hkv, hd) rotated in place; cos, sin (tokens, hd)
    elements = tokens * (heads + kv_heads) * head_dim
    return OpCost(
        flops=ROPE_FLOPS_PER_ELEMENT * elements,
        act_read_bytes=elements * act_bytes + 2 * tokens * head_dim * act_bytes,
        act_write_bytes=elements * act_bytes,
    )


@register("embedding", kind="embedding")
def embedding(tokens: Quantity, width: int, table: NumberFormat, act_bytes: float,
              learned_positions: bool = False, scaled: bool = False,
              positions: NumberFormat | None = None) -> OpCost[Quantity]:
    """Token embedding: one table row gathered per token (plus a position row and add for GPT-2, its
    table in ``positions``' format, default ``table``'s; and Gemma's multiply by sqrt(hidden))."""
    # ids (tokens,) -> x (tokens, width)
    elements = tokens * width
    position_table = table if positions is None else positions
    rows = table.tensor_bytes(elements, tokens) + learned_positions * position_table.tensor_bytes(elements, tokens)
    return OpCost(
        flops=(learned_positions + scaled) * elements,
        weight_bytes=rows,
        act_write_bytes=elements * act_bytes,
    )


def expected_experts_touched(tokens: Quantity, experts: int, experts_per_token: int) -> Quantity:
    """Distinct experts that ``tokens`` tokens route to, in expectation: E (1 - (1 - k/E)^T).

    Assumes uniform, independent routing: each token picks k of the E experts, so a given expert is
    missed by one token with probability 1 - k/E and by all T tokens with probability (1 - k/E)^T.
    Real routers are skewed, which touches fewer experts; this is the upper estimate of weight reads.
    """
    # float ** float is typed Any (a negative base could make it complex); this base is in [0, 1).
    missed_by_all: Quantity = (1 - experts_per_token / experts) ** tokens
    return experts * (1 - missed_by_all)


@register("expert_linear", kind="matmul")
def expert_linear(tokens: Quantity, experts_per_token: int, experts_touched: Quantity, in_features: int,
                  out_features: int, weight: NumberFormat, act_bytes: float, out_bytes: float, bias: bool = False,
                  bias_bytes: float | None = None) -> OpCost[Quantity]:
    """One projection of an MoE layer's experts: T·k token rows in all, each distinct expert's
    weights (and bias) read once (composed from ``linear`` over the routed rows)."""
    # x (T·k, in), rows grouped by expert @ W_e (in, out) (+ b_e) for each touched e -> y (T·k, out)
    routed = linear(tokens * experts_per_token, in_features, out_features, weight, act_bytes, out_bytes, bias,
                    bias_bytes=bias_bytes)
    return routed._replace(weight_bytes=experts_touched * routed.weight_bytes)


@register("moe_combine", kind="elementwise")
def moe_combine(tokens: Quantity, experts_per_token: int, width: int, act_bytes: float,
                shared: bool = False) -> OpCost[Quantity]:
    """y = sum over the k chosen experts of routing weight x expert output: a multiply and an add each;
    ``shared``: the shared experts' output added too (one more read and add)."""
    # outputs (T, k, width), weights (T, k) [, shared (T, width)] -> y (T, width)
    routed = tokens * experts_per_token
    return OpCost(
        flops=2 * routed * width + shared * tokens * width,
        act_read_bytes=routed * width * act_bytes + routed * act_bytes + shared * tokens * width * act_bytes,
        act_write_bytes=tokens * width * act_bytes,
    )


@register("gemm", kind="matmul")
def gemm(batch: Quantity, m: Quantity, n: Quantity, k: Quantity, a_bytes: float, b_bytes: float,
         c_bytes: float, shared_b: bool = False) -> OpCost[Quantity]:
    """A (batched) matrix product C = A B with no reuse across calls (chapter 2.1.2 and 2.4.1).

    ``shared_b``: one B for every batch entry (a weight matrix), read once.
    """
    # A (batch, m, k) @ B (batch or 1, k, n) -> C (batch, m, n)
    b_copies = 1 if shared_b else batch
    return OpCost(
        flops=2 * batch * m * n * k,
        act_read_bytes=batch * m * k * a_bytes + b_copies * k * n * b_bytes,
        act_write_bytes=batch * m * n * c_bytes,
    )
