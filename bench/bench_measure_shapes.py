"""The chapter's picture, measured: does ``llm-roofline measure`` show what the roofline predicts?

What the test suite once asserted of a single run, now judged on the medians of several runs (a shared
machine reorders any two measured figures now and then, so no test asserts them):

- GEMV -> GEMM (M = 1 ... 256 rows against 4096 x 4096 fp32 weights, intensity 0.5 ... 114 FLOP/B):
  throughput follows intensity from a memory-bound start (M = 16 above 1.5 x M = 1; M = 256 above
  3 x M = 1) and saturates past the ridge (M = 256 below 2.5 x M = 64, for 3.7 x the intensity);
- equal FLOPs, different shapes: the square GEMM above 4 x the 1 x N x N² GEMV in disguise;
- the memory hierarchy: the fastest cache level above 1.5 x DRAM, and no level below half the next
  one out.

Each round runs ``llm-roofline measure --quick --budget-s 3 --precisions fp32 --threads 1`` in a fresh
process (the settings the test used: one thread, since a neighbour stalls a BLAS thread team at every
synchronisation, and best runs, which a neighbour's burst hurts less than medians). Prints each round,
then a Markdown summary for docs/benchmarks.md.

    python bench/bench_measure_shapes.py --rounds 5     # about a minute
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# (figure, how it is computed from one run's JSON, what the roofline says it should be)
CHECKS: list[tuple[str, str, float, str]] = [
    ("GEMV -> GEMM: M=16 / M=1 (intensity x16, memory-bound start)", "rate16/rate1", 1.5, ">"),
    ("GEMV -> GEMM: M=256 / M=1 (intensity x228)", "rate256/rate1", 3.0, ">"),
    ("GEMV -> GEMM: M=256 / M=64 (intensity x3.7, past the ridge)", "rate256/rate64", 2.5, "<"),
    ("equal FLOPs: square / 1 x N x N² (intensity x N/3)", "square/skinny", 4.0, ">"),
    ("fastest cache level / DRAM", "cache/dram", 1.5, ">"),
    ("slowest step inward: a level / the next one out", "inward", 0.5, ">"),
]


def run_measure(args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "llm_roofline.faces.cli.main", "measure", "--quick",
               "--budget-s", str(args.budget_s), "--precisions", "fp32",
               "--threads", str(args.threads), "--format", "json", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                     os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(done.stdout)


def figures(data: dict[str, Any]) -> dict[str, float]:
    """One run's ratios, on each point's best run (as the test judged them)."""
    rate = {p["m"]: p["flops_per_s_best"] for p in data["points"] if p["series"] == "gemv-to-gemm"}
    equal = [p for p in data["points"] if p["series"] == "equal-flops"]
    square = next(p for p in equal if p["shape"] == "square")
    skinny = next(p for p in equal if p["m"] == 1)
    order = [level["level"] for level in data["memory"]["hierarchy"]]
    best = {name: max(kernel["bytes_per_s_best"] for level in data["memory"]["levels"] if level["level"] == name
                      for kernel in level["kernels"].values()) for name in order}
    levels = [best[name] for name in order]
    return {
        "rate16/rate1": rate[16] / rate[1], "rate256/rate1": rate[256] / rate[1],
        "rate256/rate64": rate[256] / rate[64],
        "square/skinny": square["flops_per_s_best"] / skinny["flops_per_s_best"],
        "cache/dram": max(levels[:-1]) / levels[-1],
        "inward": min(inner / outer for inner, outer in itertools.pairwise(levels)),
        "gflops_m1": rate[1] / 1e9, "gflops_m256": rate[256] / 1e9, "dram_gb_s": levels[-1] / 1e9,
    }


def holds(value: float, bound: float, relation: str) -> bool:
    return value > bound if relation == ">" else value < bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=3.0, help="measure's --budget-s (default 3, the test's)")
    parser.add_argument("--threads", type=int, default=1, help="measure's --threads (default 1, the test's)")
    parser.add_argument("--json", type=Path, help="write every round's figures here")
    args = parser.parse_args()
    rounds = []
    for index in range(args.rounds):
        data = run_measure(args)
        row = figures(data)
        row["other_processes_cpus"] = data["conditions"].get("other_processes_cpus")
        rounds.append(row)
        failed = [name for name, key, bound, relation in CHECKS if not holds(row[key], bound, relation)]
        print(f"round {index + 1}: " + ", ".join(f"{key} {row[key]:.2f}" for _, key, _, _ in CHECKS)
              + f"; M=1 {row['gflops_m1']:.1f}, M=256 {row['gflops_m256']:.1f} GFLOP/s, DRAM {row['dram_gb_s']:.1f}"
              f" GB/s" + (f"; NOT MET: {len(failed)}" if failed else ""), file=sys.stderr, flush=True)
    uname = platform.uname()
    print(f"\n{uname.node} ({uname.machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}), "
          f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='minutes')}; llm-roofline measure --quick "
          f"--budget-s {args.budget_s:g} --precisions fp32 --threads {args.threads}; median of {args.rounds} rounds\n")
    print("| figure | expected | median | rounds | rounds that hold |\n|---|---|---:|---|---:|")
    for name, key, bound, relation in CHECKS:
        values = [r[key] for r in rounds]
        median = statistics.median(values)
        met = sum(holds(v, bound, relation) for v in values)
        print(f"| {name} | {relation} {bound:g} | **{median:.2f}** | {', '.join(f'{v:.2f}' for v in values)} | "
              f"{met} of {len(values)} |")
    others = [r["other_processes_cpus"] for r in rounds if r["other_processes_cpus"] is not None]
    print(f"\nCPUs kept busy by other processes during each round: {', '.join(f'{x:.2f}' for x in others)}")
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
