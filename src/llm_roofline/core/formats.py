"""Number formats: storage bits per element (scales included) and the precision the math runs in.

The table lives in ``data/formats.toml``; this module parses it into frozen records that check their
own layout (a ggml block struct's bytes, or a group's scale and zero-point bits, must give the stated
bits per element). A format is accepted wherever a precision is, by name or alias (``int4``, ``f16``,
``q4_k``, ``awq``) or as a plain number of bits per element (``4.5``), which makes a custom format
with no per-row overhead.

A ``WeightScheme`` says which format each weight tensor of a model is stored in: one default and
exceptions by role (``lm_head``, ``attn.v_proj``, ``vectors`` for norms and biases, ...). A GGUF
file's tensors and llama.cpp's mixes (Q4_K_M, ...) become schemes; a single format is a uniform one.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from llm_roofline.core.architecture import WEIGHT_ROLES
from llm_roofline.core.errors import InputError, unknown_name
from llm_roofline.core.units import Quantity, Scalar

# The precisions a device can have a compute ceiling for, widest first.
PRECISIONS = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "fp4", "int8", "int4")

# When a device has no ceiling for a precision, the math runs on the next unit that can do it:
# e.g. int8 activations on a GPU without int8 units are widened to fp16.
PEAK_FALLBACK: dict[str, tuple[str, ...]] = {
    "fp64": ("fp64",),
    "fp32": ("fp32",),
    "tf32": ("tf32", "fp32"),
    "fp16": ("fp16", "bf16", "fp32"),
    "bf16": ("bf16", "fp16", "fp32"),
    "fp8": ("fp8", "fp16", "bf16", "fp32"),
    "fp4": ("fp4", "fp8", "fp16", "bf16", "fp32"),
    "int8": ("int8", "fp16", "bf16", "fp32"),
    "int4": ("int4", "int8", "fp16", "bf16", "fp32"),
}


# Bits of each precision's operands, to tell which of two is wider.
MATH_BITS = {"fp64": 64, "fp32": 32, "tf32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8": 8, "fp4": 4, "int4": 4}


def product_math(activations_math: str, operand_math: str) -> str:
    """The precision a matrix product runs in: the wider of its two operands' — the activations' and the
    weights' (or the KV cache's). Narrower weights are unpacked to the activations' precision (W4A16 runs
    fp16 products); narrower activations than the weights cannot feed a narrower unit, so W16A8 runs
    fp16 products too; equal widths (W8A8, W4A8's int8 side) run the activations' math."""
    return operand_math if MATH_BITS[operand_math] > MATH_BITS[activations_math] else activations_math


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """How one tensor is stored, and which compute ceiling its arithmetic uses."""

    name: str
    bits_per_element: float
    row_overhead_bits: float
    math: str
    source: str
    column_overhead_bits: float = 0.0
    ggml_type: str | None = None  # the GGUF tensor type stored in this format, if any
    block_elements: int = 1  # a row's length must be a multiple of this (ggml blocks)
    density: float = 1.0  # the share of a matrix's multiplies performed: 0.5 for 2:4 structured sparsity
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.name, self.bits_per_element, self.row_overhead_bits, self.math,
                                                self.column_overhead_bits, self.density)))

    def __hash__(self) -> int:  # hashed once: formats key every memoized plan, on every analysis
        return self._hash

    @property
    def bytes_per_element(self) -> float:
        return self.bits_per_element / 8

    @property
    def value_bits(self) -> float:
        """Bits of one stored value: ``bits_per_element`` less a sparse format's index metadata."""
        if self.density == 1:
            return self.bits_per_element
        return (self.bits_per_element - SPARSE_2_4_INDEX_BITS * self.density) / self.density

    def tensor_bytes(self, elements: Quantity, rows: Quantity | Scalar = 0, columns: Quantity | Scalar = 0) -> Quantity:
        """Bytes of a tensor of ``elements`` values whose ``rows`` output rows each carry a scale (and
        whose ``columns`` input channels each carry an index, GPTQ's g_idx).

        Works on Python numbers and numpy arrays alike.
        """
        return (elements * self.bits_per_element / 8 + rows * self.row_overhead_bits / 8
                + columns * self.column_overhead_bits / 8)


def _layout_bits(name: str, entry: dict[str, Any]) -> float | None:
    """Bits per element implied by a block or group layout, if the entry gives one."""
    if "block_elements" in entry:
        return float(8 * entry["block_bytes"] / entry["block_elements"])
    if "group_size" in entry:
        return float(entry["element_bits"] + entry["group_overhead_bits"] / entry["group_size"])
    return None


@functools.cache
def _catalogue() -> tuple[dict[str, NumberFormat], dict[str, str]]:
    text = resources.files("llm_roofline").joinpath("data/formats.toml").read_text()
    formats: dict[str, NumberFormat] = {}
    aliases: dict[str, str] = {}
    for name, entry in tomllib.loads(text).items():
        if entry["math"] not in PRECISIONS:
            raise ValueError(f"formats.toml: {name}: unknown math precision {entry['math']!r}")
        if not entry.get("source"):
            raise ValueError(f"formats.toml: {name}: a format needs a source")
        layout = _layout_bits(name, entry)
        if layout is not None and layout != entry["bits_per_element"]:
            raise ValueError(f"formats.toml: {name}: layout gives {layout} bits per element, "
                             f"bits_per_element says {entry['bits_per_element']}")
        formats[name] = NumberFormat(
            name=name,
            bits_per_element=float(entry["bits_per_element"]),
            row_overhead_bits=float(entry["row_overhead_bits"]),
            math=entry["math"],
            source=entry["source"],
            column_overhead_bits=float(entry.get("column_overhead_bits", 0)),
            ggml_type=entry.get("ggml_type"),
            block_elements=int(entry.get("block_elements", 1)),
        )
        aliases[name] = name
        for alias in entry.get("aliases", ()):
            aliases[alias] = name
    return formats, aliases


def format_names() -> list[str]:
    return list(_catalogue()[0])


@functools.cache
def _by_ggml_type() -> dict[str, NumberFormat]:
    return {fmt.ggml_type: fmt for fmt in _catalogue()[0].values() if fmt.ggml_type}


def format_for_ggml_type(type_name: str) -> NumberFormat | None:
    """The format a GGUF tensor of ggml type ``type_name`` (``Q4_K``) is stored in; None if not in the table."""
    return _by_ggml_type().get(type_name)


def _math_for_bits(bits: float) -> str:
    """The element precision of a format given only by its bits per weight. The figure includes the
    per-block scales (q8_0 stores 8.5 bits, an int8 model with group scales 8.0–8.3), so up to one bit
    above an element width still means that width; 4.x-bit formats unpack to int8 as ggml's do."""
    if bits > 17:
        return "fp32"
    if bits > 9:
        return "fp16"
    if bits > 4:
        return "int8"
    return "int4"


def get_format(spec: str | float | NumberFormat) -> NumberFormat:
    """A format by name or alias, or a custom one from a number of bits per element."""
    if isinstance(spec, NumberFormat):
        return spec
    formats, aliases = _catalogue()
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        bits = float(spec)
    else:
        key = str(spec).strip().lower()
        if key in aliases:
            return formats[aliases[key]]
        try:
            bits = float(key)
        except ValueError:
            raise unknown_name("precision", str(spec), formats) from None
    if not 1 <= bits <= 64:
        raise InputError(f"bits per element must be between 1 and 64, got {bits:g}")
    return NumberFormat(
        name=f"{bits:g}-bit",
        bits_per_element=bits,
        row_overhead_bits=0.0,
        math=_math_for_bits(bits),
        source="user-given bits per element",
    )


SPARSE_2_4_INDEX_BITS = 2  # per kept value: its position among the 4 (NVIDIA's 2:4 metadata)


def sparse_2_4(fmt: NumberFormat) -> NumberFormat:
    """``fmt`` pruned 2:4: two values of every four kept, each with a 2-bit index, so a dense element
    costs ``bits / 2 + 1`` bits (fp16: 9 of 16, int8: 5 of 8), and half the multiplies run (on sparse
    tensor cores: NVIDIA Ampere whitepaper, "Fine-Grained Structured Sparsity"). Per-row scales stay."""
    if fmt.density < 1:
        return fmt
    return NumberFormat(
        name=f"{fmt.name}+2:4",
        bits_per_element=fmt.bits_per_element / 2 + SPARSE_2_4_INDEX_BITS / 2,
        row_overhead_bits=fmt.row_overhead_bits,
        math=fmt.math,
        source=f"{fmt.source}; 2:4 structured sparsity: half the values, a 2-bit index each (NVIDIA Ampere whitepaper)",
        column_overhead_bits=fmt.column_overhead_bits,
        density=0.5,
    )


def blend_formats(parts: Iterable[tuple[NumberFormat, int]]) -> NumberFormat:
    """One format for a role whose layers are stored in different formats: the element-weighted mean.

    ``parts``: (format, how many elements, or layers of equal size, are stored in it). Bytes over all
    layers stay exact: a tensor's bytes are linear in its elements.
    """
    counts: dict[NumberFormat, int] = {}
    for fmt, n in parts:
        if n > 0:
            counts[fmt] = counts.get(fmt, 0) + n
    if not counts:
        raise ValueError("blend_formats needs at least one format with a positive count")
    if len(counts) == 1:
        return next(iter(counts))
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0].name))
    return NumberFormat(
        name="+".join(fmt.name for fmt, _ in ordered),
        bits_per_element=sum(fmt.bits_per_element * n for fmt, n in ordered) / total,
        row_overhead_bits=sum(fmt.row_overhead_bits * n for fmt, n in ordered) / total,
        math=ordered[0][0].math,
        source="per-layer mix: " + ", ".join(f"{fmt.name} {100 * n / total:.1f}%" for fmt, n in ordered),
        column_overhead_bits=sum(fmt.column_overhead_bits * n for fmt, n in ordered) / total,
    )


