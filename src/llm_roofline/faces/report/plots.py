"""Pictures of what the analyzer and the studies compute: matplotlib figures, saved as PNG, SVG or PDF.

Each ``*_figure`` function takes finished results (analyses, study results, a measured profile) and
returns a ``matplotlib.figure.Figure``; nothing here computes a cost. Figures are built without
pyplot (no global state, no display) and rendered by Agg. matplotlib is imported inside the
functions, so importing this module costs nothing.

Artists that tests and readers look for carry a ``gid`` (kept in SVG output as element ids):

- roofs: ``memory:<device>``, ``ceiling:<device>:<precisions>``, ``ridge:<device>:<precisions>``,
  ``ridge-label:...``, and ``level:<cache level>`` on a measured roofline;
- points: ``ops:<device>:<phase>`` (one collection, one point per operator), ``op-label:<names>``,
  ``measured:<precision>``;
- the other plots: ``group:<device>:<phase>:<group>`` (breakdown bars), ``share:<phase>``,
  ``time-share:<phase>``, ``idealized``, ``threshold:<share>``, ``crossover:<phase>`` (share),
  ``step-time:<device>``, ``bound-change:<device>:<step>``, ``cumulative-flops`` (timeline),
  ``decode-time:<model>:<device>``, ``held:<model>:<device>``, ``capacity:<device>`` (context).
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_roofline.core.errors import InputError
from llm_roofline.core.units import seconds, si
from llm_roofline.faces.report.charts import (
    ceilings,
    main_ops,
    model_label,
    short_name,
    time_by_group,
    time_share,
    workload_label,
)
from llm_roofline.inputs.files import atomic_output

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter
    from matplotlib.transforms import Bbox

    from llm_roofline.core.hardware import HardwareSpec
    from llm_roofline.core.models import ModelSpec
    from llm_roofline.core.roofline import Analysis
    from llm_roofline.core.transformer import Workload
    from llm_roofline.faces.report.charts import Ceiling, MeasuredProfile
    from llm_roofline.features.studies.context import ContextCurve
    from llm_roofline.features.studies.share import ShareStudy
    from llm_roofline.features.studies.timeline import Timeline
    from llm_roofline.features.sweep import HeatmapPanel as SweepPanel

FIGURE_FORMATS = ("png", "svg", "pdf")
DPI = 110
PHASE_MARKERS = {"prefill": "o", "decode": "D"}
GROUP_COLORS = {"embedding": "#8c564b", "attention": "#1f77b4", "mixer": "#17becf", "ffn": "#ff7f0e",
                "norm": "#2ca02c", "residual": "#9467bd", "lm_head": "#d62728"}
DEVICE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
# Where a label may go around its anchor, in points, tried in order until one overlaps nothing.
LABEL_OFFSETS_PT = ((8, 6), (8, -14), (-8, 6), (-8, -14), (14, 20), (14, -28), (-14, 20), (-14, -28),
                    (24, 2), (-24, 2), (30, 36), (30, -44), (-30, 36), (-30, -44), (48, 12), (-48, 12))


def _new_figure(width_in: float, height_in: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _decades(values: Sequence[float]) -> tuple[float, float]:
    """Log-axis limits around ``values``: whole powers of ten, with room below (1/2) and above (x3)."""
    return 10 ** math.floor(math.log10(min(values) / 2)), 10 ** math.ceil(math.log10(max(values) * 3))


def _roofline_axes(fig: Figure, x_range: tuple[float, float], y_range: tuple[float, float], y_label: str) -> Axes:
    """Log-log axes of arithmetic intensity (FLOP/byte) against FLOP/s, with SI tick labels and a grid."""
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*x_range)
    ax.set_ylim(*y_range)
    ax.set_xlabel("arithmetic intensity (FLOP/byte)", fontsize=11)
    ax.set_ylabel(y_label, fontsize=11)
    ax.xaxis.set_major_formatter(_si_formatter(""))
    ax.yaxis.set_major_formatter(_si_formatter("FLOP/s"))
    ax.grid(True, which="major", color="#dddddd", lw=0.6)
    return ax


def _titles(fig: Figure, ax: Axes, headline: str, workload: str) -> None:
    fig.suptitle(headline, fontsize=14, fontweight="bold")
    ax.set_title(workload, fontsize=10, color="#333333")


def _si_formatter(unit: str) -> FuncFormatter:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _pos: si(value, unit, digits=3))


def _freeze_layout(fig: Figure) -> RendererBase:
    """Run the layout once and keep it, so that labels placed next see their final positions."""
    fig.canvas.draw()
    fig.set_layout_engine("none")
    # The Agg canvas every figure here is drawn on has get_renderer; FigureCanvasBase's stubs do not.
    renderer: RendererBase = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    return renderer


def _place_label(ax: Axes, text: str, xy: tuple[float, float], taken: list[Bbox], renderer: RendererBase,
                 gid: str, **style: Any) -> bool:
    """Annotate ``xy`` at the first offset whose box overlaps no box in ``taken`` and stays inside the
    axes; give up (no label) when none does. Returns whether the label was placed."""
    from matplotlib.text import Text

    inside = ax.get_window_extent(renderer)
    for dx, dy in LABEL_OFFSETS_PT:
        far = abs(dx) > 10 or abs(dy) > 16
        label = ax.annotate(
            text, xy, xytext=(dx, dy), textcoords="offset points", fontsize=9,
            ha="left" if dx > 0 else "right", va="bottom" if dy > 0 else "top", gid=gid,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            arrowprops={"arrowstyle": "-", "color": "#555555", "lw": 0.6} if far else None, **style,
        )
        label.update_positions(renderer)
        box = Text.get_window_extent(label, renderer).expanded(1.04, 1.1)  # the text's box, not its leader line
        if (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
                and not any(box.overlaps(other) for other in taken)):
            taken.append(box)
            return True
        label.remove()
    return False


def _number(value: float) -> str:
    """3 significant digits without an exponent: 0.999, 51.8, 1,310."""
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def _group_label(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} +{len(names) - limit}"


def _draw_roofs(ax: Axes, device: HardwareSpec, roofs: Sequence[Ceiling], color: str, x_range: tuple[float, float],
                label: str | None = None) -> None:
    """The memory slope up to the highest roof, each roof flat from its ridge point, each ridge point marked."""
    x_min, x_max = x_range
    top = roofs[0]
    ax.plot([x_min, top.ridge_flop_per_byte], [x_min * device.memory_bytes_per_s, top.peak_flops_per_s], color=color,
            lw=2, gid=f"memory:{device.name}", label=label)
    for rank, roof in enumerate(roofs):
        ax.plot([roof.ridge_flop_per_byte, x_max], [roof.peak_flops_per_s] * 2, color=color,
                lw=2 if rank == 0 else 1.3, ls="-" if rank == 0 else (0, (5, 2)),
                gid=f"ceiling:{device.name}:{roof.label}")
        ax.plot([roof.ridge_flop_per_byte], [roof.peak_flops_per_s], "o", ms=6, mfc="white", mec=color, mew=1.5,
                gid=f"ridge:{device.name}:{roof.label}")


def _label_ridges(ax: Axes, device: HardwareSpec, roofs: Sequence[Ceiling], color: str, taken: list[Bbox],
                  renderer: RendererBase) -> None:
    for roof in roofs:
        ridge = _number(roof.ridge_flop_per_byte)
        _place_label(ax, f"{roof.label} {si(roof.peak_flops_per_s, 'FLOP/s')}, ridge {ridge} FLOP/B",
                     (roof.ridge_flop_per_byte, roof.peak_flops_per_s), taken, renderer,
                     gid=f"ridge-label:{device.name}:{roof.label}", color=color)


def roofline_figure(analyses: Sequence[Analysis], precisions: Iterable[str] | None = None,
                    label_limit: int = 8) -> Figure:
    """The roofline of every device among ``analyses`` with their operators as points.

    Per device: the memory slope and one flat roof per precision (precisions with equal peaks share
    a roof), each ridge point marked and labelled. Per analysis: one point per operator at its
    arithmetic intensity and attainable FLOP/s, marker by phase, area by share of the step's time.
    The main operators of the first device are labelled, without overlap.
    """
    if not analyses:
        raise InputError("a roofline plot needs at least one analysis")
    wanted = None if precisions is None else tuple(precisions)
    devices = list({a.hardware.name: a.hardware for a in analyses}.values())
    roofs = {d.name: ceilings(d, wanted) for d in devices}
    color = {d.name: DEVICE_COLORS[i % len(DEVICE_COLORS)] for i, d in enumerate(devices)}
    phases = list(dict.fromkeys(a.workload.phase for a in analyses))

    intensities = [op.arithmetic_intensity for a in analyses for op in a.ops
                   if 0 < op.arithmetic_intensity < math.inf]
    ridges = [c.ridge_flop_per_byte for rs in roofs.values() for c in rs]
    x_min, x_max = _decades([*intensities, *ridges])
    attained = [op.attainable_flops_per_s for a in analyses for op in a.ops if op.attainable_flops_per_s > 0]
    peaks = [c.peak_flops_per_s for rs in roofs.values() for c in rs]
    y_min, y_max = _decades([*attained, min(peaks) / 10, max(peaks)])

    fig = _new_figure(11, 7.2)
    ax = _roofline_axes(fig, (x_min, x_max), (y_min, y_max), "attainable performance (FLOP/s)")
    ax.grid(True, which="minor", color="#f0f0f0", lw=0.4)

    for device in devices:
        _draw_roofs(ax, device, roofs[device.name], color[device.name], (x_min, x_max))

    for analysis in analyses:
        device_name = analysis.hardware.name
        points = [op for op in analysis.ops if 0 < op.arithmetic_intensity < math.inf]  # fused: no bytes, no point
        ax.scatter([op.arithmetic_intensity for op in points], [op.attainable_flops_per_s for op in points],
                   s=[25 + 900 * time_share(op, analysis) for op in points],
                   marker=PHASE_MARKERS[analysis.workload.phase],
                   c=color[device_name], alpha=0.6, edgecolors="black", linewidths=0.6, zorder=3,
                   gid=f"ops:{device_name}:{analysis.workload.phase}")

    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color[d.name], lw=2,
                      label=f"{d.display_name} ({si(d.memory_bytes_per_s, 'B/s')})") for d in devices]
    handles += [Line2D([], [], ls="", marker=PHASE_MARKERS[p], color="#777777", mec="black", ms=8,
                       label=f"{p} operators") for p in phases]
    handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec="#333333", ms=7, label="ridge point"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=9, frameon=False,
               title="marker area ∝ share of the step's time", title_fontsize=9)
    first = analyses[0]
    _titles(fig, ax, f"Roofline: {model_label(first)} on {', '.join(d.display_name for d in devices)}",
            workload_label(first.workload, phases))

    renderer = _freeze_layout(fig)
    taken: list[Bbox] = []
    for device in devices:
        _label_ridges(ax, device, roofs[device.name], color[device.name], taken, renderer)
    for analysis in (a for a in analyses if a.hardware.name == devices[0].name):
        clusters: dict[tuple[int, int], list[Any]] = {}
        for op in main_ops(analysis, label_limit):
            key = (round(20 * math.log10(op.arithmetic_intensity)), round(20 * math.log10(op.attainable_flops_per_s)))
            clusters.setdefault(key, []).append(op)
        for ops in clusters.values():
            names = [short_name(op.name) for op in ops]
            share = sum(time_share(op, analysis) for op in ops)
            text = f"{_group_label(names)} ({analysis.workload.phase}, {100 * share:.0f}%)"
            _place_label(ax, text, (ops[0].arithmetic_intensity, ops[0].attainable_flops_per_s), taken, renderer,
                         gid=f"op-label:{','.join(names)}")
    return fig


def breakdown_figure(analyses: Sequence[Analysis]) -> Figure:
    """Share of the step's time by operator group (attention, FFN, norms, lm_head...), one bar per
    analysis (device x phase), with the step time at the end of each bar."""
    if not analyses:
        raise InputError("a breakdown plot needs at least one analysis")
    rows = [(a, time_by_group(a)) for a in analyses]
    groups = list(dict.fromkeys(g for _, times in rows for g in times))
    fig = _new_figure(11, 1.6 + 0.62 * len(rows))
    ax = fig.add_subplot()
    labels = []
    for row, (analysis, times) in enumerate(rows):
        left = 0.0
        labels.append(f"{analysis.hardware.display_name}\n{analysis.workload.phase}")
        for group in groups:
            share = 100 * times.get(group, 0.0) / analysis.totals.time_s
            if share <= 0:
                continue
            ax.barh(row, share, left=left, color=GROUP_COLORS.get(group, "#7f7f7f"), edgecolor="white",
                    height=0.7, gid=f"group:{analysis.hardware.name}:{analysis.workload.phase}:{group}")
            if share >= 6:
                ax.text(left + share / 2, row, f"{share:.0f}%", ha="center", va="center", fontsize=9, color="white",
                        fontweight="bold")
            left += share
        ax.text(101, row, f"{seconds(analysis.totals.time_s)}/step, {analysis.totals.bound}-bound",
                va="center", fontsize=9)
    ax.set_yticks(range(len(rows)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 128)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("share of the step's time (%)", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=GROUP_COLORS.get(g, "#7f7f7f"), label=g) for g in groups],
               loc="outside lower center", ncols=len(groups), fontsize=9, frameon=False)
    first = analyses[0]
    devices = list({a.hardware.name: a.hardware for a in analyses}.values())
    phases = list(dict.fromkeys(a.workload.phase for a in analyses))
    _titles(fig, ax, f"Time by operator group: {model_label(first)} on {', '.join(d.display_name for d in devices)}",
            workload_label(first.workload, phases))
    return fig


def save_figure(fig: Figure, path: str | Path, fmt: str | None = None, name: str = "path") -> Path:
    """Write ``fig`` to ``path`` as PNG, SVG or PDF (``fmt``, or else the path's extension), atomically: a failed
    write leaves the previous file (``files.atomic_output``). ``name``: the option or parameter, for messages."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FIGURE_FORMATS:
        raise InputError(f"cannot tell the image format of '{path}': use a .png, .svg or .pdf name or --format")
    with atomic_output(path, name, "wb") as out:
        fig.savefig(out, format=fmt, metadata=_reproducible_metadata(fmt))
    return path


def _reproducible_metadata(fmt: str) -> dict[str, Any]:
    """No creation date in SVG/PDF files, so that a committed sample changes only when the picture does."""
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None}
    return {}


