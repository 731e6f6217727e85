"""Which format each weight tensor is stored in: a uniform format, llama.cpp's mixes, or a file's own.

``weight_scheme(model, weights)`` turns whatever a user gave as ``weights`` into a ``WeightScheme``
for that model:

- nothing: the model's own formats (a GGUF file's tensor types), fp16 for a config.json model;
- a llama.cpp file type (``q4_k_m``, ``q5_k_m``, ``q8_0``; ``data/mixes.toml``): the type
  llama-quantize gives each tensor, following ``llama_tensor_get_type_impl`` in
  src/llama-quant.cpp (ggml-org/llama.cpp @ 007dbbf);
- another engine's recipe (``8da4w``; ``data/recipes.toml``): its format for the blocks' matrices and
  for the embedding table and output matrix;
- any other format name or a number of bits: every matrix and embedding table in that format.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from llm_roofline.core import architecture as arch
from llm_roofline.core.errors import InputError, unknown_name
from llm_roofline.core.formats import (
    NumberFormat,
    WeightScheme,
    blend_formats,
    format_names,
    get_format,
    sparse_2_4,
)
from llm_roofline.core.models import ModelSpec

WeightsSpec = NumberFormat | WeightScheme | str | float | int | None

# tensor_type_fallback: a row that is not a whole number of the type's blocks gets a type with smaller blocks.
_FALLBACK = {"q2_k": "q4_0", "q3_k": "q4_0", "q4_k": "q5_0", "q5_k": "q5_1", "q6_k": "q8_0",
             "iq3_s": "iq4_nl", "iq4_xs": "iq4_nl"}
# Tensors llama-quantize leaves as converted: 1-D tensors (norms, biases, and Qwen3-Next's d -> 1 shared-expert
# gate, ffn_gate_inp_shexp, whose trailing dimension of 1 makes it 1-D to ggml_n_dims), the MoE router
# (ffn_gate_inp) and position embeddings; convert_hf_to_gguf.py writes them as F32.
_UNQUANTIZED = (arch.VECTORS, arch.ROUTER, arch.SHARED_EXPERT_GATE, arch.POSITIONS)
# The experts' stacked matrices (ffn_*_exps: 3-D tensors, ne[2] = the number of experts).
_EXPERT_ROLES = (arch.EXPERT_GATE_PROJ, arch.EXPERT_UP_PROJ, arch.EXPERT_DOWN_PROJ)
# Families whose GGUF files fuse Q, K and V into one attn_qkv tensor (quantized by the attn_v rules).
_FUSED_QKV = ("phi3", "gpt2")


@dataclass(frozen=True, slots=True)
class LlamaCppMix:
    """A llama.cpp file type: its default type and the exceptions it makes (``data/mixes.toml``)."""

    name: str
    base: NumberFormat
    more_bits: NumberFormat | None
    attn_output_8_experts: NumberFormat | None
    source: str
    experts: NumberFormat | None = None  # the experts' stacked matrices (MXFP4_MOE); every other rule then off


def _sourced_entries(file: str) -> dict[str, dict[str, Any]]:
    """The tables of a data file (``data/<file>``), each of which must cite its source."""
    entries: dict[str, dict[str, Any]] = tomllib.loads(
        resources.files("llm_roofline").joinpath(f"data/{file}").read_text())
    for name, entry in entries.items():
        if not entry.get("source"):
            raise ValueError(f"{file}: {name}: an entry needs a source")
    return entries


@functools.cache
def _mixes() -> dict[str, LlamaCppMix]:
    mixes = {}
    for name, entry in _sourced_entries("mixes.toml").items():
        optional = {key: get_format(entry[key]) if key in entry else None
                    for key in ("more_bits", "attn_output_8_experts", "experts")}
        mixes[name] = LlamaCppMix(name=name, base=get_format(entry["base"]), source=entry["source"], **optional)
    return mixes


def mix_names() -> list[str]:
    return list(_mixes())


@dataclass(frozen=True, slots=True)
class Recipe:
    """Another engine's quantization recipe (``data/recipes.toml``): one format for the transformer blocks'
    matrices, one for the embedding table and the output matrix."""

    name: str
    linear: NumberFormat
    embedding: NumberFormat
    untied: bool
    source: str


@functools.cache
def _recipes() -> dict[str, Recipe]:
    return {name: Recipe(name=name, linear=get_format(entry["linear"]), embedding=get_format(entry["embedding"]),
                         untied=bool(entry.get("untied", False)), source=entry["source"])
            for name, entry in _sourced_entries("recipes.toml").items()}


def recipe_names() -> list[str]:
    return list(_recipes())


def get_recipe(name: str) -> Recipe | None:
    """The recipe of that name (case-insensitive), or None if the name is not one."""
    return _recipes().get(name.strip().lower())


@functools.lru_cache(maxsize=256)
def _recipe_scheme(model: ModelSpec, name: str) -> WeightScheme:
    recipe = _recipes()[name]
    by_role: list[tuple[str, NumberFormat]] = []
    for tensor in model.weight_tensors():
        if tensor.role in _UNQUANTIZED:
            by_role.append((tensor.role, get_format("fp32")))
        elif tensor.role in (arch.EMBED, arch.LM_HEAD):
            by_role.append((tensor.role, recipe.embedding))
    if model.tied_embeddings and recipe.untied:
        by_role.append((arch.LM_HEAD, recipe.embedding))  # the output copy a tied model's file holds
    return WeightScheme(name=recipe.name, default=recipe.linear, by_role=tuple(dict(by_role).items()),
                        source=recipe.source, untied_head=recipe.untied)


def get_mix(name: str) -> LlamaCppMix | None:
    """The llama.cpp mix of that name (case-insensitive), or None if the name is not one."""
    return _mixes().get(name.strip().lower())


def use_more_bits(layer: int, layers: int) -> bool:
    """llama.cpp's choice of the layers that get more bits: the first and last eighth, every third between."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def _fits_blocks(fmt: NumberFormat, row_length: int) -> NumberFormat:
    """tensor_type_fallback: the format llama-quantize falls back to when a row is not whole blocks."""
    if row_length % fmt.block_elements == 0:
        return fmt
    fallback = get_format(_FALLBACK.get(fmt.name, "fp16"))
    return fallback if row_length % fallback.block_elements == 0 else get_format("fp16")


