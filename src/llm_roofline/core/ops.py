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
8. **Recurrent state.** A recurrent mixer (short convolution, linear attention, state space) keeps a
   state per sequence whatever the context: a step reads it for each sequence that resumes from one
   (``resumed``: a decode step, a later chunk of a prompt) and writes it for every sequence, in the
   KV-cache format (its ``kv_*`` bytes). A one-token step runs the recurrent form (the state updated
   once per token); a longer one the chunked form: ``chunks`` = batch x ceil(q_len / C) blocks of C
   tokens, matrix products inside a block, the state carried from block to block. Padding of the last
   chunk is not counted (rows are the step's tokens); the C x C products of every chunk are (whole tiles).

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


ACTIVATION_FLOPS_PER_ELEMENT = {"silu": 4, "gelu_tanh": 9, "gelu": 5, "relu": 1, "swiglu_clamp": 9, "sigmoid": 4}
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
                shared: bool = False, shared_gate: bool = False) -> OpCost[Quantity]:
    """y = sum over the k chosen experts of routing weight x expert output: a multiply and an add each;
    ``shared``: the shared experts' output added too (one more read and add); ``shared_gate``: scaled first
    by the sigmoid of its gate logit (Qwen3-Next: 4 FLOPs per token, a multiply per element)."""
    # outputs (T, k, width), weights (T, k) [, shared (T, width) [, gate logit (T, 1)]] -> y (T, width)
    routed = tokens * experts_per_token
    return OpCost(
        flops=2 * routed * width + shared * tokens * width
        + shared_gate * tokens * (ACTIVATION_FLOPS_PER_ELEMENT["sigmoid"] + width),
        act_read_bytes=routed * width * act_bytes + routed * act_bytes + shared * tokens * width * act_bytes
        + shared_gate * tokens * act_bytes,
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


# --- recurrent mixers (convention 8): LFM2's short convolution, Gated DeltaNet, Mamba-2's SSD ---------------------


@register("gate", kind="elementwise")
def gate(elements: Quantity, act_bytes: float, function: str | None = None) -> OpCost[Quantity]:
    """y = x * g, or x * act(g) (``function``: Qwen3-Next's sigmoid output gate), over ``elements`` values:
    both operands read, one written (LFM2's B x and C y)."""
    # x (elements,), g (elements,) -> y (elements,)
    per_element = 1 + (0 if function is None else ACTIVATION_FLOPS_PER_ELEMENT[function])
    return OpCost(flops=per_element * elements, act_read_bytes=2 * elements * act_bytes,
                  act_write_bytes=elements * act_bytes)


@register("causal_conv", kind="conv")
def causal_conv(tokens: Quantity, resumed: Quantity, sequences: Quantity, channels: int, kernel: int,
                act_bytes: float, state_bytes: float, param_bytes: float, bias: bool = False) -> OpCost[Quantity]:
    """Depthwise causal convolution along the sequence: each channel of each token is a ``kernel``-tap dot
    product over its last k inputs (2k FLOPs, + 1 for a bias). The k - 1 inputs before the step come from
    the convolution's cache (read for each ``resumed`` sequence); the last k - 1 are written back for every
    sequence. The taps are weights kept unquantized (``param_bytes``), as llama.cpp keeps them."""
    # x (tokens, channels), cache (sequences, k - 1, channels), w (channels, k) -> y (tokens, channels)
    cache = (kernel - 1) * channels * state_bytes
    return OpCost(
        flops=2 * tokens * channels * kernel + bias * tokens * channels,
        weight_bytes=(kernel + bias) * channels * param_bytes,
        act_read_bytes=tokens * channels * act_bytes,
        act_write_bytes=tokens * channels * act_bytes,
        kv_read_bytes=resumed * cache,
        kv_write_bytes=sequences * cache,
    )


def _scan_rows(tokens: Quantity, recurrent_tokens: Quantity) -> Quantity:
    """The tokens a step scans in chunks: all of them but those of a one-token (recurrent) step."""
    return tokens - recurrent_tokens


@register("gated_delta_rule", kind="scan")
def gated_delta_rule(tokens: Quantity, recurrent_tokens: Quantity, chunks: Quantity, resumed: Quantity,
                     sequences: Quantity, key_heads: int, value_heads: int, key_dim: int, value_dim: int, chunk: int,
                     act_bytes: float, state_bytes: float) -> OpCost[Quantity]:
    """Gated DeltaNet's core (Qwen3-Next): per value head a key_dim x value_dim state S, per token
    S <- exp(g) S; S <- S + k (beta (v - S^T k))^T; o = S^T q (q and k L2-normalized, q scaled).

    FLOPs per value head (dk, dv the key and value head widths, C the chunk):
      every token            6 dk dv      S^T k, the rank-1 update, S^T q (in the chunked form: the three
                                          products with the carried state, k_cumdecay S, q S, k^T v_new)
                             + 9          beta = sigmoid(b) 4, g = -exp(A) softplus(a + dt_bias) 5
      recurrent tokens       dk dv + 2dv  the decay of S, v - S^T k and its scaling by beta
      chunked tokens         3dk + 3dv    beta k, beta v, q and k decayed, v_new, the output sum
      every chunk            4C^2 dk      beta k k^T and q k^T
                             + 2C^2 dv    the intra-chunk scores times v_new
                             + C(C-1)(dk + dv)  two unit-lower-triangular solves (the UT transform)
                             + 3C^2 + 2dk dv    the decay mask applied twice; the state decayed and updated
    and per key head and token 7 dk for the L2 norms of q and k (square, sum, scale; q's 1/sqrt(dk)).
    Bytes: q, k, v, g and beta read, o written; the state read for each resumed sequence and written for
    every sequence (cache format); the chunked form (flash-linear-attention's kernels) also writes and
    reads back each chunk's starting state, the C x C transform of each chunk and the w, u rows of each token.
    """
    # q, k (T, Hk, dk), v (T, Hv, dv), g, beta (T, Hv); S (sequences, Hv, dk, dv) -> o (T, Hv, dv)
    hk, hv, dk, dv, c = key_heads, value_heads, key_dim, value_dim, chunk
    chunked = _scan_rows(tokens, recurrent_tokens)
    state = hv * dk * dv
    flops = (hv * (tokens * (6 * dk * dv + 9) + recurrent_tokens * (dk * dv + 2 * dv) + chunked * (3 * dk + 3 * dv)
                   + chunks * (4 * c * c * dk + 2 * c * c * dv + c * (c - 1) * (dk + dv) + 3 * c * c + 2 * dk * dv))
             + hk * tokens * 7 * dk)
    intermediates = 2 * (chunks * hv * (dk * dv + c * c) + chunked * hv * (dk + dv)) * act_bytes
    return OpCost(
        flops=flops,
        act_read_bytes=tokens * (2 * hk * dk + hv * dv + 2 * hv) * act_bytes + intermediates / 2,
        act_write_bytes=tokens * hv * dv * act_bytes + intermediates / 2,
        kv_read_bytes=resumed * state * state_bytes,
        kv_write_bytes=sequences * state * state_bytes,
    )


@register("ssd_scan", kind="scan")
def ssd_scan(tokens: Quantity, recurrent_tokens: Quantity, chunks: Quantity, resumed: Quantity, sequences: Quantity,
             heads: int, head_dim: int, state_size: int, groups: int, chunk: int, act_bytes: float,
             state_bytes: float) -> OpCost[Quantity]:
    """Mamba-2's selective state space (SSD): per head a head_dim x state_size state h, per token
    h <- exp(dt A) h + dt x B^T, y = h C + D x (B and C shared by the heads of a group).

    FLOPs per head (P the head width, N the state size, C the chunk):
      every token            6 + 2P       dt = softplus(dt + bias) and exp(dt A); the D x skip
      recurrent tokens       2PN          h C
                             + 3PN + N    h exp(dt A), dt B times x, their sum
      chunked tokens         4PN          each chunk's state (B decayed)^T x, and C times the carried state
                             + N + 3P     B decayed, x dt, the carried part decayed, the two parts summed
      every chunk            2C^2 P       the masked intra-chunk scores times x
                             + 3C^2 + 2PN the decay mask (exp of segment sums, applied); the state passed on
    and per group and chunk 2C^2 N for C B^T (computed once per group, as mamba_ssm's kernels do).
    Bytes: x, B, C and dt read, y written; the state read for each resumed sequence and written for every
    sequence (cache format); the chunked form (mamba_ssm's kernels) also writes and reads back each
    chunk's state and each chunk's C B^T.
    """
    # x (T, H, P), B, C (T, G, N), dt (T, H); h (sequences, H, P, N) -> y (T, H, P)
    p, n, c = head_dim, state_size, chunk
    chunked = _scan_rows(tokens, recurrent_tokens)
    state = heads * p * n
    flops = (heads * (tokens * (6 + 2 * p) + recurrent_tokens * (5 * p * n + n) + chunked * (4 * p * n + n + 3 * p)
                      + chunks * (2 * c * c * p + 3 * c * c + 2 * p * n))
             + groups * chunks * 2 * c * c * n)
    intermediates = 2 * chunks * (state + groups * c * c) * act_bytes
    return OpCost(
        flops=flops,
        act_read_bytes=tokens * (heads * p + 2 * groups * n + heads) * act_bytes + intermediates / 2,
        act_write_bytes=tokens * heads * p * act_bytes + intermediates / 2,
        kv_read_bytes=resumed * state * state_bytes,
        kv_write_bytes=sequences * state * state_bytes,
    )


@register("gated_norm", kind="norm")
def gated_norm(tokens: Quantity, width: int, weight_width: int, act_bytes: float,
               param_bytes: float) -> OpCost[Quantity]:
    """RMSNorm over groups of channels, times SiLU of the gate z (Qwen3-Next's and Mamba-2's gated norm):
    4 + 4 + 1 FLOPs per element; y and z read, the output written, the weight read (``weight_width``:
    Mamba-2's spans the width, Qwen3-Next's one head, shared by every head)."""
    # y (tokens, width), z (tokens, width) -> (tokens, width)
    elements = tokens * width
    return OpCost(
        flops=(NORM_FLOPS_PER_ELEMENT["rmsnorm"] + ACTIVATION_FLOPS_PER_ELEMENT["silu"] + 1) * elements,
        weight_bytes=weight_width * param_bytes,
        act_read_bytes=2 * elements * act_bytes,
        act_write_bytes=elements * act_bytes,
    )
