"""What the pictures show, as plain data: shared by the plots, the HTML report and the web page.

Nothing here computes a cost: ceilings and ridge points come from ``HardwareSpec``, operator points
and times from ``Analysis``. This module only groups, labels and serializes them, so that a PNG, the
report and the browser draw the same thing. No heavy imports (the web API calls it per request).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec, hardware_from_dict
from llm_roofline.core.roofline import Analysis, OpResult
from llm_roofline.core.transformer import Workload
from llm_roofline.core.units import seconds, si
from llm_roofline.inputs.device_files import device_file_data

# Operator groups in the order a layer runs them; a group not listed here is appended after them.
GROUP_ORDER = ("embedding", "attention", "mixer", "ffn", "norm", "residual", "lm_head")
# Roofs drawn unless others are asked for: the precisions LLM inference runs in (not fp64, tf32).
INFERENCE_PRECISIONS = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")


class Ceiling(NamedTuple):
    """One flat compute roof: the precisions that share this peak, and where it meets the memory slope."""

    precisions: tuple[str, ...]
    peak_flops_per_s: float
    ridge_flop_per_byte: float

    @property
    def label(self) -> str:
        return "/".join(self.precisions)

    def to_dict(self) -> dict[str, object]:
        return {"precisions": list(self.precisions), "label": self.label, "peak_flops_per_s": self.peak_flops_per_s,
                "ridge_flop_per_byte": self.ridge_flop_per_byte}


def ceilings(hardware: HardwareSpec, precisions: Iterable[str] | None = None) -> list[Ceiling]:
    """The device's compute roofs, highest first; precisions with the same peak share one roof.

    ``precisions`` restricts the roofs to those the device has (default: ``INFERENCE_PRECISIONS``); a
    device with none of them is an input error.
    """
    wanted = set(INFERENCE_PRECISIONS if precisions is None else precisions)
    by_peak: dict[float, list[str]] = {}
    for precision, peak in hardware.peak_flops_per_s.items():
        if precision in wanted:
            by_peak.setdefault(peak, []).append(precision)
    if not by_peak:
        raise InputError(f"{hardware.name} has none of the precisions {', '.join(sorted(wanted))}; "
                         f"it has {', '.join(hardware.peak_flops_per_s)}")
    return [Ceiling(tuple(names), peak, hardware.ridge_point(names[0]))
            for peak, names in sorted(by_peak.items(), reverse=True)]


def short_name(op_name: str) -> str:
    """An operator's name without the layer and block prefixes: 'layer.mlp.down_proj' -> 'down_proj'."""
    return op_name.removeprefix("layer.").removeprefix("attn.").removeprefix("mlp.")


def time_share(op: OpResult, analysis: Analysis) -> float:
    """The fraction of the step's time spent in all instances of ``op``."""
    return op.time_s * op.count / analysis.totals.time_s


def time_by_group(analysis: Analysis) -> dict[str, float]:
    """Seconds per operator group over all instances, in layer order (the totals' time, split)."""
    found = {op.group for op in analysis.ops}
    order = [g for g in GROUP_ORDER if g in found] + sorted(found - set(GROUP_ORDER))
    times = dict.fromkeys(order, 0.0)
    for op in analysis.ops:
        times[op.group] += op.time_s * op.count
    return times


def main_ops(analysis: Analysis, limit: int = 8, min_share: float = 0.02) -> list[OpResult]:
    """The operators that take most of the time: at most ``limit``, each at least ``min_share`` of it."""
    ranked = sorted(analysis.ops, key=lambda op: op.time_s * op.count, reverse=True)
    return [op for op in ranked[:limit] if time_share(op, analysis) >= min_share]


def workload_label(workload: Workload, phases: Sequence[str] | None = None) -> str:
    """'decode, batch 1, 1024 tokens cached, fp16 weights, fp16 activations, fp16 KV cache'.

    ``phases`` names several phases run at the same ``seq_len`` (a prompt of L tokens and a decode
    step with L tokens cached); by default the workload's own phase.
    """
    phases = list(phases or [workload.phase])
    length = {"prefill": f"{workload.seq_len}-token prompt", "decode": workload.length_label}
    parts = [" + ".join(f"{p} ({length[p]})" for p in phases) if len(phases) > 1 else
             f"{phases[0]}, {length[phases[0]]}", f"batch {workload.batch}",
             f"weights {workload.weights_label}", f"activations {workload.activation_format.name}",
             f"KV {workload.kv_format.name}"]
    if workload.flash_attention:
        parts.append("FlashAttention")
    return ", ".join(parts)


