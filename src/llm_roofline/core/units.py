"""SI constants and the one formatter that turns raw SI numbers into human-readable figures.

Everything inside the package is in SI base units (FLOP, byte, second, FLOP/s, byte/s). Decimal
prefixes are powers of 1000 (GB = 1e9 bytes); binary prefixes are powers of 1024 (GiB = 2**30).
The two are never mixed: only this module converts, and only at the edges (tables, CLI flags).
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from typing_extensions import TypeIs

# A count or a cost comes in two kinds. A Scalar is one configuration's: a Python number (an int is
# accepted wherever a float is). An Array is a grid's: a numpy array with one value per configuration.
Scalar: TypeAlias = float
Array: TypeAlias = "npt.NDArray[np.number[Any]]"
# A cost formula is generic over the kind of its counts: all Scalars (one step) give a Scalar, all
# Arrays (a grid of steps) give an Array; the records of one step's results hold Scalars only.
Quantity = TypeVar("Quantity", Scalar, Array)

KILO = 1e3
MEGA = 1e6
GIGA = 1e9
TERA = 1e12
GIB = 2**30

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"),
             (1e-9, "n"))


def si(value: float | None, unit: str = "", digits: int = 3) -> str:
    """Format a raw SI value with a decimal prefix: si(3.36e7, 'FLOP') -> '33.6 MFLOP', si(2e-3, 'J') -> '2 mJ'.

    A plain number (no unit) takes no prefix below 1: si(0.01) -> '0.01' (a bare 'm' would read as metres).
    None or NaN (a figure that is not known) -> '-'.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return f"inf {unit}".strip()
    magnitude = abs(value)
    for scale, prefix in _PREFIXES:
        if scale < 1 and not unit:
            break
        if magnitude >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}".strip()
    return f"{value:.{digits}g} {unit}".strip()


def seconds(value_s: float) -> str:
    """Format a duration in seconds with the most readable unit: 0.0092 -> '9.2 ms', 4321 -> '4321 s'."""
    magnitude = abs(value_s)
    if magnitude >= 1000:
        return f"{value_s:.0f} s"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if magnitude >= scale:
            return f"{value_s / scale:.3g} {unit}"
    return f"{value_s / 1e-9:.3g} ns"


def binary_bytes(value_bytes: float) -> str:
    """Format a memory capacity in binary units: 17179869184 -> '16 GiB'."""
    for scale, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value_bytes) >= scale:
            return f"{value_bytes / scale:.3g} {unit}"
    return f"{value_bytes:.0f} B"


def minimum(a: Quantity, b: Quantity | Scalar) -> Quantity:
    """min(a, b) made of arithmetic, so that it works on numbers and numpy arrays alike."""
    return a - (a > b) * (a - b)



def is_array(value: object) -> TypeIs[Array]:
    """Whether a quantity is a grid's (a numpy array), asked without importing numpy: an array exists only
    once numpy is loaded. Numbers, numpy's scalars included, are one configuration's."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)
