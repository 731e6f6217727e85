"""CSV and JSON lines from chunks of numpy columns, formatted a whole column at a time.

The text is what Python writes: a float is its ``repr`` (the shortest decimal that reads back to the
same float), an integer its digits, a bool ``True``/``False`` in CSV and ``true``/``false`` in JSON, a
label quoted only where RFC 4180 needs it in CSV (a comma, a quote, a line break) and as ``json.dumps``
escapes it in JSON. A JSON line is ``json.dumps`` of the row (keys in column order, ``", "`` and
``": "``); NaN and infinities, which JSON cannot hold, raise ``ValueError`` as ``json.dumps`` does with
``allow_nan=False``, while CSV writes ``nan``, ``inf`` and ``-inf``.

Why not ``repr`` itself: it costs some 500 ns a float (David Gay's dtoa, one value at a time), and a
sweep row has 13 floats, so a million rows took 7 s of repr alone (the writers this module replaced ran
at 24-40 k rows/s). Here the shortest digits of a whole column come from numpy arithmetic
(``_shortest_digits``: 17 exact digits from an error-free product, then the fewest that still
round-trip); each field is a block of cells, the same for every row, that a row leaves NUL where its
text is shorter; rows are laid out side by side in a byte matrix and the NUL cells dropped
(``_Matrix``). The few floats the arithmetic cannot settle exactly (ties, power-of-two significands,
magnitudes below 1e-6 or from 2**63) are printed by ``repr``. pyarrow was measured and is not used: its
float-to-string cast takes 70-140 ns a value (this takes some 60, layout included) in another notation
(``1e-05`` is ``0.00001`` there, ``1.0`` is ``1``), and importing it costs more than its faster byte
filtering saves.

A large file is written by several processes (``write_in_processes``): each forked process evaluates and
formats every n-th chunk of the grid, holding one chunk's text, and this process moves their text to the
file in the chunks' order (``os.splice``, in the kernel), syncing as it goes (in a thread) so the disk
works while the next chunks are formatted. The bytes are the serial writers'. A file written by this process alone goes
through ``background_writes``: a thread does the writes and syncs.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import queue
import stat
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Protocol

import numpy as np


class ByteSink(Protocol):
    """Where the text goes: a binary file, ``sys.stdout.buffer``, ``io.BytesIO``."""

    def write(self, data: memoryview, /) -> object: ...


# Rows whose fields are formatted at once: enough to spread numpy's cost per call, few enough that a
# column's temporaries (some 30 arrays of 8 bytes a row) stay in a core's cache. Memory does not grow with
# the chunk, nor with the grid.
SLICE_ROWS = 8192
# Rows laid out and written at once (about 300 bytes a CSV row, 700 a JSON one): a band stays in cache.
BAND_ROWS = 1024

# A field's text as blocks, in order: constant bytes, or a (rows, width) uint8 array whose NUL cells are
# not part of the text.
Block = bytes | np.ndarray


# A file written through ``background_writes`` is synced every this many bytes, from the writing thread.
SYNC_BYTES = 64 << 20
# Blocks (a band of rows each, under 1 MB) waiting for the writing thread: the memory it may hold.
QUEUED_BLOCKS = 16


class _BackgroundSink:
    """Blocks written to a file by a thread of their own: the system calls (``write``, ``fdatasync``)
    release the interpreter, so the disk works while the next rows are formatted."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_BLOCKS)
        self.error: OSError | None = None
        try:
            self.regular = stat.S_ISREG(os.fstat(out.fileno()).st_mode)  # a file on a disk, which syncs
        except (OSError, ValueError):
            self.regular = False
        self.thread = threading.Thread(target=self._run, name="llm-roofline writer", daemon=True)
        self.thread.start()

    def write(self, data: memoryview, /) -> int:
        if self.error is not None:
            raise self.error
        self.blocks.put(bytes(data))
        return len(data)

    def close(self) -> None:
        """Wait for every block to be written; an error of the writing thread is raised here."""
        self.blocks.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        unsynced = 0
        while (block := self.blocks.get()) is not None:
            if self.error is not None:
                continue  # drain, so that the formatting side never waits on a full queue
            try:
                self.out.write(block)
                unsynced += len(block)
                if self.regular and unsynced >= SYNC_BYTES:  # the final fsync (atomic_output) has little left
                    self.out.flush()
                    os.fdatasync(self.out.fileno())
                    unsynced = 0
            except OSError as err:
                self.error = err


