"""Plots: each file is written and non-empty, and each figure has the expected artists (found by gid)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import require_module
from llm_roofline import analyze
from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli.main import main
from llm_roofline.faces.report.charts import INFERENCE_PRECISIONS, time_by_group
from llm_roofline.faces.report.plots import breakdown_figure, roofline_figure, save_figure
from llm_roofline.inputs.device_files import load_hardware

require_module("matplotlib")

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "pdf": b"%PDF"}


def with_gid(fig: Any, prefix: str) -> list[Any]:
    return fig.findobj(lambda artist: (artist.get_gid() or "").startswith(prefix))


def distinct_peaks(device: str) -> int:
    peaks = load_hardware(device).peak_flops_per_s
    return len({v for p, v in peaks.items() if p in INFERENCE_PRECISIONS})


def both_phases(device: str = "jetson-orin-nx", model: str = "llama-2-7b") -> list[Any]:
    return [analyze(model, device, phase=phase, seq_len=1024) for phase in ("prefill", "decode")]


def test_roofline_has_one_roof_per_distinct_peak_and_one_point_per_operator() -> None:
    analyses = both_phases()
    fig = roofline_figure(analyses)
    # Jetson Orin NX: fp32 1.88 and fp16 5.3 TFLOP/s -> two roofs, two ridge points, one memory slope.
    assert len(with_gid(fig, "ceiling:jetson-orin-nx:")) == 2
    assert len(with_gid(fig, "ridge:jetson-orin-nx:")) == 2
    assert len(with_gid(fig, "memory:jetson-orin-nx")) == 1
    for analysis in analyses:
        (points,) = with_gid(fig, f"ops:jetson-orin-nx:{analysis.workload.phase}")
        # Every operator with FLOPs is a point (the embedding lookup has none: intensity 0, off a log axis).
        assert len(points.get_offsets()) == sum(op.arithmetic_intensity > 0 for op in analysis.ops) == 18
    assert len({c.get_paths()[0].vertices.tobytes() for c in with_gid(fig, "ops:")}) == 2  # two markers


def test_roofline_of_two_devices_labels_without_overlap() -> None:
    analyses = both_phases("jetson-orin-nx") + both_phases("nvidia-rtx-4090")
    fig = roofline_figure(analyses)
    assert len(with_gid(fig, "ceiling:nvidia-rtx-4090:")) == distinct_peaks("nvidia-rtx-4090") == 5
    assert len(with_gid(fig, "ceiling:")) == 2 + 5
    assert len(with_gid(fig, "ops:")) == 4
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert "FLOP/byte" in ax.get_xlabel() and "FLOP/s" in ax.get_ylabel()
    headline = fig.get_suptitle()
    assert "Llama-2-7B" in headline and "Jetson Orin NX" in headline and "RTX 4090" in headline
    assert "batch 1" in ax.get_title() and "prefill" in ax.get_title() and "decode" in ax.get_title()
    renderer = fig.canvas.get_renderer()
    labels = with_gid(fig, "op-label:") + with_gid(fig, "ridge-label:")
    assert with_gid(fig, "op-label:"), "the main operators are labelled"
    from matplotlib.text import Text

    boxes = [Text.get_window_extent(label, renderer) for label in labels]  # the text, not its leader line
    assert not [(a, b) for a, b in combinations(boxes, 2) if a.overlaps(b)]


def test_precisions_option_limits_the_roofs() -> None:
    fig = roofline_figure(both_phases("nvidia-rtx-4090"), precisions=["fp16", "bf16", "int8"])
    # fp16 and bf16 share 165.2 TFLOP/s: one roof; int8 another.
    assert sorted(a.get_gid() for a in with_gid(fig, "ceiling:")) == ["ceiling:nvidia-rtx-4090:fp16/bf16",
                                                                        "ceiling:nvidia-rtx-4090:int8"]
    with pytest.raises(InputError, match="none of the precisions"):
        roofline_figure(both_phases(), precisions=["int4"])


def test_breakdown_has_one_bar_segment_per_group_with_time() -> None:
    analyses = both_phases("jetson-orin-nx") + both_phases("apple-m2-gpu")
    fig = breakdown_figure(analyses)
    expected = sum(1 for a in analyses for t in time_by_group(a).values() if t > 0)
    assert len(with_gid(fig, "group:")) == expected
    assert with_gid(fig, "group:apple-m2-gpu:decode:ffn")
    # Segment widths are shares of the step's time: each bar adds up to 100 %.
    for a in analyses:
        bars = with_gid(fig, f"group:{a.hardware.name}:{a.workload.phase}:")
        assert sum(bar.get_width() for bar in bars) == pytest.approx(100)
    assert "Time by operator group" in fig.get_suptitle()


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_save_writes_each_format(tmp_path: Path, fmt: str) -> None:
    path = save_figure(roofline_figure(both_phases()), tmp_path / f"roofline.{fmt}")
    data = path.read_bytes()
    assert len(data) > 10_000 and data.startswith(MAGIC[fmt])


def test_save_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.png, \.svg or \.pdf"):
        save_figure(breakdown_figure(both_phases()), tmp_path / "x.bmp")


def test_plot_command_writes_the_file_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "r.svg"
    assert main(["plot", "roofline", "-m", "qwen2.5-0.5b", "-H", "jetson-orin-nx,apple-m2-gpu", "--batch", "4",
                 "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_bytes().startswith(MAGIC["svg"])
    out = tmp_path / "b.img"
    assert main(["plot", "breakdown", "--phase", "decode", "-o", str(out), "--format", "png"]) == 0
    assert out.read_bytes().startswith(MAGIC["png"])


def test_plot_command_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["plot", "roofline", "--precisions", "fp7", "-o", str(tmp_path / "x.png")]) == 2
    assert "unknown precision(s) fp7" in capsys.readouterr().err
    assert main(["plot", "roofline", "-H", "jetson-orin-nx,nope", "-o", str(tmp_path / "x.png")]) == 2
    assert "unknown hardware 'nope'" in capsys.readouterr().err


def test_share_plot_draws_the_studies_and_the_chapters_thresholds() -> None:
    from llm_roofline.core.transformer import Workload
    from llm_roofline.faces.report.plots import share_figure
    from llm_roofline.features.studies.share import share_study
    from llm_roofline.inputs.model_files import load_model

    model, device = load_model("llama-2-7b"), load_hardware("jetson-orin-nx")
    lengths = [256, 1024, 4096, 16384]
    studies = [share_study(model, Workload(phase=p), lengths, 0.5, hardware=device) for p in ("prefill", "decode")]
    fig = share_figure(studies, model, device, Workload())
    assert sorted(a.get_gid() for a in with_gid(fig, "threshold:")) == ["threshold:0.35", "threshold:0.5"]
    (line,) = with_gid(fig, "share:prefill")
    assert list(line.get_xdata()) == lengths
    assert list(line.get_ydata()) == [100 * row.share for row in studies[0].rows]  # drawn, not recomputed
    assert with_gid(fig, "idealized") and with_gid(fig, "time-share:decode")
    # Llama-2-7B (d = 4096) crosses 50 % near L = 2d: inside the range, so marked.
    assert with_gid(fig, "crossover:prefill")
    assert "Llama-2-7B" in fig.get_suptitle() and "Jetson Orin NX" in fig.get_suptitle()


def test_timeline_plot_has_one_step_time_line_per_device() -> None:
    from llm_roofline.core.transformer import Workload
    from llm_roofline.faces.report.plots import timeline_figure
    from llm_roofline.features.studies.timeline import generation_timeline
    from llm_roofline.inputs.model_files import load_model

    model = load_model("llama-3.2-1b")
    devices = [load_hardware("jetson-orin-nx"), load_hardware("nvidia-rtx-4090")]
    timelines = [generation_timeline(model, d, Workload(batch=4), 256, 1000) for d in devices]
    fig = timeline_figure(timelines, model, devices)
    lines = with_gid(fig, "step-time:")
    assert len(lines) == 2 and all(len(line.get_xdata()) == 1000 for line in lines)
    (cumulative,) = with_gid(fig, "cumulative-flops")
    assert cumulative.get_ydata()[-1] == pytest.approx(timelines[0].totals.flops)
    assert "prompt 256 tokens + 1000 decode steps, batch 4" in fig.axes[0].get_title()


PROFILE = """
name = "dev-box"
display_name = "Development box (measured)"
kind = "cpu"
memory_bytes = 25_000_000_000
memory_bytes_per_s = 43.5e9
source = "measured on dev-box, 2026-11-01, llm-roofline measure --save dev-box.toml"