@dataclass(frozen=True, slots=True)
class WeightScheme:
    """The format each weight tensor role is stored in: ``default``, except the roles in ``by_role``.

    Norm weights and biases (role ``vectors``) stay unquantized unless the scheme names their format:
    then they take the activations' format, at least 16-bit.
    """

    name: str
    default: NumberFormat
    by_role: tuple[tuple[str, NumberFormat], ...] = ()
    source: str = ""
    untied_head: bool = False  # a tied model's table stored twice: the lookup (embed) and the output (lm_head)
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __hash__(self) -> int:  # hashed once: schemes key every memoized plan, on every analysis
        return self._hash

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.name, self.default, self.by_role, self.untied_head)))
        for role, _ in self.by_role:
            if role not in WEIGHT_ROLES:
                raise InputError(f"weight scheme '{self.name}': unknown tensor role '{role}'; "
                                 f"known: {', '.join(WEIGHT_ROLES)}")

    @classmethod
    def uniform(cls, fmt: NumberFormat) -> WeightScheme:
        """Every matrix and embedding table in ``fmt``; norms and biases unquantized."""
        return cls(name=fmt.name, default=fmt, source=fmt.source)

    def format_for(self, role: str) -> NumberFormat:
        for name, fmt in self.by_role:
            if name == role:
                return fmt
        return self.default

    def vector_format(self) -> NumberFormat | None:
        """The format of norm weights and biases, when the scheme fixes it (a GGUF file does)."""
        for name, fmt in self.by_role:
            if name == "vectors":
                return fmt
        return None
