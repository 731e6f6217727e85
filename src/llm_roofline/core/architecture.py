"""The architecture description: one record per kind of decoder layer, from which everything is derived.

A model is an embedding, a stack of layers and an output head (``models.ModelSpec``). Each layer is a
``Block``: its token mixer — an ``Attention`` (multi-head with grouped KV heads, or DeepSeek's multi-head
latent attention), or a recurrent mixer whose state does not grow with the context (a ``ShortConv``,
LFM2's gated short convolution; a ``LinearAttention``, Qwen3-Next's Gated DeltaNet; a ``StateSpace``,
Mamba-2's SSD), or both side by side (Falcon-H1) — an ``MLP`` (dense, or a mixture of experts with
optional shared experts; none in a pure Mamba-2 stack), and where its norms sit. Layers that differ —
sliding-window and global attention alternating, dense layers before MoE layers, MoE every other layer,
layers without RoPE, convolution layers between attention layers — are simply different ``Block``
values in the model's ``layers`` tuple. From this one description come:

- the weight tensors with their roles (``Block.tensors``) and so the parameter count,
- the KV cache a layer holds per token (``Attention.cache_elements_per_token``) and the recurrent state
  it holds per sequence (``Block.state_elements``),
- the attention span that sets how many keys a query reads (``Attention.span``), and the chunk a
  recurrent mixer's prefill scans in (``LinearAttention.chunk``, ``StateSpace.chunk``),
- and the operator list of a step (``transformer.step_ops``: each distinct block priced once).

Role names — the weight tensors a number format can be given to — are the constants below; operator
names are ``layer.`` + the role for matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from llm_roofline.core import limits
from llm_roofline.core.errors import InputError, shown
from llm_roofline.core.limits import MODEL

# --- weight tensor roles ----------------------------------------------------------------------------
EMBED = "embed"
POSITIONS = "embed.positions"
Q_PROJ = "attn.q_proj"
K_PROJ = "attn.k_proj"
V_PROJ = "attn.v_proj"
O_PROJ = "attn.o_proj"
Q_A_PROJ = "attn.q_a_proj"  # MLA: d -> the query's low-rank latent
Q_B_PROJ = "attn.q_b_proj"  # MLA: latent -> every head's query
KV_A_PROJ = "attn.kv_a_proj"  # MLA: d -> the cached KV latent and the shared RoPE key
KV_B_PROJ = "attn.kv_b_proj"  # MLA: latent -> every head's key (no-RoPE part) and value
ROUTER = "mlp.router"
GATE_PROJ = "mlp.gate_proj"
UP_PROJ = "mlp.up_proj"
DOWN_PROJ = "mlp.down_proj"
FC = "mlp.fc"  # a plain (ungated) MLP's two matrices
PROJ = "mlp.proj"
EXPERT_GATE_PROJ = "mlp.experts.gate_proj"
EXPERT_UP_PROJ = "mlp.experts.up_proj"
EXPERT_DOWN_PROJ = "mlp.experts.down_proj"
SHARED_GATE_PROJ = "mlp.shared.gate_proj"
SHARED_UP_PROJ = "mlp.shared.up_proj"
SHARED_DOWN_PROJ = "mlp.shared.down_proj"
SHARED_EXPERT_GATE = "mlp.shared_expert_gate"  # Qwen3-Next: d -> 1, a sigmoid gate on the shared expert's output
CONV_IN_PROJ = "conv.in_proj"  # LFM2's short convolution: d -> 3d (the gates B and C, the input x)
CONV_OUT_PROJ = "conv.out_proj"
LINEAR_QKVZ_PROJ = "linear_attn.in_proj_qkvz"  # Gated DeltaNet: d -> queries, keys, values and the output gate z
LINEAR_BA_PROJ = "linear_attn.in_proj_ba"  # Gated DeltaNet: d -> each value head's write strength b and decay a
LINEAR_OUT_PROJ = "linear_attn.out_proj"
SSM_IN_PROJ = "ssm.in_proj"  # Mamba-2: d -> the gate z, the scanned x, B, C and each head's step dt
SSM_OUT_PROJ = "ssm.out_proj"
LM_HEAD = "lm_head"
MTP_EH_PROJ = "mtp.eh_proj"  # DeepSeek's multi-token prediction: [norm(embedding), norm(hidden)] (2d) -> d
VECTORS = "vectors"  # every norm weight, bias and attention sink: kept unquantized

WEIGHT_ROLES = (
    EMBED, POSITIONS, Q_PROJ, K_PROJ, V_PROJ, O_PROJ, Q_A_PROJ, Q_B_PROJ, KV_A_PROJ, KV_B_PROJ,
    ROUTER, GATE_PROJ, UP_PROJ, DOWN_PROJ, FC, PROJ, EXPERT_GATE_PROJ, EXPERT_UP_PROJ, EXPERT_DOWN_PROJ,
    SHARED_GATE_PROJ, SHARED_UP_PROJ, SHARED_DOWN_PROJ, SHARED_EXPERT_GATE, CONV_IN_PROJ, CONV_OUT_PROJ,
    LINEAR_QKVZ_PROJ, LINEAR_BA_PROJ, LINEAR_OUT_PROJ, SSM_IN_PROJ, SSM_OUT_PROJ, LM_HEAD, MTP_EH_PROJ, VECTORS,
)
EXPERT_ROLES = (EXPERT_GATE_PROJ, EXPERT_UP_PROJ, EXPERT_DOWN_PROJ)
# The decoder layers' projection matrices: what 2:4 structured sparsity prunes (as SparseGPT and
# NVIDIA's ASP do). The embedding, the output head, the router and the MTP projection stay dense.
LAYER_MATRIX_ROLES = (
    Q_PROJ, K_PROJ, V_PROJ, O_PROJ, Q_A_PROJ, Q_B_PROJ, KV_A_PROJ, KV_B_PROJ, GATE_PROJ, UP_PROJ, DOWN_PROJ, FC,
    PROJ, EXPERT_GATE_PROJ, EXPERT_UP_PROJ, EXPERT_DOWN_PROJ, SHARED_GATE_PROJ, SHARED_UP_PROJ, SHARED_DOWN_PROJ,
    CONV_IN_PROJ, CONV_OUT_PROJ, LINEAR_QKVZ_PROJ, LINEAR_BA_PROJ, LINEAR_OUT_PROJ, SSM_IN_PROJ, SSM_OUT_PROJ,
)

NORMS = ("rmsnorm", "layernorm")
NORM_PARAMS_PER_CHANNEL = {"rmsnorm": 1, "layernorm": 2}
ACTIVATIONS = ("silu", "gelu", "gelu_tanh", "relu", "swiglu_clamp")
QK_NORMS = ("head", "full", "l2")  # per head (head_dim wide), over all heads at once (OLMo-2), weightless L2

# An attention span: which keys a query may read. ("full", 0); ("window", W): the last W positions;
# ("chunk", C): the positions of its own C-token chunk (Llama 4).
Span = tuple[str, int]
FULL: Span = ("full", 0)


class WeightTensor(NamedTuple):
    """A stored weight tensor: its role, instances (layers x experts), elements per instance, and the
    output rows and input columns that carry per-row or per-column quantization data.

    ``row_length`` is ggml's ``ne[0]``: the elements of one stored row (a matrix's input channels, an
    embedding's width), which must be a whole number of a block format's blocks.
    """

    role: str
    instances: int
    elements: int
    rows: int
    columns: int
    row_length: int


def matrix(role: str, instances: int, n_in: int, n_out: int) -> WeightTensor:
    """A projection's weight: ``n_out`` rows of ``n_in`` inputs."""
    return WeightTensor(role, instances, n_in * n_out, n_out, n_in, n_in)


