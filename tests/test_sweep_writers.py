"""The sweep's CSV and JSON-lines writers (faces/cli/writers.py): byte for byte what Python's csv module
and ``json.dumps`` write, floats as ``repr`` (and read back exactly), labels escaped, a slice at a time,
stdout as a file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pytest

from llm_roofline.faces.cli import writers
from llm_roofline.faces.cli.main import main
from llm_roofline.features.sweep import COLUMNS, iter_sweep, make_spec
from llm_roofline.inputs.printable import printable

Chunk = Mapping[str, np.ndarray]


def _written(writer: Callable[..., int], chunks: Iterable[Chunk], columns: Sequence[str], **options: object) -> bytes:
    out = io.BytesIO()
    writer(chunks, out, columns, **options)
    return out.getvalue()


def _csv_reference(chunks: Iterable[Chunk], columns: Sequence[str]) -> bytes:
    """Python's csv module, a float by repr (the writer's contract, byte for byte)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for chunk in chunks:
        for row in zip(*(chunk[c].tolist() for c in columns), strict=True):
            writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return out.getvalue().encode()


def _jsonl_reference(chunks: Iterable[Chunk], columns: Sequence[str]) -> bytes:
    """What the writer replaced: json.dumps of every row."""
    return "".join(json.dumps(dict(zip(columns, row, strict=True)), allow_nan=False) + "\n"
                   for chunk in chunks for row in zip(*(chunk[c].tolist() for c in columns), strict=True)).encode()


