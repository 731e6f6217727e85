"""The picture commands: ``plot`` (PNG, SVG, PDF), ``report`` (one offline HTML file), ``serve`` (the web app).

Thin, like the rest of the CLI: parse, call ``analyze()`` and the studies, hand the results to
``plots``, ``report`` or ``web``. matplotlib, FastAPI and uvicorn are imported inside the handlers,
so ``llm-roofline analyze`` never pays for them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli.main import (
    DEFAULT_HARDWARE,
    add_hardware_options,
    add_model_option,
    add_workload_options,
    hardware_from_args,
    number_arg,
    positive_int,
    workload_from_args,
)

if TYPE_CHECKING:
    from llm_roofline.core.hardware import HardwareSpec
    from llm_roofline.core.roofline import Analysis

# Lengths of the share curve: 64 to 65,536 tokens, four per doubling.
DEFAULT_SHARE_LENGTHS = tuple(sorted({round(2 ** (e / 4)) for e in range(24, 65)}))
MAX_TIMELINE_STEPS = 1_000_000
PHASES = ("prefill", "decode")
VIZ_EXTRA = "pip install 'llm-roofline[viz]'"


def _require(module: str, command: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise InputError(f"'{command}' needs {module}: {VIZ_EXTRA}")


def _devices(args: argparse.Namespace) -> list[HardwareSpec]:
    """Each device of a comma-separated --hardware, with the figure overrides applied to every one."""
    if args.hardware is None:
        return [hardware_from_args(args)]
    names = [n.strip() for n in args.hardware.split(",") if n.strip()]
    return [hardware_from_args(argparse.Namespace(**{**vars(args), "hardware": name})) for name in names]


def _phases(args: argparse.Namespace) -> list[str]:
    return list(PHASES) if args.phase is None else [args.phase]


def _analyses(args: argparse.Namespace) -> list[Analysis]:
    """Every device x phase of the command line, in that order, with one model and one workload."""
    from llm_roofline.core.roofline import analyze
    from llm_roofline.inputs.model_files import load_model

    model = load_model(args.model)
    workload = workload_from_args(argparse.Namespace(**{**vars(args), "phase": _phases(args)[0]}))
    return [analyze(model, device, replace(workload, phase=phase)) for device in _devices(args) for phase in
            _phases(args)]


def _precisions(args: argparse.Namespace) -> list[str] | None:
    from llm_roofline.core.formats import PRECISIONS

    if not args.precisions:
        return None
    chosen = [p.strip().lower() for p in args.precisions.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PRECISIONS]
    if unknown:
        raise InputError(f"unknown precision(s) {', '.join(unknown)} in --precisions; known: {', '.join(PRECISIONS)}")
    return chosen


def _save(draw: Callable[[], Any], args: argparse.Namespace) -> str:
    """Check --output, then draw the figure (no work for a path that cannot be written), then save it."""
    from llm_roofline.faces.report.plots import save_figure
    from llm_roofline.inputs.files import check_writable

    path = check_writable(args.output, "--output")
    return f"wrote {save_figure(draw(), path, args.format, '--output')}"


def _plot_roofline(args: argparse.Namespace) -> str:
    _require("matplotlib", "plot")
    from llm_roofline.faces.report.plots import roofline_figure

    return _save(lambda: roofline_figure(_analyses(args), _precisions(args), label_limit=args.labels), args)


def _plot_breakdown(args: argparse.Namespace) -> str:
    _require("matplotlib", "plot")
    from llm_roofline.faces.report.plots import breakdown_figure

    return _save(lambda: breakdown_figure(_analyses(args)), args)


def _single_device(args: argparse.Namespace, what: str) -> HardwareSpec:
    devices = _devices(args)
    if len(devices) > 1:
        raise InputError(f"a {what} plot is for one device; got {len(devices)}")
    return devices[0]


def _plot_share(args: argparse.Namespace) -> str:
    _require("matplotlib", "plot")
    from llm_roofline.faces.report.plots import share_figure
    from llm_roofline.features.studies.share import share_study
    from llm_roofline.inputs.model_files import load_model

    model = load_model(args.model)
    hardware = _single_device(args, "share")
    lengths = sorted(set(args.seq_len or DEFAULT_SHARE_LENGTHS))
    workload = workload_from_args(argparse.Namespace(**{**vars(args), "phase": _phases(args)[0],
                                                        "seq_len": lengths[0]}))
    return _save(lambda: share_figure([share_study(model, replace(workload, phase=phase), lengths, args.target_share,
                                                   hardware=hardware) for phase in _phases(args)],
                                      model, hardware, workload), args)


def _plot_timeline(args: argparse.Namespace) -> str:
    _require("matplotlib", "plot")
    from llm_roofline.faces.report.plots import timeline_figure
    from llm_roofline.features.studies.timeline import generation_timeline
    from llm_roofline.inputs.model_files import load_model

    if args.phase is not None:
        raise InputError("a timeline is a prefill then decode steps: --phase does not apply (see --prompt-len, "
                         "--steps)")
    if args.steps > MAX_TIMELINE_STEPS:
        raise InputError(f"--steps must be at most {MAX_TIMELINE_STEPS}, got {args.steps}")
    model = load_model(args.model)
    devices = _devices(args)
    workload = workload_from_args(argparse.Namespace(**{**vars(args), "phase": "decode"}))
    return _save(lambda: timeline_figure([generation_timeline(model, device, workload, args.seq_len, args.steps)
                                          for device in devices], model, devices), args)


def _plot_context(args: argparse.Namespace) -> str:
    _require("matplotlib", "plot")
    from llm_roofline.faces.report.plots import context_figure
    from llm_roofline.features.studies.context import DEFAULT_CONTEXTS, context_study
    from llm_roofline.inputs.model_files import load_model

    if args.phase is not None:
        raise InputError("a context plot prices decode steps at each length: --phase does not apply")
    models = [load_model(name.strip()) for name in args.model.split(",") if name.strip()]
    workload = workload_from_args(argparse.Namespace(**{**vars(args), "phase": "decode", "seq_len": 1}))
    lengths = args.seq_len or DEFAULT_CONTEXTS
    return _save(lambda: context_figure(context_study(models, _devices(args), workload, lengths), workload), args)


def _plot_measured(args: argparse.Namespace) -> str:
    _require("matplotlib", "plot")
    from llm_roofline.faces.report.charts import load_measured_profile
    from llm_roofline.faces.report.plots import measured_figure

    return _save(lambda: measured_figure(load_measured_profile(args.profile, "--profile")), args)


def _both_phases_by_default(parser: argparse.ArgumentParser, what: str) -> None:
    """--phase of add_workload_options defaults to decode; these commands show both phases unless told."""
    parser.set_defaults(phase=None)
    for action in parser._actions:
        if action.dest == "phase":
            action.help = f"only prefill or only decode (default: both, {what})"


def _add_output_options(parser: argparse.ArgumentParser, default_format: str | None, formats: tuple[str, ...]) -> None:
    parser.add_argument("--output", "-o", required=True, help="file to write")
    parser.add_argument("--format", "-f", choices=formats, default=default_format,
                        help="file format (default: from the output's extension)")


def _add_analysis_plot(plots: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str,
                       run: Callable[[argparse.Namespace], str]) -> argparse.ArgumentParser:
    # "resolve": a plot may redefine a workload option (--seq-len as a list of lengths, say).
    # help is %-formatted by argparse (a bare "35 %" breaks --help); the description is printed as it is.
    parser = plots.add_parser(name, help=help_text.replace("%", "%%"), description=help_text,
                              conflict_handler="resolve")
    add_model_option(parser)
    add_hardware_options(parser, DEFAULT_HARDWARE)
    add_workload_options(parser)
    _both_phases_by_default(parser, "a prompt of --seq-len tokens and a decode step with --seq-len tokens cached")
    _add_output_options(parser, None, ("png", "svg", "pdf"))
    parser.set_defaults(run=run)
    return parser


def _cmd_report(args: argparse.Namespace) -> str:
    from llm_roofline.faces.report.html import report_html
    from llm_roofline.inputs.files import check_writable, write_text_atomically

    path = check_writable(args.output, "--output")
    write_text_atomically(path, report_html(_analyses(args), _precisions(args)), "--output")
    return f"wrote {path}"


def _cmd_serve(args: argparse.Namespace) -> str:
    _require("fastapi", "serve")
    _require("uvicorn", "serve")
    from llm_roofline.faces.web.serving import serve

    print(f"llm-roofline: serving on http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    serve(args.host, args.port, args.log_level)
    return "llm-roofline: server stopped"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``plot``, ``report`` and ``serve`` to the CLI's subparsers."""
    plot = commands.add_parser("plot", help="draw a roofline, time breakdown, attention share, timeline, context "
                                            "curve or measured roofline as PNG, SVG or PDF",
                               description="Draw what the analyzer and the studies compute. Writes the file and "
                                           "prints 'wrote PATH'.")
    plots = plot.add_subparsers(dest="plot", metavar="PLOT", required=True, parser_class=type(plot))
    roofline = _add_analysis_plot(plots, "roofline", "the roofline of one or more devices with the model's "
                                                     "operators as points", _plot_roofline)
    roofline.add_argument("--precisions", help="roofs to draw, comma-separated (default: the device's "
                                               "fp32, fp16, bf16, fp8, int8, int4)")
    roofline.add_argument("--labels", type=positive_int, default=8,
                          help="label at most this many of the main operators per phase (default 8)")
    _add_analysis_plot(plots, "breakdown", "share of the step's time by operator group, per device and phase",
                       _plot_breakdown)
    share = _add_analysis_plot(plots, "share", "attention's share of the FLOPs vs sequence length, with the "
                                               "chapter's 35 % and 50 % thresholds", _plot_share)
    share.add_argument("--seq-len", "-l", type=positive_int, nargs="+",
                       help="lengths L of the curve (default: 64 to 65,536, four per doubling)")
    share.add_argument("--target-share", type=float, default=0.5,
                       help="mark the length where attention reaches this share (default 0.5)")
    timeline = _add_analysis_plot(plots, "timeline", "a generation: per-step time and cumulative FLOPs as the KV "
                                                     "cache grows", _plot_timeline)
    timeline.add_argument("--prompt-len", "-P", "--seq-len", "-l", dest="seq_len", type=positive_int, default=512,
                          help="prompt tokens P (default 512)")
    timeline.add_argument("--steps", "-T", type=positive_int, default=512,
                          help=f"decode steps T (default 512, at most {MAX_TIMELINE_STEPS:,})")
    timeline.add_argument("--phase", "-p", choices=PHASES, default=None, help=argparse.SUPPRESS)
    context = _add_analysis_plot(plots, "context", "decode time and memory vs context for models side by side "
                                                   "(-m a,b): the flat per-token cost of hybrids", _plot_context)
    context.add_argument("--model", "-m", default="llama-3.2-1b,lfm2-1.2b",
                         help="models, comma-separated (default llama-3.2-1b,lfm2-1.2b)")
    context.add_argument("--seq-len", "-l", type=positive_int, nargs="+",
                         help="context lengths L (default 1024 2048 ... 131072)")
    context.add_argument("--phase", "-p", choices=PHASES, default=None, help=argparse.SUPPRESS)
    measured = plots.add_parser("measured", help="a measured roofline from a profile written by the measurement "
                                                 "command", description="The roofs, cache-level bandwidths and "
                                                                        "measured kernels of a device profile.")
    measured.add_argument("--profile", required=True, help="profile file (TOML or JSON, the catalogue's schema "
                                                           "with a [measured] table)")
    _add_output_options(measured, None, ("png", "svg", "pdf"))
    measured.set_defaults(run=_plot_measured)

    report = commands.add_parser("report", help="one self-contained HTML report (charts, tables, advice)",
                                 description="Write one HTML file that opens offline: interactive roofline and "
                                             "breakdown charts, totals, memory fit, recommendations and the "
                                             "per-operator tables for every device (-H a,b) and phase.")
    add_model_option(report)
    add_hardware_options(report, DEFAULT_HARDWARE)
    add_workload_options(report)
    _both_phases_by_default(report, "prefill of --seq-len tokens and decode with --seq-len cached")
    report.add_argument("--precisions", help="roofs to draw, comma-separated")
    report.add_argument("--output", "-o", default="roofline-report.html",
                        help="HTML file to write (default roofline-report.html)")
    report.set_defaults(run=_cmd_report)

    serve = commands.add_parser("serve", help="the interactive web page and JSON API on a local port",
                                description="Serve the page and the JSON API (/api/, OpenAPI at "
                                            "/api/openapi.json). Listens on 127.0.0.1 unless --host says otherwise, "
                                            "and answers only requests addressed to localhost, a loopback address or "
                                            "--host, from its own page; its limits are in docs/security.md.")
    serve.add_argument("--host", default="127.0.0.1", help="address or name to listen on (default 127.0.0.1: this "
                                                          "machine)")
    serve.add_argument("--port", type=number_arg(int, 1, 65535), default=8000, help="port (default 8000)")
    serve.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="warning",
                       help="server log level (default warning)")
    serve.set_defaults(run=_cmd_serve)