def _flags(where: str, record: object, labels: tuple[str, ...]) -> None:
    """Refuse a switch that is not a bool (they count as 0 or 1 in the arithmetic: "yes" * 3 is text)."""
    for label in labels:
        if not isinstance(getattr(record, label), bool):
            raise InputError(f"{where}: {label} must be True or False, got {shown(getattr(record, label))}")


@dataclass(frozen=True, slots=True)
class Attention:
    """One layer's attention.

    Multi-head attention with ``kv_heads`` K/V heads (GQA; MQA at 1), or, when ``kv_lora_rank`` is set,
    DeepSeek's multi-head latent attention (MLA): the cache holds one ``kv_lora_rank``-wide latent and
    one ``qk_rope_head_dim``-wide RoPE key per token, from which every head's key (``head_dim`` =
    no-RoPE part + RoPE part) and value (``v_head_dim``) are decompressed.
    """

    heads: int
    kv_heads: int
    head_dim: int  # query/key width per head (MLA: qk_nope_head_dim + qk_rope_head_dim)
    qkv_bias: bool = False
    out_bias: bool = False
    qk_norm: str | None = None  # "head", "full" or "l2" (see QK_NORMS); None: no query/key norm
    rope_dim: int | None = None  # rotary channels per head: None = all of head_dim; 0 = no RoPE (NoPE layer)
    window: int | None = None  # sliding window: the last W positions
    chunk: int | None = None  # chunked attention: the positions of the query's own chunk
    sinks: bool = False  # a learned logit per head joins every softmax (gpt-oss)
    softcap: float | None = None  # scores become cap x tanh(scores / cap) (Gemma-2)
    q_lora_rank: int | None = None  # MLA: the query's low-rank latent; None: a full q projection
    kv_lora_rank: int | None = None  # MLA: set for latent attention
    qk_rope_head_dim: int = 0  # MLA: the RoPE part of head_dim, shared by every head's key
    v_head_dim: int = 0  # MLA: the value width per head
    output_gate: bool = False  # q_proj also gives a gate per channel: o x sigmoid(gate) before o_proj (Qwen3-Next)

    def validate(self, where: str) -> None:
        prefix = f"{where}: "
        for label in ("heads", "kv_heads", "head_dim"):
            limits.count(label, getattr(self, label), MODEL[label], prefix)
        if self.heads % self.kv_heads:
            raise InputError(f"{prefix}num_attention_heads ({self.heads}) must be a multiple of "
                             f"num_key_value_heads ({self.kv_heads})")
        _flags(where, self, ("qkv_bias", "out_bias", "sinks", "output_gate"))
        if self.output_gate and self.kv_lora_rank is not None:
            raise InputError(f"{prefix}an output gate is modelled for multi-head attention, not latent attention")
        if self.qk_norm is not None and self.qk_norm not in QK_NORMS:
            raise InputError(f"{prefix}qk_norm must be one of {', '.join(QK_NORMS)} or None, got {shown(self.qk_norm)}")
        if self.rope_dim is not None:
            limits.count("rope_dim", self.rope_dim, MODEL["rotary_dims"], prefix)
            if self.rope_dim > self.head_dim:
                raise InputError(f"{prefix}rope_dim ({self.rope_dim}) exceeds head_dim ({self.head_dim})")
        for label, limit in (("window", "window"), ("chunk", "window"), ("q_lora_rank", "lora_rank"),
                             ("kv_lora_rank", "lora_rank")):
            if getattr(self, label) is not None:
                limits.count(label, getattr(self, label), MODEL[limit], prefix)
        if self.window is not None and self.chunk is not None:
            raise InputError(f"{prefix}a layer has a sliding window or chunked attention, not both")
        if self.softcap is not None:
            limits.figure("attn_logit_softcapping", self.softcap, MODEL["softcap"], prefix)
        if self.is_mla:
            limits.count("qk_rope_head_dim", self.qk_rope_head_dim, MODEL["head_dim"], prefix)
            limits.count("v_head_dim", self.v_head_dim, MODEL["head_dim"], prefix)
            if self.qk_rope_head_dim >= self.head_dim:
                raise InputError(f"{prefix}qk_rope_head_dim ({self.qk_rope_head_dim}) must be less than the "
                                 f"query/key head width ({self.head_dim})")

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def q_size(self) -> int:
        """Width of all query heads together."""
        return self.heads * self.head_dim

    @property
    def q_proj_size(self) -> int:
        """Width of q_proj's output: the queries, and as many gate channels with an output gate."""
        return (1 + self.output_gate) * self.q_size

    @property
    def kv_size(self) -> int:
        """Width of one of K or V over the KV heads (MHA/GQA; for MLA the decompressed per-head keys)."""
        return self.kv_heads * self.head_dim

    @property
    def out_size(self) -> int:
        """Width of the attention output that o_proj reads: heads x value width."""
        return self.heads * (self.v_head_dim if self.is_mla else self.head_dim)

    @property
    def nope_head_dim(self) -> int:
        """MLA: the part of each head's key decompressed from the latent (no RoPE)."""
        return self.head_dim - self.qk_rope_head_dim

    @property
    def rotary_dim(self) -> int:
        """Channels per head that RoPE rotates (MLA: the decoupled RoPE part)."""
        if self.is_mla:
            return self.qk_rope_head_dim
        return self.head_dim if self.rope_dim is None else self.rope_dim

    @property
    def span(self) -> Span:
        if self.window is not None:
            return ("window", self.window)
        if self.chunk is not None:
            return ("chunk", self.chunk)
        return FULL

    @property
    def cache_elements_per_token(self) -> int:
        """Elements the KV cache holds per token of context: K and V of every KV head, or MLA's latent."""
        if self.is_mla:
            assert self.kv_lora_rank is not None
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.kv_size

    def tensors(self, d: int, count: int, norm_channel_params: int) -> tuple[list[WeightTensor], int]:
        """(the matrices, the vector parameters) of ``count`` layers of this attention."""
        heads = self.heads
        if self.is_mla:
            assert self.kv_lora_rank is not None
            rank, rope = self.kv_lora_rank, self.qk_rope_head_dim
            if self.q_lora_rank is None:
                mats = [matrix(Q_PROJ, count, d, self.q_size)]
                vectors = 0
            else:
                mats = [matrix(Q_A_PROJ, count, d, self.q_lora_rank),
                        matrix(Q_B_PROJ, count, self.q_lora_rank, self.q_size)]
                vectors = norm_channel_params * self.q_lora_rank + self.qkv_bias * self.q_lora_rank
            mats += [matrix(KV_A_PROJ, count, d, rank + rope),
                     matrix(KV_B_PROJ, count, rank, heads * (self.nope_head_dim + self.v_head_dim)),
                     matrix(O_PROJ, count, self.out_size, d)]
            vectors += norm_channel_params * rank + self.qkv_bias * (rank + rope) + self.out_bias * d
            return mats, count * vectors
        mats = [matrix(Q_PROJ, count, d, self.q_proj_size), matrix(K_PROJ, count, d, self.kv_size),
                matrix(V_PROJ, count, d, self.kv_size), matrix(O_PROJ, count, self.q_size, d)]
        vectors = self.qkv_bias * (self.q_proj_size + 2 * self.kv_size) + self.out_bias * d + self.sinks * heads
        if self.qk_norm == "head":
            vectors += 2 * norm_channel_params * self.head_dim
        elif self.qk_norm == "full":
            vectors += norm_channel_params * (self.q_size + self.kv_size)
        return mats, count * vectors


