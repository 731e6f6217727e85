"""Text and CSV rendering at the edge: raw SI numbers in, human-readable tables out."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from llm_roofline.core.roofline import Analysis
from llm_roofline.core.units import binary_bytes, seconds, si


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A plain-text table; ``align`` is one 'l' or 'r' per column (numbers right-aligned)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align, strict=True))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def analysis_text(result: Analysis) -> str:
    """The per-operator table and totals of an analysis, for a terminal."""
    wl, hw, model, totals, memory = result.workload, result.hardware, result.model, result.totals, result.memory
    header = (
        f"{model.display_name or model.name} ({si(model.params, digits=4)} params) on {hw.display_name}: "
        f"{wl.phase}, batch {wl.batch}, "
        + (f"prompt {wl.seq_len} tokens" if wl.phase == "prefill" else f"{wl.seq_len} tokens cached")
        + f"; weights {wl.weights_label}, activations {wl.activation_format.name}, "
          f"KV cache {wl.kv_format.name}"
        + (", FlashAttention" if wl.flash_attention else "")
    )
    rows = []
    for op in result.ops:
        share = op.time_s * op.count / totals.time_s
        rows.append([
            op.name, op.kind, op.count, si(op.flops, "FLOP"), si(op.bytes, "B"),
            f"{op.arithmetic_intensity:.3g}", op.bound, seconds(op.time_s), f"{100 * share:.1f}%",
        ])
    ops_table = table(["operator", "kind", "count", "FLOPs", "bytes", "FLOP/B", "bound", "time", "share"], rows,
                      align="llrrrrlrr")
    ridge = totals.ridge_flop_per_byte
    relation = "at or above" if totals.bound == "compute" else "below"
    fits = {True: "yes", False: "NO", None: "unknown (no capacity given)"}[memory.fits]
    capacity = binary_bytes(memory.capacity_bytes) if memory.capacity_bytes else "?"
    lines = [
        header,
        "",
        ops_table,
        "",
        f"total FLOPs            {si(totals.flops, 'FLOP')}",
        f"total bytes            {si(totals.bytes, 'B')}  (weights {si(totals.weight_bytes, 'B')}, "
        f"KV read {si(totals.kv_read_bytes, 'B')}, KV write {si(totals.kv_write_bytes, 'B')}, "
        f"activations {si(totals.act_read_bytes + totals.act_write_bytes, 'B')})",
        f"arithmetic intensity   {totals.arithmetic_intensity:.3g} FLOP/B  (ridge point {ridge:.3g} FLOP/B, "
        f"{totals.peak_precision})",
        f"bound                  {totals.bound} (intensity {relation} the ridge); "
        f"{100 * totals.compute_time_share:.1f}% of the time in compute-bound operators",
        f"time                   {seconds(totals.time_s)}",
        f"tokens/s               {totals.tokens_per_s:.4g}",
        f"expected               {seconds(totals.expected_time_s)}, {totals.expected_tokens_per_s:.4g} tokens/s  "
        f"(what engines reach: the efficiency model, docs/validation.md)",
        f"memory needed          {si(memory.total_bytes, 'B')} = weights {si(memory.weight_bytes, 'B')} "
        f"+ KV cache {si(memory.kv_cache_bytes, 'B')} "
        + (f"+ recurrent state {si(memory.state_bytes, 'B')} " if memory.state_bytes else "")
        + f"+ activations {si(memory.activation_bytes, 'B')} "
        f"+ runtime {si(memory.overhead_bytes, 'B')}; capacity {capacity}; fits: {fits}",
        *(f"warning: {text}" for text in result.warnings),
    ]
    return "\n".join(lines)


OP_COLUMNS = ("name", "kind", "group", "count", "flops", "bytes", "weight_bytes", "act_read_bytes",
              "act_write_bytes", "kv_read_bytes", "kv_write_bytes", "arithmetic_intensity", "precision",
              "peak_precision", "peak_flops_per_s", "attainable_flops_per_s", "compute_time_s",
              "memory_time_s", "time_s", "bound")


def analysis_csv(result: Analysis) -> str:
    """One row per operator (figures per instance, raw SI numbers), then a 'total' row."""
    rows = [[getattr(op, c) for c in OP_COLUMNS] for op in result.ops]
    t = result.totals
    rows.append(["total", "", "", 1, t.flops, t.bytes, t.weight_bytes, t.act_read_bytes, t.act_write_bytes,
                 t.kv_read_bytes, t.kv_write_bytes, t.arithmetic_intensity, "", "", "", "", "", "", t.time_s,
                 t.bound])
    return to_csv(OP_COLUMNS, rows)
