"""validate and calibrate: rows read as models, formats and devices; the cross-validated acceptance on the
published measurements; llama-bench output; calibrated profiles; malformed files refused in one line."""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from pathlib import Path

import pytest

from conftest import require_file
from llm_roofline import analyze, load_hardware
from llm_roofline.core.efficiency import StepCost, default_params, engine_params, expected_time_s, params_for, step_cost
from llm_roofline.core.engines import fusion_of
from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import KINDS, PARAMETERS, EfficiencyParams
from llm_roofline.faces.cli.main import main
from llm_roofline.features.fidelity.validation import (
    MIN_ENGINE_OBSERVATIONS,
    Case,
    Skip,
    cross_validate,
    device_family,
    expected_time_terms,
    fit_defaults,
    predict,
    quantile,
    read_case,
    read_measurement_files,
    summary,
    worst_predictions,
)
from llm_roofline.inputs.measurements import CALIBRATION_COLUMNS, GRAPH_COLUMNS, read_measurements

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "bench/data/calibration.csv"
MEASURED = ROOT / "data" / "measured"  # the project's own published measurements (data/measured/README.md)
SHARED = ROOT.parent / "shared/data/measured/calibration.csv"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def published() -> tuple[list[Case | Skip], list, list, int]:
    rows = read_measurements(CALIBRATION)
    cases = [read_case(m) for m in rows]
    predictions, skipped = predict(cases)
    return cases, predictions, skipped, len(rows)


def test_bundled_copy_equals_the_shared_measurements() -> None:
    shared = require_file(SHARED, "the project's shared measurements, in ../shared beside the clone")
    assert CALIBRATION.read_bytes() == shared.read_bytes()


def test_rows_become_models_formats_and_devices(published: tuple) -> None:
    cases, _, _, _ = published
    by_row = {c.measurement.row: c for c in cases}
    assert isinstance(by_row[68], Skip) and "SmolLM2" in by_row[68].reason  # no size: not identified
    phi = by_row[67]  # "Phi 3.5 3B (Phi-3.5-mini)", 3.82 B: the name in parentheses
    assert isinstance(phi, Case) and phi.model.name == "phi-3.5-mini"
    assert phi.hardware.name == "nvidia-jetson-orin-nano-8gb" and phi.device_from == "catalogue"
    assert phi.weights.bits_per_element == 4.5  # "INT4 (MLC, q4f16_*)", "~4.5": bits, not the int4 format
    assert by_row[1].device_from == "row" and not by_row[1].has_compute_peak  # M1 7-core: binned, no peak
    assert by_row[3].hardware.name == "apple-m1-gpu"  # M1 8-core: the catalogue's configuration
    assert by_row[54].weights == "q4_k_m" and by_row[54].model.name == "llama-3-8b"
    # "SpinQuant 8da4w (INT4 g32 ...; 8-bit emb/head)" at 7.33 bits: ExecuTorch's recipe, whose file (the tied
    # table stored twice) is those bits; "8da4w INT4 groupwise g128" at ~4.2 is not that recipe: its bits
    assert (by_row[70].activations, by_row[70].weights) == ("int8", "8da4w")
    assert by_row[75].activations == "int8" and by_row[75].weights.name == "4.2-bit"
    assert by_row[79].activations == "fp32" and by_row[79].model.name == "gemma-3-1b"
    assert by_row[75].weights.bits_per_element == pytest.approx(4.2)  # "~4.1-4.3 (approx)": the midpoint
    assert {c.family for c in cases if isinstance(c, Case)} == {
        "Apple M1", "Apple M2", "Jetson", "NVIDIA RTX 30", "NVIDIA RTX 40", "Raspberry Pi", "Snapdragon"}


@pytest.mark.parametrize(("hardware", "backend", "family"), [
    ("NVIDIA GeForce RTX 4090 24GB", "gpu", "NVIDIA RTX 40"),
    ("NVIDIA GeForce RTX 3060 12GB", "GPU", "NVIDIA RTX 30"),
    ("RTX 5090", "gpu", "NVIDIA RTX 50"),
    ("NVIDIA GeForce GTX 1080 Ti", "gpu", "NVIDIA desktop"),  # no generation read: the vendor's desktop cards
    ("NVIDIA RTX 5000 Ada Generation", "gpu", "NVIDIA desktop"),  # a workstation card, not the RTX 50 series
    ("Apple M3 Max (40-core GPU, 48GB)", "gpu", "Apple M3"),
    ("Apple M3 Max (40-core GPU, 48GB)", "npu", "Apple M3 Neural Engine"),  # an NPU apart, by generation too
    ("Samsung Galaxy S24 (Snapdragon 8 Gen 3)", "npu", "Snapdragon 8 Gen 3 Hexagon"),
    ("Samsung Galaxy S25 (Snapdragon 8 Elite) Hexagon NPU", "npu", "Snapdragon 8 Elite Hexagon"),
    ("Samsung Galaxy S23 Ultra Hexagon NPU", "npu", "Hexagon NPU"),  # no generation named
    ("NVIDIA A100 80GB", "gpu", "NVIDIA A100"),
])
def test_device_families_are_product_generations(hardware: str, backend: str, family: str) -> None:
    assert device_family(hardware, backend) == family


def test_summary_counts_and_errors(published: tuple) -> None:
    _, predictions, skipped, rows = published
    result = summary(predictions, rows)
    assert (result["rows"], result["rows_used"], result["rows_skipped"]) == (93, 92, 1)
    assert result["prefill"]["n"] + result["decode"]["n"] == len(predictions)
    assert {s.phase for s in skipped} == {"both", "prefill"}
    assert all("compute ceiling" in s.reason for s in skipped if s.phase == "prefill")
    # The expectation beats the bound on the rows it was fitted on.
    for phase in ("prefill", "decode"):
        assert result[phase]["median_ape"] < result["bound"][phase]["median_ape"]
    assert set(result["by_backend"]) == {"cpu", "gpu"}


