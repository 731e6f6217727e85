"""Predictions checked against measurements: each measured row becomes a model, a weight format, a
device and two workloads; the roofline bound and the efficiency model's expectation are compared with
what was measured.

How a row is read (docs/validation.md states the same rules):

- **Model**: the catalogue entry whose name matches the row's model name (spaces as hyphens; a
  ``-it``/``-instruct``/``-chat`` suffix dropped; a name in parentheses tried too), and whose
  parameter count agrees with the row's ``params_B`` within 5 %; or the config.json or GGUF file the
  column names; llama-bench: its GGUF file when at hand, else the entry with exactly its parameter
  count. No match: the row is skipped.
- **Weights**: the row's format name when it is a known format or llama.cpp mix whose bits per
  weight agree with the row's (within 10 %), or another engine's recipe named anywhere in the quant
  text (``8da4w``) whose bits agree; otherwise a custom format of the row's bits per weight, applied to
  every matrix (the sources' figure is the file size over the parameters). A model that stores its own
  formats (gpt-oss) keeps them unless the row names a llama.cpp file type (``MXFP4_MOE``).
- **Activations**: fp32 or bf16 when the weights are (an unquantized baseline); int8 when the format
  quantizes activations dynamically (``8da4w``, ``dynamic_int8``); fp16 otherwise. The KV cache is
  fp16 unless the activations are wider.
- **Device**: the catalogue device of the row's backend that ``names.resolve_device`` finds in the
  row's hardware name ("Samsung Galaxy S24 Ultra (Snapdragon 8 Gen 3)", "NVIDIA RTX 4080 16GB"),
  unless the row states another core count or memory size (a binned chip is not the catalogue's
  full one); else a device from the row's own bandwidth and fp16 peak. Without a compute figure only
  decode is predicted (its memory roof alone).
- **Workloads**: prefill of ``prompt_tokens`` (512 when not stated); decode with half the generated
  tokens already cached (``gen_tokens / 2``; 64 when not stated). Batch from the row.

Several files (and folders: every ``*.csv`` in them) are read as one set; each row keeps its file and
row number (``Measurement.where``). Where a prediction misses, ``expected_time_terms`` splits its
expected step time into the efficiency model's terms (memory, compute, dequantization, per-kernel and
per-step overheads), and ``worst_predictions`` ranks the misses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from llm_roofline.core import limits
from llm_roofline.core.efficiency import (
    StepCost,
    efficiency_key,
    expected_time_s,
    launch_overhead_s,
    launch_params,
    params_for,
    step_cost,
)
from llm_roofline.core.engines import engine_for, fusion_of, get_engine
from llm_roofline.core.errors import InputError
from llm_roofline.core.formats import NumberFormat, get_format
from llm_roofline.core.hardware import KINDS, EfficiencyParams, HardwareSpec
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.quant import WeightsSpec, get_mix, get_recipe, weight_scheme
from llm_roofline.core.roofline import analyze
from llm_roofline.core.transformer import Workload, weight_storage_bytes
from llm_roofline.features.fidelity.fitting import Observation, fit_params
from llm_roofline.inputs.device_files import load_hardware
from llm_roofline.inputs.measurements import Measurement, read_measurements
from llm_roofline.inputs.model_files import load_model, model_names, resolve_model_name
from llm_roofline.inputs.names import resolve_device
from llm_roofline.inputs.reading import path_kind

PHASES = ("prefill", "decode")
DEFAULT_PROMPT_TOKENS = 512
DEFAULT_CACHED_TOKENS = 64
# Tools whose decode continues the sequence its prompt began (so the prompt is in the KV cache while it
# decodes): llama.cpp's ./main and llama-cli, llama-batched-bench (TG after PP, per sequence). llama-bench
# times its pp and tg tests apart, tg from an empty cache (or from -d tokens: depth_tokens).
_DECODE_AFTER_PROMPT = re.compile(r"\./main|llama-cli|batched-bench|text completion", re.IGNORECASE)
_PARAMS_TOLERANCE = 0.05
_BITS_TOLERANCE = 0.10
# A device known by its bandwidth only: the memory roof alone, under the highest compute roof a device may have.
_NO_COMPUTE_PEAK_FLOPS_PER_S = limits.DEVICE["peak_flops_per_s"].high


@dataclass(frozen=True, slots=True)
class Case:
    """A measured row, read as something the analyzer can run."""

    measurement: Measurement
    model: ModelSpec
    weights: WeightsSpec
    activations: str
    kv_cache: str
    hardware: HardwareSpec
    device_from: str  # "catalogue" or "row"
    has_compute_peak: bool
    family: str  # the device family, for leave-one-family-out cross-validation
    engine: str | None = None  # the engine the row was measured with (engines.engine_for), None: not known

    def workload(self, phase: str) -> Workload:
        m = self.measurement
        if phase == "prefill":
            length = m.prompt_tokens or DEFAULT_PROMPT_TOKENS
        else:
            after_prompt = m.prompt_tokens if m.prompt_tokens and _DECODE_AFTER_PROMPT.search(m.framework) else 0
            length = m.depth_tokens + after_prompt + (m.gen_tokens // 2 if m.gen_tokens else DEFAULT_CACHED_TOKENS)
        return Workload(phase=phase, batch=m.batch, seq_len=max(length, 1), weights=self.weights,
                        activations=self.activations, kv_cache=self.kv_cache,
                        flash_attention=m.flash_attention, engine=self.engine,
                        graph_tokens=m.graph_step_tokens if phase == "decode" else 1,
                        graph_context=m.graph_context_tokens if phase == "decode" else None)

    def measured_tokens_per_s(self, phase: str) -> float | None:
        m = self.measurement
        return m.prefill_tokens_per_s if phase == "prefill" else m.decode_tokens_per_s


@dataclass(frozen=True, slots=True)
class Skip:
    """A row (or one phase of a row) that could not be predicted, and why."""

    measurement: Measurement
    phase: str  # "prefill", "decode" or "both"
    reason: str

    def to_dict(self) -> dict[str, object]:
        m = self.measurement
        return {"row": m.row, "where": m.where, "hardware": m.hardware, "model": m.model, "phase": self.phase,
                "reason": self.reason}


# --- reading the files ----------------------------------------------------------------------------

def measurement_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files that ``paths`` name, in order: a file as it is, a folder as its ``*.csv`` files sorted by
    name; a file named twice (directly and through its folder, say) is read once."""
    files: list[Path] = []
    seen: set[str] = set()
    for path in map(Path, paths):
        if path_kind(path) == "folder":
            found = sorted(p for p in path.glob("*.csv") if path_kind(p) == "file")
            if not found:
                raise InputError(f"cannot read a folder with no .csv file: {path} (a folder gives its *.csv "
                                 "files: the calibration CSV schema or llama-bench -o csv)")
        else:
            found = [path]  # a missing or unreadable path: read_measurements names it
        for file in found:
            key = os.path.realpath(file)  # not Path.resolve: it raises on a symlink loop, which the reader names
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files


