"""``llm-roofline validate`` and ``llm-roofline calibrate``: predictions against measurements.

``validate FILE...`` predicts every measured row (prefill and decode tokens/s) of the files (a folder:
its ``*.csv`` files) with the roofline bound and the efficiency model, and reports the errors, per
backend, and the rows it misses most with the term that dominates their expected time;
``--cross-validate family`` (``source``, ``both``) fits the class defaults without each device family
(or source) in turn and predicts it. ``calibrate FILE...`` fits the efficiency parameters of one
device from its measurements and writes a device profile that ``--hardware FILE`` loads
(``--by-class`` refits the shipped class defaults instead). Parsing and formatting only: the work is in
``validation.py`` and ``efficiency.py``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli.main import (
    add_format_option,
    add_hardware_options,
    hardware_from_args,
    json_text,
    non_negative_int,
)

if TYPE_CHECKING:
    from llm_roofline.features.fidelity.validation import Miss, Prediction, Skip
    from llm_roofline.inputs.measurements import Measurement

DEFAULT_WORST = 10
INPUTS_HELP = "measurements: calibration CSV or llama-bench -o json/csv files, or folders (every *.csv in them)"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``validate`` and ``calibrate`` on the CLI's subparsers."""
    validate = commands.add_parser(
        "validate", help="predict measured prefill/decode speeds (calibration CSV or llama-bench output) and "
                         "report the errors of the roofline bound and of the expectation",
        description="Read measurements (the calibration CSV schema, or llama-bench -o json/csv), map each row to a "
                    "model, a weight format and a device, predict its prefill and decode tokens/s, and report "
                    "per row and in summary the absolute percentage errors (median, 90th percentile) of the "
                    "roofline bound and of the efficiency model's expectation, per backend.")
    validate.add_argument("files", metavar="FILE", nargs="+", help=INPUTS_HELP)
    validate.add_argument("--cross-validate", choices=("family", "source", "both"), default=None,
                          help="leave one device family (or source) out: fit the class defaults on the others, "
                               "predict the one left out; both: each grouping in turn")
    validate.add_argument("--worst", type=non_negative_int, default=DEFAULT_WORST, metavar="N",
                          help=f"the N rows the expectation misses most, with the term that dominates their "
                               f"expected time (default {DEFAULT_WORST}; 0: none)")
    validate.add_argument("--model", "-m", default=None,
                          help="the model of every row (a name, config.json or .gguf), instead of each row's own")
    validate.add_argument("--no-rows", action="store_true", help="the summary only, not every row")
    add_hardware_options(validate, None)
    add_format_option(validate, ("table", "json"))
    validate.set_defaults(run=_cmd_validate)

    calibrate = commands.add_parser(
        "calibrate", help="fit one device's efficiency parameters from your measurements and save a device "
                          "profile for --hardware",
        description="Fit the efficiency model (fractions of bandwidth and compute, dequantization factor, per-op "
                    "and per-step overheads) to measurements of one device: the calibration CSV schema, or "
                    "llama-bench -o json/csv. The class defaults are the prior, so a parameter the measurements "
                    "cannot pin down stays near its default. --save writes a device profile (the device's "
                    "figures and an [efficiency] table) that --hardware FILE loads.")
    calibrate.add_argument("files", metavar="FILE", nargs="+", help=INPUTS_HELP)
    calibrate.add_argument("--model", "-m", default=None,
                           help="the model of every row (a name, config.json or .gguf), instead of each row's own")
    calibrate.add_argument("--kind", choices=("gpu", "cpu", "npu"), default=None,
                           help="the device's class (default: the device's own kind; for figures given as flags, "
                                "the backend the measurements name)")
    calibrate.add_argument("--name", default=None, help="the saved profile's name (default <device>-calibrated)")
    calibrate.add_argument("--save", metavar="FILE", default=None,
                           help="write the profile (.toml or .json) atomically; with --by-class, the defaults table")
    calibrate.add_argument("--by-class", action="store_true",
                           help="fit the defaults of every device class on all rows (how data/efficiency.toml is made)")
    add_hardware_options(calibrate, None)
    add_format_option(calibrate, ("table", "json"))
    calibrate.set_defaults(run=_cmd_calibrate)


