"""Devices: frozen, validated, cited records of memory and compute ceilings.

One TOML file per device under ``data/hardware/`` (read by ``inputs/device_files.py``). A user's own
device comes from a file path (TOML or JSON in the same schema) or from explicit figures
(``custom_hardware``). Every figure is in
SI base units and every file must name its ``source``: loading fails without one. A file may carry an
``[efficiency]`` table (``EfficiencyParams``, defined here and used by ``efficiency.py``; ``llm-roofline
calibrate`` writes one): the device's own fitted efficiency parameters, which replace its class's
defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llm_roofline.core import limits
from llm_roofline.core.errors import InputError, shown
from llm_roofline.core.formats import PEAK_FALLBACK, PRECISIONS

KINDS = ("gpu", "cpu", "npu")
# What a usable-memory limit binds: everything the program holds ("process": an app's share of a phone,
# the OS's share of a Jetson), or only what the accelerator maps ("accelerator": macOS's Metal working set,
# which leaves the rest of the memory to the CPU).
USABLE_MEMORY_SCOPES = ("process", "accelerator")

# The parameters in the order they are stored and reported, with their meaning.
PARAMETERS: dict[str, str] = {
    "bandwidth_efficiency": "fraction of the memory bandwidth that memory-bound operators achieve",
    "compute_efficiency": "fraction of the compute ceiling that compute-bound operators achieve",
    "dequant_compute_factor": "share of compute_efficiency left to a matmul that unpacks quantized weights",
    "overhead_per_op_s": "fixed time per operator instance (kernel launch, dispatch, sync), in seconds",
    "overhead_per_step_s": "fixed time per forward step (graph build, sampling, host round trip), in seconds",
}
# The range each parameter may take, which is also the box a fit searches. Fractions stop at 1, so the
# expectation is never faster than the bound: a device measured above its roof has a ceiling figure to fix.
BOUNDS: dict[str, tuple[float, float]] = {
    "bandwidth_efficiency": (0.05, 1.0),
    "compute_efficiency": (0.02, 1.0),
    "dequant_compute_factor": (0.2, 1.0),
    "overhead_per_op_s": (0.0, 1e-4),
    "overhead_per_step_s": (0.0, 0.1),
}


@dataclass(frozen=True, slots=True)
class EfficiencyParams:
    """Achievable fractions of the two roofs and the fixed costs, for one device or class of devices."""

    bandwidth_efficiency: float
    compute_efficiency: float
    dequant_compute_factor: float
    overhead_per_op_s: float
    overhead_per_step_s: float
    source: str = ""

    def __post_init__(self) -> None:
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not valid or not low <= value <= high:
                raise InputError(f"efficiency: {name} must be a number in [{low:g}, {high:g}], got {value!r}")

    def values(self) -> tuple[float, ...]:
        """The five parameters, in ``PARAMETERS`` order."""
        return (self.bandwidth_efficiency, self.compute_efficiency, self.dequant_compute_factor,
                self.overhead_per_op_s, self.overhead_per_step_s)

    def to_dict(self) -> dict[str, object]:
        return {**{name: getattr(self, name) for name in PARAMETERS}, "source": self.source}

    def rounded(self, digits: int = 4) -> EfficiencyParams:
        """The same parameters to ``digits`` significant digits (what a saved file holds)."""

        def to_digits(value: float) -> float:
            return float(f"{value:.{digits}g}")

        return replace(self, bandwidth_efficiency=to_digits(self.bandwidth_efficiency),
                       compute_efficiency=to_digits(self.compute_efficiency),
                       dequant_compute_factor=to_digits(self.dequant_compute_factor),
                       overhead_per_op_s=to_digits(self.overhead_per_op_s),
                       overhead_per_step_s=to_digits(self.overhead_per_step_s))


def params_from_dict(data: Mapping[str, Any], where: str) -> EfficiencyParams:
    """Parameters from a parsed ``[efficiency]`` table, with errors that name the file."""
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: efficiency must be a table of {', '.join(PARAMETERS)}")
    missing = [name for name in PARAMETERS if name not in data]
    if missing:
        raise InputError(f"{where}: efficiency is missing {', '.join(missing)}")
    try:
        return EfficiencyParams(**{name: data[name] for name in PARAMETERS}, source=str(data.get("source", "")))
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


@dataclass(frozen=True, slots=True)
class HardwareSpec:
    """A device's roofline: one memory ceiling and one dense compute ceiling per precision."""

    name: str
    display_name: str
    kind: str
    memory_bytes: float | None  # None: capacity unknown (a device given by bandwidth and peak only)
    memory_bytes_per_s: float
    peak_flops_per_s: dict[str, float] = field(hash=False)
    source: str
    notes: str = ""
    # Memory an application can use when the OS keeps part of it (phones); None: all of memory_bytes.
    usable_memory_bytes: float | None = None
    # Sequential read bandwidth of the device's storage (UFS, NVMe, SD card), for streaming weights.
    storage_bytes_per_s: float | None = None
    # Efficiency parameters fitted for this very device (``llm-roofline calibrate``); None: its class's defaults.
    efficiency: EfficiencyParams | None = None
    # Sparse tensor cores for 2:4 structured sparsity (half the multiplies of a 2:4 weight matrix skipped),
    # with the document that says so; devices without them run a 2:4 model dense.
    sparse_2_4: bool = False
    sparse_2_4_source: str = ""
    # The document (or the rule and its document) that gives usable_memory_bytes, and what the limit binds.
    usable_memory_source: str = ""
    usable_memory_scope: str = "process"
    # fp16 tensor math accumulating in fp16, where the device runs it faster than its fp16 figure (which
    # accumulates in fp32): GeForce cards run fp32 accumulation at half rate. None: the fp16 figure. What an
    # engine that accumulates in fp16 reaches (engines.toml fp16_accumulate; for_engine).
    fp16_accumulate_flops_per_s: float | None = None
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __hash__(self) -> int:  # hashed once: devices key memoized figures
        return self._hash

    def __post_init__(self) -> None:
        where = f"hardware '{self.name}'"
        if self.kind not in KINDS:
            raise InputError(f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for label, limit in (("memory_bytes", "memory_bytes"), ("memory_bytes_per_s", "memory_bytes_per_s"),
                             ("usable_memory_bytes", "memory_bytes"), ("storage_bytes_per_s", "memory_bytes_per_s")):
            value = getattr(self, label)
            if value is not None or label == "memory_bytes_per_s":
                limits.figure(label, value, limits.DEVICE[limit], f"{where}: ")
        if (self.usable_memory_bytes is not None and self.memory_bytes is not None
                and self.usable_memory_bytes > self.memory_bytes):
            raise InputError(f"{where}: usable_memory_bytes ({self.usable_memory_bytes:g}) exceeds memory_bytes "
                             f"({self.memory_bytes:g})")
        if self.usable_memory_scope not in USABLE_MEMORY_SCOPES:
            raise InputError(f"{where}: usable_memory_scope must be one of {', '.join(USABLE_MEMORY_SCOPES)}, "
                             f"got {shown(self.usable_memory_scope)}")
        if not isinstance(self.peak_flops_per_s, dict) or not self.peak_flops_per_s:
            raise InputError(f"{where}: peak_flops_per_s needs at least one precision ({', '.join(PRECISIONS)})")
        for precision, value in self.peak_flops_per_s.items():
            if precision not in PRECISIONS:
                raise InputError(f"{where}: unknown precision {shown(precision)} in peak_flops_per_s; "
                                 f"known: {', '.join(PRECISIONS)}")
            limits.figure(f"peak_flops_per_s.{precision}", value, limits.DEVICE["peak_flops_per_s"], f"{where}: ")
        if self.fp16_accumulate_flops_per_s is not None:
            limits.figure("fp16_accumulate_flops_per_s", self.fp16_accumulate_flops_per_s,
                          limits.DEVICE["peak_flops_per_s"], f"{where}: ")
            if self.fp16_accumulate_flops_per_s < self.peak_flops_per_s.get("fp16", 0.0):
                raise InputError(f"{where}: fp16_accumulate_flops_per_s ({self.fp16_accumulate_flops_per_s:g}) is "
                                 f"below its fp16 figure ({self.peak_flops_per_s['fp16']:g}): accumulating in fp16 "
                                 "is never slower")
        if not str(self.source).strip():
            raise InputError(f"{where}: every device needs a source (datasheet URL or measurement)")
        if not isinstance(self.sparse_2_4, bool):
            raise InputError(f"{where}: sparse_2_4 must be true or false, got {self.sparse_2_4!r}")
        if self.sparse_2_4 and not str(self.sparse_2_4_source).strip():
            raise InputError(f"{where}: sparse_2_4 = true needs sparse_2_4_source (the document that says so)")
        object.__setattr__(self, "_hash", hash((self.name, self.kind, self.memory_bytes, self.memory_bytes_per_s,
                                                tuple(self.peak_flops_per_s.items()), self.usable_memory_bytes,
                                                self.efficiency, self.sparse_2_4, self.fp16_accumulate_flops_per_s)))

    def peak_for(self, precision: str) -> tuple[str, float]:
        """The ceiling arithmetic of ``precision`` runs at: (precision used, FLOP/s).

        Falls back along ``formats.PEAK_FALLBACK`` when the device has no unit for that precision.
        """
        for candidate in PEAK_FALLBACK[precision]:
            if candidate in self.peak_flops_per_s:
                return candidate, self.peak_flops_per_s[candidate]
        raise InputError(
            f"hardware '{self.name}' has no compute ceiling usable for {precision} math "
            f"(tried {', '.join(PEAK_FALLBACK[precision])}); it has {', '.join(self.peak_flops_per_s)}"
        )

    def for_engine(self, fp16_accumulate: bool) -> HardwareSpec:
        """The device as an engine's matrix products see it: with ``fp16_accumulate`` (cuBLAS
        CUBLAS_COMPUTE_16F), its fp16 ceiling is the fp16-accumulate rate where it has one; else itself."""
        if not fp16_accumulate or self.fp16_accumulate_flops_per_s is None:
            return self
        return replace(self, peak_flops_per_s={**self.peak_flops_per_s, "fp16": self.fp16_accumulate_flops_per_s})

    @property
    def available_memory_bytes(self) -> float | None:
        """What a model may occupy: the usable share where the OS keeps some, else the whole capacity."""
        return self.memory_bytes if self.usable_memory_bytes is None else self.usable_memory_bytes

    def ridge_point(self, precision: str) -> float:
        """Arithmetic intensity (FLOP/byte) where the compute roof meets the memory slope."""
        return self.peak_for(precision)[1] / self.memory_bytes_per_s

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "kind": self.kind,
            "memory_bytes": self.memory_bytes,
            "memory_bytes_per_s": self.memory_bytes_per_s,
            "peak_flops_per_s": dict(self.peak_flops_per_s),
            "source": self.source,
            "notes": self.notes,
            "usable_memory_bytes": self.usable_memory_bytes,
            "storage_bytes_per_s": self.storage_bytes_per_s,
            "efficiency": None if self.efficiency is None else self.efficiency.to_dict(),
            "sparse_2_4": self.sparse_2_4,
            "sparse_2_4_source": self.sparse_2_4_source,
            "usable_memory_source": self.usable_memory_source,
            "usable_memory_scope": self.usable_memory_scope,
            "fp16_accumulate_flops_per_s": self.fp16_accumulate_flops_per_s,
        }


