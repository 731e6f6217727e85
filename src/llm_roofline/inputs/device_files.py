"""Device files: the built-in catalogue under ``data/hardware/``, a user's TOML or JSON file, and a device
as people name it ("NVIDIA RTX 4080 16GB"), each read into a ``HardwareSpec``."""

from __future__ import annotations

import functools
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec, hardware_from_dict
from llm_roofline.inputs.names import resolve_device


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
