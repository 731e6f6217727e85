"""The studies' subcommands: share, transition, timeline, requirements, feasibility, scaling, whatif, energy.

Thin, like ``cli.py``: parse, call one study function, format its frozen records. Handlers import the
studies lazily, so ``llm-roofline --help`` stays fast. ``--format json`` prints the records with raw
SI numbers under their unit-suffixed names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from llm_roofline.core import limits
from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli.main import (
    DEFAULT_HARDWARE,
    add_format_option,
    add_hardware_options,
    add_model_option,
    add_number_format_options,
    add_workload_options,
    batch_arg,
    hardware_from_args,
    json_text,
    limited,
    number_arg,
    seq_len_arg,
    workload_from_args,
)
from llm_roofline.faces.report.render import to_json

if TYPE_CHECKING:
    from llm_roofline.core.hardware import HardwareSpec
    from llm_roofline.core.transformer import Workload
    from llm_roofline.features.studies.requirements import Subject

OUTPUTS = ("table", "json")
_T = TypeVar("_T")
DEFAULT_EDGE_BIG = "nvidia-jetson-agx-orin-64gb"  # 64 GiB: room for a 70B model at 4 bits


# --- shared edges -------------------------------------------------------------------------------

target_ms = limited(float, limits.STUDY["time_per_token_s"], 1e-3)  # a time per token, in milliseconds


def dumps(value: Any) -> str:
    return json_text(to_json(value))


def _workload(args: argparse.Namespace, **fields: Any) -> Workload:
    from llm_roofline.core.transformer import Workload

    return Workload(weights=getattr(args, "weights", None), activations=args.activations, kv_cache=args.kv_cache,
                    flash_attention=args.flash_attention, causal_skip=args.causal_skip, fuse=args.fuse,
                    sparsity=args.sparsity, engine=args.engine, **fields)


def _optional_hardware(args: argparse.Namespace) -> HardwareSpec | None:
    if args.hardware or args.bandwidth_gb_s or args.peak_tflops:
        return hardware_from_args(args)
    return None


def _add_params_option(parser: argparse.ArgumentParser, many: bool = False) -> None:
    parser.add_argument("--params", type=limited(float, limits.STUDY["params"]), nargs="+" if many else None,
                        help="a bare parameter count instead of a model (e.g. 7e9): every weight read once per "
                             "token, nothing else — the chapter's model" + ("; several allowed" if many else ""))


def _subject(args: argparse.Namespace) -> Subject:
    from llm_roofline.features.studies.requirements import ParamsOnly
    from llm_roofline.inputs.model_files import load_model

    return ParamsOnly(args.params) if args.params else load_model(args.model)


def _formats_line(workload: Workload) -> str:
    return (f"weights {workload.weights_label}, activations {workload.activation_format.name}, "
            f"KV cache {workload.kv_format.name}" + (", FlashAttention" if workload.flash_attention else ""))


def _lines(*parts: str) -> str:
    """Join text parts, with no trailing blanks (tables pad their last column)."""
    return "\n".join(line.rstrip() for part in parts for line in part.split("\n"))


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def _maybe(value: _T | None, render: Callable[[_T], str]) -> str:
    return "-" if value is None else render(value)


def _yes(flag: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[flag]


# --- share --------------------------------------------------------------------------------------

def _cmd_share(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import si
    from llm_roofline.faces.report.render import table
    from llm_roofline.features.studies.share import MAX_SEARCH_LEN, share_study
    from llm_roofline.inputs.model_files import load_model

    model = None if args.hidden_size else load_model(args.model)
    workload = _workload(args, phase=args.phase, batch=args.batch)
    study = share_study(model, workload, args.seq_len, args.target_share, args.hidden_size,
                        _optional_hardware(args) if model is not None else None)
    if args.format == "json":
        return dumps(study)
    d = study.hidden_size
    if model is None:
        title = f"idealized layer, d = {d}: attention = 8Ld² + 4L²d, FFN = 16Ld²"
        headers = ["L", "attention", "FFN", "ratio 1/2 + L/(4d)", "share", "focus"]
        rows = [[r.seq_len, si(r.attention_flops, "FLOP"), si(r.ffn_flops, "FLOP"), f"{r.idealized_ratio:.4g}",
                 _percent(r.share), r.recommendation.focus] for r in study.rows]
        align = "rrrrrl"
    else:
        title = (f"{model.display_name or model.name} (d = {d}): {study.phase}, batch {workload.batch}; "
                 f"attention share of attention + FFN FLOPs")
        headers = ["L", "attention", "FFN", "other", "share", "idealized", "focus"]
        rows = [[r.seq_len, si(r.attention_flops, "FLOP"), si(r.ffn_flops, "FLOP"), si(r.other_flops, "FLOP"),
                 _percent(r.share), _percent(r.idealized_share),
                 r.recommendation.focus if study.attending_layers else "-"] for r in study.rows]
        if model.recurrent_layers:  # a hybrid: only the attending layers count as attention
            title += (f" ({model.attention_layers} of {model.num_layers} layers attend; the others' recurrent "
                      f"mixers are the mixer column)")
            headers.insert(3, "mixer")
            for row, r in zip(rows, study.rows, strict=True):
                row.insert(3, si(r.mixer_flops, "FLOP"))
        if study.hardware:
            column = headers.index("focus")
            headers.insert(column, "time share")
            for row, r in zip(rows, study.rows, strict=True):
                row.insert(column, _maybe(r.attention_time_share, _percent))
        align = "r" * (len(headers) - 1) + "l"
    lines = [title, "", table(headers, rows, align=align), ""]
    lines += [f"warning: {text}" for text in study.warnings]
    target = _percent(study.target_share)
    if study.crossover_seq_len is not None:
        lines.append(f"attention reaches {target} at L = {study.crossover_seq_len} "
                     f"(idealized layer: L = {study.idealized_crossover_seq_len})")
    elif study.model is not None and study.idealized_crossover_seq_len is None:
        lines.append("no layer attends: attention is 0% at every length")
    elif study.model is not None:
        lines.append(f"attention stays below {target} up to L = {MAX_SEARCH_LEN} "
                     f"(idealized layer: {target} at L = {study.idealized_crossover_seq_len})")
    else:
        lines.append(f"attention reaches {target} at L = {study.idealized_crossover_seq_len}")
    seen: dict[str, list[int]] = {}
    for r in study.rows:
        if study.attending_layers != 0:  # the chapter's strategy is about attention: none without it
            seen.setdefault(r.recommendation.band, []).append(r.seq_len)
    for r in study.rows:
        lengths = seen.pop(r.recommendation.band, None)
        if lengths is None:
            continue
        rec = r.recommendation
        lines.append(f"{rec.band} at L = {', '.join(map(str, lengths))}: {rec.focus} — {'; '.join(rec.actions)}")
        lines.append(f"  why: at L = {r.seq_len} {rec.reason}")
    return _lines(*lines)


def _add_share(commands: Any) -> None:
    p = commands.add_parser("share", help="attention's share of the FLOPs vs length; what to optimize first (2.3)")
    add_model_option(p)
    p.add_argument("--hidden-size", type=limited(int, limits.MODEL["hidden_size"]),
                   help="the chapter's idealized layer alone, of this width")
    p.add_argument("--phase", "-p", choices=("prefill", "decode"), default="prefill",
                   help="prefill (L = prompt) or decode (L = tokens cached); default prefill")
    p.add_argument("--batch", "-b", type=batch_arg, default=1, help="sequences (default 1)")
    p.add_argument("--seq-len", "-l", type=seq_len_arg, nargs="+", default=[512, 1024, 2048, 4096, 8192],
                   help="lengths L (default 512 1024 2048 4096 8192)")
    p.add_argument("--target-share", type=number_arg(float, 0, 1, low_inclusive=False), default=0.5,
                   help="report the length where attention reaches this share (default 0.5)")
    add_number_format_options(p)
    add_hardware_options(p, None)
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_share)


# --- transition ---------------------------------------------------------------------------------

def _never(value: int | None) -> str:
    return "never" if value is None else str(value)


def _critical_text(point: Any) -> str:
    if point.critical is None:
        return "never"
    text = str(point.critical)
    if point.memory_bound_again is not None:
        text += f" to {point.memory_bound_again - 1}"
    return text


def _points_table(points: Any) -> str:
    from llm_roofline.faces.report.render import table

    fits = {True: "yes", False: "no", None: "-"}
    rows = [[p.name, f"{p.ridge_flop_per_byte:.3g}", f"{p.intensity_at_1:.3g}", f"{p.intensity_at_max:.4g}",
             _critical_text(p), fits[p.critical_fits]] for p in points]
    return table(["operator", "ridge", "FLOP/B at 1", "FLOP/B limit", "compute-bound from", "fits there"], rows,
                 align="lrrrrl")


def _memory_line(points: Any, largest: int | None, what: str, device: str, window: int | None = None,
                 state: bool = False) -> str:
    """Where the whole step's crossing stands against memory, in one sentence (``state``: the model keeps a
    recurrent state too)."""
    if largest is None:
        return f"memory: {device} gives no capacity, so whether these fit is unknown"
    whole = points[-1]
    counted = ("(weights + KV cache + " + ("recurrent state + " if state else "")
               + "activations + runtime, as analyze and fit count them)")
    if largest == window:
        limit = f"memory: the whole context window, {largest} {what}, fits on {device} {counted}"
    else:
        limit = f"memory: at most {largest} {what} fit{'s' if largest == 1 else ''} on {device} {counted}"
    if whole.critical is None:
        return limit + "; the whole step never turns compute-bound"
    verdict = "which fits" if whole.critical_fits else "beyond memory: it does not fit"
    return limit + f"; the whole step turns compute-bound at {whole.critical}, {verdict}"


def _format_pair(text: str) -> tuple[str, str]:
    weights, sep, activations = text.partition("/")
    if not sep or not weights or not activations:
        raise InputError(f"expected WEIGHTS/ACTIVATIONS (e.g. int4/fp16), got {text!r}")
    return weights, activations


def _cmd_transition(args: argparse.Namespace) -> str:
    from llm_roofline.core.transformer import count_layout
    from llm_roofline.faces.report.render import table
    from llm_roofline.features.studies.transition import transition_study
    from llm_roofline.inputs.model_files import load_model

    model, hardware = load_model(args.model), hardware_from_args(args)
    workload = _workload(args, phase="decode", batch=args.batch, seq_len=args.seq_len)
    study = transition_study(model, hardware, workload, args.qk_batches, args.qk_lengths,
                             [_format_pair(text) for text in args.compare])
    if args.format == "json":
        return dumps(study)
    qk_rows = [[r.batch, r.seq_len, f"{r.chapter_matmul_flop_per_byte:.4g}", f"{r.prefill_qk_flop_per_byte:.4g}",
                f"{r.decode_qk_flop_per_byte:.3g}", f"{r.decode_weight_matmul_flop_per_byte:.3g}"] for r in study.qk]
    precision_rows = [[r.weights, r.activations, r.math if r.math == r.peak_precision else f"{r.math} on "
                       f"{r.peak_precision}", f"{r.ridge_flop_per_byte:.3g}", f"{r.q_proj_intensity_at_1:.3g}",
                       _never(r.q_proj_critical_batch), f"{r.intensity_at_1:.3g}", _never(r.critical_batch),
                       "-" if r.max_batch is None else str(r.max_batch)]
                      for r in study.precisions]
    return _lines(*[
        f"{model.display_name or model.name} on {hardware.display_name}: {_formats_line(workload)}",
        "(ridge and FLOP/B in FLOP/byte; the limit is the intensity at 2^30)",
        "",
        f"decode with {workload.seq_len} tokens cached: the batch from which each operator is compute-bound",
        _points_table(study.decode_batch),
        _memory_line(study.decode_batch, study.decode_max_batch, f"sequences of {workload.seq_len + 1} tokens",
                     hardware.display_name, state=model.recurrent_layers > 0),
        "",
        f"prefill of {workload.batch} sequence(s): the prompt length from which each operator is compute-bound"
        + ("" if not count_layout(model).chunk_sizes else
           f" (chunked scans: every length up to the context window, {model.max_position_embeddings}, evaluated; "
           "the limit is the intensity there)"),
        _points_table(study.prefill_len),
        _memory_line(study.prefill_len, study.prefill_max_len, "prompt tokens", hardware.display_name,
                     model.max_position_embeddings, state=model.recurrent_layers > 0),
        "",
        "Q·Kᵀ intensity (FLOP/B) vs batch B and length L (2.4.2), beside a weight matmul (q_proj)",
        table(["B", "L", "[B,L,d]x[B,d,L] fp32", "prefill qk", "decode qk", "decode q_proj"], qk_rows,
              align="rrrrrr"),
        "",
        "precision (2.4.3), decode: a weight matmul (q_proj) and the whole step; FLOP/B at batch 1, and the batch "
        "from which each is compute-bound",
        table(["weights", "activations", "math", "ridge", "q_proj FLOP/B", "q_proj from", "step FLOP/B", "step from",
               "fit at most"], precision_rows, align="lllrrrrrr"),
    ])


def _add_transition(commands: Any) -> None:
    p = commands.add_parser("transition", help="batch and prompt length at which operators turn compute-bound (2.4)")
    add_model_option(p)
    add_hardware_options(p, DEFAULT_HARDWARE)
    p.add_argument("--seq-len", "-l", type=seq_len_arg, default=1024,
                   help="decode: tokens already cached (default 1024)")
    p.add_argument("--batch", "-b", type=batch_arg, default=1, help="prefill: sequences (default 1)")
    add_number_format_options(p)
    p.add_argument("--qk-batches", type=batch_arg, nargs="+", default=[1, 4, 16, 64],
                   help="batches of the Q·Kᵀ table (default 1 4 16 64)")
    p.add_argument("--qk-lengths", type=seq_len_arg, nargs="+", default=[128, 1024, 4096],
                   help="lengths of the Q·Kᵀ table (default 128 1024 4096)")
    p.add_argument("--compare", nargs="+", default=["fp16/fp16", "int8/fp16", "int4/fp16", "int8/int8"],
                   help="WEIGHTS/ACTIVATIONS pairs of the precision table (default fp16/fp16 int8/fp16 "
                        "int4/fp16 int8/int8)")
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_transition)


# --- timeline -----------------------------------------------------------------------------------

class TimelineSample(TypedDict):
    """One sampled decode step of ``timeline``: its own time and the running totals up to it."""

    step: int
    past_len: int
    step_time_s: float
    time_s: float
    flops: float
    bytes: float
    bound: str


def _cmd_timeline(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import si
    from llm_roofline.faces.report.render import table
    from llm_roofline.features.studies.timeline import generation_timeline
    from llm_roofline.inputs.model_files import load_model

    model, hardware = load_model(args.model), hardware_from_args(args)
    workload = _workload(args, batch=args.batch)
    timeline = generation_timeline(model, hardware, workload, args.prompt_len, args.steps)
    t = timeline.totals
    steps = timeline.sample_steps(args.samples)
    index = [s - 1 for s in steps]
    cumulative = (timeline.cumulative_time_s, timeline.cumulative_flops, timeline.cumulative_bytes)
    samples: list[TimelineSample] = [
        {"step": s, "past_len": int(timeline.past_len[i]), "step_time_s": float(timeline.step_time_s[i]),
         "time_s": float(cumulative[0][i]), "flops": float(cumulative[1][i]), "bytes": float(cumulative[2][i]),
         "bound": "compute" if timeline.step_compute_bound[i] else "memory"}
        for s, i in zip(steps, index, strict=True)]
    if args.format == "json":
        out: dict[str, Any] = {"model": timeline.model, "hardware": timeline.hardware,
                               "workload": timeline.workload.to_dict(), "prompt_len": timeline.prompt_len,
                               "steps": timeline.steps, "totals": to_json(t), "changes": to_json(timeline.changes),
                               "samples": samples}
        if args.all_steps:
            out["per_step"] = {"past_len": timeline.past_len.tolist(), "step_time_s": timeline.step_time_s.tolist(),
                               "flops": timeline.step_flops.tolist(), "bytes": timeline.step_bytes.tolist()}
        return json_text(out)
    from llm_roofline.core.units import seconds

    changes = "; ".join(f"step {c.step} ({c.past_len} cached): {c.name} {c.from_bound} → {c.to_bound}"
                        for c in timeline.changes) or "none"
    rows = [[s["step"], s["past_len"], seconds(s["step_time_s"]), seconds(s["time_s"]), si(s["flops"], "FLOP"),
             si(s["bytes"], "B"), s["bound"]] for s in samples]
    fits = {True: "yes", False: "NO", None: "unknown"}[t.fits]
    return _lines(*[
        f"{model.display_name or model.name} on {hardware.display_name}: prompt {timeline.prompt_len} tokens, "
        f"{timeline.steps} decode steps, batch {workload.batch}; {_formats_line(workload)}",
        "",
        f"time to first token   {seconds(t.ttft_s)} (prefill, {t.prefill_bound}-bound)",
        f"decode                {seconds(t.decode_time_s)}: first step {seconds(t.first_step_time_s)}, "
        f"last {seconds(t.last_step_time_s)}, mean {seconds(t.mean_step_time_s)}",
        f"total                 {seconds(t.total_time_s)} for {t.new_tokens} new tokens per sequence",
        f"tokens/s              {t.tokens_per_s:.4g} end to end, {t.decode_tokens_per_s:.4g} while decoding "
        f"(over the batch)",
        f"FLOPs                 {si(t.prefill_flops, 'FLOP')} prefill, {si(t.flops, 'FLOP')} in all",
        f"bytes                 {si(t.prefill_bytes, 'B')} prefill, {si(t.bytes, 'B')} in all",
        f"memory at the end     {si(t.memory_bytes, 'B')} (KV cache {si(t.final_kv_cache_bytes, 'B')}"
        + (f", recurrent state {si(t.state_bytes, 'B')}" if t.state_bytes else "") + f"); fits: {fits}"
        + ("; beyond the model's context window" if t.exceeds_context else ""),
        f"bound changes         {changes}",
        "",
        table(["step", "cached", "step time", "elapsed", "FLOPs_total(t)", "bytes_total(t)", "bound"], rows,
              align="rrrrrrl"),
    ])


def _add_timeline(commands: Any) -> None:
    p = commands.add_parser("timeline", help="prefill then T decode steps with a growing KV cache (2.3.4)")
    add_model_option(p)
    add_hardware_options(p, DEFAULT_HARDWARE)
    p.add_argument("--prompt-len", "-P", type=seq_len_arg, default=512, help="prompt tokens (default 512)")
    p.add_argument("--steps", "-T", type=limited(int, limits.STUDY["steps"]), default=512,
                   help="decode steps (default 512)")
    p.add_argument("--batch", "-b", type=batch_arg, default=1, help="sequences (default 1)")
    add_number_format_options(p)
    p.add_argument("--samples", type=number_arg(int, 0, limits.STUDY["steps"].high), default=8,
                   help="steps shown, spread evenly, plus bound changes (default 8)")
    p.add_argument("--all-steps", action="store_true", help="JSON: every step's time, FLOPs and bytes")
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_timeline)


# --- context ------------------------------------------------------------------------------------

def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _devices(args: argparse.Namespace) -> list[HardwareSpec]:
    """Each device of a comma-separated --hardware (the figure overrides applied to every one)."""
    if args.hardware is None:
        return [hardware_from_args(args)]
    return [hardware_from_args(argparse.Namespace(**{**vars(args), "hardware": name}))
            for name in _names(args.hardware)]


def _cmd_context(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import seconds, si
    from llm_roofline.faces.report.render import table
    from llm_roofline.features.studies.context import DEFAULT_CONTEXTS, context_study
    from llm_roofline.inputs.model_files import load_model

    models = [load_model(name) for name in _names(args.model)]
    workload = _workload(args, phase="decode", batch=args.batch)
    curves = context_study(models, _devices(args), workload, args.seq_len or DEFAULT_CONTEXTS)
    if args.format == "json":
        return dumps(curves)
    rows = []
    for curve in curves:
        for p in curve.points:
            beyond = "*" if p.seq_len > curve.context_window else ""
            rows.append([curve.model_label, curve.hardware_label, f"{p.seq_len}{beyond}", seconds(p.decode_time_s),
                         f"{p.tokens_per_s:.4g}", seconds(p.prefill_time_s), si(p.kv_cache_bytes, "B"),
                         si(p.state_bytes, "B"), si(p.memory_bytes, "B"), _yes(p.fits)])
    lines = [f"decode, batch {workload.batch}: one decode step with L tokens cached, the prefill of an L-token "
             f"prompt (TTFT), and what the deployment holds at L; {_formats_line(workload)}",
             "",
             table(["model", "device", "L", "decode step", "tokens/s", "TTFT", "KV cache", "state", "memory",
                    "fits"], rows, align="llrrrrrrrl"),
             ""]
    lines += [f"{c.model_label} on {c.hardware_label}: decode step x{c.growth:.3g} from L = {c.points[0].seq_len} "
              f"to {c.points[-1].seq_len} ({c.attention_layers} of {c.layers} layers attend)" for c in curves]
    if any(p.seq_len > c.context_window for c in curves for p in c.points):
        lines.append("* past the model's context window (max_position_embeddings): the arithmetic's, not a "
                     "trained length")
    return _lines(*lines)


def _add_context(commands: Any) -> None:
    p = commands.add_parser("context", help="decode time, TTFT and memory vs context for models side by side: "
                                            "the flat per-token cost of hybrids")
    p.add_argument("--model", "-m", default="llama-3.2-1b,lfm2-1.2b",
                   help="models, comma-separated (default llama-3.2-1b,lfm2-1.2b)")
    add_hardware_options(p, DEFAULT_HARDWARE)
    p.add_argument("--seq-len", "-l", type=seq_len_arg, nargs="+",
                   help="context lengths L (default 1024 2048 ... 131072)")
    p.add_argument("--batch", "-b", type=batch_arg, default=1, help="sequences (default 1)")
    add_number_format_options(p)
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_context)


# --- requirements -------------------------------------------------------------------------------

def _cmd_requirements(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import si
    from llm_roofline.features.studies.requirements import required_bandwidth

    subject = _subject(args)
    hardware = _optional_hardware(args)
    workload = _workload(args, phase="decode", batch=args.batch, seq_len=args.seq_len)
    need = required_bandwidth(subject, workload, args.tokens_per_s, hardware)
    if args.format == "json":
        return dumps(need)
    context = "" if args.params else f", {need.seq_len} tokens cached"
    lines = [
        f"{need.model}, weights {need.weights}, batch {need.batch}{context}: {need.tokens_per_s:g} tokens/s per "
        f"sequence = {need.step_time_s * 1e3:.4g} ms per step",
        "",
        f"bytes per step         {si(need.bytes_per_step, 'B')}",
        f"FLOPs per step         {si(need.flops_per_step, 'FLOP')}",
        f"bandwidth needed       {si(need.bytes_per_s, 'B/s')}  (bytes per step × {need.tokens_per_s:g} steps/s)",
        f"compute needed         {si(need.flops_per_s, 'FLOP/s')}",
    ]
    if hardware is not None:
        lines += [
            f"on {hardware.display_name}: with its compute ceilings the step needs "
            f"{si(need.roofline_bytes_per_s, 'B/s')}; it has {si(need.hardware_bytes_per_s, 'B/s')}: "
            f"meets: {_yes(need.meets)} ({need.hardware_tokens_per_s:.4g} tokens/s per sequence)",
        ]
    return _lines(*lines)


def _add_requirements(commands: Any) -> None:
    p = commands.add_parser("requirements", help="bandwidth and compute a decode rate needs (exercise 2.3)")
    add_model_option(p)
    _add_params_option(p)
    p.add_argument("--tokens-per-s", type=limited(float, limits.STUDY["tokens_per_s"]), required=True,
                   help="target decode rate per sequence")
    p.add_argument("--batch", "-b", type=batch_arg, default=1, help="sequences (default 1)")
    p.add_argument("--seq-len", "-l", type=seq_len_arg, default=1024,
                   help="tokens already cached (default 1024; ignored with --params)")
    add_number_format_options(p)
    add_hardware_options(p, None)
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_requirements)


# --- feasibility --------------------------------------------------------------------------------

def _cmd_feasibility(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import seconds, si
    from llm_roofline.faces.report.render import feasibility_payload, remedy_detail, table
    from llm_roofline.features.studies.requirements import ParamsOnly, feasibility
    from llm_roofline.inputs.model_files import load_model

    subject, hardware = _subject(args), hardware_from_args(args)
    draft = (ParamsOnly(args.draft_params) if args.draft_params
             else load_model(args.draft_model) if args.draft_model else None)
    workload = _workload(args, phase="decode", batch=args.batch, seq_len=args.seq_len)
    result = feasibility(subject, hardware, workload, args.target_ms * 1e-3, args.formats, draft,
                         args.draft_cost_ratio)
    if args.format == "json":
        return json_text(feasibility_payload(result))
    verdicts = [[v.weights, si(v.weight_bytes, "B"), seconds(v.time_per_token_s), f"{v.tokens_per_s:.3g}",
                 _yes(v.meets), si(v.memory_bytes, "B"), _yes(v.fits)] for v in result.formats]
    remedies = [[rank, r.change, _maybe(r.time_per_token_s, seconds), _yes(r.meets), remedy_detail(r)]
                for rank, r in enumerate(result.remedies, start=1)]
    base = result.baseline
    context = "" if args.params else f", {result.seq_len} tokens cached"
    verdict = ("meets the target" if base.meets
               else f"misses it by {seconds(base.time_per_token_s - result.target_time_per_token_s)}")
    return _lines(*[
        f"{result.model} on {hardware.display_name} ({si(hardware.memory_bytes_per_s, 'B/s')}): target "
        f"{seconds(result.target_time_per_token_s)} per token, batch {result.batch}{context}",
        "",
        table(["weights", "weight bytes", "time/token", "tokens/s", "meets", "memory", "fits"], verdicts,
              align="lrrrlrl"),
        "",
        f"{_formats_line(workload)}: {seconds(base.time_per_token_s)} per token, {verdict}. "
        + ("Other options, best first:" if base.meets else "What would meet it, best first:"),
        table(["#", "change", "time/token", "meets", "detail"], remedies, align="rlrll"),
    ])


def _add_feasibility(commands: Any) -> None:
    p = commands.add_parser("feasibility", help="does a latency target hold per weight format; what would make it "
                                                "(exercise 2.6)")
    add_model_option(p)
    _add_params_option(p)
    add_hardware_options(p, DEFAULT_HARDWARE)
    p.add_argument("--target-ms", type=target_ms, required=True, help="time per token, in milliseconds")
    p.add_argument("--formats", nargs="+", default=["fp16", "int8", "int4"],
                   help="weight formats to judge (default fp16 int8 int4)")
    p.add_argument("--batch", "-b", type=batch_arg, default=1, help="sequences (default 1)")
    p.add_argument("--seq-len", "-l", type=seq_len_arg, default=1024,
                   help="tokens already cached (default 1024; ignored with --params)")
    add_number_format_options(p)
    draft = p.add_mutually_exclusive_group()
    draft.add_argument("--draft-model", help="speculative decoding: the draft model (catalogue name or config)")
    draft.add_argument("--draft-params", type=limited(float, limits.STUDY["params"]),
                       help="speculative decoding: a draft of this many params")
    draft.add_argument("--draft-cost-ratio", type=number_arg(float, 0, 1), default=0.0,
                       help="speculative decoding: draft step / target step (default 0: a free draft, the "
                            "lower bound on the acceptance rate needed)")
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_feasibility)


# --- scaling ------------------------------------------------------------------------------------

def _cmd_scaling(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import binary_bytes, seconds, si
    from llm_roofline.faces.report.render import table
    from llm_roofline.features.studies.requirements import ParamsOnly, model_scaling
    from llm_roofline.inputs.model_files import load_model

    names = args.model if args.model or args.params else ["llama-2-7b", "llama-2-70b"]
    subjects = [load_model(name) for name in names or ()] + [ParamsOnly(p) for p in args.params or ()]
    hardware = hardware_from_args(args)
    workload = _workload(args, phase="decode", batch=1, seq_len=args.seq_len)
    target = None if args.target_ms is None else args.target_ms * 1e-3
    rows = model_scaling(subjects, hardware, workload, args.formats, target)
    if args.format == "json":
        return dumps(rows)
    headers = ["model", "params", "weights", "memory", "fits", "bytes/token", "FLOP/B", "time/token", "tokens/s",
               "energy/token", "moving data"]
    body = [[r.model, si(r.params, digits=4), r.weights, si(r.memory_bytes, "B"), _yes(r.fits),
             si(r.bytes_per_token, "B"), f"{r.arithmetic_intensity:.3g}", seconds(r.time_per_token_s),
             f"{r.tokens_per_s:.3g}", si(r.energy_per_token_j, "J"), _percent(r.data_movement_share)]
            for r in rows]
    if target is not None:
        headers.insert(9, f"BW for {args.target_ms:g} ms")
        for row, r in zip(body, rows, strict=True):
            row.insert(9, si(r.bytes_per_s_for_target, "B/s"))
    capacity = "capacity unknown" if hardware.memory_bytes is None else binary_bytes(hardware.memory_bytes)
    return _lines(*[
        f"decode, batch 1, {args.seq_len} tokens cached, on {hardware.display_name} "
        f"({si(hardware.memory_bytes_per_s, 'B/s')}, {capacity}); energy at the default coefficients "
        f"(llm-roofline energy)",
        "",
        table(headers, body, align="lrllr" + "r" * (len(headers) - 5)),
    ])


def _add_scaling(commands: Any) -> None:
    p = commands.add_parser("scaling", help="models side by side on one device: capacity, bandwidth, time, energy "
                                            "(exercise 2.7)")
    p.add_argument("--model", "-m", nargs="+", help="models (default llama-2-7b llama-2-70b)")
    _add_params_option(p, many=True)
    add_hardware_options(p, DEFAULT_EDGE_BIG)
    p.add_argument("--formats", nargs="+", default=["fp16", "int4"], help="weight formats (default fp16 int4)")
    p.add_argument("--seq-len", "-l", type=seq_len_arg, default=1024, help="tokens already cached (default 1024)")
    p.add_argument("--target-ms", type=target_ms, help="also show the bandwidth this time per token needs")
    add_number_format_options(p, weights=False)
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_scaling)


# --- whatif -------------------------------------------------------------------------------------

def _cmd_whatif(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import seconds, si
    from llm_roofline.faces.report.render import table
    from llm_roofline.features.studies.whatif import parse_change, what_if
    from llm_roofline.inputs.model_files import load_model

    model, hardware, workload = load_model(args.model), hardware_from_args(args), workload_from_args(args)
    changes = [change for text in args.vary for change in parse_change(text)]
    result = what_if(model, hardware, workload, changes)
    if args.format == "json":
        return dumps(result)
    rows = [[v.label, si(v.kv_cache_bytes, "B"), si(v.bytes, "B"), f"{v.arithmetic_intensity:.4g}",
             f"{v.attention_core_intensity:.4g}", seconds(v.time_s), f"{v.tokens_per_s:.4g}", v.bound,
             f"{v.kv_cache_ratio:.3g}", f"{v.bytes_ratio:.3g}", f"{v.intensity_ratio:.3g}",
             f"{v.attention_core_intensity_ratio:.3g}", f"{v.time_ratio:.3g}"]
            for v in (result.baseline, *result.variants)]
    length = f"prompt {workload.seq_len}" if workload.phase == "prefill" else f"{workload.seq_len} tokens cached"
    return _lines(*[
        f"{model.display_name or model.name} on {hardware.display_name}: {workload.phase}, batch {workload.batch}, "
        f"{length}; {_formats_line(workload)}",
        "(attn FLOP/B: the attention kernels alone, Q·Kᵀ + softmax + P·V or the fused kernel; × columns: ratio to "
        "the baseline)",
        "",
        table(["variant", "KV cache", "bytes", "FLOP/B", "attn FLOP/B", "time", "tokens/s", "bound", "KV ×",
               "bytes ×", "FLOP/B ×", "attn FLOP/B ×", "time ×"], rows, align="lrrrrrrlrrrrr"),
        "",
        "what each change moved, per step (− saved, + added):",
        *[f"  {v.label}: {v.changes}; " + _moved(v) for v in result.variants],
    ])


def _moved(variant: Any) -> str:
    """The nonzero changes of a what-if variant's bytes by category and of its FLOPs, largest first."""
    from llm_roofline.core.units import si

    parts = [(variant.weight_bytes_saved, "weights", "B"), (variant.kv_bytes_saved, "KV cache", "B"),
             (variant.activation_bytes_saved, "activations", "B"), (variant.flops_saved, "", "FLOP")]
    shown = [f"{'−' if saved > 0 else '+'}{si(abs(saved), unit)} {name}".rstrip()
             for saved, name, unit in sorted(parts, key=lambda p: -abs(p[0])) if abs(saved) > 0]
    return ", ".join(shown) if shown else "nothing"