def test_cross_validated_acceptance(published: tuple) -> None:
    """Leave one device family out; expected decode median APE <= 15 %, prefill <= 25 % (issue 7)."""
    _, predictions, _, rows = published
    held_out, folds = cross_validate(predictions, "family")
    assert len(held_out) == len(predictions) and set(folds) == {p.case.family for p in predictions}
    result = summary(held_out, rows)
    assert result["decode"]["median_ape"] <= 0.15
    assert result["prefill"]["median_ape"] <= 0.25
    assert result["bound"]["decode"]["median_ape"] > 0.3  # the pure roofline, reported beside it


def test_cross_validated_on_all_measurements() -> None:
    """Issue 17, on every measurement the project holds, each device family predicted without it: the
    medians meet the targets (decode <= 10 %, prefill <= 15 %), NPUs are reported apart, and a fast GPU's
    4-bit 7B decode with current llama.cpp builds (CUDA, Vulkan) is within 25 % of its published speed. (The 90th
    percentiles do not meet theirs: docs/validation.md, section 3, says which rows and why.)"""
    rows, _ = read_measurement_files([CALIBRATION, MEASURED])
    predictions, _ = predict([read_case(m) for m in rows])
    held_out, _ = cross_validate(predictions, "family")
    result = summary(held_out, len(rows))
    assert result["decode"]["median_ape"] <= 0.10 and result["prefill"]["median_ape"] <= 0.15
    assert result["by_backend"]["npu"]["decode"]["n"] >= 28 and "npu" not in {p.backend for p in held_out
                                                                           if p.case.family.startswith("NVIDIA")}
    # NPU decode read as the fixed-shape graphs their runtimes compile: the median of the NPU rows on their own
    # (25 %: the Snapdragon X Elite rows, 70-300 % fast, pull every other Hexagon's fold; docs/validation.md §3)
    assert result["by_backend"]["npu"]["decode"]["median_ape"] <= 0.30
    fast = [p for p in held_out if p.phase == "decode" and p.case.engine in ("llama.cpp-cuda", "llama.cpp-gpu")
            and re.search(r"RTX (4080|4090|5080|5090)", p.case.measurement.hardware)
            and p.case.model.name == "llama-2-7b" and p.case.weights == "q4_0"]
    assert len(fast) >= 6
    assert all(p.expected_ape <= 0.25 for p in fast), [(p.case.measurement.hardware, p.expected_ape) for p in fast]


def test_shipped_defaults_are_what_calibrate_by_class_writes(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "efficiency.toml"
    code, _, err = run(capsys, "calibrate", str(CALIBRATION), str(MEASURED), "--by-class", "--save", str(out_path))
    assert code == 0, err
    written = tomllib.loads(out_path.read_text())
    shipped = tomllib.loads((ROOT / "src/llm_roofline/data/efficiency.toml").read_text())
    assert written["class"] == shipped["class"]  # deterministic fit, 4 significant digits
    assert written["engine"] == shipped["engine"]
    assert shipped["command"] == ("llm-roofline calibrate bench/data/calibration.csv data/measured --by-class "
                                  "--save src/llm_roofline/data/efficiency.toml")
    for kind in KINDS:
        assert default_params(kind).values() == tuple(shipped["class"][kind][name] for name in PARAMETERS)
    for key, entry in shipped["engine"].items():
        engine, _, kind = key.partition("/")  # an engine of several kinds of unit: figures per kind
        fitted = engine_params(engine, kind or None)
        assert fitted is not None and fitted.values() == tuple(entry[p] for p in PARAMETERS)
    assert {"llama.cpp-metal", "llama.cpp-cuda", "llama.cpp-cuda-2023", "litert/cpu", "litert/gpu"} <= set(
        shipped["engine"])


def test_a_fold_does_not_lend_an_engine_s_cpu_figures_to_its_gpu_rows(published: tuple) -> None:
    """LiteRT's GPU rows all come from one model card: a fold that leaves it out keeps only LiteRT's CPU rows,
    whose figures (XNNPACK's) say nothing of ML Drift on a GPU; the GPU rows get the GPU class's."""
    _, predictions, _, _ = published
    litert = [p for p in predictions if p.case.engine == "litert"]
    cpu_rows = [p for p in litert if p.case.hardware.kind == "cpu"]
    gpu_rows = [p for p in litert if p.case.hardware.kind == "gpu"]
    assert len(cpu_rows) >= MIN_ENGINE_OBSERVATIONS and gpu_rows
    fitted = fit_defaults([p for p in predictions if p.case.engine != "litert"] + cpu_rows)
    assert "litert/cpu" in fitted.engines and "litert/gpu" not in fitted.engines and "litert" not in fitted.engines
    assert fitted.params(gpu_rows[0].case, gpu_rows[0].step_positions) == fitted.classes["gpu"]
    assert fitted.params(cpu_rows[0].case, cpu_rows[0].step_positions) == fitted.engines["litert/cpu"]


def test_a_row_may_name_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "tiny" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps(dict(model_type="llama", hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, vocab_size=100)))
    path = tmp_path / "rows.csv"
    path.write_text(_calibration_text({"model": str(config), "params_B": "", "hardware": "my box",
                                       "backend": "CPU", "quant": "F32", "bits_per_weight": ""}))
    case = read_case(read_measurements(path)[0])
    assert isinstance(case, Case) and case.model.hidden_size == 64 and case.activations == "fp32"
    assert case.device_from == "row" and case.hardware.kind == "cpu"


@pytest.mark.parametrize(("framework", "prompt", "gen", "cached"), [
    ("llama.cpp llama-bench (Metal)", "512", "128", 64),  # tg from an empty cache: half its tokens on average
    ("llama.cpp llama-batched-bench (CUDA)", "512", "32", 512 + 16),  # TG continues each PP-token sequence
    ("llama.cpp (Dec 2023; ./main text completion)", "494", "1023", 494 + 511),
    ("llama.cpp (Dec 2023; ./main text completion)", "", "", 64),  # no lengths given: the defaults, no prompt
])
def test_decode_context_follows_the_tool(tmp_path: Path, framework: str, prompt: str, gen: str, cached: int) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(_calibration_text({"framework": framework, "prompt_tokens": prompt, "gen_tokens": gen}))
    case = read_case(read_measurements(path)[0])
    assert isinstance(case, Case) and case.workload("decode").seq_len == cached
    assert case.workload("prefill").seq_len == int(prompt or 512)


