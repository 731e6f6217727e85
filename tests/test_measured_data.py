"""The published measurements of data/measured/ (issue 17): every row cites a URL, parses, is matched to a
catalogue model and a device with every measured phase predicted, has plausible figures, and repeats no
row of bench/data/calibration.csv; the set is large enough (>= 80 rows) and holds NPU rows.

Each check is a function that returns the problems it finds, so the tests below can show it finds them
in a file made wrong on purpose (a check that cannot fail checks nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from llm_roofline.features.fidelity.validation import (
    NotPredictable,
    Skip,
    catalogue_device,
    identify_model,
    predict,
    read_case,
)
from llm_roofline.inputs.measurements import Measurement, read_measurements

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "data/measured"
CALIBRATION = ROOT / "bench/data/calibration.csv"
MIN_ROWS = 80
URL = re.compile(r"^https?://\S+")
BITS_RANGE = (1.0, 33.0)  # 1-bit ternary/binary formats up to fp32 (30.6 bpw files exist: fp32 + metadata)


def measured_files() -> list[Path]:
    return sorted(MEASURED.glob("*.csv"))


def all_rows() -> list[Measurement]:
    return [m for path in measured_files() for m in read_measurements(path)]


def source_problems(rows: Iterable[Measurement]) -> list[str]:
    return [f"{m.where}: source {m.source!r} does not start with a URL" for m in rows if not URL.match(m.source)]


def value_problems(rows: Iterable[Measurement]) -> list[str]:
    problems = []
    for m in rows:
        if m.bits_per_weight is None or not BITS_RANGE[0] <= m.bits_per_weight <= BITS_RANGE[1]:
            problems.append(f"{m.where}: bits per weight {m.bits_per_weight} outside {BITS_RANGE}")
        speeds = [s for s in (m.prefill_tokens_per_s, m.decode_tokens_per_s) if s is not None]
        if not speeds or any(s <= 0 for s in speeds):
            problems.append(f"{m.where}: needs a prefill or decode speed > 0, got {speeds}")
        if m.params is None or m.params <= 0:
            problems.append(f"{m.where}: params_B missing")
    return problems


def match_problems(rows: Iterable[Measurement]) -> list[str]:
    """Rows (or phases) the tool cannot read or predict: an unknown model or device, a prefill without a
    compute ceiling, or an error while predicting."""
    problems = []
    for m in rows:
        case = read_case(m)
        if isinstance(case, Skip):
            problems.append(f"{m.where}: not read ({case.reason})")
            continue
        try:
            _, skipped = predict([case])
        except Exception as err:  # any failure to predict a row is what this reports
            problems.append(f"{m.where}: prediction failed ({err})")
            continue
        problems += [f"{m.where}: {s.phase} skipped ({s.reason})" for s in skipped]
    return problems


def _key(m: Measurement) -> tuple[object, ...]:
    """A measurement's identity: the catalogue device and model it resolves to (else their names as
    written), the format, the batch and both speeds."""
    device = catalogue_device(m)
    try:
        model = identify_model(m).name
    except NotPredictable:
        model = m.model.lower()
    return (device.name if device else " ".join(m.hardware.lower().split()), model,
            m.quant.split("(")[0].strip().lower(), m.batch, m.prefill_tokens_per_s, m.decode_tokens_per_s)


def duplicate_problems(rows: Iterable[Measurement], reference: Iterable[Measurement]) -> list[str]:
    """Rows that repeat a reference row: same device, model, format and batch, and the same prefill and
    decode figures (whatever the two files write as the source)."""
    seen = {_key(r): r.where for r in reference}
    return [f"{m.where} repeats {seen[key]}" for m in rows if (key := _key(m)) in seen]


# --- the data -------------------------------------------------------------------------------------

def test_there_are_enough_rows_with_npus_among_them() -> None:
    assert measured_files(), f"no CSV in {MEASURED}"
    rows = all_rows()
    assert len(rows) >= MIN_ROWS, f"{len(rows)} rows; the issue asks for at least {MIN_ROWS}"
    backends = {m.backend for m in rows}
    assert {"gpu", "cpu", "npu"} <= backends, f"backends present: {sorted(backends)}"


def test_every_row_cites_a_url() -> None:
    assert source_problems(all_rows()) == []


def test_every_row_has_plausible_figures() -> None:
    assert value_problems(all_rows()) == []


def test_every_row_is_matched_and_every_phase_predicted() -> None:
    assert match_problems(all_rows()) == []


def test_no_row_repeats_the_calibration_set() -> None:
    assert duplicate_problems(all_rows(), read_measurements(CALIBRATION)) == []


def test_no_row_is_repeated_within_the_set() -> None:
    rows = all_rows()
    keys = [_key(m) for m in rows]
    repeated = [m.where for m, key in zip(rows, keys, strict=True) if keys.count(key) > 1]
    assert repeated == []


def test_the_readme_gives_the_row_count() -> None:
    readme = (MEASURED / "README.md").read_text(encoding="utf-8")
    assert f"{len(all_rows())} rows" in readme


# --- the checks find what they look for -----------------------------------------------------------

HEADER = ("source,hardware,hw_mem_bw_GBps,hw_peak_fp16_TFLOPS,model,params_B,quant,bits_per_weight,framework,"
          "backend,batch,prompt_tokens,gen_tokens,prefill_tok_s,decode_tok_s,notes\n")


def _file(tmp_path: Path, *lines: str) -> list[Measurement]:
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return read_measurements(path)


def test_the_checks_catch_bad_rows(tmp_path: Path) -> None:
    rows = _file(
        tmp_path,
        # no URL; 40 bits per weight
        "a blog post,NVIDIA GeForce RTX 4090,,,Llama-2-7B,6.74,Q4_0,40,llama.cpp,GPU,1,512,128,5000,150,",
        # a model the catalogue does not hold
        "https://example.org/x,NVIDIA GeForce RTX 4090,,,Llama-9-1T,1000,Q4_0,4.5,llama.cpp,GPU,1,512,128,5000,150,",
        # a device outside the catalogue with a bandwidth but no peak: its prefill cannot be predicted
        "https://example.org/y,Some Accelerator X1,100,,Llama-2-7B,6.74,Q4_0,4.5,llama.cpp,GPU,1,512,128,500,20,",
        # fine
        "https://example.org/z,NVIDIA GeForce RTX 4090,,,Llama-2-7B,6.74,Q4_0,4.5,llama.cpp,GPU,1,512,128,5000,150,",
    )
    assert [p.split(":")[0] for p in source_problems(rows)] == [rows[0].where.split(":")[0]]
    assert len(value_problems(rows)) == 1 and "bits per weight 40" in value_problems(rows)[0]
    found = match_problems(rows)
    assert any("Llama-9-1T" in p and "not read" in p for p in found)
    assert any("prefill skipped" in p for p in found)
    assert len(found) == 2


def test_the_duplicate_check_finds_a_copied_calibration_row(tmp_path: Path) -> None:
    reference = read_measurements(CALIBRATION)
    original = next(m for m in reference if m.prefill_tokens_per_s and m.decode_tokens_per_s and m.batch == 1)
    copied = _file(
        tmp_path,
        f"https://example.org/another-copy,{original.hardware},,,{original.model},{original.params / 1e9},"
        f"{original.quant.replace(',', ' ')},{original.bits_per_weight},llama.cpp,{original.backend.upper()},1,,,"
        f"{original.prefill_tokens_per_s},{original.decode_tokens_per_s},",
    )
    assert len(duplicate_problems(copied, reference)) == 1


@pytest.mark.parametrize("column,value", [("prefill_tok_s", ""), ("decode_tok_s", "")])
def test_a_row_with_one_phase_is_still_plausible(tmp_path: Path, column: str, value: str) -> None:
    fields = {"prefill_tok_s": "5000", "decode_tok_s": "150", column: value}
    rows = _file(tmp_path, "https://example.org/p,NVIDIA GeForce RTX 4090,,,Llama-2-7B,6.74,Q4_0,4.5,llama.cpp,GPU,"
                           f"1,512,128,{fields['prefill_tok_s']},{fields['decode_tok_s']},")
    assert value_problems(rows) == []
