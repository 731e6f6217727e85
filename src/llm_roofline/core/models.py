"""Models: a frozen description of a decoder-only transformer, and where it comes from.

A model is an embedding, a stack of layers (``architecture.Block``: attention or a recurrent mixer or
both, an MLP, norms) and an output head. Everything the analyzer needs is derived from that one
description: the weight tensors with their roles, the parameter count, the KV cache per token, the
recurrent state per sequence (hybrid models), and (in ``transformer.py``) the operators of a step. Layers
may differ — sliding and global attention alternating, dense layers before MoE layers, NoPE layers,
short convolutions or linear attention between attention layers — and each distinct block is priced once
with its layer count.

A model is read (``inputs/model_files.py``) from a Hugging Face ``config.json`` through one small
adapter per family, from a GGUF file's header (``inputs/gguf.py``), or from the built-in catalogue
under ``data/models/``. ``params`` is
the analytic parameter count; tests check it equals what ``transformers`` reports for the same
config. A model read from a quantized file also carries the format each of its tensors is stored in
(``stored_weights``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from llm_roofline.core import architecture as arch
from llm_roofline.core import limits
from llm_roofline.core.architecture import MLP, NORMS, Attention, Block, WeightTensor, layer_groups
from llm_roofline.core.errors import InputError, shown
from llm_roofline.core.formats import WeightScheme
from llm_roofline.core.limits import MODEL

ACTIVATIONS = arch.ACTIVATIONS
__all__ = ["ACTIVATIONS", "NORMS", "ModelSpec", "WeightTensor"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The structure of a decoder-only transformer, enough to count every operator's work."""

    name: str
    family: str
    hidden_size: int
    vocab_size: int
    max_position_embeddings: int
    layers: tuple[Block, ...]
    norm: str = "rmsnorm"  # the final norm's kind
    final_norm: bool = True  # a norm before lm_head (OPT's post-norm models have none)
    tied_embeddings: bool = False
    learned_positions: bool = False  # GPT-2's and OPT's position table; the others use RoPE (or none)
    position_rows: int = 0  # rows of the learned position table (OPT keeps 2 more); 0: max_position_embeddings
    embedding_scale: bool = False  # Gemma, Granite: embeddings multiplied by a constant
    residual_scale: bool = False  # Granite: each sublayer's output multiplied by a constant before the add
    lm_head_bias: bool = False  # Phi-2's output projection has a bias
    logits_scale: bool = False  # Granite: logits divided by a constant
    final_logit_softcapping: float | None = None  # Gemma-2: logits become cap x tanh(logits / cap)
    display_name: str = ""
    source: str = ""
    stored_weights: WeightScheme | None = None  # the formats of a quantized file's tensors
    mtp_modules: int = 0  # DeepSeek's multi-token-prediction modules (num_nextn_predict_layers), shipped beside
    mtp_included: bool = False  # ... and run and counted only when asked (``with_mtp``): inference leaves them out
    _hash: int = field(default=0, init=False, repr=False, compare=False)
    _groups: tuple[tuple[Block, int], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"model '{self.name}': "
        for label in ("hidden_size", "vocab_size", "max_position_embeddings", "position_rows"):
            limits.count(label, getattr(self, label), MODEL[label], where)
        limits.count("mtp_modules", self.mtp_modules, MODEL["layer_count"], where)
        if not isinstance(self.layers, tuple):
            raise InputError(f"{where}layers must be a tuple of Blocks, got {shown(self.layers)}")
        limits.count("num_hidden_layers", len(self.layers), MODEL["layers"], where)
        if not all(isinstance(block, Block) for block in self.layers):
            raise InputError(f"{where}layers must be a tuple of Blocks")
        for label in ("final_norm", "tied_embeddings", "learned_positions", "embedding_scale", "residual_scale",
                      "lm_head_bias", "logits_scale", "mtp_included"):
            if not isinstance(getattr(self, label), bool):
                raise InputError(f"{where}{label} must be True or False, got {shown(getattr(self, label))}")
        groups = layer_groups(self.layers)
        for block, _ in groups:
            block.validate(where.removesuffix(": "))
        object.__setattr__(self, "_groups", groups)
        if self.norm not in NORMS:
            raise InputError(f"{where}norm must be one of {', '.join(NORMS)}, got {shown(self.norm)}")
        if self.final_logit_softcapping is not None:
            limits.figure("final_logit_softcapping", self.final_logit_softcapping, MODEL["softcap"], where)
        object.__setattr__(self, "_hash", hash((self.name, self.family, self.hidden_size, self.vocab_size,
                                                self.layers, self.stored_weights, self.source)))

    def __hash__(self) -> int:  # the layer tuple is long: hashed once (models key every memoized plan)
        return self._hash

    @classmethod
    def uniform(cls, *, name: str, family: str, hidden_size: int, num_layers: int, num_heads: int,
                num_kv_heads: int, head_dim: int, intermediate_size: int, vocab_size: int,
                max_position_embeddings: int, norm: str = "rmsnorm", activation: str = "silu",
                gated_mlp: bool = True, qkv_bias: bool = False, out_bias: bool = False, mlp_bias: bool = False,
                num_experts: int = 1, experts_per_token: int = 1, sliding_window: int | None = None,
                sliding_window_layers: int | None = None, post_norms: bool = False, qk_norm: bool = False,
                attn_logit_softcapping: float | None = None, **model: Any) -> ModelSpec:
        """A model whose layers are alike but for a sliding window on ``sliding_window_layers`` of them
        (None: all, when a window is set): the shape of most models, from the figures a summary gives."""
        limits.count("num_layers", num_layers, MODEL["layers"], f"model '{name}': ")
        windowed = sliding_window_layers if sliding_window_layers is not None else num_layers
        windowed = 0 if sliding_window is None else windowed
        if not isinstance(windowed, int) or not 0 <= windowed <= num_layers:
            raise InputError(f"model '{name}': sliding_window_layers must be between 0 and num_layers, "
                             f"got {sliding_window_layers!r}")
        attention = Attention(heads=num_heads, kv_heads=num_kv_heads, head_dim=head_dim, qkv_bias=qkv_bias,
                              out_bias=out_bias, qk_norm="head" if qk_norm else None,
                              rope_dim=0 if model.get("learned_positions") else None, softcap=attn_logit_softcapping)
        mlp = MLP(intermediate_size=intermediate_size, activation=activation, gated=gated_mlp, bias=mlp_bias,
                  experts=num_experts, experts_per_token=experts_per_token)
        full = Block(attention, mlp, norm=norm, post_norms=post_norms)
        window = replace(full, attention=replace(attention, window=sliding_window))
        layers = (window,) * windowed + (full,) * (num_layers - windowed)
        return cls(name=name, family=family, hidden_size=hidden_size, vocab_size=vocab_size,
                   max_position_embeddings=max_position_embeddings, layers=layers, norm=norm, **model)

    # --- the stack ---------------------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def groups(self) -> tuple[tuple[Block, int], ...]:
        """The distinct blocks in order of first appearance, each with its number of layers."""
        return self._groups

    @property
    def block(self) -> Block:
        """The block most layers use (the first such): what a single-figure summary describes."""
        return max(self.groups, key=lambda group: group[1])[0]

    @property
    def _attention(self) -> Attention | None:
        """The attention most attending layers use (None in a stack without attention: Mamba-2)."""
        attending = [(block.attention, n) for block, n in self.groups if block.attention is not None]
        return max(attending, key=lambda group: group[1])[0] if attending else None

    @property
    def _mlp(self) -> MLP | None:
        """The MLP most layers with one use (None when no layer has one: Mamba-2)."""
        with_mlp = [(block.mlp, n) for block, n in self.groups if block.mlp is not None]
        return max(with_mlp, key=lambda group: group[1])[0] if with_mlp else None

    def with_mtp(self) -> ModelSpec:
        """The model with its multi-token-prediction module(s) counted and run each step (DeepSeek-V3/R1 ship
        one: a decoder layer, two norms and a 2d x d projection, sharing the embedding and the output head;
        engines use it to draft a token for speculative decoding). Without such modules: an InputError."""
        if not self.mtp_modules:
            raise InputError(f"model '{self.name}' has no multi-token-prediction module (num_nextn_predict_layers)")
        return replace(self, name=self.name if self.name.endswith("+mtp") else f"{self.name}+mtp", mtp_included=True)

    def map_blocks(self, change: Callable[[Block], Block], **fields: Any) -> ModelSpec:
        """The same model with every block changed (a what-if, a tensor-parallel shard)."""
        changed: dict[Block, Block] = {}
        for block, _ in self.groups:
            changed[block] = change(block)
        return replace(self, layers=tuple(changed[b] for b in self.layers), **fields)

    # --- single figures (the most common attention's and MLP's; uniform in most models; 0 without any) ---

    @property
    def num_heads(self) -> int:
        return 0 if self._attention is None else self._attention.heads

    @property
    def num_kv_heads(self) -> int:
        return 0 if self._attention is None else self._attention.kv_heads

    @property
    def head_dim(self) -> int:
        return 0 if self._attention is None else self._attention.head_dim

    @property
    def q_size(self) -> int:
        return 0 if self._attention is None else self._attention.q_size

    @property
    def kv_size(self) -> int:
        return 0 if self._attention is None else self._attention.kv_size

    @property
    def intermediate_size(self) -> int:
        return 0 if self._mlp is None else self._mlp.intermediate_size

    @property
    def activation(self) -> str:
        return "none" if self._mlp is None else self._mlp.activation

    @property
    def gated_mlp(self) -> bool:
        return self._mlp is not None and self._mlp.gated

    @property
    def is_moe(self) -> bool:
        return any(block.mlp is not None and block.mlp.is_moe for block, _ in self.groups)

    @property
    def num_experts(self) -> int:
        """Routed experts per MoE layer (1 for a dense model)."""
        return max((block.mlp.experts for block, _ in self.groups if block.mlp is not None), default=1)

    @property
    def experts_per_token(self) -> int:
        return max((block.mlp.experts_per_token for block, _ in self.groups if block.mlp is not None), default=1)

    @property
    def moe_layers(self) -> int:
        return sum(n for block, n in self.groups if block.mlp is not None and block.mlp.is_moe)

    @property
    def is_mla(self) -> bool:
        return any(block.attention is not None and block.attention.is_mla for block, _ in self.groups)

    @property
    def sliding_window(self) -> int | None:
        """The window of the windowed layers (None when no layer has one)."""
        windows = [a.window for a in self.attentions if a.window is not None]
        return windows[0] if windows else None

    @property
    def windowed_layers(self) -> int:
        """Layers whose attention is limited to the last ``sliding_window`` tokens."""
        return sum(n for block, n in self.groups if block.attention is not None and block.attention.window is not None)

    @property
    def attentions(self) -> tuple[Attention, ...]:
        """The distinct attentions of the stack's attending layers."""
        return tuple(dict.fromkeys(block.attention for block, _ in self.groups if block.attention is not None))

    @property
    def attention_layers(self) -> int:
        """Layers that attend (and so keep a KV cache that grows with the context)."""
        return sum(n for block, n in self.groups if block.attention is not None)

    @property
    def recurrent_layers(self) -> int:
        """Layers with a recurrent mixer (a short convolution, linear attention, a state space): their cache
        per sequence does not grow with the context."""
        return sum(n for block, n in self.groups if block.mixer is not None)

    @property
    def post_norms(self) -> bool:
        return self.block.post_norms

    @property
    def qk_norm(self) -> bool:
        return self._attention is not None and self._attention.qk_norm is not None

    @property
    def attn_logit_softcapping(self) -> float | None:
        return None if self._attention is None else self._attention.softcap

    # --- derived counts ------------------------------------------------------------------------------

    @property
    def embedding_params(self) -> int:
        positions = (self.position_rows or self.max_position_embeddings) * self.hidden_size
        return self.vocab_size * self.hidden_size + (positions if self.learned_positions else 0)

    @property
    def head_vector_params(self) -> int:
        """Vector parameters outside the layers: the final norm's and lm_head's bias."""
        final = arch.NORM_PARAMS_PER_CHANNEL[self.norm] * self.hidden_size if self.final_norm else 0
        return final + self.lm_head_bias * self.vocab_size

    @property
    def params(self) -> int:
        """Total parameters, counted once when embeddings are tied (as ``transformers`` does)."""
        return sum(t.instances * t.elements for t in self.weight_tensors())

    @property
    def active_params(self) -> int:
        """Parameters one token uses: all but the routed experts it is not sent to (embeddings included)."""
        d = self.hidden_size
        return self.params - sum(n * (block.params(d) - block.active_params(d)) for block, n in self.groups)

    @property
    def kv_cache_elements_per_token(self) -> int:
        """KV cache elements one token of context adds over all layers (before any window caps it)."""
        return sum(n * block.attention.cache_elements_per_token for block, n in self.groups
                   if block.attention is not None)

    @property
    def state_elements_per_sequence(self) -> int:
        """Elements of recurrent state one sequence keeps over all layers, whatever its context: the recurrent
        mixers' states and their convolutions' last k - 1 inputs (0 for a transformer)."""
        return sum(n * block.state_elements(self.hidden_size) for block, n in self.groups)

    def weight_tensors(self) -> tuple[WeightTensor, ...]:
        """Every stored weight tensor by role, with its shape; norm weights, biases and sinks as one
        'vectors' entry. Tensors of one role and shape in several kinds of layer are one entry."""
        return _weight_tensors(self)

    def context_warning(self, tokens: int) -> str | None:
        """A note when a sequence of ``tokens`` runs past the model's context window, else None: the
        arithmetic holds at any length, but positions beyond the window were never trained."""
        if tokens <= self.max_position_embeddings:
            return None
        return (f"{tokens} tokens exceed {self.name}'s context window ({self.max_position_embeddings}, "
                f"max_position_embeddings): the figures are the arithmetic's; the model was not trained that long")

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "display_name": self.display_name or self.name,
            "family": self.family,
            "params": self.params,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "num_kv_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "norm": self.norm,
            "activation": self.activation,
            "gated_mlp": self.gated_mlp,
            "tied_embeddings": self.tied_embeddings,
            "sliding_window": self.sliding_window,
            "windowed_layers": self.windowed_layers,
            "num_experts": self.num_experts,
            "experts_per_token": self.experts_per_token,
            "moe_layers": self.moe_layers,
            "active_params": self.active_params,
            "attention": "none" if self._attention is None else "mla" if self._attention.is_mla else "mha",
            "kv_cache_elements_per_token": self.kv_cache_elements_per_token,
            "attention_layers": self.attention_layers,
            "recurrent_layers": self.recurrent_layers,
            "state_elements_per_sequence": self.state_elements_per_sequence,
            "post_norms": self.post_norms,
            "qk_norm": self.qk_norm,
            "attn_logit_softcapping": self.attn_logit_softcapping,
            "final_logit_softcapping": self.final_logit_softcapping,
            "layer_kinds": [describe_block(b, n, self.hidden_size) for b, n in self.groups],
            "mtp_modules": self.mtp_modules,
            "mtp_included": self.mtp_included,
            "stored_weights": None if self.stored_weights is None else self.stored_weights.name,
            "source": self.source,
        }


