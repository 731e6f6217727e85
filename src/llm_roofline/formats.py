"""Number formats: storage bits per element (scales included) and the precision the math runs in.

The table lives in ``data/formats.toml``; this module parses it into frozen records. A format is
accepted wherever a precision is, by name or alias (``int4``, ``f16``) or as a plain number of bits
per element (``4.5``), which makes a custom format with no per-row overhead.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources

from .errors import InputError, unknown_name
from .units import Quantity

# The precisions a device can have a compute ceiling for, widest first.
PRECISIONS = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "int4")

# When a device has no ceiling for a precision, the math runs on the next unit that can do it:
# e.g. int8 activations on a GPU without int8 units are widened to fp16.
PEAK_FALLBACK: dict[str, tuple[str, ...]] = {
    "fp64": ("fp64",),
    "fp32": ("fp32",),
    "tf32": ("tf32", "fp32"),
    "fp16": ("fp16", "bf16", "fp32"),
    "bf16": ("bf16", "fp16", "fp32"),
    "fp8": ("fp8", "fp16", "bf16", "fp32"),
    "int8": ("int8", "fp16", "bf16", "fp32"),
    "int4": ("int4", "int8", "fp16", "bf16", "fp32"),
}


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """How one tensor is stored, and which compute ceiling its arithmetic uses."""

    name: str
    bits_per_element: float
    row_overhead_bits: float
    math: str
    source: str

    @property
    def bytes_per_element(self) -> float:
        return self.bits_per_element / 8

    def tensor_bytes(self, elements: Quantity, rows: Quantity = 0) -> Quantity:
        """Bytes of a tensor of ``elements`` values whose ``rows`` output rows each carry a scale.

        Works on Python numbers and numpy arrays alike.
        """
        return elements * self.bits_per_element / 8 + rows * self.row_overhead_bits / 8


@functools.cache
def _catalogue() -> tuple[dict[str, NumberFormat], dict[str, str]]:
    text = resources.files(__package__).joinpath("data/formats.toml").read_text()
    formats: dict[str, NumberFormat] = {}
    aliases: dict[str, str] = {}
    for name, entry in tomllib.loads(text).items():
        if entry["math"] not in PRECISIONS:
            raise ValueError(f"formats.toml: {name}: unknown math precision {entry['math']!r}")
        if not entry.get("source"):
            raise ValueError(f"formats.toml: {name}: a format needs a source")
        formats[name] = NumberFormat(
            name=name,
            bits_per_element=float(entry["bits_per_element"]),
            row_overhead_bits=float(entry["row_overhead_bits"]),
            math=entry["math"],
            source=entry["source"],
        )
        aliases[name] = name
        for alias in entry.get("aliases", ()):
            aliases[alias] = name
    return formats, aliases


def format_names() -> list[str]:
    return list(_catalogue()[0])


def _math_for_bits(bits: float) -> str:
    if bits > 16:
        return "fp32"
    if bits > 8:
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