def test_validate_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(CALIBRATION), "--format", "json")
    assert code == 0
    data = json.loads(out)
    s = data["summary"]
    for part in (s, s["bound"]):
        for phase in ("prefill", "decode"):
            assert 0 < part[phase]["median_ape"] <= part[phase]["p90_ape"] < 5
    assert (s["rows_used"], s["rows_skipped"]) == (92, 1)
    assert s["by_backend"]["gpu"]["bound"]["decode"]["n"] == s["by_backend"]["gpu"]["decode"]["n"]
    row = data["rows"][0]
    assert row["expected_ape"] == pytest.approx(abs(row["expected_tokens_per_s"] / row["measured_tokens_per_s"] - 1))
    assert any(skip["reason"].startswith("unknown model 'SmolLM2'") for skip in data["skipped"])
    # each row names its engine and the figures that predicted it: LiteRT's per kind of unit
    litert = {r["backend"].lower(): r["efficiency_figures"] for r in data["rows"] if r["engine"] == "litert"}
    assert litert["cpu"].startswith("engine 'litert' on cpu devices") and "litert/cpu" in litert["cpu"]
    assert litert["gpu"].startswith("engine 'litert' on gpu devices") and "litert/gpu" in litert["gpu"]
    assert all(r["efficiency_figures"].startswith("class 'gpu'") for r in data["rows"] if r["engine"] is None
               and r["backend"].lower() == "gpu")


def test_validate_table_and_folds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(CALIBRATION), "--cross-validate", "family", "--no-rows")
    assert code == 0
    assert "left out" in out and "Snapdragon" in out and "expected median" in out
    assert "row 68 (both): unknown model 'SmolLM2'" in out


# --- llama-bench ------------------------------------------------------------------------------------

def _bench_entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "build_commit": "c76b420e", "build_number": 6100, "cpu_info": "AMD Ryzen 9 5950X 16-Core Processor",
        "gpu_info": "NVIDIA GeForce RTX 3090", "backends": "CUDA", "model_filename": "models/llama-2-7b.Q4_0.gguf",
        "model_type": "llama 7B Q4_0", "model_size": 3825065984, "model_n_params": 6738415616, "n_batch": 2048,
        "n_ubatch": 512, "n_threads": 16, "type_k": "f16", "type_v": "f16", "n_gpu_layers": 99,
        "flash_attn": False, "n_prompt": 512, "n_gen": 0, "n_depth": 0, "avg_ns": 98942000, "stddev_ns": 500000,
        "avg_ts": 5174.69, "stddev_ts": 25.1,
    }
    return {**entry, **changes}


BENCH = [_bench_entry(), _bench_entry(n_prompt=0, n_gen=128, avg_ns=809306000, avg_ts=158.16)]


def _write_bench_csv(path: Path, entries: list[dict[str, object]]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(entries[0]))
    writer.writeheader()
    writer.writerows([{k: str(v).lower() if isinstance(v, bool) else v for k, v in e.items()} for e in entries])
    path.write_text(out.getvalue())
    return path


@pytest.mark.parametrize("form", ["json", "jsonl", "csv"])
def test_llama_bench_output_is_read(tmp_path: Path, form: str) -> None:
    path = tmp_path / f"bench.{form}"
    if form == "csv":
        _write_bench_csv(path, BENCH)
    else:
        path.write_text(json.dumps(BENCH) if form == "json" else "\n".join(json.dumps(e) for e in BENCH))
    prefill, decode = read_measurements(path)
    assert (prefill.prompt_tokens, prefill.prefill_tokens_per_s, prefill.decode_tokens_per_s) == (512, 5174.69, None)
    assert (decode.gen_tokens, decode.decode_tokens_per_s) == (128, 158.16)
    assert decode.hardware == "NVIDIA GeForce RTX 3090" and decode.backend == "gpu" and decode.quant == "q4_0"
    assert decode.bits_per_weight == pytest.approx(8 * 3825065984 / 6738415616)
    case = read_case(decode)
    assert isinstance(case, Case) and case.model.name == "llama-2-7b"  # by its exact parameter count
    assert case.workload("decode").seq_len == 64  # tg128 from an empty cache: 64 cached tokens on average


@pytest.mark.parametrize(("model_type", "quant"), [
    ("llama 7B mostly Q4_0", "q4_0"), ("qwen2 7B Q4_K - Medium", "q4_k_m"), ("llama 8B Q5_K - Small", "q5_k_s"),
    ("llama 8B IQ4_XS - 4.25 bpw", "iq4_xs"), ("llama 7B F16", "f16"),
])
def test_llama_bench_file_type_labels(tmp_path: Path, model_type: str, quant: str) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps([_bench_entry(model_type=model_type)]))
    assert read_measurements(path)[0].quant == quant


