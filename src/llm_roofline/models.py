"""Models: a frozen description of a decoder-only transformer's structure, and where it comes from.

A model is read from a Hugging Face ``config.json`` (a file, or a folder holding one) through one
small adapter per family, from a GGUF file's header (``gguf.py``), or from the built-in catalogue
under ``data/models/`` (the same JSON form, plus ``_source`` and ``_display_name``). Only structure
is kept: sizes, head counts, which projections carry biases, the norm and activation, tied
embeddings, experts, the attention window. ``params`` is the analytic parameter count; tests check it
equals what ``transformers`` reports for the same config. A model read from a quantized file also
carries the format each of its tensors is stored in (``stored_weights``).

A dense model is a mixture of experts with one expert used by every token: ``num_experts = 1``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from .errors import InputError, unknown_name
from .formats import WeightScheme

NORMS = ("rmsnorm", "layernorm")
ACTIVATIONS = ("silu", "gelu", "gelu_tanh", "relu")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The structure of a decoder-only transformer, enough to count every operator's work."""

    name: str
    family: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    norm: str = "rmsnorm"
    activation: str = "silu"
    gated_mlp: bool = True
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    tied_embeddings: bool = False
    learned_positions: bool = False  # GPT-2's wpe table; the others use RoPE
    embedding_scale: bool = False  # Gemma multiplies embeddings by sqrt(hidden_size)
    sliding_window: int | None = None
    display_name: str = ""
    source: str = ""
    num_experts: int = 1  # experts per MoE layer; 1 for a dense model
    experts_per_token: int = 1  # top-k routing
    sliding_window_layers: int | None = None  # layers that use the window; None: all (when a window is set)
    stored_weights: WeightScheme | None = None  # the formats of a quantized file's tensors
    post_norms: bool = False  # Gemma-2/3: each sublayer's output is normalized again before the residual add
    qk_norm: bool = False  # Gemma-3: every head's query and key are normalized (a head_dim-wide norm) before RoPE
    attn_logit_softcapping: float | None = None  # Gemma-2: scores become cap x tanh(scores / cap)
    final_logit_softcapping: float | None = None  # Gemma-2: the logits, likewise

    def __post_init__(self) -> None:
        where = f"model '{self.name}'"
        for label in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                      "intermediate_size", "vocab_size", "max_position_embeddings"):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"{where}: {label} must be an integer > 0, got {value!r}")
        if self.num_heads % self.num_kv_heads:
            raise InputError(f"{where}: num_attention_heads ({self.num_heads}) must be a multiple of "
                             f"num_key_value_heads ({self.num_kv_heads})")
        if self.norm not in NORMS:
            raise InputError(f"{where}: norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.activation not in ACTIVATIONS:
            raise InputError(f"{where}: activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if self.sliding_window is not None and self.sliding_window <= 0:
            raise InputError(f"{where}: sliding_window must be > 0, got {self.sliding_window!r}")
        for label in ("num_experts", "experts_per_token"):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"{where}: {label} must be an integer > 0, got {value!r}")
        if self.experts_per_token > self.num_experts:
            raise InputError(f"{where}: experts_per_token ({self.experts_per_token}) must not exceed "
                             f"num_experts ({self.num_experts})")
        if self.num_experts > 1 and (self.mlp_bias or not self.gated_mlp):
            raise InputError(f"{where}: mixture-of-experts layers are modelled as gated MLPs without biases")
        for label in ("attn_logit_softcapping", "final_logit_softcapping"):
            cap = getattr(self, label)
            if cap is not None and (not isinstance(cap, (int, float)) or isinstance(cap, bool) or not cap > 0):
                raise InputError(f"{where}: {label} must be a number > 0 or null, got {cap!r}")
        if self.sliding_window_layers is not None and not 0 <= self.sliding_window_layers <= self.num_layers:
            raise InputError(f"{where}: sliding_window_layers must be between 0 and num_layers, "
                             f"got {self.sliding_window_layers!r}")

    @property
    def q_size(self) -> int:
        """Width of the query projection's output: heads x head_dim (not always hidden_size)."""
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of one of the key/value projections' outputs: KV heads x head_dim."""
        return self.num_kv_heads * self.head_dim

    @property
    def norm_params(self) -> int:
        return self.hidden_size * (2 if self.norm == "layernorm" else 1)

    @property
    def layer_norm_params(self) -> int:
        """Norm weights (and LayerNorm biases) of one layer: the two pre-norms, Gemma-2/3's two
        post-norms, and Gemma-3's per-head query and key norms (one head_dim-wide weight each)."""
        per_channel = self.norm_params // self.hidden_size
        return (2 + 2 * self.post_norms) * self.norm_params + 2 * self.qk_norm * per_channel * self.head_dim

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def windowed_layers(self) -> int:
        """Layers whose attention is limited to the last ``sliding_window`` tokens."""
        if self.sliding_window is None:
            return 0
        return self.num_layers if self.sliding_window_layers is None else self.sliding_window_layers

    @property
    def expert_params(self) -> int:
        """Parameters of one MLP (one expert of an MoE layer)."""
        d, inter = self.hidden_size, self.intermediate_size
        mlp_matrices = 3 if self.gated_mlp else 2
        return mlp_matrices * d * inter + self.mlp_bias * ((mlp_matrices - 1) * inter + d)

    @property
    def router_params(self) -> int:
        """The router of an MoE layer: a d x E matrix (none in a dense model)."""
        return self.hidden_size * self.num_experts if self.is_moe else 0

    @property
    def layer_params(self) -> int:
        d = self.hidden_size
        attention = (d * self.q_size + 2 * d * self.kv_size + self.q_size * d
                     + self.qkv_bias * (self.q_size + 2 * self.kv_size) + self.out_bias * d)
        return attention + self.router_params + self.num_experts * self.expert_params + self.layer_norm_params

    @property
    def embedding_params(self) -> int:
        positions = self.max_position_embeddings * self.hidden_size if self.learned_positions else 0
        return self.vocab_size * self.hidden_size + positions

    @property
    def lm_head_params(self) -> int:
        """Parameters of the output projection that are not shared with the embedding table."""
        return 0 if self.tied_embeddings else self.vocab_size * self.hidden_size

    @property
    def params(self) -> int:
        """Total parameters, counted once when embeddings are tied (as ``transformers`` does)."""
        return (self.embedding_params + self.num_layers * self.layer_params + self.norm_params
                + self.lm_head_params)

    @property
    def active_params(self) -> int:
        """Parameters one token uses: all but the experts it is not routed to (embeddings included)."""
        return self.params - self.num_layers * (self.num_experts - self.experts_per_token) * self.expert_params

    def weight_tensors(self) -> tuple[WeightTensor, ...]:
        """Every stored weight tensor by role, with its shape; norm weights and biases as one 'vectors' entry.

        ``sum(t.count * t.elements)`` equals ``params``.
        """
        d, inter, q, kv, layers = self.hidden_size, self.intermediate_size, self.q_size, self.kv_size, self.num_layers
        experts = layers * self.num_experts
        tensors = [WeightTensor("embed", 1, self.vocab_size * d, self.vocab_size, 0, d)]
        if self.learned_positions:
            tensors.append(WeightTensor("embed.positions", 1, self.max_position_embeddings * d,
                                        self.max_position_embeddings, 0, d))
        tensors += [WeightTensor("attn.q_proj", layers, d * q, q, d, d),
                    WeightTensor("attn.k_proj", layers, d * kv, kv, d, d),
                    WeightTensor("attn.v_proj", layers, d * kv, kv, d, d),
                    WeightTensor("attn.o_proj", layers, q * d, d, q, q)]
        if self.is_moe:
            tensors.append(WeightTensor("mlp.router", layers, d * self.num_experts, self.num_experts, d, d))
        if self.gated_mlp:
            tensors += [WeightTensor("mlp.gate_proj", experts, d * inter, inter, d, d),
                        WeightTensor("mlp.up_proj", experts, d * inter, inter, d, d),
                        WeightTensor("mlp.down_proj", experts, inter * d, d, inter, inter)]
        else:
            tensors += [WeightTensor("mlp.fc", experts, d * inter, inter, d, d),
                        WeightTensor("mlp.proj", experts, inter * d, d, inter, inter)]
        if not self.tied_embeddings:
            tensors.append(WeightTensor("lm_head", 1, self.vocab_size * d, self.vocab_size, d, d))
        matrices = sum(t.count * t.elements for t in tensors)
        tensors.append(WeightTensor("vectors", 1, self.params - matrices, 0, 0, 1))
        return tuple(tensors)

    def to_dict(self) -> dict[str, Any]:
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
            "active_params": self.active_params,
            "post_norms": self.post_norms,
            "qk_norm": self.qk_norm,
            "attn_logit_softcapping": self.attn_logit_softcapping,
            "final_logit_softcapping": self.final_logit_softcapping,
            "stored_weights": None if self.stored_weights is None else self.stored_weights.name,
            "source": self.source,
        }


