"""``llm-roofline measure``: the empirical roofline of this machine, as a table, JSON or a device profile.

Parsing only; numpy and torch are imported by the handler, when a measurement runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Any

from llm_roofline.core import limits
from llm_roofline.faces.cli.main import (
    add_format_option,
    add_hardware_options,
    hardware_from_args,
    json_text,
    limited,
)

if TYPE_CHECKING:
    from llm_roofline.features.measure.experiment import Measurement

YOUNG_PROCESS_S = 5.0  # a process older than this was not started for this command: its past is not the budget's
REASONS = {"skipped": "skipped, the time left could not pay for them",
           "cut_short": "cut short by the deadline, fewer runs", "noisy": "noisy, ± half the interquartile range"}


def _precision_list(text: str) -> tuple[str, ...]:
    from llm_roofline.core.formats import PRECISIONS

    names = tuple(p.strip().lower() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in PRECISIONS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(PRECISIONS)}, got {text!r}")
    return names


def _command_line(args: argparse.Namespace) -> str:
    """The options that shape the measurement, as a command a reader can run again."""
    words = ["llm-roofline", "measure"]
    if args.quick:
        words.append("--quick")
    for flag, value in (("--budget-s", args.budget_s), ("--backend", args.backend), ("--device", args.device),
                        ("--threads", args.threads),
                        ("--precisions", ",".join(args.precisions) if args.precisions else None),
                        ("--save", args.save), ("--name", args.name)):
        if value is not None and not (flag == "--backend" and value == "numpy") \
                and not (flag == "--device" and value == "auto"):
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(words)


def _spent_s() -> float:
    """The seconds this process has run, which count against the budget: Python's start and the imports
    (0 when the process is older than ``YOUNG_PROCESS_S``: a test runner or a notebook calling the command)."""
    from llm_roofline.features.measure.system import process_age_s

    age_s = process_age_s()
    return age_s if age_s is not None and age_s < YOUNG_PROCESS_S else 0.0


def unsettled_text(measurement: Measurement) -> str:
    """Which figures could not be settled, grouped by why."""
    from llm_roofline.features.measure.experiment import MIN_REPS
    from llm_roofline.features.measure.timing import NOISY_SPREAD

    unsettled = measurement.unsettled()
    planned = len(measurement.timings()) + len(measurement.skipped)
    rule = (f"settled: measured, at least {MIN_REPS} runs, an interquartile range within "
            f"{100 * NOISY_SPREAD:.0f}% of the median")
    if not unsettled:
        return f"unsettled figures: none of {planned} ({rule})"
    lines = [f"unsettled figures: {len(unsettled)} of {planned} ({rule})"]
    for reason, heading in REASONS.items():
        named = [u["figure"] + (f" ({u['repetitions']} runs)" if reason == "cut_short" else
                                f" (±{50 * u['spread']:.0f}%)" if reason == "noisy" else "")
                 for u in unsettled if u["reason"] == reason]
        if named:
            lines.append(f"  {heading}: {', '.join(named)}")
    return "\n".join(lines)


def _cmd_measure(args: argparse.Namespace) -> str:
    from llm_roofline.faces.report.measurement_text import measurement_text
    from llm_roofline.features.measure.experiment import MeasureOptions, measure
    from llm_roofline.features.measure.profile import comparison, save_profile
    from llm_roofline.inputs.files import check_profile_path

    if args.save:
        check_profile_path(args.save, "--save")  # before minutes of measuring
    wants_reference = args.hardware or args.bandwidth_gb_s or args.peak_tflops
    reference = hardware_from_args(args) if wants_reference else None
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    options = MeasureOptions(backend=args.backend, device=args.device, threads=args.threads, quick=args.quick,
                             budget_s=args.budget_s, precisions=args.precisions, progress=progress,
                             command=_command_line(args), spent_s=_spent_s())
    measurement = measure(options)
    compared = comparison(measurement, reference) if reference is not None else None
    saved = save_profile(measurement, args.save, args.name) if args.save else None
    if args.format == "json":
        out: dict[str, Any] = measurement.to_dict()
        if compared is not None and reference is not None:
            out["comparison"] = {"hardware": reference.name, "figures": compared}
        if saved is not None:
            out["saved"] = {"path": args.save, "name": saved.name}
        return json_text(out)
    text = measurement_text(measurement, compared, reference.display_name if reference else None)
    text += "\n\n" + unsettled_text(measurement)
    if saved is not None:
        text += f"\n\nsaved {args.save} (name {saved.name}): use it as --hardware {args.save}"
    return text


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``measure`` on the CLI's subparsers."""
    measure = commands.add_parser(
        "measure", help="measure this machine's roofline: bandwidth per cache level and DRAM, peak GEMM "
                        "throughput per precision, the GEMM shape experiment; save it as a device profile",
        description="Measure the empirical roofline of this machine. STREAM kernels (copy, scale, add, triad; "
                    "bytes counted as STREAM counts them) over working sets from L1 to DRAM; square GEMMs per "
                    "precision; GEMMs of equal FLOPs in tall-skinny, square and wide shapes, and a GEMV -> GEMM "
                    "series. Every figure is a median over repeated runs, with its spread.")
    measure.add_argument("--quick", action="store_true", help="fewer sizes and smaller GEMMs in a 12 s budget")
    measure.add_argument("--budget-s", type=limited(float, limits.STUDY["budget_s"]), default=None,
                         help="seconds for the whole command, shared among the measurement's parts; what does "
                              "not fit is skipped and reported unsettled (default 70, or 12 with --quick)")
    measure.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                         help="library for the matrix products (default numpy; torch on the CPU or a CUDA GPU)")
    measure.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                         help="with --backend torch: cpu or cuda (default auto: the GPU when PyTorch sees one)")
    measure.add_argument("--threads", type=limited(int, limits.STUDY["threads"]), default=None,
                         help="threads for the bandwidth kernels and the BLAS (default: every usable CPU)")
    measure.add_argument("--precisions", type=_precision_list, default=None,
                         help="comma-separated precisions to measure (default: all the backend offers)")
    measure.add_argument("--save", metavar="FILE", default=None,
                         help="write a device profile (.toml or .json) that --hardware FILE accepts")
    measure.add_argument("--name", default=None, help="the saved profile's name (default measured-<host>)")
    measure.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                         help="a progress bar on stderr (default: when stderr is a terminal)")
    add_hardware_options(measure, None)
    add_format_option(measure, ("table", "json"))
    measure.set_defaults(run=_cmd_measure)

