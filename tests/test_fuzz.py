"""Hostile input, everywhere: the corpus of tests/hostile_corpus.py over every command, and hypothesis.

The corpus runs once per session in two child processes (tests/hostile_runner.py), each case in its
own folder; then one test per case checks what it did: no traceback, exit 0 or 2 as the case allows,
one line on stderr when refused, nothing written when refused (and no temporary file ever), no
control character a terminal would obey, strict JSON for ``--format json``, under 10 s and 1 GiB.
The hypothesis tests below throw generated configs, device files and workloads at the Python API:
each either gives finite numbers or raises the one-line InputError.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile_corpus import (
    CASE_LIMIT_S,
    ESCAPES,
    FORBIDDEN_OUTPUT,
    GEMMA_CONFIG,
    LLAMA_CONFIG,
    MOE_CONFIG,
    RSS_LIMIT_BYTES,
    all_cases,
)
from llm_roofline.core.errors import InputError

CASES = all_cases()
RUNNER = Path(__file__).resolve().parent / "hostile_runner.py"
SHARDS = 2
HUNG_AFTER_S = 4 * CASE_LIMIT_S  # a case with no result this long after its start: killed, counted as hung


def _run_shard(cases: list[dict[str, Any]], folder: Path) -> dict[str, dict[str, Any]]:
    """Run ``cases`` in a child process; restart it past a case that hangs or kills it."""
    folder.mkdir()
    (folder / "cases.json").write_text(json.dumps(cases))
    results_path = folder / "results.jsonl"
    results: dict[str, dict[str, Any]] = {}
    first = 0
    while first < len(cases):
        with open(folder / f"runner{first}.log", "wb") as log:
            child = subprocess.Popen([sys.executable, str(RUNNER), str(folder / "cases.json"), str(results_path),
                                      str(folder / "work"), str(first)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=log)
        seen = 0
        last_change = time.monotonic()
        started: int | None = None
        while True:
            text = results_path.read_text() if results_path.exists() else ""
            lines = text.split("\n")[:-1]  # whole lines only: the runner may be writing the last one
            if len(lines) != seen:
                seen, last_change = len(lines), time.monotonic()
                for line in lines:
                    entry = json.loads(line)
                    if "start" in entry:
                        started = entry["start"]
                    else:
                        results[cases[entry["index"]]["id"]] = entry
                        started = None
            if child.poll() is not None or time.monotonic() - last_change > HUNG_AFTER_S:
                break
            time.sleep(0.05)
        if child.poll() is None:
            child.kill()
        child.wait()
        if started is None:
            break  # all done
        results[cases[started]["id"]] = {"id": cases[started]["id"], "hung": True, "code": child.returncode,
                                           "log": (folder / f"runner{first}.log").read_text()[-2000:]}
        first = started + 1
        results_path.write_text("")  # the next runner starts a fresh file
    return results


@pytest.fixture(scope="session")
def corpus_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("hostile")
    shards = [CASES[i::SHARDS] for i in range(SHARDS)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(SHARDS) as pool:
        parts = list(pool.map(lambda item: _run_shard(item[1], root / f"shard{item[0]}"), enumerate(shards)))
    return {key: value for part in parts for key, value in part.items()}


def problems(case: dict[str, Any], result: dict[str, Any] | None) -> list[str]:
    """What a case's run did wrong (an empty list: nothing)."""
    if result is None:
        return ["never ran"]
    if result.get("hung"):
        return [f"hung or killed the runner (status {result.get('code')}): {result.get('log', '')[-500:]}"]
    found = []
    code, out, err = result["code"], result["stdout"], result["stderr"]
    if result["escaped"]:
        found.append(f"an exception escaped main: {result['escaped'][-800:]}")
    if "Traceback" in err or "Traceback" in out:
        found.append(f"a traceback was printed: {err[-800:]}")
    if result["seconds"] > CASE_LIMIT_S:
        found.append(f"took {result['seconds']} s")
    if result["peak_rss_bytes"] > RSS_LIMIT_BYTES:
        found.append(f"peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MiB")
    bad = sorted({repr(c) for c in FORBIDDEN_OUTPUT if c in out or c in err})
    if bad:
        found.append(f"printed control characters {', '.join(bad)}")
    leftovers = [name for name in result["new_files"] if ".tmp" in name or Path(name).name.startswith(".")]
    if leftovers:
        found.append(f"left temporary files {leftovers}")
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        if len(lines) != 1 or not lines[0].startswith("llm-roofline: error: "):
            found.append(f"refused without exactly one error line: {err[-600:]!r}")
        elif len(lines[0]) > 1000:
            found.append(f"an error line of {len(lines[0])} characters")
        if result["new_files"]:
            found.append(f"refused but wrote {result['new_files']}")
    elif code == 0:
        if case["expect"] == "refused":
            found.append(f"accepted input it should refuse: {out[:300]!r}")
        unexpected = [name for name in result["new_files"] if name not in case["outputs"]]
        if unexpected:
            found.append(f"wrote files it should not: {unexpected}")
        if "--format" in case["argv"] and case["argv"][case["argv"].index("--format") + 1] == "json":
            try:
                json.loads(out, parse_constant=_not_json)
            except ValueError as err_:
                found.append(f"--format json printed invalid JSON ({err_}): {out[:200]!r}")
    else:
        found.append(f"exit status {code}: {err[-600:]!r}")
    return found


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")


