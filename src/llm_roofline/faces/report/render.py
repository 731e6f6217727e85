"""Text and CSV rendering at the edge: raw SI numbers in, human-readable tables out."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
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
        + wl.length_label
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
        *_beyond_memory(result),
        *(f"warning: {text}" for text in result.warnings),
    ]
    return "\n".join(lines)


def _beyond_memory(result: Analysis) -> list[str]:
    """What the times above mean for a model that does not fit: a line saying so, and the command that prices
    what happens instead (``fit``: the fallback split or swapping; ``offload``: beyond the device's memory)."""
    memory, hw = result.memory, result.hardware
    if memory.fits is not False:
        return []
    if memory.memory_pressure and hw.usable_memory_scope == "accelerator" and hw.kind != "cpu":
        return [f"memory pressure        beyond what the OS lets the {hw.kind.upper()} use, within the device's "
                "memory: the times above assume the model fits; the OS swaps, or layers run on the CPU "
                "(llm-roofline fit prices that split)"]
    if memory.memory_pressure:
        return ["memory pressure        beyond what the OS lets a program use, within the device's memory: the times "
                "above assume the model fits; the OS swaps or ends the program (llm-roofline fit)"]
    return ["beyond memory          the times above assume the model fits, which it does not: llm-roofline offload "
            "prices streaming layers from storage or splitting them with a host"]


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


def to_json(value: object) -> object:
    """Records -> plain JSON values: named tuples and dataclasses by field, numpy values as Python numbers,
    inf as null."""
    if hasattr(value, "_asdict"):
        return {key: to_json(item) for key, item in value._asdict().items()}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_json(value.tolist())
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def remedy_detail(remedy: Any) -> str:
    """A remedy's figures in words (the table's and the JSON's ``detail``)."""
    f = remedy.figures
    if remedy.kind == "weights":
        return f"{f['weight_bytes'] / 1e9:.3g} GB of weights"
    if remedy.kind == "kv-cache":
        return f"{f['bytes_per_step'] / 1e9:.3g} GB moved per step"
    if remedy.kind == "device":
        return f"{f['memory_bytes_per_s'] / 1e9:.4g} GB/s"
    if remedy.kind == "speculative":
        if not remedy.meets:
            return f"even {f['draft_tokens']:.0f} drafted tokens, all accepted, are not enough"
        draft = f"draft step {f['draft_time_s'] * 1e3:.3g} ms" if f["draft_time_s"] else "a free draft"
        return (f"needs acceptance rate >= {f['acceptance_rate_needed']:.3f} "
                f"({f['tokens_per_pass_needed']:.3g} tokens per pass; {draft})")
    if not remedy.meets:
        return "raises tokens/s over the batch, never lowers the time per token"
    return (f"{f['tokens_per_s']:.4g} tokens/s over the batch at {remedy.time_per_token_s * 1e3:.3g} ms per token"
            if remedy.time_per_token_s else "")


def feasibility_payload(result: Any) -> dict[str, Any]:
    """``requirements.Feasibility`` as ``llm-roofline feasibility --format json`` prints it: every field, and
    each remedy's figures in words (``detail``) beside its numbers."""
    data = to_json(result)
    assert isinstance(data, dict) and isinstance(data["remedies"], list)  # a record becomes an object
    for entry, remedy in zip(data["remedies"], result.remedies, strict=True):
        entry["detail"] = remedy_detail(remedy)
    return data


def advice_payload(advice: Any) -> dict[str, Any]:
    """``studies.advice.Advice`` as JSON: every field (the whatif and feasibility records as their commands
    print them) and ``top``, the levers the summary names."""
    data = to_json(advice)
    assert isinstance(data, dict)
    data["top"] = to_json(advice.top)
    if advice.feasibility is not None:
        data["feasibility"] = feasibility_payload(advice.feasibility)
    return data