@functools.lru_cache(maxsize=256)
def _weight_tensors(model: ModelSpec) -> tuple[WeightTensor, ...]:
    d, vocab = model.hidden_size, model.vocab_size
    tensors = [WeightTensor(arch.EMBED, 1, vocab * d, vocab, 0, d)]
    if model.learned_positions:
        rows = model.position_rows or model.max_position_embeddings
        tensors.append(WeightTensor(arch.POSITIONS, 1, rows * d, rows, 0, d))
    merged: dict[tuple[str, int, int, int, int], int] = {}
    vectors = 0
    groups = list(model.groups)
    if model.mtp_included:  # each module: a decoder layer like the last, eh_proj, enorm, hnorm and a final norm
        last = model.layers[-1]
        groups.append((last, model.mtp_modules))
        tensors.append(arch.matrix(arch.MTP_EH_PROJ, model.mtp_modules, 2 * d, d))
        vectors += model.mtp_modules * 3 * arch.NORM_PARAMS_PER_CHANNEL[last.norm] * d
    for block, count in groups:
        mats, block_vectors = block.tensors(d, count)
        vectors += block_vectors
        for t in mats:
            key = (t.role, t.elements, t.rows, t.columns, t.row_length)
            merged[key] = merged.get(key, 0) + t.instances
    tensors += [WeightTensor(role, count, elements, rows, columns, row_length)
                for (role, elements, rows, columns, row_length), count in merged.items()]
    if not model.tied_embeddings:
        tensors.append(arch.matrix(arch.LM_HEAD, 1, d, vocab))
    vectors += model.head_vector_params
    tensors.append(WeightTensor(arch.VECTORS, 1, vectors, 0, 0, 1))
    return tuple(tensors)


