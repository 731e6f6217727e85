"""Speed of the analyzer: one analyze(), sweep throughput, a loop of scalar calls, CLI start-up,
and a 10^8-configuration sweep streamed to Parquet in bounded memory.

    python bench/bench_speed.py            # the quick figures (about a minute)
    python bench/bench_speed.py --big      # also the 10^8 sweep to Parquet (a few minutes)

Every figure is the median of several runs, printed with the machine and date; the results are
recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def per_call_s(fn: Callable[[], object], calls: int, runs: int) -> list[float]:
    """Seconds per call, one figure per run (each run times ``calls`` calls after a warm-up)."""
    for _ in range(max(1, calls // 10)):
        fn()
    figures = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        figures.append((time.perf_counter() - start) / calls)
    return figures


def bench_analyze(runs: int) -> tuple[float, float]:
    """Median µs per ``analyze()`` of a Llama-2-7B decode step (2048 cached tokens) on an A100, and of a decode
    plus a prefill (2048-token prompt): the pair LLM-Viewer's ``analyze`` prices in one call. Also timed, for
    the record: the same decode with every operator record read (``ops`` is built when first read)."""
    from llm_roofline import Workload, load_hardware, load_model
    from llm_roofline.core.roofline import analyze

    model, device = load_model("llama-2-7b"), load_hardware("nvidia-a100-80gb-sxm")
    decode = Workload(phase="decode", batch=1, seq_len=2048)
    prefill = Workload(phase="prefill", batch=1, seq_len=2048)
    figures = per_call_s(lambda: analyze(model, device, decode), 2000, runs)
    both = per_call_s(lambda: (analyze(model, device, decode), analyze(model, device, prefill)), 1000, runs)
    read = per_call_s(lambda: analyze(model, device, decode).ops, 2000, runs)
    median, pair = statistics.median(figures), statistics.median(both)
    print(f"analyze() Llama-2-7B decode: median {median * 1e6:.1f} µs/call "
          f"(runs of 2000 calls: {', '.join(f'{f * 1e6:.1f}' for f in figures)})")
    print(f"analyze() decode + prefill: median {pair * 1e6:.1f} µs/pair "
          f"(runs of 1000 pairs: {', '.join(f'{f * 1e6:.1f}' for f in both)})")
    print(f"analyze() decode with its 19 operator records read: median {statistics.median(read) * 1e6:.1f} µs/call")
    return median, pair


def bench_scalar_loop(runs: int) -> float:
    """The peers' style: one scalar analysis per configuration, over a grid."""
    from llm_roofline import Workload, load_hardware, load_model
    from llm_roofline.core.roofline import analyze

    model, device = load_model("llama-2-7b"), load_hardware("nvidia-a100-80gb-sxm")
    grid = [Workload(phase="decode", batch=b, seq_len=s) for b in range(1, 41) for s in range(128, 128 + 50)]
    figures = []
    for _ in range(runs):
        start = time.perf_counter()
        for workload in grid:
            analyze(model, device, workload)
        figures.append((time.perf_counter() - start) / len(grid))
    median = statistics.median(figures)
    print(f"scalar loop (Workload + analyze per configuration, {len(grid)} configurations): "
          f"median {median * 1e6:.1f} µs/configuration = {1 / median:,.0f} configurations/s")
    return median


def bench_sweep(runs: int) -> float:
    from llm_roofline.features.sweep import make_spec, sweep_totals

    spec = make_spec(["llama-2-7b"], ["nvidia-a100-80gb-sxm"], range(1, 1001), range(1, 1001))
    figures = []
    for _ in range(runs):
        start = time.perf_counter()
        done = sum(block.time_s.size for block in sweep_totals(spec))
        figures.append(done / (time.perf_counter() - start))
    median = statistics.median(figures)
    print(f"sweep totals, Llama-2-7B decode, 1000 batches x 1000 lengths ({spec.size:,} configurations): "
          f"median {median:,.0f} configurations/s (runs: {', '.join(f'{f:,.0f}' for f in figures)})")
    return median


def bench_cli(runs: int) -> tuple[float, bool]:
    """Wall time of the console script as installed: ``pip install`` compiles the package's bytecode, so
    the child may write and use ``__pycache__`` (this VM sets PYTHONDONTWRITEBYTECODE, under which an
    editable install would recompile its sources on every start; docs/benchmarks.md gives that figure).
    Also whether ``python -X importtime`` shows numpy on that path (it must not)."""
    command = [sys.executable, "-m", "llm_roofline.faces.cli.main", "analyze"]
    script = Path(sys.executable).with_name("llm-roofline")
    if script.exists():
        command = [str(script), "analyze"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)  # warm-up (writes bytecode)
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        walls.append(time.perf_counter() - start)
    median = statistics.median(walls)
    traced = subprocess.run([sys.executable, "-X", "importtime", "-m", "llm_roofline.faces.cli.main", "analyze"],
                            check=True, capture_output=True, text=True, env=env)
    modules = [line.rsplit("|", 1)[-1].strip() for line in traced.stderr.splitlines() if line.startswith("import time")]
    numpy_loaded = any(name == "numpy" or name.startswith("numpy.") for name in modules)
    print(f"CLI `{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}`: "
          f"median {median:.3f} s wall over {runs} runs (runs: {', '.join(f'{w:.3f}' for w in walls)}); "
          f"{len(modules)} modules imported, numpy {'among them' if numpy_loaded else 'not among them'}")
    return median, numpy_loaded


def bench_big() -> None:
    """10^8 configurations (4 formats x 5000 batches x 5000 lengths) to Parquet, in a child process."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "grid.parquet"
        command = ["llm-roofline", "sweep", "-m", "llama-2-7b", "-H", "nvidia-a100-80gb-sxm",
                   "-w", "fp16,int8,int4,fp8", "-b", "1..5000", "-l", "1..5000", "-o", str(target), "--no-progress"]
        start = time.perf_counter()
        child = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        peak_rss_kib = int(child.stderr.strip().splitlines()[-1])
        size = target.stat().st_size
        print(f"sweep of 10^8 configurations to Parquet: {wall:.1f} s wall, {1e8 / wall:,.0f} configurations/s "
              f"end to end, peak RSS {peak_rss_kib / 1024:.0f} MiB, file {size / 2**30:.2f} GiB "
              f"({child.stdout.strip()})")


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli-runs", type=int, default=20, help="console-script starts to time (default 20)")
    parser.add_argument("--big", action="store_true", help="also stream 10^8 configurations to Parquet")
    args = parser.parse_args()
    print(f"# {platform.node()} ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs), "
          f"Python {platform.python_version()}, {datetime.date.today()}")
    single, pair = bench_analyze(args.runs)
    loop = bench_scalar_loop(args.runs)
    sweep = bench_sweep(args.runs)
    print(f"sweep vs scalar loop: {sweep * loop:,.0f}x faster per configuration")
    cli, numpy_loaded = bench_cli(args.cli_runs)
    print(f"targets (issue 16): analyze() decode <= 20 µs: {_verdict(single <= 20e-6)}; decode + prefill <= 40 µs: "
          f"{_verdict(pair <= 40e-6)}; CLI analyze <= 0.12 s: {_verdict(cli <= 0.12)}; "
          f"no numpy on the CLI's analyze: {_verdict(not numpy_loaded)}")
    if args.big:
        bench_big()
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