def _is_type_70b(model: ModelSpec) -> bool:
    """llama.cpp's LLM_TYPE_70B for the llama architecture: 80 layers with grouped KV heads."""
    return model.family == "llama" and model.num_layers == 80 and model.num_kv_heads < model.num_heads


def _layers_with(model: ModelSpec, role: str) -> list[int]:
    """The indices of the layers that hold a tensor of ``role``."""
    d = model.hidden_size
    roles = {block: {t.role for t in block.tensors(d, 1)[0]} for block, _ in model.groups}
    return [i for i, block in enumerate(model.layers) if role in roles[block]]


def _layer_types(mix: LlamaCppMix, model: ModelSpec, role: str) -> list[NumberFormat]:
    """The type llama_tensor_get_type_impl picks for ``role`` in each layer that has it (before the row
    fallback). llama.cpp matches names by substring, so expert and shared down projections
    (ffn_down_exps, ffn_down_shexp) follow the ffn_down rules."""
    layers = model.num_layers
    indices = _layers_with(model, role)
    if mix.experts is not None:  # MXFP4_MOE: experts' 3-D tensors in one type, every other matrix the base
        return [mix.experts if role in _EXPERT_ROLES else mix.base] * len(indices)
    category = role
    if model.family in _FUSED_QKV and role in (arch.Q_PROJ, arch.K_PROJ, arch.V_PROJ):
        category = arch.V_PROJ  # attn_qkv is treated like attn_v
    if role in (arch.EXPERT_DOWN_PROJ, arch.SHARED_DOWN_PROJ):
        category = arch.DOWN_PROJ
    eight_experts = model.num_experts == 8
    if category == arch.V_PROJ:
        types = [mix.more_bits if mix.more_bits and use_more_bits(i, layers) else mix.base for i in indices]
        if _is_type_70b(model):
            types = [get_format("q5_k") if t.name in ("q3_k", "q4_k") else t for t in types]
        if eight_experts:
            types = [get_format("q8_0")] * len(indices)
        return types
    if category == arch.K_PROJ and eight_experts:
        return [get_format("q8_0")] * len(indices)
    if category == arch.O_PROJ and eight_experts and mix.attn_output_8_experts:
        return [mix.attn_output_8_experts] * len(indices)
    if category in (arch.DOWN_PROJ, arch.PROJ) and mix.more_bits:
        return [mix.more_bits if use_more_bits(i, layers) else mix.base for i in indices]
    return [mix.base] * len(indices)


