"""GGUF files: the model's structure from the header's metadata, and each tensor's real format and size.

Only the header is read: the key/value metadata and the tensor infos (name, shape, ggml type,
offset). Tensor data is never touched, so a 40 GB file analyzes in milliseconds. The layout is
the GGUF specification's (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md); type ids,
block sizes and key names come from the ``gguf`` package (llama.cpp's gguf-py), and a test checks
this reader against ``gguf.GGUFReader`` on files written by ``gguf.GGUFWriter``.

The reader is hand-written rather than ``GGUFReader`` because that one builds a numpy view per
array element (seconds for a 150k-token vocabulary) and raises numpy errors on corrupt input; this
one skips string arrays by their lengths and turns every malformation into a one-line ``InputError``.

Mapping (llama.cpp's tensor names, ``gguf.TENSOR_NAMES``): ``token_embd`` -> embed, ``position_embd``
-> embed.positions, ``blk.N.attn_q/k/v/output`` (or a fused ``attn_qkv``) -> the attention
projections, ``ffn_gate/up/down`` (or ``*_exps`` experts, a fused gate+up ``ffn_up``) -> the MLP,
``ffn_gate_inp`` -> the MoE router, ``output`` -> lm_head (absent: tied to token_embd), norms and
biases -> vectors. Each role's format is its tensors' type (a per-layer mix is averaged by
elements), so the analysis' weight bytes equal the file's tensor bytes.
"""

from __future__ import annotations

import functools
import mmap
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from llm_roofline.core import architecture as arch
from llm_roofline.core import limits
from llm_roofline.core.architecture import MLP, Attention, Block
from llm_roofline.core.errors import InputError
from llm_roofline.core.formats import NumberFormat, WeightScheme, blend_formats, format_for_ggml_type
from llm_roofline.core.models import ModelSpec
from llm_roofline.inputs.printable import printable
from llm_roofline.inputs.reading import open_regular

_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_DIMENSION = 1 << 24  # bounds far past any real model: a larger value is a malformed file
_MAX_LAYERS = int(limits.MODEL["layers"].high)  # a model's own range (core/limits.py), named by its key here
_MAX_ARRAY_DEPTH = 4
_KEPT_ARRAY_LENGTH = 4096  # numeric arrays longer than this are skipped, not decoded
_KEPT_VALUES = 1 << 16  # numeric array values decoded over the whole header (a Python number is ~8x its bytes);
#                         the arrays a model needs are per-layer flags or counts, ~10^3 values; past it, skipped
_HEADER_BYTES = 24  # magic, version, tensor count, key/value count
# Caps on what a header may hold, each far past any real file, so that the work and memory of reading one are
# bounded whatever its size (a 64 MiB header of one-byte keys would otherwise be 4 M dictionary entries):
_MAX_KEYS = 4096  # llama.cpp's converter writes ~25-60 keys (general.*, the architecture's, tokenizer.*)
_MAX_TENSORS = 32_768  # llama.cpp loads at most LLAMA_MAX_LAYERS = 512 layers of <= ~30 tensors (~15 k); the
#                        largest real files (DeepSeek-V3, Qwen3-235B, Llama-3.1-405B) hold 1-2 k
_MAX_KEY_BYTES = 65_535  # the GGUF specification: a key is at most 2**16 - 1 bytes
_MAX_TENSOR_NAME_BYTES = 63  # llama.cpp refuses names of GGML_MAX_NAME = 64 bytes or more
_MAX_ARRAY_LENGTH = 1 << 20  # 4x the largest vocabulary (Gemma 3: 262,144 tokens, one array element each)
_MAX_ARRAY_ITEMS = 1 << 21  # strings and nested arrays read one by one, over all arrays: a real file's are its
#                             tokens and merges (under 2 x 262,144); each costs a step of Python (~0.3 us)


class ArrayValue(NamedTuple):
    """A metadata array: its element type name, its length, and its values when short and numeric."""

    element_type: str
    length: int
    values: tuple[Any, ...] | None


class TensorInfo(NamedTuple):
    """One tensor of the file, as its header describes it (``dims`` in ggml order: ne[0] first)."""

    name: str
    ggml_type: str
    dims: tuple[int, ...]
    elements: int
    bytes: int
    offset: int


@dataclass(frozen=True, slots=True)
class GGUFHeader:
    """Everything before the tensor data."""

    path: str
    version: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    data_offset: int
    file_bytes: int

    @property
    def tensor_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors)


@dataclass(frozen=True, slots=True)
class GGUFModel:
    """A GGUF file read as a model: the spec (with ``stored_weights``), and the bytes it accounts for."""

    model: ModelSpec
    header: GGUFHeader
    file_type: str
    bytes_by_type: tuple[tuple[str, int], ...]
    unmodelled_tensors: tuple[str, ...]  # tensors outside the cost model (e.g. rope_freqs)
    unmodelled_bytes: int

    @property
    def modelled_bytes(self) -> int:
        return self.header.tensor_bytes - self.unmodelled_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.header.path,
            "version": self.header.version,
            "architecture": self.header.metadata.get("general.architecture"),
            "file_type": self.file_type,
            "file_bytes": self.header.file_bytes,
            "tensor_count": len(self.header.tensors),
            "tensor_bytes": self.header.tensor_bytes,
            "modelled_tensor_bytes": self.modelled_bytes,
            "unmodelled_tensors": list(self.unmodelled_tensors),
            "bytes_by_type": dict(self.bytes_by_type),
            "formats_by_role": {role: fmt.name for role, fmt in self.model.stored_weights.by_role}
            if self.model.stored_weights else {},
            "model": self.model.to_dict(),
        }