def share_figure(studies: Sequence[ShareStudy], model: ModelSpec, hardware: HardwareSpec | None,
                 workload: Workload) -> Figure:
    """Attention's share of attention + FFN FLOPs vs sequence length, one curve per study (phase), beside
    the chapter's idealized layer, with the chapter's thresholds (35 %, 50 %) and the crossover length."""
    from llm_roofline.features.studies.share import HIGH_SHARE, LOW_SHARE, recommend

    if not studies:
        raise InputError("a share plot needs at least one study")
    fig = _new_figure(11, 6.8)
    ax = fig.add_subplot()
    ax.set_xscale("log", base=2)
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    ax.set_ylim(0, 100)
    ax.set_xlabel("sequence length L (tokens: the prompt in prefill, the tokens cached in decode)", fontsize=11)
    ax.set_ylabel("attention / (attention + FFN)  (%)", fontsize=11)
    ax.grid(True, color="#e4e4e4", lw=0.6)
    lengths = [row.seq_len for row in studies[0].rows]
    bands = ((0, LOW_SHARE, "#eef5ee"), (LOW_SHARE, HIGH_SHARE, "#fdf6e3"), (HIGH_SHARE, 1, "#fbeaea"))
    for low, high, shade in bands:
        ax.axhspan(100 * low, 100 * high, color=shade, zorder=0)
        advice = recommend((low + high) / 2)
        ax.text(0.01, (low + high) / 2 * 100, f"{advice.band}: {advice.focus}", transform=ax.get_yaxis_transform(),
                va="center", fontsize=10, color="#555555")
    for threshold in (LOW_SHARE, HIGH_SHARE):
        ax.axhline(100 * threshold, color="#444444", lw=1.2, ls=(0, (4, 3)), gid=f"threshold:{threshold:g}")
    ax.plot(lengths, [100 * row.idealized_share for row in studies[0].rows], color="black", lw=1.4, ls="--",
            gid="idealized", zorder=4, label=f"chapter's idealized layer: 1/2 + L/(4d), d = {studies[0].hidden_size}")
    for index, study in enumerate(studies):
        color = DEVICE_COLORS[index % len(DEVICE_COLORS)]
        # Wider lines first: curves that coincide (prefill and decode FLOPs often do) stay visible.
        ax.plot(lengths, [100 * row.share for row in study.rows], color=color, lw=5 - 2.5 * min(index, 1),
                alpha=0.8, gid=f"share:{study.phase}",
                label=f"{model.display_name or model.name}, {study.phase}: FLOPs (operator model)")
        if all(row.attention_time_share is not None for row in study.rows) and hardware is not None:
            ax.plot(lengths, [100 * (row.attention_time_share or 0) for row in study.rows], color=color, lw=1.4,
                    ls=":", gid=f"time-share:{study.phase}",
                    label=f"{study.phase}: share of the time on {hardware.display_name}")
        crossover = study.crossover_seq_len
        if crossover is not None and lengths[0] <= crossover <= lengths[-1]:
            ax.axvline(crossover, color=color, lw=1, ls="-.", gid=f"crossover:{study.phase}")
            ax.annotate(f"{study.phase}: {100 * study.target_share:.0f}% at L = {crossover:,}",
                        (crossover, 100 * study.target_share), xytext=(8, -18 - 16 * index), textcoords="offset points",
                        fontsize=9, color=color, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})
    ax.set_xlim(lengths[0], lengths[-1])
    fig.legend(loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    phases = [s.phase for s in studies]
    _titles(fig, ax, f"Attention share vs length: {model.display_name or model.name}"
                     + (f" on {hardware.display_name}" if hardware is not None else ""),
            f"{' and '.join(phases)}, batch {workload.batch}, weights {workload.weight_format.name}, "
            f"activations {workload.activation_format.name}" + (", FlashAttention" if workload.flash_attention else ""))
    return fig


def timeline_figure(timelines: Sequence[Timeline], model: ModelSpec, devices: Sequence[HardwareSpec]) -> Figure:
    """A generation step by step: the time of each decode step as the KV cache grows (one line per device),
    and the cumulative FLOPs, FLOPs_total(t) = FLOPs_prefill + sum of the decode steps' FLOPs."""
    if not timelines or len(timelines) != len(devices):
        raise InputError("a timeline plot needs one timeline per device")
    first = timelines[0]
    steps = list(range(1, first.steps + 1))
    fig = _new_figure(11, 7.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    summary = []
    for index, (timeline, device) in enumerate(zip(timelines, devices, strict=True)):
        color = DEVICE_COLORS[index % len(DEVICE_COLORS)]
        t = timeline.totals
        top.plot(steps, timeline.step_time_s * 1e3, color=color, lw=2, gid=f"step-time:{device.name}",
                 label=f"{device.display_name}: TTFT {seconds(t.ttft_s)}, {t.decode_tokens_per_s:.4g} tokens/s "
                       f"decoding, {seconds(t.total_time_s)} in all")
        for change in timeline.changes:
            if change.name == "step":
                at_ms = float(timeline.step_time_s[change.step - 1]) * 1e3
                top.axvline(change.step, color=color, ls=":", lw=1.2, gid=f"bound-change:{device.name}:{change.step}")
                top.annotate(f"step {change.step:,} ({change.past_len:,} cached):\n{change.from_bound} → "
                             f"{change.to_bound}-bound", (change.step, at_ms), xytext=(8, -30),
                             textcoords="offset points", fontsize=9, color=color,
                             bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})
        summary.append(t)
    top.set_ylabel("time per decode step (ms)", fontsize=11)
    top.set_ylim(0, 1.35 * max(float(t.step_time_s.max()) for t in timelines) * 1e3)  # room for the legend
    top.grid(True, color="#e4e4e4", lw=0.6)
    top.legend(fontsize=9, loc="lower right", frameon=True, framealpha=0.9, edgecolor="none")
    bottom.plot(steps, first.cumulative_flops, color="#444444", lw=2, gid="cumulative-flops",
                label="FLOPs_total(t) = FLOPs_prefill + Σ FLOPs_decode")
    bottom.axhline(first.totals.prefill_flops, color="#999999", ls="--", lw=1, gid="prefill-flops",
                   label=f"prefill: {si(first.totals.prefill_flops, 'FLOP')}")
    bottom.set_ylabel("cumulative FLOPs", fontsize=11)
    bottom.yaxis.set_major_formatter(_si_formatter("FLOP"))
    bottom.set_ylim(bottom=0)
    bottom.set_xlim(1, max(first.steps, 2))
    bottom.grid(True, color="#e4e4e4", lw=0.6)
    bottom.legend(fontsize=9, loc="upper left", frameon=False)
    bottom.set_xlabel(f"decode step t (tokens cached: {first.prompt_len} + t − 1)", fontsize=11)
    wl = first.workload
    _titles(fig, top, f"Generation timeline: {model.display_name or model.name} on "
                      f"{', '.join(d.display_name for d in devices)}",
            f"prompt {first.prompt_len} tokens + {first.steps} decode steps, batch {wl.batch}, weights "
            f"{wl.weight_format.name}, activations {wl.activation_format.name}, KV {wl.kv_format.name}")
    return fig


def context_figure(curves: Sequence[ContextCurve], workload: Workload) -> Figure:
    """Models side by side as the context grows: the time of one decode step (top) and the memory the
    deployment holds (bottom, with each device's usable memory), one colour per model and one line style per
    device, the context on a log scale. A flat line is a per-token cost that does not grow with the context."""
    if not curves:
        raise InputError("a context plot needs at least one model on one device")
    fig = _new_figure(11, 8.2)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1))
    models = list(dict.fromkeys(c.model for c in curves))
    devices = list(dict.fromkeys(c.hardware for c in curves))
    styles = ("-", "--", ":", "-.")
    for curve in curves:
        color = DEVICE_COLORS[models.index(curve.model) % len(DEVICE_COLORS)]
        style = styles[devices.index(curve.hardware) % len(styles)]
        lengths = [p.seq_len for p in curve.points]
        attending = f"{curve.attention_layers}/{curve.layers} layers attend"
        top.plot(lengths, [p.decode_time_s * 1e3 for p in curve.points], color=color, ls=style, lw=2, marker="o",
                 ms=4, gid=f"decode-time:{curve.model}:{curve.hardware}",
                 label=f"{curve.model_label} ({attending}) on {curve.hardware_label}: ×{curve.growth:.3g}")
        bottom.plot(lengths, [p.memory_bytes for p in curve.points], color=color, ls=style, lw=2, marker="o", ms=4,
                    gid=f"held:{curve.model}:{curve.hardware}")
    for curve in {c.hardware: c for c in curves}.values():
        if curve.capacity_bytes is not None:
            style = styles[devices.index(curve.hardware) % len(styles)]
            bottom.axhline(curve.capacity_bytes, color="#777777", ls=style, lw=1, gid=f"capacity:{curve.hardware}",
                           label=f"{curve.hardware_label}: {si(curve.capacity_bytes, 'B')} usable")
    top.set_ylabel("time per decode step (ms)", fontsize=11)
    top.set_ylim(bottom=0)
    top.grid(True, color="#e4e4e4", lw=0.6)
    top.legend(fontsize=8.5, loc="upper left", frameon=True, framealpha=0.9, edgecolor="none")
    bottom.set_ylabel("memory held", fontsize=11)
    bottom.yaxis.set_major_formatter(_si_formatter("B"))
    bottom.set_ylim(bottom=0)
    bottom.set_xscale("log", base=2)
    from matplotlib.ticker import FuncFormatter

    bottom.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value / 1024:g} k" if value >= 1024
                                                   else f"{value:g}"))  # contexts in binary thousands
    bottom.grid(True, color="#e4e4e4", lw=0.6)
    bottom.legend(fontsize=8.5, loc="upper left", frameon=False)
    bottom.set_xlabel("context L (tokens cached before the step)", fontsize=11)
    names = ", ".join(dict.fromkeys(c.model_label for c in curves))
    _titles(fig, top, f"Decode cost and memory vs context: {names}",
            f"decode, batch {workload.batch}, weights {workload.weights_label}, activations "
            f"{workload.activation_format.name}, KV {workload.kv_format.name}"
            + (", FlashAttention" if workload.flash_attention else ""))
    bottom.set_title("weights + KV cache + recurrent state + activations + runtime", fontsize=9, color="#333333")
    return fig


