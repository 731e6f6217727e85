"""Measured speeds read from files: the calibration CSV schema, and llama.cpp's ``llama-bench`` output.

A ``Measurement`` is one configuration someone ran — a model, a weight format, a device, a batch and
lengths — and the prefill and/or decode tokens per second they saw. Three inputs are understood:

- the calibration CSV (``../shared/data/measured/calibration.csv`` and its README): one row per
  configuration, with the device's own bandwidth and fp16 peak, the format's bits per weight, and
  both speeds;
- ``llama-bench -o json`` (also ``-o jsonl``) and ``llama-bench -o csv``: one entry per test, a
  ``pp`` test (``n_prompt`` > 0, ``n_gen`` = 0) measuring prefill or a ``tg`` test (``n_gen`` > 0,
  ``n_prompt`` = 0) measuring decode; the device is not described, so the caller supplies it.

Nothing is guessed from a malformed file: a missing column, a non-numeric value or an empty file is
an ``InputError`` that names the file, the row (data rows count from 1; the line number follows) and
the column. Blank cells are allowed where the schema allows them (an unknown peak, a speed not
measured).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

from llm_roofline.core.errors import InputError
from llm_roofline.inputs.printable import printable
from llm_roofline.inputs.reading import parse_json, read_text

BACKENDS = ("gpu", "cpu", "npu")

# The calibration schema. Every column must be present; these may be blank in a row.
CALIBRATION_COLUMNS = (
    "source", "hardware", "hw_mem_bw_GBps", "hw_peak_fp16_TFLOPS", "model", "params_B", "quant",
    "bits_per_weight", "framework", "backend", "batch", "prompt_tokens", "gen_tokens", "prefill_tok_s",
    "decode_tok_s", "notes",
)
_OPTIONAL_COLUMNS = ("source", "framework", "notes")  # a user's own file may leave these out
# Columns a file may add (the schema above holds without them): a fixed-shape graph's decode step, as an NPU
# runtime compiles it. ``graph_step_tokens``: the token positions every decode step computes (the graph's
# width; the real token is one of them, the rest padding); ``graph_context_tokens``: the KV-cache length the
# step attends over, read in full whatever the real context (the graph's cache capacity, the step's own
# tokens included).
GRAPH_COLUMNS = ("graph_step_tokens", "graph_context_tokens")

# The llama-bench fields read (names as llama-bench prints them in -o json and -o csv).
LLAMA_BENCH_FIELDS = ("model_type", "model_n_params", "n_prompt", "n_gen", "avg_ts")
_GPU_BACKENDS = ("cuda", "metal", "vulkan", "sycl", "rocm", "hip", "opencl", "kompute", "musa", "cann")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured configuration and its speeds (tokens per second; None: not measured)."""

    row: int  # the data row (CSV) or test (llama-bench JSON), counted from 1
    where: str  # "file, row N (line L)", for messages
    hardware: str
    backend: str  # gpu, cpu or npu
    model: str
    params: float | None  # parameters (a count, not billions); None: not stated
    quant: str
    bits_per_weight: float | None
    framework: str
    batch: int
    prompt_tokens: int | None
    gen_tokens: int | None
    prefill_tokens_per_s: float | None
    decode_tokens_per_s: float | None
    memory_bytes_per_s: float | None = None  # the device's bandwidth as the source states it
    peak_fp16_flops_per_s: float | None = None  # its fp16 peak as the source states it
    source: str = ""
    model_file: str = ""  # llama-bench: the GGUF file the test loaded
    depth_tokens: int = 0  # llama-bench -d: tokens already in the KV cache before the test
    kv_cache: str | None = None  # llama-bench type_k, when it says (f16, q8_0, ...)
    flash_attention: bool = False
    graph_step_tokens: int = 1  # positions a decode step computes (a fixed-shape graph pads to it); 1: no padding
    graph_context_tokens: int | None = None  # KV length a decode step attends over, fixed; None: the real one