# --- the header ---------------------------------------------------------------------------------


def _one_line(message: str, limit: int = 400) -> str:
    """An error message safe to print on one line: keys and names from the file may hold any bytes."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    return text if len(text) <= limit else text[:limit] + "..."



class _Cursor:
    """Sequential reads from the mapped header; running past the end means the file is truncated.

    ``available``: the bytes at hand when only the start of a ``size``-byte file was sent (an upload).
    """

    def __init__(self, buffer: Any, size: int, where: str, endian: str, available: int | None = None) -> None:
        self.buffer, self.size, self.where, self.endian, self.offset = buffer, size, where, endian, 0
        self.available = size if available is None else min(available, size)
        self.items_left = _MAX_ARRAY_ITEMS  # strings and nested arrays still allowed (_MAX_ARRAY_ITEMS)
        self.kept_left = _KEPT_VALUES  # numeric array values still to be decoded (_KEPT_VALUES)

    def fail(self, message: str) -> InputError:
        return InputError(f"{self.where}: {message}")

    def need(self, count: int, what: str) -> None:
        if count >= 0 and self.offset + count <= self.available:
            return
        if count >= 0 and self.offset + count <= self.size:
            raise self.fail(f"the header goes on past the first {self.available} bytes of the file ({what} at byte "
                            f"{self.offset}); send more of its start")
        raise self.fail(f"truncated or corrupt GGUF file: {what} at byte {self.offset} runs past the end "
                        f"({self.size} bytes)")

    def scalar(self, code: str, what: str) -> int | float | bool:
        """One value of a struct type code (an integer, float or bool code)."""
        value: int | float | bool = self.values(code, what)[0]
        return value

    def values(self, codes: str, what: str) -> tuple[Any, ...]:
        """The values of a struct format (``"4QIQ"``), in one unpack."""
        layout = _layout(self.endian + codes)
        self.need(layout.size, what)
        values = layout.unpack_from(self.buffer, self.offset)
        self.offset += layout.size
        return values

    def integer(self, code: str, what: str) -> int:
        """One value of an integer struct type code (a count, a length, a type id)."""
        value = self.scalar(code, what)
        assert isinstance(value, int), code  # an integer code unpacks to an int
        return value

    def string(self, what: str, limit: int | None = None) -> str:
        """A length-prefixed UTF-8 string of at most ``limit`` bytes (None: any that fits)."""
        length = self.integer("Q", what)
        if limit is not None and length > limit:
            raise self.fail(f"{what} at byte {self.offset - 8} is {length} bytes long; at most {limit} allowed")
        self.need(length, what)
        start = self.offset
        self.offset += length
        try:
            return str(memoryview(self.buffer)[start:self.offset], "utf-8")  # decoded in place, not copied first
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8 (byte {start})") from None

    def take_items(self, count: int, what: str) -> None:
        """Spend ``count`` of the header's budget of strings and nested arrays read one by one."""
        self.items_left -= count
        if self.items_left < 0:
            raise self.fail(f"{what}: the header's arrays hold more than {_MAX_ARRAY_ITEMS} strings or nested "
                            f"arrays in all (a real file's vocabulary and merges: under 600,000)")

    def skip_strings(self, count: int, what: str) -> None:
        """Step over ``count`` length-prefixed strings: one unpack per string, the loop kept tight because a
        vocabulary is ~10^5 of them."""
        self.need(count * 8, what)  # each string has at least its 8-byte length
        unpack = struct.Struct(self.endian + "Q").unpack_from
        buffer, offset, last = self.buffer, self.offset, self.available - 8
        for _ in range(count):
            if offset > last:
                break
            end = offset + 8 + unpack(buffer, offset)[0]
            if end > self.available:
                break
            offset = end
        else:
            self.offset = offset
            return
        self.offset = offset  # the string that runs past what is at hand: say where, and whether to send more
        length = unpack(buffer, offset)[0] if offset <= last else 0
        self.need(8 + length, what)
        raise AssertionError("unreachable: need() raises")  # pragma: no cover


@functools.lru_cache(maxsize=64)
def _layout(fmt: str) -> struct.Struct:
    """A compiled struct format: a header reads ~10^5 values with a handful of formats."""
    return struct.Struct(fmt)


def _value_codes() -> dict[int, tuple[str, str]]:
    """GGUF value type id -> (name, struct code) for the scalar types."""
    from gguf import GGUFValueType

    codes = {"UINT8": "B", "INT8": "b", "UINT16": "H", "INT16": "h", "UINT32": "I", "INT32": "i",
             "FLOAT32": "f", "BOOL": "?", "UINT64": "Q", "INT64": "q", "FLOAT64": "d"}
    return {member.value: (member.name, codes[member.name]) for member in GGUFValueType if member.name in codes}