[peak_flops_per_s]
fp64 = 117.3e9
fp32 = 234.7e9

[measured]
levels = [
  { label = "L1", working_set_bytes = 32768, bytes_per_s = 342e9 },
  { label = "L2", working_set_bytes = 1048576, bytes_per_s = 220e9 },
  { working_set_bytes = 16777216, bytes_per_s = 190e9 },
  { note = "unreadable, skipped" },
]
points = [
  { name = "gemv 4096", precision = "fp32", flops = 33554432, bytes = 67125248, time_s = 0.0016 },
  { name = "gemm 1024", precision = "fp32", arithmetic_intensity = 170.7, flops_per_s = 190e9 },
  { name = "gemm 1024", precision = "fp64", arithmetic_intensity = 85.3, flops_per_s = 100e9 },
]
"""


def test_measured_plot_reads_a_profile_tolerantly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llm_roofline.faces.report.charts import load_measured_profile
    from llm_roofline.faces.report.plots import measured_figure

    path = tmp_path / "dev-box.toml"
    path.write_text(PROFILE)
    profile = load_measured_profile(path)
    assert [level.label for level in profile.levels] == ["L1", "L2", "16.8 MB working set"]
    # 33,554,432 FLOP / 67,125,248 B = 0.49988 FLOP/B; / 1.6 ms = 20.97 GFLOP/s.
    assert profile.points[0].arithmetic_intensity == pytest.approx(0.49988, rel=1e-4)
    assert profile.points[0].flops_per_s == pytest.approx(20.97e9, rel=1e-3)
    fig = measured_figure(profile)
    assert len(with_gid(fig, "ceiling:dev-box:")) == 2 and len(with_gid(fig, "level:")) == 3
    assert sum(len(c.get_offsets()) for c in with_gid(fig, "measured:")) == 3
    assert "Development box" in fig.get_suptitle()
    out = tmp_path / "measured.png"
    assert main(["plot", "measured", "--profile", str(path), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(MAGIC["png"])
    # A profile without a [measured] table still draws its roofs.
    bare = tmp_path / "bare.toml"
    bare.write_text(PROFILE.split("[measured]")[0])
    fig = measured_figure(load_measured_profile(bare))
    assert len(with_gid(fig, "ceiling:")) == 2 and not with_gid(fig, "measured:")
    capsys.readouterr()
    assert main(["plot", "measured", "--profile", str(tmp_path / "missing.toml"), "-o", str(out)]) == 2
    assert "--profile " + str(tmp_path / "missing.toml") + ": cannot read (no such file)" in capsys.readouterr().err


def test_share_and_timeline_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "share.pdf"
    assert main(["plot", "share", "-m", "phi-3-mini", "--seq-len", "512", "2048", "8192", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(MAGIC["pdf"])
    out = tmp_path / "timeline.svg"
    assert main(["plot", "timeline", "-P", "128", "-T", "64", "-H", "raspberry-pi-5,apple-m4-gpu", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(MAGIC["svg"])
    capsys.readouterr()
    assert main(["plot", "timeline", "--phase", "decode", "-o", str(out)]) == 2
    assert "--phase does not apply" in capsys.readouterr().err
    assert main(["plot", "share", "-H", "jetson-orin-nx,apple-m2-gpu", "-o", str(out)]) == 2
    assert "one device" in capsys.readouterr().err


MEASURE_PROFILE = """
name = "measured-vm"
display_name = "AMD EPYC (measured, numpy, 2 threads)"
kind = "cpu"
memory_bytes = 25232932864
memory_bytes_per_s = 20550373084.4
source = "measured on vm, 2026-11-25, llm-roofline measure --quick --save vm.toml; numpy 2.4.6"
[peak_flops_per_s]
fp64 = 12e9
fp32 = 44.9e9
[measured]
host = "vm"
[[measured.hierarchy]]
level = "L1"
bytes_per_s = 187194524305.0
working_set_bytes = 65280
[[measured.hierarchy]]
level = "DRAM"
bytes_per_s = 20550373084.4
working_set_bytes = 268435200
[[measured.levels]]
working_set_bytes = 16128
level = "L1"
bytes_per_s = 150e9
[[measured.points]]
series = "equal-flops"
shape = "tall-skinny"
precision = "fp32"
flops = 113246208.0
bytes = 227083776.0
arithmetic_intensity = 0.49869792547398895
flops_per_s = 4723785014.3
"""


def test_measured_plot_reads_the_measure_commands_profile(tmp_path: Path) -> None:
    from llm_roofline.faces.report.charts import load_measured_profile
    from llm_roofline.faces.report.plots import measured_figure

    path = tmp_path / "vm.toml"
    path.write_text(MEASURE_PROFILE)
    profile = load_measured_profile(path)
    # One slope per cache level from the "hierarchy"; DRAM is the profile's memory slope itself.
    assert [(level.label, level.bytes_per_s) for level in profile.levels] == [("L1", 187194524305.0)]
    assert profile.points == (("tall-skinny", "fp32", 0.49869792547398895, 4723785014.3),)
    fig = measured_figure(profile)
    assert len(with_gid(fig, "level:")) == 1 and len(with_gid(fig, "memory:measured-vm")) == 1


def test_sweep_heatmap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llm_roofline.faces.report.plots import sweep_heatmap_figure
    from llm_roofline.features.sweep import heatmap_panels, iter_sweep, make_spec

    spec = make_spec(["llama-3.2-1b"], ["jetson-orin-nx"], [1, 2, 4, 8, 16, 32, 64], [16, 256, 4096, 65536],
                     phases=["prefill", "decode"], weights=["int4"])
    panels = heatmap_panels(iter_sweep(spec))
    fig = sweep_heatmap_figure(panels)
    assert len(with_gid(fig, "heatmap:")) == len(with_gid(fig, "boundary:")) == 2
    assert len(with_gid(fig, "no-fit:")) == 2  # 64 sequences of 65,536 tokens overflow 16 GB
    prefill = next(p for p in panels if p.key[2] == "prefill")
    for (row, column), compute in np.ndenumerate(prefill.compute_bound):  # the bound is analyze's, cell by cell
        step = analyze("llama-3.2-1b", "jetson-orin-nx", phase="prefill", batch=int(prefill.batch[row]),
                       seq_len=int(prefill.seq_len[column]), weights="int4")
        assert compute == (step.totals.bound == "compute")
    # 256 and 4096 prompt tokens pass the Orin's ridge with int4 weights; at 65,536 the unfused score
    # matrices (H·L² per layer, written and read back) bring the step below it again.
    assert prefill.compute_bound[:, 1:3].all() and not prefill.compute_bound[:, 3].any()
    assert with_gid(fig, "bound-everywhere:") == []
    uniform = heatmap_panels(iter_sweep(make_spec(["llama-3.2-1b"], ["jetson-orin-nx"], [1, 8, 64], [256, 4096],
                                                  phases=["prefill"], weights=["int4"])))
    assert [t.get_text() for t in with_gid(sweep_heatmap_figure(uniform), "bound-everywhere:")] == \
        ["compute-bound everywhere"]
    decode = next(p for p in panels if p.key[2] == "decode")
    line = with_gid(fig, f"boundary:{decode.label}")[0]
    ys = [y for y in line.get_ydata() if y == y]  # the boundary's height, where there is one
    assert ys and min(ys) > 1  # decode turns compute-bound only at a larger batch
    for suffix in ("png", "svg"):
        target = tmp_path / f"map.{suffix}"
        assert main(["sweep", "-m", "llama-3.2-1b", "-H", "jetson-orin-nx,apple-m2-gpu", "-w", "int4",
                     "-b", "1..64:log", "-l", "16..8192:log", "--heatmap", str(target), "--time", "expected"]) == 0
        assert capsys.readouterr().out.strip() == f"wrote {target}"
        assert target.read_bytes().startswith(MAGIC[suffix]) and target.stat().st_size > 10_000
    svg = (tmp_path / "map.svg").read_text()
    assert svg.count('id="heatmap:') == 2 and "expected tokens/s" in svg
