"""Affine cost forms without numpy: the probes that find a plan's coefficients, and the plan written out
as one Python function.

Every cost formula of ``ops.py`` is affine in a step's counts (``transformer.StepCounts``), so a step
plan keeps each operator's cost fields as coefficients ``c0 + sum_j c_j x count_j``. Two things here
let one step be priced in plain Python, the numpy-free path ``analyze`` and the CLI take:

- ``Probe``: a short vector of floats with elementwise arithmetic. The formulas are evaluated once with
  probes as counts (all zero, each count one alone, two generic points), which gives the coefficients
  and checks them. A formula that branches on a count cannot be affine: a probe refuses to be a bool.
- ``affine_source`` / ``compile_function``: a plan's coefficients written as straight-line Python (zero
  terms dropped, each constant written with ``repr``, which round-trips a float exactly), compiled
  once per plan. One configuration then costs one call with no loop over operators or fields — what
  ``namedtuple`` and ``dataclasses`` do for their methods.

Arrays of configurations (the sweep) use the same coefficients as a numpy matrix
(``StepPlan.coefficients``); tests hold the two to each other.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

# The two generic points where the coefficients must reproduce the formulas: every count nonzero, small
# then large (products of counts, a formula that is not affine, would show at one of them).
CHECK_POINTS = (
    (3.0, 7.0, 11.0, 13.0, 17.0, 19.0, 23.0, 29.0, 31.0, 37.0, 41.0, 43.0, 47.0, 53.0),
    (4.1e3, 2.9e6, 7.3e7, 3.7e10, 5.9e7, 1.3e10, 3.1e7, 2.3e10, 4.3e7, 1.9e10, 61.0, 97.0, 59.0, 83.0),
)
MAX_COUNTS = len(CHECK_POINTS[0])


class NotAffineError(ValueError):
    """A cost formula branched on a count, so it is not affine in the counts."""


class Probe(tuple[float, ...]):
    """Values of one count at the probe points: arithmetic elementwise, with numbers broadcast."""

    __slots__ = ()

    def _map(self, other: object, function: Callable[[float, float], float]) -> Probe:
        if isinstance(other, Probe):
            return Probe(map(function, self, other))
        return Probe(function(x, _number(other)) for x in self)

    def _rmap(self, other: object, function: Callable[[float, float], float]) -> Probe:
        value = _number(other)
        return Probe(function(value, x) for x in self)

    def __add__(self, other: object) -> Probe:
        return self._map(other, operator.add)

    def __radd__(self, other: object) -> Probe:
        return self._rmap(other, operator.add)

    def __sub__(self, other: object) -> Probe:
        return self._map(other, operator.sub)

    def __rsub__(self, other: object) -> Probe:
        return self._rmap(other, operator.sub)

    def __mul__(self, other: object) -> Probe:
        return self._map(other, operator.mul)

    def __rmul__(self, other: object) -> Probe:
        return self._rmap(other, operator.mul)

    def __truediv__(self, other: object) -> Probe:
        return self._map(other, operator.truediv)

    def __rtruediv__(self, other: object) -> Probe:
        return self._rmap(other, operator.truediv)

    def __neg__(self) -> Probe:
        return Probe(-x for x in self)

    # Comparisons are elementwise, 1.0 or 0.0, as numpy's are (``units.minimum`` is made of them): a formula
    # that clamps a count comes out as a quantity the coefficient check refuses, not as an error here.
    def __gt__(self, other: object) -> Probe:  # type: ignore[override]
        return self._map(other, lambda x, y: float(x > y))

    def __lt__(self, other: object) -> Probe:  # type: ignore[override]
        return self._map(other, lambda x, y: float(x < y))

    def __ge__(self, other: object) -> Probe:  # type: ignore[override]
        return self._map(other, lambda x, y: float(x >= y))

    def __le__(self, other: object) -> Probe:  # type: ignore[override]
        return self._map(other, lambda x, y: float(x <= y))

    def __bool__(self) -> bool:
        raise NotAffineError("a cost formula branched on a step count: it is not affine in the counts (see ops.py)")

    def nonzero(self) -> bool:
        """Whether the quantity is nonzero at any probe point."""
        return any(x != 0.0 for x in self)


def _number(value: object) -> float:
    """A number a probe meets in a formula (a count's coefficient, a model dimension)."""
    if not isinstance(value, int | float):
        raise TypeError(f"a probe meets numbers and probes in a cost formula, not {type(value).__name__}")
    return float(value)


def probes(size: int) -> tuple[Probe, ...]:
    """``size`` counts as probes over the points: all zero, each count 1 alone, then the check points."""
    if size > MAX_COUNTS:
        raise ValueError(f"a model with {size} step counts: more than the plan's probes ({MAX_COUNTS})")
    return tuple(Probe((0.0, *(1.0 if i == j else 0.0 for i in range(size)), CHECK_POINTS[0][j], CHECK_POINTS[1][j]))
                 for j in range(size))


def at_probes(value: Probe | SupportsFloat, size: int) -> tuple[float, ...]:
    """A formula's result over the ``1 + size + 2`` probe points (a number is the same at all of them)."""
    if isinstance(value, Probe):
        return tuple(value)
    return (float(value),) * (size + 3)


def coefficients(values: Sequence[float], size: int) -> tuple[float, ...]:
    """(c0, c1, ..., c_size) from a quantity's values at the probes, checked at the two generic points."""
    constant = values[0]
    row = (constant, *(values[1 + j] - constant for j in range(size)))
    for point, got in zip(CHECK_POINTS, values[1 + size:], strict=True):
        predicted = evaluate(row, point[:size])
        if abs(predicted - got) > 1e-12 * max(abs(got), abs(predicted)):
            raise NotAffineError(f"value {got!r} at a check point, {predicted!r} from the coefficients")
    return row


def evaluate(row: Sequence[float], counts: Sequence[float]) -> float:
    """c0 + sum_j c_j x count_j (a row of coefficients at one step's counts)."""
    total = row[0]
    for coefficient, count in zip(row[1:], counts, strict=True):
        if coefficient:
            total += coefficient * count
    return total


def affine_source(row: Sequence[float], names: Sequence[str]) -> str:
    """``row`` as a Python expression in the count variables ``names`` (zero terms dropped)."""
    terms = [repr(float(row[0]))] if row[0] or not any(row[1:]) else []
    for coefficient, name in zip(row[1:], names, strict=True):
        if coefficient == 1.0:
            terms.append(name)
        elif coefficient:
            terms.append(f"{coefficient!r} * {name}")
    return " + ".join(terms)


def compile_function(name: str, source_lines: Sequence[str], namespace: dict[str, Any]) -> Callable[..., Any]:
    """``def name...`` from its lines, compiled with ``namespace`` as its globals."""
    source = "\n".join(source_lines)
    code = compile(source, f"<llm_roofline.compiled {name}>", "exec")
    scope = dict(namespace)
    exec(code, scope)  # the source is generated above from numbers and names of this package only
    function: Callable[..., Any] = scope[name]
    return function
