"""The sweep on hostile or huge input: refused before anything is allocated, in one line; grids made chunk
by chunk in the meshgrid's order; files written whole or not at all; memory bounded by the chunk."""

from __future__ import annotations

import csv
import errno
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import require_module
from llm_roofline import InputError, analyze
from llm_roofline.core.limits import WORKLOAD
from llm_roofline.faces.cli import sweep_commands
from llm_roofline.faces.cli.main import main
from llm_roofline.features.sweep import (
    MAX_AXIS_VALUES,
    MAX_CONFIGURATIONS,
    SweepSpec,
    grid_points,
    iter_sweep,
    make_spec,
    parse_values,
)

BATCH = WORKLOAD["batch"]
_CLI = "import sys; from llm_roofline.faces.cli.main import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize(("batch", "seq_len", "size"), [(1, 1, 1), (3, 5, 1), (3, 5, 4), (7, 3, 5), (4, 6, 24),
                                                        (5, 4, 1000), (1, 9, 2), (9, 1, 2)])
def test_grid_points_are_the_meshgrid_in_chunks(batch: int, seq_len: int, size: int) -> None:
    rng = np.random.default_rng(batch * 100 + seq_len)
    b, s = rng.integers(1, 5000, batch), rng.integers(1, 5000, seq_len)
    chunks = list(grid_points(b, s, size))
    assert all(len(x) == len(y) <= size for x, y in chunks)
    assert len(chunks) == -(-batch * seq_len // size)
    expected = [a.ravel() for a in np.meshgrid(b, s, indexing="ij")]
    assert np.array_equal(np.concatenate([x for x, _ in chunks]), expected[0])
    assert np.array_equal(np.concatenate([y for _, y in chunks]), expected[1])


def test_a_chunk_counts_configurations_not_points() -> None:
    # Three devices and chunks of 7 configurations: two points (six rows) per chunk; the rows are the grid's
    # whatever the chunking, and with one device in the meshgrid's order.
    devices = ["nvidia-l4", "nvidia-t4", "jetson-orin-nx"]
    spec = make_spec(["qwen2.5-0.5b"], devices, [1, 3, 8], [64, 300, 999], weights=["int4"])
    chunks = list(iter_sweep(spec, chunk_size=7))
    assert [len(c["time_s"]) for c in chunks] == [6, 6, 6, 6, 3]
    whole = next(iter_sweep(spec, chunk_size=1000))
    keys = ("hardware", "batch", "seq_len")
    rows = sorted(zip(*(np.concatenate([c[k] for c in chunks]) for k in (*keys, "time_s")), strict=True))
    expected = sorted(zip(*(whole[k] for k in (*keys, "time_s")), strict=True))
    assert [row[:3] for row in rows] == [row[:3] for row in expected]
    assert [row[3] for row in rows] == pytest.approx([row[3] for row in expected], rel=1e-12)
    one = make_spec(["qwen2.5-0.5b"], ["nvidia-l4"], [1, 3, 8], [64, 300, 999], weights=["int4"])
    for size in (1, 4, 9):
        pieces = list(iter_sweep(one, chunk_size=size))
        assert np.array_equal(np.concatenate([c["batch"] for c in pieces]), np.repeat([1, 3, 8], 3))
        assert np.concatenate([c["time_s"] for c in pieces]) == pytest.approx(whole["time_s"][:9], rel=1e-12)


def test_the_largest_batch_and_length_are_priced_without_overflow() -> None:
    # 2^20 sequences of 2^24-token prompts: 2^68 (query, key) pairs per head, past int64; the grid must agree
    # with the scalar analyze, which counts in Python integers.
    high_batch, high_len = int(WORKLOAD["batch"].high), int(WORKLOAD["seq_len"].high)
    spec = make_spec(["llama-2-7b"], ["nvidia-a100-80gb-sxm"], [high_batch], [high_len], phases=["prefill"])
    row = next(iter_sweep(spec))
    ref = analyze("llama-2-7b", "nvidia-a100-80gb-sxm", phase="prefill", batch=high_batch, seq_len=high_len)
    assert row["flops"][0] == pytest.approx(ref.totals.flops, rel=1e-9)
    assert row["time_s"][0] == pytest.approx(ref.totals.time_s, rel=1e-9)
    assert row["memory_bytes"][0] == pytest.approx(ref.memory.total_bytes, rel=1e-9)


def _geometric(low: int, high: int, factor: float) -> list[int]:
    """The definition of a geometric range: multiply, round, stop past ``high`` (up to rounding)."""
    values, value = [], float(low)
    while value <= high * (1 + 1e-12):
        values.append(round(value))
        value *= factor
    return list(dict.fromkeys(values))


@pytest.mark.parametrize(("low", "high", "factor"), [(1, 1000, 1.1), (3, 50000, 1.37), (128, 32768, 2.0),
                                                     (1, 1000, 10.0), (7, 7, 1.5), (1, 10**6, 1.0001)])
def test_geometric_ranges_follow_their_definition(low: int, high: int, factor: float) -> None:
    step = "log" if factor == 2.0 else f"x{factor}"
    assert parse_values(f"{low}..{high}:{step}", "batch", BATCH) == tuple(_geometric(low, high, factor))


@pytest.mark.parametrize(("text", "fragment"), [
    ("99999999999999999999", "an integer of 20 digits is out of range; each value must be an integer from 1 to"),
    ("1..99999999999999999999", "out of range"),
    (str(int(BATCH.high) + 1), "out of range"),
    ("0", "out of range"),
    ("1..1000:x1.0000000001", "makes 69,077,547,078 values, at most 10,000,000"),
    ("1..1000:x1", "a finite factor > 1"),
    ("1..1000:x0.5", "a finite factor > 1"),
    ("1..1000:xnan", "a finite factor > 1"),
    ("1..1000:xinf", "a finite factor > 1"),
    ("1..1000:0", "step must be >= 1"),
    ("1..1000,1..1000000,1..1000000:x1.000001", "values, at most 10,000,000"),
    ("9" * 5000, "cannot read"),
    ("1..2..3", "cannot read"),
])
def test_parse_values_refuses_before_making_values(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        parse_values(text, "batch", BATCH)
    message = str(err.value)
    assert fragment in message and "\n" not in message and len(message) < 200


def test_parse_values_counts_every_piece() -> None:
    # Each piece alone is under the cap, together they are over: the sum is what is checked.
    piece = f"1..{MAX_AXIS_VALUES // 2 + 1}"
    with pytest.raises(InputError, match="at most 10,000,000"):
        parse_values(f"{piece},{piece}", "seq-len", WORKLOAD["seq_len"])


def test_the_python_api_checks_the_grid_before_copying_it() -> None:
    with pytest.raises(InputError, match="batch has 1,000,000,000,000 values, at most 10,000,000"):
        make_spec(["gpt2"], ["nvidia-l4"], range(1, 10**12 + 1), [16])  # refused from its length, not copied
    with pytest.raises(InputError, match="every batch must be an integer from 1 to"):
        make_spec(["gpt2"], ["nvidia-l4"], [2.5], [16])  # type: ignore[list-item]
    with pytest.raises(InputError, match="every seq_len must be an integer from 1 to 16777216, got 16777217"):
        make_spec(["gpt2"], ["nvidia-l4"], [1], [16, 2**24 + 1])
    spec = make_spec(["gpt2"], ["nvidia-l4"], [1], [16])
    batch, lengths = tuple(range(1, int(BATCH.high) + 1)), tuple(range(1, 10_000))
    assert len(batch) * len(lengths) > MAX_CONFIGURATIONS
    with pytest.raises(InputError, match="the grid has 10,484,711,424 configurations, at most 10,000,000,000"):
        SweepSpec(spec.models, spec.hardware, batch, lengths)


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("args", "fragment"), [
    (["-b", "99999999999999999999"], "--batch: an integer of 20 digits is out of range"),
    (["-l", "1..99999999999999999999"], "--seq-len: an integer of 20 digits is out of range"),
    (["-b", "1..1000:x1.0000000001"], "--batch: '1..1000:x1.0000000001' makes 69,077,547,078 values"),
    (["-b", "1..1000:x1"], "a finite factor > 1"),
    (["-b", "1..1000:x0.5"], "a finite factor > 1"),
    (["-l", "1..16777216"], "makes 16,777,216 values, at most 10,000,000"),
    (["-b", "1..1000000", "-l", "1..100000"], "the grid has 100,000,000,000 configurations, at most 10,000,000,000"),
    (["-b", "1..100", "-l", "1..60000", "-q", "boundary"], "60,000 here, at most 50,000"),
])
def test_cli_refusals_are_one_line_and_leave_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      args: list[str], fragment: str) -> None:
    target = tmp_path / "grid.csv"
    code, out, err = _run(capsys, ["sweep", "-m", "gpt2", *args, "-o", str(target)])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and fragment in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("levels", [3, 20, 10**6])
