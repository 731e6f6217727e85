"""``llm-roofline sweep``: grids of configurations to CSV, JSON lines or Parquet, and queries on them.

Only argparse and the CLI helpers are imported at module level; numpy and the sweep engine load
when the command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli.main import (
    DEFAULT_HARDWARE,
    add_hardware_options,
    add_lever_options,
    positive_float,
    positive_int,
)

if TYPE_CHECKING:
    from llm_roofline.core.hardware import HardwareSpec
    from llm_roofline.features.sweep import SweepSpec

QUERIES = ("pareto", "max-batch", "max-seq-len", "boundary")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = commands.add_parser(
        "sweep", help="evaluate a whole grid of configurations (vectorized), write it or query it",
        description="Every combination of the lists below. Integer grids: a list (1,2,8) or a range "
                    "(1..256, 1..256:8 step, 128..32768:log doubling, 1..1000:x10 factor).")
    sweep.add_argument("--model", "-m", default="llama-2-7b",
                       help="model name(s) or config.json path(s), comma-separated")
    add_hardware_options(sweep, DEFAULT_HARDWARE)
    sweep.add_argument("--phase", "-p", default="decode", help="prefill, decode, or both comma-separated")
    sweep.add_argument("--batch", "-b", default="1", help="batch sizes: list or range (default 1)")
    sweep.add_argument("--seq-len", "-l", default="1024", help="lengths: list or range (default 1024)")
    sweep.add_argument("--weights", "-w", default=None,
                       help="weight formats or llama.cpp mixes (q4_k_m), comma-separated (default: the model's own, "
                            "fp16 for a config.json)")
    sweep.add_argument("--activations", "-a", default="fp16", help="activation formats, comma-separated")
    sweep.add_argument("--kv-cache", default=None, help="KV-cache formats, comma-separated (default: activations)")
    sweep.add_argument("--flash-attention", choices=("off", "on", "both"), default="off")
    sweep.add_argument("--lm-head", choices=("last", "all"), default="last")
    add_lever_options(sweep)
    sweep.add_argument("--output", "-o", help="write every configuration to FILE (.csv, .jsonl or .parquet); "
                                              "'-' for CSV on stdout")
    sweep.add_argument("--query", "-q", choices=QUERIES,
                       help="pareto: the latency/throughput/memory front; max-batch / max-seq-len: the largest "
                            "value meeting --latency-target-ms and fitting in memory; boundary: the smallest "
                            "batch at which the step turns compute-bound")
    sweep.add_argument("--latency-target-ms", type=positive_float, help="step-time target for max-batch/max-seq-len")
    sweep.add_argument("--heatmap", help="draw tokens/s over batch x length, with the compute-bound boundary and "
                                         "what does not fit, to this image file (PNG, SVG, PDF)")
    sweep.add_argument("--time", choices=("bound", "expected"), default="bound",
                       help="the step time queries and the heatmap use: the roofline bound (default) or the "
                            "efficiency model's expected time (totals.expected_time_s)")
    sweep.add_argument("--chunk", type=positive_int, default=1 << 16, help="configurations per chunk (memory bound)")
    sweep.add_argument("--format", "-f", choices=("table", "json"), default="table", help="format of query results")
    sweep.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar on stderr (default: on for grids over a million)")
    sweep.set_defaults(run=_cmd_sweep)


def _split(text: str | None) -> list[str]:
    return [] if text is None else [piece.strip() for piece in text.split(",") if piece.strip()]


def _hardware_list(args: argparse.Namespace) -> list[HardwareSpec]:
    from llm_roofline.faces.cli.main import hardware_from_args

    names = _split(args.hardware)
    if len(names) <= 1:
        return [hardware_from_args(args)]
    if args.bandwidth_gb_s or args.peak_tflops or args.memory_gb:
        raise InputError("--bandwidth-gb-s/--peak-tflops/--memory-gb override one device; give one --hardware")
    return [hardware_from_args(argparse.Namespace(**{**vars(args), "hardware": name})) for name in names]


def _spec(args: argparse.Namespace) -> SweepSpec:
    from llm_roofline.features.sweep import make_spec, parse_values

    flash = {"off": (False,), "on": (True,), "both": (False, True)}[args.flash_attention]
    kv: Sequence[str | None] = _split(args.kv_cache) or [None]
    return make_spec(
        models=_split(args.model), hardware=_hardware_list(args),
        batch=parse_values(args.batch, "batch"), seq_len=parse_values(args.seq_len, "seq-len"),
        phases=_split(args.phase), weights=_split(args.weights) or [None], activations=_split(args.activations),
        kv_cache=kv, flash_attention=flash, lm_head=args.lm_head, fuse=args.fuse, sparsity=args.sparsity,
    )


class _Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.total, self.done, self.enabled, self.stream = total, 0, enabled, stream

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.enabled:
            width = 30
            filled = int(width * self.done / self.total)
            self.stream.write(f"\rsweep [{'#' * filled}{'.' * (width - filled)}] {self.done:,}/{self.total:,}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def _cmd_sweep(args: argparse.Namespace) -> str:
    from llm_roofline.features.sweep import iter_sweep
    from llm_roofline.inputs.files import check_writable

    spec = _spec(args)
    if not (args.output or args.query or args.heatmap):
        raise InputError("sweep: say what to do with the grid: --output FILE, --query NAME or --heatmap FILE")
    if args.query in ("max-batch", "max-seq-len") and args.latency_target_ms is None:
        raise InputError(f"sweep: --query {args.query} needs --latency-target-ms")
    if args.output and args.output != "-" and Path(args.output).suffix.lower() not in (".csv", ".jsonl", ".parquet"):
        raise InputError(f"sweep: --output must end in .csv, .jsonl or .parquet, got {args.output!r}")
    if args.heatmap:
        _check_heatmap(spec, args.heatmap)
    for name, target in (("--output", args.output), ("--heatmap", args.heatmap)):
        if target and target != "-":
            check_writable(target, name)
    longest = max(spec.seq_len) + ("decode" in spec.phases)  # decode attends to the cache and the new token
    for model in spec.models:
        beyond = model.context_warning(longest)
        if beyond is not None:
            print(f"warning: {beyond}", file=sys.stderr)
    progress = _Progress(spec.size, args.progress if args.progress is not None else spec.size > 1_000_000)
    queries = _Queries(args.query, None if args.latency_target_ms is None else args.latency_target_ms / 1e3)
    heatmap_chunks: list[dict[str, Any]] = []

    def chunks() -> Iterator[dict[str, Any]]:
        for chunk in iter_sweep(spec, args.chunk):
            timed = chunk if args.time == "bound" else {
                **chunk, "time_s": chunk["expected_time_s"], "tokens_per_s": chunk["expected_tokens_per_s"]}
            queries.add(timed)
            if args.heatmap:
                heatmap_chunks.append({k: timed[k] for k in (*_KEY, "batch", "seq_len", "tokens_per_s", "bound",
                                                             "fits")})
            progress.advance(len(chunk["time_s"]))
            yield chunk

    summary = []
    if args.output:
        rows = _write(chunks(), args.output)
        if args.output != "-":
            summary.append(f"wrote {rows:,} configurations to {args.output}")
    else:
        for _ in chunks():
            pass
    progress.close()
    if args.heatmap:
        summary.append(_heatmap(heatmap_chunks, args.heatmap, args.time))
    if args.query:
        result = queries.result()
        if args.format == "json":
            return json.dumps({"query": args.query, "time": args.time, "rows": result}, indent=2)
        summary.append(_query_table(args.query, result, args.time))
    return "\n".join(summary)


def _write(chunks: Iterator[dict[str, Any]], target: str) -> int:
    """Stream chunks to a file (atomically: a temporary file renamed at the end)."""
    from llm_roofline.features.sweep import COLUMNS
    from llm_roofline.inputs.files import create_folders

    if target == "-":
        return _write_csv(chunks, sys.stdout, COLUMNS)
    path = create_folders(target, "--output")
    fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            rows = _write_parquet(chunks, tmp, COLUMNS)
        else:
            with open(tmp, "w", newline="") as out:
                rows = _write_csv(chunks, out, COLUMNS) if suffix == ".csv" else _write_jsonl(chunks, out, COLUMNS)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return rows


def _write_csv(chunks: Iterator[dict[str, Any]], out: TextIO, columns: tuple[str, ...]) -> int:
    import numpy as np

    out.write(",".join(columns) + "\n")
    rows = 0
    for chunk in chunks:
        table = np.column_stack([chunk[c].astype(str) for c in columns])
        out.write("\n".join(",".join(row) for row in table) + "\n")
        rows += table.shape[0]
    return rows


def _write_jsonl(chunks: Iterator[dict[str, Any]], out: TextIO, columns: tuple[str, ...]) -> int:
    rows = 0
    for chunk in chunks:
        lists = [chunk[c].tolist() for c in columns]
        for values in zip(*lists, strict=True):
            out.write(json.dumps(dict(zip(columns, values, strict=True))) + "\n")
            rows += 1
    return rows


def _write_parquet(chunks: Iterator[dict[str, Any]], path: str, columns: tuple[str, ...]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("sweep: Parquet output needs pyarrow (pip install 'llm-roofline[parquet]')") from None
    writer = None
    rows = 0
    try:
        for chunk in chunks:
            table = pa.table({c: chunk[c] for c in columns})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


_KEY = ("model", "hardware", "phase", "weights", "activations", "kv_cache", "flash_attention")


class _Queries:
    """Streaming reductions over the sweep's chunks: memory stays bounded by the result's size."""

    def __init__(self, query: str | None, latency_target_s: float | None) -> None:
        self.query, self.target_s = query, latency_target_s
        self.best: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.front: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if self.query == "pareto":
            self._pareto(chunk)
        elif self.query in ("max-batch", "max-seq-len"):
            field, per = ("batch", "seq_len") if self.query == "max-batch" else ("seq_len", "batch")
            ok = (chunk["time_s"] <= self.target_s) & chunk["fits"]
            self._reduce(chunk, ok, field, per, largest=True)
        elif self.query == "boundary":
            self._reduce(chunk, chunk["bound"] == "compute", "batch", "seq_len", largest=False)

    def _reduce(self, chunk: dict[str, Any], ok: Any, field: str, per: str, largest: bool) -> None:
        import numpy as np

        for i in np.flatnonzero(ok):
            key = (*(chunk[k][i] for k in _KEY), int(chunk[per][i]))
            value = int(chunk[field][i])
            best = self.best.get(key)
            if best is None or (value > best[field] if largest else value < best[field]):
                self.best[key] = {**dict(zip((*_KEY, per), key, strict=True)), field: value,
                                  "time_s": float(chunk["time_s"][i]),
                                  "tokens_per_s": float(chunk["tokens_per_s"][i]),
                                  "memory_bytes": float(chunk["memory_bytes"][i])}

    def _pareto(self, chunk: dict[str, Any]) -> None:
        """Keep the configurations no other beats on all of: lower time, higher tokens/s, less memory."""
        import numpy as np

        names = (*_KEY, "batch", "seq_len", "time_s", "tokens_per_s", "memory_bytes")
        fits = chunk["fits"]
        rows = {k: chunk[k][fits] for k in names}
        if self.front is not None:
            rows = {k: np.concatenate([self.front[k], rows[k]]) for k in names}
        order = np.lexsort((rows["memory_bytes"], -rows["tokens_per_s"], rows["time_s"]))
        time_s, tps, memory = rows["time_s"][order], rows["tokens_per_s"][order], rows["memory_bytes"][order]
        keep: list[int] = []
        kept_tps = np.empty(0)
        kept_memory = np.empty(0)
        for i in range(len(order)):  # earlier rows have time <= this one's
            if np.any((kept_tps >= tps[i]) & (kept_memory <= memory[i])):
                continue
            keep.append(i)
            kept_tps = np.append(kept_tps, tps[i])
            kept_memory = np.append(kept_memory, memory[i])
        del time_s
        self.front = {k: rows[k][order][keep] for k in names}

    def result(self) -> list[dict[str, Any]]:
        from llm_roofline.features.sweep import plain_value

        if self.query == "pareto":
            front = self.front or {}
            n = len(front.get("time_s", ()))
            return [{k: plain_value(front[k][i]) for k in front} for i in range(n)]
        return [{k: plain_value(v) for k, v in row.items()} for row in self.best.values()]


def _query_table(query: str, rows: list[dict[str, Any]], time: str = "bound") -> str:
    from llm_roofline.core.units import binary_bytes, seconds
    from llm_roofline.faces.report.render import table

    if not rows:
        return f"{query}: no configuration qualifies"
    keys = [k for k in rows[0] if k not in ("time_s", "tokens_per_s", "memory_bytes")]
    varying = [k for k in keys if len({r[k] for r in rows}) > 1 or k in ("hardware", "weights", "batch", "seq_len")]
    headers = [*varying, *(("time", "tokens/s") if time == "bound" else ("expected time", "expected tokens/s")),
               "memory"]
    body = [[*(r[k] for k in varying), seconds(r["time_s"]), f"{r['tokens_per_s']:.4g}",
             binary_bytes(r["memory_bytes"])] for r in rows]
    return table(headers, body, align="l" * len(varying) + "rrr")


# A heatmap is a picture: past these sizes it shows nothing more, and its rows are kept in memory.
HEATMAP_MAX_PANELS = 12
HEATMAP_MAX_CONFIGURATIONS = 2_000_000


def _check_heatmap(spec: Any, target: str) -> None:
    """Refuse, before sweeping, a heatmap that could not be drawn or written."""
    if Path(target).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"sweep: --heatmap must end in .png, .svg or .pdf, got {target!r}")
    panels = spec.size // (len(spec.batch) * len(spec.seq_len))
    if panels > HEATMAP_MAX_PANELS:
        raise InputError(f"sweep: --heatmap draws one panel per model, device, phase and format; this grid has "
                         f"{panels}, at most {HEATMAP_MAX_PANELS} (narrow the lists, or --output the grid)")
    if spec.size > HEATMAP_MAX_CONFIGURATIONS:
        raise InputError(f"sweep: --heatmap draws at most {HEATMAP_MAX_CONFIGURATIONS:,} configurations, this grid has "
                         f"{spec.size:,} (use coarser ranges, e.g. 1..4096:log)")


def _heatmap(chunks: list[dict[str, Any]], target: str, time: str) -> str:
    from llm_roofline.faces.report.plots import save_figure, sweep_heatmap_figure
    from llm_roofline.features.sweep import heatmap_panels

    label = "tokens/s (roofline bound)" if time == "bound" else "expected tokens/s (efficiency model)"
    save_figure(sweep_heatmap_figure(heatmap_panels(chunks), label), target)
    return f"wrote {target}"