def _hard_floats(seed: int = 0) -> np.ndarray:
    """Floats across every magnitude and the cases shortest-digit printing gets wrong when it is wrong."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**64 - 1, 60_000, dtype=np.uint64, endpoint=True).view(np.float64)
    powers = np.concatenate([2.0 ** np.arange(-1074, 1024), [float(f"1e{k}") for k in range(-323, 309)]])
    parts = [
        bits[np.isfinite(bits)],  # every exponent, subnormals included
        np.abs(rng.standard_normal(30_000)) * 10.0 ** rng.integers(-12, 22, 30_000),
        np.array([round(v, int(p)) for v, p in zip(rng.random(20_000) * 1e4, rng.integers(0, 7, 20_000),
                                                     strict=True)]),  # short decimals: many trailing zeros
        rng.integers(1, 2**63 - 1, 10_000, dtype=np.int64).astype(np.float64),  # whole, up to 2**63
        powers, np.nextafter(powers, 0), np.nextafter(powers, np.inf),  # ties and asymmetric intervals
        np.array([0.0, -0.0, 0.1 + 0.2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 1e-4,
                  9.999999999999999e-5, 0.12917166500000002, 9007199254740993.0, 123456789012345678.0]),
    ]
    values = np.concatenate(parts)
    return np.concatenate([values, -values[::7]])


def test_floats_are_their_repr_and_read_back_exactly() -> None:
    values = _hard_floats()
    text = _written(writers.write_csv, [{"x": values, "i": np.arange(len(values))}], ["x", "i"])
    rows = list(csv.reader(io.StringIO(text.decode(), newline="")))
    assert rows[0] == ["x", "i"] and len(rows) == len(values) + 1
    cells = [row[0] for row in rows[1:]]
    assert cells == [repr(v) for v in values.tolist()]
    back = np.array([float(cell) for cell in cells])
    assert back.view(np.uint64).tolist() == values.view(np.uint64).tolist()  # bit for bit, -0.0 included


def test_json_lines_are_json_dumps_of_each_row() -> None:
    values = _hard_floats(seed=1)
    chunk = {"x": values, "ok": values > 0}
    text = _written(writers.write_jsonl, [chunk], ["x", "ok"])
    assert text == _jsonl_reference([chunk], ["x", "ok"])
    back = np.array([json.loads(line)["x"] for line in text.splitlines()])
    assert back.view(np.uint64).tolist() == values.view(np.uint64).tolist()


def test_repr_where_the_arithmetic_declines_gives_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # The few floats the vectorized digits leave to repr (ties, powers of two, tiny and huge values) go
    # through _repr_digits: with every float sent there, the text is the same.
    values = _hard_floats(seed=2)[::5]
    chunk = {"x": values}
    fast = _written(writers.write_csv, [chunk], ["x"])
    shortest = writers._shortest_digits

    def all_slow(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        digits, e10, count, slow = shortest(x)
        return digits, e10, count, np.ones_like(slow)

    monkeypatch.setattr(writers, "_shortest_digits", all_slow)
    assert _written(writers.write_csv, [chunk], ["x"]) == fast == _csv_reference([chunk], ["x"])


def test_a_sweep_is_written_as_the_csv_and_json_modules_write_it() -> None:
    spec = make_spec(["gpt2", "llama-2-7b"], ["nvidia-t4", "nvidia-a100-80gb-sxm", "jetson-orin-nx"],
                     range(1, 300, 13), range(1, 5000, 97), phases=["prefill", "decode"], weights=["fp16", "int4"],
                     flash_attention=(False, True))
    chunks = list(iter_sweep(spec, 4096))
    assert _written(writers.write_csv, chunks, COLUMNS) == _csv_reference(chunks, COLUMNS)
    assert _written(writers.write_jsonl, chunks, COLUMNS) == _jsonl_reference(chunks, COLUMNS)


ODD_LABELS = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\rhere", "crlf\r\n", "", " padded ", "tab\there",
              "back\\slash", "é-ü", "模型", "🚀", ",", '"', "\u001b[2J", "\u202eexe.txt"]


@pytest.mark.parametrize("repeat", [1, 2, len(ODD_LABELS)], ids=["constant", "two", "many"])
def test_labels_are_quoted_and_escaped(repeat: int) -> None:
    # A column of one label, of two, and of many (the writer's three ways of coding labels).
    labels = [ODD_LABELS[i % repeat] for i in range(len(ODD_LABELS))] if repeat > 1 else ["a,\"b\"\n"] * 5
    for shift in range(len(ODD_LABELS) if repeat > 1 else 1):
        column = np.array(labels[shift:] + labels[:shift], dtype=object)
        chunk = {"name": column, "n": np.arange(len(column))}
        text = _written(writers.write_csv, [chunk], ["name", "n"])
        rows = list(csv.reader(io.StringIO(text.decode(), newline="")))
        assert [row[0] for row in rows[1:]] == column.tolist()
        # Quoted exactly where RFC 4180 needs it (a comma, a quote, a line break), quotes doubled.
        quoted = ['"' + label.replace('"', '""') + '"' if any(c in label for c in ',"\r\n') else label
                  for label in column.tolist()]
        assert text.decode() == "name,n\n" + "".join(f"{q},{i}\n" for i, q in enumerate(quoted))
        assert _written(writers.write_jsonl, [chunk], ["name", "n"]) == _jsonl_reference([chunk], ["name", "n"])


def test_labels_match_the_csv_module() -> None:
    # (The csv module leaves a lone carriage return unquoted; the writer quotes it, as RFC 4180 asks.)
    labels = np.array([label for label in ODD_LABELS if "\r" not in label] * 3, dtype=object)
    chunk = {"name": labels, "x": np.linspace(0, 1, len(labels))}
    assert _written(writers.write_csv, [chunk], ["name", "x"]) == _csv_reference([chunk], ["name", "x"])


def test_shown_filters_labels_and_names_only() -> None:
    # On a terminal the labels pass through printable (faces.cli.output's filter): the rest is digits.
    chunk = {"na\u001bme": np.array(["x\u001b]0;title\u0007", "ok"], dtype=object), "x": np.array([0.5, 2e-7])}
    text = _written(writers.write_csv, [chunk], ["na\u001bme", "x"], shown=lambda t: printable(t, "\n\t"))
    plain = _written(writers.write_csv, [chunk], ["na\u001bme", "x"])
    assert text.decode() == printable(plain.decode(), "\n\t")
    assert text == b"na\\u001bme,x\nx\\u001b]0;title\\u0007,0.5\nok,2e-07\n"


def test_ints_and_bools() -> None:
    ints = np.array([0, 1, -1, 9, 10, 99, 100, -100, 2**53 + 1, 10**18, 2**63 - 1, -(2**63), 10**15 - 1],
                    dtype=np.int64)
    chunk = {
        "i": ints,
        "small": ints.astype(np.int8),
        "big": np.array([2**64 - 1, 0, 2**63, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13], dtype=np.uint64),
        "b": ints > 0,
        "yes": np.ones(len(ints), dtype=bool),
        "no": np.zeros(len(ints), dtype=bool),
        "w": ints.astype(np.float64).clip(-1e15, 1e15),  # whole floats: digits and ".0"
    }
    columns = list(chunk)
    assert _written(writers.write_csv, [chunk], columns) == _csv_reference([chunk], columns)
    assert _written(writers.write_jsonl, [chunk], columns) == _jsonl_reference([chunk], columns)


def test_non_finite_values() -> None:
    chunk = {"x": np.array([np.nan, np.inf, -np.inf, -0.0, 1.5, -np.nan])}
    assert _written(writers.write_csv, [chunk], ["x"]) == b"x\nnan\ninf\n-inf\n-0.0\n1.5\nnan\n"
    with pytest.raises(ValueError, match="not JSON compliant"):  # as json.dumps(allow_nan=False): JSON has none
        _written(writers.write_jsonl, [chunk], ["x"])


def test_empty_chunks() -> None:
    empty = {"a": np.array([], dtype=object), "x": np.array([], dtype=np.float64), "n": np.array([], dtype=int)}
    for chunks in ([], [empty], [empty, empty]):
        assert _written(writers.write_csv, chunks, ["a", "x", "n"]) == b"a,x,n\n"
        assert _written(writers.write_jsonl, chunks, ["a", "x", "n"]) == b""


def test_a_nul_in_a_csv_label_is_refused() -> None:
    chunk = {"name": np.array(["a\0b"], dtype=object)}
    with pytest.raises(ValueError, match="NUL"):
        _written(writers.write_csv, [chunk], ["name"])
    assert _written(writers.write_jsonl, [chunk], ["name"]) == b'{"name": "a\\u0000b"}\n'


def test_stdout_and_a_file_get_the_same_bytes(tmp_path: object, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from pathlib import Path

    target = Path(str(tmp_path)) / "grid.csv"
    grid = ["sweep", "-m", "gpt2", "-H", "nvidia-t4,nvidia-l4", "-b", "1..9", "-l", "1..300:7", "--no-progress"]
    assert main([*grid, "-o", str(target)]) == 0
    capsysbinary.readouterr()
    assert main([*grid, "-o", "-"]) == 0
    assert capsysbinary.readouterr().out == target.read_bytes()  # the CSV alone: no line after it


def test_stdout_without_a_byte_buffer(capsys: pytest.CaptureFixture[str]) -> None:
    # A caller that swapped stdout for a StringIO still gets the CSV.
    import contextlib

    grid = ["sweep", "-m", "gpt2", "-H", "nvidia-t4", "-b", "1..3", "-l", "16", "--no-progress", "-o"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*grid, "-"]) == 0
    assert main([*grid, "-"]) == 0
    assert out.getvalue() == capsys.readouterr().out and out.getvalue().startswith("model,hardware,phase,")


@pytest.mark.parametrize(("slice_rows", "band_rows"), [(7, 3), (100, 64), (5000, 1024)])
def test_the_text_does_not_depend_on_slices_and_bands(monkeypatch: pytest.MonkeyPatch, slice_rows: int,
                                                       band_rows: int) -> None:
    # Rows are formatted SLICE_ROWS at a time and laid out BAND_ROWS at a time; the layout (field widths)
    # changes from slice to slice, and the matrix is reused while it does not.
    spec = make_spec(["gpt2"], ["nvidia-l4", "nvidia-t4"], range(1, 60), range(1, 3000, 41),
                     phases=["prefill", "decode"])
    chunks = list(iter_sweep(spec, 2048))
    expected = {writer: _written(writer, chunks, COLUMNS) for writer in (writers.write_csv, writers.write_jsonl)}
    monkeypatch.setattr(writers, "SLICE_ROWS", slice_rows)
    monkeypatch.setattr(writers, "BAND_ROWS", band_rows)
    for writer, text in expected.items():
        assert _written(writer, chunks, COLUMNS) == text
    assert expected[writers.write_csv] == _csv_reference(chunks, COLUMNS)


def test_columns_of_one_value() -> None:
    # A column that holds one value (the model's weight bytes; a share of 0.0) is formatted once.
    rows = 9
    chunk = {"zero": np.zeros(rows), "negative_zero": np.full(rows, -0.0), "both": np.tile([0.0, -0.0, 0.0], 3),
             "third": np.full(rows, 0.1 + 0.2), "big": np.full(rows, 1e300), "int": np.full(rows, -7),
             "nan": np.full(rows, np.nan), "name": np.array(["x"] * rows, dtype=object)}
    columns = list(chunk)
    assert _written(writers.write_csv, [chunk], columns) == _csv_reference([chunk], columns)
    del chunk["nan"]
    columns.remove("nan")
    assert _written(writers.write_jsonl, [chunk], columns) == _jsonl_reference([chunk], columns)


def _spec_chunks(chunk: int) -> tuple[Callable[[int, int], Iterable[Chunk]], list[Chunk]]:
    spec = make_spec(["llama-2-7b", "qwen2.5-0.5b"], ["jetson-orin-nx", "nvidia-a100-80gb-sxm"], range(1, 40),
                     [1, 100, 4096], weights=["fp16", "q4_k_m"])
    return (lambda part, parts: iter_sweep(spec, chunk, (part, parts))), list(iter_sweep(spec, chunk))


@pytest.mark.parametrize("processes", [1, 2, 3, 5])
@pytest.mark.parametrize("style", ["csv", "jsonl"])
def test_several_processes_write_the_same_bytes(tmp_path: object, style: str, processes: int) -> None:
    """Chunks k, k + n, ... evaluated and formatted by each of n forked processes, merged in order: the bytes of
    the serial writer, whatever the number of processes against the number of chunks (here 12 chunks)."""
    from pathlib import Path

    chunks_of, chunks = _spec_chunks(78)
    assert len(chunks) == 12
    serial = _written(writers.write_csv if style == "csv" else writers.write_jsonl, chunks, COLUMNS)
    target = Path(str(tmp_path)) / f"grid.{style}"
    told: list[int] = []
    with target.open("wb") as out:
        rows = writers.write_in_processes(chunks_of, out, COLUMNS, style, processes, told.append)
    assert target.read_bytes() == serial
    assert rows == sum(told) == sum(len(chunk["batch"]) for chunk in chunks) and len(told) == 12


def test_a_process_error_is_raised_and_every_process_ends(tmp_path: object) -> None:
    """JSON lines of a NaN: the formatting process reports the error, this one raises it (as the serial writer
    does), and no process is left behind; a process that dies without a word is an error too."""
    import os
    from pathlib import Path

    def chunks_of(part: int, parts: int) -> Iterable[Chunk]:
        yield {"x": np.array([1.0, 2.0])}
        if part == 0:  # the third chunk (chunks interleave: 0 from process 0, 1 from 1, 2 from 0)
            yield {"x": np.array([np.nan])}

    target = Path(str(tmp_path)) / "grid.jsonl"
    with target.open("wb") as out, pytest.raises(ValueError, match="not JSON compliant"):
        writers.write_in_processes(chunks_of, out, ["x"], "jsonl", 2)

    def dies(part: int, parts: int) -> Iterable[Chunk]:
        yield {"x": np.array([1.0])}
        os._exit(3)

    with target.open("wb") as out, pytest.raises(RuntimeError, match="ended without finishing"):
        writers.write_in_processes(dies, out, ["x"], "jsonl", 2)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every formatting process was waited for


def test_the_command_writes_a_large_grid_with_several_processes(tmp_path: object) -> None:
    """Past PARALLEL_ROWS rows the sweep command formats in processes: the file is the serial writer's."""
    from pathlib import Path

    from llm_roofline.faces.cli import sweep_commands

    if sweep_commands._format_processes(sweep_commands.PARALLEL_ROWS) < 2:
        pytest.skip("one CPU or no fork here: the command formats in this process (the serial path's tests apply)")
    target = Path(str(tmp_path)) / "grid.jsonl"
    assert main(["sweep", "-m", "qwen2.5-0.5b", "-H", "jetson-orin-nx", "-b", "1..500", "-l", "1..420",
                 "--no-progress", "-o", str(target)]) == 0
    spec = make_spec(["qwen2.5-0.5b"], ["jetson-orin-nx"], range(1, 501), range(1, 421))
    assert spec.size >= sweep_commands.PARALLEL_ROWS
    assert target.read_bytes() == _written(writers.write_jsonl, iter_sweep(spec), COLUMNS)


def test_background_writes_keep_the_order_and_report_an_error() -> None:
    """The writing thread writes every block in order before the block ends; an OSError of its writes (a full
    disk) is raised in the formatting thread, at a later write or at the end."""

    class Disk(io.BytesIO):
        def __init__(self, full_after: int | None = None) -> None:
            super().__init__()
            self.full_after = full_after

        def write(self, data: object) -> int:
            if self.full_after is not None and self.tell() >= self.full_after:
                raise OSError(28, "No space left on device")
            return super().write(data)  # type: ignore[arg-type]

    disk = Disk()
    with writers.background_writes(disk) as sink:  # type: ignore[arg-type]
        for i in range(1000):
            sink.write(memoryview(f"{i}\n".encode()))
    assert disk.getvalue() == "".join(f"{i}\n" for i in range(1000)).encode()
    full = Disk(full_after=100)
    with pytest.raises(OSError, match="No space"), writers.background_writes(full) as sink:  # type: ignore[arg-type]
        for _ in range(10_000):
            sink.write(memoryview(b"0123456789"))