# --- validate ---------------------------------------------------------------------------------------

def _load_cases(args: argparse.Namespace) -> tuple[list[Prediction], list[Skip], dict[str, int]]:
    """The predictions and skips of every row of the inputs, and each file read with its number of rows."""
    from llm_roofline.features.fidelity.validation import predict, read_case, read_measurement_files
    from llm_roofline.inputs.model_files import load_model

    measurements, per_file = read_measurement_files(args.files)
    wants_device = args.hardware or args.bandwidth_gb_s or args.peak_tflops
    hardware = hardware_from_args(args) if wants_device else None
    if hardware is not None and getattr(args, "kind", None):
        from dataclasses import replace

        hardware = replace(hardware, kind=args.kind)
    model = load_model(args.model) if args.model else None
    predictions, skipped = predict([read_case(m, hardware, model) for m in measurements])
    return predictions, skipped, per_file


def _inputs_label(per_file: dict[str, int]) -> str:
    """The files read, for a header: one file by its path; several with their numbers of rows."""
    if len(per_file) == 1:
        return next(iter(per_file))
    return ", ".join(f"{file} ({rows} rows)" for file, rows in per_file.items())


class _RowLabels:
    """A measurement's row as the tables show it: its number; with several files, after its file's name (the
    path when two files share a name), and the column then aligned left."""

    def __init__(self, per_file: dict[str, int]) -> None:
        names = [Path(file).name for file in per_file]
        self.several = len(per_file) > 1
        self.by_name = len(set(names)) == len(names)
        self.align = "l" if self.several else "r"

    def __call__(self, m: Measurement) -> str:
        from llm_roofline.features.fidelity.validation import measurement_file

        if not self.several:
            return str(m.row)
        file = measurement_file(m)
        return f"{Path(file).name if self.by_name else file}:{m.row}"


@dataclass(frozen=True, slots=True)
class _Report:
    """One way of predicting the rows (in-sample, or cross-validated by one grouping), and its findings."""

    grouping: str | None  # None: in-sample
    method: str
    predictions: list[Prediction]
    summary: dict[str, Any]
    folds: dict[str, Any] | None
    worst: list[Miss]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "summary": self.summary,
                               "rows": [p.to_dict() for p in self.predictions],
                               "worst": [{**miss.to_dict(), "reason": _miss_reason(miss)} for miss in self.worst]}
        if self.folds is not None:
            out["folds"] = self.folds
        return out


def _report(grouping: str | None, predictions: list[Prediction], rows: int, worst: int) -> _Report:
    from llm_roofline.features.fidelity.validation import cross_validate, summary, worst_predictions

    folds = None
    if grouping is not None:
        predictions, folds = cross_validate(predictions, grouping)
    method = (f"cross-validated: class defaults fitted without each {grouping}, applied to it" if grouping
              else "each device's efficiency parameters (its class defaults unless calibrated)")
    return _Report(grouping, method, predictions, summary(predictions, rows), folds,
                   worst_predictions(predictions, worst))