def _output_type(mix: LlamaCppMix, row_length: int) -> NumberFormat:
    """output.weight (and a tied token_embd): Q6_K, or Q8_0 for a Q8_0 file or rows of partial blocks."""
    if row_length % mix.base.block_elements or mix.base.name == "q8_0":
        return get_format("q8_0")
    return get_format("q6_k")


def llama_cpp_mix(model: ModelSpec, name: str) -> WeightScheme:
    """The formats llama-quantize gives ``model``'s tensors for file type ``name`` (q4_k_m, ...)."""
    return _llama_cpp_mix(model, name.strip().lower())


@functools.lru_cache(maxsize=256)
def _llama_cpp_mix(model: ModelSpec, name: str) -> WeightScheme:
    mix = _mixes()[name]
    by_role: list[tuple[str, NumberFormat]] = []
    for tensor in model.weight_tensors():
        role = tensor.role
        if role in _UNQUANTIZED:
            fmt = get_format("fp32")
        elif role == arch.LM_HEAD or (role == arch.EMBED and model.tied_embeddings):
            fmt = _output_type(mix, tensor.row_length)
        elif role == arch.EMBED:
            fmt = _fits_blocks(mix.base, tensor.row_length)
        else:
            types = _layer_types(mix, model, role)
            fmt = blend_formats((_fits_blocks(t, tensor.row_length), 1) for t in types)
        by_role.append((role, fmt))
    return WeightScheme(name=mix.name, default=mix.base, by_role=tuple(by_role), source=mix.source)


@functools.lru_cache(maxsize=1024, typed=True)
def weight_scheme(model: ModelSpec, weights: WeightsSpec) -> WeightScheme:
    """The scheme ``weights`` means for ``model`` (see the module docstring).

    Memoized: a pure function of frozen records, asked again for every workload of the same model.
    """
    if isinstance(weights, WeightScheme):
        return weights
    if weights is None:
        return model.stored_weights or WeightScheme.uniform(get_format("fp16"))
    if isinstance(weights, str) and get_mix(weights) is not None:
        return llama_cpp_mix(model, weights)
    if isinstance(weights, str) and get_recipe(weights) is not None:
        return _recipe_scheme(model, weights.strip().lower())
    return WeightScheme.uniform(_weight_format(weights))


def _weight_format(weights: NumberFormat | str | float | int) -> NumberFormat:
    try:
        return get_format(weights)
    except InputError:
        if isinstance(weights, str) and not _is_number(weights):
            raise unknown_name("precision", weights, {*format_names(), *mix_names(), *recipe_names()}) from None
        raise


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def default_weight_format(weights: WeightsSpec) -> NumberFormat:
    """The format most weights of ``weights`` are in, without a model: a mix's base, a scheme's default."""
    if isinstance(weights, WeightScheme):
        return weights.default
    if weights is None:
        return get_format("fp16")
    if isinstance(weights, str) and (mix := get_mix(weights)) is not None:
        return mix.base
    if isinstance(weights, str) and (recipe := get_recipe(weights)) is not None:
        return recipe.linear
    return _weight_format(weights)


def weights_label(weights: WeightsSpec) -> str:
    """How ``weights`` is named in outputs: the mix or scheme name, else the format's name."""
    if isinstance(weights, WeightScheme):
        return weights.name
    if isinstance(weights, str) and (mix := get_mix(weights)) is not None:
        return mix.name
    if isinstance(weights, str) and (recipe := get_recipe(weights)) is not None:
        return recipe.name
    return default_weight_format(weights).name


def sparse_scheme(scheme: WeightScheme) -> WeightScheme:
    """``scheme`` with every decoder-layer projection pruned 2:4 (``formats.sparse_2_4``); the embedding,
    the output head, the router and norms stay as they are."""
    by_role = dict(scheme.by_role)
    for role in arch.LAYER_MATRIX_ROLES:
        by_role[role] = sparse_2_4(scheme.format_for(role))
    return replace(scheme, name=f"{scheme.name}+2:4", by_role=tuple(by_role.items()))


def is_sparse(weights: WeightsSpec) -> bool:
    """Whether ``weights`` already prune some matrix 2:4."""
    return isinstance(weights, WeightScheme) and any(fmt.density < 1 for _, fmt in weights.by_role)