def measured_figure(profile: MeasuredProfile) -> Figure:
    """A measured device profile: its roofs (DRAM slope, one flat roof per measured precision), the
    bandwidth of each cache level as a fainter slope, and the measured kernels as points."""
    hardware = profile.hardware
    roofs = ceilings(hardware, hardware.peak_flops_per_s)
    bandwidths = [hardware.memory_bytes_per_s, *(level.bytes_per_s for level in profile.levels)]
    intensities = [p.arithmetic_intensity for p in profile.points] + [r.ridge_flop_per_byte for r in roofs]
    x_min, x_max = _decades([*intensities, 0.1])
    y_values = [p.flops_per_s for p in profile.points] + [r.peak_flops_per_s for r in roofs]
    y_min, y_max = _decades([*y_values, x_min * min(bandwidths)])
    fig = _new_figure(11, 7.2)
    ax = _roofline_axes(fig, (x_min, x_max), (y_min, y_max), "performance (FLOP/s)")
    _draw_roofs(ax, hardware, roofs, DEVICE_COLORS[0], (x_min, x_max), f"DRAM {si(hardware.memory_bytes_per_s, 'B/s')}")
    top = roofs[0]
    for level in profile.levels:
        knee = top.peak_flops_per_s / level.bytes_per_s
        ax.plot([x_min, knee], [x_min * level.bytes_per_s, top.peak_flops_per_s], color=DEVICE_COLORS[0], lw=1,
                alpha=0.45, ls=(0, (3, 2)), gid=f"level:{level.label}",
                label=f"{level.label}: {si(level.bytes_per_s, 'B/s')}")
    kinds = list(dict.fromkeys(p.precision for p in profile.points))
    for index, kind in enumerate(kinds):
        chosen = [p for p in profile.points if p.precision == kind]
        ax.scatter([p.arithmetic_intensity for p in chosen], [p.flops_per_s for p in chosen], s=40, zorder=3,
                   color=DEVICE_COLORS[(index + 1) % len(DEVICE_COLORS)], edgecolors="black", linewidths=0.5,
                   gid=f"measured:{kind}", label=f"measured kernels ({kind})" if kind else "measured kernels")
    if not profile.points:
        ax.text(0.5, 0.04, "no measured kernels in this profile", transform=ax.transAxes, ha="center", fontsize=10,
                color="#777777")
    fig.legend(loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    source = textwrap.fill(textwrap.shorten(profile.description, 260, placeholder=" …"), 130)
    _titles(fig, ax, f"Measured roofline: {hardware.display_name}", source)
    renderer = _freeze_layout(fig)
    _label_ridges(ax, hardware, roofs, DEVICE_COLORS[0], [], renderer)
    return fig


def _cell_edges(values: Sequence[float]) -> tuple[list[float], bool]:
    """Cell edges around sorted grid values, and whether the axis is logarithmic (values spanning 16x
    or more): edges halfway between neighbours (geometrically on a log axis)."""
    log = values[0] > 0 and values[-1] / values[0] >= 16
    pos = [math.log(v) for v in values] if log else list(values)
    if len(pos) == 1:
        edges = [pos[0] - (math.log(2) / 2 if log else 0.5), pos[0] + (math.log(2) / 2 if log else 0.5)]
    else:
        middles = [(a + b) / 2 for a, b in itertools.pairwise(pos)]
        edges = [2 * pos[0] - middles[0], *middles, 2 * pos[-1] - middles[-1]]
    return ([math.exp(e) for e in edges] if log else edges), log


def sweep_heatmap_figure(panels: Sequence[SweepPanel], value_label: str = "tokens/s") -> Figure:
    """Tokens/s over batch x length, one panel per model, device, phase and format of a sweep: the
    colour is the throughput (log scale), a white line the boundary above which the step is
    compute-bound, grey the configurations whose weights and KV cache do not fit in memory."""
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if not panels:
        raise InputError("a heatmap needs at least one panel")
    cols = 2 if len(panels) == 4 else min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig = _new_figure(max(4.6 * cols + 1.2, 8.0), 3.9 * rows + 1.0)  # wide enough for the title
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    finite = np.concatenate([p.tokens_per_s[np.isfinite(p.tokens_per_s)] for p in panels])
    norm = LogNorm(vmin=float(finite.min()), vmax=float(finite.max()) * (1 + 1e-9))
    mesh = None
    for ax, panel in zip(axes, panels, strict=False):
        x_edges, x_log = _cell_edges([float(v) for v in panel.seq_len])
        y_edges, y_log = _cell_edges([float(v) for v in panel.batch])
        mesh = ax.pcolormesh(x_edges, y_edges, panel.tokens_per_s, norm=norm, cmap="viridis",
                             gid=f"heatmap:{panel.label}")
        no_fit = np.ma.masked_where(panel.fits, np.ones(panel.fits.shape))
        ax.pcolormesh(x_edges, y_edges, no_fit, cmap="Greys", vmin=0, vmax=1.6, alpha=0.85,
                      gid=f"no-fit:{panel.label}")
        boundary = panel.boundary()
        xs: list[float] = []
        ys: list[float] = []
        for j, batch in enumerate(boundary):  # the lower edge of the first compute-bound cell, per column
            y = y_edges[int(np.searchsorted(panel.batch, batch))] if np.isfinite(batch) else math.nan
            xs += [x_edges[j], x_edges[j + 1]]
            ys += [y, y]
        ax.plot(xs, ys, color="white", lw=2.2, gid=f"boundary:{panel.label}")
        uniform = ("compute" if panel.compute_bound.all() else "memory" if not panel.compute_bound.any() else None)
        if uniform:  # no boundary inside the grid: say which side of it the whole grid is on
            ax.text(0.03, 0.04, f"{uniform}-bound everywhere", transform=ax.transAxes, fontsize=9, color="white",
                    gid=f"bound-everywhere:{panel.label}",
                    bbox={"boxstyle": "round,pad=0.25", "fc": "#40466e", "ec": "none", "alpha": 0.85})
        ax.set_xscale("log" if x_log else "linear")
        ax.set_yscale("log" if y_log else "linear")
        ax.set_xlim(x_edges[0], x_edges[-1])
        ax.set_ylim(y_edges[0], y_edges[-1])
        ax.set_xlabel("sequence length (tokens)", fontsize=9)
        ax.set_ylabel("batch", fontsize=9)
        ax.set_title(textwrap.fill(panel.label, 52), fontsize=9)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    assert mesh is not None  # there is at least one panel
    fig.colorbar(mesh, ax=axes[:len(panels)].tolist(), label=value_label, shrink=0.9)
    fig.legend(handles=[Line2D([], [], color="white", lw=2.2), Patch(facecolor="#9a9a9a", edgecolor="none")],
               labels=["compute-bound at and above this batch", "does not fit in memory"],
               loc="outside lower center", ncol=2, fontsize=9, frameon=True, facecolor="#40466e",
               labelcolor="white", edgecolor="none")
    fig.suptitle(f"Sweep: {value_label} over batch × sequence length", fontsize=13, fontweight="bold")
    return fig