def test_calibrate_writes_a_profile_the_analyzer_uses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(BENCH))
    profile = tmp_path / "rtx3090.toml"
    code, out, err = run(capsys, "calibrate", str(bench), "--hardware", "nvidia-rtx-3090", "--save", str(profile))
    assert code == 0, err
    assert f"use it as --hardware {profile}" in out
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file and a rename
    data = tomllib.loads(profile.read_text())
    assert data["name"] == "nvidia-rtx-3090-calibrated" and set(PARAMETERS) <= set(data["efficiency"])
    assert "llm-roofline calibrate" in data["efficiency"]["source"]
    device = load_hardware(str(profile))
    assert device.efficiency is not None and device.memory_bytes_per_s == 936e9
    # The calibrated device now reproduces its own measurements closely, through analyze's totals.
    decode = analyze("llama-2-7b", device, seq_len=64, weights="q4_0").totals
    assert decode.expected_tokens_per_s == pytest.approx(158.16, rel=0.08)
    assert decode.tokens_per_s > decode.expected_tokens_per_s  # the bound is unchanged and still above
    code, out, _ = run(capsys, "validate", str(bench), "--hardware", str(profile), "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["decode"]["median_ape"] < 0.08


def test_calibrate_keeps_a_measured_profile_s_own_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    measured = {**{k: v for k, v in load_hardware("nvidia-rtx-3090").to_dict().items() if v is not None},
                "name": "measured-box", "measured": {"host": "box", "levels": [{"bytes": 1.0}]}}
    source = tmp_path / "measured.json"
    source.write_text(json.dumps(measured))
    bench = _write_bench_csv(tmp_path / "bench.csv", BENCH)
    out_path = tmp_path / "calibrated.json"
    code, _, err = run(capsys, "calibrate", str(bench), "--hardware", str(source), "--save", str(out_path),
                       "--name", "box-calibrated")
    assert code == 0, err
    saved = json.loads(out_path.read_text())
    assert saved["measured"] == measured["measured"] and saved["name"] == "box-calibrated"
    assert saved["efficiency"]["bandwidth_efficiency"] <= 1


def test_calibrate_from_the_schema_fits_one_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = CALIBRATION.read_text().splitlines()
    m2_ultra = [line for line in rows[1:] if "Apple M2 Ultra (76-core GPU)," in line]
    path = tmp_path / "m2-ultra.csv"
    path.write_text("\n".join([rows[0], *m2_ultra]) + "\n")
    code, out, err = run(capsys, "calibrate", str(path), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["device"] == "apple-m2-ultra-gpu" and data["class"] == "gpu"
    assert all(m["expected_ape"] < 0.12 for m in data["measurements"])
    code, _, err = run(capsys, "calibrate", str(CALIBRATION))
    assert code == 2 and "describe" in err and "calibrate fits one" in err


# --- malformed input ----------------------------------------------------------------------------------

def _calibration_text(change: dict[str, str] | None = None, drop: str | None = None) -> str:
    row = {"source": "test", "hardware": "Apple M2 Ultra (76-core GPU)", "hw_mem_bw_GBps": "800",
           "hw_peak_fp16_TFLOPS": "27.2", "model": "Llama-2-7B", "params_B": "6.74", "quant": "Q4_0",
           "bits_per_weight": "4.5", "framework": "llama.cpp", "backend": "GPU", "batch": "1",
           "prompt_tokens": "512", "gen_tokens": "128", "prefill_tok_s": "1238.48", "decode_tok_s": "94.27",
           "notes": "", **(change or {})}
    columns = [c for c in CALIBRATION_COLUMNS if c != drop]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerow([row[c] for c in columns])
    return out.getvalue()


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file"),
    ("\n  \n", "empty file"),
    (",".join(CALIBRATION_COLUMNS) + "\n", "no measurement rows after the header"),
    (_calibration_text(drop="decode_tok_s"), "line 1 (the header): missing column(s) decode_tok_s"),
    (_calibration_text({"decode_tok_s": "fast"}),
     "row 1 (line 2), column 'decode_tok_s': expected a number, got 'fast'"),
    (_calibration_text({"hw_mem_bw_GBps": "-5"}), "row 1 (line 2), column 'hw_mem_bw_GBps': expected a number > 0"),
    (_calibration_text({"batch": "1.5"}), "row 1 (line 2), column 'batch': expected an integer >= 1"),
    (_calibration_text({"backend": "TPU"}), "row 1 (line 2), column 'backend': expected one of GPU, CPU, NPU"),
    (_calibration_text({"bits_per_weight": "four"}), "row 1 (line 2), column 'bits_per_weight': expected bits"),
    (_calibration_text({"model": ""}), "row 1 (line 2), column 'model': must not be blank"),
    (_calibration_text() + "x,y\n", "row 2 (line 3): 2 fields, the header has 16"),
    ("[{\"model_type\": \"llama 7B Q4_0\"}]", "test 1: missing field(s) model_n_params, n_prompt, n_gen, avg_ts"),
    (json.dumps([_bench_entry(avg_ts="fast")]), "test 1, field 'avg_ts': expected a number, got 'fast'"),
    (json.dumps([_bench_entry(n_gen=128)]), "test 1: a test measures prefill"),
    ("[{]", "not valid JSON"),
    ("build_commit,model_type\nx,y\n", "missing column(s) model_n_params, n_prompt, n_gen, avg_ts"),
])
@pytest.mark.parametrize("command", ["validate", "calibrate"])
def test_malformed_files_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
                                                 text: str, message: str) -> None:
    path = tmp_path / "measurements.csv"
    path.write_text(text)
    code, out, err = run(capsys, command, str(path))
    assert code == 2 and out == ""
    assert err.startswith("llm-roofline: error: ") and err.count("\n") == 1
    assert message in err


def test_reader_errors_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_measurements(tmp_path / "missing.csv")


def test_calibrate_refuses_a_bad_save_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(BENCH))
    code, _, err = run(capsys, "calibrate", str(bench), "--hardware", "nvidia-rtx-3090", "--save",
                       str(tmp_path / "profile.txt"))
    assert code == 2 and "must be a .toml or .json file" in err


# --- a fixed-shape graph (an NPU runtime's compiled decode step) ---------------------------------------

def _graph_row(step: str = "", context: str = "") -> str:
    """The Core ML Llama 2 7B on the M1 Max's Neural Engine row, with the graph columns after the schema's."""
    row = {"source": "test", "hardware": "Apple M1 Max Neural Engine", "hw_mem_bw_GBps": "400",
           "hw_peak_fp16_TFLOPS": "11", "model": "Llama-2-7B", "params_B": "6.74", "quant": "CoreML",
           "bits_per_weight": "4.75", "framework": "Core ML on the ANE", "backend": "NPU", "batch": "1",
           "prompt_tokens": "", "gen_tokens": "80", "prefill_tok_s": "", "decode_tok_s": "7.02", "notes": "",
           "graph_step_tokens": step, "graph_context_tokens": context}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CALIBRATION_COLUMNS, *GRAPH_COLUMNS])
    writer.writerow([row[c] for c in (*CALIBRATION_COLUMNS, *GRAPH_COLUMNS)])
    return out.getvalue()