@dataclass(frozen=True, slots=True)
class MLP:
    """One layer's feed-forward network: dense (``experts`` = 1), or a mixture of experts.

    A mixture routes each token to ``experts_per_token`` of ``experts`` expert MLPs of width
    ``intermediate_size``; ``shared_intermediate_size`` > 0 adds always-on shared experts (DeepSeek,
    Llama 4) as one dense gated MLP of that total width.
    """

    intermediate_size: int
    activation: str = "silu"
    gated: bool = True
    bias: bool = False
    experts: int = 1
    experts_per_token: int = 1
    shared_intermediate_size: int = 0
    router_bias: bool = False
    shared_gate: bool = False  # a d -> 1 projection whose sigmoid scales the shared experts' output (Qwen3-Next)

    def validate(self, where: str) -> None:
        for label, field in (("intermediate_size", "intermediate_size"), ("num_experts", "experts"),
                             ("experts_per_token", "experts_per_token"),
                             ("shared_intermediate_size", "shared_intermediate_size")):
            limits.count(label, getattr(self, field), MODEL[field], f"{where}: ")
        _flags(where, self, ("gated", "bias", "router_bias", "shared_gate"))
        if self.activation not in ACTIVATIONS:
            raise InputError(f"{where}: activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {shown(self.activation)}")
        if self.experts_per_token > self.experts:
            raise InputError(f"{where}: experts_per_token ({self.experts_per_token}) must not exceed "
                             f"num_experts ({self.experts})")
        if self.is_moe and not self.gated:
            raise InputError(f"{where}: mixture-of-experts layers are modelled as gated MLPs")
        if self.shared_gate and not self.shared_intermediate_size:
            raise InputError(f"{where}: a shared-expert gate needs shared experts (shared_intermediate_size)")

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    def tensors(self, d: int, count: int) -> tuple[list[WeightTensor], int]:
        """(the matrices, the vector parameters) of ``count`` layers of this MLP."""
        inter = self.intermediate_size
        if not self.is_moe:
            if self.gated:
                mats = [matrix(GATE_PROJ, count, d, inter), matrix(UP_PROJ, count, d, inter),
                        matrix(DOWN_PROJ, count, inter, d)]
                return mats, count * self.bias * (2 * inter + d)
            return [matrix(FC, count, d, inter), matrix(PROJ, count, inter, d)], count * self.bias * (inter + d)
        experts = count * self.experts
        mats = [matrix(ROUTER, count, d, self.experts),
                matrix(EXPERT_GATE_PROJ, experts, d, inter), matrix(EXPERT_UP_PROJ, experts, d, inter),
                matrix(EXPERT_DOWN_PROJ, experts, inter, d)]
        if self.shared_intermediate_size:
            shared = self.shared_intermediate_size
            mats += [matrix(SHARED_GATE_PROJ, count, d, shared), matrix(SHARED_UP_PROJ, count, d, shared),
                     matrix(SHARED_DOWN_PROJ, count, shared, d)]
            if self.shared_gate:
                mats.append(matrix(SHARED_EXPERT_GATE, count, d, 1))
        vectors = self.router_bias * self.experts + self.bias * self.experts * (2 * inter + d)
        return mats, count * vectors

    def params(self, d: int) -> int:
        mats, vectors = self.tensors(d, 1)
        return sum(t.instances * t.elements for t in mats) + vectors

    def active_params(self, d: int) -> int:
        """Parameters one token uses: the router, k experts and the shared experts."""
        if not self.is_moe:
            return self.params(d)
        return self.params(d) - (self.experts - self.experts_per_token) * self.expert_params(d)

    def expert_params(self, d: int) -> int:
        """One routed expert's parameters (its matrices and biases)."""
        inter = self.intermediate_size
        return 3 * d * inter + self.bias * (2 * inter + d)