def _cmd_validate(args: argparse.Namespace) -> str:
    from llm_roofline.features.fidelity.validation import CV_GROUPS

    predictions, skipped, per_file = _load_cases(args)
    rows = sum(per_file.values())
    groupings: tuple[str | None, ...] = CV_GROUPS if args.cross_validate == "both" else (args.cross_validate,)
    reports = [_report(grouping, predictions, rows, args.worst) for grouping in groupings]
    row_label = _RowLabels(per_file)
    if args.format == "json":
        out: dict[str, Any] = {"file": ", ".join(args.files),
                               "files": [{"path": file, "rows": n} for file, n in per_file.items()],
                               **reports[0].to_dict(), "skipped": [s.to_dict() for s in skipped]}
        if args.cross_validate:
            out["cross_validation"] = {report.grouping: report.to_dict() for report in reports}
        return json_text(out)
    return _validate_text(per_file, reports, skipped, row_label, show_rows=not args.no_rows)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _validate_text(per_file: dict[str, int], reports: list[_Report], skipped: list[Skip], row_label: _RowLabels,
                   show_rows: bool) -> str:
    from llm_roofline.faces.report.render import table

    result = reports[0].summary
    predicted = len(reports[0].predictions)
    lines = [f"{_inputs_label(per_file)}: {result['rows']} rows, {result['rows_used']} used, "
             f"{result['rows_skipped']} skipped; {predicted} predictions (prefill {result['prefill']['n']}, "
             f"decode {result['decode']['n']})", ""]
    if skipped:
        lines += ["skipped:", *(f"  row {row_label(s.measurement)} ({s.phase}): {s.reason}" for s in skipped), ""]
    for report in reports:
        lines += [f"expectation: {report.method}", ""]
        if show_rows:
            body = [[row_label(p.case.measurement), p.case.measurement.hardware, p.case.model.name,
                     p.case.workload(p.phase).weights_label, p.phase, f"{p.measured_tokens_per_s:.4g}",
                     f"{p.bound_tokens_per_s:.4g}", f"{p.expected_tokens_per_s:.4g}", _percent(p.bound_ape),
                     _percent(p.expected_ape)] for p in report.predictions]
            lines += [table(["row", "device", "model", "weights", "phase", "measured tok/s", "bound", "expected",
                             "bound err", "expected err"], body, align=f"{row_label.align}llllrrrrr"), ""]
        if report.folds is not None:
            lines += ["folds (the group left out: its predictions, and the fitted class parameters used for it):",
                      table(["left out", "n", "class", "bandwidth eff", "compute eff", "dequant", "per op",
                             "per step"],
                            [[group, fold["n"], kind, f"{p['bandwidth_efficiency']:.3f}",
                              f"{p['compute_efficiency']:.3f}", f"{p['dequant_compute_factor']:.3f}",
                              _micro(p["overhead_per_op_s"]), _micro(p["overhead_per_step_s"])]
                             for group, fold in report.folds.items() for kind, p in fold["params"].items()],
                            align="lrlrrrrr"), ""]
        lines += ["absolute percentage error (median / 90th percentile) of tokens/s; bias: the median of expected / "
                  "measured - 1 (above 0: the expectation too fast):", _summary_table(report.summary), ""]
        if formats := _formats_table(report.summary):
            lines += [f"by weight format (those with {_FORMAT_MIN_N} or more predictions in a phase):", formats, ""]
        if report.worst:
            lines += [*_worst_text(report.worst, row_label), ""]
    return "\n".join(lines).rstrip("\n")


def _micro(seconds_value: float) -> str:
    from llm_roofline.core.units import seconds

    return seconds(seconds_value) if seconds_value else "0"


def _summary_table(result: dict[str, Any]) -> str:
    from llm_roofline.faces.report.render import table

    rows = []
    groups = [("all", result)] + [(backend.upper(), part) for backend, part in result["by_backend"].items()]
    for label, part in groups:
        for phase in ("prefill", "decode"):
            if not part[phase]["n"]:
                continue
            rows.append([label, phase, part[phase]["n"], _percent(part["bound"][phase]["median_ape"]),
                         _percent(part["bound"][phase]["p90_ape"]), _percent(part[phase]["median_ape"]),
                         _percent(part[phase]["p90_ape"]), _signed_percent(part[phase]["median_signed_error"])])
    return table(["backend", "phase", "n", "bound median", "bound p90", "expected median", "expected p90",
                  "expected bias"], rows, align="llrrrrrr")


