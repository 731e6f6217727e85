"""Devices: frozen, validated, cited records of memory and compute ceilings.

One TOML file per device under ``data/hardware/``. A user's own device comes from a file path
(TOML or JSON in the same schema) or from explicit figures (``custom_hardware``). Every figure is in
SI base units and every file must name its ``source``: loading fails without one. A file may carry an
``[efficiency]`` table (``efficiency.py``; ``llm-roofline calibrate`` writes one): the device's own
fitted efficiency parameters, which replace its class's defaults.
"""

from __future__ import annotations

import functools
import json
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from llm_roofline.core.efficiency import EfficiencyParams, params_from_dict
from llm_roofline.core.errors import InputError
from llm_roofline.core.formats import PEAK_FALLBACK, PRECISIONS
from llm_roofline.inputs.names import resolve_device

KINDS = ("gpu", "cpu", "npu")


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

    def __post_init__(self) -> None:
        where = f"hardware '{self.name}'"
        if self.kind not in KINDS:
            raise InputError(f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for label, value in (("memory_bytes", self.memory_bytes),
                             ("memory_bytes_per_s", self.memory_bytes_per_s),
                             ("usable_memory_bytes", self.usable_memory_bytes),
                             ("storage_bytes_per_s", self.storage_bytes_per_s)):
            if not (value is None and label != "memory_bytes_per_s") and not _finite_positive(value):
                raise InputError(f"{where}: {label} must be a number > 0, got {value!r}")
        if (self.usable_memory_bytes is not None and self.memory_bytes is not None
                and self.usable_memory_bytes > self.memory_bytes):
            raise InputError(f"{where}: usable_memory_bytes ({self.usable_memory_bytes:g}) exceeds memory_bytes "
                             f"({self.memory_bytes:g})")
        if not self.peak_flops_per_s:
            raise InputError(f"{where}: peak_flops_per_s needs at least one precision ({', '.join(PRECISIONS)})")
        for precision, value in self.peak_flops_per_s.items():
            if precision not in PRECISIONS:
                raise InputError(f"{where}: unknown precision '{precision}' in peak_flops_per_s; "
                                 f"known: {', '.join(PRECISIONS)}")
            if not _finite_positive(value):
                raise InputError(f"{where}: peak_flops_per_s.{precision} must be a number > 0, got {value!r}")
        if not str(self.source).strip():
            raise InputError(f"{where}: every device needs a source (datasheet URL or measurement)")

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
        }


def _finite_positive(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


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
    try:
        return HardwareSpec(
            name=str(data["name"]),
            display_name=str(data.get("display_name", data["name"])),
            kind=str(data["kind"]),
            memory_bytes=data["memory_bytes"],
            memory_bytes_per_s=data["memory_bytes_per_s"],
            peak_flops_per_s=dict(peaks),
            source=str(data["source"]),
            notes=str(data.get("notes", "")),
            usable_memory_bytes=data.get("usable_memory_bytes"),
            storage_bytes_per_s=data.get("storage_bytes_per_s"),
            efficiency=None if data.get("efficiency") is None else params_from_dict(data["efficiency"], where),
        )
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


@functools.cache
def _catalogue_files() -> dict[str, Any]:
    folder = resources.files("llm_roofline").joinpath("data/hardware")
    return {entry.name.removesuffix(".toml"): entry for entry in folder.iterdir() if entry.name.endswith(".toml")}


def hardware_names() -> list[str]:
    return sorted(_catalogue_files())


@functools.cache
def _load_catalogue_entry(name: str) -> HardwareSpec:
    entry = _catalogue_files()[name]
    spec = hardware_from_dict(tomllib.loads(entry.read_text()), f"data/hardware/{entry.name}")
    if spec.name != name:
        raise ValueError(f"data/hardware/{entry.name}: name {spec.name!r} differs from the file name")
    return spec


def load_hardware_file(path: str | Path) -> HardwareSpec:
    """A device from a TOML or JSON file in the catalogue's schema."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read hardware file {path}: {err.__class__.__name__}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise InputError(f"hardware file {path} is not valid {path.suffix.lstrip('.') or 'TOML'}: {err}") from None
    return hardware_from_dict(data, str(path))


def load_hardware(name_or_path: str | HardwareSpec) -> HardwareSpec:
    """A catalogue device by name, or a device file by path.

    A name is the catalogue's (case-insensitive), or a device as people write it ("NVIDIA RTX 4080
    16GB", "Snapdragon 8 Elite QRD"): ``names.resolve_device`` maps it, or refuses it naming the
    closest entries.
    """
    if isinstance(name_or_path, HardwareSpec):
        return name_or_path
    key = str(name_or_path).strip()
    if key.lower() in _catalogue_files():
        return _load_catalogue_entry(key.lower())
    if key.lower().endswith((".toml", ".json")) or "/" in key:
        return load_hardware_file(key)
    return _load_catalogue_entry(resolve_device(key))


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