def hardware_from_dict(data: dict[str, Any], where: str) -> HardwareSpec:
    """Build a device from a parsed data file, with errors that name the file and the field."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a table of device fields")
    missing = [k for k in ("name", "kind", "memory_bytes", "memory_bytes_per_s", "peak_flops_per_s", "source")
               if k not in data]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    peaks = data["peak_flops_per_s"]
    if not isinstance(peaks, dict):
        raise InputError(f"{where}: peak_flops_per_s must be a table of precision = FLOP/s")
    texts: dict[str, str] = {}
    for key, default in (("name", None), ("display_name", data["name"]), ("kind", None), ("source", None),
                         ("notes", ""), ("sparse_2_4_source", ""), ("usable_memory_source", ""),
                         ("usable_memory_scope", "process")):
        value = data.get(key, default)
        if not isinstance(value, str):
            raise InputError(f"{where}: {key} must be a string, got {shown(value)}")
        texts[key] = value
    try:
        return HardwareSpec(
            name=texts["name"],
            display_name=texts["display_name"],
            kind=texts["kind"],
            memory_bytes=data["memory_bytes"],
            memory_bytes_per_s=data["memory_bytes_per_s"],
            peak_flops_per_s=dict(peaks),
            source=texts["source"],
            notes=texts["notes"],
            usable_memory_bytes=data.get("usable_memory_bytes"),
            storage_bytes_per_s=data.get("storage_bytes_per_s"),
            efficiency=None if data.get("efficiency") is None else params_from_dict(data["efficiency"], where),
            sparse_2_4=data.get("sparse_2_4", False),
            sparse_2_4_source=texts["sparse_2_4_source"],
            usable_memory_source=texts["usable_memory_source"],
            usable_memory_scope=texts["usable_memory_scope"],
            fp16_accumulate_flops_per_s=data.get("fp16_accumulate_flops_per_s"),
        )
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def custom_hardware(
    memory_bytes_per_s: float,
    peak_flops_per_s: dict[str, float],
    memory_bytes: float | None = None,
    name: str = "custom",
) -> HardwareSpec:
    """A device from explicit figures (CLI flags, exercises): bandwidth, peaks, capacity."""
    return HardwareSpec(
        name=name,
        display_name=name,
        kind="gpu",
        memory_bytes=memory_bytes,
        memory_bytes_per_s=memory_bytes_per_s,
        peak_flops_per_s=dict(peak_flops_per_s),
        source="user-given figures",
    )
