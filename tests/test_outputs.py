"""One rule for every file the program writes (render.check_writable): missing folders are created,
as ``mkdir -p`` would; a path that is a folder, a file where a folder should be, or a folder that
cannot be written in is refused before any work, in one line of the same form, with exit status 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import require_module
from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli.main import main
from llm_roofline.faces.report.plots import save_figure
from llm_roofline.features.measure import experiment
from llm_roofline.inputs.files import check_writable, write_text_atomically
from measure_factory import synthetic_measurement

ROOT = Path(__file__).resolve().parents[1]

SWEEP = ["sweep", "-m", "gpt2", "-H", "nvidia-t4", "-b", "1,2", "-l", "16,32"]
CALIBRATION = str(ROOT / "bench/data/llama-bench-rtx3090.json")

# Each writer: the option it writes through, the file's suffix, the command line writing to a path, and
# the module it needs beyond the core.
WRITERS: dict[str, tuple[str, str, Callable[[str], list[str]], str | None]] = {
    "plot": ("--output", ".png", lambda path: ["plot", "share", "-m", "gpt2", "-l", "64", "128", "-o", path],
             "matplotlib"),
    "report": ("--output", ".html", lambda path: ["report", "-m", "gpt2", "-H", "nvidia-t4", "-o", path], None),
    "sweep --output": ("--output", ".csv", lambda path: [*SWEEP, "-o", path], None),
    "sweep --heatmap": ("--heatmap", ".png", lambda path: [*SWEEP, "--heatmap", path], "matplotlib"),
    "measure --save": ("--save", ".toml", lambda path: ["measure", "--quick", "--no-progress", "--save", path], None),
    "calibrate --save": ("--save", ".toml", lambda path: ["calibrate", CALIBRATION, "--hardware", "nvidia-rtx-3090",
                                                          "--save", path], None),
}


@pytest.fixture(autouse=True)
def _no_real_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    """``measure`` saves a made-up measurement: the rule is about the file, not the machine."""
    monkeypatch.setattr(experiment, "measure", lambda options: synthetic_measurement())


def _run(capsys: pytest.CaptureFixture[str], writer: str, path: Path | str) -> tuple[int, str, str]:
    _, _, argv, needs = WRITERS[writer]
    if needs:
        require_module(needs)
    code = main(argv(str(path)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_missing_folders_are_created(writer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suffix = WRITERS[writer][1]
    target = tmp_path / "new" / "deeper" / f"out{suffix}"
    code, out, err = _run(capsys, writer, target)
    assert (code, err) == (0, "")
    assert target.is_file() and target.stat().st_size > 0
    assert str(target) in out


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_file_in_the_way_is_refused_in_one_line(writer: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    option, suffix, _, _ = WRITERS[writer]
    (tmp_path / "notes").write_text("")
    target = tmp_path / "notes" / "new" / f"out{suffix}"
    code, out, err = _run(capsys, writer, target)
    assert (code, out) == (2, "")
    in_the_way = tmp_path / "notes"
    assert err == f"llm-roofline: error: {option} {target}: cannot write ({in_the_way} is a file, not a folder)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_folder_is_refused_in_one_line(writer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    option, suffix, _, _ = WRITERS[writer]
    target = tmp_path / f"out{suffix}"
    target.mkdir()
    code, out, err = _run(capsys, writer, target)
    assert (code, out) == (2, "")
    assert err == f"llm-roofline: error: {option} {target}: cannot write (it is a folder, not a file)\n"


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_folder_that_takes_no_files_is_refused_in_one_line(writer: str, capsys: pytest.CaptureFixture[str]) -> None:
    # /proc takes no new entries, even from root (a permission check would say it does).
    option, suffix, _, _ = WRITERS[writer]
    target = f"/proc/llm-roofline-test/out{suffix}"
    code, out, err = _run(capsys, writer, target)
    assert (code, out) == (2, "")
    assert err.startswith(f"llm-roofline: error: {option} {target}: cannot write (/proc: ") and err.count("\n") == 1


def test_the_rule_creates_nothing_when_it_checks(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.csv"
    assert check_writable(target, "--output") == target
    assert list(tmp_path.iterdir()) == []


def test_the_python_api_follows_the_rule_and_names_its_parameter(tmp_path: Path) -> None:
    write_text_atomically(tmp_path / "a" / "b.txt", "text\n")
    assert (tmp_path / "a" / "b.txt").read_text() == "text\n"
    with pytest.raises(InputError, match=r"^path .*: cannot write \(.*(Not a directory|File exists)"):
        write_text_atomically(tmp_path / "a" / "b.txt" / "c.txt", "text\n")
    matplotlib = require_module("matplotlib.figure")
    figure = matplotlib.Figure()
    assert save_figure(figure, tmp_path / "c" / "d.svg").is_file()
    with pytest.raises(InputError, match=r"^path .*: cannot write \("):
        save_figure(figure, tmp_path / "a" / "b.txt" / "d.svg")
