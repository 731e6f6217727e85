"""The page's "Explore" pictures as JSON: a batch x length heatmap and a generation timeline.

Pure functions from records (model, device, workload) to plain JSON values: raw SI numbers under
unit-suffixed keys, null where there is no value. The web API serializes them; ``static/explore.js``
draws them.

- The heatmap is the grid ``llm-roofline sweep`` evaluates (``features/sweep.py``, the same
  ``SweepSpec`` and chunks), so its boundary is the CLI's ``--query boundary`` answer and the line of
  its ``--heatmap`` picture for the same lists (``HeatmapPanel.boundary``). The sweep has no ``mla``
  field: only a latent-attention model with an explicit ``mla`` form goes through ``evaluate_grid``,
  the sweep's evaluation of given points, which takes it.
- The timeline is ``studies.timeline.generation_timeline``: the figures of ``llm-roofline timeline``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.limits import WORKLOAD, Limit, count
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.quant import weights_label
from llm_roofline.core.transformer import Workload, on_device
from llm_roofline.features.studies.timeline import Timeline, generation_timeline
from llm_roofline.features.sweep import (
    GridResult,
    HeatmapPanel,
    SweepSpec,
    evaluate_grid,
    sweep_totals,
)

# The largest heatmap a request may ask for (batch values x lengths): 64 x 64 cells, more than a screen shows;
# the payload is some 150 bytes a cell.
MAX_GRID_POINTS = 4096
# The page's default grid: batches doubling from 1 (a decode step turns compute-bound near the device's ridge,
# ~150-600 sequences on a GPU, and only past it for a sparse expert model), lengths doubling from 128 up to the
# model's context window; at most DEFAULT_AXIS_VALUES of each.
DEFAULT_BATCHES = tuple(1 << k for k in range(10))  # 1 .. 512
DEFAULT_FIRST_SEQ_LEN = 128
DEFAULT_AXIS_VALUES = 16
# A timeline's sampled steps: enough for a smooth line at any width, few enough for a small payload.
DEFAULT_TIMELINE_SAMPLES = 200
TIMELINE_SAMPLES = Limit(2, 2000, True, "", "points of a line: more than a wide screen has pixels")
# Bound changes listed (the step's and each operator's): a few per operator in practice.
MAX_CHANGES = 500


def default_grid(model: ModelSpec, phase: str) -> tuple[list[int], list[int]]:
    """The page's first heatmap: (batches, lengths) doubling, the lengths up to the model's context window.

    A decode step's new token attends to ``seq_len`` cached tokens and itself, so decode lengths stop one
    short of the window; the window's own length is the last column, so that the whole trained range shows.
    """
    longest = min(model.max_position_embeddings - (phase == "decode"), int(WORKLOAD["seq_len"].high))
    lengths: list[int] = []
    length = DEFAULT_FIRST_SEQ_LEN
    while length <= longest:
        lengths.append(length)
        length *= 2
    if not lengths or lengths[-1] != longest:
        lengths.append(max(1, longest))
    return list(DEFAULT_BATCHES), lengths[-DEFAULT_AXIS_VALUES:]


def _axis(values: Sequence[int], label: str) -> tuple[int, ...]:
    """A grid axis: integers within the workload's range, sorted, each once."""
    if not len(values):
        raise InputError(f"heatmap: {label} needs at least one value")
    if len(values) > MAX_GRID_POINTS:
        raise InputError(f"heatmap: {label} has {len(values):,} values, at most {MAX_GRID_POINTS:,} points in all")
    return tuple(sorted({count(f"heatmap: every {label}", value, WORKLOAD[label]) for value in values}))