_FORMAT_MIN_N = 3  # a format's figures over fewer predictions say little


def _formats_table(result: dict[str, Any]) -> str:
    """Per weight format and phase: the expectation's median and 90th-percentile error and its bias, for
    the formats with at least ``_FORMAT_MIN_N`` predictions in the phase; "" when none has."""
    from llm_roofline.faces.report.render import table

    rows = [[label, phase, part[phase]["n"], _percent(part[phase]["median_ape"]), _percent(part[phase]["p90_ape"]),
             _signed_percent(part[phase]["median_signed_error"])]
            for label, part in result.get("by_weights", {}).items() for phase in ("prefill", "decode")
            if part[phase]["n"] >= _FORMAT_MIN_N]
    return table(["weights", "phase", "n", "median", "p90", "bias"], rows, align="llrrrr") if rows else ""


def _signed_percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:+.1f}%"


# --- the rows it misses most ------------------------------------------------------------------------

_TERM_COLUMNS = {"memory": "memory", "compute": "compute", "dequant": "dequant", "kernel_overhead": "kernels",
                 "step_overhead": "per step"}


def _worst_text(worst: list[Miss], row_label: _RowLabels) -> list[str]:
    from llm_roofline.core.units import seconds
    from llm_roofline.faces.report.render import table

    body = []
    for miss in worst:
        p, m = miss.prediction, miss.prediction.case.measurement
        shares = miss.terms.shares()
        body.append([row_label(m), m.hardware, p.case.model.name, p.case.workload(p.phase).weights_label, p.phase,
                     f"{p.measured_tokens_per_s:.4g}", f"{p.expected_tokens_per_s:.4g}", f"{p.bound_tokens_per_s:.4g}",
                     _percent(p.expected_ape), f"{100 * p.measured_tokens_per_s / p.bound_tokens_per_s:.0f}%",
                     seconds(miss.terms.expected_time_s),
                     *(f"{100 * shares[term]:.0f}%" if shares[term] else "0" for term in _TERM_COLUMNS)])
    headers = ["row", "device", "model", "weights", "phase", "measured tok/s", "expected", "bound", "error",
               "of bound", "expected step", *_TERM_COLUMNS.values()]
    which = f"the {len(worst)} predictions" if len(worst) > 1 else "the prediction"
    return [f"{which} it misses most (error: of the expected tokens/s; of bound: measured / bound; then each "
            "term's share of the expected step time):",
            table(headers, body, align=f"{row_label.align}llllrrrrrr" + "r" * len(_TERM_COLUMNS)),
            "why:", *(f"  row {row_label(miss.prediction.case.measurement)} {_miss_reason(miss)}" for miss in worst)]


def _share(fraction: float) -> str:
    return f"{100 * fraction:.0f} %"


