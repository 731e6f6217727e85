"""``llm-roofline sweep``: grids of configurations to CSV, JSON lines or Parquet, and queries on them.

Only argparse and the CLI helpers are imported at module level; numpy and the sweep engine load
when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli.main import (
    DEFAULT_HARDWARE,
    add_hardware_options,
    add_lever_options,
    json_text,
    number_arg,
    positive_float,
)

if TYPE_CHECKING:
    from llm_roofline.core.hardware import HardwareSpec
    from llm_roofline.features.sweep import SweepSpec

QUERIES = ("pareto", "max-batch", "max-seq-len", "boundary")
# --chunk: below 1024 configurations a chunk saves no memory and the sweep slows to a loop; above 2^18 it
# takes 400 MB.
CHUNK_RANGE = (1 << 10, 1 << 18)


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
    sweep.add_argument("--chunk", type=number_arg(int, CHUNK_RANGE[0], CHUNK_RANGE[1]), default=1 << 16,
                       help=f"configurations evaluated at once: what bounds memory, about 1.3 kB each (default 65536, "
                            f"{CHUNK_RANGE[0]} to {CHUNK_RANGE[1]})")
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
    from llm_roofline.core.limits import WORKLOAD
    from llm_roofline.features.sweep import make_spec, parse_values

    flash = {"off": (False,), "on": (True,), "both": (False, True)}[args.flash_attention]
    kv: Sequence[str | None] = _split(args.kv_cache) or [None]
    return make_spec(
        models=_split(args.model), hardware=_hardware_list(args),
        batch=parse_values(args.batch, "batch", WORKLOAD["batch"]),
        seq_len=parse_values(args.seq_len, "seq-len", WORKLOAD["seq_len"]),
        phases=_split(args.phase), weights=_split(args.weights) or [None], activations=_split(args.activations),
        kv_cache=kv, flash_attention=flash, lm_head=args.lm_head, fuse=args.fuse, sparsity=args.sparsity,
        engine=args.engine,
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
    if args.query in _REDUCTIONS:
        _check_answer(spec, args.query)
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
    queries = _Queries(args.query, None if args.latency_target_ms is None else args.latency_target_ms / 1e3,
                       spec.batch, spec.seq_len)
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
    processes = _format_processes(spec.size)
    if args.output and args.output != "-" and not (args.query or args.heatmap) and processes > 1 and (
            Path(args.output).suffix.lower() in (".csv", ".jsonl")):
        rows = _write_in_processes(lambda part, parts: iter_sweep(spec, args.chunk, (part, parts)), args.output,
                                   processes, progress.advance)
        summary.append(f"wrote {rows:,} configurations to {args.output}")
    elif args.output:
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
            return json_text({"query": args.query, "time": args.time, "rows": result})
        summary.append(_query_table(args.query, result, args.time))
    return "\n".join(summary)


def _write(chunks: Iterator[dict[str, Any]], target: str) -> int:
    """Stream chunks to a file, atomically (``files.atomic_output``: the file appears complete or not at
    all, with a plain write's mode; any OS error is one line)."""
    from llm_roofline.faces.cli.writers import background_writes, write_csv, write_jsonl
    from llm_roofline.features.sweep import COLUMNS
    from llm_roofline.inputs.files import atomic_output

    if target == "-":
        from llm_roofline.inputs.printable import printable

        try:
            sys.stdout.flush()
            # The bytes go to stdout's buffer, past the printable filter of faces.cli.output (some 20 ns a
            # character); the labels, the only text that is not digits, pass through printable here.
            sink = getattr(sys.stdout, "buffer", None) or _TextSink(sys.stdout)
            rows = write_csv(chunks, sink, COLUMNS, lambda text: printable(text, "\n\t"))
            sink.flush()
            return rows
        except BrokenPipeError:  # the reader went away (`| head`): not an error, and nothing more to write
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except OSError as err:  # stdout on a full disk (`> /dev/full`), a closed descriptor
            raise InputError(f"--output -: cannot write ({err.strerror or err})") from None
    suffix = Path(target).suffix.lower()
    with atomic_output(target, "--output", "wb") as out:
        if suffix == ".parquet":
            return _write_parquet(chunks, out, COLUMNS)
        with background_writes(out) as sink:  # the disk writes while the next rows are formatted
            return (write_csv if suffix == ".csv" else write_jsonl)(chunks, sink, COLUMNS)


# Rows from which a file is formatted by several processes (one per CPU this process may use, at most
# MAX_FORMAT_PROCESSES): below it, forking costs more than it saves.
PARALLEL_ROWS = 200_000
MAX_FORMAT_PROCESSES = 8


def _format_processes(rows: int) -> int:
    """How many processes format a CSV or JSON-lines file of ``rows`` rows: several where the system forks
    safely (Linux) and this process may use several CPUs, else one (this process)."""
    if rows < PARALLEL_ROWS or not sys.platform.startswith("linux"):
        return 1
    return min(len(os.sched_getaffinity(0)), MAX_FORMAT_PROCESSES)


def _write_in_processes(chunks_of: Callable[[int, int], Iterator[dict[str, Any]]], target: str, processes: int,
                        on_rows: Callable[[int], None]) -> int:
    """``_write`` of a CSV or JSON-lines file, the chunks evaluated and formatted by ``processes`` processes
    (``writers.write_in_processes``), the file written atomically here."""
    from llm_roofline.faces.cli.writers import write_in_processes
    from llm_roofline.features.sweep import COLUMNS
    from llm_roofline.inputs.files import atomic_output

    style = "csv" if Path(target).suffix.lower() == ".csv" else "jsonl"
    with atomic_output(target, "--output", "wb") as out:
        return write_in_processes(chunks_of, out, COLUMNS, style, processes, on_rows)


class _TextSink:
    """A text stdout without a byte buffer (``contextlib.redirect_stdout(io.StringIO())``) as a byte sink."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, data: memoryview, /) -> int:
        return self.stream.write(bytes(data).decode())

    def flush(self) -> None:
        self.stream.flush()


# Rows compared with the Pareto front at once: the comparisons of a slice, not of a whole chunk, are held in
# memory.
_SLICE_ROWS = 4096


def _write_parquet(chunks: Iterator[dict[str, Any]], out: IO[bytes], columns: tuple[str, ...]) -> int:
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
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


_KEY = ("model", "hardware", "phase", "weights", "activations", "kv_cache", "flash_attention")


# Per query reducing the grid: (the value it reports, the axis it reports it for, largest or smallest).
_REDUCTIONS = {"max-batch": ("batch", "seq_len", True), "max-seq-len": ("seq_len", "batch", True),
               "boundary": ("batch", "seq_len", False)}
_FIGURES = ("time_s", "tokens_per_s", "memory_bytes")  # what a query's row reports beside its key and value


class _Queries:
    """Streaming reductions over the sweep's chunks: memory stays bounded by the result's size.

    max-batch, max-seq-len and boundary keep, per panel (model, device, phase, formats), arrays over the
    values of the other axis: the best value so far, its figures, and the index of the first row that
    qualified (which orders the answer as a row-by-row scan would). A chunk is reduced with numpy.
    """

    def __init__(self, query: str | None, latency_target_s: float | None, batch: Sequence[int] = (),
                 seq_len: Sequence[int] = ()) -> None:
        import numpy as np

        self.query, self.target_s = query, latency_target_s
        self.field, self.per, self.largest = _REDUCTIONS.get(query or "", ("batch", "seq_len", True))
        reduces = query in _REDUCTIONS  # (the other axis is at most QUERY_MAX_ROWS long then)
        self.axis = np.array((seq_len if self.per == "seq_len" else batch) if reduces else (), dtype=np.int64)
        self.sorter = np.argsort(self.axis, kind="stable")
        self.panels: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.rows_seen = 0
        self.front: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if self.query == "pareto":
            self._pareto(chunk)
        elif self.query in ("max-batch", "max-seq-len"):
            self._reduce(chunk, (chunk["time_s"] <= self.target_s) & chunk["fits"])
        elif self.query == "boundary":
            self._reduce(chunk, chunk["bound"] == "compute")
        self.rows_seen += len(chunk["time_s"])

    def _reduce(self, chunk: dict[str, Any], ok: Any) -> None:
        import numpy as np

        for key, rows in _panel_rows(chunk, np.flatnonzero(ok)):
            best = self.panels.get(key)
            if best is None:
                best = self.panels[key] = {"first_row": np.full(len(self.axis), -1),
                                           self.field: np.zeros(len(self.axis), dtype=np.int64),
                                           **{name: np.zeros(len(self.axis)) for name in _FIGURES}}
            position = self.sorter[np.searchsorted(self.axis, chunk[self.per][rows], sorter=self.sorter)]
            value = chunk[self.field][rows]
            # Per position, the best row: sorted by position, then best value first; the sort is stable, so of
            # equal values the earliest row leads, as a scan that keeps only strict improvements would.
            ranked = np.lexsort((-value if self.largest else value, position))
            leads = ranked[np.r_[True, position[ranked][1:] != position[ranked][:-1]]]
            where, candidate, stored = position[leads], value[leads], best[self.field][position[leads]]
            better = (best["first_row"][where] < 0) | (candidate > stored if self.largest else candidate < stored)
            positions, first = np.unique(position, return_index=True)
            fresh = best["first_row"][positions] < 0
            best["first_row"][positions[fresh]] = self.rows_seen + rows[first[fresh]]
            winners, where = rows[leads[better]], where[better]
            for name in (self.field, *_FIGURES):
                best[name][where] = chunk[name][winners]

    def _pareto(self, chunk: dict[str, Any]) -> None:
        """Keep the configurations no other beats on all of: lower time, higher tokens/s, less memory.

        Sorted by time (then higher tokens/s, then less memory), a row stays unless an earlier one has at
        least its tokens/s and at most its memory (if that one left, whatever beat it beats this row too).
        """
        import numpy as np

        names = (*_KEY, "batch", "seq_len", "time_s", "tokens_per_s", "memory_bytes")
        fits = chunk["fits"]
        rows = {k: chunk[k][fits] for k in names}
        if self.front is not None:
            # Most of a chunk is beaten outright by the front so far (whose rows come first on ties): drop
            # those before the exact pass, comparing against at most _FRONT_SAMPLE of the front's rows.
            sample = {k: self.front[k][:_FRONT_SAMPLE, None] for k in ("time_s", "tokens_per_s", "memory_bytes")}
            beaten = np.zeros(len(rows["time_s"]), dtype=bool)
            for start in range(0, len(beaten), _SLICE_ROWS):
                part = slice(start, start + _SLICE_ROWS)
                beaten[part] = ((sample["time_s"] <= rows["time_s"][part])
                                & (sample["tokens_per_s"] >= rows["tokens_per_s"][part])
                                & (sample["memory_bytes"] <= rows["memory_bytes"][part])).any(axis=0)
            rows = {k: np.concatenate([self.front[k], rows[k][~beaten]]) for k in names}
        order = np.lexsort((rows["memory_bytes"], -rows["tokens_per_s"], rows["time_s"]))
        keep = ~_beaten_by_an_earlier_row(rows["tokens_per_s"][order], rows["memory_bytes"][order])
        self.front = {k: rows[k][order][keep] for k in names}
        if len(self.front["time_s"]) > QUERY_MAX_ROWS:
            raise InputError(f"sweep: the Pareto front has over {QUERY_MAX_ROWS:,} configurations (every one trades "
                             f"time for throughput or memory); narrow the grid, or --output it")

    def result(self) -> list[dict[str, Any]]:
        import numpy as np

        from llm_roofline.features.sweep import plain_value

        if self.query == "pareto":
            front = self.front or {}
            n = len(front.get("time_s", ()))
            return [{k: plain_value(front[k][i]) for k in front} for i in range(n)]
        found = sorted((int(best["first_row"][position]), key, int(position)) for key, best in self.panels.items()
                       for position in np.flatnonzero(best["first_row"] >= 0))
        return [{**{k: plain_value(v) for k, v in zip(_KEY, key, strict=True)}, self.per: int(self.axis[position]),
                 self.field: int(self.panels[key][self.field][position]),
                 **{name: float(self.panels[key][name][position]) for name in _FIGURES}}
                for _, key, position in found]


_FRONT_SAMPLE = 256  # front rows a chunk is first compared with (rows x sample booleans at a time)


def _beaten_by_an_earlier_row(tokens_per_s: Any, memory: Any) -> Any:
    """For rows in order, whether an earlier row has at least the tokens/s and at most the memory.

    Divide and conquer over the order, each level in numpy: at block size s, every row in the second half
    of a pair of blocks looks up, among the first half's rows with at most its memory, the highest
    tokens/s (sorted by pair then memory, with a running maximum). log2(n) levels of sorting: n log^2 n,
    where comparing each row with every kept one took n x front.
    """
    import numpy as np

    n = len(tokens_per_s)
    tps_rank = np.unique(tokens_per_s, return_inverse=True)[1].astype(np.int64)  # equal values, equal ranks
    memory_rank = np.unique(memory, return_inverse=True)[1].astype(np.int64)
    best = np.full(n, -1, dtype=np.int64)  # the highest earlier tokens/s rank found, with no more memory
    index = np.arange(n, dtype=np.int64)
    size = 1
    while size < n:
        pair, second = index // (2 * size), (index // size) % 2 == 1
        first = np.flatnonzero(~second)
        keys = pair[first] * n + memory_rank[first]  # pairs apart, then memory: one sort for every pair
        by_key = np.argsort(keys, kind="stable")
        keys = keys[by_key]
        # A running maximum over (pair, tokens/s rank): an earlier pair's values are all smaller, so where
        # the maximum is of this pair it is this pair's highest rank so far.
        running = np.maximum.accumulate(pair[first][by_key] * n + tps_rank[first][by_key])
        rows = np.flatnonzero(second)
        at = np.searchsorted(keys, pair[rows] * n + memory_rank[rows], side="right") - 1
        found = np.where(at >= 0, running[np.maximum(at, 0)], -1)
        same = found // n == pair[rows]
        best[rows[same]] = np.maximum(best[rows[same]], found[same] % n)
        size *= 2
    beaten: np.ndarray = best >= tps_rank
    return beaten


def _panel_rows(chunk: dict[str, Any], rows: Any) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """``rows`` of a chunk grouped by their _KEY values (within a chunk usually only the device varies)."""
    import numpy as np

    if not len(rows):
        return
    code = np.zeros(len(rows), dtype=np.int64)
    for name in _KEY:
        column = chunk[name][rows]
        if (column == column[0]).all():
            continue
        values, inverse = np.unique(column.astype(str), return_inverse=True)
        code = code * len(values) + inverse
    for panel in np.unique(code):
        members = rows[code == panel]
        yield tuple(chunk[name][members[0]] for name in _KEY), members


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


# The longest answer a query gives (max-batch, max-seq-len and boundary: one row per panel and value of the
# other axis, known before sweeping; pareto: its front, checked as it grows). Nobody reads a longer table,
# and the answer is held and formatted whole: about 2.7 kB a row (--output writes the grid instead).
QUERY_MAX_ROWS = 50_000


def _check_answer(spec: SweepSpec, query: str) -> None:
    """Refuse, before sweeping, a query whose answer would be longer than ``QUERY_MAX_ROWS``."""
    field = _REDUCTIONS[query][0]
    rows = spec.size // len(spec.batch if field == "batch" else spec.seq_len)
    if rows > QUERY_MAX_ROWS:
        per = "length" if field == "batch" else "batch"
        raise InputError(f"sweep: --query {query} answers one row per model, device, phase, format and {per}: "
                         f"{rows:,} here, at most {QUERY_MAX_ROWS:,} (a coarser {per} range, e.g. 1..65536:log, "
                         f"or --output the grid)")


def _heatmap(chunks: list[dict[str, Any]], target: str, time: str) -> str:
    from llm_roofline.faces.report.plots import save_figure, sweep_heatmap_figure
    from llm_roofline.features.sweep import heatmap_panels

    label = "tokens/s (roofline bound)" if time == "bound" else "expected tokens/s (efficiency model)"
    save_figure(sweep_heatmap_figure(heatmap_panels(chunks), label), target)
    return f"wrote {target}"
