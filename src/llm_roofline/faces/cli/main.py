"""The ``llm-roofline`` command: parse, call the API, format. Nothing is computed here.

Bad input exits with status 2 and one line on stderr (``llm-roofline: error: ...``), no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from llm_roofline.core import limits
from llm_roofline.core.errors import InputError, shown_name
from llm_roofline.inputs.printable import printable

if TYPE_CHECKING:
    from llm_roofline.core.hardware import HardwareSpec
    from llm_roofline.core.transformer import Workload

_Number = TypeVar("_Number", int, float)

DEFAULT_MODEL = "llama-2-7b"
DEFAULT_HARDWARE = "jetson-orin-nx"
FORMATS = ("table", "json", "csv")

# Modules that add their own subcommands. Each defines ``add_commands(commands)``, taking the
# subparsers object, and imports nothing heavy at module level (handlers import lazily).
COMMAND_MODULES: tuple[str, ...] = (
    "llm_roofline.faces.cli.sweep_commands",
    "llm_roofline.faces.cli.viz_commands",
    "llm_roofline.faces.cli.studies_commands",
    "llm_roofline.faces.cli.deploy_commands",
    "llm_roofline.faces.cli.measure_commands",
    "llm_roofline.faces.cli.validation_commands",
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{message} (see '{self.prog} --help')")


def number_arg(cast: Callable[[str], _Number], low: float, high: float = float("inf"),
               low_inclusive: bool = True) -> Callable[[str], _Number]:
    """An argparse ``type`` that reads an int or float within [low, high] (or (low, high]), finite."""
    kind = "an integer" if cast is int else "a number"

    def shown(bound: float) -> str:
        return str(int(bound)) if cast is int else f"{bound:g}"

    if high == float("inf"):
        bounds = f"{'>=' if low_inclusive else '>'} {shown(low)}"
    else:
        bounds = f"from {shown(low)} to {shown(high)}" if low_inclusive else f"> {shown(low)} and <= {shown(high)}"

    def parse(text: str) -> _Number:
        quoted = repr(text if len(text) <= 40 else text[:37] + "...")
        try:
            value = cast(text)
        except ValueError:  # not a number, or an integer of more digits than Python converts
            raise argparse.ArgumentTypeError(f"expected {kind} {bounds}, got {quoted}") from None
        above_low = value >= low if low_inclusive else value > low
        if not (above_low and value <= high and value != float("inf")):
            raise argparse.ArgumentTypeError(f"expected {kind} {bounds}, got {quoted}")
        return value

    return parse


def limited(cast: Callable[[str], _Number], limit: limits.Limit, unit: float = 1.0) -> Callable[[str], _Number]:
    """An argparse ``type`` for a flag that sets a quantity with a range in ``core/limits.py``, the flag in
    ``unit`` (1e9: a flag in GB/s for a figure in B/s)."""
    return number_arg(cast, limit.low / unit, limit.high / unit)


positive_int = number_arg(int, 1)
positive_float = number_arg(float, 0, low_inclusive=False)
non_negative_int = number_arg(int, 0)
non_negative_float = number_arg(float, 0)
fraction = number_arg(float, 0, 1)
batch_arg = limited(int, limits.WORKLOAD["batch"])
seq_len_arg = limited(int, limits.WORKLOAD["seq_len"])
graph_tokens_arg = limited(int, limits.WORKLOAD["graph_tokens"])
graph_context_arg = limited(int, limits.WORKLOAD["graph_context"])


def json_text(value: object) -> str:
    """JSON as every command prints it: indented and strict (NaN or an infinity raises: never printed)."""
    return json.dumps(value, indent=2, allow_nan=False)


def add_format_option(parser: argparse.ArgumentParser, choices: Sequence[str] = FORMATS) -> None:
    parser.add_argument("--format", "-f", choices=choices, default="table", help="output format (default: table)")


def add_hardware_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    group = parser.add_argument_group("device", "a catalogue name or file, and/or explicit figures")
    group.add_argument("--hardware", "-H", default=None,
                       help=f"device name (see 'llm-roofline hardware') or a .toml/.json file (default: {default})"
                       if default else "device name or .toml/.json file")
    group.add_argument("--bandwidth-gb-s", type=limited(float, limits.DEVICE["memory_bytes_per_s"], 1e9),
                       help="memory bandwidth in GB/s (1e9 B/s)")
    group.add_argument("--peak-tflops", type=limited(float, limits.DEVICE["peak_flops_per_s"], 1e12),
                       help="peak compute in TFLOP/s (1e12 FLOP/s)")
    group.add_argument("--peak-precision", default="fp16",
                       help="precision that --peak-tflops is for (default: fp16)")
    group.add_argument("--memory-gb", type=limited(float, limits.DEVICE["memory_bytes"], 1e9),
                       help="memory capacity in GB (1e9 B); a device with a usable limit keeps its share of it")
    parser.set_defaults(default_hardware=default)


def hardware_from_args(args: argparse.Namespace) -> HardwareSpec:
    from dataclasses import replace

    from llm_roofline.core.formats import PRECISIONS
    from llm_roofline.core.hardware import custom_hardware
    from llm_roofline.inputs.device_files import load_hardware

    explicit = args.bandwidth_gb_s or args.peak_tflops or args.memory_gb
    name = args.hardware if args.hardware is not None else (None if explicit else args.default_hardware)
    if args.peak_precision not in PRECISIONS:
        raise InputError(f"unknown --peak-precision '{args.peak_precision}'; known: {', '.join(PRECISIONS)}")
    if name is None:
        if not (args.bandwidth_gb_s and args.peak_tflops):
            raise InputError("a custom device needs both --bandwidth-gb-s and --peak-tflops (or give --hardware)")
        return custom_hardware(args.bandwidth_gb_s * 1e9, {args.peak_precision: args.peak_tflops * 1e12},
                               None if args.memory_gb is None else args.memory_gb * 1e9)
    spec = load_hardware(name)
    changes: dict[str, Any] = {}
    if args.bandwidth_gb_s:
        changes["memory_bytes_per_s"] = args.bandwidth_gb_s * 1e9
    if args.peak_tflops:
        changes["peak_flops_per_s"] = {**spec.peak_flops_per_s, args.peak_precision: args.peak_tflops * 1e12}
    if args.memory_gb:
        changes["memory_bytes"] = args.memory_gb * 1e9
        if spec.usable_memory_bytes is not None and spec.memory_bytes:
            # The same share of the new memory as the OS lets this device use of its own (Metal's working set,
            # an Android app's share, a Jetson's OS carve-out), so that --memory-gb keeps the platform's limit.
            changes["usable_memory_bytes"] = spec.usable_memory_bytes * args.memory_gb * 1e9 / spec.memory_bytes
    return replace(spec, **changes) if changes else spec


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", default=DEFAULT_MODEL,
                        help=f"model name (see 'llm-roofline models'), a .gguf file, or a config.json file or folder "
                             f"(default: {DEFAULT_MODEL})")


def add_number_format_options(parser: argparse.ArgumentParser, weights: bool = True) -> None:
    """Number formats and the attention kernel: the same flags, defaults and help for every command that
    takes them (the defaults are ``Workload``'s: the model's own weights, fp16 activations)."""
    if weights:
        parser.add_argument("--weights", "-w", default=None,
                            help="weight format (fp16, int4, q4_k, awq, nf4, ... see 'llm-roofline formats'), a "
                                 "llama.cpp mix (q4_k_m, q5_k_m, q8_0), or bits per weight (default: the model's "
                                 "own: a GGUF file's tensor types, fp16 for a config.json)")
    parser.add_argument("--activations", "-a", default="fp16", help="activation format (default fp16)")
    parser.add_argument("--kv-cache", default=None, help="KV-cache format (default: the activation format)")
    parser.add_argument("--flash-attention", action="store_true",
                        help="fused attention: no score matrix written or read back")
    parser.add_argument("--causal-skip", action=argparse.BooleanOptionalAction, default=None,
                        help="count only the unmasked half of the prefill scores (default: on with "
                             "--flash-attention, off without, as eager kernels compute the full square)")
    add_lever_options(parser)


def add_lever_options(parser: argparse.ArgumentParser) -> None:
    """The chapter's kernel levers beyond FlashAttention: fusion and 2:4 sparsity (Workload.fuse, .sparsity)."""
    parser.add_argument("--fuse", choices=("none", "elementwise"), default="none",
                        help="elementwise: norms, RoPE, activations and residual adds run inside the neighbouring "
                             "matmul, their activation reads and writes no DRAM traffic (default none)")
    parser.add_argument("--sparsity", choices=("none", "2:4"), default="none",
                        help="2:4: the layers' projections pruned 2:4 (half the values, a 2-bit index each, half the "
                             "multiplies) on a device with sparse tensor cores; dense elsewhere (default none)")
    parser.add_argument("--engine", default=None, metavar="ENGINE",
                        help="the inference engine, for the expected time: its fitted efficiency and its fusion level "
                             "(llama.cpp-cuda, llama.cpp-metal, llama.cpp-gpu, llama.cpp-cpu, mlx, mlc, vllm, "
                             "tensorrt-llm, executorch, litert, qnn, npu; default: the device class's figures)")