def test_the_front_is_the_rows_no_earlier_row_beats(levels: int) -> None:
    # Against the definition, row by row, with ties (few levels) and without.
    rng = np.random.default_rng(levels)
    for n in (0, 1, 2, 5, 64, 333):
        tps, memory = rng.integers(0, levels, n).astype(float), rng.integers(0, levels, n).astype(float)
        expected = [bool(np.any((tps[:i] >= tps[i]) & (memory[:i] <= memory[i]))) for i in range(n)]
        assert sweep_commands._beaten_by_an_earlier_row(tps, memory).tolist() == expected


def test_a_front_of_every_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    # GPT-2 decoding after one token on an A100: each larger batch takes longer, serves more tokens/s and
    # holds more memory, so no configuration beats another and the front is the whole grid (it was quadratic).
    code, out, _ = _run(capsys, ["sweep", "-m", "gpt2", "-H", "nvidia-a100-80gb-sxm", "-b", "1..3000", "-l", "1",
                                 "-q", "pareto", "-f", "json"])
    rows = json.loads(out)["rows"]
    assert code == 0 and [row["batch"] for row in rows] == list(range(1, 3001))
    assert all(a["tokens_per_s"] < b["tokens_per_s"] and a["memory_bytes"] < b["memory_bytes"]
               for a, b in itertools.pairwise(rows))