def read_measurements(path: str | Path, name: str = "") -> list[Measurement]:
    """Measurements from a calibration CSV or from llama-bench's JSON, JSONL or CSV output.

    The file is read through ``reading.read_text`` (a regular file of at most 64 MiB); ``name``: the option
    that gave it, for messages. Every text cell is made printable (``printable``).
    """
    path = Path(path)
    text = read_text(path, "measurements", name, encoding="utf-8-sig")
    if not text.strip():
        raise InputError(f"{path}: empty file: expected the calibration CSV schema or llama-bench output")
    if text.lstrip()[0] in "[{":
        return _llama_bench_json(text, str(path))
    header = next(_csv_rows(csv.reader(io.StringIO(text)), str(path)), [])
    columns = {name.strip() for name in header}
    if columns & {*LLAMA_BENCH_FIELDS, "build_commit"}:
        return _llama_bench_csv(text, str(path))
    return _calibration_csv(text, str(path))


_Row = TypeVar("_Row")


def _csv_rows(reader: Iterator[_Row], name: str, number: int = 0) -> Iterator[_Row]:
    """The reader's rows (``number``: rows it has read already); a row the csv module refuses (a field over its
    128 KiB limit) is one InputError line naming it."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise _not_csv(name, number, err) from None
        number += 1
        yield row


def _not_csv(name: str, number: int, err: csv.Error) -> InputError:
    """``number``: the rows read before this one, the header included (data rows count from 1)."""
    return InputError(f"{name}, {'the header' if number == 0 else f'row {number}'}: not readable as CSV ({err})")


# --- the calibration CSV -------------------------------------------------------------------------

def _calibration_csv(text: str, name: str) -> list[Measurement]:
    reader = csv.reader(io.StringIO(text))
    rows_read = _csv_rows(reader, name)
    header = [column.strip() for column in next(rows_read)]
    missing = [c for c in CALIBRATION_COLUMNS if c not in header and c not in _OPTIONAL_COLUMNS]
    if missing:
        raise InputError(f"{name}, line 1 (the header): missing column(s) {', '.join(missing)}; the calibration "
                         f"schema has {', '.join(CALIBRATION_COLUMNS)}")
    rows = []
    for number, fields in enumerate(rows_read, start=1):
        if not any(field.strip() for field in fields):
            continue
        where = f"{name}, row {number} (line {reader.line_num})"
        if len(fields) != len(header):
            raise InputError(f"{where}: {len(fields)} fields, the header has {len(header)}")
        rows.append(_calibration_row(dict(zip(header, fields, strict=True)), number, where))
    if not rows:
        raise InputError(f"{name}: no measurement rows after the header")
    return rows


def _calibration_row(row: dict[str, str], number: int, where: str) -> Measurement:
    cell = _Cells(row, where)
    backend = cell.text("backend").lower()
    if backend not in BACKENDS:
        raise InputError(f"{where}, column 'backend': expected one of GPU, CPU, NPU, got {row['backend']!r}")
    bandwidth_gb_s = cell.number("hw_mem_bw_GBps")
    peak_tflops = cell.number("hw_peak_fp16_TFLOPS")
    params_b = cell.number("params_B")
    step_column, context_column = GRAPH_COLUMNS
    step_tokens = cell.integer(step_column, default=1)
    context_tokens = cell.integer(context_column)
    if context_tokens is not None and context_tokens <= step_tokens:
        raise InputError(f"{where}, column '{context_column}': expected more than {step_column} "
                         f"({step_tokens}): the cache the step attends over holds its own tokens and earlier "
                         f"ones, got {context_tokens}")
    return Measurement(
        row=number,
        where=where,
        hardware=cell.text("hardware", required=True),
        backend=backend,
        model=cell.text("model", required=True),
        params=None if params_b is None else params_b * 1e9,
        quant=cell.text("quant"),
        bits_per_weight=cell.bits("bits_per_weight"),
        framework=cell.text("framework"),
        batch=cell.integer("batch", default=1),
        prompt_tokens=cell.integer("prompt_tokens"),
        gen_tokens=cell.integer("gen_tokens"),
        prefill_tokens_per_s=cell.number("prefill_tok_s"),
        decode_tokens_per_s=cell.number("decode_tok_s"),
        memory_bytes_per_s=None if bandwidth_gb_s is None else bandwidth_gb_s * 1e9,
        peak_fp16_flops_per_s=None if peak_tflops is None else peak_tflops * 1e12,
        source=cell.text("source"),
        graph_step_tokens=step_tokens,
        graph_context_tokens=context_tokens,
    )


class _Cells:
    """Typed access to one row's cells, with errors that name the row and the column."""

    def __init__(self, row: dict[str, Any], where: str, word: str = "column") -> None:
        self.row, self.where, self.word = row, where, word

    def _raw(self, column: str) -> str:
        value = self.row.get(column)
        return "" if value is None else printable(str(value).strip())

    def text(self, column: str, required: bool = False) -> str:
        value = self._raw(column)
        if required and not value:
            raise InputError(f"{self.where}, {self.word} '{column}': must not be blank")
        return value

    def number(self, column: str, required: bool = False) -> float | None:
        text = self._raw(column)
        if not text:
            if required:
                raise InputError(f"{self.where}, {self.word} '{column}': must not be blank")
            return None
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{self.where}, {self.word} '{column}': expected a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{self.where}, {self.word} '{column}': expected a number > 0, got {text!r}")
        return value

    @overload
    def integer(self, column: str, default: int, minimum: int = 1) -> int: ...

    @overload
    def integer(self, column: str, default: None = None, minimum: int = 1) -> int | None: ...

    def integer(self, column: str, default: int | None = None, minimum: int = 1) -> int | None:
        text = self._raw(column)
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{self.where}, {self.word} '{column}': expected an integer, got {text!r}") from None
        if not value.is_integer() or value < minimum:
            raise InputError(f"{self.where}, {self.word} '{column}': expected an integer >= {minimum}, got {text!r}")
        return int(value)

    def bits(self, column: str) -> float | None:
        """Bits per weight as sources write them: ``4.5``, ``~4.5 (approx)``, ``~4.1-4.3`` (the midpoint)."""
        text = self._raw(column)
        if not text:
            return None
        match = re.match(r"~?\s*(\d+(?:\.\d+)?)(?:\s*-\s*(\d+(?:\.\d+)?))?(?![\d.])", text)
        if match is None:
            raise InputError(f"{self.where}, {self.word} '{column}': expected bits per weight (a number, '~4.5' or "
                             f"'~4.1-4.3'), got {text!r}")
        low = float(match.group(1))
        value = low if match.group(2) is None else (low + float(match.group(2))) / 2
        if not 1 <= value <= 64:
            raise InputError(f"{self.where}, {self.word} '{column}': bits per weight must be between 1 and 64, "
                             f"got {text!r}")
        return value