@dataclass(frozen=True, slots=True)
class ShortConv:
    """LFM2's gated short convolution (a "LIV convolution" block), in place of attention.

    ``in_proj`` (d -> 3d) gives two gates B and C and the input x; B x goes through a depthwise causal
    convolution of ``kernel`` taps over the sequence (each channel its own k weights), C multiplies its
    output, and ``out_proj`` (d -> d) brings it back. Its cache is the last k - 1 inputs of the
    convolution per sequence, whatever the context.
    """

    kernel: int  # conv_L_cache
    bias: bool = False  # conv_bias: on in_proj, the convolution and out_proj

    name = "conv"

    def validate(self, where: str) -> None:
        limits.count("conv_kernel", self.kernel, MODEL["conv_kernel"], f"{where}: ")
        _flags(where, self, ("bias",))

    @property
    def chunk(self) -> int | None:
        """A convolution has no chunked scan."""
        return None

    @property
    def recurrent_state_elements(self) -> int:
        return 0

    def conv_channels(self, d: int) -> int:
        return d

    def tensors(self, d: int, count: int) -> tuple[list[WeightTensor], int]:
        """(the matrices, the vector parameters: the convolution's taps and the biases) of ``count`` layers."""
        mats = [matrix(CONV_IN_PROJ, count, d, 3 * d), matrix(CONV_OUT_PROJ, count, d, d)]
        return mats, count * (d * self.kernel + self.bias * (3 * d + d + d))