def read_measurement_files(paths: Sequence[str | Path]) -> tuple[list[Measurement], dict[str, int]]:
    """Every measurement of the files and folders ``paths`` name, as one set (each keeps its file and row
    in ``where``), and the number of measurements per file read."""
    measurements: list[Measurement] = []
    per_file: dict[str, int] = {}
    for file in measurement_files(paths):
        rows = read_measurements(file)
        per_file[str(file)] = len(rows)
        measurements += rows
    return measurements, per_file


def measurement_file(m: Measurement) -> str:
    """The file a measurement was read from (``where`` reads "file, row N (line L)" or "file, test N")."""
    found = re.match(r"(.*), (?:row|test) \d+", m.where)
    return found.group(1) if found else m.where


# --- reading a row --------------------------------------------------------------------------------

class NotPredictable(Exception):
    """A row the analyzer cannot run; the message is the reason reported for the skip."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")


def identify_model(m: Measurement) -> ModelSpec:
    """The model a row means: a llama-bench test's GGUF file when it is at hand, a config.json or GGUF
    file the row names, else the catalogue entry of that name (or, for llama-bench, of exactly that
    parameter count); ``NotPredictable`` when none."""
    if m.model_file and m.model_file.lower().endswith(".gguf") and path_kind(m.model_file) == "file":
        return load_model(m.model_file)
    if m.model.lower().endswith((".json", ".gguf")) and path_kind(m.model):  # the row names a file
        return _checked_size(m, load_model(m.model))
    try:
        return _checked_size(m, load_model(resolve_model_name(m.model)))
    except InputError as err:
        unresolved = str(err)
    if m.params is not None and m.model_file:
        same_size = [n for n in model_names() if load_model(n).params == round(m.params)]
        if same_size:
            return load_model(sorted(same_size)[0])
    raise NotPredictable(f"{unresolved} (add its config.json to data/models/, or name the size)")


def _checked_size(m: Measurement, model: ModelSpec) -> ModelSpec:
    if m.params is not None and abs(model.params / m.params - 1) > _PARAMS_TOLERANCE:
        raise NotPredictable(f"model '{m.model}' matches {model.name} by name but not by size "
                             f"({model.params / 1e9:.2f} B vs {m.params / 1e9:.2f} B parameters)")
    return model


def weights_for(m: Measurement, model: ModelSpec) -> WeightsSpec:
    """The weight format of a row: a name, a mix, or a custom bits-per-weight format (None: the model's own
    stored formats, as a GGUF file or a checkpoint that quantizes some tensors holds them; a llama.cpp file
    type the row names, MXFP4_MOE for a gpt-oss GGUF say, replaces those). An engine's recipe named anywhere
    in the quant text (``SpinQuant 8da4w (...)``) is the row's when its bits agree, as a name's must."""
    name = m.quant.split("(")[0].strip().split(" ")[0].lower() if m.quant.strip() else ""
    if model.stored_weights is not None and get_mix(name) is None:
        return None
    named: WeightsSpec = None
    if name:
        try:
            if get_mix(name) is None:
                get_format(name)
            named = name
        except InputError:
            named = next((word for word in re.findall(r"[a-z0-9_]+", m.quant.lower()) if get_recipe(word)), None)
    if named is not None:
        if m.bits_per_weight is None:
            return named
        bits = 8 * weight_storage_bytes(model, weight_scheme(model, named), get_format("fp16")) / model.params
        if abs(bits / m.bits_per_weight - 1) <= _BITS_TOLERANCE:
            return named
    if m.bits_per_weight is not None:
        return get_format(m.bits_per_weight)
    raise NotPredictable(f"weight format '{m.quant}' is unknown and the row gives no bits per weight")


def activations_for(m: Measurement, weights: WeightsSpec) -> tuple[str, str]:
    """(activation format, KV-cache format) of a row's engine (see the module docstring)."""
    quant = m.quant.lower()
    if isinstance(weights, NumberFormat):
        name = weights.name
    elif isinstance(weights, str) and get_mix(weights) is None and get_recipe(weights) is None:
        name = get_format(weights).name  # an alias (f32, float16) by its canonical name
    else:
        name = ""  # a llama.cpp mix, or a GGUF file's own formats: quantized
    if name in ("fp32", "bf16"):
        return name, name
    if "8da" in quant or "dynamic_int" in quant:
        return "int8", m.kv_cache or "fp16"
    return "fp16", m.kv_cache or "fp16"