def describe_block(block: Block, layers: int, hidden_size: int) -> dict[str, Any]:
    """A kind of layer in plain figures (JSON output)."""
    a, m, mixer = block.attention, block.mlp, block.mixer
    row: dict[str, Any] = {"layers": layers, "mixer": block.mixer_kind}
    row.update({
        "attention": "none" if a is None else "mla" if a.is_mla else "mha",
        "heads": None if a is None else a.heads, "kv_heads": None if a is None else a.kv_heads,
        "head_dim": None if a is None else a.head_dim,
        "span": None if a is None else a.span[0], "span_tokens": None if a is None else a.span[1] or None,
        "rope": a is not None and a.rotary_dim > 0,
        "kv_lora_rank": None if a is None else a.kv_lora_rank, "q_lora_rank": None if a is None else a.q_lora_rank,
    })
    row.update({
        "mlp": "none" if m is None else "moe" if m.is_moe else "dense",
        "intermediate_size": 0 if m is None else m.intermediate_size,
        "experts": 0 if m is None else m.experts, "experts_per_token": 0 if m is None else m.experts_per_token,
        "shared_intermediate_size": 0 if m is None else m.shared_intermediate_size,
    })
    if mixer is not None:
        row.update({"state_elements": block.state_elements(hidden_size),
                    "conv_state_elements": block.conv_state_elements(hidden_size),
                    "conv_kernel": block.conv_kernel, "scan_chunk": mixer.chunk})
    return row