@dataclass(frozen=True, slots=True)
class LinearAttention:
    """Qwen3-Next's Gated DeltaNet: linear attention with the gated delta rule, in place of attention.

    ``in_proj_qkvz`` gives ``key_heads`` query and key heads (``key_head_dim`` wide), ``value_heads`` value
    heads (``value_head_dim`` wide) and an output gate z as wide as the values; ``in_proj_ba`` a write
    strength b and a decay a per value head. Queries, keys and values pass a depthwise causal convolution
    (``conv_kernel`` taps) and SiLU; each value head keeps a ``key_head_dim`` x ``value_head_dim`` state
    S, decayed and corrected by the delta rule at every token (S <- exp(g) S + beta k (v - S^T k)^T) and
    read by the query (o = S^T q). Prefill scans in chunks of ``chunk`` tokens (matrix products within a
    chunk, the state carried between chunks); decode applies the rule once per token. A gated RMSNorm
    (per value head, times SiLU(z)) and ``out_proj`` close the layer. Its cache per sequence: the states
    and the convolution's last k - 1 inputs, whatever the context.
    """

    key_heads: int  # linear_num_key_heads
    value_heads: int  # linear_num_value_heads
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int  # linear_conv_kernel_dim
    chunk: int = 64  # the chunk of the prefill scan: flash-linear-attention's and transformers' 64

    name = "linear_attn"

    def validate(self, where: str) -> None:
        prefix = f"{where}: "
        for label, limit in (("key_heads", "heads"), ("value_heads", "heads"), ("key_head_dim", "head_dim"),
                             ("value_head_dim", "head_dim"), ("chunk", "window"), ("conv_kernel", "conv_kernel")):
            limits.count(label, getattr(self, label), MODEL[limit], prefix)
        if self.value_heads % self.key_heads:
            raise InputError(f"{prefix}linear_num_value_heads ({self.value_heads}) must be a multiple of "
                             f"linear_num_key_heads ({self.key_heads})")

    @property
    def key_size(self) -> int:
        return self.key_heads * self.key_head_dim

    @property
    def value_size(self) -> int:
        return self.value_heads * self.value_head_dim

    @property
    def recurrent_state_elements(self) -> int:
        """One key_head_dim x value_head_dim state per value head."""
        return self.value_heads * self.key_head_dim * self.value_head_dim

    def conv_channels(self, d: int) -> int:
        """Queries, keys and values are convolved: 2 x key_size + value_size channels."""
        return 2 * self.key_size + self.value_size

    def tensors(self, d: int, count: int) -> tuple[list[WeightTensor], int]:
        """(the matrices, the vector parameters: convolution taps, per-head decay A and its bias, the
        gated norm's weight) of ``count`` layers."""
        mats = [matrix(LINEAR_QKVZ_PROJ, count, d, 2 * self.key_size + 2 * self.value_size),
                matrix(LINEAR_BA_PROJ, count, d, 2 * self.value_heads),
                matrix(LINEAR_OUT_PROJ, count, self.value_size, d)]
        vectors = self.conv_channels(d) * self.conv_kernel + 2 * self.value_heads + self.value_head_dim
        return mats, count * vectors


