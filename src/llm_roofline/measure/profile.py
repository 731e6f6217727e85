"""A measurement as a device profile in the catalogue's format, written atomically; and the comparison
of a measurement with a catalogue device.

The profile holds the catalogue's fields (``hardware.hardware_from_dict`` loads it, so every command
takes it as ``--hardware FILE``) plus a ``[measured]`` table with everything behind the figures:
per-level bandwidth, per-precision kernels and spreads, the shape points. The loader ignores that
table. Only precisions with a fast kernel become ``peak_flops_per_s`` entries: a reference-path
figure (numpy's fp16 loop, say) describes the library, not the machine, and the analyzer then falls
back to the next precision (``formats.PEAK_FALLBACK``) as an inference engine would.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..hardware import HardwareSpec, hardware_from_dict
from .experiment import Measurement

PROFILE_SUFFIXES = (".toml", ".json")


def check_writable(path: str | Path) -> Path:
    """Fail now, before minutes of measuring, if ``path`` cannot take the profile."""
    path = Path(path)
    if path.suffix.lower() not in PROFILE_SUFFIXES:
        raise InputError(f"--save {path}: the profile must be a .toml or .json file (what --hardware reads)")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"--save {path}: folder {folder} does not exist")
    if path.exists() and not path.is_file():
        raise InputError(f"--save {path}: exists and is not a file")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as err:
        why = err.strerror or err.__class__.__name__
        raise InputError(f"--save {path}: cannot write in {folder} ({why})") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"--save {path}: the file is not writable")
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "machine"


def profile_dict(measurement: Measurement, name: str | None = None) -> dict[str, Any]:
    """The catalogue fields, then ``measured``: what the loader reads, and what stands behind it."""
    m = measurement
    source = f"measured on {m.host}, {m.date}, {m.command}; {m.library_text()}"
    peaks = m.fast_peaks()
    if not peaks:  # nothing fast was measured: keep the best figure rather than an unloadable file
        peaks = dict([max(m.flops_per_s().items(), key=lambda item: item[1])])
    slow = [f"{p.precision} {p.flops_per_s / 1e9:.3g} GFLOP/s ({p.kernel})" for p in m.peaks if not p.fast]
    dram = m.dram()
    notes = (f"Empirical roofline, {m.where()}. Memory bandwidth: best "
             f"median of the STREAM kernels at working sets >= 4 x the last-level cache ({dram['kernel']}, "
             f"{dram['working_set_bytes']} B), bytes counted without write-allocate. Peaks: the best median "
             f"among each precision's GEMMs (a square one grown as the budget allowed, and the shape points)." + (
                 f" Left out of peak_flops_per_s (no fast kernel, a low roof): {'; '.join(slow)}." if slow else ""))
    measured = m.to_dict()
    measured_table = {
        "host": m.host, "date": m.date, "command": m.command, "backend": m.backend, "device": m.device,
        "threads": m.threads, "elapsed_s": m.elapsed_s, "library": dict(m.library),
        "conditions": {k: v for k, v in measured["conditions"].items() if k != "caches"},
        "memory": {k: v for k, v in measured["memory"].items() if k not in ("levels", "hierarchy")},
        "hierarchy": measured["memory"]["hierarchy"],
        "levels": [{k: v for k, v in level.items() if k != "kernels"} for level in measured["memory"]["levels"]],
        "compute": measured["compute"]["details"],
        "unavailable": measured["compute"]["unavailable"],
        "ridge": measured["ridge"],
        "points": measured["points"],
        "warnings": measured["warnings"],
    }
    return {
        "name": name or f"measured-{_slug(m.host)}",
        "display_name": f"{m.display_name} (measured, {m.where()})",
        "kind": m.kind,
        "memory_bytes": m.memory_bytes,
        "memory_bytes_per_s": m.dram_bytes_per_s,
        "source": source,
        "notes": notes,
        "peak_flops_per_s": peaks,
        "measured": _without_none(measured_table),
    }


def _without_none(value: Any) -> Any:
    """TOML has no null: drop None values (and keep the JSON profile identical)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_dumps(data: dict[str, Any], prefix: str = "") -> str:
    """TOML for nested dicts of numbers, strings, lists and dicts (tables, arrays of tables, inline)."""
    scalars, tables, arrays = [], [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            scalars.append(f"{_toml_key(key)} = {_toml_value(value)}")
    parts = ["\n".join(scalars)] if scalars else []
    for key, table in tables:
        name = f"{prefix}{_toml_key(key)}"
        body = toml_dumps(table, f"{name}.")
        parts.append(f"[{name}]\n{body}" if not body.startswith("[") else f"[{name}]\n\n{body}")
    for key, items in arrays:
        name = f"{prefix}{_toml_key(key)}"
        for item in items:
            parts.append(f"[[{name}]]\n" + "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()))
    return "\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def save_profile(measurement: Measurement, path: str | Path, name: str | None = None) -> HardwareSpec:
    """Write the profile atomically (a temporary file in the same folder, then a rename) and load it back."""
    path = check_writable(path)
    data = profile_dict(measurement, name)
    text = json.dumps(data, indent=2) + "\n" if path.suffix.lower() == ".json" else toml_dumps(data)
    spec = hardware_from_dict(json.loads(json.dumps(data)), str(path))  # refuse to write what would not load
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return spec


def comparison(measurement: Measurement, reference: HardwareSpec) -> list[dict[str, Any]]:
    """Measured vs catalogue: bandwidth and each precision both have, with the achieved fraction.

    Precisions without a fast kernel in the measured library are left out: a reference loop says
    nothing about the hardware's datasheet figure.
    """
    rows = [{"figure": "memory_bytes_per_s", "measured": measurement.dram_bytes_per_s,
             "catalogue": reference.memory_bytes_per_s,
             "achieved_fraction": measurement.dram_bytes_per_s / reference.memory_bytes_per_s}]
    for precision, flops in measurement.fast_peaks().items():
        if precision in reference.peak_flops_per_s:
            catalogue = reference.peak_flops_per_s[precision]
            rows.append({"figure": f"peak_flops_per_s.{precision}", "measured": flops, "catalogue": catalogue,
                         "achieved_fraction": flops / catalogue})
    return rows