def device_family(hardware: str, backend: str = "") -> str:
    """The family a device belongs to, for leave-one-family-out cross-validation: a product generation
    (Apple M1, M2, ...; NVIDIA's GeForce RTX 30, 40, 50 series; a data-centre GPU by its model), so the
    fold left out is a chip design the fit never saw. An NPU is a family of its own, apart from the GPU
    and CPU of the same chip (another unit, another engine), and of its generation too (the M2's Neural
    Engine, the Snapdragon 8 Gen 3's Hexagon)."""
    text = hardware.lower()
    apple = re.search(r"apple (m\d)", text)
    if backend.lower() == "npu":
        snapdragon = re.search(r"snapdragon (8 gen \d|8 elite(?: gen \d)?|x elite|x plus|\d+)", text)
        if apple:
            return f"Apple {apple.group(1).upper()} Neural Engine"
        if snapdragon:
            return f"Snapdragon {snapdragon.group(1).title()} Hexagon"
        for word, family in (("apple", "Apple Neural Engine"), ("snapdragon", "Hexagon NPU"),
                             ("galaxy", "Hexagon NPU"), ("hexagon", "Hexagon NPU")):
            if word in text:
                return family
        return " ".join(hardware.split()[:2]) + " NPU"
    if apple:
        return f"Apple {apple.group(1).upper()}"
    geforce = re.search(r"rtx (\d)0[5-9]0(?!\d)", text)  # RTX 3090 -> "NVIDIA RTX 30"; not RTX 5000 Ada
    if geforce:
        return f"NVIDIA RTX {geforce.group(1)}0"
    for word, family in (("snapdragon", "Snapdragon"), ("jetson", "Jetson"), ("raspberry", "Raspberry Pi"),
                         ("rtx", "NVIDIA desktop"), ("geforce", "NVIDIA desktop")):
        if word in text:
            return family
    return " ".join(hardware.split()[:2])


