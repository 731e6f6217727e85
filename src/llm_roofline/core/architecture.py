"""The architecture description: one record per kind of decoder layer, from which everything is derived.

A model is an embedding, a stack of layers and an output head (``models.ModelSpec``). Each layer is a
``Block``: an ``Attention`` (multi-head with grouped KV heads, or DeepSeek's multi-head latent
attention), an ``MLP`` (dense, or a mixture of experts with optional shared experts), and where its
norms sit. Layers that differ — sliding-window and global attention alternating, dense layers before
MoE layers, MoE every other layer, layers without RoPE — are simply different ``Block`` values in the
model's ``layers`` tuple. From this one description come:

- the weight tensors with their roles (``Block.tensors``) and so the parameter count,
- the KV cache a layer holds per token (``Attention.cache_elements_per_token``),
- the attention span that sets how many keys a query reads (``Attention.span``),
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
LM_HEAD = "lm_head"
MTP_EH_PROJ = "mtp.eh_proj"  # DeepSeek's multi-token prediction: [norm(embedding), norm(hidden)] (2d) -> d
VECTORS = "vectors"  # every norm weight, bias and attention sink: kept unquantized

WEIGHT_ROLES = (
    EMBED, POSITIONS, Q_PROJ, K_PROJ, V_PROJ, O_PROJ, Q_A_PROJ, Q_B_PROJ, KV_A_PROJ, KV_B_PROJ,
    ROUTER, GATE_PROJ, UP_PROJ, DOWN_PROJ, FC, PROJ, EXPERT_GATE_PROJ, EXPERT_UP_PROJ, EXPERT_DOWN_PROJ,
    SHARED_GATE_PROJ, SHARED_UP_PROJ, SHARED_DOWN_PROJ, LM_HEAD, MTP_EH_PROJ, VECTORS,
)
EXPERT_ROLES = (EXPERT_GATE_PROJ, EXPERT_UP_PROJ, EXPERT_DOWN_PROJ)
# The decoder layers' projection matrices: what 2:4 structured sparsity prunes (as SparseGPT and
# NVIDIA's ASP do). The embedding, the output head, the router and the MTP projection stay dense.
LAYER_MATRIX_ROLES = (
    Q_PROJ, K_PROJ, V_PROJ, O_PROJ, Q_A_PROJ, Q_B_PROJ, KV_A_PROJ, KV_B_PROJ, GATE_PROJ, UP_PROJ, DOWN_PROJ, FC,
    PROJ, EXPERT_GATE_PROJ, EXPERT_UP_PROJ, EXPERT_DOWN_PROJ, SHARED_GATE_PROJ, SHARED_UP_PROJ, SHARED_DOWN_PROJ,
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

    def validate(self, where: str) -> None:
        prefix = f"{where}: "
        for label in ("heads", "kv_heads", "head_dim"):
            limits.count(label, getattr(self, label), MODEL[label], prefix)
        if self.heads % self.kv_heads:
            raise InputError(f"{prefix}num_attention_heads ({self.heads}) must be a multiple of "
                             f"num_key_value_heads ({self.kv_heads})")
        _flags(where, self, ("qkv_bias", "out_bias", "sinks"))
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
        mats = [matrix(Q_PROJ, count, d, self.q_size), matrix(K_PROJ, count, d, self.kv_size),
                matrix(V_PROJ, count, d, self.kv_size), matrix(O_PROJ, count, self.q_size, d)]
        vectors = self.qkv_bias * (self.q_size + 2 * self.kv_size) + self.out_bias * d + self.sinks * heads
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

    def validate(self, where: str) -> None:
        for label, field in (("intermediate_size", "intermediate_size"), ("num_experts", "experts"),
                             ("experts_per_token", "experts_per_token"),
                             ("shared_intermediate_size", "shared_intermediate_size")):
            limits.count(label, getattr(self, field), MODEL[field], f"{where}: ")
        _flags(where, self, ("gated", "bias", "router_bias"))
        if self.activation not in ACTIVATIONS:
            raise InputError(f"{where}: activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {shown(self.activation)}")
        if self.experts_per_token > self.experts:
            raise InputError(f"{where}: experts_per_token ({self.experts_per_token}) must not exceed "
                             f"num_experts ({self.experts})")
        if self.is_moe and not self.gated:
            raise InputError(f"{where}: mixture-of-experts layers are modelled as gated MLPs")

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
class Block:
    """One decoder layer: attention, MLP, and where the norms sit.

    ``pre_norms``: a norm before attention and before the MLP (the usual); ``post_norms``: a norm on
    each sublayer's output before its residual add (Gemma-2/3 have both, OLMo-2 only these).
    ``parallel``: attention and MLP read the same normed input and their outputs are added to the
    residual together (Phi-1/2, GPT-J): one pre-norm, one residual add.
    """

    attention: Attention
    mlp: MLP
    norm: str = "rmsnorm"
    pre_norms: bool = True
    post_norms: bool = False
    parallel: bool = False

    def validate(self, where: str) -> None:
        if self.norm not in NORMS:
            raise InputError(f"{where}: norm must be one of {', '.join(NORMS)}, got {shown(self.norm)}")
        if not isinstance(self.attention, Attention) or not isinstance(self.mlp, MLP):
            raise InputError(f"{where}: a Block holds an Attention and an MLP")
        _flags(where, self, ("pre_norms", "post_norms", "parallel"))
        self.attention.validate(where)
        self.mlp.validate(where)

    @property
    def norm_channel_params(self) -> int:
        return NORM_PARAMS_PER_CHANNEL[self.norm]

    @property
    def layer_norms(self) -> int:
        """d-wide norms in the layer."""
        pre = (1 if self.parallel else 2) if self.pre_norms else 0
        return pre + 2 * self.post_norms

    def tensors(self, d: int, count: int) -> tuple[list[WeightTensor], int]:
        """(the matrices, the vector parameters) of ``count`` layers of this block."""
        attn, attn_vectors = self.attention.tensors(d, count, self.norm_channel_params)
        mlp, mlp_vectors = self.mlp.tensors(d, count)
        norms = count * self.layer_norms * self.norm_channel_params * d
        return attn + mlp, attn_vectors + mlp_vectors + norms

    def params(self, d: int) -> int:
        mats, vectors = self.tensors(d, 1)
        return sum(t.instances * t.elements for t in mats) + vectors

    def active_params(self, d: int) -> int:
        return self.params(d) - self.mlp.params(d) + self.mlp.active_params(d)


def layer_groups(layers: tuple[Block, ...]) -> tuple[tuple[Block, int], ...]:
    """The distinct blocks of a stack in order of first appearance, each with how many layers use it."""
    counts: dict[Block, int] = {}
    for block in layers:
        counts[block] = counts.get(block, 0) + 1
    return tuple(counts.items())
