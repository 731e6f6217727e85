"""A measurement as text tables: the hierarchy, every working set, the peaks and ridges, the shape points."""

from __future__ import annotations

from typing import Any

from llm_roofline.core.units import binary_bytes, seconds, si
from llm_roofline.faces.report.render import table
from llm_roofline.features.measure.experiment import Measurement
from llm_roofline.features.measure.stream import KERNELS


def _spread(value: float) -> str:
    return f"±{50 * value:.0f}%"  # half the interquartile range, relative to the median


def measurement_text(m: Measurement, comparison: list[dict[str, Any]] | None = None,
                     reference_name: str | None = None) -> str:
    ridges = m.ridge()
    lines = [
        f"Measured roofline of {m.display_name}: {m.where()} ({m.library_text()})",
        f"host {m.host}, {m.date}, {m.elapsed_s:.1f} s; medians, ± half the interquartile range",
        "",
        "memory hierarchy (STREAM kernels; bytes counted without write-allocate)",
    ]
    lines.append(table(
        ["level", "capacity", "bandwidth", "spread", "best kernel", "working set"],
        [[h["level"], binary_bytes(h["capacity_bytes"]) if h.get("capacity_bytes") else "-",
          si(h["bytes_per_s"], "B/s"), _spread(h["spread"]), h["kernel"], binary_bytes(h["requested_bytes"])]
         for h in m.hierarchy()], align="lrrrlr"))
    lines += ["", "bandwidth per working set"]
    lines.append(table(
        ["working set", "level", *KERNELS],
        [[binary_bytes(level["requested_bytes"]), level["level"],
          *(si(level["kernels"][k]["bytes_per_s"], "B/s") if k in level["kernels"] else "-" for k in KERNELS)]
         for level in m.levels()], align="rl" + "r" * len(KERNELS)))
    lines += ["", f"compute (best GEMM median per precision); ridge point = peak / DRAM bandwidth "
                  f"({si(m.dram_bytes_per_s, 'B/s')})"]
    rows = []
    for p in m.peaks:
        flops, source, spread = m.best_gemm(p.precision)
        rows.append([p.precision, si(flops, "FLOP/s"), _spread(spread), source, f"{ridges[p.precision]:.3g}",
                     p.kernel + ("" if p.fast else "  [low roof]")])
    rows += [[precision, "-", "", "", "", f"not offered: {why}"] for precision, why in m.unavailable.items()]
    lines.append(table(["precision", "peak", "spread", "best GEMM", "ridge FLOP/B", "kernel"], rows,
                       align="lrrlrl"))
    if m.shapes:
        precision = m.shapes[0].precision
        ridge = ridges.get(precision)
        lines += ["", f"shape experiment ({precision}; ridge point {ridge:.3g} FLOP/B): equal FLOPs 2·N³ "
                      f"from 1×N×N² to N²×N×1, then a weight matrix times M rows (GEMV -> GEMM)"
                  if ridge else f"shape experiment ({precision})"]
        lines.append(table(
            ["series", "shape", "M×K×N", "FLOPs", "bytes", "FLOP/B", "time", "achieved", "of roofline", "bound"],
            [[p["series"], p["shape"], f"{p['m']}×{p['k']}×{p['n']}", si(p["flops"], "FLOP"), si(p["bytes"], "B"),
              f"{p['arithmetic_intensity']:.3g}", seconds(p["time_s"]), si(p["flops_per_s"], "FLOP/s"),
              f"{100 * p['roofline_fraction']:.0f}%" if "roofline_fraction" in p else "-", p.get("bound", "-")]
             for p in m.points()], align="lllrrrrrrl"))
    if comparison:
        lines += ["", f"measured vs catalogue ({reference_name})"]
        lines.append(table(
            ["figure", "measured", "catalogue", "achieved"],
            [[row["figure"].replace("_per_s", "/s").replace("peak_flops/s.", "peak "),
              si(row["measured"], "B/s" if row["figure"].startswith("memory") else "FLOP/s"),
              si(row["catalogue"], "B/s" if row["figure"].startswith("memory") else "FLOP/s"),
              f"{100 * row['achieved_fraction']:.1f}%"] for row in comparison], align="lrrr"))
    for warning in m.warnings:
        lines += ["", f"warning: {warning}"]
    return "\n".join(lines)