def test_a_front_past_the_cap_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, ["sweep", "-m", "gpt2", "-H", "nvidia-a100-80gb-sxm", "-b", "1..60000", "-l", "1",
                                   "-q", "pareto"])
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["llm-roofline: error: sweep: the Pareto front has over 50,000 configurations "
                                        "(every one trades time for throughput or memory); narrow the grid, or "
                                        "--output it"]


def _grid_args(target: Path) -> list[str]:
    return ["sweep", "-m", "gpt2", "-H", "nvidia-l4", "-b", "1..8", "-l", "16,64", "-o", str(target)]


def test_writes_keep_the_previous_file_on_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "grid.csv"
    target.write_text("the previous run\n")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    code, _, err = _run(capsys, _grid_args(target))
    assert code == 2
    assert err.strip() == f"llm-roofline: error: --output {target}: cannot write (No space left on device)"
    monkeypatch.undo()

    def read_only(source: str, destination: str) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", read_only)
    code, _, err = _run(capsys, _grid_args(target))
    assert code == 2 and err.strip().endswith("cannot write (Read-only file system)")
    assert target.read_text() == "the previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.csv"]  # no temporary file left


@pytest.mark.parametrize(("make", "target", "fragment"), [
    (lambda root: (root / "d.csv").mkdir(), "d.csv", "it is a folder, not a file"),
    (lambda root: (root / "f").write_text(""), "f/grid.csv", "is a file, not a folder"),
    (lambda root: None, "/proc/grid.csv", "cannot write"),
])
def test_unwritable_targets_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         make: Callable[[Path], object], target: str, fragment: str) -> None:
    make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    path = target if target.startswith("/") else str(tmp_path / target)
    code, _, err = _run(capsys, _grid_args(Path(path)))
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