def catalogue_device(m: Measurement) -> HardwareSpec | None:
    """The catalogue device a row names, of the row's backend (see the module docstring), or None."""
    try:
        return load_hardware(resolve_device(m.hardware, kind=m.backend))
    except InputError:
        return None


def device_for(m: Measurement) -> tuple[HardwareSpec, str, bool]:
    """(device, where it came from, whether it has a compute figure)."""
    spec = catalogue_device(m)
    if spec is not None:
        return spec, "catalogue", True
    if m.memory_bytes_per_s is None:
        raise NotPredictable(f"device '{m.hardware}' is not in the catalogue and the row gives no bandwidth")
    has_peak = m.peak_fp16_flops_per_s is not None
    peak = _NO_COMPUTE_PEAK_FLOPS_PER_S if m.peak_fp16_flops_per_s is None else m.peak_fp16_flops_per_s
    spec = HardwareSpec(
        name=_slug(m.hardware) or "row-device", display_name=m.hardware, kind=m.backend, memory_bytes=None,
        memory_bytes_per_s=m.memory_bytes_per_s, peak_flops_per_s={"fp16": peak},
        source=f"the measurement's own figures ({m.where})",
    )
    return spec, "row", has_peak


def read_case(m: Measurement, hardware: HardwareSpec | None = None, model: ModelSpec | None = None) -> Case | Skip:
    """A row as a ``Case``, or a ``Skip`` saying why it cannot be predicted.

    ``hardware``, ``model``: what to use instead of the row's own device and model (``--hardware``,
    ``--model``).
    """
    try:
        model = model or identify_model(m)
        weights = weights_for(m, model)
        device, origin, has_peak = (hardware, "given", True) if hardware is not None else device_for(m)
    except NotPredictable as why:
        return Skip(m, "both", str(why))
    activations, kv_cache = activations_for(m, weights)
    if has_peak and origin == "catalogue" and not _has_ceiling_for(device, get_format(activations).math):
        device, has_peak = _memory_roof_only(device, get_format(activations).math), False
    engine = engine_for(m.framework, m.backend, m.hardware, device.kind)
    return Case(m, model, weights, activations, kv_cache, device, origin, has_peak,
                device_family(m.hardware, m.backend), engine)


def _has_ceiling_for(device: HardwareSpec, math: str) -> bool:
    """Whether the device has a compute ceiling for ``math`` (``peak_for``'s fallbacks included)."""
    try:
        device.peak_for(math)
    except InputError:
        return False
    return True


def _memory_roof_only(device: HardwareSpec, math: str) -> HardwareSpec:
    """A catalogue device without a ceiling for the row's math (an NPU entry with only its vendor's int8 TOPS
    and a w4a16 model): its memory roof alone, under the highest compute roof a device may have, as for a
    row that gives a bandwidth and no peak (decode only)."""
    return replace(device, peak_flops_per_s={**device.peak_flops_per_s, math: _NO_COMPUTE_PEAK_FLOPS_PER_S},
                   source=f"{device.source} (no ceiling for {math} math: its memory roof alone)")


# --- predictions ----------------------------------------------------------------------------------