# --- llama-bench ---------------------------------------------------------------------------------

def _llama_bench_json(text: str, name: str) -> list[Measurement]:
    stripped = text.strip()
    try:
        if stripped.startswith("["):
            entries = parse_json(stripped, name)
        else:  # -o jsonl: one object per line
            entries = [parse_json(line, f"{name}, line {number}")
                       for number, line in enumerate(stripped.splitlines(), start=1) if line.strip()]
    except InputError:
        raise
    except ValueError as err:  # a number of more digits than int() converts
        raise InputError(f"{name}: not valid llama-bench JSON ({printable(str(err))})") from None
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{name}: expected a list of llama-bench tests (llama-bench -o json)")
    rows = []
    for number, entry in enumerate(entries, start=1):
        where = f"{name}, test {number}"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected an object of llama-bench fields")
        rows.append(_llama_bench_entry(entry, number, where, field_word="field"))
    return rows


def _llama_bench_csv(text: str, name: str) -> list[Measurement]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        fields = [f.strip() for f in reader.fieldnames or ()]
    except csv.Error as err:
        raise _not_csv(name, 0, err) from None
    missing = [f for f in LLAMA_BENCH_FIELDS if f not in fields]
    if missing:
        raise InputError(f"{name}, line 1 (the header): missing column(s) {', '.join(missing)} of llama-bench -o csv")
    rows = []
    for number, entry in enumerate(_csv_rows(reader, name, number=1), start=1):
        where = f"{name}, row {number} (line {reader.line_num})"
        if None in entry or any(value is None for value in entry.values()):
            raise InputError(f"{where}: the number of fields differs from the header's {len(fields)}")
        rows.append(_llama_bench_entry({k.strip(): v for k, v in entry.items()}, number, where, field_word="column"))
    if not rows:
        raise InputError(f"{name}: no llama-bench tests after the header")
    return rows