def _add_whatif(commands: Any) -> None:
    from llm_roofline.features.studies.whatif import KNOBS

    p = commands.add_parser("whatif", help="one knob changed (GQA, FlashAttention, precision, ...), side by side")
    add_model_option(p)
    add_hardware_options(p, DEFAULT_HARDWARE)
    add_workload_options(p)
    p.add_argument("--vary", action="append", required=True, metavar="KNOB=V1[,V2...]",
                   help="a knob and its values, one variant each; knobs: " + ", ".join(KNOBS))
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_whatif)


# --- advise -------------------------------------------------------------------------------------

def _cmd_advise(args: argparse.Namespace) -> str:
    from llm_roofline.faces.report.render import advice_payload, table
    from llm_roofline.features.studies.advice import advise, rate
    from llm_roofline.inputs.model_files import load_model

    model, hardware, workload = load_model(args.model), hardware_from_args(args), workload_from_args(args)
    target = None if args.target_ms is None else args.target_ms * 1e-3
    advice = advise(model, hardware, workload, target)
    if args.format == "json":
        return json_text(advice_payload(advice))
    rows = [[lever.title, f"{lever.throughput_ratio:.3g}×", rate(lever.tokens_per_s), lever.bound,
             {True: "yes", False: "NO", None: "?"}[lever.fits], "yes" if lever.pays else "no"]
            for lever in advice.levers]
    share = advice.share_advice
    return _lines(*[
        f"{model.display_name or model.name} on {hardware.display_name}: {workload.phase}, batch {workload.batch}, "
        f"{workload.seq_len} tokens; {_formats_line(workload)}",
        "",
        *[f"- {sentence}" for sentence in advice.summary],
        f"- attention is {_percent(advice.attention_flop_share)} of attention + FFN FLOPs "
        f"({_percent(advice.attention_time_share)} of their time): {share.focus} ({', '.join(share.actions)})",
        "",
        "every lever tried (whatif, one knob each; ranked by tokens/s, those that pay first):",
        table(["lever", "tokens/s ×", "tokens/s", "bound", "fits", "pays"], rows, align="lrrlll"),
    ])