def add_workload_options(parser: argparse.ArgumentParser) -> None:
    """Phase, batch, length, number formats and kernel options: the fields of a ``Workload``."""
    parser.add_argument("--phase", "-p", choices=("prefill", "decode"), default="decode",
                         help="prefill (process the prompt) or decode (one new token per sequence); default decode")
    parser.add_argument("--batch", "-b", type=batch_arg, default=1, help="sequences in the batch (default 1)")
    parser.add_argument("--seq-len", "-l", type=seq_len_arg, default=1024,
                         help="prefill: prompt tokens; decode: tokens already in the KV cache (default 1024)")
    add_number_format_options(parser)
    parser.add_argument("--lm-head", choices=("last", "all"), default="last",
                         help="logits for the last token of each sequence (generation) or for all tokens")
    parser.add_argument("--mla", choices=("naive", "absorbed"), default=None,
                         help="multi-head latent attention (DeepSeek): decompress K/V from the latent, or attend in "
                              "the latent with kv_b_proj absorbed (default: naive for prefill, absorbed for decode)")


def workload_from_args(args: argparse.Namespace) -> Workload:
    from llm_roofline.core.transformer import Workload

    return Workload(
        phase=args.phase, batch=args.batch, seq_len=args.seq_len, weights=args.weights,
        activations=args.activations, kv_cache=args.kv_cache, flash_attention=args.flash_attention,
        causal_skip=args.causal_skip, lm_head=args.lm_head, mla=getattr(args, "mla", None), fuse=args.fuse,
        sparsity=args.sparsity, engine=args.engine, graph_tokens=getattr(args, "graph_tokens", 1),
        graph_context=getattr(args, "graph_context", None),
    )