@contextlib.contextmanager
def background_writes(out: IO[bytes]) -> Iterator[ByteSink]:
    """A sink whose writes to the regular file ``out`` happen in a thread, synced as they go; every byte is
    written when the block ends (an OSError of the writes is raised then, or at a later write)."""
    sink = _BackgroundSink(out)
    try:
        yield sink
    finally:
        sink.close()


# A formatting process's records on its pipe: (kind, value) as two little-endian int64, then ``value`` bytes of
# text (_TEXT) or of an error message (_FAILED); _CHUNK_END carries the chunk's rows.
_RECORD = struct.Struct("<qq")
_TEXT, _CHUNK_END, _DONE, _FAILED = 1, 2, 3, 4
PIPE_BUFFER_BYTES = 1 << 20


def write_in_processes(chunks_of: Callable[[int, int], Iterable[Mapping[str, np.ndarray]]], out: IO[bytes],
                       columns: Sequence[str], style: str, processes: int,
                       on_rows: Callable[[int], None] | None = None) -> int:
    """``write_csv`` (``style`` "csv") or ``write_jsonl``, the rows formatted by ``processes`` forked processes.

    ``chunks_of(k, n)`` gives the k-th of n interleaved parts of the chunks (chunks k, k + n, ...: the
    sweep's ``iter_sweep(..., part=(k, n))``); each process evaluates and formats its part, and this one
    writes their text in the chunks' order, so the bytes are those of the serial writers. ``on_rows`` is told
    each chunk's rows as it is written. A process's error (NaN in JSON lines) is raised here as ValueError.
    """
    csv_text = _csv_bytes if style == "csv" else None
    if csv_text is not None:
        out.write(_csv_header(columns, csv_text))
    out.flush()  # nothing buffered is copied into the processes, and the text below goes to the descriptor
    readers: list[int] = []
    children: list[int] = []
    try:
        for part in range(processes):
            read_end, write_end = os.pipe()
            with contextlib.suppress(OSError):  # a larger pipe: fewer switches between the processes
                fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BUFFER_BYTES)
            child = os.fork()
            if child == 0:  # the formatting process: never returns
                os.close(read_end)
                for reader in readers:
                    os.close(reader)
                _format_part(chunks_of(part, processes), write_end, columns, csv_text)
            os.close(write_end)
            readers.append(read_end)
            children.append(child)
        return _merge(readers, out.fileno(), on_rows)
    finally:
        for reader in readers:
            os.close(reader)  # a process still writing gets EPIPE and ends
        for child in children:
            os.waitpid(child, 0)


def _merge(readers: Sequence[int], out: int, on_rows: Callable[[int], None] | None) -> int:
    """The processes' text in the chunks' order: chunk i from process i mod n, until one says it is done.
    The text moves from each pipe to the file in the kernel (``os.splice``), not through this process."""
    rows, chunk, unsynced = 0, 0, 0
    regular = stat.S_ISREG(os.fstat(out).st_mode)
    syncing: threading.Thread | None = None
    while True:
        reader = readers[chunk % len(readers)]
        kind, value = _RECORD.unpack(_read_exactly(reader, _RECORD.size))
        if kind == _TEXT:
            unsynced += value
            if regular and unsynced >= SYNC_BYTES and (syncing is None or not syncing.is_alive()):
                # The disk writes while the processes format the next chunks, and while this one splices on.
                syncing = threading.Thread(target=_sync_quietly, args=(out,), daemon=True)
                syncing.start()
                unsynced = value
            while value:
                moved = os.splice(reader, out, value)
                if moved == 0:
                    raise RuntimeError("a sweep writer process ended in the middle of its text")
                value -= moved
        elif kind == _CHUNK_END:
            rows += value
            chunk += 1
            if on_rows is not None:
                on_rows(value)
        elif kind == _DONE:
            if syncing is not None:
                syncing.join()
            return rows
        else:
            raise ValueError(_read_exactly(reader, value).decode("utf-8", "replace"))


def _sync_quietly(descriptor: int) -> None:
    """Start the disk on what is written so far; an error here is the final fsync's to report (the file is
    synced again, and any error raised, when it is complete: ``files.atomic_output``)."""
    with contextlib.suppress(OSError):
        os.fdatasync(descriptor)