_LIMITED = """
import resource, signal, sys
from llm_roofline.faces.cli.main import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path: Path, suffix: str) -> None:
    # A real OS error in the middle of the file (the size limit stands in for a full disk).
    if suffix == "parquet":
        require_module("pyarrow")
    target = tmp_path / f"grid.{suffix}"
    target.write_bytes(b"the previous run\n")
    args = ["sweep", "-m", "gpt2", "-H", "nvidia-l4", "-b", "1..64", "-l", "16..64", "-o", str(target)]
    done = subprocess.run([sys.executable, "-c", _LIMITED, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"llm-roofline: error: --output {target}: cannot write (File too large)"
    assert "Traceback" not in done.stderr
    assert target.read_bytes() == b"the previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_have_a_plain_writes_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                umask: int) -> None:
    old = os.umask(umask)
    try:
        assert _run(capsys, _grid_args(tmp_path / "grid.csv"))[0] == 0
    finally:
        os.umask(old)
    assert (tmp_path / "grid.csv").stat().st_mode & 0o777 == 0o666 & ~umask
    with open(tmp_path / "grid.csv") as f:
        assert len(list(csv.DictReader(f))) == 16


def test_stdout_on_a_full_disk_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-c", _CLI, *_grid_args(Path("-"))], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "llm-roofline: error: --output -: cannot write (No space left on device)"]


def test_a_reader_that_goes_away_is_not_an_error() -> None:
    # `llm-roofline sweep -o - | head -c 100`: the pipe closes after the first bytes of a 400,000-row CSV.
    args = ["sweep", "-m", "gpt2", "-b", "1..400", "-l", "16..1015", "-o", "-"]
    with subprocess.Popen([sys.executable, "-c", _CLI, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stderr is not None
        assert child.stdout.read(100).startswith(b"model,hardware,phase")
        child.stdout.close()
        err = child.stderr.read().decode()
        assert child.wait(timeout=120) == 0 and err == ""


def test_text_writers_format_a_slice_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # The text of a chunk is made SLICE_ROWS rows at a time, and reads the same as the whole chunk's.
    import io

    from llm_roofline.faces.cli import writers

    spec = make_spec(["gpt2"], ["nvidia-l4", "nvidia-t4"], range(1, 40), [16, 64])
    whole = {suffix: io.BytesIO() for suffix in ("csv", "jsonl")}
    sliced = {suffix: io.BytesIO() for suffix in ("csv", "jsonl")}
    from llm_roofline.features.sweep import COLUMNS

    for out, writer in ((whole, None), (sliced, 7)):
        if writer is not None:
            monkeypatch.setattr(writers, "SLICE_ROWS", writer)
        assert writers.write_csv(iter_sweep(spec), out["csv"], COLUMNS) == 156
        assert writers.write_jsonl(iter_sweep(spec), out["jsonl"], COLUMNS) == 156
    assert whole["csv"].getvalue() == sliced["csv"].getvalue()
    assert whole["jsonl"].getvalue() == sliced["jsonl"].getvalue()
    assert len(sliced["jsonl"].getvalue().splitlines()) == 156


# Runs a command in a child and reports the child's peak RSS (RUSAGE_CHILDREN of a fresh process: no other
# child of the test session counts).
_PEAK = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": done.returncode, "out": done.stdout, "err": done.stderr,
                  "peak_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""
MIB = 1 << 20


def _peak(argv: list[str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PEAK, *argv], capture_output=True, text=True, timeout=300,
                          check=True)
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_generating_a_hundred_million_points_stays_small() -> None:
    # The 10^4 x 10^4 grid that the meshgrid made in 1.7 GB, chunk by chunk; the sums check every point came.
    code = ("import numpy as np; from llm_roofline.features.sweep import grid_points\n"
            "b = np.arange(1, 10001); s = np.arange(5, 10005); tb = ts = n = 0\n"
            "for x, y in grid_points(b, s, 1 << 16):\n"
            "    tb += int(x.sum()); ts += int(y.sum()); n += len(x)\n"
            "print(n == 10**8 and tb == 10**4 * int(b.sum()) and ts == 10**4 * int(s.sum()))\n")
    report = _peak([sys.executable, "-c", code])
    assert report["rc"] == 0 and report["out"] == "True\n"
    assert isinstance(report["peak_bytes"], int) and report["peak_bytes"] < 150 * MIB


def test_a_sixteen_device_query_stays_under_400_mb() -> None:
    # 16 devices x 250 batches x 2,500 lengths = 10^7 configurations (10^8: docs/benchmarks.md). Chunks count
    # configurations, so sixteen devices do not make a chunk sixteen times larger (it took 1 GB at 1.6 x 10^6).
    from llm_roofline import hardware_names

    devices = hardware_names()[:16]
    report = _peak([sys.executable, "-c", _CLI, "sweep", "-H", ",".join(devices), "-b", "1..250", "-l", "1..2500",
                    "-q", "boundary", "-f", "json", "--no-progress"])
    assert report["rc"] == 0, report["err"]
    assert isinstance(report["peak_bytes"], int) and report["peak_bytes"] < 400 * MIB
    assert isinstance(report["out"], str)
    rows = json.loads(report["out"])["rows"]
    assert {row["hardware"] for row in rows} <= set(devices) and len(rows) > 1000
    for row in rows[:: len(rows) // 3]:  # the smallest compute-bound batch, checked on both sides
        ref = analyze(row["model"], row["hardware"], batch=row["batch"], seq_len=row["seq_len"])
        assert ref.totals.bound == "compute"
        if row["batch"] > 1:
            assert analyze(row["model"], row["hardware"], batch=row["batch"] - 1,
                           seq_len=row["seq_len"]).totals.bound == "memory"


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_text_writers_stay_small(tmp_path: Path, suffix: str) -> None:
    # Two default chunks (131,072 rows): formatting whole chunks took 640 MB.
    target = tmp_path / f"grid.{suffix}"
    report = _peak([sys.executable, "-c", _CLI, "sweep", "-m", "gpt2", "-b", "1..64", "-l", "1..2048",
                    "-o", str(target), "--no-progress"])
    assert report["rc"] == 0, report["err"]
    assert isinstance(report["peak_bytes"], int) and report["peak_bytes"] < 250 * MIB
    assert sum(1 for _ in target.open()) == 131_072 + (suffix == "csv")
