"""The advice (``llm-roofline advise``, ``POST /api/advice``, the page's panel): every figure is a study's
own — the levers are ``whatif`` variants, the latency verdict is ``feasibility``, the bound is ``analyze``'s."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import require_module
from llm_roofline import analyze
from llm_roofline.core.transformer import Workload
from llm_roofline.faces.cli.main import main
from llm_roofline.features.studies.advice import NO_GAIN, advise, lever_changes
from llm_roofline.inputs.device_files import load_hardware
from llm_roofline.inputs.model_files import load_model

CASES = [
    ("llama-2-7b", "jetson-orin-nx", [], 50.0),
    ("llama-3.2-1b", "qualcomm-snapdragon-8-elite-gpu", ["-l", "32768", "--flash-attention"], 20.0),
    ("qwen3-30b-a3b", "apple-m2-gpu", ["-w", "q4_k_m"], 30.0),
    ("llama-3-8b", "nvidia-a100-80gb", ["-p", "prefill", "-l", "2048"], 10.0),
    ("lfm2-1.2b", "jetson-orin-nx", ["-b", "4", "--kv-cache", "int8"], None),
]


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main([*args, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize(("model", "device", "options", "target_ms"), CASES, ids=[c[0] for c in CASES])
def test_levers_are_whatif_variants_and_the_verdict_is_feasibility(
        capsys: pytest.CaptureFixture[str], model: str, device: str, options: list[str], target_ms: float | None,
) -> None:
    target = [] if target_ms is None else ["--target-ms", str(target_ms)]
    advice = cli_json(capsys, "advise", "-m", model, "-H", device, *options, *target)
    levers = advice["levers"]
    assert levers and advice["top"] == levers[:3]
    tried = advice["whatif"]["variants"]  # in the order tried; the levers are ranked
    assert sorted(v["label"] for v in tried) == sorted(f"{lever['knob']}={lever['value']}" for lever in levers)
    varied = [arg for variant in tried for arg in ("--vary", variant["label"])]
    whatif = cli_json(capsys, "whatif", "-m", model, "-H", device, *options, *varied)
    assert advice["whatif"] == whatif
    by_label = {v["label"]: v for v in whatif["variants"]}
    base = whatif["baseline"]
    for lever in levers:
        variant = by_label[f"{lever['knob']}={lever['value']}"]
        assert lever["tokens_per_s"] == variant["tokens_per_s"]
        assert lever["time_ratio"] == variant["time_ratio"]
        assert lever["bound"] == variant["bound"]
        assert lever["throughput_ratio"] == pytest.approx(variant["tokens_per_s"] / base["tokens_per_s"], rel=1e-12)
        fits = None if advice["capacity_bytes"] is None else variant["memory_bytes"] <= advice["capacity_bytes"]
        assert lever["fits"] == fits
        assert lever["pays"] == (lever["throughput_ratio"] >= NO_GAIN and fits is not False)
    # Ranked: the levers that pay first, by throughput.
    paying = [lever["pays"] for lever in levers]
    assert paying == sorted(paying, reverse=True)
    ratios = [lever["throughput_ratio"] for lever in levers if lever["pays"]]
    assert ratios == sorted(ratios, reverse=True)
    assert advice["tokens_per_s"] == base["tokens_per_s"] and advice["bound"] == base["bound"]
    if target_ms is None:
        assert advice["feasibility"] is None
    else:
        drop = [] if "-p" not in options else ["-p", "prefill"]  # feasibility judges decode: no --phase
        feasibility = cli_json(capsys, "feasibility", "-m", model, "-H", device,
                               *[o for o in options if o not in drop], "--target-ms", str(target_ms))
        assert advice["feasibility"] == feasibility
        verdict = "meets" if feasibility["baseline"]["meets"] else "misses"
        assert advice["feasibility_text"].startswith(verdict) and advice["summary"][-1] == advice["feasibility_text"]


def test_the_bound_and_its_reason_are_the_analysis() -> None:
    workload = Workload(phase="prefill", seq_len=2048)
    model, device = load_model("llama-3-8b"), load_hardware("nvidia-a100-80gb")
    advice = advise(model, device, workload)
    totals = analyze(model, device, workload).totals
    assert advice.bound == totals.bound == "compute"
    assert advice.ridge_flop_per_byte == totals.ridge_flop_per_byte
    assert f"{totals.arithmetic_intensity:.3g} FLOP per byte" in advice.bound_reason
    assert f"{totals.ridge_flop_per_byte:.3g} FLOP/B" in advice.bound_reason
    assert advice.bound_reason.startswith("compute-bound") and "at or above" in advice.bound_reason
    decode = advise(model, device, Workload())
    assert decode.bound == "memory" and decode.bound_reason.startswith("memory-bound")
    assert "below" in decode.bound_reason


def test_levers_tried_follow_the_deployment() -> None:
    model, orin, m2 = load_model("llama-2-7b"), load_hardware("jetson-orin-nx"), load_hardware("apple-m2-gpu")
    knobs = {(c.knob, c.value) for c in lever_changes(model, orin, Workload())}
    assert knobs == {("weights", "int8"), ("weights", "int4"), ("kv-cache", "int8"), ("flash-attention", "on"),
                     ("fuse", "elementwise"), ("sparsity", "2:4"), ("batch", "8")}
    # No 2:4 lever on a device without sparse units; no weight lever below int4; none already taken.
    taken = Workload(weights="int4", kv_cache="int8", flash_attention=True, fuse="elementwise", batch=4)
    assert {(c.knob, c.value) for c in lever_changes(model, m2, taken)} == {("batch", "32")}


def test_a_lever_that_no_longer_fits_is_named_so_and_ranked_last() -> None:
    advice = advise(load_model("llama-2-7b"), load_hardware("apple-m2-gpu"), Workload())  # 16 GiB for the GPU
    assert advice.fits is True
    batch = next(lever for lever in advice.levers if lever.knob == "batch")
    assert batch.fits is False and not batch.pays and batch.throughput_ratio > 5  # 8 sequences' KV caches
    assert "does not fit" in batch.text and advice.levers[-1] == batch
    assert advice.top[0].title == "int4 weights" and "3.56× faster" in advice.top[0].text


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    require_module("fastapi")
    require_module("httpx")
    from fastapi.testclient import TestClient

    from llm_roofline.faces.web.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_api_gives_the_commands_advice(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"model": "mistral-7b", "hardware": ["apple-m3-gpu", "nvidia-l4"], "seq_len": 4096,
            "weights": "q4_k_m", "flash_attention": True, "target_ms": 25}
    response = client.post("/api/advice", json=body)
    assert response.status_code == 200
    expected = cli_json(capsys, "advise", "-m", "mistral-7b", "-H", "apple-m3-gpu", "-l", "4096", "-w", "q4_k_m",
                        "--flash-attention", "--target-ms", "25")
    assert response.json() == expected
    for bad, field in (({"target_ms": 0}, "target_ms"), ({"target_ms": "fast"}, "target_ms"),
                       ({"hardware": []}, "hardware")):
        response = client.post("/api/advice", json={"model": "llama-2-7b"} | bad)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == field
    response = client.post("/api/advice", json={"model": "no-such-model"})
    assert response.status_code == 400 and "no-such-model" in response.json()["detail"]