def _read_exactly(reader: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = os.read(reader, size - len(data))
        if not more:
            raise RuntimeError("a sweep writer process ended without finishing its part")
        data += more
    return data


class _ChunkText:
    """A formatting process's text of one chunk, held until the chunk is done: the processes then format in
    parallel (one writing to its pipe would wait for the writing process to reach its chunk)."""

    def __init__(self) -> None:
        self.blocks: list[bytes] = []

    def write(self, data: memoryview, /) -> int:
        self.blocks.append(bytes(data))
        return len(data)


def _format_part(chunks: Iterable[Mapping[str, np.ndarray]], write_end: int, columns: Sequence[str],
                 csv_text: Callable[[object], bytes] | None) -> None:
    """Format ``chunks`` into the pipe, a chunk at a time, then leave the process (``os._exit``: no cleanup of
    the parent's state it was forked with, nothing of its buffers flushed twice)."""
    status = 0
    pipe = os.fdopen(write_end, "wb", buffering=0)
    try:
        for chunk in chunks:
            text = _ChunkText()
            rows = _write_rows([chunk], text, columns, csv_text)
            size = sum(map(len, text.blocks))
            pipe.write(_RECORD.pack(_TEXT, size))
            for block in text.blocks:
                pipe.write(block)
            pipe.write(_RECORD.pack(_CHUNK_END, rows))
        pipe.write(_RECORD.pack(_DONE, 0))
    except BaseException as error:  # any failure is reported to the writing process, then the exit
        status = 1
        with contextlib.suppress(OSError):
            message = str(error).encode()
            pipe.write(_RECORD.pack(_FAILED, len(message)) + message)
    os._exit(status)


def _csv_bytes(value: object) -> bytes:
    return _csv_field(value).encode()


def _csv_header(columns: Sequence[str], text: Callable[[object], bytes]) -> bytes:
    return b",".join(map(text, columns)) + b"\n"


def write_csv(chunks: Iterable[Mapping[str, np.ndarray]], out: ByteSink, columns: Sequence[str],
              shown: Callable[[str], str] | None = None) -> int:
    """Write a header and one line per row (``\\n`` line ends) to the binary stream ``out``; the rows written.

    ``shown``: applied to the text of every label and column name (a terminal's ``printable``); digits,
    points and commas need none.
    """
    def text(value: object) -> bytes:
        return _csv_bytes(value) if shown is None else shown(_csv_field(value)).encode()

    out.write(memoryview(_csv_header(columns, text)))
    return _write_rows(chunks, out, columns, text)


def write_jsonl(chunks: Iterable[Mapping[str, np.ndarray]], out: ByteSink, columns: Sequence[str]) -> int:
    """Write one JSON object per row (keys in column order) to the binary stream ``out``; the rows written."""
    return _write_rows(chunks, out, columns, None)


def _write_rows(chunks: Iterable[Mapping[str, np.ndarray]], out: ByteSink, columns: Sequence[str],
                csv_text: Callable[[object], bytes] | None) -> int:
    """The rows as CSV (labels through ``csv_text``), or as JSON objects when it is None."""
    json_style = csv_text is None
    keys = [json.dumps(name).encode() + b": " for name in columns]
    matrix = _Matrix()
    rows = 0
    for chunk in chunks:
        size = len(chunk[columns[0]])
        for start in range(0, size, SLICE_ROWS):
            part = [np.asarray(chunk[name][start:start + SLICE_ROWS]) for name in columns]
            blocks: list[Block] = []
            for i, values in enumerate(part):
                if json_style:
                    blocks.append((b"{" if i == 0 else b", ") + keys[i])
                elif i:
                    blocks.append(b",")
                blocks.extend(_field(values, csv_text))
            blocks.append(b"}\n" if json_style else b"\n")
            rows_here = len(part[0])
            matrix.write(blocks, rows_here, out)
            rows += rows_here
    return rows


class _Matrix:
    """The byte matrix rows are laid out in, ``BAND_ROWS`` rows at a time. Successive slices mostly have
    the same layout (the same constant text and field widths): then the matrix is reused and only the
    fields are written."""

    def __init__(self) -> None:
        self.layout: list[bytes | int] = []
        self.cells = np.empty((0, 0), dtype=np.uint8)

    def write(self, blocks: list[Block], rows: int, out: ByteSink) -> None:
        """Write the rows' text to ``out``: the blocks side by side, NUL cells dropped."""
        merged: list[Block] = []
        for block in blocks:
            if isinstance(block, bytes) and merged and isinstance(merged[-1], bytes):
                merged[-1] += block
            else:
                merged.append(block)
        layout = [b if isinstance(b, bytes) else b.shape[1] for b in merged]
        widths = [len(b) if isinstance(b, bytes) else b.shape[1] for b in merged]
        starts = np.cumsum([0, *widths[:-1]]).tolist()
        if layout != self.layout:
            self.layout = layout
            self.cells = np.empty((BAND_ROWS, sum(widths)), dtype=np.uint8)
            for block, at in zip(merged, starts, strict=True):
                if isinstance(block, bytes):
                    self.cells[:, at:at + len(block)] = np.frombuffer(block, dtype=np.uint8)
        fields = [(slice(at, at + block.shape[1]), block) for block, at in zip(merged, starts, strict=True)
                  if not isinstance(block, bytes)]
        for start in range(0, rows, BAND_ROWS):
            band = self.cells[:min(BAND_ROWS, rows - start)]
            for cells, block in fields:
                band[:, cells] = block[start:start + BAND_ROWS]
            # NUL cells out: bytes.replace jumps between NULs with memchr (some ten a row), where a numpy
            # mask would look at every byte (11% less time for JSON lines, the same for CSV).
            out.write(memoryview(band.tobytes().replace(b"\0", b"")))


def _field(values: np.ndarray, csv_text: Callable[[object], bytes] | None) -> list[Block]:
    """One column's text for a slice of rows (JSON when ``csv_text`` is None)."""
    if values.dtype.kind == "b":
        return _bool_field(values, csv_text is None)
    if values.dtype.kind in "iuf" and len(values) > 1:
        bits = values.view(f"u{values.dtype.itemsize}")  # bit for bit: 0.0 and -0.0 differ
        if (bits == bits[0]).all():  # one value (the model's weights, a share of 0.0): formatted once
            return [_text_of_one(_field(values[:1], csv_text))]
    if values.dtype.kind == "i" or (values.dtype.kind == "u" and (not len(values) or values.max() < 1 << 63)):
        return _int_field(values.astype(np.int64))
    if values.dtype.kind == "f":
        return _float_field(values.astype(np.float64), csv_text is None)
    return _label_field(values, _json_text if csv_text is None else csv_text)


def _text_of_one(blocks: list[Block]) -> bytes:
    """The text of a one-row field."""
    return b"".join(b if isinstance(b, bytes) else b[0][b[0] != 0].tobytes() for b in blocks)


def _csv_field(value: object) -> str:
    """A CSV field: quoted (quotes doubled) only where RFC 4180 needs it."""
    text = str(value)
    if any(c in text for c in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def _json_text(value: object) -> bytes:
    return json.dumps(value, allow_nan=False).encode()


def _label_field(values: np.ndarray, text: Callable[[object], bytes]) -> list[Block]:
    """Labels (strings, or any objects) take few distinct values: each is formatted once."""
    items = values.tolist()
    if not items:
        return []
    if items.count(items[0]) == len(items):  # list.count compares identical objects by identity: fast
        return [_no_nul(text(items[0]))]
    distinct = list(dict.fromkeys(items))
    if len(distinct) == 2:
        codes = (values == distinct[1]).view(np.uint8)
    else:
        index = {value: i for i, value in enumerate(distinct)}
        codes = np.fromiter(map(index.__getitem__, items), dtype=np.intp, count=len(items))
    return [_table([_no_nul(text(value)) for value in distinct]).take(codes, axis=0)]


def _no_nul(text: bytes) -> bytes:
    if b"\0" in text:  # the byte matrix's filler: a NUL in a CSV label would vanish from the text
        raise ValueError(f"a label contains a NUL character, which this writer does not write: {text!r}")
    return text


def _table(texts: Sequence[bytes]) -> np.ndarray:
    """Texts as rows of a uint8 matrix, NUL-padded to the longest."""
    width = max(map(len, texts))
    return np.frombuffer(b"".join(t.ljust(width, b"\0") for t in texts), dtype=np.uint8).reshape(len(texts), width)


def _bool_field(values: np.ndarray, json_style: bool) -> list[Block]:
    texts = (b"false", b"true") if json_style else (b"False", b"True")
    if values.all():
        return [texts[1]]
    if not values.any():
        return [texts[0]]
    return [_table(texts).take(values.view(np.uint8), axis=0)]


# ASCII digits of 0000..9999, four bytes each, in text order whatever the machine's byte order; then the
# same with leading zeros as NUL (0: all NUL); then that again but 0 as "0" (an integer's last four digits).
_QUADS = np.frombuffer(b"".join([b"%04d" % i for i in range(10_000)]
                                + [(b"%d" % i).rjust(4, b"\0") if i else b"\0" * 4 for i in range(10_000)]
                                + [(b"%d" % i).rjust(4, b"\0") for i in range(10_000)]), dtype=np.uint32)
_LEADING, _LAST = 10_000, 20_000
_POW10_U = np.array([10**k for k in range(20)], dtype=np.uint64)


def _quad_indices(magnitude: np.ndarray, groups: int) -> np.ndarray:
    """(groups, rows) int64: uint64 values below 10**(4 * groups) as groups of four digits, first to last."""
    quads = np.empty((groups, len(magnitude)), dtype=np.int64)
    rest = magnitude
    for g in range(groups - 1, -1, -1):  # the last four digits first
        above = rest // np.uint64(10_000)
        np.subtract(rest, above * np.uint64(10_000), out=quads[g], casting="unsafe")
        rest = above
    return quads


def _digit_quads(magnitude: np.ndarray, groups: int) -> np.ndarray:
    """(rows, groups) uint32: the ASCII digits of uint64 values below 10**(4 * groups), four to an element,
    zero-padded on the left (view as uint8 for the text)."""
    digits: np.ndarray = _QUADS.take(_quad_indices(magnitude, groups).T)
    return digits


# Row k keeps the first k of the 20 bytes of five quads.
_KEEP_FIRST = np.frombuffer(b"".join(b"\xff" * k + b"\0" * (20 - k) for k in range(21)),
                            dtype=np.uint32).reshape(21, 5)


def _digit_count(magnitude: np.ndarray) -> np.ndarray:
    """Decimal digits of uint64 values (1 for zero): from the binary exponent, then checked exactly."""
    as_float = magnitude.astype(np.float64)  # rounds above 2**53: the check below corrects
    biased = (as_float.view(np.uint64) >> np.uint64(52)).view(np.int64)
    count: np.ndarray = _FIRST_DIGIT.take(biased) + 1
    count += as_float >= _ABOVE.take(biased)
    np.clip(count, 1, 20, out=count)
    count -= magnitude < _POW10_U.take(count - 1)
    np.maximum(count, 1, out=count)  # zero
    return count


def _int_field(values: np.ndarray) -> list[Block]:
    """Integers: their digits, a minus sign where negative."""
    if not len(values):
        return []
    lowest, highest = int(values.min()), int(values.max())
    negative = values < 0 if lowest < 0 else None
    magnitude = values if negative is None else np.where(negative, np.negative(values), values)
    width = len(str(max(highest, -lowest)))
    groups = -(-width // 4)
    quads = _quad_indices(magnitude.view(np.uint64), groups)  # (-2**63 wraps to 2**63: right)
    # Leading zeros out: groups of four take the table's second part while every group before is zero.
    leading = np.ones(len(values), dtype=bool)
    for g in range(groups - 1):
        quads[g] += leading * _LEADING
        leading &= quads[g] == _LEADING
    quads[-1] += leading * _LAST
    blocks: list[Block] = [_QUADS.take(quads.T).view(np.uint8)[:, 4 * groups - width:]]
    if negative is not None:
        blocks.insert(0, (negative * np.uint8(ord("-")))[:, None])
    return blocks


def _float_field(values: np.ndarray, json_style: bool) -> list[Block]:
    """Floats as Python's repr writes them."""
    if not len(values):
        return []
    with np.errstate(invalid="ignore"):  # NaN, infinities and magnitudes from 2**63 cast to garbage: not equal
        integer = values.astype(np.int64)
    lowest, highest = int(integer.min()), int(integer.max())
    if (integer == values).all() and highest < 10**16 and lowest > -(10**16) and \
            not (lowest <= 0 and np.signbit(values[integer == 0]).any()):  # (-0.0 keeps its sign)
        return [*_int_field(integer), b".0"]  # whole numbers below 1e16: their digits and ".0"
    finite = np.isfinite(values)
    if json_style and not finite.all():
        raise ValueError("Out of range float values are not JSON compliant")
    magnitude = np.abs(values)
    whole = finite & (magnitude == np.floor(magnitude)) & (magnitude < 1e16)
    return _float_text_blocks(values, finite, whole)


def _float_text_blocks(values: np.ndarray, finite: np.ndarray, whole: np.ndarray) -> list[Block]:
    """The general case: any mix of whole numbers, fractions, exponents and non-finite values.

    Every value is a 17-digit integer (its digits, zero-padded on the right), the power of ten of its first
    digit ``e10`` and its count of digits shown ``nd``; the text is a fixed sequence of cells (sign, "0."
    and leading zeros, the 17 digits with a point cell after each position where some value has its point,
    ".0"'s zero, the exponent) of which each value fills its own.
    """
    magnitude = np.abs(values)
    negative = np.signbit(values) & ~np.isnan(values)
    shortest = finite & ~whole  # fractions, and whole numbers from 1e16
    everywhere = bool(shortest.all())
    # The others get a stand-in that the arithmetic handles (1.5), overwritten below.
    digits, e10, nd, slow = _shortest_digits(magnitude if everywhere else np.where(shortest, magnitude, 1.5))
    if not everywhere and whole.any():
        at = np.flatnonzero(whole)
        integer = magnitude[at].astype(np.uint64)
        places = _digit_count(integer) - 1  # the power of ten of the first digit (0 for zero)
        digits[at] = (integer * _POW10_U.take(16 - places)).view(np.int64)
        e10[at] = places
        nd[at] = places + 1  # digits shown before ".0" (zeros included)
    for i in np.flatnonzero(slow & shortest).tolist():
        digits[i], e10[i], nd[i] = _repr_digits(float(magnitude[i]))

    exponent = shortest & ((e10 < -4) | (e10 >= 16))  # repr's rule: scientific below 1e-4 and from 1e16
    small = shortest & ~exponent & (e10 < 0)  # "0.000ddd"
    if not everywhere:
        nd[~finite] = 0
    # The 17 digits are cells 3..19 of five quads (the first three: padding); a value shows its first nd.
    quads = _digit_quads(digits.view(np.uint64), 5)
    quads &= _KEEP_FIRST.take(nd + 3 * (nd > 0), axis=0)
    quads[:, 0] &= _PADDING_OUT
    ascii_digits = quads.view(np.uint8)[:, 3:3 + max(int(nd.max()), 1)]

    blocks: list[Block] = []
    if negative.any():
        blocks.append(_cells(negative, b"-"))
    if not finite.all():
        nan = np.isnan(values)
        blocks.append(np.where(nan[:, None], np.frombuffer(b"nan", np.uint8), _cells_array(~finite & ~nan, b"inf")))
    if small.any():
        blocks.append(_cells(small, b"0."))
        zeros = -e10 - 1  # after "0.", before the digits
        if not small.all():
            zeros *= small
        blocks.append(_runs(b"0", int(zeros.max())).take(zeros, axis=0))
    # The point follows digit e10 in positional notation, the first digit in scientific (unless alone).
    if everywhere and not (small | exponent).any():
        point = e10
    else:
        point = np.where((shortest | whole) & ~small & ~exponent, e10, np.where(exponent & (nd > 1), 0, -1))
    start = 0
    for j in np.flatnonzero(np.bincount(point + 1, minlength=2)[1:]).tolist():
        blocks.append(ascii_digits[:, start:j + 1])
        blocks.append(_cells(point == j, b"."))
        start = j + 1
    blocks.append(ascii_digits[:, start:])
    if not everywhere and whole.any():
        blocks.append(_cells(whole, b"0"))
    if exponent.any():
        power = np.abs(e10)
        blocks.append(_cells(exponent, b"e"))
        blocks.append(_cells_array(exponent & (e10 < 0), b"-") | _cells_array(exponent & (e10 >= 0), b"+"))
        for unit, shown in ((100, exponent & (power >= 100)), (10, exponent), (1, exponent)):
            if shown.any():
                blocks.append((shown * (power // unit % 10 + ord("0")).astype(np.uint8))[:, None])
    return blocks


def _cells(where: np.ndarray, text: bytes) -> Block:
    """``text`` in the rows ``where`` is true, NUL elsewhere: constant bytes when it is true everywhere."""
    return text if where.all() else _cells_array(where, text)


def _cells_array(where: np.ndarray, text: bytes) -> np.ndarray:
    cells: np.ndarray = where[:, None] * np.frombuffer(text, dtype=np.uint8)
    return cells


@functools.cache
def _runs(char: bytes, width: int) -> np.ndarray:
    """(width + 1, width) uint8: row k is ``char`` k times, then NUL."""
    return np.frombuffer(b"".join((char * k).ljust(width, b"\0") for k in range(width + 1)),
                         dtype=np.uint8).reshape(width + 1, width)


def _repr_digits(value: float) -> tuple[int, int, int]:
    """``repr``'s digits of a positive float as (17-digit integer, power of ten of the first digit, count)."""
    mantissa, _, power = repr(value).partition("e")
    digits = mantissa.replace(".", "")
    leading = len(digits) - len(digits.lstrip("0"))
    point = mantissa.find(".") if "." in mantissa else len(mantissa)
    significant = digits.strip("0")
    return int(significant.ljust(17, "0")), point - leading + int(power or 0) - 1, len(significant)


# The shortest round-trip digits, vectorized. For x > 0 and 10**k scaling it to 17 digits (k <= 22, where
# 10**k is exact), Dekker's product gives x * 10**k = hi + lo exactly; N + frac (N an integer, |frac| <= 1/2)
# is x's exact value in units of its 17th digit, and half an ulp of x is h = ulp/2 * 10**k in the same units.
# A decimal reads back as x when it lies within h of N + frac (an end included when x's significand is even;
# ends that land within 1e-9 of an integer go to repr instead). The shortest is the multiple of the largest
# power of ten in that interval, the one nearest x when there are several (only for ten: the interval is
# under 23 units wide).
_PADDING_OUT = np.frombuffer(b"\0\0\0\xff", dtype=np.uint32)[0]
_SPLITTER = 134_217_729.0  # 2**27 + 1: Veltkamp's split of a double into two 26-bit halves


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scaled = x * _SPLITTER
    high = scaled - (scaled - x)
    return high, x - high


_K_OFFSET = 2  # table index = k + 2, so that whole numbers up to 2**63 (k >= -2) index too
_POW10 = np.array([float(10 ** (i - _K_OFFSET)) if _K_OFFSET <= i <= 22 + _K_OFFSET else 1.0 for i in range(28)])
_POW10_HIGH, _POW10_LOW = _split(_POW10)
_POW10_I = np.array([10**k for k in range(19)], dtype=np.int64)
_FIRST_DIGIT = np.floor(np.clip(np.arange(2048) - 1075 + 52, -1100, 1100) * np.log10(2)).astype(np.int64)
_K_INDEX = np.clip(16 - _FIRST_DIGIT + _K_OFFSET, 0, 27)  # by biased binary exponent; one too high past _ABOVE
_ABOVE = np.array([10.0 ** (int(p) + 1) if abs(p) < 300 else np.inf for p in _FIRST_DIGIT])
_EXACT = 1e-9


def _shortest_digits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For x > 0: the shortest digits that read back as x, as (17-digit int64 integer, power of ten of the
    first digit, number of significant digits, whether to ask repr instead)."""
    with np.errstate(all="ignore"):  # values out of range overflow here; they are the ones marked slow
        return _shortest_digits_unchecked(x)


def _shortest_digits_unchecked(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # (In-place steps, each marked with what the array then holds: this runs once per float column, some
    # 90 numpy calls, and temporaries cost as much as the arithmetic.)
    bits = x.view(np.uint64)
    biased = (bits >> np.uint64(52)).view(np.int64)
    index = _K_INDEX.take(biased)
    index -= x >= _ABOVE.take(biased)  # index = k + 2, 10**k scaling x to 17 digits
    scale = _POW10.take(index)
    high = x * scale
    x_high = x * _SPLITTER
    x_low = x_high - x
    x_high -= x_low  # x's high half
    np.subtract(x, x_high, out=x_low)  # x's low half
    scale_high, scale_low = _POW10_HIGH.take(index), _POW10_LOW.take(index)
    low = x_high * scale_high
    low -= high
    x_high *= scale_low
    low += x_high
    scale_high *= x_low
    low += scale_high
    scale_low *= x_low
    low += scale_low  # x * 10**k = high + low, exactly
    rounded = np.rint(low)
    frac = low
    frac -= rounded
    n = high.astype(np.int64)
    n += rounded.astype(np.int64)  # x * 10**k = n + frac, |frac| <= 1/2
    biased -= 53
    biased <<= 52
    half_ulp = biased.view(np.float64)
    half_ulp *= scale  # half an ulp of x, in units of the 17th digit
    whole = index < _K_OFFSET  # whole numbers from 1e17 (k < 0): x // 10**-k, exactly, in integers
    if whole.any():
        at = np.flatnonzero(whole & (x < 2.0**63))
        integer = x[at].astype(np.int64)
        unit = _POW10_I.take(_K_OFFSET - index[at])
        quotient = integer // unit
        remainder = (integer - quotient * unit) / unit
        up = remainder > 0.5
        n[at] = quotient + up
        frac[at] = remainder - up
        half_ulp[at] /= unit
    top = np.add(frac, half_ulp, out=scale)
    top_floor = np.floor(top, out=high)
    bottom = np.subtract(frac, half_ulp, out=x_low)
    bottom_ceil = np.ceil(bottom, out=rounded)
    width = (top_floor - bottom_ceil).astype(np.int64)  # the interval's integers: bottom_ceil .. top_floor
    upper = top_floor.astype(np.int64)
    upper += n  # the largest integer in the interval
    # How close the interval's ends come to an integer, and frac to a half: too close to decide here.
    top -= top_floor
    bottom_ceil -= bottom
    margin = np.minimum(top, bottom_ceil, out=top)
    np.abs(frac, out=bottom)
    bottom -= 0.5
    np.minimum(margin, np.abs(bottom, out=bottom), out=margin)
    slow = margin <= _EXACT
    slow |= index > 22 + _K_OFFSET  # below 1e-6
    slow |= (bits & np.uint64((1 << 52) - 1)) == 0  # a power of two: the interval is lopsided
    slow |= whole & (x >= 2.0**63)
    tens = upper // 10
    past = tens * 10
    np.subtract(upper, past, out=past)
    by_ten = past <= width  # a multiple of 10 in the interval
    hundreds = tens // 10
    np.multiply(hundreds, 100, out=past)
    np.subtract(upper, past, out=past)
    by_hundred = past <= width
    # With a multiple of ten: the one nearest x (a tie is for repr).
    n_tens = n // 10
    np.multiply(n_tens, 10, out=past)
    np.subtract(n, past, out=past)
    past_tens = past.astype(np.float64)
    past_tens += frac
    past_tens -= 5.0  # x past the multiple of ten below, less five
    digits = n_tens
    digits += past_tens > 0
    np.abs(past_tens, out=past_tens)
    slow |= by_ten & (past_tens <= _EXACT)
    digits *= 10
    digits -= n
    digits *= by_ten
    digits += n  # n, or the nearest multiple of ten where one fits ...
    hundreds *= 100
    hundreds -= digits
    hundreds *= by_hundred
    digits += hundreds  # ... or the multiple of 100, where one fits (there is one at most)
    count = by_ten.astype(np.int64)
    count += by_hundred
    np.subtract(17, count, out=count)
    # That multiple of 100 may be one of 1000, 10**4, ...: its trailing zeros, eight, four, two and one at a time.
    deeper = np.flatnonzero(by_hundred & ~slow)
    if len(deeper):
        quotient, zeros = digits[deeper] // 100, np.zeros(len(deeper), dtype=np.int64)
        for power in (8, 4, 2, 1):
            shorter = quotient // 10**power
            fits = shorter * 10**power == quotient
            quotient += fits * (shorter - quotient)
            zeros += fits * power
        count[deeper] -= zeros
        digits[deeper] = quotient * _POW10_I.take(zeros + 2)
    e10 = np.subtract(16 + _K_OFFSET, index, out=index)
    carried = digits == 10**17  # rounded up to the next power of ten
    if carried.any():
        digits[carried] = 10**16
        e10 += carried
        count[carried] = 1
    return digits, e10, count, slow