def _miss_reason(miss: Miss) -> str:
    """One line: the phase, the term that dominates the expected time and its share, and what the
    measurement says about it (a ceiling too low; or the value that term's parameter would need)."""
    from llm_roofline.core.units import seconds

    p, terms = miss.prediction, miss.terms
    eta_m, eta_c, dequant, per_op, per_step = p.params.values()
    roof = f"the {p.peak_precision} roof" if p.peak_precision else "the compute roof"
    dominant = terms.dominant
    what = {
        "memory": f"memory at {_share(eta_m)} of the bandwidth",
        "compute": f"compute at {_share(eta_c)} of {roof}",
        "dequant": f"unpacking quantized weights (compute at {_share(eta_c * dequant)} of {roof}, not "
                   f"{_share(eta_c)})",
        "kernel_overhead": f"kernel overheads ({terms.kernels} kernels × {seconds(per_op)})",
        "step_overhead": f"the per-step overhead ({seconds(per_step)})",
    }[dominant]
    head = f"{p.phase}: {_share(terms.shares()[dominant])} {what}"
    if miss.above_bound:
        integer_math = any(p.cost.dequantizes) and not p.peak_precision.startswith("int")
        ceiling = {
            "memory": "the bandwidth figure is too low, or the step reads fewer bytes than counted",
            "compute": f"{roof} is too low" + (": the engine may multiply the quantized weights on int8 units"
                                               if integer_math else ""),
        }.get(dominant if dominant != "dequant" else "compute", "a ceiling is too low")
        return (f"{head}; measured above the roofline bound ({p.measured_tokens_per_s:.4g} > "
                f"{p.bound_tokens_per_s:.4g} tokens/s): no efficiency explains it, {ceiling}")
    slower = p.expected_tokens_per_s < p.measured_tokens_per_s
    verdict = f"expected {_share(p.expected_ape)} {'slower' if slower else 'faster'} than measured"
    scale = miss.dominant_scale
    if scale is None:
        others_s = terms.expected_time_s - terms.by_term()[dominant]
        return (f"{head}; {verdict}: the other terms alone take {seconds(others_s)}, the measured step "
                f"{seconds(miss.measured_time_s)}")
    needed, efficiency = {
        "memory": (f"{_share(eta_m / scale)} of the bandwidth", eta_m / scale),
        "compute": (f"{_share(eta_c / scale)} of {roof}", eta_c / scale),
        "dequant": (f"{scale:.2g} × the unpacking cost", 0.0),
        "kernel_overhead": (f"{seconds(per_op * scale)} per kernel", 0.0),
        "step_overhead": (f"{seconds(per_step * scale)} per step", 0.0),
    }[dominant]
    beyond = ", above the roof: another term is overestimated" if efficiency > 1 else ""
    return f"{head}; {verdict}: the measurement implies {needed} (the other terms held{beyond}){_super_blocks(p)}"


def _super_blocks(p: Prediction) -> str:
    """A clause for an expectation too fast on weights in super-blocks, whose unpacking is not priced by format."""
    if p.expected_tokens_per_s <= p.measured_tokens_per_s or not p.unpacks_super_blocks:
        return ""
    return ("; its weights are in 256-weight super-blocks (K-quants, i-quants), whose unpacking the model prices "
            "as a 32-weight block's: such rows are expected too fast (their bias: `by weight format` above and "
            "docs/validation.md, section 3)")



# --- calibrate --------------------------------------------------------------------------------------

def _cmd_calibrate(args: argparse.Namespace) -> str:
    from llm_roofline.inputs.files import check_profile_path

    if args.save:
        check_profile_path(args.save, "--save")
    if args.by_class:
        return _calibrate_classes(args)
    return _calibrate_device(args)


def _calibrate_device(args: argparse.Namespace) -> str:
    from dataclasses import replace

    from llm_roofline.core.efficiency import default_params, params_for
    from llm_roofline.features.fidelity.fitting import fit_params

    predictions, skipped, per_file = _load_cases(args)
    rows = sum(per_file.values())
    inputs = ", ".join(args.files)
    if not predictions:
        reasons = "; ".join(sorted({s.reason for s in skipped}))
        raise InputError(f"{inputs}: no measurement could be predicted ({reasons})")
    devices = sorted({p.case.hardware.name for p in predictions})
    if len(devices) > 1:
        raise InputError(f"{inputs}: the measurements describe {len(devices)} devices ({', '.join(devices)}); "
                         f"calibrate fits one: give --hardware, or split the file")
    device = predictions[0].case.hardware
    kinds = {p.case.measurement.backend for p in predictions}
    if args.kind:
        device = replace(device, kind=args.kind)
    elif device.source == "user-given figures" and len(kinds) == 1:
        device = replace(device, kind=kinds.pop())
    prior = default_params(device.kind)
    before = [p.with_params(params_for(device)) for p in predictions]
    prefill = sum(p.phase == "prefill" for p in predictions)
    source = (f"fitted by {shlex.join(['llm-roofline', 'calibrate', *args.files])} on {len(predictions)} measured "
              f"steps (prefill {prefill}, decode {len(predictions) - prefill}); prior: the {device.kind} class "
              f"defaults")
    fitted = fit_params([p.observation() for p in predictions], prior=prior, source=source)
    after = [p.with_params(fitted) for p in predictions]
    name = args.name or f"{device.name}-calibrated"
    saved = None
    if args.save:
        profile = _profile_dict(args, device, name, fitted)
        _write_atomically(args.save, profile)
        saved = args.save
    if args.format == "json":
        return json_text({
            "device": device.name, "class": device.kind, "prior": prior.to_dict(), "fitted": fitted.to_dict(),
            "rows": rows, "skipped": [s.to_dict() for s in skipped],
            "measurements": [{**b.to_dict(), "expected_tokens_per_s_before": b.expected_tokens_per_s,
                              "expected_tokens_per_s": a.expected_tokens_per_s, "expected_ape": a.expected_ape}
                             for b, a in zip(before, after, strict=True)],
            "saved": None if saved is None else {"path": saved, "name": name},
        })
    return _calibrate_text(_inputs_label(per_file), _RowLabels(per_file), device, prior, fitted, before, after,
                           skipped, saved, name)


