"""Deployment commands: ``formats``, ``gguf``, ``fit``, ``offload``, ``parallel``, ``speculative``.

Thin, like the rest of the CLI: parse, call ``deploy.py`` (or ``gguf.py``, ``formats.py``), format.
Every command has ``--format json`` with raw SI numbers under unit-suffixed keys.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Protocol

from llm_roofline.core import limits
from llm_roofline.faces.cli.main import (
    DEFAULT_HARDWARE,
    add_format_option,
    add_hardware_options,
    add_model_option,
    add_workload_options,
    batch_arg,
    fraction,
    hardware_from_args,
    json_text,
    limited,
    workload_from_args,
)

if TYPE_CHECKING:
    from llm_roofline.core.hardware import HardwareSpec
    from llm_roofline.core.models import ModelSpec
    from llm_roofline.core.transformer import Workload
    from llm_roofline.features.deploy import FitReport, Link


def _deployment_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("memory")
    group.add_argument("--overhead-gb", type=limited(float, limits.STUDY["overhead_bytes"], 1e9), default=0.5,
                       help="runtime overhead in GB (CUDA context, allocator slack; default 0.5)")
    group.add_argument("--prefill-chunk", type=limited(int, limits.STUDY["prefill_chunk_tokens"]), default=512,
                       help="prompt tokens processed per step, for peak activations (llama.cpp n_ubatch; default 512)")


def _link_options(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_argument_group("link", "the connection between devices")
    group.add_argument("--link-gb-s", type=limited(float, limits.STUDY["link_bytes_per_s"], 1e9), required=required,
                       help="link bandwidth in GB/s (1e9 B/s)")
    group.add_argument("--link-latency-us", type=limited(float, limits.STUDY["link_latency_s"], 1e-6), default=0.0,
                       help="latency of one message in microseconds (default 0)")


def _common(parser: argparse.ArgumentParser) -> None:
    add_model_option(parser)
    add_hardware_options(parser, DEFAULT_HARDWARE)
    add_workload_options(parser)


def _load(args: argparse.Namespace) -> tuple[ModelSpec, HardwareSpec, Workload]:
    from llm_roofline.inputs.model_files import load_model

    return load_model(args.model), hardware_from_args(args), workload_from_args(args)


def _link(args: argparse.Namespace) -> Link | None:
    from llm_roofline.features.deploy import Link

    if args.link_gb_s is None:
        return None
    return Link(args.link_gb_s * 1e9, args.link_latency_us * 1e-6)


class _Record(Protocol):
    def to_dict(self) -> dict[str, object]: ...


def _dump(record: _Record) -> str:
    return json_text(record.to_dict())


def _capacity(value: float | None) -> str:
    from llm_roofline.core.units import binary_bytes, si

    return "?" if value is None else f"{si(value, 'B')} ({binary_bytes(value)})"


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "unknown"}[value]


# --- formats ------------------------------------------------------------------------------------


def _cmd_formats(args: argparse.Namespace) -> str:
    from llm_roofline.core.formats import format_names, get_format
    from llm_roofline.core.quant import get_mix, get_recipe, mix_names, recipe_names
    from llm_roofline.faces.report.render import table

    formats = [get_format(name) for name in format_names()]
    mixes = [get_mix(name) for name in mix_names()]
    recipes = [get_recipe(name) for name in recipe_names()]
    if args.format == "json":
        return json_text({
            "formats": [{"name": f.name, "bits_per_element": f.bits_per_element,
                         "row_overhead_bits": f.row_overhead_bits, "column_overhead_bits": f.column_overhead_bits,
                         "math": f.math, "ggml_type": f.ggml_type, "source": f.source} for f in formats],
            "mixes": [{"name": m.name, "base": m.base.name, "more_bits": m.more_bits.name if m.more_bits else None,
                       "source": m.source} for m in mixes if m is not None],
        })
    rows = [[f.name, f"{f.bits_per_element:g}",
             f"+{f.row_overhead_bits:g}/row" if f.row_overhead_bits else (
                 f"+{f.column_overhead_bits:g}/column" if f.column_overhead_bits else ""),
             f.ggml_type or "", f.math] for f in formats]
    lines = [table(["format", "bits/weight", "overhead", "GGUF type", "math"], rows, align="lrllr")]
    lines.append("")
    lines.append("llama.cpp mixes (--weights): " + ", ".join(
        f"{m.name} (" + (f"{m.experts.name} experts, " if m.experts else "") + m.base.name
        + (f", {m.more_bits.name} for attn_v/ffn_down in half the layers" if m.more_bits else "")
        + (" elsewhere" if m.experts else "") + ")" for m in mixes if m is not None))
    lines.append("other engines' recipes (--weights): " + ", ".join(
        f"{r.name} ({r.linear.name} in the blocks, {r.embedding.name} embedding and output"
        + (", a tied table stored twice" if r.untied else "") + ")" for r in recipes if r is not None))
    return "\n".join(lines)


# --- gguf ---------------------------------------------------------------------------------------


def _cmd_gguf(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import si
    from llm_roofline.faces.report.render import table
    from llm_roofline.inputs.gguf import read_gguf_model

    info = read_gguf_model(args.path)
    if args.format == "json":
        return json_text(info.to_dict())
    model, header = info.model, info.header
    lines = [
        f"{header.path}: GGUF v{header.version}, {header.metadata.get('general.architecture')}, "
        f"file type {info.file_type}, {len(header.tensors)} tensors, {header.tensor_bytes:,} B of tensor data",
        f"model: {model.display_name} ({si(model.params, digits=4)} params"
        + (f", {si(model.active_params, digits=4)} active" if model.is_moe else "")
        + f"), {model.num_layers} layers, hidden {model.hidden_size}, heads {model.num_heads}/{model.num_kv_heads}"
        + (f", {model.num_experts} experts top-{model.experts_per_token}" if model.is_moe else ""),
        "",
    ]
    scheme = model.stored_weights
    rows = []
    if scheme is not None:
        for tensor in model.weight_tensors():
            fmt = scheme.format_for(tensor.role)
            nbytes = fmt.tensor_bytes(tensor.elements, tensor.rows, tensor.columns) * tensor.instances
            rows.append([tensor.role, fmt.name, f"{fmt.bits_per_element:.4g}", si(nbytes, "B", 4)])
    lines.append(table(["role", "stored as", "bits/weight", "bytes"], rows, align="llrr"))
    lines.append(f"weights in the cost model: {info.modelled_bytes:,} B")
    if info.unmodelled_tensors:
        lines.append(f"not in the cost model: {', '.join(info.unmodelled_tensors)} ({si(info.unmodelled_bytes, 'B')})")
    return "\n".join(lines)


# --- fit ----------------------------------------------------------------------------------------


def _cmd_fit(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import si
    from llm_roofline.features.deploy import fit

    model, hardware, workload = _load(args)
    report = fit(model, hardware, workload, args.overhead_gb * 1e9, args.prefill_chunk)
    if args.format == "json":
        return _dump(report)
    f = report.footprint
    context = (f"{report.max_context_tokens} tokens" if report.max_context_tokens else "none (does not fit)")
    if report.max_context_limited_by == "model" and report.max_context_tokens:
        context += " (the model's limit; memory allows more)"
    lines = [
        f"{model.display_name or model.name} on {hardware.display_name}: weights {report.weights}, "
        f"KV cache {workload.kv_format.name}, batch {report.batch}, context {report.context_tokens} tokens",
        f"weights               {si(f.weight_bytes, 'B')}",
        f"KV cache              {si(f.kv_cache_bytes, 'B')}",
        *([f"recurrent state       {si(f.state_bytes, 'B')}"] if f.state_bytes else []),
        f"activations (peak)    {si(f.activation_bytes, 'B')}",
        f"runtime overhead      {si(f.overhead_bytes, 'B')}",
        f"total                 {si(f.total_bytes, 'B')} of {_capacity(f.capacity_bytes)} usable: fits {_yes(f.fits)}",
        *_pressure_lines(report, hardware),
        f"max context           {context} at batch {report.batch}",
        f"max batch             {report.max_batch or 'none (does not fit)'} at {report.context_tokens} tokens",
    ]
    return "\n".join(lines)


def _pressure_lines(report: FitReport, hardware: HardwareSpec) -> list[str]:
    """What happens beyond the usable memory but within the physical one: the OS swaps, or the fallback runs."""
    from llm_roofline.core.units import si

    if not report.memory_pressure:
        return []
    f, split = report.footprint, report.fallback
    user = f"the {hardware.kind.upper()}" if hardware.usable_memory_scope == "accelerator" else "a program"
    lines = [f"memory pressure       needs {si(f.total_bytes, 'B')}: beyond the {_capacity(f.capacity_bytes)} the OS "
             f"lets {user} use, within the {_capacity(f.physical_memory_bytes)} of memory"]
    if split is None:
        return [*lines, "                      the OS swaps, or ends the program: not the roofline's speed"]
    layers = split.accelerator_layers + split.host_layers
    output = " + output" if split.output_on_accelerator else ""
    return [
        *lines,
        f"fallback              -ngl {split.gpu_layers}: {split.accelerator_layers} of {layers} layers{output} on the "
        f"{hardware.kind.upper()}, {split.host_layers} on the CPU: {split.tokens_per_s:.4g} tokens/s (expected "
        f"{split.expected_tokens_per_s:.3g}); or the OS swaps",
        f"fallback CPU          {split.host}" + (f", assumed: {report.fallback_host_assumed}"
                                                  if report.fallback_host_assumed else ""),
    ]


# --- offload ------------------------------------------------------------------------------------


def _cmd_offload(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import seconds, si
    from llm_roofline.features.deploy import offload_to_storage, split_layers
    from llm_roofline.inputs.device_files import load_hardware

    model, hardware, workload = _load(args)
    overhead = args.overhead_gb * 1e9
    if args.host is not None:
        host = load_hardware(args.host)
        split = split_layers(model, hardware, host, workload, args.gpu_layers, _link(args), overhead,
                             args.prefill_chunk)
        if args.format == "json":
            return _dump(split)
        return "\n".join([
            f"{model.display_name or model.name}, weights {split.weights}: -ngl {split.gpu_layers} = "
            f"{split.accelerator_layers} layers" + (" + output" if split.output_on_accelerator else "")
            + f" on {hardware.display_name}, {split.host_layers} layers on {host.display_name}",
            f"accelerator time      {seconds(split.accelerator_time_s)}",
            f"host time             {seconds(split.host_time_s)}",
            f"link time             {seconds(split.transfer_time_s)}",
            f"time per step         {seconds(split.time_s)}  ({split.tokens_per_s:.4g} tokens/s; expected "
            f"{seconds(split.expected_time_s)}, {split.expected_tokens_per_s:.4g} tokens/s)",
            f"accelerator memory    {si(split.accelerator_bytes, 'B')} of {_capacity(split.accelerator_capacity_bytes)}"
            f": fits {_yes(split.accelerator_fits)}",
            f"host memory           {si(split.host_bytes, 'B')} of {_capacity(split.host_capacity_bytes)}"
            f": fits {_yes(split.host_fits)}",
        ])
    bandwidth = None if args.storage_gb_s is None else args.storage_gb_s * 1e9
    result = offload_to_storage(model, hardware, workload, bandwidth, overhead, args.prefill_chunk)
    if args.format == "json":
        return _dump(result)
    lines = [
        f"{model.display_name or model.name} on {hardware.display_name}, weights {result.weights}: needs "
        f"{si(result.footprint.total_bytes, 'B')}, {_capacity(result.footprint.capacity_bytes)} usable",
        f"resident layers       {result.resident_layers} of {model.num_layers}",
        f"streamed per step     {si(result.streamed_bytes, 'B')} at {si(result.storage_bytes_per_s, 'B/s')}",
        f"roofline time         {seconds(result.roofline_time_s)}",
        f"storage time          {seconds(result.storage_time_s)}",
        f"time per step         {seconds(result.time_s)}  ({result.tokens_per_s:.4g} tokens/s; perfect prefetch: "
        f"{seconds(result.overlapped_time_s)}, {result.overlapped_tokens_per_s:.4g} tokens/s)",
    ]
    if not result.feasible:
        lines.append("the KV cache, activations and embeddings alone exceed the usable memory")
    return "\n".join(lines)


# --- parallel -----------------------------------------------------------------------------------


def _cmd_parallel(args: argparse.Namespace) -> str:
    from llm_roofline.core.units import seconds, si
    from llm_roofline.faces.report.render import table
    from llm_roofline.features.deploy import pipeline_parallel, tensor_parallel

    model, hardware, workload = _load(args)
    link, overhead = _link(args), args.overhead_gb * 1e9
    assert link is not None  # parallel requires --link-gb-s
    results: dict[str, Any] = {}
    if args.mode in ("tp", "both"):
        results["tensor_parallel"] = tensor_parallel(model, hardware, workload, args.devices, link, overhead,
                                                     args.prefill_chunk)
    if args.mode in ("pp", "both"):
        results["pipeline_parallel"] = pipeline_parallel(model, hardware, workload, args.devices, link,
                                                         args.micro_batches, overhead, args.prefill_chunk)
    if args.format == "json":
        return json_text({key: value.to_dict() for key, value in results.items()})
    rows = []
    tp, pp = results.get("tensor_parallel"), results.get("pipeline_parallel")
    if tp is not None:
        rows.append(["tensor", seconds(tp.compute_time_s), seconds(tp.communication_time_s), seconds(tp.time_s),
                     f"{tp.tokens_per_s:.4g}", si(tp.footprint_per_device.total_bytes, "B"),
                     _yes(tp.footprint_per_device.fits)])
    if pp is not None:
        rows.append(["pipeline", seconds(max(stage.time_s for stage in pp.stages)), seconds(pp.hop_time_s),
                     seconds(pp.time_s), f"{pp.tokens_per_s:.4g}",
                     si(max(stage.memory_bytes for stage in pp.stages), "B"), _yes(pp.fits)])
    link_text = f"{si(link.bytes_per_s, 'B/s')}, {seconds(link.latency_s) if link.latency_s else 'no'} latency"
    lines = [
        f"{model.display_name or model.name} on {args.devices} x {hardware.display_name} ({link_text}): "
        f"{workload.phase}, batch {workload.batch}, weights {workload.weight_scheme(model).name}",
        "",
        table(["parallelism", "compute", "communication", "time per step", "tokens/s", "memory per device", "fits"],
              rows, align="lrrrrrr"),
    ]
    if tp is not None:
        lines.append(f"tensor: {tp.all_reduces} all-reduces of {si(tp.all_reduce_bytes, 'B')} per step; "
                     f"one device alone: {seconds(tp.single_device_time_s)}")
    if pp is not None:
        lines.append(f"pipeline: {pp.devices} stages x {pp.micro_batches} micro-batches, bubble "
                     f"{100 * pp.bubble_fraction:.1f}%; decode with the pipe kept full: "
                     f"{pp.steady_decode_tokens_per_s:.4g} tokens/s")
    return "\n".join(lines)


# --- speculative --------------------------------------------------------------------------------


def _cmd_speculative(args: argparse.Namespace) -> str:
    from dataclasses import replace

    from llm_roofline.core.units import seconds
    from llm_roofline.features.deploy import required_acceptance_rate, speculative_decoding
    from llm_roofline.inputs.model_files import load_model

    target, hardware, workload = _load(args)
    draft = load_model(args.draft)
    draft_workload = replace(workload, weights=args.draft_weights)
    result = speculative_decoding(target, draft, hardware, workload, args.draft_tokens, args.acceptance,
                                  draft_workload)
    needed = None
    if args.target_ms is not None:
        needed = required_acceptance_rate(target, draft, hardware, workload, args.draft_tokens,
                                          args.target_ms * 1e-3, draft_workload)
    if args.format == "json":
        out = {"speculative": result.to_dict()}
        if needed is not None:
            out["acceptance_needed"] = needed.to_dict()
        return json_text(out)
    lines = [
        f"{target.display_name or target.name} drafted by {draft.display_name or draft.name} on "
        f"{hardware.display_name}: gamma = {result.draft_tokens}, alpha = {result.acceptance_rate:g}",
        f"tokens per target pass  {result.tokens_per_target_pass:.4g}  ((1 - alpha^(gamma+1)) / (1 - alpha))",
        f"draft step              {seconds(result.draft_step_time_s)}",
        f"target step             {seconds(result.target_step_time_s)}  (1 token)",
        f"target verification     {seconds(result.verify_time_s)}  ({result.draft_tokens + 1} tokens)",
        f"time per token          {seconds(result.time_per_token_s)}  (gamma draft steps + 1 verification, "
        f"/ {result.tokens_per_target_pass:.4g})",
        f"speedup                 {result.speedup:.3g}x over plain decode",
    ]
    if needed is not None:
        reach = (f"alpha >= {needed.acceptance_rate:.4f}" if needed.acceptance_rate is not None
                 else f"unreachable with gamma = {needed.draft_tokens} (needs {needed.tokens_per_pass_needed:.3g} "
                      f"tokens per pass)")
        lines.append(f"for {seconds(needed.target_time_per_token_s)} per token: {reach}")
    return "\n".join(lines)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the deployment subcommands on the CLI's subparsers object."""
    formats = commands.add_parser("formats", help="number formats (bits per weight, scales included) and llama.cpp "
                                                  "mixes")
    add_format_option(formats, ("table", "json"))
    formats.set_defaults(run=_cmd_formats)

    gguf = commands.add_parser("gguf", help="what a GGUF file holds: the model and each tensor role's format")
    gguf.add_argument("path", help="a .gguf file (only its header is read)")
    add_format_option(gguf, ("table", "json"))
    gguf.set_defaults(run=_cmd_gguf)

    fit = commands.add_parser("fit", help="memory footprint, fit, and the largest context and batch that fit")
    _common(fit)
    _deployment_options(fit)
    add_format_option(fit, ("table", "json"))
    fit.set_defaults(run=_cmd_fit)

    offload = commands.add_parser("offload", help="run a model that does not fit: stream layers from storage, or "
                                                  "split them with the CPU (llama.cpp -ngl)")
    _common(offload)
    offload.add_argument("--storage-gb-s", type=limited(float, limits.DEVICE["memory_bytes_per_s"], 1e9),
                         help="storage read bandwidth in GB/s (default: the device's storage_bytes_per_s)")
    offload.add_argument("--host", help="host CPU device: split layers between --hardware and this device")
    offload.add_argument("--gpu-layers", "-ngl", type=limited(int, limits.STUDY["gpu_layers"]),
                         help="llama.cpp -ngl: layers on the accelerator, the output layer counted "
                              "(default: as many as fit)")
    _link_options(offload, required=False)
    _deployment_options(offload)
    add_format_option(offload, ("table", "json"))
    offload.set_defaults(run=_cmd_offload)

    parallel = commands.add_parser("parallel", help="tensor or pipeline parallelism over N devices and a link")
    _common(parallel)
    parallel.add_argument("--devices", "-n", type=limited(int, limits.STUDY["devices"]), required=True,
                          help="number of devices")
    parallel.add_argument("--mode", choices=("tp", "pp", "both"), default="both",
                          help="tensor (tp) or pipeline (pp) parallelism (default both)")
    parallel.add_argument("--micro-batches", type=batch_arg, default=1,
                          help="pipeline micro-batches; divides --batch (default 1)")
    _link_options(parallel, required=True)
    _deployment_options(parallel)
    add_format_option(parallel, ("table", "json"))
    parallel.set_defaults(run=_cmd_parallel)

    speculative = commands.add_parser("speculative", help="speculative decoding: draft + target, speedup and the "
                                                          "acceptance rate a latency target needs")
    _common(speculative)
    speculative.add_argument("--draft", required=True, help="draft model (name, config.json or .gguf)")
    speculative.add_argument("--draft-weights", default=None,
                             help="draft weight format (default: the draft's own, fp16 for a config.json)")
    speculative.add_argument("--draft-tokens", "-g", type=limited(int, limits.STUDY["draft_tokens"]._replace(low=1)),
                             default=4,
                             help="tokens drafted per cycle, gamma (default 4)")
    speculative.add_argument("--acceptance", type=fraction, default=0.7,
                             help="probability the target accepts a drafted token, alpha (default 0.7)")
    speculative.add_argument("--target-ms", type=limited(float, limits.STUDY["time_per_token_s"], 1e-3),
                             help="time per token to reach, in ms: prints the acceptance rate it needs")
    add_format_option(speculative, ("table", "json"))
    speculative.set_defaults(run=_cmd_speculative)