@dataclass(frozen=True, slots=True)
class StateSpace:
    """Mamba-2's selective state space (SSD), in place of attention (Mamba-2) or beside it (Falcon-H1).

    ``in_proj`` gives a gate z and the scanned input x (``heads`` x ``head_dim`` = d_inner each), B and C
    (``groups`` x ``state_size`` each) and one step dt per head; x, B and C pass a depthwise causal
    convolution (``conv_kernel`` taps) and SiLU. Each head keeps a ``head_dim`` x ``state_size`` state h,
    h <- exp(dt A) h + dt x B^T at every token, read as y = h C + D x. Prefill scans in chunks of ``chunk``
    tokens (SSD: matrix products within a chunk, the state passed between chunks); decode updates the
    state once per token. y times SiLU(z) (through a gated RMSNorm when ``gated_norm``) goes through
    ``out_proj``. Its cache per sequence: the states and the convolution's last k - 1 inputs.
    """

    heads: int
    head_dim: int
    state_size: int
    groups: int
    conv_kernel: int
    chunk: int
    conv_bias: bool = True
    in_bias: bool = False
    out_bias: bool = False
    gated_norm: bool = True  # Mamba-2's RMSNormGated; Falcon-H1 without mamba_rms_norm multiplies by SiLU(z) only

    name = "ssm"

    def validate(self, where: str) -> None:
        prefix = f"{where}: "
        for label, limit in (("heads", "heads"), ("head_dim", "head_dim"), ("state_size", "head_dim"),
                             ("groups", "heads"), ("chunk", "window"), ("conv_kernel", "conv_kernel")):
            limits.count(f"ssm {label}", getattr(self, label), MODEL[limit], prefix)
        if self.heads % self.groups:
            raise InputError(f"{prefix}the state-space heads ({self.heads}) must be a multiple of its groups "
                             f"({self.groups})")
        _flags(where, self, ("conv_bias", "in_bias", "out_bias", "gated_norm"))

    @property
    def inner_size(self) -> int:
        """d_inner: heads x head_dim, the width of x, z and y."""
        return self.heads * self.head_dim

    @property
    def recurrent_state_elements(self) -> int:
        """One head_dim x state_size state per head."""
        return self.heads * self.head_dim * self.state_size

    def conv_channels(self, d: int) -> int:
        """x, B and C are convolved: d_inner + 2 x groups x state_size channels."""
        return self.inner_size + 2 * self.groups * self.state_size

    def tensors(self, d: int, count: int) -> tuple[list[WeightTensor], int]:
        """(the matrices, the vector parameters: convolution taps and bias, dt's bias, A and D per head, the
        gated norm's weight, the projections' biases) of ``count`` layers."""
        inner, conv = self.inner_size, self.conv_channels(d)
        projected = inner + conv + self.heads
        mats = [matrix(SSM_IN_PROJ, count, d, projected), matrix(SSM_OUT_PROJ, count, inner, d)]
        vectors = (conv * self.conv_kernel + self.conv_bias * conv + 3 * self.heads + self.gated_norm * inner
                   + self.in_bias * projected + self.out_bias * d)
        return mats, count * vectors