def _calibrate_text(file: str, row_label: _RowLabels, device: Any, prior: Any, fitted: Any, before: list[Any],
                    after: list[Any], skipped: list[Any], saved: str | None, name: str) -> str:
    from llm_roofline.core.hardware import PARAMETERS
    from llm_roofline.faces.report.render import table

    def shown(parameter: str, value: float) -> str:
        return _micro(value) if parameter.startswith("overhead") else f"{value:.3f}"

    lines = [f"{file}: {len(before)} measured steps on {device.display_name} ({device.kind} class); "
             f"{len(skipped)} skipped", ""]
    lines.append(table(["parameter", f"{device.kind} default (prior)", "fitted"],
                       [[parameter, shown(parameter, getattr(prior, parameter)),
                         shown(parameter, getattr(fitted, parameter))] for parameter in PARAMETERS], align="lrr"))
    lines.append("")
    lines.append(table(["row", "model", "weights", "phase", "measured tok/s", "bound", "default expected", "fitted",
                        "error"],
                       [[row_label(b.case.measurement), b.case.model.name, b.case.workload(b.phase).weights_label,
                         b.phase, f"{b.measured_tokens_per_s:.4g}", f"{b.bound_tokens_per_s:.4g}",
                         f"{b.expected_tokens_per_s:.4g}", f"{a.expected_tokens_per_s:.4g}", _percent(a.expected_ape)]
                        for b, a in zip(before, after, strict=True)], align=f"{row_label.align}lllrrrrr"))
    for s in skipped:
        lines.append(f"skipped row {row_label(s.measurement)} ({s.phase}): {s.reason}")
    if saved:
        lines += ["", f"saved {saved} (name {name}): use it as --hardware {saved}"]
    return "\n".join(lines)


def _profile_dict(args: argparse.Namespace, device: Any, name: str, fitted: Any) -> dict[str, Any]:
    """The device profile to save: a device file given as --hardware, kept as it is (a measured profile's
    extra tables included) with the efficiency table set; otherwise the device's own fields."""
    from llm_roofline.inputs.device_files import device_file_data
    from llm_roofline.inputs.reading import path_kind

    path = Path(args.hardware) if args.hardware else None
    if path is not None and path.suffix.lower() in (".toml", ".json") and path_kind(path) == "file":
        data = device_file_data(path, "hardware file", "--hardware")
        changes = {k: v for k, v in device.to_dict().items()
                   if k in ("memory_bytes_per_s", "peak_flops_per_s", "memory_bytes", "kind")}
        data |= changes
    else:
        data = {k: v for k, v in device.to_dict().items() if v is not None}
        data["display_name"] = f"{device.display_name} (calibrated)"
    data["name"] = name
    data["efficiency"] = fitted.to_dict()
    return data


