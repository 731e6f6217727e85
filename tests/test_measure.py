"""``llm-roofline measure``: structure and sanity of a real (tiny-budget) measurement, the saved profile,
the timing statistics, the kernels' arithmetic and byte counts, backend selection, and bad options.

No test asserts a measured time, rate or ratio of rates: the machine may be shared, and a neighbour's
load can reorder any two figures. What the measurement shows (GEMV -> GEMM throughput following
intensity, caches faster than DRAM) is a benchmark with recorded results: bench/bench_measure_shapes.py,
docs/benchmarks.md. The tests check structure, units and the arithmetic that ties the figures together.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import require_module
from llm_roofline import cli, load_hardware, render
from llm_roofline.core.errors import InputError
from llm_roofline.core.units import binary_bytes
from llm_roofline.features.measure import experiment, profile, stream, timing
from llm_roofline.features.measure.backends import choose_backend, operand_copies
from llm_roofline.features.measure.system import Cache
from llm_roofline.inputs.files import check_profile_path, toml_text
from measure_factory import synthetic_measurement


def skipped_shapes(data: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(M, K, N) of the shape points the deadline left out (their figure names are "shape M×K×N")."""
    shapes = [u["figure"].removeprefix("shape ").split("×") for u in data["unsettled"]
              if u["reason"] == "skipped" and u["figure"].startswith("shape ")]
    return [(int(m), int(k), int(n)) for m, k, n in shapes]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- one real measurement, shared by the structure tests -------------------------------------------------

@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """``measure --quick`` on a 2-second budget, compared with a catalogue device and saved.

    What a 2 s budget lets it measure depends on the machine (its caches set the sizes) and on its load:
    the tests check what was measured, and that every planned figure was measured or reported unsettled.
    The deadline logic itself is tested on a fake machine and clock: tests/test_measure_budget.py."""
    saved = tmp_path_factory.mktemp("measure") / "saved.toml"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["measure", "--quick", "--budget-s", "2", "--format", "json", "--no-progress",
                         "--hardware", "amd-epyc-9654", "--save", str(saved)])
    assert code == 0
    return json.loads(out.getvalue()), saved


def test_json_has_the_documented_keys(measured: tuple[dict[str, Any], Path]) -> None:
    data, _ = measured
    assert data["memory"]["bytes_per_s"] > 0
    assert data["memory"]["levels"]
    # the hierarchy summarises the cache levels and DRAM: empty only if 2 s reached no other working set
    # than one between the last-level cache and DRAM (labelled "L3/DRAM", summarised nowhere)
    assert data["memory"]["hierarchy"] or all("/" in level["level"] for level in data["memory"]["levels"])
    skipped = {u["figure"] for u in data["unsettled"] if u["reason"] == "skipped"}
    for level in data["memory"]["levels"]:
        assert level["working_set_bytes"] > 0 and level["bytes_per_s"] > 0
        size = binary_bytes(level["requested_bytes"])
        assert {k for k in stream.KERNELS if f"bandwidth {k} {size}" not in skipped} == set(level["kernels"])
        for figures in level["kernels"].values():
            low, high = figures["bytes_per_s_iqr"]
            assert low <= figures["bytes_per_s"] <= high <= figures["bytes_per_s_best"] * (1 + 1e-12)
    assert data["compute"]["flops_per_s"]
    assert all(value > 0 for value in data["compute"]["flops_per_s"].values())
    assert {"fp64", "fp32"} <= set(data["compute"]["flops_per_s"])
    assert "bf16" in data["compute"]["unavailable"]  # numpy has no bfloat16: reported, not measured
    assert data["points"] or skipped_shapes(data)
    for unsettled in data["unsettled"]:
        assert unsettled["reason"] in ("skipped", "cut_short", "noisy") and unsettled["figure"] and unsettled["detail"]
    for point in data["points"]:
        for key in ("m", "k", "n", "flops", "bytes", "arithmetic_intensity", "time_s", "flops_per_s", "bound"):
            assert key in point
        assert point["flops"] == 2 * point["m"] * point["k"] * point["n"]
        assert point["arithmetic_intensity"] == point["flops"] / point["bytes"]
    for details in data["compute"]["details"].values():
        assert details["peak_from"] and details["kernel"]
    if "fp16" in data["compute"]["details"]:  # measured when the time left allowed (no fast kernel: optional)
        assert data["compute"]["details"]["fp16"]["fast"] is False  # numpy's float16 matmul: no BLAS kernel
    else:
        assert any(u["figure"] == "peak fp16" and u["reason"] == "skipped" for u in data["unsettled"])
    assert data["comparison"]["hardware"] == "amd-epyc-9654"
    assert data["comparison"]["figures"][0]["figure"] == "memory_bytes_per_s"