def _read_value(cursor: _Cursor, type_id: int, key: str, scalars: dict[int, tuple[str, str]], depth: int = 0) -> Any:
    from gguf import GGUFValueType

    if type_id in scalars:
        return cursor.scalar(scalars[type_id][1], f"value of '{key}'")
    if type_id == GGUFValueType.STRING:
        return cursor.string(f"value of '{key}'")
    if type_id != GGUFValueType.ARRAY:
        raise cursor.fail(f"key '{key}' has unknown value type {type_id}")
    if depth >= _MAX_ARRAY_DEPTH:
        raise cursor.fail(f"key '{key}' nests arrays more than {_MAX_ARRAY_DEPTH} deep")
    element_type = cursor.integer("I", f"array type of '{key}'")
    length = cursor.integer("Q", f"array length of '{key}'")
    if length > _MAX_ARRAY_LENGTH:
        raise cursor.fail(f"array '{key}' has {length} elements; at most {_MAX_ARRAY_LENGTH} allowed (the largest "
                          f"vocabulary has 262,144)")
    if element_type in scalars:
        name, code = scalars[element_type]
        width = struct.calcsize(code)
        cursor.need(length * width, f"array '{key}'")
        values = None
        if depth == 0 and length <= min(_KEPT_ARRAY_LENGTH, cursor.kept_left):  # nested values are never used
            values = struct.unpack_from(f"{cursor.endian}{length}{code}", cursor.buffer, cursor.offset)
            cursor.kept_left -= length
        cursor.offset += length * width
        return ArrayValue(name, length, values)
    if element_type == GGUFValueType.STRING:
        cursor.take_items(length, f"array '{key}'")
        cursor.skip_strings(length, f"array '{key}'")
        return ArrayValue("STRING", length, None)
    if element_type == GGUFValueType.ARRAY:
        cursor.take_items(length, f"array '{key}'")
        cursor.need(length * 12, f"array '{key}'")  # each nested array has at least type and length
        for _ in range(length):
            _read_value(cursor, element_type, key, scalars, depth + 1)
        return ArrayValue("ARRAY", length, None)
    raise cursor.fail(f"array '{key}' has unknown element type {element_type}")


def read_gguf_header(path: str | Path) -> GGUFHeader:
    """The metadata and tensor infos of a GGUF file (versions 2 and 3, either byte order)."""
    try:
        return _read_header(path)
    except InputError as err:
        raise InputError(_one_line(str(err))) from None


def _read_header(path: str | Path) -> GGUFHeader:
    from gguf import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGMLQuantizationType

    where = str(path)
    try:
        with open_regular(path, "GGUF file") as file:  # a FIFO or a device is refused, never waited on
            size = os.fstat(file.fileno()).st_size
            if size < _HEADER_BYTES:
                raise InputError(f"{where}: not a GGUF file ({size} bytes, shorter than a GGUF header)")
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                return _parse(buffer, size, where, GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC,
                              GGMLQuantizationType)
    except OSError as err:
        raise InputError(f"cannot read GGUF file {where}: {err.strerror or err.__class__.__name__}") from None


def _parse(buffer: Any, size: int, where: str, quant_sizes: dict[Any, tuple[int, int]], default_alignment: int,
           magic: int, quant_type: Any, available: int | None = None) -> GGUFHeader:
    if struct.unpack_from("<I", buffer, 0)[0] != magic:
        raise InputError(f"{where}: not a GGUF file (no 'GGUF' magic at the start)")
    version = struct.unpack_from("<I", buffer, 4)[0]
    endian = "<"
    if version & 0xFFFF == 0:  # written on a big-endian machine
        endian, version = ">", struct.unpack_from(">I", buffer, 4)[0]
    if version not in (2, 3):
        raise InputError(f"{where}: unsupported GGUF version {version} (llm-roofline reads versions 2 and 3)")
    cursor = _Cursor(buffer, size, where, endian, available)
    cursor.offset = 8
    tensor_count = cursor.integer("Q", "tensor count")
    kv_count = cursor.integer("Q", "key/value count")
    # Every key/value takes at least 12 bytes and every tensor info at least 24: bound the counts.
    if kv_count * 12 + tensor_count * 24 > size:
        raise cursor.fail(f"truncated or corrupt GGUF file: {kv_count} keys and {tensor_count} tensors cannot fit "
                          f"in {size} bytes")
    if kv_count > _MAX_KEYS:
        raise cursor.fail(f"{kv_count} metadata keys; at most {_MAX_KEYS} allowed (real files hold under 100)")
    if tensor_count > _MAX_TENSORS:
        raise cursor.fail(f"{tensor_count} tensors; at most {_MAX_TENSORS} allowed (llama.cpp loads at most 512 "
                          f"layers)")
    scalars = _value_codes()
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = cursor.string("metadata key", _MAX_KEY_BYTES)
        type_id = cursor.integer("I", f"value type of '{key}'")
        if key in metadata:
            raise cursor.fail(f"metadata key '{key}' appears twice")
        metadata[key] = _read_value(cursor, type_id, key, scalars)
    tensors_raw = []
    for _ in range(tensor_count):
        name = cursor.string("tensor name", _MAX_TENSOR_NAME_BYTES)
        n_dims = cursor.integer("I", f"dimensions of tensor '{name}'")
        if not 1 <= n_dims <= _MAX_DIMS:
            raise cursor.fail(f"tensor '{name}' has {n_dims} dimensions (1 to {_MAX_DIMS} allowed)")
        fields = cursor.values(f"{n_dims}QIQ", f"shape, type and offset of tensor '{name}'")
        tensors_raw.append((name, fields[:n_dims], fields[n_dims], fields[n_dims + 1]))
    alignment = metadata.get("general.alignment", default_alignment)
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0 or alignment & (alignment - 1):
        raise cursor.fail(f"general.alignment must be a power of two, got {alignment!r}")
    data_offset = -(-cursor.offset // alignment) * alignment
    tensors, names = [], set()
    for name, dims, type_id, offset in tensors_raw:
        if name in names:
            raise cursor.fail(f"tensor '{name}' appears twice")
        names.add(name)
        try:
            ggml_type = quant_type(type_id)
            block, type_bytes = quant_sizes[ggml_type]
        except (ValueError, KeyError):
            raise cursor.fail(f"tensor '{name}' has unknown ggml type id {type_id}") from None
        elements = 1
        for dim in dims:
            elements *= dim
        if elements == 0 or dims[0] % block:
            raise cursor.fail(f"tensor '{name}' of type {ggml_type.name} has shape {list(dims)}: rows must be "
                              f"non-empty whole blocks of {block}")
        nbytes = elements // block * type_bytes
        if data_offset + offset + nbytes > size:
            raise cursor.fail(f"truncated GGUF file: tensor '{name}' ends at byte {data_offset + offset + nbytes}, "
                              f"the file has {size}")
        tensors.append(TensorInfo(name, ggml_type.name, dims, elements, nbytes, offset))
    return GGUFHeader(where, version, metadata, tuple(tensors), data_offset, size)


# --- header -> model ----------------------------------------------------------------------------


class _Metadata:
    """Typed access to the architecture's keys and to which tensors the file holds, with errors that name the
    file and the key."""

    def __init__(self, header: GGUFHeader, arch: str) -> None:
        self.data, self.arch, self.where = header.metadata, arch, header.path
        self.tensors = {t.name: t for t in header.tensors}

    def key(self, suffix: str) -> str:
        return f"{self.arch}.{suffix}"

    def has_key(self, suffix: str) -> bool:
        return self.key(suffix) in self.data

    def has(self, tensor: str) -> bool:
        return tensor in self.tensors

    def count(self, suffix: str, default: int | None = None, limit: int = _MAX_DIMENSION) -> int:
        """An integer >= 0 (a number of layers or experts that may be none)."""
        key = self.key(suffix)
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise InputError(f"{self.where}: missing metadata key '{key}'")
            return default
        if isinstance(value, ArrayValue):
            raise InputError(f"{self.where}: '{key}' is an array (per-layer values are not supported)")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"{self.where}: '{key}' must be an integer >= 0, got {value!r}")
        if value > limit:
            raise InputError(f"{self.where}: '{key}' must be at most {limit}, got {value!r}")
        return value

    def int(self, suffix: str, default: int | None = None, limit: int = _MAX_DIMENSION) -> int:
        """An integer > 0 (``default`` when the key is absent; no default: the key is required)."""
        value = self.count(suffix, default, limit)
        if value <= 0:
            raise InputError(f"{self.where}: '{self.key(suffix)}' must be an integer > 0, got {value!r}")
        return value


