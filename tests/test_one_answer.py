"""One answer to "what bounds this step?" and "does it fit?": analyze, its JSON, the sweep (rows and
its boundary query), the timeline, transition's crossing points, fit and the web API agree for every
point of a grid.

The step's bound is the chapter's test, intensity against the ridge point of the precision the step's
matrix products run in, ties compute (``roofline.step_compute_bound``); the points include batches
around the Orin NX's crossings (53, 54, 75) where the old time-weighted rule and the intensity rule
disagreed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from llm_roofline import Workload, analyze, load_hardware, load_model
from llm_roofline.faces.cli.main import main
from llm_roofline.faces.web.app import create_app
from llm_roofline.features.deploy import fit
from llm_roofline.features.studies.timeline import generation_timeline
from llm_roofline.features.studies.transition import (
    WHOLE_STEP,
    CriticalPoint,
    critical_batch,
    critical_prompt_len,
    transition_study,
)
from llm_roofline.features.sweep import iter_sweep, make_spec

MODELS = ["llama-2-7b", "qwen3-30b-a3b", "gemma-2-2b"]  # dense MHA; MoE with GQA; sliding-window layers
DEVICES = ["jetson-orin-nx", "nvidia-a100-80gb-sxm"]
BATCHES = [1, 8, 53, 54, 75, 128]
LENGTHS = [16, 128, 2048]
FORMATS = [("fp16", "fp16"), ("int4", "fp16"), ("int8", "int8")]


def _in_ranges(value: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(first <= value <= last for first, last in ranges)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(("model_name", "device_name"), list(itertools.product(MODELS, DEVICES)))
def test_every_command_gives_the_same_bound(model_name: str, device_name: str) -> None:
    model, device = load_model(model_name), load_hardware(device_name)
    for weights, activations in FORMATS:
        spec = make_spec([model], [device], BATCHES, LENGTHS, phases=["prefill", "decode"], weights=[weights],
                         activations=[activations])
        rows: dict[tuple[str, int, int], tuple[str, bool]] = {}
        for chunk in iter_sweep(spec):
            for phase, batch, length, bound, fits in zip(chunk["phase"], chunk["batch"], chunk["seq_len"],
                                                          chunk["bound"], chunk["fits"], strict=True):
                rows[(str(phase), int(batch), int(length))] = (str(bound), bool(fits))
        for phase, batch, length in itertools.product(("prefill", "decode"), BATCHES, LENGTHS):
            workload = Workload(phase=phase, batch=batch, seq_len=length, weights=weights, activations=activations)
            analysis = analyze(model, device, workload)
            totals, fits = analysis.totals, analysis.memory.fits
            expected = "compute" if totals.arithmetic_intensity >= totals.ridge_flop_per_byte else "memory"
            assert totals.bound == expected
            assert rows[(phase, batch, length)] == (totals.bound, fits)
            # fit: the same footprint, and its largest batch is exactly where fitting stops
            report = fit(model, device, workload)
            assert report.footprint == analysis.memory
            assert (report.max_batch >= batch) == fits
            # transition: the whole step is compute-bound exactly on its reported ranges
            if phase == "decode":
                points = critical_batch(model, device, workload)
                assert _in_ranges(batch, _whole(points)) == (totals.bound == "compute"), (phase, batch, length)
        decode_points = critical_batch(model, device, Workload(seq_len=128, weights=weights, activations=activations))
        whole = next(p for p in decode_points if p.name == WHOLE_STEP)
        if whole.critical is not None:  # transition's "fits there" is the footprint's verdict at its crossing
            study = transition_study(model, device, Workload(seq_len=128, weights=weights, activations=activations),
                                     formats=[(weights, activations)])
            crossing = next(p for p in study.decode_batch if p.name == WHOLE_STEP)
            at_crossing = analyze(model, device, Workload(batch=whole.critical, seq_len=128, weights=weights,
                                                          activations=activations))
            assert crossing.critical_fits == at_crossing.memory.fits
            assert study.decode_max_batch == fit(model, device, at_crossing.workload).max_batch
        for batch in (1, 54):  # prefill crossings by prompt length
            points = critical_prompt_len(model, device, Workload(phase="prefill", batch=batch, weights=weights,
                                                                 activations=activations))
            for length in LENGTHS:
                totals = analyze(model, device, Workload(phase="prefill", batch=batch, seq_len=length,
                                                         weights=weights, activations=activations)).totals
                assert _in_ranges(length, _whole(points)) == (totals.bound == "compute"), (batch, length)


def _whole(points: tuple[CriticalPoint, ...]) -> tuple[tuple[int, int], ...]:
    return next(p for p in points if p.name == WHOLE_STEP).compute_bound_ranges


@pytest.mark.parametrize("batch", [32, 53, 75])
def test_the_timeline_and_the_sweep_boundary_agree_with_analyze(batch: int, capsys: pytest.CaptureFixture[str]
                                                                ) -> None:
    model, device = load_model("llama-3.2-3b"), load_hardware("jetson-orin-nx")
    workload = Workload(batch=batch, weights="int4")
    timeline = generation_timeline(model, device, workload, prompt_len=128, steps=600)
    for step in range(0, 600, 37):
        past = int(timeline.past_len[step])
        totals = analyze(model, device, Workload(batch=batch, seq_len=past, weights="int4")).totals
        assert bool(timeline.step_compute_bound[step]) == (totals.bound == "compute")
    # The boundary query: the smallest batch whose step is compute-bound, per length.
    assert main(["sweep", "-m", "llama-2-7b", "-H", "jetson-orin-nx", "-b", "1..256", "-l", "128", "-q", "boundary",
                 "-f", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    smallest = next(b for b in range(1, 257) if analyze("llama-2-7b", "jetson-orin-nx", batch=b, seq_len=128)
                    .totals.bound == "compute")
    assert [row["batch"] for row in answer["rows"]] == [smallest] == [75]


def test_the_json_and_the_web_api_give_analyzes_bound(client: TestClient, capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    for batch in (53, 54, 74, 75):
        expected = analyze("llama-2-7b", "jetson-orin-nx", batch=batch, seq_len=128).totals
        assert main(["analyze", "-b", str(batch), "-l", "128", "-f", "json"]) == 0
        printed = json.loads(capsys.readouterr().out)["totals"]
        web = client.post("/api/analyze", json={"batch": batch, "seq_len": 128}).json()["results"][0]["totals"]
        assert printed["bound"] == web["bound"] == expected.bound == ("compute" if batch >= 75 else "memory")
        memory = client.post("/api/analyze", json={"batch": batch, "seq_len": 128}).json()["results"][0]["memory"]
        assert memory["fits"] is False and memory["total_bytes"] == pytest.approx(
            analyze("llama-2-7b", "jetson-orin-nx", batch=batch, seq_len=128).memory.total_bytes)
        assert printed["compute_time_share"] == pytest.approx(web["compute_time_share"])
        assert np.isclose(printed["ridge_flop_per_byte"], 51.7578125)
