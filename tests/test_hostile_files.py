"""Hostile files (issue 15, items 1, 3 and 5): every file the tool reads passes ``reading.read_text``, every
file it writes ``files.atomic_output``, and every text it prints ``printable``.

A device, profile or measurement path that is ``/dev/zero``, a symlink to it or to ``/dev/urandom``, a FIFO,
a folder, an oversized or malformed file is refused in one line with exit 2, without a hang or a traceback;
a write that fails half-way leaves the previous file and no temporary file; terminal escapes in names from
files or the command line are printed as ``\\u001b``-style text, on successful runs and in errors.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import require_module
from llm_roofline.faces.cli.main import main
from llm_roofline.faces.cli.output import printable_output
from llm_roofline.features.measure import experiment
from llm_roofline.inputs.measurements import read_measurements
from llm_roofline.inputs.printable import printable
from measure_factory import synthetic_measurement

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench/data/llama-bench-rtx3090.json"
T4 = ROOT / "src/llm_roofline/data/hardware/nvidia-t4.toml"
CALIBRATION_HEADER = (ROOT / "bench/data/calibration.csv").read_text(encoding="utf-8").splitlines()[0]
# Rewrite the terminal's title, clear the screen, a CSI as one C1 byte, DEL, a right-to-left override.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b\x7f\u202e"
RAW = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e")


def assert_refused(code: int, out: str, err: str, *phrases: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr, no traceback, each phrase in the line."""
    assert (code, out) == (2, ""), err
    assert err.startswith("llm-roofline: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err


def run_process(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """The command in a child process with a time limit: for paths that could block a reader forever."""
    code = "import sys; from llm_roofline.faces.cli.main import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, encoding="utf-8",
                          errors="replace", timeout=60, check=False)
    return done.returncode, done.stdout, done.stderr


def run_here(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# --- reading: devices, FIFOs, folders, sizes --------------------------------------------------------------

def _special(tmp_path: Path, what: str, name: str) -> str:
    """A path named ``name`` in tmp_path that is ``what``: /dev/zero itself, a symlink to a device, a FIFO."""
    path = tmp_path / name
    if what == "/dev/zero":
        return "/dev/zero"
    if what == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif what == "link to /dev/urandom":
        path.symlink_to("/dev/urandom")
    elif what == "fifo":
        os.mkfifo(path)
    return str(path)


# (command with {} for the path, the path's name, what it is, the words of the refusal)
BLOCKING: list[tuple[list[str], str, str, str]] = [
    (["analyze", "-m", "gpt2", "-H", "{}"], "x.toml", "/dev/zero", "cannot read a character device"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "x.toml", "link to /dev/zero", "cannot read a character device"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "x.json", "fifo", "cannot read a FIFO"),
    (["validate", "{}"], "m.csv", "link to /dev/urandom", "cannot read a character device"),
    (["validate", "{}"], "m.csv", "fifo", "cannot read a FIFO"),
    (["calibrate", "{}", "-H", "nvidia-t4"], "m.json", "link to /dev/zero", "cannot read a character device"),
    (["plot", "measured", "--profile", "{}", "-o", "out.png"], "p.toml", "/dev/zero",
     "--profile /dev/zero: cannot read a character device"),
    (["plot", "measured", "--profile", "{}", "-o", "out.png"], "p.toml", "fifo", "cannot read a FIFO"),
]


@pytest.mark.parametrize(("command", "name", "what", "words"), BLOCKING,
                         ids=[f"{c[0]}-{what}" for c, _, what, _ in BLOCKING])
def test_devices_and_fifos_are_refused_without_a_hang(tmp_path: Path, command: list[str], name: str, what: str,
                                                      words: str) -> None:
    if command[0] == "plot":
        require_module("matplotlib")
    path = _special(tmp_path, what, name)
    code, out, err = run_process([arg.replace("{}", path) for arg in command], tmp_path)
    assert_refused(code, out, err, words)
    assert not (tmp_path / "out.png").exists()


def _write(path: Path, content: str | bytes) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


_DEEP_TOML = "a = " + "[" * 100_000 + "]" * 100_000 + "\n"
_DEEP_TABLES = T4.read_text(encoding="utf-8") + "\n[" + ".".join(["t"] * 70) + "]\nx = 1\n"
_DIGITS = json.dumps({"name": "x"})[:-1] + ', "memory_bytes_per_s": ' + "9" * 5000 + "}"

# (command, the file's name and content; None: a folder, an int: a sparse file of that many bytes; the words)
MALFORMED: list[tuple[list[str], str, str | bytes | int | None, str]] = [
    (["analyze", "-m", "gpt2", "-H", "{}"], "d.toml", None, "cannot read a folder"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "big.toml", 2 << 20, "larger than the 1 MiB a hardware file may be"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "latin1.toml", b'name = "caf\xe9"\n', "not UTF-8 text"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "deep.toml", _DEEP_TOML, "not valid TOML"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "tables.toml", _DEEP_TABLES, "nested deeper than 64 levels"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "digits.json", _DIGITS, "more than 4300 digits"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "digits.toml", "x = " + "9" * 5000 + "\n", "not valid TOML"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "list.json", "[1, 2]", "expected a table of device fields"),
    (["analyze", "-m", "gpt2", "-H", "{}"], "nested.json", "[" * 100_000 + "]" * 100_000, "nested deeper"),
    (["validate", "{}"], "d.csv", None, "cannot read a folder"),
    (["validate", "{}"], "big.csv", (64 << 20) + 1, "larger than the 64 MiB"),
    (["validate", "{}"], "field.csv", CALIBRATION_HEADER + "\n" + "x" * 200_000 + ",a\n",
     "field.csv, row 1: not readable as CSV (field larger than field limit"),
    (["validate", "{}"], "header.csv", "y" * 200_000 + ",b\n", "header.csv, the header: not readable as CSV"),
    (["validate", "{}"], "bench.csv", "build_commit,model_type,model_n_params,n_prompt,n_gen,avg_ts\n"
     "a,b,1,1,0,5\n" + '"' + "z" * 200_000 + '",b,1,1,0,5\n', "bench.csv, row 2: not readable as CSV"),
    (["validate", "{}"], "digits.jsonl", '{"avg_ts": ' + "9" * 5000 + "}\n", "digits"),
    (["calibrate", "{}", "-H", "nvidia-t4"], "deep.json", "[" * 100_000, "nested deeper"),
    (["plot", "measured", "--profile", "{}", "-o", "out.png"], "d.toml", None, "--profile"),
]


@pytest.mark.parametrize(("command", "name", "content", "words"), MALFORMED,
                         ids=[f"{c[0]}-{name}" for c, name, _, _ in MALFORMED])
def test_folders_sizes_and_malformed_files_are_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str],
        name: str, content: str | bytes | int | None, words: str) -> None:
    if command[0] == "plot":
        require_module("matplotlib")
    path = tmp_path / name
    if content is None:
        path.mkdir()
    elif isinstance(content, int):
        with path.open("wb") as sparse:
            sparse.truncate(content)
    else:
        _write(path, content)
    monkeypatch.chdir(tmp_path)  # the plot's out.png
    code, out, err = run_here(capsys, [arg.replace("{}", str(path)) for arg in command])
    assert_refused(code, out, err, words)
    assert not (tmp_path / "out.png").exists()