_LAYER_TENSOR = re.compile(r"blk\.(\d+)\.(.+)\.(weight|bias)")


def _model_from_header(header: GGUFHeader) -> ModelSpec:
    arch = header.metadata.get("general.architecture")
    if arch is None:
        raise InputError(f"{header.path}: missing metadata key 'general.architecture'")
    if not isinstance(arch, str) or arch not in _ARCHITECTURES:
        raise InputError(f"{header.path}: unsupported architecture {arch!r}; supported: "
                         f"{', '.join(SUPPORTED_ARCHITECTURES)}")
    try:
        return _ARCHITECTURES[arch](_Metadata(header, arch))
    except InputError as err:  # the model's own checks name the model; say which file it came from
        message = str(err)
        raise InputError(message if message.startswith(header.path) else f"{header.path}: {message}") from None


# --- one builder per llama.cpp architecture ------------------------------------------------------
#
# Each reads the keys llama.cpp's loader reads for that architecture (src/llama-model.cpp) and builds the
# same layer stack as the matching config.json adapter in models.py; where llama.cpp hard-codes a choice
# rather than storing a key (SmolLM3's NoPE layers, Llama 4's chunk size), the builder does the same.


def _embedding(meta: _Metadata) -> tuple[int, int]:
    """(hidden size, vocabulary) from embedding_length and the shape of token_embd."""
    if not meta.has("token_embd.weight"):
        raise InputError(f"{meta.where}: no 'token_embd.weight' tensor")
    hidden = meta.int("embedding_length")
    dims = meta.tensors["token_embd.weight"].dims
    if len(dims) != 2 or dims[0] != hidden:
        raise InputError(f"{meta.where}: token_embd.weight has shape {list(dims)}, expected [{hidden}, vocabulary]")
    return hidden, dims[1]


def _layer_count(meta: _Metadata) -> int:
    """block_count less the multi-token-prediction layers stored after the model's own (not run in decoding)."""
    blocks = meta.int("block_count", limit=_MAX_LAYERS)
    extra = meta.count("nextn_predict_layers", 0)
    if extra >= blocks:
        raise InputError(f"{meta.where}: '{meta.key('nextn_predict_layers')}' ({extra}) must be less than "
                         f"'{meta.key('block_count')}' ({blocks})")
    return blocks - extra