def test_ridge_is_peak_over_dram_bandwidth_exactly(measured: tuple[dict[str, Any], Path]) -> None:
    data, _ = measured
    bandwidth = data["memory"]["bytes_per_s"]
    assert data["ridge"] == {p: flops / bandwidth for p, flops in data["compute"]["flops_per_s"].items()}


def test_hierarchy_runs_from_the_innermost_cache_to_dram(measured: tuple[dict[str, Any], Path]) -> None:
    """Each level's figure is the best median among its working sets, in the caches' order, DRAM last."""
    data, _ = measured
    hierarchy = data["memory"]["hierarchy"]
    caches = [c["level"] for c in data["conditions"]["caches"]]
    assert [h["level"] for h in hierarchy] == [name for name in [*caches, "DRAM"] if name in
                                               {h["level"] for h in hierarchy}]
    for figure in hierarchy:
        medians = [level["bytes_per_s"] for level in data["memory"]["levels"] if level["level"] == figure["level"]]
        assert figure["bytes_per_s"] == max(medians)
        assert math.isfinite(figure["bytes_per_s"]) and figure["bytes_per_s"] > 0
    # the largest working set is measured whatever the time left; with 2 s, its arrays may not reach 4 x the LLC
    if hierarchy and hierarchy[-1]["level"] == "DRAM":
        assert data["memory"]["bytes_per_s"] == hierarchy[-1]["bytes_per_s"]
    else:
        assert any(w.startswith("no working set reached 4 × the last-level cache") for w in data["warnings"])
        largest = max(level["requested_bytes"] for level in data["memory"]["levels"])
        assert data["memory"]["requested_bytes"] == largest


def test_equal_flops_series_has_equal_flops(measured: tuple[dict[str, Any], Path]) -> None:
    """Measured or skipped, the series' 7 shapes (--quick) have M·K·N = N³, from 1×N×N² to N²×N×1."""
    data, _ = measured
    series = [p for p in data["points"] if p["series"] == "equal-flops"]
    shapes = {(p["m"], p["k"], p["n"]) for p in series} | {s for s in skipped_shapes(data) if s[1] != 4096}
    n = next(iter(shapes))[1]
    assert len(shapes) == 7 and {m * k * nn for m, k, nn in shapes} == {n**3}
    assert (1, n, n * n) in shapes and (n, n, n) in shapes and (n * n, n, 1) in shapes
    assert len({p["flops"] for p in series}) <= 1


