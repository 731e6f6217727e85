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
import re
from pathlib import Path
from typing import Any

from llm_roofline.core.hardware import HardwareSpec, hardware_from_dict
from llm_roofline.features.measure.experiment import Measurement
from llm_roofline.inputs.files import check_profile_path, toml_text, write_text_atomically


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
    measured_table = {
        "host": m.host, "date": m.date, "command": m.command, "backend": m.backend, "device": m.device,
        "threads": m.threads, "elapsed_s": m.elapsed_s, "library": dict(m.library),
        "conditions": {k: v for k, v in m.conditions().items() if k != "caches"},
        "memory": m.memory_figure(),
        "hierarchy": m.hierarchy(),
        "levels": [{k: v for k, v in level.items() if k != "kernels"} for level in m.levels()],
        "compute": m.compute_details(),
        "unavailable": dict(m.unavailable),
        "ridge": m.ridge(),
        "points": m.points(),
        "warnings": list(m.warnings),
        "unsettled": m.unsettled(),
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


def _without_none(value: object) -> object:
    """TOML has no null: drop None values (and keep the JSON profile identical)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def save_profile(measurement: Measurement, path: str | Path, name: str | None = None) -> HardwareSpec:
    """Write the profile atomically (a temporary file in the same folder, then a rename) and load it back."""
    path = check_profile_path(path, "path")
    data = profile_dict(measurement, name)
    text = json.dumps(data, indent=2) + "\n" if path.suffix.lower() == ".json" else toml_text(data)
    spec = hardware_from_dict(json.loads(json.dumps(data)), str(path))  # refuse to write what would not load
    write_text_atomically(path, text)
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
