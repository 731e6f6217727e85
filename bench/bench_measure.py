"""Acceptance benchmark of ``llm-roofline measure`` against references run beside it.

Each round runs, one after the other on the same machine:

1. ``bench/stream_triad.c`` (our own STREAM-style C, ``gcc -O3 -march=native -fopenmp``), with and
   without transparent huge pages, on three arrays of 4 x the last-level cache each;
2. ``llm-roofline measure --format json`` (its DRAM figure and fp32/fp64 peaks);
3. a direct ``numpy.matmul`` of the size the measurement used for its peak, in a fresh process.

Rounds alternate the three so that a neighbour's load hits them all; the medians over rounds are
compared: our DRAM bandwidth against the C triad (and the best C kernel), our GEMM peaks against the
direct BLAS call. Prints a Markdown summary for docs/benchmarks.md and, with --json, the raw figures.

    python bench/bench_measure.py --rounds 3                  # the default measurement (about 5 min)
    python bench/bench_measure.py --rounds 5 --quick          # llm-roofline measure --quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

DIRECT_BLAS = r"""
import json, statistics, sys, time
import numpy as np
n, dtype = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
a, b = (rng.random((n, n), dtype=np.float64).astype(dtype) for _ in range(2))
c = np.empty((n, n), dtype=dtype)
np.matmul(a, b, out=c)
times = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    np.matmul(a, b, out=c)
    times.append(time.perf_counter() - start)
print(json.dumps({"n": n, "flops_per_s": 2 * n**3 / statistics.median(times), "best": 2 * n**3 / min(times)}))
"""


def compile_stream(folder: Path) -> Path:
    binary = folder / "stream_triad"
    subprocess.run(["gcc", "-O3", "-march=native", "-fopenmp", str(ROOT / "bench" / "stream_triad.c"),
                    "-o", str(binary)], check=True)
    return binary


def run_c(binary: Path, elements: int, threads: int, thp: bool) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_PROC_BIND": "false"}
    done = subprocess.run([str(binary), str(elements), "12", *(["thp"] if thp else [])], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def run_measure(args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "llm_roofline.faces.cli.main", "measure", "--format", "json", "--no-progress",
               "--threads", str(args.threads), *(["--quick"] if args.quick else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout)


def run_direct_blas(n: int, dtype: str, reps: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", DIRECT_BLAS, str(n), dtype, str(reps)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def last_level_cache_bytes() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from llm_roofline.features.measure import system

    return system.last_level_cache_bytes(system.data_caches())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="measure with --quick")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--json", type=Path, help="write every round's raw figures here")
    args = parser.parse_args()
    if shutil.which("gcc") is None:
        sys.exit("bench_measure: needs gcc")
    elements = 4 * last_level_cache_bytes() // 8  # each array 4 x the LLC: STREAM's rule
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        binary = compile_stream(Path(folder))
        for index in range(args.rounds):
            c_thp = run_c(binary, elements, args.threads, thp=True)
            ours = run_measure(args)
            c_plain = run_c(binary, elements, args.threads, thp=False)
            details = ours["compute"]["details"]
            direct = {p: run_direct_blas(details[p]["n"], {"fp64": "float64", "fp32": "float32"}[p], 7)
                      for p in ("fp64", "fp32")}
            rounds.append({"c_thp": c_thp, "c_plain": c_plain, "direct": direct, "ours": {
                "dram_bytes_per_s": ours["memory"]["bytes_per_s"], "dram_kernel": ours["memory"]["kernel"],
                "flops_per_s": {p: ours["compute"]["flops_per_s"][p] for p in ("fp64", "fp32")},
                "n": {p: details[p]["n"] for p in ("fp64", "fp32")},
                "elapsed_s": ours["elapsed_s"], "warnings": ours["warnings"],
                "hierarchy": ours["memory"]["hierarchy"],
                "other_processes_cpus": ours["conditions"].get("other_processes_cpus")}})
            gemm = ", ".join(f"{p} {ours['compute']['flops_per_s'][p] / 1e9:.1f} vs direct "
                             f"{direct[p]['flops_per_s'] / 1e9:.1f} GFLOP/s" for p in ("fp64", "fp32"))
            print(f"round {index + 1}: ours {ours['memory']['bytes_per_s'] / 1e9:.1f} GB/s, "
                  f"C triad {c_thp['triad']['median_bytes_per_s'] / 1e9:.1f} GB/s (THP); {gemm}",
                  file=sys.stderr, flush=True)

    def median(values: list[float]) -> float:
        return statistics.median(values)

    ours_dram = median([r["ours"]["dram_bytes_per_s"] for r in rounds])
    figures = {
        "ours DRAM (best STREAM kernel)": ours_dram,
        "C triad, THP": median([r["c_thp"]["triad"]["median_bytes_per_s"] for r in rounds]),
        "C best kernel, THP": median([max(r["c_thp"][k]["median_bytes_per_s"] for k in ("copy", "scale", "add",
                                                                                        "triad")) for r in rounds]),
        "C triad, 4 KiB pages": median([r["c_plain"]["triad"]["median_bytes_per_s"] for r in rounds]),
        "C best kernel, 4 KiB pages": median([max(r["c_plain"][k]["median_bytes_per_s"] for k in ("copy", "scale",
                                                                                                  "add", "triad"))
                                              for r in rounds]),
    }
    peaks = {p: (median([r["ours"]["flops_per_s"][p] for r in rounds]),
                 median([r["direct"][p]["flops_per_s"] for r in rounds])) for p in ("fp64", "fp32")}
    mode = "--quick" if args.quick else "(default)"
    print(f"\nmachine: {platform.processor() or platform.machine()}, {args.threads} threads; "
          f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='minutes')}; "
          f"llm-roofline measure {mode}; median of {args.rounds} rounds; "
          f"C arrays {elements * 8 / 2**20:.0f} MiB each\n")
    print("| bandwidth | GB/s | ours / this |\n|---|---:|---:|")
    for name, value in figures.items():
        print(f"| {name} | {value / 1e9:.1f} | {ours_dram / value:.2f} |")
    print("\n| GEMM peak | ours GFLOP/s | direct numpy.matmul GFLOP/s | ratio |\n|---|---:|---:|---:|")
    for precision, (ours, direct) in peaks.items():
        print(f"| {precision} | {ours / 1e9:.1f} | {direct / 1e9:.1f} | {ours / direct:.2f} |")
    others = [r["ours"]["other_processes_cpus"] for r in rounds]
    print(f"\nCPUs kept busy by other processes during each measurement: "
          f"{', '.join(f'{x:.2f}' for x in others if x is not None)}")
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