def test_a_fixed_shape_graph_computes_its_whole_width_over_its_whole_cache(tmp_path: Path) -> None:
    """A decode step compiled for 64 positions over a 512-token cache computes all 64 (one real token) and
    attends over all 512, whatever was cached: on the ANE's 11 TFLOPS that is arithmetic, not memory."""
    padded, plain = tmp_path / "padded.csv", tmp_path / "plain.csv"
    padded.write_text(_graph_row("64", "512"))
    plain.write_text(_graph_row())
    (graph,), (row,) = read_measurements(padded), read_measurements(plain)
    assert (graph.graph_step_tokens, graph.graph_context_tokens) == (64, 512)
    assert (row.graph_step_tokens, row.graph_context_tokens) == (1, None)
    case, plain_case = read_case(graph), read_case(row)
    assert isinstance(case, Case) and isinstance(plain_case, Case)
    workload = case.workload("decode")
    assert (workload.q_len, workload.past_len, workload.tokens) == (64, 448, 1)
    assert (workload.graph_tokens, workload.graph_context) == (64, 512)
    assert (plain_case.workload("decode").q_len, plain_case.workload("decode").past_len) == (1, 40)
    (padded_step,), _ = predict([case])
    (plain_step,), _ = predict([plain_case])
    result = analyze(case.model, case.hardware, workload)
    assert result.totals.bound == "compute"
    # one token per step of 64 positions: the bound is the step's time, 2 FLOPs per weight per position
    assert padded_step.bound_tokens_per_s == pytest.approx(1 / result.totals.time_s)
    assert padded_step.bound_tokens_per_s == pytest.approx(11e12 / (64 * 2 * 6.74e9), rel=0.08)
    assert padded_step.bound_tokens_per_s < plain_step.bound_tokens_per_s / 5
    assert padded_step.tokens == 1 and padded_step.observation().measured_time_s == pytest.approx(1 / 7.02)


def test_an_npu_entry_without_a_ceiling_for_the_rows_math_gives_its_memory_roof(tmp_path: Path) -> None:
    """The catalogue's Snapdragon 8 Elite NPU has only its int8 TOPS; a w4a16 row (16-bit activations) is read
    at that entry's bandwidth alone, decode only, as a row giving a bandwidth and no peak is."""
    path = tmp_path / "npu.csv"
    path.write_text(_graph_row("1", "4096").replace("Apple M1 Max Neural Engine,400,11",
                                                    "Qualcomm Snapdragon 8 Elite (QRD),,")
                    .replace("7.02", "13.05").replace(",,80,", ",,,").replace("Core ML on the ANE",
                                                                              "Qualcomm AI Hub (Genie)"))
    (m,) = read_measurements(path)
    case = read_case(m)
    assert isinstance(case, Case) and case.device_from == "catalogue" and not case.has_compute_peak
    assert case.engine == "qnn" and case.family == "Snapdragon 8 Elite Hexagon"
    entry = load_hardware("qualcomm-snapdragon-8-elite-npu")
    assert set(entry.peak_flops_per_s) == {"int8"}  # what makes the fallback necessary
    with pytest.raises(InputError, match="no compute ceiling usable for fp16"):
        analyze(case.model, entry, case.workload("decode"))
    (step,), skipped = predict([case])
    assert skipped == [] and step.phase == "decode"
    assert case.hardware.memory_bytes_per_s == entry.memory_bytes_per_s
    result = analyze(case.model, case.hardware, case.workload("decode"))
    assert result.totals.bound == "memory" and result.totals.compute_bound_time_s == 0
    assert step.bound_tokens_per_s == pytest.approx(entry.memory_bytes_per_s / result.totals.bytes)