def _llama_bench_entry(entry: dict[str, Any], number: int, where: str, field_word: str) -> Measurement:
    missing = [f for f in LLAMA_BENCH_FIELDS if f not in entry]
    if missing:
        raise InputError(f"{where}: missing {field_word}(s) {', '.join(missing)}")
    cell = _Cells(entry, where, field_word)
    prompt = cell.integer("n_prompt", default=0, minimum=0) or 0
    gen = cell.integer("n_gen", default=0, minimum=0) or 0
    speed = cell.number("avg_ts", required=True)
    if (prompt > 0) == (gen > 0):
        raise InputError(f"{where}: a test measures prefill (n_prompt > 0, n_gen = 0) or decode (n_gen > 0, "
                         f"n_prompt = 0); got n_prompt={prompt}, n_gen={gen} (combined -pg tests are not supported)")
    backends = cell.text("backends") or cell.text("backend")
    gpu_layers = cell.integer("n_gpu_layers", default=None, minimum=0)
    on_gpu = any(b in backends.lower() for b in _GPU_BACKENDS) and gpu_layers != 0
    device = cell.text("gpu_info") if on_gpu and cell.text("gpu_info") else cell.text("cpu_info")
    model_type = cell.text("model_type", required=True)
    return Measurement(
        row=number,
        where=where,
        hardware=device or backends or "unknown device",
        backend="gpu" if on_gpu else "cpu",
        model=model_type,
        params=cell.number("model_n_params", required=True),
        quant=_llama_bench_quant(model_type),
        bits_per_weight=_bits_from_size(cell.number("model_size"), cell.number("model_n_params", required=True)),
        framework=f"llama.cpp llama-bench ({backends or 'unknown backend'}, build {cell.text('build_commit') or '?'})",
        batch=1,
        prompt_tokens=prompt or None,
        gen_tokens=gen or None,
        prefill_tokens_per_s=speed if prompt else None,
        decode_tokens_per_s=speed if gen else None,
        model_file=cell.text("model_filename"),
        depth_tokens=cell.integer("n_depth", default=0, minimum=0) or 0,
        kv_cache=cell.text("type_k") or None,
        flash_attention=cell.text("flash_attn").lower() in ("1", "true", "on", "yes"),
    )


def _llama_bench_quant(model_type: str) -> str:
    """llama.cpp's file-type label as a format or mix name: 'llama 7B mostly Q4_0' -> 'q4_0',
    'qwen2 7B Q4_K - Medium' -> 'q4_k_m', 'llama 8B IQ4_XS - 4.25 bpw' -> 'iq4_xs'."""
    words = model_type.split()
    label = " ".join(words[2:]) if len(words) > 2 else model_type
    label = re.sub(r"^mostly\s+", "", label.strip(), flags=re.I)
    label = re.sub(r"\s*-\s*[\d.]+\s*bpw$", "", label, flags=re.I)
    size = re.search(r"\s*-\s*(small|medium|large)$", label, flags=re.I)
    if size:
        label = label[:size.start()] + "_" + size.group(1)[0]
    return label.strip().lower()


def _bits_from_size(size_bytes: float | None, params: float | None) -> float | None:
    """The file's mean bits per weight: its size over its parameters (scales and all)."""
    if size_bytes is None or not params:
        return None
    return 8 * size_bytes / params