def _grid(model: ModelSpec, hardware: HardwareSpec, workload: Workload, batch: tuple[int, ...],
          seq_len: tuple[int, ...]) -> GridResult:
    """The sweep's totals over batch x seq_len (batch-major, as the CLI's sweep evaluates them)."""
    if workload.mla is None or not model.is_mla:
        spec = SweepSpec(models=(model,), hardware=(hardware,), batch=batch, seq_len=seq_len,
                         phases=(workload.phase,), weights=(workload.weights,),
                         activations=(workload.activation_format,), kv_cache=(workload.kv_format,),
                         flash_attention=(workload.flash_attention,), causal_skip=workload.causal_skip,
                         lm_head=workload.lm_head, fuse=workload.fuse, sparsity=workload.sparsity,
                         engine=workload.engine)
        # One structural choice on one device, fewer points than a chunk: one block.
        (grid,) = sweep_totals(spec, chunk_size=MAX_GRID_POINTS)
        return grid
    # An explicit MLA form, which SweepSpec cannot carry (it changes the plan and the activation peak).
    run = on_device(model, workload, hardware)[0]
    rows, columns = np.meshgrid(np.array(batch, dtype=np.int64), np.array(seq_len, dtype=np.int64), indexing="ij")
    return evaluate_grid(model, [hardware], run.phase, rows.ravel(), columns.ravel(), run.weight_scheme(model),
                         run.activation_format, run.kv_format, run.flash_attention, run.causal_skip, run.lm_head,
                         run.mla, run.fuse, run.engine)


def _rows(values: np.ndarray, shape: tuple[int, int]) -> list[list[float]] | list[list[bool]]:
    """A batch-major column as nested lists, rows (batch) x columns (seq_len)."""
    nested: list[list[float]] | list[list[bool]] = values.reshape(shape).tolist()
    return nested


def heatmap_payload(model: ModelSpec, hardware: HardwareSpec, workload: Workload, batches: Sequence[int],
                    seq_lens: Sequence[int]) -> dict[str, object]:
    """Tokens/s over batch x length for ``workload``'s phase, formats and options (its batch and seq_len
    are the grid's, not its own).

    Grids (rows: ``batch``, columns: ``seq_len``, both sorted, each value once): ``tokens_per_s`` (the
    roofline bound), ``expected_tokens_per_s`` (the efficiency model), ``time_s``, ``expected_time_s``,
    ``compute_bound`` (the step's bound), ``memory_bytes`` (weights + KV cache + activations + runtime
    overhead) and ``fits`` (within the device's usable memory, false where that is unknown: the sweep's
    column). ``boundary``: per length, the smallest batch whose step is compute-bound, whether it fits or
    not (``llm-roofline sweep --query boundary``), null where none in the grid is.
    """
    batch, seq_len = _axis(batches, "batch"), _axis(seq_lens, "seq_len")
    if len(batch) * len(seq_len) > MAX_GRID_POINTS:
        raise InputError(f"heatmap: {len(batch)} batch sizes x {len(seq_len)} lengths is {len(batch) * len(seq_len):,} "
                         f"points, at most {MAX_GRID_POINTS:,} (fewer values, e.g. doubling)")
    if workload.new_tokens != 1:
        raise InputError("heatmap: the sweep prices one new token per sequence; new_tokens must be 1")
    grid = _grid(model, hardware, workload, batch, seq_len)
    run, device_note = on_device(model, workload, hardware)  # as the device runs it: 2:4 sparsity where it has units
    shape = (len(batch), len(seq_len))
    # The sweep's columns (iter_sweep): tokens over time, and the footprint against what the device lets a model use.
    capacity = hardware.available_memory_bytes
    time_s, expected_s = grid.time_s[0], grid.expected_time_s[0]
    fits = grid.memory_bytes <= (np.nan if capacity is None else capacity)
    compute_bound = grid.compute_bound[0]
    panel = HeatmapPanel((), np.array(batch), np.array(seq_len), (grid.tokens / time_s).reshape(shape),
                         compute_bound.reshape(shape), fits.reshape(shape))
    longest = max(seq_len) + (workload.phase == "decode")  # a decode step's token attends to the cache and itself
    warnings = [note for note in (model.context_warning(longest), device_note) if note is not None]
    if capacity is None:
        warnings.append(f"{hardware.name} does not say how much memory a model may use: no point is marked as fitting")
    return {
        "model": model.name,
        "model_display_name": model.display_name or model.name,
        "hardware": hardware.name,
        "hardware_display_name": hardware.display_name,
        "phase": workload.phase,
        "weights": weights_label(run.weights if run.weights is not None else run.weight_scheme(model)),
        "activations": workload.activation_format.name,
        "kv_cache": workload.kv_format.name,
        "flash_attention": workload.flash_attention,
        "capacity_bytes": capacity,
        "batch": list(batch),
        "seq_len": list(seq_len),
        "tokens_per_s": _rows(panel.tokens_per_s, shape),
        "expected_tokens_per_s": _rows(grid.tokens / expected_s, shape),
        "time_s": _rows(time_s, shape),
        "expected_time_s": _rows(expected_s, shape),
        "compute_bound": _rows(compute_bound, shape),
        "fits": _rows(fits, shape),
        "memory_bytes": _rows(grid.memory_bytes, shape),
        "boundary": [None if np.isnan(b) else int(b) for b in panel.boundary()],
        "warnings": warnings,
    }