SUPER_BLOCK_ELEMENTS = 256  # ggml's QK_K: a K-quant's or i-quant's super-block (ggml/src/ggml-common.h)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One phase of one row: measured, the roofline bound and the expectation, in tokens per second."""

    case: Case
    phase: str
    measured_tokens_per_s: float
    bound_tokens_per_s: float
    expected_tokens_per_s: float
    params: EfficiencyParams
    cost: StepCost = field(repr=False, compare=False)
    tokens: int = 1
    peak_precision: str = ""  # the ceiling the step's matrix products run on (analyze's totals.peak_precision)

    @property
    def bound_error(self) -> float:
        """Signed: bound / measured - 1."""
        return self.bound_tokens_per_s / self.measured_tokens_per_s - 1

    @property
    def expected_error(self) -> float:
        """Signed: expected / measured - 1 (above 0: the expectation is faster than the measurement)."""
        return self.expected_tokens_per_s / self.measured_tokens_per_s - 1

    @property
    def bound_ape(self) -> float:
        return abs(self.bound_error)

    @property
    def expected_ape(self) -> float:
        return abs(self.expected_error)

    @property
    def backend(self) -> str:
        return self.case.measurement.backend

    @property
    def weights_label(self) -> str:
        """The weight format the row names; without one, the model's own formats (a GGUF's, gpt-oss's MXFP4
        experts)."""
        workload = self.case.workload(self.phase)
        if workload.weights is None:
            return workload.weight_scheme(self.case.model).name
        return workload.weights_label

    @property
    def unpacks_super_blocks(self) -> bool:
        """Whether the step's weights are mostly stored in 256-weight super-blocks (its scheme's default format
        a K-quant or i-quant: ``block_elements`` in ``formats.toml``; a Q4_0 file's one Q6_K output matrix does
        not count), whose extra unpacking work the expected time does not price apart from a 32-weight block's
        (docs/validation.md, section 3: their rows' bias)."""
        scheme = self.case.workload(self.phase).weight_scheme(self.case.model)
        return scheme.default.block_elements >= SUPER_BLOCK_ELEMENTS

    @property
    def step_positions(self) -> int:
        """``Workload.step_positions`` of the step measured."""
        return self.case.workload(self.phase).step_positions

    def observation(self, overhead_per_op_s: float | None = None) -> Observation:
        """The measured step for a fit; ``overhead_per_op_s``: a cost per kernel it pays whatever the fit's."""
        return Observation(self.cost, self.tokens / self.measured_tokens_per_s, overhead_per_op_s)

    def with_params(self, params: EfficiencyParams) -> Prediction:
        """The same prediction under other efficiency parameters."""
        return replace(self, params=params, expected_tokens_per_s=self.tokens / expected_time_s(self.cost, params))

    def to_dict(self) -> dict[str, object]:
        case, m = self.case, self.case.measurement
        workload = case.workload(self.phase)
        return {
            "row": m.row, "where": m.where, "hardware": m.hardware, "backend": m.backend, "family": case.family,
            "device": case.hardware.name, "device_from": case.device_from, "model": case.model.name,
            "weights": self.weights_label,
            "activations": workload.activation_format.name,
            "phase": self.phase, "batch": workload.batch, "seq_len": workload.seq_len,
            "measured_tokens_per_s": self.measured_tokens_per_s, "bound_tokens_per_s": self.bound_tokens_per_s,
            "expected_tokens_per_s": self.expected_tokens_per_s, "bound_ape": self.bound_ape,
            "expected_ape": self.expected_ape, "expected_error": self.expected_error,
            "peak_precision": self.peak_precision,
            "step_tokens": workload.q_len, "graph_context_tokens": workload.graph_context,
            # which figures predicted it: the engine the row was measured with and where its figures come from
            # (an engine's own fit, per kind of unit; its class's defaults; in a cross-validation, the fold's fit)
            "engine": case.engine, "efficiency_figures": self.params.source,
        }


def predict(cases: Sequence[Case | Skip]) -> tuple[list[Prediction], list[Skip]]:
    """Every phase a row measured, predicted with its device's efficiency parameters; or skipped with the reason."""
    predictions: list[Prediction] = []
    skipped: list[Skip] = []
    for case in cases:
        if isinstance(case, Skip):
            skipped.append(case)
            continue
        phases = [phase for phase in PHASES if case.measured_tokens_per_s(phase) is not None]
        if not phases:
            skipped.append(Skip(case.measurement, "both", "the row has neither a prefill nor a decode speed"))
        for phase in phases:
            if phase == "prefill" and not case.has_compute_peak:
                skipped.append(Skip(case.measurement, phase, "prefill needs a compute ceiling: the row gives no fp16 "
                                                             "peak, and its device is not in the catalogue or has "
                                                             f"no ceiling for {case.activations} math there"))
                continue
            try:
                predictions.append(_predict_phase(case, phase))
            except InputError as why:  # a device without a ceiling for the row's math, say
                skipped.append(Skip(case.measurement, phase, str(why)))
    return predictions, skipped


def _predict_phase(case: Case, phase: str) -> Prediction:
    result = analyze(case.model, case.hardware, case.workload(phase))
    workload = result.workload
    cost = step_cost(result.ops, workload.weight_scheme(case.model), workload.activation_format,
                     case.model.tied_embeddings, fusion_of(case.engine))
    params = params_for(case.hardware, case.engine, workload.step_positions)
    measured = case.measured_tokens_per_s(phase)
    assert measured is not None
    tokens = workload.tokens
    return Prediction(case, phase, measured, result.totals.tokens_per_s,
                      tokens / expected_time_s(cost, params), params, cost, tokens, result.totals.peak_precision)


