"""Throughput of the sweep's query path on one core: configurations per second through ``sweep_totals``.

    python bench/bench_sweep.py                 # every case, 7 runs each
    python bench/bench_sweep.py --runs 11 --case decode

The query path is what ``--query`` runs before its reduction: ``sweep_totals`` prices each chunk of the grid
(every configuration's time, compute-bound time, expected time, FLOPs, bytes, step bound, KV cache,
activations and memory footprint). ``rows`` times ``iter_sweep`` instead: the same chunks turned into the
output's columns (labels included), what the CSV/JSONL/Parquet writers and the queries consume.

One thread: the BLAS and OpenMP pools are capped at one thread before numpy is imported, and the run
checks it: the threads of this process while it sweeps (``/proc/self/task``) and its CPU time over wall
time (above 1 only when more than one core works). On a shared machine the wall-clock rate falls when
another process takes the core; the rate per CPU second of this process is printed beside it. Every figure
is the median of several runs, printed with the machine, the date and the command; docs/benchmarks.md
records them.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy is imported: its BLAS reads them once, at load

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NamedTuple  # noqa: E402

from llm_roofline.features.sweep import SweepSpec, iter_sweep, make_spec, sweep_totals  # noqa: E402

A100 = "nvidia-a100-80gb-sxm"
FOUR_DEVICES = [A100, "nvidia-h100-sxm", "nvidia-rtx-4090", "apple-m2-gpu"]


class Case(NamedTuple):
    name: str
    describe: str
    spec: Callable[[], SweepSpec]
    rows: bool = False  # iter_sweep's columns instead of sweep_totals' blocks


CASES = (
    Case("decode", "Llama-2-7B decode on an A100, 1000 batches x 1000 lengths",
         lambda: make_spec(["llama-2-7b"], [A100], range(1, 1001), range(1, 1001))),
    Case("decode-4-devices", "Llama-2-7B decode on 4 devices, 500 batches x 500 lengths",
         lambda: make_spec(["llama-2-7b"], FOUR_DEVICES, range(1, 501), range(1, 501))),
    Case("prefill", "Llama-2-7B prefill on an A100, 1000 batches x 1000 lengths",
         lambda: make_spec(["llama-2-7b"], [A100], range(1, 1001), range(1, 1001), phases=["prefill"])),
    Case("moe-decode", "Mixtral-8x7B decode (int4) on an A100, 1000 batches x 1000 lengths",
         lambda: make_spec(["mixtral-8x7b"], [A100], range(1, 1001), range(1, 1001), weights=["int4"])),
    Case("rows", "iter_sweep columns, Llama-2-7B decode on an A100, 1000 batches x 1000 lengths",
         lambda: make_spec(["llama-2-7b"], [A100], range(1, 1001), range(1, 1001)), rows=True),
)


def configurations(spec: SweepSpec, rows: bool) -> Iterator[int]:
    """The configurations of each chunk, as the query path (or the rows' path) makes them."""
    if rows:
        for chunk in iter_sweep(spec):
            yield len(chunk["time_s"])
    else:
        for block in sweep_totals(spec):
            yield block.time_s.size


def threads() -> int:
    """Threads of this process now (Linux: /proc/self/task); 0 where that cannot be read."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


class Run(NamedTuple):
    per_s: float  # configurations per second of wall time
    per_cpu_s: float  # ... per second of this process's CPU time (what the shared VM's other work does not take)
    cpu_over_wall: float
    most_threads: int
    minor_faults: int


def one_run(spec: SweepSpec, rows: bool) -> Run:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start, most = time.perf_counter(), threads()
    done = 0
    for size in configurations(spec, rows):
        done += size
        most = max(most, threads())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if done != spec.size:
        raise RuntimeError(f"the sweep made {done:,} configurations, the grid has {spec.size:,}")
    return Run(done / wall, done / cpu, cpu / wall, most, after.ru_minflt - usage.ru_minflt)


def bench(case: Case, runs: int) -> float:
    spec = case.spec()
    one_run(spec, case.rows)  # warm-up: plans, catalogue reads, allocator
    results = [one_run(spec, case.rows) for _ in range(runs)]
    median = statistics.median(r.per_s for r in results)
    print(f"{case.name}: {case.describe} ({spec.size:,} configurations): median {median:,.0f} configurations/s "
          f"(runs: {', '.join(f'{r.per_s:,.0f}' for r in results)}); "
          f"per CPU second: median {statistics.median(r.per_cpu_s for r in results):,.0f}; "
          f"threads {max(r.most_threads for r in results)}, CPU/wall {max(r.cpu_over_wall for r in results):.2f} "
          f"at most; minor page faults per run {statistics.median(r.minor_faults for r in results):,.0f}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES],
                        help="a case to run (repeatable); default: all")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"# {platform.node()} ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs), "
          f"Python {platform.python_version()}, numpy {__import__('numpy').__version__}, "
          f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, load average {load[0]:.2f}")
    print(f"# $ python {' '.join([str(Path(sys.argv[0])), *sys.argv[1:]])}  "
          f"(OMP/OPENBLAS/MKL_NUM_THREADS=1)")
    for case in CASES:
        if args.case is None or case.name in args.case:
            bench(case, args.runs)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