def test_analyze_prices_the_graph_validate_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``analyze --graph-tokens 64 --graph-context 512`` is the step the graph columns describe: one formula."""
    path = tmp_path / "padded.csv"
    path.write_text(_graph_row("64", "512"))
    (step,), _ = predict([read_case(read_measurements(path)[0])])
    code, out, err = run(capsys, "analyze", "-m", "llama-2-7b", "--bandwidth-gb-s", "400", "--peak-tflops", "11",
                         "-w", "4.75", "--graph-tokens", "64", "--graph-context", "512", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["workload"]["q_len"] == 64 and result["workload"]["past_len"] == 448
    assert (result["workload"]["graph_tokens"], result["workload"]["graph_context"]) == (64, 512)
    assert result["totals"]["tokens"] == 1 and result["totals"]["bound"] == "compute"
    assert result["totals"]["tokens_per_s"] == pytest.approx(step.bound_tokens_per_s)
    code, out, _ = run(capsys, "analyze", "-m", "llama-2-7b", "--graph-tokens", "64", "--graph-context", "512")
    assert code == 0 and "a fixed-shape graph of 64 positions over a 512-position cache" in out.splitlines()[0]


@pytest.mark.parametrize(("flags", "message"), [
    (["--graph-tokens", "64", "--graph-context", "64"], "graph_context must exceed graph_tokens (64)"),
    (["-p", "prefill", "--graph-tokens", "8"], "describe a fixed-shape decode graph"),
    (["--graph-tokens", "0"], "--graph-tokens: expected an integer from 1 to 65536"),
    (["--graph-context", "1"], "--graph-context: expected an integer from 2 to"),
])
def test_analyze_refuses_a_graph_it_cannot_be(capsys: pytest.CaptureFixture[str], flags: list[str],
                                              message: str) -> None:
    code, out, err = run(capsys, "analyze", "-m", "llama-2-7b", *flags)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(("step", "context", "message"), [
    ("64", "64", "'graph_context_tokens': expected more than graph_step_tokens (64)"),
    ("0", "512", "'graph_step_tokens': expected an integer >= 1"),
    ("1", "4k", "'graph_context_tokens': expected an integer"),
])
def test_graph_columns_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str], step: str, context: str,
                                   message: str) -> None:
    path = tmp_path / "graph.csv"
    path.write_text(_graph_row(step, context))
    code, out, err = run(capsys, "validate", str(path))
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err


# --- several inputs, the rows it misses most, cross-validation reports (issue 17) -----------------------

def _rows_text(*changes: dict[str, str]) -> str:
    """A calibration CSV of one row per change (on the M2 Ultra Llama-2-7B Q4_0 row of ``_calibration_text``)."""
    texts = [_calibration_text(change) for change in changes]
    return texts[0] + "".join(text.split("\n", 1)[1] for text in texts[1:])


def test_several_files_and_a_folder_are_read_as_one_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header, *lines = CALIBRATION.read_text().splitlines()
    first = tmp_path / "first.csv"
    first.write_text("\n".join([header, *lines[:40]]) + "\n")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "rest.csv").write_text("\n".join([header, *lines[40:]]) + "\n")
    (folder / "README.md").write_text("not measurements\n")  # only *.csv is read from a folder
    code, out, err = run(capsys, "validate", str(first), str(folder), str(first), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["files"] == [{"path": str(first), "rows": 40}, {"path": str(folder / "rest.csv"), "rows": 53}]
    code, whole, _ = run(capsys, "validate", str(CALIBRATION), "--format", "json")
    assert data["summary"] == json.loads(whole)["summary"]  # the same 93 rows, the same figures
    # Each row keeps its file and its row number in that file: CSV row 41 is rest.csv's row 1.
    where = {(row["where"].split(",")[0], row["row"]) for row in data["rows"]}
    assert (str(folder / "rest.csv"), 1) in where and (str(first), 40) in where
    code, out, _ = run(capsys, "validate", str(first), str(folder), "--no-rows")
    assert code == 0 and out.startswith(f"{first} (40 rows), {folder / 'rest.csv'} (53 rows): 93 rows, 92 used")
    assert "row rest.csv:28 (both): unknown model 'SmolLM2'" in out  # CSV row 68
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "calibrate", str(tmp_path / "empty"))
    assert code == 2 and out == "" and "cannot read a folder with no .csv file" in err


def test_time_terms_sum_to_the_expected_time(published: tuple) -> None:
    _, predictions, _, _ = published
    for p in predictions:
        terms = expected_time_terms(p.cost, p.params)
        assert terms.expected_time_s == pytest.approx(expected_time_s(p.cost, p.params), rel=1e-9, abs=0)
        assert p.tokens / terms.expected_time_s == pytest.approx(p.expected_tokens_per_s, rel=1e-9, abs=0)
        assert sum(terms.shares().values()) == pytest.approx(1, rel=1e-12)
        # ... and to analyze's expected time, computed by its own compiled step.
        if p.case.device_from == "catalogue":
            totals = analyze(p.case.model, p.case.hardware, p.case.workload(p.phase)).totals
            assert terms.expected_time_s == pytest.approx(totals.expected_time_s, rel=1e-9, abs=0)


def test_time_terms_by_hand() -> None:
    params = EfficiencyParams(bandwidth_efficiency=0.5, compute_efficiency=0.8, dequant_compute_factor=0.5,
                              overhead_per_op_s=1e-5, overhead_per_step_s=1e-3)
    # A matmul unpacking weights, 2 instances: compute 1 ms / (0.8 x 0.5) = 2.5 ms beats memory 0.5 / 0.5 = 1 ms;
    # 1.25 ms of it at the compute efficiency, 1.25 ms the dequantization; x 2 = 2.5 ms + 2.5 ms.
    # A memory-bound operator, 3 instances: 2 ms / 0.5 = 4 ms; x 3 = 12 ms.
    # 5 kernels x 10 us = 0.05 ms; per step 1 ms. Total 2.5 + 2.5 + 12 + 0.05 + 1 = 18.05 ms.
    cost = StepCost(counts=(2, 3), compute_time_s=(1e-3, 0.0), memory_time_s=(0.5e-3, 2e-3), dequantizes=(1, 0))
    terms = expected_time_terms(cost, params)
    assert terms.by_term() == pytest.approx({"memory": 12e-3, "compute": 2.5e-3, "dequant": 2.5e-3,
                                             "kernel_overhead": 5e-5, "step_overhead": 1e-3}, rel=1e-12)
    assert terms.kernels == 5 and terms.dominant == "memory"
    assert terms.expected_time_s == pytest.approx(18.05e-3, rel=1e-12) == expected_time_s(cost, params)
    # The memory-bound operator fused into its neighbour (an engine's fusion): it launches no kernel.
    fused = expected_time_terms(cost._replace(kernels=(1, 0)), params)
    assert (fused.kernels, fused.kernel_overhead_s) == (2, pytest.approx(2e-5, rel=1e-12))
    assert fused.expected_time_s == pytest.approx(18.02e-3, rel=1e-12)
    assert fused.expected_time_s == pytest.approx(expected_time_s(cost._replace(kernels=(1, 0)), params), rel=1e-12)


@pytest.mark.parametrize("engine", [None, "mlx", "llama.cpp-metal"])
def test_time_terms_follow_an_engine_s_figures_and_fusion(engine: str | None) -> None:
    """With an engine (its fitted figures; MLX fuses norms, activations and adds into neighbouring kernels),
    the terms still sum to analyze's expected time, and the per-kernel cost counts only the kernels launched."""
    device = load_hardware("apple-m2-ultra-gpu")
    result = analyze("llama-2-7b", device, seq_len=64, weights="q4_0", engine=engine)
    workload = result.workload
    cost = step_cost(result.ops, workload.weight_scheme(result.model), workload.activation_format,
                     result.model.tied_embeddings, fusion_of(engine))
    terms = expected_time_terms(cost, params_for(device, engine))
    assert terms.expected_time_s == pytest.approx(result.totals.expected_time_s, rel=1e-9, abs=0)
    instances = sum(op.count for op in result.ops)
    assert (terms.kernels < instances) == (engine == "mlx")