def title(model_name: str, devices: Sequence[HardwareSpec], what: str) -> str:
    """'<what>: <model> on <device>, <device>'."""
    return f"{what}: {model_name} on {', '.join(d.display_name for d in devices)}"


def model_label(analysis: Analysis) -> str:
    return analysis.model.display_name or analysis.model.name


def analysis_payload(analysis: Analysis, precisions: Iterable[str] | None = None) -> dict[str, object]:
    """An analysis as the browser charts read it: ``to_dict()`` plus the device's roofs, the time by
    group and each operator's share of the time and short label (raw SI numbers throughout)."""
    data = analysis.to_dict()
    data["ceilings"] = [c.to_dict() for c in ceilings(analysis.hardware, precisions)]
    data["time_by_group_s"] = time_by_group(analysis)
    data["ops"] = [{**op.to_dict(), "time_share": time_share(op, analysis), "label": short_name(op.name)}
                   for op in analysis.ops]
    data["label"] = {"model": model_label(analysis), "hardware": analysis.hardware.display_name,
                     "workload": workload_label(analysis.workload), "time": seconds(analysis.totals.time_s)}
    return data


class MeasuredLevel(NamedTuple):
    """One level of the memory hierarchy as measured: its label, working set and sustained bandwidth."""

    label: str
    working_set_bytes: float | None
    bytes_per_s: float


class MeasuredPoint(NamedTuple):
    """One measured kernel: where it sits on the roofline."""

    label: str
    precision: str
    arithmetic_intensity: float
    flops_per_s: float


class MeasuredProfile(NamedTuple):
    """A device profile written by the measurement command: the device's roofs and what was measured."""

    hardware: HardwareSpec
    levels: tuple[MeasuredLevel, ...]
    points: tuple[MeasuredPoint, ...]
    description: str


def _first_number(entry: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is a table, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _level(entry: Any, index: int) -> MeasuredLevel | None:
    if not isinstance(entry, dict):
        return None
    bandwidth = _first_number(entry, "bytes_per_s", "memory_bytes_per_s", "bandwidth_bytes_per_s")
    if bandwidth is None:
        return None
    working_set = _first_number(entry, "working_set_bytes", "size_bytes", "bytes")
    label = entry.get("label") or entry.get("name") or entry.get("level")
    if not label:
        label = f"{si(working_set, 'B')} working set" if working_set else f"level {index + 1}"
    return MeasuredLevel(str(label), working_set, bandwidth)


def _point(entry: Any) -> MeasuredPoint | None:
    if not isinstance(entry, dict):
        return None
    flops, moved, time_s = (_first_number(entry, key) for key in ("flops", "bytes", "time_s"))
    intensity = _first_number(entry, "arithmetic_intensity", "intensity_flop_per_byte")
    if intensity is None and flops and moved:
        intensity = flops / moved
    achieved = _first_number(entry, "flops_per_s", "achieved_flops_per_s")
    if achieved is None and flops and time_s:
        achieved = flops / time_s
    if intensity is None or achieved is None:
        return None
    label = entry.get("label") or entry.get("name") or entry.get("shape") or entry.get("series") or ""
    return MeasuredPoint(str(label), str(entry.get("precision") or entry.get("dtype") or ""), intensity, achieved)


def load_measured_profile(path: str | Path, name: str = "") -> MeasuredProfile:
    """A profile file: a device in the catalogue's schema (TOML or JSON) with an optional ``measured`` table
    of ``levels`` (working set -> bytes/s) and ``points`` (kernels: intensity and FLOP/s). Entries it cannot
    read are skipped: the roofs alone still make a picture. ``name``: the option that gave the path."""
    data = device_file_data(path, "profile", name)
    hardware = hardware_from_dict(data, str(path))
    measured, memory = _table(data, "measured"), _table(data, "memory")
    # One figure per level (the measurement's "hierarchy") when there is one, else every working set; DRAM is
    # the profile's own memory_bytes_per_s, drawn as the memory slope.
    levels = (measured.get("hierarchy") or measured.get("levels") or memory.get("hierarchy")
              or memory.get("levels") or [])
    points = measured.get("points") or data.get("points") or []
    read_levels = [_level(entry, i) for i, entry in enumerate(levels if isinstance(levels, list) else [])]
    read_points = [_point(entry) for entry in (points if isinstance(points, list) else [])]
    return MeasuredProfile(hardware, tuple(x for x in read_levels if x and x.label != "DRAM"),
                           tuple(x for x in read_points if x), hardware.source)
