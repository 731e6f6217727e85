"""Speed and memory of the sweep's CSV and JSON-lines output, end to end: the CLI run as a child process.

    python bench/bench_writers.py             # 1,048,576 rows to CSV and to JSONL, median of 5 runs each
    python bench/bench_writers.py --runs 9    # more runs
    python bench/bench_writers.py --big       # also peak RSS at 10^8 rows (some minutes a format)

Each run is `llm-roofline sweep -m llama-2-7b -H nvidia-a100-80gb-sxm -b 1..1024 -l 1..1024 -o FILE`
(CSV and JSONL runs interleaved), FILE a new name in a temporary folder on the same disk as the system's
temporary files (deleted after each run, outside the timing: replacing a large file costs the file
system more than writing one). Wall time includes the interpreter's start-up, the sweep, the formatting,
the write and the fsync that ``files.atomic_output`` does before its rename. Peak RSS is the child's own
(``os.wait4``). Bytecode is cached as an installed package caches it (PYTHONDONTWRITEBYTECODE is dropped
for the children).

``--big`` measures peak RSS at 10^8 rows (-b 1..10000 -l 1..10000) beside 10^6: CSV through the CLI to
stdout (`-o -`, redirected to /dev/null: a 10^8-row file would take 30 GB), JSON lines by the same
writer in a child process writing to /dev/null (67 GB as a file), and both through the file path of a
large grid (``write_in_processes``: one formatting process per CPU) to /dev/null.

Prints the machine, the date, the load average before and after, each command, every run and the
medians; the figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 1024 * 1024
GRID = ["-m", "llama-2-7b", "-H", "nvidia-a100-80gb-sxm", "-b", "1..1024", "-l", "1..1024", "--no-progress"]
BIG_GRID = ["-m", "llama-2-7b", "-H", "nvidia-a100-80gb-sxm", "-b", "1..10000", "-l", "1..10000", "--no-progress"]
MIB = 1 << 20

# The JSON-lines writer at 10^8 rows without a 67 GB file: the sweep's chunks written to /dev/null.
_JSONL_TO_NULL = """
from llm_roofline.faces.cli.writers import write_jsonl
from llm_roofline.features.sweep import COLUMNS, iter_sweep, make_spec
spec = make_spec(["llama-2-7b"], ["nvidia-a100-80gb-sxm"], range(1, 10_001), range(1, 10_001), phases=["decode"])
with open("/dev/null", "wb") as out:
    print(write_jsonl(iter_sweep(spec), out, COLUMNS))
"""

# The file path of a large grid (one formatting process per CPU, writers.write_in_processes), to /dev/null.
_PROCESSES_TO_NULL = """
import os, sys
from llm_roofline.faces.cli.writers import write_in_processes
from llm_roofline.features.sweep import COLUMNS, iter_sweep, make_spec
spec = make_spec(["llama-2-7b"], ["nvidia-a100-80gb-sxm"], range(1, 10_001), range(1, 10_001), phases=["decode"])
with open("/dev/null", "wb") as out:
    print(write_in_processes(lambda k, n: iter_sweep(spec, part=(k, n)), out, COLUMNS, sys.argv[1],
                             len(os.sched_getaffinity(0))))
"""


def _command() -> list[str]:
    script = Path(sys.executable).with_name("llm-roofline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "llm_roofline.faces.cli.main"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_child(command: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one child process, which must succeed."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, env=_env())
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.stderr is not None
    error = child.stderr.read().decode()
    child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}): {error}")
    return wall, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def bench_formats(runs: int) -> dict[str, tuple[float, int]]:
    """Median wall and peak RSS of the 1,048,576-row sweep to CSV and to JSONL."""
    walls: dict[str, list[float]] = {"csv": [], "jsonl": []}
    peaks: dict[str, list[int]] = {"csv": [], "jsonl": []}
    with tempfile.TemporaryDirectory(prefix="bench-writers-") as folder:
        for suffix in walls:  # warm-up: bytecode written, files cached
            run_child([*_command(), "sweep", *GRID, "-o", str(Path(folder) / f"warm.{suffix}")])
            (Path(folder) / f"warm.{suffix}").unlink()
        for i in range(runs):
            for suffix in walls:
                target = Path(folder) / f"grid-{i}.{suffix}"
                wall, peak = run_child([*_command(), "sweep", *GRID, "-o", str(target)])
                size = target.stat().st_size
                target.unlink()
                walls[suffix].append(wall)
                peaks[suffix].append(peak)
                print(f"  run {i + 1} {suffix:5s}: {wall:.2f} s, {ROWS / wall / 1e6:.2f} M rows/s, "
                      f"peak RSS {peak / MIB:.0f} MiB, {size / 1e6:.0f} MB", flush=True)
    medians = {}
    for suffix in walls:
        wall, peak = statistics.median(walls[suffix]), max(peaks[suffix])
        medians[suffix] = (wall, peak)
        print(f"{suffix}: median {wall:.2f} s wall = {ROWS / wall / 1e6:.2f} M rows/s end to end "
              f"(runs: {', '.join(f'{w:.2f}' for w in walls[suffix])}); peak RSS {peak / MIB:.0f} MiB")
    return medians


def bench_big() -> None:
    """Peak RSS at 10^8 rows: CSV by the CLI to stdout, JSON lines by the writer; both to /dev/null."""
    with open(os.devnull, "wb") as null:
        wall, peak = run_child([*_command(), "sweep", *BIG_GRID, "-o", "-"], stdout=null.fileno())
    print(f"10^8 rows, CSV to stdout (`sweep {' '.join(BIG_GRID)} -o - > /dev/null`): {wall:.0f} s, "
          f"{1e8 / wall / 1e6:.2f} M rows/s, peak RSS {peak / MIB:.0f} MiB", flush=True)
    wall, peak = run_child([sys.executable, "-c", _JSONL_TO_NULL])
    print(f"10^8 rows, JSON lines by write_jsonl to /dev/null: {wall:.0f} s, {1e8 / wall / 1e6:.2f} M rows/s, "
          f"peak RSS {peak / MIB:.0f} MiB", flush=True)
    for style in ("csv", "jsonl"):  # the peak RSS counts the formatting processes (os.wait4: waited descendants)
        wall, peak = run_child([sys.executable, "-c", _PROCESSES_TO_NULL, style])
        print(f"10^8 rows, {style} by write_in_processes (one process per CPU) to /dev/null: {wall:.0f} s, "
              f"{1e8 / wall / 1e6:.2f} M rows/s, peak RSS {peak / MIB:.0f} MiB", flush=True)


def _machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine()) \
        if Path("/proc/cpuinfo").exists() else platform.machine()
    return f"{platform.node()} ({model}, {os.cpu_count()} CPUs), Python {platform.python_version()}"


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each format (default 5)")
    parser.add_argument("--big", action="store_true", help="also peak RSS at 10^8 rows")
    args = parser.parse_args()
    print(f"# {_machine()}, {datetime.datetime.now().isoformat(timespec='minutes')}, load average {_load()}")
    print(f"# {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(_command()))} sweep {' '.join(GRID)} "
          f"-o FILE.csv / FILE.jsonl ({ROWS:,} rows)")
    medians = bench_formats(args.runs)
    print("target (issue 16): <= 1.5 s wall: " + "; ".join(
        f"{suffix} {'met' if wall <= 1.5 else 'NOT met'}" for suffix, (wall, _) in medians.items()))
    if args.big:
        bench_big()
    print(f"# load average after: {_load()}")


if __name__ == "__main__":
    main()