def test_saved_profile_loads_and_analyze_accepts_it(measured: tuple[dict[str, Any], Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data, saved = measured
    spec = load_hardware(str(saved))
    assert spec.kind == "cpu"
    assert spec.memory_bytes_per_s == data["memory"]["bytes_per_s"]
    assert spec.source.startswith("measured on ") and "llm-roofline measure" in spec.source
    assert "numpy" in spec.source
    assert set(spec.peak_flops_per_s) == {"fp64", "fp32"}  # fp16/int8 are numpy's reference loop: left out
    raw = tomllib.loads(saved.read_text())
    assert raw["measured"]["ridge"] == data["ridge"]
    code, out, _ = run_cli(capsys, "analyze", "--hardware", str(saved), "--format", "json")
    assert code == 0
    assert json.loads(out)["totals"]["time_s"] > 0


def test_shape_experiment_has_the_chapter_series(measured: tuple[dict[str, Any], Path]) -> None:
    """GEMV -> GEMM: M = 1 ... 256 rows against 4096 x 4096 fp32 weights, intensity 0.5 ... 114 FLOP/B;
    each point's bound, attainable rate and roofline fraction follow from its intensity and the measured
    roofs. (That the measured rates rise with intensity, then saturate, is bench/bench_measure_shapes.py.)"""
    data, _ = measured
    series = {p["m"]: p for p in data["points"] if p["series"] == "gemv-to-gemm"}
    skipped = {m for m, k, n in skipped_shapes(data) if (k, n) == (4096, 4096)}
    assert sorted(set(series) | skipped) == [1, 4, 16, 64, 256] and not set(series) & skipped
    assert {(p["k"], p["n"], p["precision"]) for p in series.values()} <= {(4096, 4096, "fp32")}
    intensity = [series[m]["arithmetic_intensity"] for m in sorted(series)]
    assert intensity == sorted(intensity)
    if 1 in series:
        assert series[1]["arithmetic_intensity"] == 2 * 4096 * 4096 / (4 * (4096 + 4096 * 4096 + 4096))  # ~0.5
    peak, bandwidth = data["compute"]["flops_per_s"]["fp32"], data["memory"]["bytes_per_s"]
    for point in data["points"]:
        rates = (point["flops_per_s"], point["flops_per_s_best"], *point["flops_per_s_iqr"])
        assert all(math.isfinite(rate) and rate > 0 for rate in rates)
        assert point["flops_per_s_iqr"][0] <= point["flops_per_s"] <= point["flops_per_s_best"] * (1 + 1e-12)
        assert point["time_s"] > 0 and point["flops_per_s"] == pytest.approx(point["flops"] / point["time_s"])
        intensity = point["arithmetic_intensity"]
        assert point["bound"] == ("memory" if intensity < data["ridge"]["fp32"] else "compute")
        assert point["attainable_flops_per_s"] == min(peak, intensity * bandwidth)
        assert point["roofline_fraction"] == point["flops_per_s"] / point["attainable_flops_per_s"]


def test_torch_cpu_backend(capsys: pytest.CaptureFixture[str]) -> None:
    require_module("torch")
    code, out, _ = run_cli(capsys, "measure", "--backend", "torch", "--device", "cpu", "--quick", "--budget-s",
                           "1", "--precisions", "fp32,bf16", "--format", "json", "--no-progress")
    assert code == 0
    data = json.loads(out)
    assert data["backend"] == "torch" and data["device"] == "cpu"
    assert set(data["compute"]["flops_per_s"]) == {"fp32", "bf16"}
    assert all(v > 0 for v in data["compute"]["flops_per_s"].values())
    assert data["library"]["torch"]
    assert "torch.matmul" in data["compute"]["details"]["bf16"]["kernel"]


# --- bad options: one line, exit 2, before any measuring --------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--budget-s", "0"], "argument --budget-s"),
    (["--backend", "jax"], "argument --backend"),
    (["--threads", "0"], "argument --threads"),
    (["--precisions", "fp7"], "argument --precisions"),
    (["--save", "/dev/null/x.toml"], "cannot write (/dev/null is a file, not a folder)"),
    (["--save", "/proc/llm-roofline-measured.toml"], "cannot write (/proc: "),
    (["--save", "/proc/llm-roofline/measured.toml"], "cannot write (/proc: "),
    (["--save", "profile.txt"], "must be a .toml or .json file"),
    (["--hardware", "no-such-device"], "unknown hardware"),
    (["--precisions", "bf16"], "offers no bf16"),
])
def test_bad_options_exit_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(experiment, "_measure_bandwidth", _must_not_run)
    code, out, err = run_cli(capsys, "measure", "--quick", *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("llm-roofline: error: ") and message in err


def _must_not_run(*_: object) -> None:
    raise AssertionError("measured despite a bad option")


def test_a_directory_is_not_a_profile(tmp_path: Path) -> None:
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    with pytest.raises(InputError, match="it is a folder, not a file"):
        check_profile_path(folder, "--save")


# --- backend selection (the CUDA path's logic, without a GPU) ---------------------------------------------

@pytest.mark.parametrize(("backend", "device", "torch", "cuda", "expected"), [
    ("numpy", "auto", False, False, ("numpy", "cpu")),
    ("numpy", "cpu", True, True, ("numpy", "cpu")),
    ("torch", "auto", True, False, ("torch", "cpu")),
    ("torch", "auto", True, True, ("torch", "cuda")),
    ("torch", "cpu", True, True, ("torch", "cpu")),
    ("torch", "cuda", True, True, ("torch", "cuda")),
])
def test_backend_choice(backend: str, device: str, torch: bool, cuda: bool, expected: tuple[str, str]) -> None:
    choice = choose_backend(backend, device, torch_installed=torch, cuda_available=cuda)
    assert (choice.backend, choice.device) == expected


@pytest.mark.parametrize(("backend", "device", "torch", "cuda", "message"), [
    ("numpy", "cuda", True, True, "CPU only"),
    ("torch", "auto", False, False, "needs PyTorch"),
    ("torch", "cuda", True, False, "no CUDA GPU"),
    ("jax", "auto", True, True, "unknown backend"),
    ("torch", "tpu", True, True, "unknown device"),
])
def test_backend_choice_refuses(backend: str, device: str, torch: bool, cuda: bool, message: str) -> None:
    with pytest.raises(InputError, match=message):
        choose_backend(backend, device, torch_installed=torch, cuda_available=cuda)


# --- timing statistics ------------------------------------------------------------------------------------

def test_timing_statistics() -> None:
    t = timing.Timing((4.0, 1.0, 3.0, 2.0, 5.0))
    assert t.median_s == 3.0
    assert t.quartiles_s == (2.0, 4.0)  # inclusive quartiles of 1..5
    assert t.spread == (4.0 - 2.0) / 3.0
    rate = t.rate(12.0, "bytes")
    assert rate["bytes_per_s"] == 4.0  # 12 / 3
    assert rate["bytes_per_s_iqr"] == [3.0, 6.0]  # 12 / 4, 12 / 2
    assert rate["bytes_per_s_best"] == 12.0  # 12 / 1
    assert timing.Timing((1.0, 3.0)).quartiles_s == (1.0, 3.0)  # too few runs for quartiles: the extremes


def test_sample_sizes_repetitions_from_the_budget() -> None:
    calls = []

    def run() -> float:
        calls.append(1)
        return 0.01

    t = timing.sample(run, budget_s=0.1, min_reps=3, warmup=2)
    assert len(t.times_s) == 10  # 0.1 s / 0.01 s
    assert len(calls) == 12  # two warm-ups, not counted
    assert len(timing.sample(run, budget_s=0.0, min_reps=3).times_s) == 3  # no budget: the minimum


def test_sample_stops_a_run_away_measurement() -> None:
    durations = iter([0.001] + [1.0] * 100)  # the estimate says 1 ms; then every run takes 1 s
    t = timing.sample(lambda: next(durations), budget_s=0.1, min_reps=3)
    assert len(t.times_s) == 3


def test_autorange_grows_until_a_run_is_long_enough() -> None:
    def make_run(repeat: int) -> timing.Run:
        return lambda: repeat * 1e-4

    repeat, run, elapsed_s = timing.autorange(make_run, min_run_s=0.01)
    assert repeat * 1e-4 >= 0.01 and run() == repeat * 1e-4 == elapsed_s
    assert timing.autorange(make_run, min_run_s=0.01, start_repeat=200)[0] == 200  # a good guess: one trial


def test_schedule_gives_later_steps_what_is_left() -> None:
    clock = iter([0.0, 0.0, 6.0, 6.0])  # start; first step starts at 0 s; the second at 6 s
    schedule = timing.Schedule(budget_s=10.0, total_weight=2.0, show=False, clock=lambda: next(clock))
    with schedule.step("first", 1.0) as first:
        assert first.budget_s == 5.0  # half the weight, half of 10 s
    with schedule.step("second", 1.0) as second:
        assert second.budget_s == 4.0  # the first overran by 1 s: the second gets the 4 s left


# --- kernels: STREAM's byte count and the arithmetic of each kernel -----------------------------------------

def test_stream_counts_bytes_without_write_allocate() -> None:
    assert stream.counted_bytes("copy", 1000) == 16_000  # read a, write c: 2 x 8 B
    assert stream.counted_bytes("scale", 1000) == 16_000
    assert stream.counted_bytes("add", 1000) == 24_000  # read a and b, write c: 3 x 8 B
    assert stream.counted_bytes("triad", 1000) == 24_000


@pytest.mark.parametrize("working_set_bytes", [48 * 2**10, 16 * 2**20])  # triad in one block, and blocked
def test_kernels_compute_stream_arithmetic(working_set_bytes: int) -> None:
    """a=1, b=2, c=0; copy c=a -> 1; scale b=3c -> 3; add c=a+b -> 4; triad a=b+3c -> 3+12 = 15."""
    bench = stream.NumpyStream(threads=2, max_working_set_bytes=16 * 2**20)
    try:
        expected = {"copy": ("c", 1.0), "scale": ("b", 3.0), "add": ("c", 4.0), "triad": ("a", 15.0)}
        for kernel in stream.KERNELS:
            run, counted = bench.make_run(kernel, working_set_bytes, repeat=3)
            assert run() > 0
            elements = bench.elements_per_thread(kernel, working_set_bytes)
            assert counted == 3 * stream.counted_bytes(kernel, 2 * elements)
            name, value = expected[kernel]
            for index in range(2):
                region = bench._region(getattr(bench, name), index, elements)
                assert (region == value).all(), (kernel, index)
        blocked = bench.elements_per_thread("triad", working_set_bytes) > stream.TRIAD_BLOCK_ELEMENTS
        assert blocked == (working_set_bytes > 2**20)
    finally:
        bench.close()


def test_stream_first_touch_stops_at_its_allowance() -> None:
    """A clock that ticks 1 s per reading: the first 32 MiB chunk per array and thread "takes" 1 s, a second
    would end at 2 s, past the 1.5 s allowed; the arrays then reach 2 threads x 4 Mi elements, a 128 MiB
    working set (copy: 16 B per element), and the kernels work there."""
    ticks = iter(range(1000))
    bench = stream.NumpyStream(threads=2, max_working_set_bytes=256 * 2**20, allowance_s=1.5,
                               clock=lambda: float(next(ticks)))
    try:
        assert bench.region_elements == 4 * 2**20 and bench.region_stride == 8 * 2**20
        assert bench.max_working_set_bytes == 128 * 2**20
        assert bench.fill_bytes_per_s == 3 * 2 * 4 * 2**20 * 8 / 1.0  # three arrays' touched parts in 1 s
        run, counted = bench.make_run("add", 512 * 2**20, repeat=1)  # more than it holds: as far as it reaches
        assert run() > 0 and counted == stream.counted_bytes("add", 2 * 4 * 2**20)
        assert (bench._region(bench.c, 1, 4 * 2**20) == 3.0).all()  # add: c = a + b = 1 + 2
    finally:
        bench.close()


def test_worker_pool_reraises_a_task_error() -> None:
    pool = stream.WorkerPool(2)
    try:
        def fail() -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            pool.run([lambda: None, fail])
        assert pool.run([lambda: None, lambda: None]) >= 0  # still usable
    finally:
        pool.close()


# --- planning -------------------------------------------------------------------------------------------------

def test_level_labels_follow_the_caches() -> None:
    caches = [Cache("L1", 32 * 2**10, 1), Cache("L2", 2**20, 1), Cache("L3", 32 * 2**20, 2)]
    dram = 4 * 32 * 2**20
    assert experiment.level_of(64 * 2**10, caches, threads=2, dram_min_bytes=dram) == "L1"  # 2 x 32 KiB
    assert experiment.level_of(65 * 2**10, caches, threads=2, dram_min_bytes=dram) == "L2"
    assert experiment.level_of(32 * 2**20, caches, threads=2, dram_min_bytes=dram) == "L3"
    assert experiment.level_of(64 * 2**20, caches, threads=2, dram_min_bytes=dram) == "L3/DRAM"
    assert experiment.level_of(dram, caches, threads=2, dram_min_bytes=dram) == "DRAM"


def test_equal_flops_shapes() -> None:
    shapes = experiment.equal_flops_shapes(384, quick=False)
    assert shapes[0] == ("tall-skinny", 1, 384, 147456)  # 1 x N x N², the chapter's long matrix
    assert shapes[-1] == ("wide", 147456, 384, 1)  # N² x N x 1
    assert ("square", 384, 384, 384) in shapes
    assert {m * k * n for _, m, k, n in shapes} == {384**3}


def test_operand_copies_span_four_times_the_cache() -> None:
    llc = 32 * 2**20
    assert operand_copies(64 * 2**20, llc) == 2  # 2 x 64 MiB >= 128 MiB
    assert operand_copies(256 * 2**20, llc) == 1
    assert operand_copies(2**20, llc) == 64  # capped
    assert operand_copies(2**30, llc, limit_bytes=2**29) == 1


# --- the profile file ---------------------------------------------------------------------------------------

def test_toml_writer_round_trips() -> None:
    data = {"name": "x", "n": 3, "f": 1.5e-7, "big": 4.5e10, "flag": True, "s": 'quote " and \\ and é',
            "list": [1.0, 2.0], "peak_flops_per_s": {"fp32": 1e12},
            "measured": {"ridge": {"fp32": 2.5}, "levels": [{"a": 1, "iqr": [1.0, 2.0], "k": {"x": 1}}],
                         "deep": {"deeper": {"v": 1}}}}
    assert tomllib.loads(toml_text(data)) == data


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interruption between writing and renaming leaves the old file whole and no temporary behind."""
    target = tmp_path / "machine.toml"
    target.write_text("old = 1\n")

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(render.os, "replace", interrupted)  # the one atomic write profiles go through
    with pytest.raises(KeyboardInterrupt):
        profile.save_profile(synthetic_measurement(), target)
    assert target.read_text() == "old = 1\n"
    assert os.listdir(tmp_path) == ["machine.toml"]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_saved_profile_round_trips(tmp_path: Path, suffix: str) -> None:
    m = synthetic_measurement()
    spec = profile.save_profile(m, tmp_path / f"machine{suffix}", name="my-box")
    loaded = load_hardware(str(tmp_path / f"machine{suffix}"))
    assert loaded == spec
    assert loaded.name == "my-box"
    assert loaded.memory_bytes_per_s == 40e9  # the DRAM point: 4e9 counted bytes in 0.1 s
    assert loaded.peak_flops_per_s == {"fp32": 200e9}  # fp16 had no fast kernel: left out
    assert loaded.ridge_point("fp32") == 200e9 / 40e9
    assert "fp16" in loaded.notes


def test_comparison_with_a_catalogue_device() -> None:
    rows = profile.comparison(synthetic_measurement(), load_hardware("amd-epyc-9654"))
    assert rows[0]["achieved_fraction"] == 40e9 / 460.8e9
    assert [r["figure"] for r in rows] == ["memory_bytes_per_s", "peak_flops_per_s.fp32"]


def test_synthetic_measurement_derives_levels_and_ridge() -> None:
    m = synthetic_measurement()
    assert m.dram_bytes_per_s == 40e9  # 4e9 B / 0.1 s
    assert [h["level"] for h in m.hierarchy()] == ["L1", "DRAM"]
    assert m.hierarchy()[0]["bytes_per_s"] == 200e9  # 2e9 B / 0.01 s
    assert m.ridge() == {"fp32": 200e9 / 40e9, "fp16": 1e8 / 40e9}
    point = m.to_dict()["points"][0]
    assert point["arithmetic_intensity"] == 131072 / 264192  # 2·256² / (4·(256 + 256² + 256))
    assert point["bound"] == "memory"
    assert math.isclose(point["attainable_flops_per_s"], point["arithmetic_intensity"] * 40e9)