def _add_advise(commands: Any) -> None:
    p = commands.add_parser("advise", help="in plain words: what bounds it, does it fit, the changes that pay most "
                                           "(the web page's advice)")
    add_model_option(p)
    add_hardware_options(p, DEFAULT_HARDWARE)
    add_workload_options(p)
    p.add_argument("--target-ms", type=target_ms, help="a latency target per output token, in milliseconds "
                                                       "(judged as 'feasibility' does)")
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_advise)


# --- energy -------------------------------------------------------------------------------------

def _cmd_energy(args: argparse.Namespace) -> str:
    from llm_roofline.core.transformer import step_ops
    from llm_roofline.core.units import seconds, si
    from llm_roofline.features.studies.energy import load_energy_table, workload_energy
    from llm_roofline.inputs.model_files import load_model

    model, hardware, workload = load_model(args.model), hardware_from_args(args), workload_from_args(args)
    estimate = workload_energy(model, hardware, workload, args.memory_technology, args.dram_pj_per_byte)
    table_ = load_energy_table()
    if args.format == "json":
        out = to_json(estimate)
        assert isinstance(out, dict)  # a record becomes a JSON object
        out["coefficients"] = {
            "memory": None if args.dram_pj_per_byte else to_json(table_.memory_coefficient(args.memory_technology)),
            "arithmetic": {p: to_json(table_.flop_coefficient(p))
                           for p in sorted({op.math for op in step_ops(model, workload)})},
        }
        return json_text(out)
    e = estimate
    memory_source = ("user-given" if args.dram_pj_per_byte
                     else table_.memory_coefficient(args.memory_technology).source)
    flop = table_.flop_coefficient(workload.activation_format.math)
    length = f"prompt {workload.seq_len}" if workload.phase == "prefill" else f"{workload.seq_len} tokens cached"
    return _lines(*[
        f"{model.display_name or model.name} on {hardware.display_name}: {workload.phase}, batch {workload.batch}, "
        f"{length}; {_formats_line(workload)}",
        f"memory      {e.memory}: {e.dram_pj_per_byte:g} pJ/B  ({memory_source})",
        f"arithmetic  {flop.name}: {flop.picojoules:g} pJ/FLOP  ({flop.source})",
        "",
        f"data movement   {si(e.data_movement_j, 'J')} ({_percent(e.data_movement_share)}): weights "
        f"{si(e.weight_movement_j, 'J')}, KV cache {si(e.kv_movement_j, 'J')}, activations "
        f"{si(e.activation_movement_j, 'J')}  ({si(e.bytes, 'B')})",
        f"arithmetic      {si(e.arithmetic_j, 'J')} ({_percent(1 - e.data_movement_share)})  "
        f"({si(e.flops, 'FLOP')})",
        f"total           {si(e.total_j, 'J')} per step, {si(e.energy_per_token_j, 'J')} per token "
        f"({e.tokens} token{'s' if e.tokens != 1 else ''} per step)",
        f"power           {si(e.average_power_w, 'W')} at the roofline's {_maybe(e.time_s, seconds)} per step",
    ])


def _add_energy(commands: Any) -> None:
    p = commands.add_parser("energy", help="energy per token: data movement vs arithmetic, cited coefficients "
                                           "(exercise 2.7)")
    add_model_option(p)
    add_hardware_options(p, DEFAULT_HARDWARE)
    add_workload_options(p)
    p.add_argument("--memory-technology", help="memory entry of data/energy.toml (default dram-45nm; also "
                                               "sram-1mb-45nm)")
    p.add_argument("--dram-pj-per-byte", type=limited(float, limits.STUDY["dram_pj_per_byte"]),
                   help="a memory energy of your own, pJ per byte")
    add_format_option(p, OUTPUTS)
    p.set_defaults(run=_cmd_energy)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the studies' subcommands on the ``llm-roofline`` subparsers object."""
    for add in (_add_share, _add_transition, _add_timeline, _add_context, _add_requirements, _add_feasibility,
                _add_scaling, _add_whatif, _add_energy, _add_advise):
        add(commands)