def test_corpus_is_large_and_covers_every_command() -> None:
    from hostile_corpus import BASE_ARGV, FILE_ARGUMENTS

    assert len(CASES) >= 300
    commands = {case["argv"][0] for case in CASES}
    import argparse

    from llm_roofline.faces.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    listings = {"hardware", "models", "formats"}  # take no input but --format
    assert set(sub.choices) - listings <= commands, set(sub.choices) - commands
    assert {" ".join(argv[:1]) for argv, _ in FILE_ARGUMENTS} and BASE_ARGV


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_hostile_case(case: dict[str, Any], corpus_results: dict[str, dict[str, Any]]) -> None:
    found = problems(case, corpus_results.get(case["id"]))
    assert not found, f"llm-roofline {' '.join(case['argv'])[:300]}: " + "; ".join(found)


def test_the_checks_can_fail() -> None:
    """The checker itself: a traceback, a second stderr line, a partial file, NaN in JSON each fail."""
    case = {"id": "x", "argv": ["analyze", "--format", "json"], "expect": "either", "outputs": []}
    clean = {"code": 0, "stdout": '{"a": 1}', "stderr": "", "escaped": None, "seconds": 0.1, "peak_rss_bytes": 1,
             "new_files": []}
    assert problems(case, clean) == []
    for change in ({"stdout": '{"a": NaN}'}, {"code": 2, "stderr": "llm-roofline: error: x\nmore\n"},
                   {"code": 2, "stderr": "llm-roofline: error: x\n", "new_files": ["out.csv"]},
                   {"stderr": "Traceback (most recent call last):"}, {"new_files": [".out.csv.abc.tmp"]},
                   {"stdout": "\x1b]0;title\x07"}, {"code": 1}, {"seconds": 11.0}, {"peak_rss_bytes": 2 << 30}):
        assert problems(case, {**clean, **change}), change


# --- hypothesis: the Python API on generated input -------------------------------------------------

