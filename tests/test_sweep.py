"""The vectorized sweep agrees with the scalar analyze(), operator by operator; grids, outputs, queries."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from conftest import require_module
from llm_roofline import InputError, analyze, hardware_names, load_hardware, load_model, model_names
from llm_roofline.core.formats import get_format
from llm_roofline.core.limits import WORKLOAD
from llm_roofline.core.quant import weight_scheme
from llm_roofline.faces.cli.main import main
from llm_roofline.features.sweep import evaluate_grid, heatmap_panels, iter_sweep, make_spec, parse_values

FORMATS = ["fp32", "fp16", "bf16", "int8", "int4", "fp8"]


def _usable(device: str, activations: str) -> bool:
    try:
        load_hardware(device).peak_for(get_format(activations).math)
        load_hardware(device).peak_for("fp16")
    except InputError:
        return False
    return True


def test_sweep_equals_scalar_analyze_operator_by_operator() -> None:
    rng = random.Random(20261125)
    checked = 0
    one_per_family = {load_model(name).family: name for name in model_names()}  # every family, then random ones
    cases = [*one_per_family.values(), *(rng.choice(model_names()) for _ in range(60 - len(one_per_family)))]
    for model in cases:  # 60 structural cases x 50 points = 3000 random configurations
        device = rng.choice(hardware_names())
        phase = rng.choice(["prefill", "decode"])
        weights, kv = rng.choice([*FORMATS, "q4_k_m", "q8_0", "q4_0", None]), rng.choice(FORMATS)
        activations = rng.choice(["fp32", "fp16", "bf16", "int8"])
        if not _usable(device, activations):
            continue
        flash = rng.random() < 0.5
        causal = rng.choice([None, True, False])
        lm_head = rng.choice(["last", "all"])
        mla = rng.choice([None, "naive", "absorbed"])
        batch = np.array([rng.randint(1, 512) for _ in range(50)])
        seq = np.array([rng.randint(1, 8192) for _ in range(50)])
        spec = load_model(model)
        grid = evaluate_grid(spec, [load_hardware(device)], phase, batch, seq, weight_scheme(spec, weights),
                             get_format(activations), get_format(kv), flash, causal, lm_head, mla)
        for j in range(len(batch)):
            scalar = analyze(model, device, phase=phase, batch=int(batch[j]), seq_len=int(seq[j]), weights=weights,
                             activations=activations, kv_cache=kv, flash_attention=flash, causal_skip=causal,
                             lm_head=lm_head, mla=mla)
            assert [op.name for op in grid.ops] == [op.name for op in scalar.ops]
            for op, op_time, result in zip(grid.ops, grid.op_time_s, scalar.ops, strict=True):
                flops = np.broadcast_to(op.cost.flops, batch.shape)[j]
                moved = np.broadcast_to(op.cost.bytes, batch.shape)[j]
                assert flops == pytest.approx(result.flops, rel=1e-9, abs=0)
                assert moved == pytest.approx(result.bytes, rel=1e-9)
                assert op_time[0, j] == pytest.approx(result.time_s, rel=1e-9)
            assert grid.time_s[0, j] == pytest.approx(scalar.totals.time_s, rel=1e-9)
            assert grid.expected_time_s[0, j] == pytest.approx(scalar.totals.expected_time_s, rel=1e-9)
            assert grid.flops[j] == pytest.approx(scalar.totals.flops, rel=1e-9)
            assert grid.kv_cache_bytes[j] == pytest.approx(scalar.totals.kv_cache_bytes, rel=1e-9)
            checked += 1
    assert checked >= 1000


def test_rows_carry_the_totals_of_analyze() -> None:
    spec = make_spec(["qwen2.5-0.5b"], ["nvidia-l4", "raspberry-pi-5"], [1, 7], [64, 300], phases=["prefill", "decode"],
                     weights=["int4", "fp16"], activations=["fp32"])
    rows = [row for chunk in iter_sweep(spec, chunk_size=3) for row in zip(*chunk.values(), strict=True)]
    assert len(rows) == spec.size == 2 * 2 * 2 * 2 * 2
    columns = list(next(iter_sweep(spec)).keys())
    for values in rows:
        row = dict(zip(columns, values, strict=True))
        ref = analyze(row["model"], row["hardware"], phase=row["phase"], batch=int(row["batch"]),
                      seq_len=int(row["seq_len"]), weights=row["weights"], activations="fp32")
        assert row["time_s"] == pytest.approx(ref.totals.time_s, rel=1e-9)
        assert row["tokens_per_s"] == pytest.approx(ref.totals.tokens_per_s, rel=1e-9)
        assert row["expected_time_s"] == pytest.approx(ref.totals.expected_time_s, rel=1e-9)
        assert row["expected_tokens_per_s"] == pytest.approx(ref.totals.expected_tokens_per_s, rel=1e-9)
        assert row["bound"] == ref.totals.bound
        assert row["memory_bytes"] == pytest.approx(ref.memory.total_bytes, rel=1e-9)
        assert row["fits"] == ref.memory.fits


@pytest.mark.parametrize(("text", "values"), [
    ("1,2,8", (1, 2, 8)),
    ("1..5", (1, 2, 3, 4, 5)),
    ("0..0", None),
    ("1..20:8", (1, 9, 17)),
    ("128..1024:log", (128, 256, 512, 1024)),
    ("1..1000:x10", (1, 10, 100, 1000)),
    ("1..4,2,16", (1, 2, 3, 4, 16)),
    ("5..1", None),
    ("a..b", None),
    ("1..9:x1", None),
    ("-3", None),
])
def test_parse_values(text: str, values: tuple[int, ...] | None) -> None:
    if values is None:
        with pytest.raises(InputError):
            parse_values(text, "batch", WORKLOAD["batch"])
    else:
        assert parse_values(text, "batch", WORKLOAD["batch"]) == values


def test_cli_writes_csv_jsonl_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for suffix in ("csv", "jsonl", "parquet"):
        if suffix == "parquet":
            require_module("pyarrow")
        target = tmp_path / f"grid.{suffix}"
        assert main(["sweep", "-m", "gpt2", "-H", "nvidia-t4,nvidia-l4", "-b", "1..4", "-l", "16,32",
                     "-w", "fp16,int8", "-o", str(target)]) == 0
        assert capsys.readouterr().out.strip() == f"wrote 32 configurations to {target}"
    with open(tmp_path / "grid.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 32 and float(rows[0]["time_s"]) > 0
    lines = (tmp_path / "grid.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["hardware"] == "nvidia-l4"
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "grid.parquet").num_rows == 32
    assert not list(tmp_path.glob(".*.part"))  # no temporary file left behind


def test_queries(capsys: pytest.CaptureFixture[str]) -> None:
    # Prefill of Llama-2-7B on an A100 turns compute-bound once batch x prompt gives the weight
    # matmuls an intensity above the fp16 ridge (312e12 / 2.039e12 = 153 FLOP/B).
    assert main(["sweep", "-H", "nvidia-a100-80gb-sxm", "-p", "prefill", "-b", "1..512", "-l", "1",
                 "-q", "boundary", "-f", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == 1 and 100 < rows[0]["batch"] < 300
    ref_below = analyze("llama-2-7b", "nvidia-a100-80gb-sxm", phase="prefill", batch=rows[0]["batch"] - 1, seq_len=1)
    ref_at = analyze("llama-2-7b", "nvidia-a100-80gb-sxm", phase="prefill", batch=rows[0]["batch"], seq_len=1)
    assert (ref_below.totals.bound, ref_at.totals.bound) == ("memory", "compute")

    assert main(["sweep", "-H", "nvidia-rtx-4090", "-w", "q4_k_m", "-b", "1..64", "-l", "512",
                 "-q", "max-batch", "--latency-target-ms", "10", "-f", "json"]) == 0
    best = json.loads(capsys.readouterr().out)["rows"][0]
    assert best["time_s"] <= 0.010
    assert best["weights"] == "q4_k_m"
    above = analyze("llama-2-7b", "nvidia-rtx-4090", batch=best["batch"] + 1, seq_len=512, weights="q4_k_m")
    assert above.totals.time_s > 0.010

    assert main(["sweep", "-H", "nvidia-rtx-4090", "-w", "fp16,int4", "-b", "1..64:log", "-l", "512,4096",
                 "-q", "pareto", "-f", "json"]) == 0
    front = json.loads(capsys.readouterr().out)["rows"]
    for a in front:  # no point of the front is dominated by another
        for b in front:
            assert not (b["time_s"] <= a["time_s"] and b["tokens_per_s"] >= a["tokens_per_s"]
                        and b["memory_bytes"] <= a["memory_bytes"] and b != a)


def test_heatmap_panels_are_the_sweep_on_a_grid() -> None:
    spec = make_spec(["llama-3.2-1b"], ["jetson-orin-nx", "nvidia-l4"], [1, 2, 8, 32, 128], [16, 512, 8192],
                     phases=["decode"], weights=["int4", "fp16"])
    panels = heatmap_panels(iter_sweep(spec, chunk_size=7))  # chunks that cut across panels and devices
    assert sorted((p.key[1], p.key[3]) for p in panels) == sorted(
        (d, w) for d in ("jetson-orin-nx", "nvidia-l4") for w in ("int4", "fp16"))
    for panel in panels:
        model, device, phase, weights = panel.key[:4]
        assert list(panel.batch) == [1, 2, 8, 32, 128] and list(panel.seq_len) == [16, 512, 8192]
        for i, batch in enumerate(panel.batch):
            for j, seq in enumerate(panel.seq_len):
                ref = analyze(model, device, phase=phase, batch=int(batch), seq_len=int(seq), weights=weights)
                assert panel.tokens_per_s[i, j] == pytest.approx(ref.totals.tokens_per_s, rel=1e-9)
                assert panel.compute_bound[i, j] == (ref.totals.bound == "compute")
                assert panel.fits[i, j] == ref.memory.fits
        for j in range(len(panel.seq_len)):  # the boundary: the first compute-bound batch of each length
            bound = panel.compute_bound[:, j]
            expected = panel.batch[bound.argmax()] if bound.any() else None
            assert (np.isnan(panel.boundary()[j]) if expected is None else panel.boundary()[j] == expected)


def test_queries_on_the_expected_time(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sweep", "-m", "llama-3-8b", "-H", "jetson-orin-nx", "-w", "int4", "-b", "1..64", "-l", "4096",
            "-q", "max-batch", "--latency-target-ms", "100", "-f", "json"]
    assert main(args) == 0
    bound = json.loads(capsys.readouterr().out)
    assert main([*args, "--time", "expected"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert (bound["time"], expected["time"]) == ("bound", "expected")
    best = expected["rows"][0]
    # real engines are slower than the bound: fewer sequences meet the same target
    assert best["batch"] < bound["rows"][0]["batch"]
    ref = analyze("llama-3-8b", "jetson-orin-nx", batch=best["batch"], seq_len=4096, weights="int4")
    assert best["time_s"] == pytest.approx(ref.totals.expected_time_s, rel=1e-9) and best["time_s"] <= 0.1
    above = analyze("llama-3-8b", "jetson-orin-nx", batch=best["batch"] + 1, seq_len=4096, weights="int4")
    assert above.totals.expected_time_s > 0.1


@pytest.mark.parametrize(("args", "fragment"), [
    (["sweep", "-b", "1..4"], "say what to do"),
    (["sweep", "--heatmap", "map.txt"], ".png, .svg or .pdf"),
    (["sweep", "-H", "nvidia-l4,nvidia-t4,nvidia-rtx-4090", "-w", "fp16,int8,int4,q4_0,q8_0",
      "--heatmap", "map.png"], "at most 12"),
    (["sweep", "-b", "1..2000", "-l", "1..2000", "--heatmap", "map.png"], "at most 2,000,000"),
    (["sweep", "-b", "x", "-q", "pareto"], "--batch"),
    (["sweep", "-q", "max-batch"], "--latency-target-ms"),
    (["sweep", "-o", "grid.txt"], ".csv, .jsonl or .parquet"),
    (["sweep", "-o", "/dev/null/dir/g.csv"], "cannot write (/dev/null is a file, not a folder)"),
    (["sweep", "-H", "nope", "-q", "pareto"], "unknown hardware"),
])
def test_sweep_bad_input(capsys: pytest.CaptureFixture[str], args: list[str], fragment: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