# --- where the expected time goes -----------------------------------------------------------------

TIME_TERMS = ("memory", "compute", "dequant", "kernel_overhead", "step_overhead")


@dataclass(frozen=True, slots=True)
class TimeTerms:
    """The expected time of one step, split into the efficiency model's terms (seconds; they sum to it).

    Each operator instance's ``max(compute / (compute_efficiency x d), memory / bandwidth_efficiency)``
    goes to the side that wins the max: ``memory_s``, or ``compute_s`` (at the compute efficiency alone)
    plus ``dequant_s`` (what ``d = dequant_compute_factor`` adds when the matmul unpacks its weights).
    """

    memory_s: float  # memory-bound instances: bytes / (bandwidth x bandwidth_efficiency)
    compute_s: float  # compute-bound instances: FLOPs / (peak x compute_efficiency)
    dequant_s: float  # their extra for unpacking quantized weights: x (1 / dequant_compute_factor - 1)
    kernel_overhead_s: float  # overhead_per_op_s x kernels
    step_overhead_s: float  # overhead_per_step_s
    kernels: int  # kernel launches in the step: operator instances, less those fused into a neighbour

    @property
    def expected_time_s(self) -> float:
        return sum(self.by_term().values())

    def by_term(self) -> dict[str, float]:
        """Seconds per term, in ``TIME_TERMS`` order."""
        return dict(zip(TIME_TERMS, (self.memory_s, self.compute_s, self.dequant_s, self.kernel_overhead_s,
                                     self.step_overhead_s), strict=True))

    def shares(self) -> dict[str, float]:
        """Each term's fraction of the expected time."""
        total = self.expected_time_s
        return {term: value / total for term, value in self.by_term().items()}

    @property
    def dominant(self) -> str:
        """The term that takes the most time (the first in ``TIME_TERMS`` order on a tie)."""
        terms = self.by_term()
        return max(TIME_TERMS, key=lambda term: terms[term])

    def to_dict(self) -> dict[str, object]:
        return {"time_terms_s": self.by_term(), "time_shares": self.shares(), "dominant_term": self.dominant,
                "kernels": self.kernels}


def expected_time_terms(cost: StepCost, params: EfficiencyParams) -> TimeTerms:
    """``efficiency.expected_time_s(cost, params)`` split into its terms (``TimeTerms``): the same
    formula, operator by operator (``efficiency.op_time_s``), each instance's time put on the side of
    the max that sets it, and the per-kernel cost paid by the operators that launch a kernel
    (``cost.kernels``; empty: all of them)."""
    eta_m, eta_c, dequant, per_op, per_step = params.values()
    memory_s = compute_s = dequant_s = 0.0
    kernels = 0
    launches = cost.kernels if len(cost.kernels) else (1,) * len(cost.counts)  # as expected_time_s reads it
    for count, compute_time, memory_time, flag, launch in zip(cost.counts, cost.compute_time_s, cost.memory_time_s,
                                                              cost.dequantizes, launches, strict=True):
        instances = int(count)
        at_compute_efficiency = float(compute_time) / eta_c
        unpacking = float(compute_time) / (eta_c + float(flag) * (eta_c * (dequant - 1)))  # as op_time_s
        at_bandwidth_efficiency = float(memory_time) / eta_m
        if unpacking >= at_bandwidth_efficiency:
            compute_s += instances * at_compute_efficiency
            dequant_s += instances * (unpacking - at_compute_efficiency)
        else:
            memory_s += instances * at_bandwidth_efficiency
        kernels += instances * int(launch)  # an operator fused into a neighbour launches nothing
    return TimeTerms(memory_s, compute_s, dequant_s, kernels * per_op, per_step, kernels)