class WeightTensor(NamedTuple):
    """A stored weight tensor: its role, instances (layers x experts), elements per instance, and the
    output rows and input columns that carry per-row or per-column quantization data.

    ``row_length`` is ggml's ``ne[0]``: the elements of one stored row (a matrix's input channels, an
    embedding's width), which must be a whole number of a block format's blocks.
    """

    role: str
    count: int
    elements: int
    rows: int
    columns: int
    row_length: int


# --- Hugging Face config.json adapters: one small function per family -------------------------

_HF_ACTIVATIONS = {
    "silu": "silu", "swish": "silu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
    "relu": "relu",
}


class _Config:
    """Typed access to a config dict, with errors that name the file and the key."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def int(self, *keys: str, default: int | None = None) -> int:
        for key in keys:
            value = self.data.get(key)
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                    raise InputError(f"{self.where}: '{key}' must be an integer > 0, got {value!r}")
                return value
        if default is None:
            raise InputError(f"{self.where}: missing required key '{keys[0]}'")
        return default

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InputError(f"{self.where}: '{key}' must be true or false, got {value!r}")
        return value

    def activation(self, *keys: str, default: str) -> str:
        for key in keys:
            value = self.data.get(key)
            if value is not None:
                if value not in _HF_ACTIVATIONS:
                    raise InputError(f"{self.where}: unsupported activation {value!r} in '{key}'; "
                                     f"supported: {', '.join(_HF_ACTIVATIONS)}")
                return _HF_ACTIVATIONS[value]
        return default


def _llama_like(cfg: _Config, name: str, family: str, *, qkv_bias: bool | None = None,
                out_bias: bool | None = None, tied_default: bool = False,
                embedding_scale: bool = False, sliding_window: int | None = None) -> ModelSpec:
    hidden = cfg.int("hidden_size")
    heads = cfg.int("num_attention_heads")
    attention_bias = cfg.bool("attention_bias", False)
    return ModelSpec(
        name=name,
        family=family,
        hidden_size=hidden,
        num_layers=cfg.int("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=cfg.int("num_key_value_heads", default=heads),
        head_dim=cfg.int("head_dim", default=hidden // heads if hidden % heads == 0 else None),
        intermediate_size=cfg.int("intermediate_size"),
        vocab_size=cfg.int("vocab_size"),
        max_position_embeddings=cfg.int("max_position_embeddings", default=2048),
        norm="rmsnorm",
        activation=cfg.activation("hidden_activation", "hidden_act", default="silu"),
        gated_mlp=True,
        qkv_bias=attention_bias if qkv_bias is None else qkv_bias,
        out_bias=attention_bias if out_bias is None else out_bias,
        mlp_bias=cfg.bool("mlp_bias", False),
        tied_embeddings=cfg.bool("tie_word_embeddings", tied_default),
        embedding_scale=embedding_scale,
        sliding_window=sliding_window,
    )


def _llama(cfg: _Config, name: str) -> ModelSpec:
    return _llama_like(cfg, name, "llama")


def _mistral(cfg: _Config, name: str) -> ModelSpec:
    window = cfg.data.get("sliding_window")
    return _llama_like(cfg, name, "mistral", qkv_bias=False, out_bias=False,
                       sliding_window=cfg.int("sliding_window") if window is not None else None)


def _mixtral(cfg: _Config, name: str) -> ModelSpec:
    spec = _mistral(cfg, name)
    return replace(spec, family="mixtral", num_experts=cfg.int("num_local_experts"),
                   experts_per_token=cfg.int("num_experts_per_tok"))


def _qwen2(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Qwen2: layers i >= max_window_layers use the window, when use_sliding_window is set.
    spec = _llama_like(cfg, name, "qwen2", qkv_bias=True, out_bias=False)
    if not cfg.bool("use_sliding_window", False) or cfg.data.get("sliding_window") is None:
        return spec
    first = cfg.data.get("max_window_layers", 28)
    if not isinstance(first, int) or isinstance(first, bool) or first < 0:
        raise InputError(f"{cfg.where}: 'max_window_layers' must be an integer >= 0, got {first!r}")
    windowed = max(0, spec.num_layers - first)
    if windowed == 0:
        return spec
    return replace(spec, sliding_window=cfg.int("sliding_window"),
                   sliding_window_layers=None if windowed == spec.num_layers else windowed)


def _phi3(cfg: _Config, name: str) -> ModelSpec:
    return _llama_like(cfg, name, "phi3", qkv_bias=False, out_bias=False)


def _gemma(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Gemma uses hidden_activation, and the tanh GELU when it is unset.
    spec = _llama_like(cfg, name, "gemma", tied_default=True, embedding_scale=True)
    return replace(spec, activation=cfg.activation("hidden_activation", default="gelu_tanh"))


def _windowed_layers(cfg: _Config, layers: int, pattern: int) -> dict[str, int | None]:
    """Gemma-2/3 interleave windowed and global layers: ``layer_types`` names each layer; without it,
    every ``pattern``-th layer (1-based) is global, as transformers' configs default."""
    if cfg.data.get("sliding_window") is None:
        return {"sliding_window": None, "sliding_window_layers": None}
    types = cfg.data.get("layer_types")
    if types is not None:
        if not isinstance(types, list) or len(types) != layers:
            raise InputError(f"{cfg.where}: 'layer_types' must list one type per layer ({layers})")
        windowed = sum(t == "sliding_attention" for t in types)
    else:
        windowed = sum(1 for i in range(layers) if (i + 1) % pattern)
    return {"sliding_window": cfg.int("sliding_window") if windowed else None,
            "sliding_window_layers": None if windowed in (0, layers) else windowed}