CONSTRUCTED = [
    # 1: a tiny model's decode on a fast GPU: ~480 kernels of 11 us each, the weights streamed in microseconds.
    {"source": "a", "hardware": "NVIDIA H100 SXM", "hw_mem_bw_GBps": "3350", "hw_peak_fp16_TFLOPS": "989",
     "model": "SmolLM2-135M", "params_B": "0.135", "quant": "F16", "bits_per_weight": "16", "prefill_tok_s": "",
     "decode_tok_s": "400"},
    # 2: a 7B fp16 decode on a slow device: 13.5 GB at 17 GB/s.
    {"source": "b", "hardware": "Raspberry Pi 5 8GB", "hw_mem_bw_GBps": "17", "hw_peak_fp16_TFLOPS": "",
     "backend": "CPU", "quant": "F16", "bits_per_weight": "16", "prefill_tok_s": "", "decode_tok_s": "0.9"},
    # 3: an NPU known by its own figures; prefill above its 1 TFLOPS fp16 roof (~6.9 TFLOP for 512 tokens: 74 tok/s).
    {"source": "c", "hardware": "Test NPU", "backend": "NPU", "hw_mem_bw_GBps": "77", "hw_peak_fp16_TFLOPS": "1",
     "prefill_tok_s": "900", "decode_tok_s": "20"},
    # 4: the same NPU, a second source.
    {"source": "d", "hardware": "Test NPU", "backend": "NPU", "hw_mem_bw_GBps": "77", "hw_peak_fp16_TFLOPS": "1",
     "prefill_tok_s": "30", "decode_tok_s": "14"},
]