def _head_dim(meta: _Metadata, hidden: int, heads: int) -> int:
    if hidden % heads and not meta.has_key("attention.key_length"):
        raise InputError(f"{meta.where}: embedding_length ({hidden}) is not a multiple of head_count ({heads}) "
                         f"and no attention.key_length is given")
    head_dim = meta.int("attention.key_length", default=hidden // heads)
    value = meta.int("attention.value_length", default=head_dim)
    if value != head_dim:
        raise InputError(f"{meta.where}: '{meta.key('attention.value_length')}' ({value}) differs from "
                         f"'{meta.key('attention.key_length')}' ({head_dim}); only MLA (deepseek2) has its own "
                         f"value width")
    return head_dim


def _attention(meta: _Metadata, **more: Any) -> Attention:
    """Multi-head attention with grouped KV heads; biases where the file has them; partial RoPE where
    rope.dimension_count is less than the head width."""
    hidden = meta.int("embedding_length")
    heads = meta.int("attention.head_count")
    kv_heads = meta.int("attention.head_count_kv", default=heads)
    if heads % kv_heads:
        raise InputError(f"{meta.where}: '{meta.key('attention.head_count')}' ({heads}) must be a multiple of "
                         f"'{meta.key('attention.head_count_kv')}' ({kv_heads})")
    head_dim = _head_dim(meta, hidden, heads)
    rope = meta.count("rope.dimension_count", head_dim)
    if rope > head_dim:
        raise InputError(f"{meta.where}: '{meta.key('rope.dimension_count')}' ({rope}) exceeds the head width "
                         f"({head_dim})")
    fields: dict[str, Any] = {
        "qkv_bias": meta.has("blk.0.attn_q.bias") or meta.has("blk.0.attn_qkv.bias"),
        "out_bias": meta.has("blk.0.attn_output.bias"),
        "rope_dim": None if rope == head_dim else rope,
    }
    return Attention(heads=heads, kv_heads=kv_heads, head_dim=head_dim, **{**fields, **more})


def _dense_mlp(meta: _Metadata, key: str = "feed_forward_length") -> MLP:
    """A gated SiLU MLP, biased where the file's first layer has an ffn_up bias."""
    return MLP(intermediate_size=meta.int(key), bias=meta.has("blk.0.ffn_up.bias"))


def _experts(meta: _Metadata, **more: Any) -> MLP:
    """A mixture of expert_count gated SiLU experts of expert_feed_forward_length, expert_used_count per token."""
    experts, used = meta.int("expert_count"), meta.int("expert_used_count")
    if used > experts:
        raise InputError(f"{meta.where}: '{meta.key('expert_used_count')}' ({used}) exceeds "
                         f"'{meta.key('expert_count')}' ({experts})")
    return MLP(intermediate_size=meta.int("expert_feed_forward_length"), experts=experts, experts_per_token=used,
               **more)


def _model(meta: _Metadata, family: str, blocks: list[Block], **more: Any) -> ModelSpec:
    hidden, vocab = _embedding(meta)
    interned: dict[Block, Block] = {}
    return ModelSpec(
        name=Path(meta.where).stem,
        family=family,
        hidden_size=hidden,
        vocab_size=vocab,
        max_position_embeddings=meta.int("context_length", limit=1 << 40),
        layers=tuple(interned.setdefault(block, block) for block in blocks),
        tied_embeddings=not meta.has("output.weight"),
        display_name=printable(str(meta.data.get("general.name") or Path(meta.where).stem)),
        source=meta.where,
        **more,
    )


def _uniform(meta: _Metadata) -> ModelSpec:
    # llama (Mixtral when it has experts), qwen2, phi3, gemma, gpt2: alike layers, from the summary figures.
    name = meta.arch
    hidden, vocab = _embedding(meta)
    heads = meta.int("attention.head_count")
    experts = meta.int("expert_count", default=1)
    used = meta.int("expert_used_count", default=1) if experts > 1 else 1
    gpt2 = name == "gpt2"
    return ModelSpec.uniform(
        name=Path(meta.where).stem,
        family="mixtral" if name == "llama" and experts > 1 else name,
        hidden_size=hidden,
        num_layers=_layer_count(meta),
        num_heads=heads,
        num_kv_heads=meta.int("attention.head_count_kv", default=heads),
        head_dim=_head_dim(meta, hidden, heads),
        intermediate_size=meta.count("expert_feed_forward_length", 0) or meta.int("feed_forward_length"),
        vocab_size=vocab,
        max_position_embeddings=meta.int("context_length", limit=1 << 40),
        norm="layernorm" if gpt2 else "rmsnorm",
        activation="gelu_tanh" if name in ("gemma", "gpt2") else "silu",
        gated_mlp=not gpt2,
        qkv_bias=meta.has("blk.0.attn_q.bias") or meta.has("blk.0.attn_qkv.bias"),
        out_bias=meta.has("blk.0.attn_output.bias"),
        mlp_bias=meta.has("blk.0.ffn_up.bias"),
        tied_embeddings=not meta.has("output.weight"),
        learned_positions=gpt2,
        embedding_scale=name == "gemma",
        sliding_window=meta.int("attention.sliding_window") if meta.has_key("attention.sliding_window") else None,
        display_name=printable(str(meta.data.get("general.name") or Path(meta.where).stem)),
        source=meta.where,
        num_experts=experts,
        experts_per_token=used,
    )


def _qwen3(meta: _Metadata) -> ModelSpec:
    # Qwen2 without the q/k/v biases, with an RMSNorm on every query and key head (attn_q_norm, attn_k_norm of
    # key_length). llama.cpp runs Qwen3 without a sliding window.
    block = Block(_attention(meta, qk_norm="head"), _dense_mlp(meta))
    return _model(meta, "qwen3", [block] * _layer_count(meta))


def _qwen3moe(meta: _Metadata) -> ModelSpec:
    # Qwen3's attention; every layer a mixture of experts (llama.cpp has no dense Qwen3-MoE layers).
    block = Block(_attention(meta, qk_norm="head"), _experts(meta))
    return _model(meta, "qwen3_moe", [block] * _layer_count(meta))


def _swa_layers(meta: _Metadata, layers: int, period: int) -> list[bool]:
    """Which layers use the sliding window: llama.cpp's set_swa_pattern(n) windows layer i when
    i % n < n - 1 (n = 0: all); attention.sliding_window_pattern overrides n, or lists one flag per layer."""
    key = meta.key("attention.sliding_window_pattern")
    pattern = meta.data.get(key)
    if isinstance(pattern, ArrayValue):
        if pattern.element_type != "BOOL" or pattern.values is None or len(pattern.values) != layers:
            raise InputError(f"{meta.where}: '{key}' must be a number or one true/false per layer ({layers})")
        return [bool(flag) for flag in pattern.values]
    period = meta.count("attention.sliding_window_pattern", period)
    return [period == 0 or i % period < period - 1 for i in range(layers)]


def _gpt_oss(meta: _Metadata) -> ModelSpec:
    # llama.cpp's gpt-oss (LLM_ARCH_OPENAI_MOE): biased q/k/v/o, a learned sink logit per head (attn_sinks),
    # sliding and full layers alternating (even layers windowed), every layer a mixture of experts with biased
    # experts (ffn_*_exps.bias) and router (ffn_gate_inp.bias) and the clamped SwiGLU; post_attention_norm is
    # the norm before the MLP.
    layers = _layer_count(meta)
    attention = _attention(meta, sinks=True)
    windowed = replace(attention, window=meta.int("attention.sliding_window"))
    experts = replace(_experts(meta, bias=True, router_bias=True), activation="swiglu_clamp")
    flags = _swa_layers(meta, layers, period=2)
    return _model(meta, "gpt_oss", [Block(windowed if flags[i] else attention, experts) for i in range(layers)])


def _deepseek2(meta: _Metadata) -> ModelSpec:
    # llama.cpp's deepseek2 (DeepSeek-V2, -V3, -R1): multi-head latent attention; leading_dense_block_count dense
    # layers, then mixtures of experts with expert_shared_count shared experts of the experts' width. Files
    # converted since llama.cpp's MLA change hold the latent's widths under key_length/value_length (and
    # head_count_kv = 1) and each head's under key_length_mla/value_length_mla, with attn_kv_b split into
    # attn_k_b and attn_v_b; older files hold each head's widths under the plain keys.
    heads = meta.int("attention.head_count")
    split = meta.has_key("attention.key_length_mla")
    head_dim = meta.int("attention.key_length_mla" if split else "attention.key_length")
    rope = meta.int("rope.dimension_count")
    if rope >= head_dim:
        raise InputError(f"{meta.where}: '{meta.key('rope.dimension_count')}' ({rope}) must be less than the "
                         f"query/key head width ({head_dim})")
    q_lora = meta.count("attention.q_lora_rank", 0)  # 0 or absent: a full query projection (V2-Lite)
    attention = Attention(heads=heads, kv_heads=heads, head_dim=head_dim,
                          qkv_bias=meta.has("blk.0.attn_kv_a_mqa.bias"), out_bias=meta.has("blk.0.attn_output.bias"),
                          q_lora_rank=q_lora or None, kv_lora_rank=meta.int("attention.kv_lora_rank"),
                          qk_rope_head_dim=rope,
                          v_head_dim=meta.int("attention.value_length_mla" if split else "attention.value_length"))
    layers = _layer_count(meta)
    dense = _dense_mlp(meta)
    if meta.count("expert_count", 0) <= 1:
        return _model(meta, "deepseek_v3", [Block(attention, dense)] * layers)
    width = meta.int("expert_feed_forward_length")
    experts = _experts(meta, shared_intermediate_size=meta.count("expert_shared_count", 0) * width)
    first_moe = meta.count("leading_dense_block_count", 0)
    return _model(meta, "deepseek_v3", [Block(attention, dense if i < first_moe else experts) for i in range(layers)])


def _olmo2(meta: _Metadata) -> ModelSpec:
    # A norm after attention and after the MLP only (post_attention_norm, post_ffw_norm), and RMSNorms over all
    # query heads and all key heads at once.
    block = Block(_attention(meta, qk_norm="full"), _dense_mlp(meta), pre_norms=False, post_norms=True)
    return _model(meta, "olmo2", [block] * _layer_count(meta))


def _smollm3(meta: _Metadata) -> ModelSpec:
    # Llama with every 4th layer attending without RoPE: llama.cpp hard-codes n_no_rope_layer_step = 4 (no key).
    attention, mlp = _attention(meta), _dense_mlp(meta)
    nope = replace(attention, rope_dim=0)
    return _model(meta, "smollm3", [Block(nope if (i + 1) % 4 == 0 else attention, mlp)
                                    for i in range(_layer_count(meta))])


def _granite(meta: _Metadata) -> ModelSpec:
    # Llama with scalar multipliers (embedding_scale, residual_scale, logit_scale) on the embeddings, each
    # residual branch and the logits.
    block = Block(_attention(meta), _dense_mlp(meta))
    return _model(meta, "granite", [block] * _layer_count(meta), embedding_scale=True, residual_scale=True,
                  logits_scale=True)


def _phi2(meta: _Metadata) -> ModelSpec:
    # Phi-1/1.5/2 (transformers' phi): one LayerNorm feeding attention and MLP in parallel, biases everywhere
    # (output.bias too), RoPE on the first rope.dimension_count channels of each head, a tanh-GELU MLP.
    attention = _attention(meta)
    attention = replace(attention, rope_dim=meta.count("rope.dimension_count", attention.head_dim))
    mlp = MLP(intermediate_size=meta.int("feed_forward_length"), activation="gelu_tanh", gated=False, bias=True)
    block = Block(attention, mlp, norm="layernorm", parallel=True)
    return _model(meta, "phi", [block] * _layer_count(meta), norm="layernorm", lm_head_bias=True)


_LLAMA4_CHUNK = 8192  # llama.cpp's n_swa for llama4: "currently it's the same for Scout and Maverick"


def _llama4(meta: _Metadata) -> ModelSpec:
    # llama.cpp's llama4 (text): 3 of every 4 layers use RoPE, chunked attention over 8192-token chunks and a
    # weightless L2 q/k norm (off with 128 experts: Maverick); every 4th layer is NoPE with full attention.
    # Every interleave_moe_layer_step-th layer is a mixture of experts plus one shared expert, both of
    # expert_feed_forward_length; the others are dense of feed_forward_length.
    if meta.has_key("attention.sliding_window") and meta.count("attention.sliding_window") == 0:
        raise InputError(f"{meta.where}: '{meta.key('attention.sliding_window')}' = 0 (a llama4 file without "
                         f"chunked attention) is not supported")
    layers = _layer_count(meta)
    step = meta.int("interleave_moe_layer_step", default=1)
    experts = _experts(meta, shared_intermediate_size=meta.int("expert_feed_forward_length"))
    dense = _dense_mlp(meta)
    base = _attention(meta)
    rope = replace(base, chunk=_LLAMA4_CHUNK, qk_norm=None if experts.experts == 128 else "l2")
    nope = replace(base, rope_dim=0)
    blocks = [Block(nope if (i + 1) % 4 == 0 else rope, experts if (i + 1) % step == 0 else dense)
              for i in range(layers)]
    return _model(meta, "llama4_text", blocks)


_ARCHITECTURES: dict[str, Callable[[_Metadata], ModelSpec]] = {
    "llama": _uniform,
    "qwen2": _uniform,
    "phi3": _uniform,
    "gemma": _uniform,
    "gpt2": _uniform,
    "qwen3": _qwen3,
    "qwen3moe": _qwen3moe,
    "gpt-oss": _gpt_oss,
    "deepseek2": _deepseek2,
    "olmo2": _olmo2,
    "smollm3": _smollm3,
    "granite": _granite,
    "phi2": _phi2,
    "llama4": _llama4,
}
SUPPORTED_ARCHITECTURES = tuple(_ARCHITECTURES)


def _split_fused(spec: ModelSpec, tensor: TensorInfo, part: str) -> list[tuple[str, int]]:
    """(role, elements) of a tensor; fused Q/K/V and gate+up tensors split by their shares."""
    d, q, kv, inter = spec.hidden_size, spec.q_size, spec.kv_size, spec.intermediate_size
    if part == "attn_qkv":
        if tensor.elements != d * (q + 2 * kv):
            raise InputError(f"tensor '{tensor.name}' has shape {list(tensor.dims)}; the metadata implies "
                             f"[{d}, {q + 2 * kv}]")
        return [(arch.Q_PROJ, d * q), (arch.K_PROJ, d * kv), (arch.V_PROJ, d * kv)]
    if part == "ffn_up" and spec.gated_mlp and tensor.elements == 2 * d * inter:
        return [(arch.GATE_PROJ, d * inter), (arch.UP_PROJ, d * inter)]  # Phi-3's fused gate and up
    role = _TENSOR_ROLES.get(part) if spec.gated_mlp else _PLAIN_MLP_ROLES.get(part, _TENSOR_ROLES.get(part))
    return [] if role is None else [(role, tensor.elements)]


# llama.cpp's tensor names (gguf.TENSOR_NAMES, without "blk.N.") -> the roles of architecture.py.
_TENSOR_ROLES = {
    "attn_q": arch.Q_PROJ, "attn_k": arch.K_PROJ, "attn_v": arch.V_PROJ, "attn_output": arch.O_PROJ,
    "attn_q_a": arch.Q_A_PROJ, "attn_q_b": arch.Q_B_PROJ, "attn_kv_a_mqa": arch.KV_A_PROJ, "attn_kv_b": arch.KV_B_PROJ,
    "attn_k_b": arch.KV_B_PROJ, "attn_v_b": arch.KV_B_PROJ,  # newer files split kv_b_proj into its two halves
    "ffn_gate": arch.GATE_PROJ, "ffn_up": arch.UP_PROJ, "ffn_down": arch.DOWN_PROJ, "ffn_gate_inp": arch.ROUTER,
    "ffn_gate_exps": arch.EXPERT_GATE_PROJ, "ffn_up_exps": arch.EXPERT_UP_PROJ, "ffn_down_exps": arch.EXPERT_DOWN_PROJ,
    "ffn_gate_shexp": arch.SHARED_GATE_PROJ, "ffn_up_shexp": arch.SHARED_UP_PROJ,
    "ffn_down_shexp": arch.SHARED_DOWN_PROJ,
}
_PLAIN_MLP_ROLES = {"ffn_up": arch.FC, "ffn_down": arch.PROJ}
_OLD_EXPERT = re.compile(r"ffn_(gate|up|down)\.\d+")  # early Mixtral files: one tensor per expert
_VECTORS = ("attn_norm", "ffn_norm", "attn_q_norm", "attn_k_norm", "attn_q_a_norm", "attn_kv_a_norm",
            "attn_post_norm", "post_attention_norm", "post_ffw_norm", "ffn_post_norm", "attn_sinks")


def _role_elements(spec: ModelSpec, tensor: TensorInfo) -> list[tuple[str, int]]:
    """Which model roles a tensor's elements belong to; empty for a tensor outside the cost model."""
    if tensor.name == "token_embd.weight":
        return [(arch.EMBED, tensor.elements)]
    if tensor.name == "position_embd.weight":
        return [(arch.POSITIONS, tensor.elements)]
    if tensor.name == "output.weight":
        return [(arch.LM_HEAD, tensor.elements)]
    if tensor.name in ("output_norm.weight", "output_norm.bias", "output.bias"):
        return [(arch.VECTORS, tensor.elements)]
    match = _LAYER_TENSOR.fullmatch(tensor.name)
    if match is None or int(match.group(1)) >= spec.num_layers:
        return []
    part, kind = match.group(2), match.group(3)
    if part == "exp_probs_b":  # DeepSeek's routing correction: a buffer, not a parameter
        return []
    if kind == "bias" or part in _VECTORS:
        return [(arch.VECTORS, tensor.elements)]
    old_expert = _OLD_EXPERT.fullmatch(part)
    if old_expert:
        part = f"ffn_{old_expert.group(1)}_exps"
    return _split_fused(spec, tensor, part)


def _scheme(spec: ModelSpec, header: GGUFHeader, file_type: str) -> tuple[WeightScheme, tuple[str, ...], int]:
    """The file's formats by role; the tensors outside the model and their bytes."""
    parts: dict[str, dict[NumberFormat, int]] = {}
    unmodelled, unmodelled_bytes = [], 0
    for tensor in header.tensors:
        try:
            roles = _role_elements(spec, tensor)
        except InputError as err:
            raise InputError(f"{header.path}: {err}") from None
        if not roles:
            unmodelled.append(tensor.name)
            unmodelled_bytes += tensor.bytes
            continue
        fmt = format_for_ggml_type(tensor.ggml_type)
        if fmt is None:
            raise InputError(f"{header.path}: tensor '{tensor.name}' has ggml type {tensor.ggml_type}, "
                             f"which has no entry in llm-roofline's format table")
        for role, elements in roles:
            parts.setdefault(role, {})
            parts[role][fmt] = parts[role].get(fmt, 0) + elements
    expected: dict[str, int] = {}
    for t in spec.weight_tensors():
        expected[t.role] = expected.get(t.role, 0) + t.instances * t.elements
    for role, count in expected.items():
        found = sum(parts.get(role, {}).values())
        if found != count:
            raise InputError(f"{header.path}: the tensors for '{role}' hold {found} elements; the metadata "
                             f"implies {count} (missing or misshapen tensors)")
    by_role = tuple((role, blend_formats(parts[role].items())) for role in expected)
    matrices: dict[NumberFormat, int] = {}
    for role, formats in parts.items():
        if role != "vectors":
            for fmt, elements in formats.items():
                matrices[fmt] = matrices.get(fmt, 0) + elements
    default = max(matrices.items(), key=lambda item: (item[1], item[0].name))[0]
    scheme = WeightScheme(name=f"gguf:{file_type}", default=default, by_role=by_role,
                          source=f"tensor types of {header.path}")
    return scheme, tuple(unmodelled), unmodelled_bytes


def _file_type(header: GGUFHeader) -> str:
    from gguf import LlamaFileType

    value = header.metadata.get("general.file_type")
    if value is None:
        return "mixed"
    try:
        return LlamaFileType(value).name.removeprefix("MOSTLY_").lower()
    except ValueError:
        return "mixed"


def read_gguf_model(path: str | Path) -> GGUFModel:
    """A GGUF file as a model whose ``stored_weights`` are its tensors' formats, with a byte account."""
    try:
        return _read_gguf_model(path)
    except InputError as err:
        raise InputError(_one_line(str(err))) from None


def read_gguf_model_start(data: bytes | bytearray, size: int, name: str) -> GGUFModel:
    """A GGUF file from the first bytes of it (``data``: its header, at least) and its whole ``size`` in
    bytes: what an upload sends instead of gigabytes of tensor data. Tensor extents are checked against
    ``size``; a header longer than ``data`` is an error that says to send more."""
    from gguf import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGMLQuantizationType

    try:
        if not isinstance(size, int) or size < len(data):
            raise InputError(f"{name}: the file size ({size}) is smaller than the {len(data)} bytes sent")
        if len(data) < _HEADER_BYTES:
            raise InputError(f"{name}: not a GGUF file ({len(data)} bytes, shorter than a GGUF header)")
        header = _parse(data, size, name, GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGMLQuantizationType,
                        available=len(data))
        return _model_of(header)
    except InputError as err:
        raise InputError(_one_line(str(err))) from None


def _read_gguf_model(path: str | Path) -> GGUFModel:
    return _model_of(_read_header(path))


def _model_of(header: GGUFHeader) -> GGUFModel:
    spec = _model_from_header(header)
    file_type = _file_type(header)
    scheme, unmodelled, unmodelled_bytes = _scheme(spec, header, file_type)
    by_type: dict[str, int] = {}
    for tensor in header.tensors:
        by_type[tensor.ggml_type] = by_type.get(tensor.ggml_type, 0) + tensor.bytes
    return GGUFModel(replace(spec, stored_weights=scheme), header, file_type,
                     tuple(sorted(by_type.items(), key=lambda item: -item[1])), unmodelled, unmodelled_bytes)


def load_gguf_model(path: str | Path) -> ModelSpec:
    """The model of a GGUF file (``models.load_model`` sends ``.gguf`` paths here)."""
    return read_gguf_model(path).model