def _softcapping(cfg: _Config) -> dict[str, float | None]:
    """Gemma-2/3's soft-capping of attention scores and of the final logits (null: none)."""
    caps: dict[str, float | None] = {}
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        value = cfg.data.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0):
            raise InputError(f"{cfg.where}: '{key}' must be a number > 0 or null, got {value!r}")
        caps[key] = None if value is None else float(value)
    return caps


def _gemma2(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Gemma2: a norm after attention and after the MLP too; odd layers (1-based) windowed;
    # scores and logits soft-capped.
    spec = replace(_gemma(cfg, name), family="gemma2", post_norms=True, **_softcapping(cfg))
    return replace(spec, **_windowed_layers(cfg, spec.num_layers, pattern=2))


def _gemma3_text(cfg: _Config, name: str) -> ModelSpec:
    # transformers' Gemma3 (text): Gemma-2's norms plus per-head q/k norms; 5 of every 6 layers windowed.
    pattern = cfg.int("sliding_window_pattern", default=6)
    spec = replace(_gemma(cfg, name), family="gemma3_text", post_norms=True, qk_norm=True, **_softcapping(cfg))
    return replace(spec, **_windowed_layers(cfg, spec.num_layers, pattern=pattern))


def _gpt2(cfg: _Config, name: str) -> ModelSpec:
    hidden = cfg.int("n_embd", "hidden_size")
    heads = cfg.int("n_head", "num_attention_heads")
    if hidden % heads:
        raise InputError(f"{cfg.where}: n_embd ({hidden}) must be a multiple of n_head ({heads})")
    return ModelSpec(
        name=name,
        family="gpt2",
        hidden_size=hidden,
        num_layers=cfg.int("n_layer", "num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=hidden // heads,
        intermediate_size=cfg.int("n_inner", default=4 * hidden),
        vocab_size=cfg.int("vocab_size"),
        max_position_embeddings=cfg.int("n_positions", "max_position_embeddings", default=1024),
        norm="layernorm",
        activation=cfg.activation("activation_function", default="gelu_tanh"),
        gated_mlp=False,
        qkv_bias=True,
        out_bias=True,
        mlp_bias=True,
        tied_embeddings=cfg.bool("tie_word_embeddings", True),
        learned_positions=True,
    )


FAMILIES: dict[str, Callable[[_Config, str], ModelSpec]] = {
    "llama": _llama,
    "mistral": _mistral,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "phi3": _phi3,
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3_text": _gemma3_text,
    "gpt2": _gpt2,
}


def model_from_hf_config(data: dict[str, Any], name: str = "custom", where: str = "config") -> ModelSpec:
    """A model from a parsed Hugging Face config.json."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object")
    family = data.get("model_type")
    if family is None:
        raise InputError(f"{where}: missing required key 'model_type' (one of {', '.join(FAMILIES)})")
    if family not in FAMILIES:
        raise InputError(f"{where}: unsupported model_type {family!r}; supported: {', '.join(FAMILIES)}")
    try:
        spec = FAMILIES[family](_Config(data, where), name)
    except InputError as err:
        message = str(err)
        raise InputError(message if message.startswith(where) else f"{where}: {message}") from None
    display = data.get("_display_name", name)
    source = data.get("_source", where)
    return replace(spec, display_name=str(display), source=str(source))


def load_model_file(path: str | Path) -> ModelSpec:
    """A model from a config.json file, or from a folder that holds one."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read model config {path}: {err.__class__.__name__}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path} is not valid JSON: {err}") from None
    stem = path.parent.name if path.name == "config.json" else path.stem
    return model_from_hf_config(data, name=stem or "custom", where=str(path))


@functools.cache
def _catalogue_files() -> dict[str, Any]:
    folder = resources.files(__package__).joinpath("data/models")
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
    """A built-in model by name (case-insensitive), a GGUF file, or a config.json file or folder by path."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    key = str(name_or_path).strip()
    if key.lower() in _catalogue_files():
        return _load_catalogue_entry(key.lower())
    if key.lower().endswith(".gguf"):
        from .gguf import load_gguf_model

        return load_gguf_model(key)
    if key.lower().endswith(".json") or "/" in key or Path(key).is_dir():
        return load_model_file(key)
    raise unknown_name("model", key, _catalogue_files())
