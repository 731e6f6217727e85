"""Device files: the built-in catalogue under ``data/hardware/``, a user's TOML or JSON file, and a device
as people name it ("NVIDIA RTX 4080 16GB"), each read into a ``HardwareSpec``."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec, hardware_from_dict
from llm_roofline.inputs.names import resolve_device
from llm_roofline.inputs.printable import escape_strings, printable
from llm_roofline.inputs.reading import parse_json, read_text


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


def load_hardware_file(path: str | Path, name: str = "") -> HardwareSpec:
    """A device from a TOML or JSON file in the catalogue's schema (``name``: the option that gave it)."""
    return hardware_from_dict(device_file_data(path, "hardware file", name), str(path))


def device_file_data(path: str | Path, kind: str = "hardware file", name: str = "") -> dict[str, Any]:
    """A device file or profile (``kind``) as data: read through ``reading.read_text`` (a regular file, at most
    its kind's size), parsed as JSON (``.json``) or TOML, its strings made printable; one InputError line else."""
    path = Path(path)
    text = read_text(path, kind, name)
    label = f"{name} {path}" if name else f"{kind} {path}"
    is_json = path.suffix.lower() == ".json"
    try:
        data = parse_json(text, label) if is_json else tomllib.loads(text)
    except InputError:
        raise
    except (ValueError, RecursionError) as err:  # TOMLDecodeError is a ValueError, as is a 5000-digit number
        raise InputError(f"{label}: not valid {'JSON' if is_json else 'TOML'}: "
                         f"{printable(str(err)) or err.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise InputError(f"{label}: expected a table of device fields, got a JSON {type(data).__name__}")
    escaped: dict[str, Any] = escape_strings(data, label)
    return escaped


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