_NUMBERS = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0, 1, 2, 3, 7, 64, 2**31, 2**62, 10**12]))
_VALUES = st.one_of(_NUMBERS, st.text(max_size=20), st.none(), st.booleans(), st.lists(st.integers(), max_size=4),
                    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
_FIELDS = sorted({*LLAMA_CONFIG, *GEMMA_CONFIG, *MOE_CONFIG, "head_dim", "rope_scaling", "quantization_config",
                  "layer_types", "num_experts", "moe_intermediate_size", "n_shared_experts", "kv_lora_rank"})


def _finite_totals(model: Any) -> None:
    from llm_roofline.core.roofline import analyze
    from llm_roofline.core.transformer import Workload
    from llm_roofline.inputs.device_files import load_hardware

    for phase in ("decode", "prefill"):
        result = analyze(model, load_hardware("jetson-orin-nx"), Workload(phase=phase, batch=1, seq_len=512))
        totals = result.totals
        for value in (totals.flops, totals.bytes, totals.time_s):
            assert math.isfinite(value) and value >= 0, (phase, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from([LLAMA_CONFIG, GEMMA_CONFIG, MOE_CONFIG]),
       changes=st.dictionaries(st.sampled_from(_FIELDS), _VALUES, min_size=1, max_size=4))
def test_generated_configs_give_finite_numbers_or_one_line(base: dict[str, Any], changes: dict[str, Any]) -> None:
    from llm_roofline.inputs.model_files import model_from_hf_config

    try:
        model = model_from_hf_config({**base, **changes}, name="fuzz")
        _finite_totals(model)
    except InputError as err:
        assert "\n" not in str(err) and str(err)


@settings(max_examples=150, deadline=None)
@given(bandwidth=_NUMBERS, peak=_NUMBERS, memory=_NUMBERS)
def test_generated_devices_give_finite_numbers_or_one_line(bandwidth: Any, peak: Any, memory: Any) -> None:
    from llm_roofline.core.hardware import hardware_from_dict
    from llm_roofline.core.roofline import analyze
    from llm_roofline.core.transformer import Workload
    from llm_roofline.inputs.model_files import load_model

    data = {"name": "fuzz", "kind": "gpu", "memory_bytes": memory, "memory_bytes_per_s": bandwidth,
            "peak_flops_per_s": {"fp16": peak}, "source": "hypothesis"}
    try:
        device = hardware_from_dict(data, "fuzz.toml")
        result = analyze(load_model("llama-2-7b"), device, Workload())
        assert math.isfinite(result.totals.time_s) and result.totals.time_s > 0
    except InputError as err:
        assert "\n" not in str(err) and str(err)


@settings(max_examples=150, deadline=None)
@given(batch=_NUMBERS, seq_len=_NUMBERS, phase=st.sampled_from(["decode", "prefill", "train", ""]))
def test_generated_workloads_give_finite_numbers_or_one_line(batch: Any, seq_len: Any, phase: str) -> None:
    from llm_roofline.core.roofline import analyze
    from llm_roofline.core.transformer import Workload
    from llm_roofline.inputs.device_files import load_hardware
    from llm_roofline.inputs.model_files import load_model

    try:
        result = analyze(load_model("llama-3.1-8b"), load_hardware("nvidia-a100-80gb-sxm"),
                         Workload(phase=phase, batch=batch, seq_len=seq_len))
        assert math.isfinite(result.totals.time_s) and result.totals.time_s > 0
    except InputError as err:
        assert "\n" not in str(err) and str(err)



# --- the web API: every endpoint given the corpus's files and hostile values -----------------------

_ENDPOINT_VALUES: list[Any] = [1e308, -1, 0, 2**64, 10**400, "nan", None, True, "x" * 1000, [], {}, ESCAPES, 5e-324]
_ANALYZE_FIELDS = ["model", "config", "gguf", "hardware", "phase", "batch", "seq_len", "weights", "activations",
                   "kv_cache", "flash_attention", "causal_skip", "lm_head", "fuse", "sparsity", "mla", "precisions"]


def _endpoint_cases() -> list[tuple[str, str, dict[str, str], bytes, str]]:
    """(id, path, headers, body, expect): expect "refused" (a 4xx) or "either" (200 or a 4xx)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hostile_corpus import config_variants

    binary = {"content-type": "application/octet-stream"}
    as_json = {"content-type": "application/json"}
    cases: list[tuple[str, str, dict[str, str], bytes, str]] = []
    for name, (config, expect) in config_variants().items():
        body = json.dumps(config).encode()
        cases.append((f"parse {name}", "/api/models/parse", as_json, body, expect))
        if isinstance(config, dict):
            cases.append((f"analyze config {name}", "/api/analyze", as_json, json.dumps({"config": config}).encode(),
                          expect))
    for name, body in {"deep": b"[" * 100_000 + b"]" * 100_000, "nan": b'{"hidden_size": NaN}', "empty": b"",
                       "not utf-8": b'{"\xff": 1}', "2 MiB": b" " * (2 << 20) + b"{}", "digits": b'{"a": ' +
                       b"9" * 5000 + b"}"}.items():
        cases.append((f"parse raw {name}", "/api/models/parse", as_json, body, "refused"))
        cases.append((f"analyze raw {name}", "/api/analyze", as_json, body, "refused"))
    for field in _ANALYZE_FIELDS:
        for value in _ENDPOINT_VALUES:
            body = json.dumps({field: value}).encode()
            cases.append((f"analyze {field}={str(value)[:20]!r}", "/api/analyze", as_json, body, "either"))
            cases.append((f"sweep {field}={str(value)[:20]!r}", "/api/sweep", as_json,
                          json.dumps({field: value, "values": [1, 8]}).encode(), "either"))
    for values in ([2**64], [-1], [], list(range(1, 10_000)), ["a"], [1e308], [None], "1..8"):
        cases.append((f"sweep values {str(values)[:20]}", "/api/sweep", as_json,
                      json.dumps({"values": values}).encode(), "refused"))
    for path in ("/api/analyze", "/api/sweep", "/api/models/parse", "/api/models/gguf?size=100"):
        cases.append((f"text/plain {path}", path, {"content-type": "text/plain"}, b"{}", "refused"))
        cases.append((f"cross-origin {path}", path, {**as_json, "origin": "https://evil.example"}, b"{}",
                      "refused"))
        cases.append((f"cross-site {path}", path, {**as_json, "sec-fetch-site": "cross-site"}, b"{}", "refused"))
        cases.append((f"foreign host {path}", path, {**as_json, "host": "evil.example"}, b"{}", "refused"))
    for size in ("0", "-1", "1e308", "99999999999999999999999", "x"):
        cases.append((f"gguf size {size}", f"/api/models/gguf?size={size}", binary, b"GGUF" + b"\0" * 60, "refused"))
    return cases


def _gguf_endpoint_cases(folder: Path) -> list[tuple[str, str, dict[str, str], bytes, str]]:
    import hostile_runner

    cases = []
    for recipe in ("tensor_count_huge", "key_count_huge", "string_length_huge", "array_length_huge",
                   "value_type_bad", "version_bad", "many_keys", "truncated", "escaped_name", "huge_dims",
                   "huge_layers"):
        path = folder / f"{recipe}.gguf"
        hostile_runner.materialize(folder, {path.name: {"gguf": recipe}})
        data = path.read_bytes()
        expect = "either" if recipe == "escaped_name" else "refused"
        cases.append((f"gguf {recipe}", f"/api/models/gguf?size={max(len(data), 1 << 20)}",
                      {"content-type": "application/octet-stream"}, data, expect))
    return cases


ENDPOINT_CASES = _endpoint_cases()


def test_endpoint_corpus_is_large() -> None:
    assert len(ENDPOINT_CASES) >= 300


def _check_response(case_id: str, expect: str, status: int, text: str) -> list[str]:
    found = []
    if status >= 500:
        found.append(f"status {status}")
    elif expect == "refused" and not 400 <= status < 500:
        found.append(f"status {status}, expected a 4xx refusal")
    elif status not in (200, 400, 403, 408, 413, 415, 421, 422, 503):
        found.append(f"unexpected status {status}")
    try:
        json.loads(text, parse_constant=_not_json)
    except ValueError as err:
        found.append(f"the answer is not strict JSON ({err}): {text[:200]!r}")
    return found


def test_every_endpoint_answers_hostile_requests_with_json_4xx(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from llm_roofline.faces.web.app import create_app

    failures = []
    cases = ENDPOINT_CASES + _gguf_endpoint_cases(tmp_path)
    with TestClient(create_app(), base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as client:
        for case_id, path, headers, body, expect in cases:
            start = time.perf_counter()
            answer = client.post(path, content=body, headers=headers)
            found = _check_response(case_id, expect, answer.status_code, answer.text)
            if time.perf_counter() - start > CASE_LIMIT_S:
                found.append("took over 10 s")
            if found:
                failures.append(f"{case_id}: {'; '.join(found)}")
        assert client.get("/api/catalogue").status_code == 200  # and the server still answers
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures[:40])