# The Python API's errors name parameters and fields; on the command line they read as the flags that set them.
_FLAGS = (("(memory_bytes)", "(--memory-gb)"), ("(storage_bytes_per_s)", "(--storage-gb-s)"),
          ("backend 'torch'", "--backend torch"), ("device 'cuda'", "--device cuda"),
          ("(what load_hardware reads)", "(what --hardware reads)"))


def in_flags(message: str) -> str:
    """An API error message with the parameters it names written as this command line's flags."""
    for parameter, flag in _FLAGS:
        message = message.replace(parameter, flag)
    return message


def _cmd_analyze(args: argparse.Namespace) -> str:
    from llm_roofline import analyze, load_model
    from llm_roofline.faces.report.render import analysis_csv, analysis_text

    model = load_model(args.model)
    result = analyze(model.with_mtp() if args.mtp else model, hardware_from_args(args), workload_from_args(args))
    if args.format == "json":
        return json_text(result.to_dict())
    if args.format == "csv":
        return analysis_csv(result).rstrip("\n")
    return analysis_text(result)


def _cmd_hardware(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import binary_bytes, si
    from llm_roofline.faces.report.render import table, to_csv
    from llm_roofline.inputs.device_files import hardware_names, load_hardware

    specs = [load_hardware(name) for name in hardware_names()]
    if args.format == "json":
        return json_text([s.to_dict() for s in specs])
    precisions = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")
    headers = ["name", "kind", "memory", "bandwidth", *precisions]
    if args.format == "csv":
        rows = [[s.name, s.kind, s.memory_bytes, s.memory_bytes_per_s,
                 *(s.peak_flops_per_s.get(p, "") for p in precisions)] for s in specs]
        return to_csv(["name", "kind", "memory_bytes", "memory_bytes_per_s",
                       *(f"peak_{p}_flops_per_s" for p in precisions)], rows).rstrip("\n")
    rows = [[s.name, s.kind, binary_bytes(s.memory_bytes) if s.memory_bytes else "?", si(s.memory_bytes_per_s, "B/s"),
             *(si(s.peak_flops_per_s[p], "FLOP/s") if p in s.peak_flops_per_s else "-" for p in precisions)]
            for s in specs]
    return table(headers, rows, align="llrr" + "r" * len(precisions))


def _cmd_models(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import si
    from llm_roofline.faces.report.render import table, to_csv
    from llm_roofline.inputs.model_files import load_model, model_names

    specs = [load_model(name) for name in model_names()]
    if args.format == "json":
        return json_text([s.to_dict() for s in specs])
    headers = ["name", "family", "params", "active_params", "layers", "hidden", "heads", "kv_heads", "head_dim",
               "ffn", "experts", "vocab"]
    raw = [[s.name, s.family, s.params, s.active_params, s.num_layers, s.hidden_size, s.num_heads, s.num_kv_heads,
            s.head_dim, s.intermediate_size, f"{s.num_experts}/{s.experts_per_token}" if s.is_moe else "-",
            s.vocab_size] for s in specs]
    if args.format == "csv":
        return to_csv(headers, raw).rstrip("\n")
    return table(headers, [[r[0], r[1], si(s.params, digits=4), si(s.active_params, digits=4), *r[4:]]
                           for s, r in zip(specs, raw, strict=True)],
                 align="ll" + "r" * 10)


def _cmd_matmul(args: argparse.Namespace) -> str:
    from llm_roofline.core.formats import get_format
    from llm_roofline.core.ops import gemm
    from llm_roofline.core.roofline import evaluate_op
    from llm_roofline.core.transformer import Op
    from llm_roofline.core.units import seconds, si

    fmt = get_format(args.precision)
    size = fmt.bytes_per_element
    cost = gemm(args.batch, args.m, args.n, args.k, size, size, size, args.shared_b)
    intensity = cost.flops / cost.bytes
    out: dict[str, Any] = {"batch": args.batch, "m": args.m, "n": args.n, "k": args.k, "precision": fmt.name,
                           "flops": cost.flops, "bytes": cost.bytes, "arithmetic_intensity": intensity}
    if args.hardware or args.bandwidth_gb_s or args.peak_tflops:
        hw = hardware_from_args(args)
        result = evaluate_op(Op("matmul", "matmul", "matmul", 1, cost, fmt.math), hw)
        peak_precision = result.peak_precision
        out |= {"hardware": hw.name, "peak_precision": peak_precision, "peak_flops_per_s": result.peak_flops_per_s,
                "memory_bytes_per_s": hw.memory_bytes_per_s, "ridge_point": hw.ridge_point(fmt.math),
                "attainable_flops_per_s": result.attainable_flops_per_s, "bound": result.bound,
                "time_s": result.time_s}
    if args.format == "json":
        return json_text(out)
    shape = f"[{args.batch}, {args.m}, {args.k}] x [{args.batch if not args.shared_b else 1}, {args.k}, {args.n}]"
    lines = [f"matmul {shape} in {fmt.name}",
             f"FLOPs                  {si(cost.flops, 'FLOP')}  (2·B·M·N·K)",
             f"bytes                  {si(cost.bytes, 'B')}  ((B·M·K + B·K·N + B·M·N) × {size:g} B, no reuse)",
             f"arithmetic intensity   {intensity:.4g} FLOP/B"]
    if "hardware" in out:
        lines += [f"ridge point            {out['ridge_point']:.4g} FLOP/B on {out['hardware']} ({peak_precision})",
                  f"attainable             {si(out['attainable_flops_per_s'], 'FLOP/s')}",
                  f"bound                  {out['bound']}",
                  f"time                   {seconds(out['time_s'])}"]
    return "\n".join(lines)


def _cmd_roofline(args: argparse.Namespace) -> str:
    from llm_roofline.core.roofline import attainable_flops_per_s, bound_of
    from llm_roofline.core.units import si

    hw = hardware_from_args(args)
    bandwidth = hw.memory_bytes_per_s
    points = []
    for precision, peak in hw.peak_flops_per_s.items():
        ridge = peak / bandwidth
        entry: dict[str, Any] = {"precision": precision, "peak_flops_per_s": peak, "ridge_point": ridge,
                                 "points": []}
        for intensity in args.intensity or ():
            entry["points"].append({"arithmetic_intensity": intensity,
                                    "attainable_flops_per_s": attainable_flops_per_s(intensity, peak, bandwidth),
                                    "bound": bound_of(intensity, ridge)})
        points.append(entry)
    out = {"hardware": hw.name, "memory_bytes_per_s": bandwidth, "ceilings": points}
    if args.format == "json":
        return json_text(out)
    lines = [f"{hw.display_name}: memory bandwidth {si(bandwidth, 'B/s')}"]
    for entry in points:
        lines.append(f"  {entry['precision']:5s} peak {si(entry['peak_flops_per_s'], 'FLOP/s'):>14s}   "
                     f"ridge point {entry['ridge_point']:.4g} FLOP/B")
        for p in entry["points"]:
            lines.append(f"        at I = {p['arithmetic_intensity']:g} FLOP/B: "
                         f"P = min(peak, I × BW) = {si(p['attainable_flops_per_s'], 'FLOP/s')}, {p['bound']}-bound")
    return "\n".join(lines)


# The commands defined in this module; the others live in COMMAND_MODULES.
CORE_COMMANDS = ("analyze", "hardware", "models", "matmul", "roofline")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command`` one of ``CORE_COMMANDS``, only the core's commands (the
    feature modules are not imported: a quicker start for the commonest call)."""
    parser = _Parser(prog="llm-roofline", description="Roofline analysis of LLM inference on real devices.")
    parser.add_argument("--version", action="version", version="llm-roofline 0.1.0")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    analyze = commands.add_parser("analyze", help="per-operator roofline of one prefill or decode step")
    add_model_option(analyze)
    add_hardware_options(analyze, DEFAULT_HARDWARE)
    add_workload_options(analyze)
    analyze.add_argument("--mtp", action="store_true",
                         help="run the model's multi-token-prediction module each step as well (DeepSeek-V3/R1: "
                              "a draft token for speculative decoding); left out by default, as inference does")
    analyze.add_argument("--graph-tokens", type=graph_tokens_arg, default=1, metavar="N",
                         help="decode through a fixed-shape graph (an NPU runtime's compiled step) that computes N "
                              "positions per step, one of them the real token (coreml-llm-cli: 64; default 1)")
    analyze.add_argument("--graph-context", type=graph_context_arg, default=None, metavar="N",
                         help="the cache a fixed-shape decode graph attends over, read in full whatever --seq-len "
                              "holds (a QNN token generator: its context length, 1024 to 4096; default: --seq-len)")
    add_format_option(analyze)
    analyze.set_defaults(run=_cmd_analyze)

    hardware = commands.add_parser("hardware", help="list the device catalogue")
    add_format_option(hardware)
    hardware.set_defaults(run=_cmd_hardware)

    models = commands.add_parser("models", help="list the built-in models")
    add_format_option(models)
    models.set_defaults(run=_cmd_models)

    matmul = commands.add_parser("matmul", help="intensity and bound of a GEMM, GEMV or batched matmul")
    size = limited(int, limits.STUDY["matrix_size"])
    matmul.add_argument("--m", type=size, required=True, help="rows of A and C")
    matmul.add_argument("--k", type=size, required=True, help="columns of A, rows of B")
    matmul.add_argument("--n", type=size, required=True, help="columns of B and C")
    matmul.add_argument("--batch", type=batch_arg, default=1, help="batch of independent products (default 1)")
    matmul.add_argument("--shared-b", action="store_true", help="one B shared by the whole batch (a weight)")
    matmul.add_argument("--precision", default="fp32", help="element format (default fp32)")
    add_hardware_options(matmul, None)
    add_format_option(matmul, ("table", "json"))
    matmul.set_defaults(run=_cmd_matmul)

    roofline = commands.add_parser("roofline", help="a device's ceilings and ridge points; attainable FLOP/s "
                                                    "at given intensities")
    add_hardware_options(roofline, DEFAULT_HARDWARE)
    roofline.add_argument("--intensity", "-i", type=limited(float, limits.STUDY["arithmetic_intensity"]), nargs="+",
                          help="arithmetic intensities in FLOP/B")
    add_format_option(roofline, ("table", "json"))
    roofline.set_defaults(run=_cmd_roofline)

    if command not in CORE_COMMANDS:
        for module_name in COMMAND_MODULES:
            importlib.import_module(module_name).add_commands(commands)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command an argument list names: its first argument that is not an option."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


MAX_ARGUMENT_CHARS = 4096  # PATH_MAX: the longest path the system opens
MAX_ERROR_CHARS = 1000  # an error line past this keeps its start and its end


def _one_line(message: str) -> str:
    """The error as one line of at most ``MAX_ERROR_CHARS`` characters (``printable`` already escaped newlines)."""
    if len(message) <= MAX_ERROR_CHARS:
        return message
    return f"{message[:MAX_ERROR_CHARS - 300]} ... {message[-250:]}"


def main(argv: Sequence[str] | None = None) -> int:
    from llm_roofline.faces.cli.output import printable_output

    with printable_output():  # names from files and typed ones may hold terminal escapes: shown, never obeyed
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
    try:
        too_long = next((arg for arg in argv if len(arg) > MAX_ARGUMENT_CHARS), None)
        if too_long is not None:
            raise InputError(f"an argument of {len(too_long)} characters ('{shown_name(too_long)}'): arguments are "
                             f"names, numbers, lists and paths of at most {MAX_ARGUMENT_CHARS} characters")
        args = parser.parse_args(argv)
        run: Callable[[argparse.Namespace], str] | None = getattr(args, "run", None)
        if run is None:
            parser.print_help()
            return 0
        output = run(args)
        note = _context_note(args)
    except InputError as err:
        print(f"llm-roofline: error: {_one_line(printable(in_flags(str(err))))}", file=sys.stderr)
        return 2
    try:
        if output:  # a command whose output went elsewhere (`sweep -o -` wrote the CSV itself) adds no blank line
            print(output, flush=True)
    except BrokenPipeError:  # the reader went away (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if note:
        print(f"warning: {note}", file=sys.stderr)
    return 0


# Commands whose own output carries the context-window warning (analyze's JSON, share's and the timeline's
# text, the sweep's stderr, context's table); every other command with a model and a length gets it on stderr here.
_WARN_THEMSELVES = {"analyze", "share", "sweep", "timeline", "context"}


def _context_note(args: argparse.Namespace) -> str | None:
    """ModelSpec.context_warning for a command's longest sequence (a decode step adds the new token)."""
    model, lengths = getattr(args, "model", None), getattr(args, "seq_len", None)
    if args.command in _WARN_THEMSELVES or not isinstance(model, str) or lengths is None or getattr(args, "params",
                                                                                                     None):
        return None  # a bare parameter count (--params) has no context window
    from llm_roofline.inputs.model_files import load_model

    longest = max(lengths) if isinstance(lengths, list) else int(lengths)
    return load_model(model).context_warning(longest + (getattr(args, "phase", "decode") == "decode"))


if __name__ == "__main__":
    sys.exit(main())