def _write_atomically(path_text: str, data: dict[str, Any]) -> None:
    """Write TOML or JSON through a temporary file in the same folder and a rename: never half a file.

    What is written is first loaded back as a device (refuse to write what --hardware would not load).
    """
    from llm_roofline.core.hardware import hardware_from_dict
    from llm_roofline.inputs.files import toml_text, write_text_atomically

    path = Path(path_text)
    is_json = path.suffix.lower() == ".json"
    text = json_text(data) + "\n" if is_json else toml_text(data)
    if "class" not in data:
        hardware_from_dict(json.loads(text) if is_json else tomllib.loads(text), str(path))
    write_text_atomically(path, text, "--save")


def _calibrate_classes(args: argparse.Namespace) -> str:
    from llm_roofline.core.hardware import PARAMETERS
    from llm_roofline.features.fidelity.validation import MIN_CLASS_OBSERVATIONS, MIN_ENGINE_OBSERVATIONS, fit_defaults

    predictions, skipped, per_file = _load_cases(args)
    rows = sum(per_file.values())
    inputs = ", ".join(args.files)
    if not predictions:
        raise InputError(f"{inputs}: no measurement could be predicted")
    defaults = fit_defaults(predictions)
    fitted = defaults.classes
    command = shlex.join(["llm-roofline", "calibrate", *args.files, "--by-class"]
                         + (["--save", args.save] if args.save else []))
    table_data: dict[str, Any] = {
        "source": f"fitted on {inputs}: published measurements (llama.cpp, MLC, ExecuTorch, MediaPipe/LiteRT, Core ML, "
                  f"QNN), each row citing its own source ({rows} rows, {len(predictions)} measured steps)",
        "command": command,
        "fit": ("pseudo-Huber loss (scale 0.1) of log(expected / measured) over every measured step of the class; "
                f"a class with fewer than {MIN_CLASS_OBSERVATIONS} steps gets the pooled fit of all steps; "
                f"then each engine (data/engines.toml) with at least {MIN_ENGINE_OBSERVATIONS} steps measured with "
                "it, on those steps, its class's figures as the prior (an engine of several kinds of unit: per kind, "
                "as engine/kind); deterministic grid + simplex search (fitting.fit_params)"),
        "class": {kind: {**{p: getattr(params, p) for p in PARAMETERS}, "basis": params.source}
                  for kind, params in fitted.items()},
        "engine": {name: {**{p: getattr(params, p) for p in PARAMETERS}, "basis": params.source}
                   for name, params in defaults.engines.items()},
    }
    if args.save:
        _write_atomically(args.save, table_data)
    if args.format == "json":
        return json_text({**table_data, "saved": args.save})
    from llm_roofline.faces.report.render import table

    lines = [f"{_inputs_label(per_file)}: {len(predictions)} measured steps from {rows} rows ({len(skipped)} figures "
             f"not predictable: see validate)", "",
             table(["class", *PARAMETERS],
                   [[kind, *(_micro(getattr(p, name)) if name.startswith("overhead") else f"{getattr(p, name):.3f}"
                             for name in PARAMETERS)] for kind, p in fitted.items()], align="l" + "r" * 5), ""]
    lines += [f"{kind}: {p.source}" for kind, p in fitted.items()]
    if defaults.engines:
        lines += ["", table(["engine", *PARAMETERS],
                            [[name, *(_micro(getattr(p, n)) if n.startswith("overhead") else f"{getattr(p, n):.3f}"
                                      for n in PARAMETERS)] for name, p in defaults.engines.items()],
                            align="l" + "r" * 5), ""]
        lines += [f"{name}: {p.source}" for name, p in defaults.engines.items()]
    if args.save:
        lines += ["", f"saved {args.save}"]
    return "\n".join(lines)