def _sampled_steps(timeline: Timeline, samples: int) -> list[int]:
    """At most ``samples`` 1-based steps: the first, the last, evenly between, and each step at which the
    step's bound changes (while they leave room for the spread)."""
    changes = sorted({change.step for change in timeline.changes if change.name == "step"})
    room = samples - len(changes)
    if room < 2:
        changes, room = [], samples
    spread = np.unique(np.linspace(1, timeline.steps, min(room, timeline.steps)).round().astype(np.int64))
    return sorted({int(step) for step in spread} | set(changes))


def timeline_payload(model: ModelSpec, hardware: HardwareSpec, workload: Workload, prompt_len: int, steps: int,
                     samples: int = DEFAULT_TIMELINE_SAMPLES) -> dict[str, object]:
    """Prefill ``prompt_len`` tokens, then ``steps`` decode steps, for ``workload.batch`` sequences (its
    phase and seq_len are not used): ``generation_timeline``'s totals, its bound changes, and ``samples``
    of its steps (``time_s``: that step's; ``cumulative_time_s``: from the start, the prefill included).

    ``tpot_s`` (time per output token) is the mean decode step; ``fits`` is null where the device does
    not say how much memory a model may use.
    """
    count("samples", samples, TIMELINE_SAMPLES)
    timeline = generation_timeline(model, hardware, workload, prompt_len, steps)
    totals = timeline.totals
    cumulative_s = timeline.cumulative_time_s
    sampled = _sampled_steps(timeline, samples)
    note = on_device(model, workload, hardware)[1]
    context = model.context_warning(prompt_len + steps)
    warnings = [text for text in (context, note) if text is not None]
    return {
        "model": timeline.model,
        "model_display_name": model.display_name or model.name,
        "hardware": timeline.hardware,
        "hardware_display_name": hardware.display_name,
        "batch": timeline.workload.batch,
        "prompt_len": timeline.prompt_len,
        "decode_steps": timeline.steps,
        "new_tokens": totals.new_tokens,
        "ttft_s": totals.ttft_s,
        "tpot_s": totals.mean_step_time_s,
        "first_step_time_s": totals.first_step_time_s,
        "last_step_time_s": totals.last_step_time_s,
        "decode_time_s": totals.decode_time_s,
        "total_time_s": totals.total_time_s,
        "tokens_per_s": totals.tokens_per_s,
        "decode_tokens_per_s": totals.decode_tokens_per_s,
        "prefill_bound": totals.prefill_bound,
        "fits": totals.fits,
        "memory_bytes": totals.memory_bytes,
        "final_kv_cache_bytes": totals.final_kv_cache_bytes,
        "capacity_bytes": hardware.available_memory_bytes,
        "exceeds_context": totals.exceeds_context,
        "changes": [change._asdict() for change in timeline.changes[:MAX_CHANGES]],
        "changes_total": len(timeline.changes),
        "steps": [{"step": step, "past_len": int(timeline.past_len[step - 1]),
                   "time_s": float(timeline.step_time_s[step - 1]),
                   "cumulative_time_s": float(cumulative_s[step - 1]),
                   "compute_bound": bool(timeline.step_compute_bound[step - 1])} for step in sampled],
        "warnings": warnings,
    }