@dataclass(frozen=True, slots=True)
class Miss:
    """A prediction and where its expected time goes: one of the rows the expectation misses most."""

    prediction: Prediction
    terms: TimeTerms

    @property
    def measured_time_s(self) -> float:
        return self.prediction.tokens / self.prediction.measured_tokens_per_s

    @property
    def above_bound(self) -> bool:
        """Measured faster than the roofline bound: no efficiency (at most 1) can explain it; a ceiling is low."""
        return self.prediction.measured_tokens_per_s > self.prediction.bound_tokens_per_s

    @property
    def dominant_scale(self) -> float | None:
        """The factor the dominant term would need for the expected time to equal the measured one, the other
        terms held; None when the other terms alone take at least the measured time."""
        terms = self.terms.by_term()
        dominant_s = terms[self.terms.dominant]
        needed_s = self.measured_time_s - (self.terms.expected_time_s - dominant_s)
        return needed_s / dominant_s if needed_s > 0 and dominant_s > 0 else None

    def to_dict(self) -> dict[str, object]:
        return {**self.prediction.to_dict(), "expected_time_s": self.terms.expected_time_s,
                "measured_time_s": self.measured_time_s, **self.terms.to_dict(),
                "dominant_scale": self.dominant_scale, "above_bound": self.above_bound,
                "params": self.prediction.params.to_dict()}


def worst_predictions(predictions: Sequence[Prediction], count: int) -> list[Miss]:
    """The ``count`` predictions with the largest absolute percentage error of the expected tokens/s
    (largest first; in input order on a tie), each with its expected time split into terms."""
    ranked = sorted(predictions, key=lambda p: p.expected_ape, reverse=True)[:count]
    return [Miss(p, expected_time_terms(p.cost, p.params)) for p in ranked]


# --- fitting and cross-validation -----------------------------------------------------------------

MIN_CLASS_OBSERVATIONS = 16  # fewer measured steps than this in a class: its defaults are the pooled fit


def fit_class_defaults(predictions: Sequence[Prediction], description: str = "") -> dict[str, EfficiencyParams]:
    """Efficiency parameters per device class (gpu, cpu, npu), fitted on the predictions' measurements.

    A class with at least ``MIN_CLASS_OBSERVATIONS`` measured steps is fitted on its own; any other
    class gets the fit of all the measurements pooled (no evidence of its own: the average device).
    """
    pooled = fit_params([p.observation() for p in predictions],
                        source=f"pooled fit of {_counts(predictions)}{description}")
    out = {}
    for kind in KINDS:
        own = [p for p in predictions if p.case.hardware.kind == kind]
        if len(own) >= MIN_CLASS_OBSERVATIONS:
            out[kind] = fit_params([p.observation() for p in own],
                                   source=f"fit of the {kind} class: {_counts(own)}{description}")
        else:
            out[kind] = replace(pooled, source=f"{pooled.source} (the {kind} class has {len(own)} measured steps)")
    return out


# Fewer measured steps with an engine than this: it gets its device class's figures. Its fit starts from
# the class's figures as the prior, so a few steps move only what they measure (five: a CPU engine's
# prefill, measured on a Raspberry Pi and two desktop CPUs, is fitted rather than borrowed from the GPUs).
MIN_ENGINE_OBSERVATIONS = 5


class FittedDefaults(NamedTuple):
    """What ``calibrate --by-class`` fits: per device class, and per engine with enough measurements."""

    classes: dict[str, EfficiencyParams]
    engines: dict[str, EfficiencyParams]

    def params(self, case: Case, step_positions: int = 1) -> EfficiencyParams:
        """The figures a measured step is predicted with: its engine's when fitted (with the cost per kernel of
        launches without a graph where the engine does not replay a step of ``step_positions`` as one:
        ``efficiency.launch_params``), else its class's."""
        if case.engine is not None and (key := efficiency_key(case.engine, case.hardware.kind)) in self.engines:
            return launch_params(self.engines[key], case.engine, step_positions, self.engines.get)
        return self.classes[case.hardware.kind]


def fit_defaults(predictions: Sequence[Prediction], description: str = "") -> FittedDefaults:
    """The class defaults (``fit_class_defaults``), then each engine with at least ``MIN_ENGINE_OBSERVATIONS``
    measured steps fitted on its own rows, its class's figures as the prior (a parameter its rows say little
    about stays near the class's); an engine of several kinds of unit, per kind (``efficiency_key``)."""
    classes = fit_class_defaults(predictions, description)
    engines: dict[str, EfficiencyParams] = {}
    groups: dict[tuple[str, str], list[Prediction]] = {}
    for p in predictions:
        if p.case.engine is not None:
            groups.setdefault((p.case.engine, p.case.hardware.kind), []).append(p)
    # an engine that launches some steps at another engine's cost per kernel is fitted after that engine
    for (name, kind), own in sorted(groups.items(), key=lambda g: (get_engine(g[0][0]).ungraphed_launches is not None,
                                                                   g[0])):
        if len(own) < MIN_ENGINE_OBSERVATIONS:
            continue
        key = efficiency_key(name, kind)
        observations = [p.observation(launch_overhead_s(name, p.step_positions, engines.get)) for p in own]
        engines[key] = fit_params(observations, prior=classes[kind],
                                  source=f"fit of engine {key}: {_counts(own)}{description}; prior: the {kind} class")
    return FittedDefaults(classes, dict(sorted(engines.items())))


