"""Does ``llm-roofline measure --quick`` keep its 12 s budget, on a quiet machine and under load?

Runs ``llm-roofline measure --quick --format json --no-progress`` (in a fresh process, as a user would)
several times, first as the machine is, then while one child process of this script spins a busy loop
(one of two cores kept busy; ``--pin CPU`` pins it). Each run's wall time is the child process's whole
life, from its start to its exit: Python's start, the imports, the measurement, the report.

Prints the machine, the date, the command, each run's wall time and the measurement's own elapsed time,
the median and the maximum, the load seen (the one-minute load average before and after each run, the
CPUs other processes kept busy as the measurement reports it, and the spinner's own CPU time over its
wall time), and which figures the measurement reported unsettled, and why; then a Markdown summary for
docs/benchmarks.md.

    python bench/bench_measure_quick.py --runs 5                 # about 2 minutes
    python bench/bench_measure_quick.py --runs 5 --only loaded   # under load only
    python bench/bench_measure_quick.py --budget-s 5             # measure --quick --budget-s 5
    python bench/bench_measure_quick.py --default --runs 3       # measure (70 s) instead of --quick
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from llm_roofline.features.measure.system import cpu_model

ROOT = Path(__file__).resolve().parents[1]
QUICK_BUDGET_S, DEFAULT_BUDGET_S = 12.0, 70.0  # docs/measure.md: the budgets of --quick and of the default
SPIN = "import os, sys\nif len(sys.argv) > 1: os.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True: pass\n"


def load_average() -> float:
    return os.getloadavg()[0]


def command_line(args: argparse.Namespace) -> list[str]:
    budget = ["--budget-s", f"{args.budget_s:g}"] if args.budget_s is not None else []
    quick = [] if args.default else ["--quick"]
    return [sys.executable, "-m", "llm_roofline.faces.cli.main", "measure", *quick, *budget,
            "--format", "json", "--no-progress"]


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                     os.environ.get("PYTHONPATH")]))}
    load_before = load_average()
    start_s = time.perf_counter()
    done = subprocess.run(command_line(args), capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall_s = time.perf_counter() - start_s
    if done.returncode != 0:
        sys.exit(f"bench_measure_quick: measure exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    data = json.loads(done.stdout)
    conditions = data.get("conditions", {})
    return {"wall_s": wall_s, "elapsed_s": data["elapsed_s"], "budget_s": data.get("budget_s"),
            "load_before": load_before, "load_after": load_average(),
            "other_processes_cpus": conditions.get("other_processes_cpus"),
            "stolen_cpus": conditions.get("stolen_cpus"),
            "unsettled": data.get("unsettled", []),
            "dram_bytes_per_s": data["memory"]["bytes_per_s"],
            "flops_per_s": data["compute"]["flops_per_s"],
            "points": len(data["points"]), "warnings": data["warnings"]}


class Spinner:
    """One child process spinning a busy loop while the ``with`` block runs; its CPU time read at the end."""

    def __init__(self, pin: int | None) -> None:
        self.pin = pin
        self.cpu_s = 0.0
        self.wall_s = 0.0

    def __enter__(self) -> Spinner:
        argv = [sys.executable, "-c", SPIN, *([str(self.pin)] if self.pin is not None else [])]
        self.process = subprocess.Popen(argv)
        self.start_s = time.perf_counter()
        time.sleep(1.0)  # let it settle on a core
        return self

    def __exit__(self, *_: object) -> None:
        self.process.send_signal(signal.SIGKILL)
        _, _, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = -signal.SIGKILL  # reaped here: Popen must not wait for it again
        self.wall_s = time.perf_counter() - self.start_s
        self.cpu_s = usage.ru_utime + usage.ru_stime


def report(name: str, runs: list[dict[str, Any]], spinner: Spinner | None) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    print(f"\n{name}: {len(runs)} runs")
    for index, r in enumerate(runs, 1):
        others = r["other_processes_cpus"]
        print(f"  run {index}: wall {r['wall_s']:5.2f} s (measure's own elapsed_s {r['elapsed_s']:5.2f} s); "
              f"load average {r['load_before']:.2f} -> {r['load_after']:.2f}; other processes kept "
              f"{'?' if others is None else f'{others:.2f}'} CPUs busy; {len(r['unsettled'])} figures unsettled; "
              f"DRAM {r['dram_bytes_per_s'] / 1e9:.1f} GB/s, fp32 {r['flops_per_s'].get('fp32', 0) / 1e9:.0f} "
              f"GFLOP/s, {r['points']} shape points")
    summary = {"median_wall_s": statistics.median(walls), "max_wall_s": max(walls),
               "median_elapsed_s": statistics.median(r["elapsed_s"] for r in runs),
               "median_other_processes_cpus": statistics.median(r["other_processes_cpus"] or 0.0 for r in runs),
               "median_load_before": statistics.median(r["load_before"] for r in runs)}
    print(f"  wall: median {summary['median_wall_s']:.2f} s, max {summary['max_wall_s']:.2f} s "
          f"(budget {runs[0]['budget_s']:g} s)")
    if spinner is not None:
        summary["spinner_cpus"] = spinner.cpu_s / spinner.wall_s
        print(f"  the spinner used {spinner.cpu_s:.1f} CPU-s in {spinner.wall_s:.1f} s: "
              f"{summary['spinner_cpus']:.2f} CPUs")
    reasons: collections.Counter[tuple[str, str]] = collections.Counter(
        (u["figure"], u["reason"]) for r in runs for u in r["unsettled"])
    print(f"  unsettled figures per run: {', '.join(str(len(r['unsettled'])) for r in runs)}")
    for reason in ("skipped", "cut_short", "noisy"):
        counted = sorted(((n, f) for (f, why), n in reasons.items() if why == reason), key=lambda x: (-x[0], x[1]))
        if counted:
            print(f"  {reason} (in how many of the {len(runs)} runs): "
                  + ", ".join(f"{figure} {n}" for n, figure in counted))
    summary["unsettled"] = [{"figure": f, "reason": why, "runs": n} for (f, why), n in reasons.items()]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per condition (default 5)")
    parser.add_argument("--only", choices=("quiet", "loaded"), default=None, help="one condition only")
    parser.add_argument("--pin", type=int, default=None, help="pin the spinning child to this CPU")
    parser.add_argument("--budget-s", type=float, default=None, help="pass --budget-s (default: the mode's own)")
    parser.add_argument("--default", action="store_true", help="measure without --quick (a 70 s budget)")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args()
    budget_s = args.budget_s if args.budget_s is not None else DEFAULT_BUDGET_S if args.default else QUICK_BUDGET_S
    shown = " ".join(["llm-roofline", *command_line(args)[3:]])
    print(f"machine: {cpu_model()}, {len(os.sched_getaffinity(0))} usable CPUs, {platform.node()}; "
          f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='minutes')}\ncommand: {shown} "
          f"(python -m llm_roofline.faces.cli.main, a fresh process per run)")
    results: dict[str, Any] = {}
    if args.only in (None, "quiet"):
        quiet = [run_once(args) for _ in range(args.runs)]
        results["quiet"] = {"runs": quiet, **report("as the machine is (no load of ours)", quiet, None)}
    if args.only in (None, "loaded"):
        with Spinner(args.pin) as spinner:
            loaded = [run_once(args) for _ in range(args.runs)]
        where = f"pinned to CPU {args.pin}" if args.pin is not None else "not pinned"
        results["loaded"] = {"runs": loaded, **report(f"one spinning child process ({where})", loaded, spinner)}
    print(f"\n| condition | runs | load seen | wall median | wall max | within {budget_s:g} s |\n"
          "|---|---:|---|---:|---:|---|")
    for name, result in results.items():
        load = (f"load avg {result['median_load_before']:.2f}, others {result['median_other_processes_cpus']:.2f} "
                f"CPUs" + (f", spinner {result['spinner_cpus']:.2f} CPUs" if "spinner_cpus" in result else ""))
        within = sum(r["wall_s"] <= budget_s for r in result["runs"])
        print(f"| {name} | {len(result['runs'])} | {load} | {result['median_wall_s']:.2f} s | "
              f"{result['max_wall_s']:.2f} s | {within} of {len(result['runs'])} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