# --- writing: atomic, the previous file kept, a plain write's mode ----------------------------------------

@pytest.fixture(autouse=True)
def _no_real_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    """``measure`` saves a made-up measurement: these tests are about the file, not the machine."""
    monkeypatch.setattr(experiment, "measure", lambda options: synthetic_measurement())


# Each writer: the option it names, the output's suffix, the command writing to a path, the module it needs.
WRITERS: dict[str, tuple[str, str, Callable[[str], list[str]], str | None]] = {
    "plot": ("--output", ".png", lambda path: ["plot", "measured", "--profile", str(T4), "-o", path], "matplotlib"),
    "report": ("--output", ".html", lambda path: ["report", "-m", "gpt2", "-H", "nvidia-t4", "-o", path], None),
    "calibrate --save": ("--save", ".toml", lambda path: ["calibrate", str(BENCH), "-H", "nvidia-rtx-3090",
                                                          "--save", path], None),
    "measure --save": ("path", ".toml", lambda path: ["measure", "--quick", "--no-progress", "--save", path], None),
}


def _writer(writer: str) -> tuple[str, str, Callable[[str], list[str]]]:
    option, suffix, command, needs = WRITERS[writer]
    if needs:
        require_module(needs)
    return option, suffix, command


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    before = os.umask(0o022)
    os.umask(before)
    yield os.umask
    os.umask(before)