def _counts(predictions: Sequence[Prediction]) -> str:
    prefill = sum(p.phase == "prefill" for p in predictions)
    devices = len({p.case.hardware.name for p in predictions})
    return (f"{len(predictions)} measured steps (prefill {prefill}, decode {len(predictions) - prefill}) "
            f"on {devices} devices")


CV_GROUPS = ("family", "source")


def cross_validate(predictions: Sequence[Prediction], by: str = "family") -> tuple[list[Prediction], dict[str, Any]]:
    """Leave one group out: for each device family (or source), fit the class defaults on every other
    group's measurements and predict the group left out with them.

    Returns the held-out predictions (each with the parameters of its fold) and, per group, the number
    of predictions and the parameters used.
    """
    if by not in CV_GROUPS:
        raise InputError(f"cross-validation groups by {' or '.join(CV_GROUPS)}, got {by!r}")

    def group_of(p: Prediction) -> str:
        return p.case.family if by == "family" else (p.case.measurement.source or "(no source)")

    groups = sorted({group_of(p) for p in predictions})
    held_out: list[Prediction] = []
    folds: dict[str, Any] = {}
    for group in groups:
        train = [p for p in predictions if group_of(p) != group]
        test = [p for p in predictions if group_of(p) == group]
        if not train:
            raise InputError(f"cross-validation needs at least two {by} groups; the file has only '{group}'")
        fitted = fit_defaults(train, description=f", leaving out {by} '{group}'")
        held_out += [p.with_params(fitted.params(p.case, p.step_positions)) for p in test]
        folds[group] = {"n": len(test), "params": {kind: fitted.classes[kind].to_dict()
                                                   for kind in sorted({p.case.hardware.kind for p in test})},
                        "engines": {key: fitted.engines[key].to_dict()
                                    for key in sorted({efficiency_key(p.case.engine, p.case.hardware.kind)
                                                       for p in test if p.case.engine is not None}
                                                      & set(fitted.engines))}}
    return held_out, folds


# --- errors ---------------------------------------------------------------------------------------

def summary(predictions: Sequence[Prediction], rows: int) -> dict[str, Any]:
    """Median and 90th-percentile absolute percentage errors of the expectation (and, under ``bound``, of
    the roofline bound), and the median signed error (the bias: above 0 when the expectation is faster than
    measured), per phase: overall, per backend, per device family and per weight format; errors as fractions
    (0.12 = 12 %)."""
    used = len({id(p.case.measurement) for p in predictions})
    out: dict[str, Any] = {"rows": rows, "rows_used": used, "rows_skipped": rows - used}
    out |= _errors(predictions, "expected_error")
    out["bound"] = _errors(predictions, "bound_error")
    groupings: tuple[tuple[str, Callable[[Prediction], str]], ...] = (
        ("by_backend", lambda p: p.backend), ("by_family", lambda p: p.case.family),
        ("by_weights", lambda p: p.weights_label))
    for key, group_of in groupings:
        out[key] = {
            group: {**_errors(subset, "expected_error"), "bound": _errors(subset, "bound_error")}
            for group in sorted({group_of(p) for p in predictions})
            for subset in [[p for p in predictions if group_of(p) == group]]
        }
    return out


def _errors(predictions: Sequence[Prediction], signed_attribute: str) -> dict[str, Any]:
    """Per phase: ``n``, the median and 90th percentile of the absolute errors, and the median signed error,
    of ``signed_attribute`` (``expected_error`` or ``bound_error``)."""
    out = {}
    for phase in PHASES:
        signed = [getattr(p, signed_attribute) for p in predictions if p.phase == phase]
        absolute = [abs(e) for e in signed]
        out[phase] = {"n": len(signed), "median_ape": quantile(absolute, 0.5), "p90_ape": quantile(absolute, 0.9),
                      "median_signed_error": quantile(signed, 0.5)}
    return out


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile, linear between order statistics (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