Mixer = ShortConv | LinearAttention | StateSpace
MIXERS = (ShortConv, LinearAttention, StateSpace)


@dataclass(frozen=True, slots=True)
class Block:
    """One decoder layer: its token mixer (attention, a recurrent mixer, or both side by side), its MLP, and
    where the norms sit.

    ``attention`` and ``mixer``: a layer attends, runs a recurrent mixer (``ShortConv``,
    ``LinearAttention``, ``StateSpace``) in its place, or runs both on the same normed input and adds both
    outputs to the residual (Falcon-H1). ``mlp``: None for a layer without one (Mamba-2).
    ``pre_norms``: a norm before the mixer and before the MLP (the usual); ``post_norms``: a norm on
    each sublayer's output before its residual add (Gemma-2/3 have both, OLMo-2 only these).
    ``parallel``: attention and MLP read the same normed input and their outputs are added to the
    residual together (Phi-1/2, GPT-J): one pre-norm, one residual add.
    """

    attention: Attention | None
    mlp: MLP | None
    norm: str = "rmsnorm"
    pre_norms: bool = True
    post_norms: bool = False
    parallel: bool = False
    mixer: Mixer | None = None

    def validate(self, where: str) -> None:
        if self.norm not in NORMS:
            raise InputError(f"{where}: norm must be one of {', '.join(NORMS)}, got {shown(self.norm)}")
        if not (self.attention is None or isinstance(self.attention, Attention)) or not (
                self.mlp is None or isinstance(self.mlp, MLP)) or not (
                self.mixer is None or isinstance(self.mixer, MIXERS)):
            raise InputError(f"{where}: a Block holds an Attention, a recurrent mixer or both, and an MLP or none")
        if self.attention is None and self.mixer is None:
            raise InputError(f"{where}: a layer needs a token mixer: an Attention or a recurrent mixer")
        _flags(where, self, ("pre_norms", "post_norms", "parallel"))
        if self.parallel and (self.attention is None or self.mlp is None or self.mixer is not None):
            raise InputError(f"{where}: a parallel block runs attention and an MLP side by side")
        if self.attention is not None:
            self.attention.validate(where)
        if self.mixer is not None:
            self.mixer.validate(where)
        if self.mlp is not None:
            self.mlp.validate(where)

    @property
    def norm_channel_params(self) -> int:
        return NORM_PARAMS_PER_CHANNEL[self.norm]

    @property
    def layer_norms(self) -> int:
        """d-wide norms in the layer."""
        sublayers = 1 + (self.mlp is not None)
        pre = (1 if self.parallel else sublayers) if self.pre_norms else 0
        return pre + sublayers * self.post_norms

    @property
    def mixer_kind(self) -> str:
        """'attention', the recurrent mixer's name ('conv', 'linear_attn', 'ssm'), or both ('attention+ssm')."""
        names = (["attention"] if self.attention is not None else []) + (
            [self.mixer.name] if self.mixer is not None else [])
        return "+".join(names)

    @property
    def conv_kernel(self) -> int:
        """Taps of the recurrent mixer's convolution (0 without one)."""
        mixer = self.mixer
        if mixer is None:
            return 0
        return mixer.kernel if isinstance(mixer, ShortConv) else mixer.conv_kernel

    def conv_state_elements(self, d: int) -> int:
        """Elements of the convolution's cache one sequence keeps in this layer: its last k - 1 inputs."""
        return 0 if self.mixer is None else (self.conv_kernel - 1) * self.mixer.conv_channels(d)

    def state_elements(self, d: int) -> int:
        """Elements one sequence keeps in this layer whatever the context (in a model ``d`` wide): the
        recurrent mixer's states and its convolution's cache; 0 for attention alone."""
        return 0 if self.mixer is None else self.mixer.recurrent_state_elements + self.conv_state_elements(d)

    def tensors(self, d: int, count: int) -> tuple[list[WeightTensor], int]:
        """(the matrices, the vector parameters) of ``count`` layers of this block."""
        mats: list[WeightTensor] = []
        vectors = count * self.layer_norms * self.norm_channel_params * d
        if self.attention is not None:
            attn, attn_vectors = self.attention.tensors(d, count, self.norm_channel_params)
            mats += attn
            vectors += attn_vectors
        if self.mixer is not None:
            mixer, mixer_vectors = self.mixer.tensors(d, count)
            mats += mixer
            vectors += mixer_vectors
        if self.mlp is not None:
            mlp, mlp_vectors = self.mlp.tensors(d, count)
            mats += mlp
            vectors += mlp_vectors
        return mats, vectors

    def params(self, d: int) -> int:
        mats, vectors = self.tensors(d, 1)
        return sum(t.instances * t.elements for t in mats) + vectors

    def active_params(self, d: int) -> int:
        if self.mlp is None:
            return self.params(d)
        return self.params(d) - self.mlp.params(d) + self.mlp.active_params(d)


def layer_groups(layers: tuple[Block, ...]) -> tuple[tuple[Block, int], ...]:
    """The distinct blocks of a stack in order of first appearance, each with how many layers use it."""
    counts: dict[Block, int] = {}
    for block in layers:
        counts[block] = counts.get(block, 0) + 1
    return tuple(counts.items())