def _fail_with(number: int) -> Callable[..., None]:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(number, os.strerror(number))
    return fail


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_failed_write_keeps_the_previous_file(writer: str, number: int, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    option, suffix, command = _writer(writer)
    target = tmp_path / f"out{suffix}"
    assert run_here(capsys, command(str(target)))[0] == 0
    good = target.read_bytes()
    assert good
    # The disk fills (or turns read-only, ...) when the data is flushed: the error reaches atomic_output.
    monkeypatch.setattr(os, "fsync", _fail_with(number))
    code, out, err = run_here(capsys, command(str(target)))
    assert_refused(code, out, err, f"{option} {target}: cannot write ({os.strerror(number)})")
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_plot_that_fails_half_way_keeps_the_previous_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    figure = require_module("matplotlib.figure")
    _, _, command = _writer("plot")
    target = tmp_path / "out.png"
    assert run_here(capsys, command(str(target)))[0] == 0
    good = target.read_bytes()

    def half_then_fail(self: Any, out: io.BufferedWriter, **kwargs: Any) -> None:
        out.write(good[: len(good) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(figure.Figure, "savefig", half_then_fail)
    code, out, err = run_here(capsys, command(str(target)))
    assert_refused(code, out, err, f"--output {target}: cannot write (No space left on device)")
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_paths_that_cannot_be_files_are_refused_in_one_line(writer: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    option, suffix, command = _writer(writer)
    folder = tmp_path / f"d{suffix}"
    folder.mkdir()
    (tmp_path / "file").write_text("")
    option = "--save" if writer == "measure --save" else option  # measure checks --save before measuring
    in_the_way = tmp_path / "file"
    for path, words in ((f"/proc/x{suffix}", "cannot write (/proc: "), (str(folder), "cannot write (it is a folder"),
                        (str(in_the_way / f"x{suffix}"), f"cannot write ({in_the_way} is a file, not a folder)")):
        code, out, err = run_here(capsys, command(path))
        assert_refused(code, out, err, f"{option} {path}: {words}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folder.name, "file"])


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_written_files_get_a_plain_writes_mode(writer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               umask: Callable[[int], None]) -> None:
    _, suffix, command = _writer(writer)
    for mask in (0o022, 0o077, 0o002):
        umask(mask)
        target = tmp_path / f"{mask:o}{suffix}"
        assert run_here(capsys, command(str(target)))[0] == 0
        assert target.stat().st_mode & 0o777 == 0o666 & ~mask


# --- printed text --------------------------------------------------------------------------------------

def test_printable_escapes_what_a_terminal_would_obey() -> None:
    assert printable("a\x1b]0;t\x07b\x1b[2J") == "a\\u001b]0;t\\u0007b\\u001b[2J"
    assert printable("\x9b\x85\x7f\u202a\u202e\u2066\u2069\udcff") == (
        "\\u009b\\u0085\\u007f\\u202a\\u202e\\u2066\\u2069\\udcff")
    assert printable("line\nnext\ttab\r") == "line\\u000anext\\u0009tab\\u000d"
    assert printable("line\nnext\ttab\r", keep="\n\t") == "line\nnext\ttab\\u000d"
    plain = "Llama-3.1-8B — café µs 中文 ≥ 2 \u00a0 \u200d"
    assert printable(plain) == plain


def test_the_output_edge_escapes_every_write_and_keeps_a_progress_bars_redraw() -> None:
    out, err = io.StringIO(), io.StringIO()
    before = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        with printable_output():
            print(f"name {ESCAPES}")
            sys.stderr.write("\rsweep [##..] 2/4")
            sys.stderr.write("\r" + " " * 16 + "\r")
            print("spoof\rhere", file=sys.stderr)
            sys.stdout.writelines(["lines\x1b[2J\n"])
            print(json.dumps({"name": "\x7f\x9b\u202e"}, ensure_ascii=False))
    finally:
        sys.stdout, sys.stderr = before
    lines = out.getvalue().splitlines()
    assert lines[0] == "name \\u001b]0;pwned\\u0007\\u001b[2J\\u009b\\u007f\\u202e"
    assert lines[1] == "lines\\u001b[2J"
    assert json.loads(lines[2]) == {"name": "\x7f\x9b\u202e"}  # JSON's own escape: still JSON, same text
    assert err.getvalue() == "\rsweep [##..] 2/4\r" + " " * 16 + "\rspoof\\u000dhere\n"
    assert (sys.stdout, sys.stderr) == before


def _evil_device(tmp_path: Path, display_name: str) -> Path:
    path = tmp_path / "evil.toml"
    text = T4.read_text(encoding="utf-8").replace('display_name = "NVIDIA T4"',
                                                  f"display_name = {json.dumps(display_name)}")
    path.write_text(text, encoding="utf-8")
    return path


def test_a_device_files_name_is_shown_not_obeyed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    device = _evil_device(tmp_path, f"T4 {ESCAPES}")
    code, out, err = run_here(capsys, ["analyze", "-m", "gpt2", "-H", str(device)])
    assert code == 0 and err == ""
    assert "T4 \\u001b]0;pwned\\u0007\\u001b[2J" in out and not any(c in out for c in RAW)
    code, out, _ = run_here(capsys, ["analyze", "-m", "gpt2", "-H", str(device), "--format", "json"])
    assert code == 0 and not any(c in out for c in RAW)
    assert json.loads(out)["hardware"]["display_name"].startswith("T4 \\u001b]0;pwned")


def test_the_html_report_escapes_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    device = _evil_device(tmp_path, f"<script>alert(1)</script>{ESCAPES}")
    report = tmp_path / "r.html"
    assert run_here(capsys, ["report", "-m", "gpt2", "-H", str(device), "-o", str(report)])[0] == 0
    page = report.read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not any(c in page for c in RAW)


def test_typed_names_and_paths_in_errors_stay_one_printable_line(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_here(capsys, ["analyze", "-m", f"gpt2{ESCAPES}"])
    assert_refused(code, out, err, "unknown model 'gpt2\\u001b]0;pwned\\u0007")
    assert not any(c in err for c in RAW)
    code, out, err = run_here(capsys, ["analyze", "-m", "gpt2", "-H", str(tmp_path / "a\nb\x1b[2J.toml")])
    assert_refused(code, out, err, "a\\u000ab\\u001b[2J.toml: cannot read (no such file)")
    code, out, err = run_here(capsys, ["analyze", "--format", f"x{ESCAPES}"])  # argparse's own message
    assert_refused(code, out, err, "invalid choice: 'x")
    assert not any(c in err for c in RAW)


def test_a_model_configs_display_name_is_shown_not_obeyed(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = json.loads((ROOT / "src/llm_roofline/data/models/gpt2.json").read_text(encoding="utf-8"))
    config["_display_name"] = f"GPT {ESCAPES}"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    code, out, err = run_here(capsys, ["analyze", "-m", str(path), "-H", "nvidia-t4"])
    assert code == 0 and "GPT \\u001b]0;pwned" in out and not any(c in out + err for c in RAW)


def test_measurement_cells_are_read_printable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = json.loads(BENCH.read_text(encoding="utf-8"))
    for entry in entries:
        entry["gpu_info"] = f"RTX {ESCAPES}"
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    escaped = "RTX \\u001b]0;pwned\\u0007\\u001b[2J\\u009b\\u007f\\u202e"
    assert {m.hardware for m in read_measurements(path)} == {escaped}
    code, out, err = run_here(capsys, ["validate", str(path)])
    assert code == 0 and "RTX \\u001b]0;pwned" in out and not any(c in out + err for c in RAW)