def test_worst_rows_their_dominant_term_and_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "constructed.csv"
    path.write_text(_rows_text(*CONSTRUCTED))
    predictions, _ = predict([read_case(m) for m in read_measurements(path)])
    worst = worst_predictions(predictions, 10)
    assert len(worst) == len(predictions) == 6  # rows 1 and 2 measured decode only
    apes = [miss.prediction.expected_ape for miss in worst]
    assert apes == sorted(apes, reverse=True)
    found = {(miss.prediction.case.measurement.row, miss.prediction.phase): miss for miss in worst}
    tiny = found[1, "decode"]
    assert tiny.terms.dominant == "kernel_overhead" and tiny.terms.shares()["kernel_overhead"] > 0.8
    assert tiny.terms.kernel_overhead_s == pytest.approx(tiny.terms.kernels * tiny.prediction.params.overhead_per_op_s)
    assert found[2, "decode"].terms.dominant == "memory" and not found[2, "decode"].above_bound
    npu_prefill = found[3, "prefill"]
    assert npu_prefill.terms.dominant in ("compute", "dequant") and npu_prefill.above_bound
    # The per-kernel cost that would reproduce the measurement, the other terms held.
    assert tiny.dominant_scale is not None and tiny.dominant_scale != pytest.approx(1)
    assert (tiny.dominant_scale < 1) == (tiny.prediction.expected_tokens_per_s < tiny.prediction.measured_tokens_per_s)
    implied_s = tiny.prediction.params.overhead_per_op_s * tiny.dominant_scale
    rest_s = tiny.terms.expected_time_s - tiny.terms.kernel_overhead_s
    assert rest_s + tiny.terms.kernels * implied_s == pytest.approx(tiny.measured_time_s, rel=1e-9)

    code, out, err = run(capsys, "validate", str(path), "--worst", "3", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert [(w["row"], w["phase"]) for w in data["worst"]] == [
        (m.prediction.case.measurement.row, m.prediction.phase) for m in worst[:3]]
    for entry in data["worst"]:
        assert sum(entry["time_terms_s"].values()) == pytest.approx(entry["expected_time_s"], rel=1e-9)
        assert entry["dominant_term"] == max(entry["time_shares"], key=entry["time_shares"].get)
    by_row = {(w["row"], w["phase"]): w for w in data["worst"]}
    share = round(100 * tiny.terms.shares()["kernel_overhead"])
    kernels = tiny.terms.kernels
    assert by_row[1, "decode"]["reason"].startswith(f"decode: {share} % kernel overheads ({kernels} kernels × ")
    assert "per kernel" in by_row[1, "decode"]["reason"]
    assert "measured above the roofline bound" in by_row[3, "prefill"]["reason"]
    code, out, _ = run(capsys, "validate", str(path), "--no-rows")
    assert "the 6 predictions it misses most" in out and out.count("\n  row ") == 6  # one reason each, no skip
    memory = found[2, "decode"]
    efficiency = round(100 * memory.prediction.params.bandwidth_efficiency)
    memory_share = round(100 * memory.terms.shares()["memory"])
    assert f"row 2 decode: {memory_share} % memory at {efficiency} % of the bandwidth" in out
    code, out, _ = run(capsys, "validate", str(path), "--no-rows", "--worst", "0")
    assert code == 0 and "misses most" not in out
    code, _, err = run(capsys, "validate", str(path), "--worst", "-1")
    assert code == 2 and "--worst" in err


def test_npu_rows_are_reported_on_their_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "constructed.csv"
    path.write_text(_rows_text(*CONSTRUCTED))
    code, out, err = run(capsys, "validate", str(path), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    by_backend = data["summary"]["by_backend"]
    assert set(by_backend) == {"gpu", "cpu", "npu"}
    npu = [row["expected_ape"] for row in data["rows"] if row["backend"] == "npu" and row["phase"] == "decode"]
    assert len(npu) == 2 and by_backend["npu"]["decode"]["n"] == 2
    assert by_backend["npu"]["decode"]["median_ape"] == pytest.approx(sum(npu) / 2)  # the median of two
    assert by_backend["npu"]["prefill"]["n"] == 2 and by_backend["gpu"]["prefill"]["n"] == 0
    for part in by_backend.values():
        assert set(part) == {"prefill", "decode", "bound"} and set(part["bound"]) == {"prefill", "decode"}
        assert set(part["decode"]) == {"n", "median_ape", "p90_ape", "median_signed_error"}
    assert data["summary"]["decode"]["n"] == 4  # all backends together, beside
    code, out, _ = run(capsys, "validate", str(path), "--no-rows")
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("NPU ")] == [
        ["NPU", "prefill", "2"], ["NPU", "decode", "2"]]


def test_errors_by_weight_format_and_their_sign(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "constructed.csv"
    third_npu_decode = {**CONSTRUCTED[3], "source": "e", "prefill_tok_s": "", "decode_tok_s": "25"}
    path.write_text(_rows_text(*CONSTRUCTED, third_npu_decode))
    code, out, err = run(capsys, "validate", str(path), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    rows = data["rows"]
    for row in rows:  # the sign kept: above 0 when the expectation is faster than the measurement
        assert row["expected_error"] == pytest.approx(row["expected_tokens_per_s"] / row["measured_tokens_per_s"] - 1)
        assert abs(row["expected_error"]) == pytest.approx(row["expected_ape"])
    by_weights = data["summary"]["by_weights"]
    assert set(by_weights) == {row["weights"] for row in rows} == {"fp16", "q4_0"}
    for label, part in by_weights.items():
        for phase in ("prefill", "decode"):
            mine = sorted(row["expected_error"] for row in rows if row["weights"] == label and row["phase"] == phase)
            assert part[phase]["n"] == len(mine)
            if mine:
                middle = (mine[(len(mine) - 1) // 2] + mine[len(mine) // 2]) / 2
                assert part[phase]["median_signed_error"] == pytest.approx(middle)
                assert part[phase]["median_ape"] == pytest.approx(quantile([abs(e) for e in mine], 0.5))
    assert data["summary"]["decode"]["median_signed_error"] == pytest.approx(
        quantile([row["expected_error"] for row in rows if row["phase"] == "decode"], 0.5))
    # The text: a bias column beside each backend's figures; a format's table only past three predictions.
    code, out, _ = run(capsys, "validate", str(path), "--no-rows", "--worst", "0")
    assert "expected bias" in out and "by weight format" in out
    table_lines = out.split("by weight format", 1)[1].splitlines()[3:]
    decode_q4 = [line.split() for line in table_lines if line.startswith("q4_0 ")]
    assert [line[:3] for line in decode_q4] == [["q4_0", "decode", "3"]]  # q4_0's 2 prefills and fp16's 1: too few
    expected_bias = by_weights["q4_0"]["decode"]["median_signed_error"]
    assert decode_q4[0][5] == f"{100 * expected_bias:+.1f}%"


def test_a_miss_on_super_block_weights_says_their_unpacking_is_not_priced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same M2 Ultra Llama-2-7B decode, measured at a third of its expectation: in Q4_K_M and in Q4_0.
    rows = [{"source": "k", "quant": "Q4_K_M", "bits_per_weight": "4.85", "prefill_tok_s": "", "decode_tok_s": "30"},
            {"source": "l", "quant": "Q4_0", "bits_per_weight": "4.5", "prefill_tok_s": "", "decode_tok_s": "30"},
            {"source": "m", "quant": "Q4_K_M", "bits_per_weight": "4.85", "prefill_tok_s": "", "decode_tok_s": "150"}]
    path = tmp_path / "k.csv"
    path.write_text(_rows_text(*rows))
    predictions, _ = predict([read_case(m) for m in read_measurements(path)])
    assert [p.unpacks_super_blocks for p in predictions] == [True, False, True]  # Q4_K (and Q6_K); Q4_0's 32
    code, out, err = run(capsys, "validate", str(path), "--format", "json", "--worst", "3")
    assert code == 0, err
    reasons = {entry["row"]: entry["reason"] for entry in json.loads(out)["worst"]}
    clause = "256-weight super-blocks (K-quants, i-quants)"
    assert clause in reasons[1] and "faster than measured" in reasons[1]
    assert clause not in reasons[2]  # Q4_0: the same miss, no such clause
    assert "slower than measured" in reasons[3] and clause not in reasons[3]  # too slow: not this cause


def test_cross_validate_both(published: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    _, predictions, _, rows = published
    code, out, err = run(capsys, "validate", str(CALIBRATION), "--cross-validate", "both", "--worst", "3",
                         "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data["cross_validation"]) == {"family", "source"}
    for by in ("family", "source"):
        held_out, folds = cross_validate(predictions, by)
        report = data["cross_validation"][by]
        assert report["summary"] == json.loads(json.dumps(summary(held_out, rows)))  # floats round-trip exactly
        assert set(report["folds"]) == set(folds) and len(report["worst"]) == 3
        assert report["worst"][0]["expected_ape"] == max(p.expected_ape for p in held_out)
    # The existing keys are the first grouping's.
    assert data["summary"] == data["cross_validation"]["family"]["summary"] and data["folds"]
    assert data["summary"]["decode"]["median_ape"] != data["cross_validation"]["source"]["summary"]["decode"][
        "median_ape"]
    code, out, _ = run(capsys, "validate", str(CALIBRATION), "--cross-validate", "both", "--no-rows", "--worst", "1")
    assert code == 0
    assert "fitted without each family" in out and "fitted without each source" in out
    assert out.count("expected median") == 2 and out.count("the prediction it misses most") == 2
    assert out.count("folds (the group left out") == 2


def test_a_row_the_analyzer_refuses_is_skipped(tmp_path: Path) -> None:
    # A device given for every row (--hardware) with an int8 ceiling only: fp16 math has no ceiling there;
    # the row is skipped with the analyzer's reason, not fatal. (A catalogue NPU the row names itself is read
    # at its memory roof, decode only: the next test.)
    path = tmp_path / "npu.csv"
    path.write_text(_rows_text({"hardware": "Snapdragon 8 Elite NPU", "backend": "NPU"}, {}))
    given = load_hardware("qualcomm-snapdragon-8-elite-npu")
    rows = read_measurements(path)
    predictions, skipped = predict([read_case(rows[0], hardware=given), read_case(rows[1])])
    assert [(s.measurement.row, s.phase) for s in skipped] == [(1, "prefill"), (1, "decode")]
    assert "no compute ceiling usable for fp16 math" in skipped[0].reason and len(predictions) == 2
    own, own_skipped = predict([read_case(rows[0])])
    assert [p.phase for p in own] == ["decode"] and [s.phase for s in own_skipped] == ["prefill"]
    assert "prefill needs a compute ceiling" in own_skipped[0].reason
