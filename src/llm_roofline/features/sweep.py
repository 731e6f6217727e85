"""Whole design spaces at once: the cost model evaluated over numpy arrays of batch and length.

The sweep does not have a cost model of its own. It takes the ``transformer.StepPlan`` that
``analyze()`` uses — the formulas of ``ops.py`` as coefficients of the step counts — and evaluates
a whole chunk of configurations as one matrix product; the time of each operator is
``roofline.roofline``, the function ``analyze()`` calls. Structural choices (model, phase, number
formats, FlashAttention) are looped over; devices are broadcast along a second axis.

Grids are processed in chunks, so memory stays bounded whatever the grid's size.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from llm_roofline.core.efficiency import expected_step_time_s, params_for, plan_dequantizes
from llm_roofline.core.errors import InputError, one_of
from llm_roofline.core.formats import NumberFormat, WeightScheme, get_format
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.memory import grid_footprint_bytes
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.quant import (
    WeightsSpec,
    default_weight_format,
    is_sparse,
    sparse_scheme,
    weight_scheme,
    weights_label,
)
from llm_roofline.core.roofline import bound_labels, roofline, step_compute_bound, step_time
from llm_roofline.core.transformer import (
    COST_FIELDS,
    FUSE_MODES,
    LM_HEAD_MODES,
    PHASES,
    SPARSITY_MODES,
    Op,
    StepCounts,
    StepPlan,
    count_matrix,
    mla_absorbed,
    over_operators,
    phase_lengths,
    step_counts,
    step_math,
    step_plan,
)
from llm_roofline.core.units import Array
from llm_roofline.inputs.device_files import load_hardware
from llm_roofline.inputs.model_files import load_model

DEFAULT_CHUNK = 1 << 16
_SLICE_ELEMENTS = 1 << 18  # operators x devices x points evaluated at once inside a chunk
# Columns of a sweep's output, in order. Figures are raw SI numbers (per configuration, per step).
COLUMNS = (
    "model", "hardware", "phase", "weights", "activations", "kv_cache", "flash_attention", "batch", "seq_len",
    "flops", "bytes", "arithmetic_intensity", "time_s", "tokens_per_s", "bound", "compute_bound_time_s",
    "weight_bytes", "kv_cache_bytes", "memory_bytes", "fits", "expected_time_s", "expected_tokens_per_s",
    "compute_time_share", "activation_bytes",
)


@dataclass(frozen=True)
class SweepSpec:
    """A grid: the product of every list below. ``batch`` and ``seq_len`` are vectorized."""

    models: tuple[ModelSpec, ...]
    hardware: tuple[HardwareSpec, ...]
    batch: tuple[int, ...]
    seq_len: tuple[int, ...]
    phases: tuple[str, ...] = ("decode",)
    weights: tuple[WeightsSpec, ...] = (None,)  # formats, llama.cpp mixes, or None: the model's own
    activations: tuple[NumberFormat, ...] = ()
    kv_cache: tuple[NumberFormat | None, ...] = (None,)
    flash_attention: tuple[bool, ...] = (False,)
    causal_skip: bool | None = None
    lm_head: str = "last"
    fuse: str = "none"  # Workload.fuse: "elementwise" folds norms, RoPE, activations, residual adds into the matmuls
    sparsity: str = "none"  # Workload.sparsity: "2:4" prunes the layers' projections on devices with sparse units

    def __post_init__(self) -> None:
        if not self.activations:
            object.__setattr__(self, "activations", (get_format("fp16"),))
        for label in ("models", "hardware", "batch", "seq_len", "phases", "weights", "kv_cache", "flash_attention"):
            if not getattr(self, label):
                raise InputError(f"sweep: {label} needs at least one value")
        for label in ("batch", "seq_len"):
            values = getattr(self, label)
            if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
                raise InputError(f"sweep: every {label} must be an integer >= 1")
        for phase in self.phases:
            one_of("phase", phase, PHASES, "sweep: ")
        for name, value, choices in (("lm_head", self.lm_head, LM_HEAD_MODES), ("fuse", self.fuse, FUSE_MODES),
                                     ("sparsity", self.sparsity, SPARSITY_MODES)):
            one_of(name, value, choices, "sweep: ")

    @property
    def size(self) -> int:
        """Number of configurations in the grid."""
        return math.prod(len(v) for v in (self.models, self.hardware, self.batch, self.seq_len, self.phases,
                                          self.weights, self.activations, self.kv_cache, self.flash_attention))


@dataclass(frozen=True)
class GridResult:
    """Figures of a block of configurations: per-operator times and per-configuration totals.

    Arrays over configurations have shape (devices, points) for times and (points,) for work.
    """

    plan: StepPlan
    counts: StepCounts[Array]
    op_time_s: tuple[np.ndarray, ...]
    flops: np.ndarray
    bytes: np.ndarray
    time_s: np.ndarray
    compute_bound_time_s: np.ndarray  # the part of time_s in compute-bound operators, (devices, points)
    compute_bound: np.ndarray  # the step's bound (roofline.step_compute_bound), (devices, points)
    expected_time_s: np.ndarray  # the efficiency model's forecast (efficiency.py), (devices, points)
    tokens: np.ndarray
    kv_cache_bytes: np.ndarray
    weight_storage_bytes: float
    activation_bytes: np.ndarray  # peak activations (core/memory.py), (points,)
    memory_bytes: np.ndarray  # the footprint: weights + KV cache + activations + runtime overhead, (points,)

    @property
    def ops(self) -> tuple[Op[Array], ...]:
        """Every operator with its cost arrays over the points (computed on demand)."""
        return tuple(self.plan.ops(self.counts))


def evaluate_grid(model: ModelSpec, devices: Sequence[HardwareSpec], phase: str, batch: np.ndarray,
                  seq_len: np.ndarray, weights: NumberFormat | WeightScheme, activations: NumberFormat,
                  kv_format: NumberFormat, flash_attention: bool, causal_skip: bool | None = None,
                  lm_head: str = "last", mla: str | None = None, fuse: str = "none") -> GridResult:
    """The roofline of every (device, point) pair, for points given as parallel batch/seq_len arrays.

    ``weights``: one format, or the model's ``WeightScheme`` (``quant.weight_scheme(model, weights)``).
    """
    batch = np.asarray(batch, dtype=np.int64)
    seq_len = np.asarray(seq_len, dtype=np.int64)
    q_len, past_len = phase_lengths(phase, seq_len)
    skip = flash_attention if causal_skip is None else causal_skip
    plan = step_plan(model, weights, activations, kv_format, flash_attention, lm_head == "all",
                     mla_absorbed(phase, mla), fuse == "elementwise")
    counts = step_counts(model, batch, q_len, past_len, skip)
    n, n_dev = batch.shape[0], len(devices)
    # Only the two cost fields the roofline needs: FLOPs and bytes, (operators, points) each.
    work = plan.coefficients[[0, COST_FIELDS.index("bytes")]]
    op_flops, op_bytes = (work.reshape(-1, work.shape[2]) @ count_matrix(counts, n)).reshape(2, -1, n)
    bandwidth = np.array([[d.memory_bytes_per_s] for d in devices], dtype=np.float64)  # (devices, 1)
    ceilings = np.array([[d.peak_for(precision)[1] for d in devices] for precision in plan.unique_maths])
    op_peaks = ceilings[list(plan.math_index)][:, :, None]  # (operators, devices, 1)
    efficiency = [column[:, None] for column in np.array([params_for(d).values() for d in devices]).T]
    instances, dequantizes = plan.instance_weights, plan_dequantizes(plan)
    op_times = np.empty((len(instances), n_dev, n))
    time_total, compute_time_total, expected_time_total = np.empty((3, n_dev, n))
    # Operators x devices x points at once, a slice of points at a time: temporaries stay near _SLICE_ELEMENTS.
    width = max(1, _SLICE_ELEMENTS // (len(instances) * n_dev))
    for start in range(0, n, width):
        points = slice(start, start + width)
        line = roofline(op_flops[:, None, points], op_bytes[:, None, points], op_peaks, bandwidth)
        op_times[:, :, points] = line.time_s
        step = step_time(line, instances)
        time_total[:, points], compute_time_total[:, points] = step.time_s, step.compute_bound_time_s
        expected_time_total[:, points] = expected_step_time_s(line.compute_time_s, line.memory_time_s, dequantizes,
                                                              instances, efficiency)
    flops, moved = over_operators(op_flops, instances), over_operators(op_bytes, instances)
    stored, kv, act, total = grid_footprint_bytes(model, weights, activations, kv_format, flash_attention, skip,
                                                  lm_head == "all", mla, batch, past_len + q_len,
                                                  fuse_elementwise=fuse == "elementwise")
    ridge = np.array([[d.peak_for(step_math(activations, weights))[1] / d.memory_bytes_per_s] for d in devices])
    return GridResult(
        plan=plan,
        counts=counts,
        op_time_s=tuple(op_times),  # views of one (operators, devices, points) array
        flops=flops,
        bytes=moved,
        time_s=time_total,
        compute_bound_time_s=compute_time_total,
        compute_bound=step_compute_bound(flops[None, :], moved[None, :], ridge),
        expected_time_s=expected_time_total,
        tokens=batch * q_len,
        kv_cache_bytes=np.asarray(kv, dtype=np.float64),
        weight_storage_bytes=stored,
        activation_bytes=np.asarray(act, dtype=np.float64),
        memory_bytes=np.asarray(total, dtype=np.float64),
    )


class _Block(NamedTuple):
    """One evaluated chunk of the grid, with the structural choices it was evaluated under."""

    model: ModelSpec
    phase: str
    weights: WeightsSpec
    scheme: WeightScheme
    activations: NumberFormat
    kv_format: NumberFormat
    flash_attention: bool
    batch: np.ndarray
    seq_len: np.ndarray
    grid: GridResult
    devices: tuple[HardwareSpec, ...] = ()  # the grid's devices (its first axis)


def _blocks(spec: SweepSpec, chunk_size: int) -> Iterator[_Block]:
    """The grid, chunk by chunk: structural choices looped over, batch x length vectorized."""
    if chunk_size < 1:
        raise InputError(f"sweep: chunk size must be >= 1, got {chunk_size}")
    batch_grid, seq_grid = (a.ravel() for a in np.meshgrid(np.array(spec.batch, dtype=np.int64),
                                                           np.array(spec.seq_len, dtype=np.int64), indexing="ij"))
    structure = itertools.product(spec.models, spec.phases, spec.weights, spec.activations, spec.kv_cache,
                                  spec.flash_attention)
    for model, phase, weights, activations, kv_cache, flash in structure:
        kv_format = activations if kv_cache is None else kv_cache
        scheme = weight_scheme(model, weights)
        for devices, device_scheme in _device_groups(spec, scheme):
            for start in range(0, batch_grid.shape[0], chunk_size):
                batch = batch_grid[start:start + chunk_size]
                seq = seq_grid[start:start + chunk_size]
                grid = evaluate_grid(model, devices, phase, batch, seq, device_scheme, activations, kv_format, flash,
                                     spec.causal_skip, spec.lm_head, fuse=spec.fuse)
                yield _Block(model, phase, weights, device_scheme, activations, kv_format, flash, batch, seq, grid,
                             devices)


def _device_groups(spec: SweepSpec, scheme: WeightScheme) -> list[tuple[tuple[HardwareSpec, ...], WeightScheme]]:
    """The devices and the weights they run: with 2:4 sparsity, those with sparse tensor cores run the pruned
    scheme and the others the dense one (``transformer.on_device``'s rule); else all devices, one scheme."""
    if spec.sparsity == "none":
        return [(spec.hardware, scheme)]
    sparse = tuple(d for d in spec.hardware if d.sparse_2_4)
    dense = tuple(d for d in spec.hardware if not d.sparse_2_4)
    return [(group, pruned) for group, pruned in ((sparse, sparse_scheme(scheme)), (dense, scheme)) if group]


def sweep_totals(spec: SweepSpec, chunk_size: int = DEFAULT_CHUNK) -> Iterator[GridResult]:
    """The grid as raw ``GridResult`` blocks (no per-row labels): the fastest path, for queries."""
    for block in _blocks(spec, chunk_size):
        yield block.grid


def iter_sweep(spec: SweepSpec, chunk_size: int = DEFAULT_CHUNK) -> Iterator[dict[str, np.ndarray]]:
    """The grid's totals, as column chunks of at most ``chunk_size`` x devices rows."""
    for block in _blocks(spec, chunk_size):
        capacity = np.array([[d.available_memory_bytes or np.nan] for d in block.devices])
        device_names = np.array([d.name for d in block.devices], dtype=object)
        grid, batch, seq = block.grid, block.batch, block.seq_len
        n_dev, n = grid.time_s.shape
        memory = grid.memory_bytes  # (points,), core/memory.py's footprint
        time_s = grid.time_s.ravel()
        compute_time = grid.compute_bound_time_s.ravel()
        label = (block.scheme.name if block.weights is None or is_sparse(block.scheme)
                 else weights_label(block.weights))
        yield {
            "model": np.full(n_dev * n, block.model.name, dtype=object),
            "hardware": np.repeat(device_names, n),
            "phase": np.full(n_dev * n, block.phase, dtype=object),
            "weights": np.full(n_dev * n, label, dtype=object),
            "activations": np.full(n_dev * n, block.activations.name, dtype=object),
            "kv_cache": np.full(n_dev * n, block.kv_format.name, dtype=object),
            "flash_attention": np.full(n_dev * n, block.flash_attention),
            "batch": np.tile(batch, n_dev),
            "seq_len": np.tile(seq, n_dev),
            "flops": np.tile(grid.flops, n_dev),
            "bytes": np.tile(grid.bytes, n_dev),
            "arithmetic_intensity": np.tile(grid.flops / grid.bytes, n_dev),
            "time_s": time_s,
            "tokens_per_s": np.tile(grid.tokens, n_dev) / time_s,
            "bound": bound_labels(grid.compute_bound.ravel()),
            "compute_bound_time_s": compute_time,
            "weight_bytes": np.full(n_dev * n, grid.weight_storage_bytes),
            "kv_cache_bytes": np.tile(grid.kv_cache_bytes, n_dev),
            "memory_bytes": np.tile(memory, n_dev),
            "fits": (memory[None, :] <= capacity).ravel(),
            "expected_time_s": grid.expected_time_s.ravel(),
            "expected_tokens_per_s": np.tile(grid.tokens, n_dev) / grid.expected_time_s.ravel(),
            "compute_time_share": compute_time / time_s,
            "activation_bytes": np.tile(grid.activation_bytes, n_dev),
        }


PANEL_KEY = ("model", "hardware", "phase", "weights", "activations", "kv_cache", "flash_attention")


class HeatmapPanel(NamedTuple):
    """One structural choice of a sweep over its batch x length grid (rows: batch, columns: seq_len)."""

    key: tuple[object, ...]  # the PANEL_KEY values
    batch: np.ndarray  # sorted, (rows,)
    seq_len: np.ndarray  # sorted, (columns,)
    tokens_per_s: np.ndarray  # (rows, columns)
    compute_bound: np.ndarray  # (rows, columns), the step's bound
    fits: np.ndarray  # (rows, columns), weights + KV cache within the device's memory

    @property
    def label(self) -> str:
        """The key's values that say which panel this is (model, device, phase, formats)."""
        model, hardware, phase, weights, activations, kv, flash = self.key
        label = f"{model} on {hardware}, {phase}, weights {weights}, act {activations}"
        return label + (f", KV {kv}" if kv != activations else "") + (", FlashAttention" if flash else "")

    def boundary(self) -> np.ndarray:
        """Per length, the smallest batch whose step is compute-bound (NaN where none is)."""
        first = np.where(self.compute_bound.any(axis=0), self.compute_bound.argmax(axis=0), -1)
        return np.where(first >= 0, self.batch[first].astype(float), np.nan)


def heatmap_panels(chunks: Iterable[dict[str, np.ndarray]], value: str = "tokens_per_s") -> list[HeatmapPanel]:
    """``iter_sweep``'s chunks as one batch x length grid per structural choice (``value`` is the
    tokens/s column to show: ``tokens_per_s``, the roofline's, or ``expected_tokens_per_s``)."""
    columns: dict[tuple[Any, ...], list[dict[str, np.ndarray]]] = {}
    for chunk in chunks:
        # Label every row with its panel: a code from the key columns that vary in this chunk (usually
        # only the device: a chunk is one structural choice on every device).
        code = np.zeros(len(chunk["batch"]), dtype=np.int64)
        for name in PANEL_KEY:
            column = chunk[name]
            if (column == column[0]).all():
                continue
            values, inverse = np.unique(column.astype(str), return_inverse=True)
            code = code * len(values) + inverse
        for panel in np.unique(code):
            rows = code == panel
            first = int(np.argmax(rows))
            key = tuple(chunk[name][first] for name in PANEL_KEY)
            columns.setdefault(key, []).append({name: chunk[name][rows] for name in
                                                ("batch", "seq_len", value, "bound", "fits")})
    panels = []
    for key, parts in columns.items():
        data = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        batch, row = np.unique(data["batch"], return_inverse=True)
        seq_len, column = np.unique(data["seq_len"], return_inverse=True)
        grids = {name: np.full((len(batch), len(seq_len)), fill) for name, fill in
                 ((value, np.nan), ("bound", False), ("fits", False))}
        grids[value][row, column] = data[value]
        grids["bound"][row, column] = data["bound"] == "compute"
        grids["fits"][row, column] = data["fits"]
        panels.append(HeatmapPanel(tuple(plain_value(k) for k in key), batch, seq_len, grids[value], grids["bound"],
                                   grids["fits"]))
    return panels


def plain_value(value: object) -> object:
    """A numpy scalar as the Python number or bool it holds (JSON-ready); anything else as it is."""
    return value.item() if hasattr(value, "item") else value


def parse_values(text: str, label: str) -> tuple[int, ...]:
    """Integers from a list or a range: ``1,2,8``, ``1..256`` (every integer), ``1..256:8`` (step 8),
    ``128..32768:log`` (doubling), ``1..1000:x10`` (factor 10); pieces can be mixed with commas."""
    values: list[int] = []
    for piece in text.split(","):
        piece = piece.strip()
        try:
            if ".." not in piece:
                values.append(int(piece))
                continue
            bounds, _, step = piece.partition(":")
            low_text, high_text = bounds.split("..")
            low, high = int(low_text), int(high_text)
            if high < low:
                raise InputError(f"--{label}: range {piece!r} ends below its start")
            if step in ("", "1"):
                values.extend(range(low, high + 1))
            elif step == "log" or step.startswith("x"):
                factor = 2.0 if step == "log" else float(step[1:])
                if factor <= 1 or low < 1:
                    raise InputError(f"--{label}: a geometric range needs a start >= 1 and a factor > 1")
                value = float(low)
                while value <= high * (1 + 1e-12):
                    values.append(round(value))
                    value *= factor
            else:
                stride = int(step)
                if stride < 1:
                    raise InputError(f"--{label}: step must be >= 1")
                values.extend(range(low, high + 1, stride))
        except ValueError:
            raise InputError(f"--{label}: cannot read {piece!r}; use a list (1,2,8) or a range "
                             f"(1..256, 1..256:8, 128..32768:log, 1..1000:x10)") from None
    if not values or min(values) < 1:
        raise InputError(f"--{label}: values must be integers >= 1, got {text!r}")
    if len(values) > 10_000_000:
        raise InputError(f"--{label}: {len(values)} values is too many (at most 10,000,000)")
    return tuple(dict.fromkeys(values))


def make_spec(models: Sequence[str | ModelSpec], hardware: Sequence[str | HardwareSpec], batch: Sequence[int],
              seq_len: Sequence[int], phases: Sequence[str] = ("decode",),
              weights: Sequence[WeightsSpec] = (None,),
              activations: Sequence[str | float | NumberFormat] = ("fp16",),
              kv_cache: Sequence[str | float | NumberFormat | None] = (None,),
              flash_attention: Sequence[bool] = (False,), causal_skip: bool | None = None,
              lm_head: str = "last", fuse: str = "none", sparsity: str = "none") -> SweepSpec:
    """A ``SweepSpec`` from names (models, devices, formats) as the CLI and users give them."""
    return SweepSpec(
        models=tuple(load_model(m) for m in models),
        hardware=tuple(load_hardware(h) for h in hardware),
        batch=tuple(int(b) for b in batch),
        seq_len=tuple(int(s) for s in seq_len),
        phases=tuple(phases),
        weights=tuple(_checked_weights(w) for w in weights),
        activations=tuple(get_format(a) for a in activations),
        kv_cache=tuple(None if k is None else get_format(k) for k in kv_cache),
        flash_attention=tuple(flash_attention),
        causal_skip=causal_skip,
        lm_head=lm_head,
        fuse=fuse,
        sparsity=sparsity,
    )


def _checked_weights(weights: WeightsSpec) -> WeightsSpec:
    """A format or mix name, validated now (an unknown name fails before the sweep starts)."""
    if weights is not None and not isinstance(weights, WeightScheme):
        default_weight_format(weights)
    return weights
