"""The web page's Explore payloads: the heatmap is the CLI's sweep, the timeline the CLI's timeline.

The CLI runs in-process (``main([...])``) and its JSON is compared with the payloads exactly: both go
through ``features/sweep.py`` (the heatmap) and ``generation_timeline`` (the timeline), so any difference
is a payload that prices another workload than the one it was given.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from llm_roofline import InputError, Workload, analyze, load_hardware, load_model
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.models import ModelSpec
from llm_roofline.faces.cli.main import main
from llm_roofline.faces.web import explore
from llm_roofline.faces.web.explore import MAX_GRID_POINTS, default_grid
from llm_roofline.features.sweep import heatmap_panels, iter_sweep, make_spec

LOG2 = [1 << k for k in range(13)]  # 1 .. 4096


def heatmap_payload(model: ModelSpec, hardware: HardwareSpec, workload: Workload, batches: list[int],
                    seq_lens: list[int]) -> Any:
    """The payload, its values typed for the assertions below (the function's JSON is dict[str, object])."""
    return explore.heatmap_payload(model, hardware, workload, batches, seq_lens)


def timeline_payload(model: ModelSpec, hardware: HardwareSpec, workload: Workload, prompt_len: int, steps: int,
                     samples: int = explore.DEFAULT_TIMELINE_SAMPLES) -> Any:
    return explore.timeline_payload(model, hardware, workload, prompt_len, steps, samples)


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main([*args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def listed(values: list[int]) -> str:
    return ",".join(str(v) for v in values)


# (model, device, CLI options, the same as a Workload's fields, batches, lengths)
HEATMAPS: list[tuple[str, str, list[str], dict[str, Any], list[int], list[int]]] = [
    # The brief's case: compute-bound from 128 sequences at short contexts, memory-bound beyond (the KV cache).
    ("llama-2-7b", "jetson-orin-nx", [], {}, LOG2[:10], [128, 256, 512, 1024, 2048, 4095]),
    # Prefill: the step's tokens are batch x length, so the boundary halves as the length doubles.
    ("llama-2-7b", "jetson-orin-nx", ["-p", "prefill"], {"phase": "prefill"}, LOG2[:7], LOG2[:12]),
    ("llama-3-8b", "nvidia-a100-80gb-sxm", ["-p", "prefill"], {"phase": "prefill"}, LOG2[:9], LOG2[:9]),
    # Formats and kernels: int4 weights with FlashAttention, lists that are not powers of two, out of order.
    ("llama-3-8b", "nvidia-rtx-4090", ["-w", "int4", "--flash-attention", "on"],
     {"weights": "int4", "flash_attention": True}, [200, 1, 3, 100, 128, 7, 64, 256], [256, 1000, 300, 8191]),
    # A mixture of experts: a decode step turns compute-bound only at thousands of sequences.
    ("mixtral-8x7b", "nvidia-a100-80gb-sxm", [], {}, LOG2, [512, 4096, 32767]),
    # Every lever at once, and no compute-bound point in the grid: a boundary of nulls.
    ("qwen3-30b-a3b", "nvidia-h100-sxm",
     ["--kv-cache", "fp8", "--fuse", "elementwise", "--sparsity", "2:4", "--lm-head", "all", "-a", "bf16"],
     {"kv_cache": "fp8", "fuse": "elementwise", "sparsity": "2:4", "lm_head": "all", "activations": "bf16"},
     LOG2, [128, 1024, 8192]),
    ("llama-2-7b", "jetson-orin-nx", [], {}, list(range(1, 17)), [128, 4095]),
    # Latent attention (its default forms: absorbed decode) and a GGUF-style mix.
    ("deepseek-v3", "nvidia-h200-sxm", [], {}, [1 << k for k in range(0, 17, 2)], [1024, 2048, 16384]),
    ("llama-3-8b", "jetson-orin-nx", ["-w", "q4_k_m"], {"weights": "q4_k_m"}, LOG2[:11], [512, 2048, 8191]),
]


@pytest.mark.parametrize(("model", "device", "options", "fields", "batches", "lengths"), HEATMAPS)
def test_heatmap_boundary_is_the_cli_query(capsys: pytest.CaptureFixture[str], model: str, device: str,
                                           options: list[str], fields: dict[str, Any], batches: list[int],
                                           lengths: list[int]) -> None:
    payload = heatmap_payload(load_model(model), load_hardware(device), Workload(**fields), batches, lengths)
    answer = cli_json(capsys, "sweep", "-m", model, "-H", device, "-b", listed(batches), "-l", listed(lengths),
                      *options, "-q", "boundary")
    assert payload["batch"] == sorted(set(batches)) and payload["seq_len"] == sorted(set(lengths))
    by_length = {row["seq_len"]: row for row in answer["rows"]}
    assert payload["boundary"] == [by_length[n]["batch"] if n in by_length else None for n in payload["seq_len"]]
    # The CLI's row for each boundary point carries the figures of that point: the payload's, exactly.
    grids = {key: np.array(payload[key]) for key in ("tokens_per_s", "time_s", "memory_bytes")}
    for row in answer["rows"]:
        at = payload["batch"].index(row["batch"]), payload["seq_len"].index(row["seq_len"])
        assert (grids["tokens_per_s"][at], grids["time_s"][at], grids["memory_bytes"][at]) == (
            row["tokens_per_s"], row["time_s"], row["memory_bytes"])
        assert payload["weights"] == row["weights"] and payload["kv_cache"] == row["kv_cache"]
    # The boundary is where the bound grid turns: no compute-bound cell below it, and it is one.
    bound = np.array(payload["compute_bound"])
    for column, first in enumerate(payload["boundary"]):
        rows = np.flatnonzero(bound[:, column])
        assert first == (None if not len(rows) else payload["batch"][rows[0]])


@pytest.mark.parametrize(("model", "device", "options", "fields", "batches", "lengths"), HEATMAPS[:6])
def test_heatmap_grids_are_the_cli_heatmap(model: str, device: str, options: list[str], fields: dict[str, Any],
                                           batches: list[int], lengths: list[int]) -> None:
    """What ``sweep --heatmap`` draws (``heatmap_panels`` over the sweep's chunks), for both its --time."""
    workload = Workload(**fields)
    payload = heatmap_payload(load_model(model), load_hardware(device), workload, batches, lengths)
    spec = make_spec([model], [device], batches, lengths, phases=[workload.phase], weights=[workload.weights],
                     activations=[workload.activations], kv_cache=[workload.kv_cache],
                     flash_attention=[workload.flash_attention], lm_head=workload.lm_head, fuse=workload.fuse,
                     sparsity=workload.sparsity)
    for value in ("tokens_per_s", "expected_tokens_per_s"):
        (panel,) = heatmap_panels(iter_sweep(spec), value)
        assert panel.batch.tolist() == payload["batch"] and panel.seq_len.tolist() == payload["seq_len"]
        assert panel.tokens_per_s.tolist() == payload[value]
        assert panel.compute_bound.tolist() == payload["compute_bound"]
        assert panel.fits.tolist() == payload["fits"]
        assert [None if np.isnan(b) else int(b) for b in panel.boundary()] == payload["boundary"]


@pytest.mark.parametrize(("model", "device", "fields"), [
    ("llama-2-7b", "jetson-orin-nx", {}),
    ("llama-2-7b", "jetson-orin-nx", {"phase": "prefill", "flash_attention": True}),
    ("mixtral-8x7b", "nvidia-a100-80gb-sxm", {"weights": "int8", "kv_cache": "fp8"}),
    ("qwen3-30b-a3b", "nvidia-h100-sxm", {"sparsity": "2:4", "fuse": "elementwise", "lm_head": "all"}),
    # An explicit latent-attention form, which the sweep's spec cannot carry: priced through evaluate_grid.
    ("deepseek-v3", "nvidia-h200-sxm", {"mla": "naive"}),
    ("deepseek-v3", "nvidia-h200-sxm", {"phase": "prefill", "mla": "absorbed"}),
])
def test_heatmap_points_are_analyze(model: str, device: str, fields: dict[str, Any]) -> None:
    workload = Workload(**fields)
    batches, lengths = [1, 8, 64, 512], [128, 1000, 4095]
    spec, hardware = load_model(model), load_hardware(device)
    payload = heatmap_payload(spec, hardware, workload, batches, lengths)
    for row, batch in enumerate(batches):
        for column, seq_len in enumerate(lengths):
            ref = analyze(spec, hardware, replace(workload, batch=batch, seq_len=seq_len))
            where = f"{model} {fields} batch {batch} seq_len {seq_len}"
            assert payload["tokens_per_s"][row][column] == pytest.approx(ref.totals.tokens_per_s, rel=1e-12), where
            assert payload["expected_tokens_per_s"][row][column] == pytest.approx(ref.totals.expected_tokens_per_s,
                                                                                  rel=1e-12), where
            assert payload["memory_bytes"][row][column] == pytest.approx(ref.memory.total_bytes, rel=1e-12), where
            assert payload["fits"][row][column] is bool(ref.memory.fits), where
            assert payload["compute_bound"][row][column] is (ref.totals.bound == "compute"), where


def test_an_explicit_mla_form_is_priced() -> None:
    """DeepSeek-V3's decode naive (the cache up-projected every step) is slower than absorbed, its default."""
    model, device = load_model("deepseek-v3"), load_hardware("nvidia-h200-sxm")
    naive = heatmap_payload(model, device, Workload(mla="naive"), [1, 64], [4096])
    absorbed = heatmap_payload(model, device, Workload(mla="absorbed"), [1, 64], [4096])
    default = heatmap_payload(model, device, Workload(), [1, 64], [4096])
    assert naive["tokens_per_s"][1][0] < absorbed["tokens_per_s"][1][0]
    np.testing.assert_allclose(absorbed["tokens_per_s"], default["tokens_per_s"], rtol=1e-12)


def test_heatmap_warnings_and_json() -> None:
    model, device = load_model("llama-2-7b"), load_hardware("jetson-orin-nx")
    payload = heatmap_payload(model, device, Workload(), [1, 2], [4096])
    assert payload["warnings"] == [model.context_warning(4097)]
    dense = heatmap_payload(model, load_hardware("nvidia-t4"), Workload(sparsity="2:4"), [1], [128])
    assert dense["warnings"] and "2:4 sparsity needs sparse tensor cores" in dense["warnings"][0]
    assert heatmap_payload(model, device, Workload(), [1, 2], [4095])["warnings"] == []
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload  # plain JSON values, no NaN
    # A Jetson Orin NX lets a program use 12.9 GiB (13.85 GB) of its 16 GiB: 13.48 GB of fp16 weights, 0.5 GB
    # of runtime, and per sequence 2 x 32 layers x 4096 x 2 B = 0.52 MB of cache a token (2.15 GB at 4097):
    # not even one sequence fits, as analyze says.
    assert payload["fits"] == [[False], [False]]
    assert [row[0] for row in payload["fits"]] == [
        analyze(model, device, Workload(batch=b, seq_len=4096)).memory.fits for b in (1, 2)]
    int8 = heatmap_payload(model, device, Workload(weights="int8"), [1, 2, 4], [4096])
    assert int8["fits"] == [[True], [True], [False]]  # 6.7 GB of weights: two sequences' caches fit, four do not
    assert payload["memory_bytes"][1][0] == analyze(model, device, Workload(batch=2, seq_len=4096)).memory.total_bytes


def test_default_grid() -> None:
    batches, lengths = default_grid(load_model("llama-2-7b"), "decode")
    assert batches == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert lengths == [128, 256, 512, 1024, 2048, 4095]  # 4095 cached + the new token: the 4096-token window
    assert default_grid(load_model("llama-2-7b"), "prefill")[1][-1] == 4096
    for name in ("llama-4-scout", "gpt2", "qwen3-next-80b-a3b"):
        model = load_model(name)
        for phase in ("prefill", "decode"):
            batches, lengths = default_grid(model, phase)
            assert len(lengths) <= 16 and len(batches) * len(lengths) <= MAX_GRID_POINTS
            assert lengths == sorted(set(lengths)) and lengths[-1] <= model.max_position_embeddings
            assert heatmap_payload(model, load_hardware("nvidia-h100-sxm"), Workload(phase=phase), batches,
                                   lengths)["warnings"] == []


@pytest.mark.parametrize(("batches", "lengths", "fragment"), [
    (list(range(1, 65)), list(range(1, 66)), f"at most {MAX_GRID_POINTS:,}"),
    (list(range(1, MAX_GRID_POINTS + 2)), [1], f"at most {MAX_GRID_POINTS:,}"),
    ([], [128], "batch needs at least one value"),
    ([0, 1], [128], "every batch must be an integer from 1"),
    ([1], [1 << 25], "every seq_len must be an integer from 1"),
    ([True], [128], "every batch must be an integer"),
])
def test_heatmap_refuses(batches: list[int], lengths: list[int], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        heatmap_payload(load_model("llama-2-7b"), load_hardware("jetson-orin-nx"), Workload(), batches, lengths)


def test_the_largest_grid_is_accepted() -> None:
    payload = heatmap_payload(load_model("llama-2-7b"), load_hardware("jetson-orin-nx"), Workload(),
                              list(range(1, 65)), list(range(64, 64 * 65, 64)))
    assert np.array(payload["tokens_per_s"]).shape == (64, 64)


# (model, device, batch, prompt, steps, timeline CLI options, the same as Workload fields)
TIMELINES: list[tuple[str, str, int, int, int, list[str], dict[str, Any]]] = [
    ("llama-2-7b", "jetson-orin-nx", 1, 128, 300, [], {}),
    # Compute-bound at first (160 sequences of int4 weights), memory-bound once the cache has grown: a change.
    ("llama-3-8b", "nvidia-rtx-4090", 160, 64, 3000, ["-w", "int4", "--flash-attention"],
     {"weights": "int4", "flash_attention": True}),
    ("qwen3-next-80b-a3b", "nvidia-h100-sxm", 8, 1000, 50, ["--kv-cache", "fp8", "--fuse", "elementwise"],
     {"kv_cache": "fp8", "fuse": "elementwise"}),
    ("llama-2-7b", "jetson-orin-nx", 2, 7, 1, [], {}),
]


@pytest.mark.parametrize(("model", "device", "batch", "prompt", "steps", "options", "fields"), TIMELINES)
def test_timeline_is_the_cli(capsys: pytest.CaptureFixture[str], model: str, device: str, batch: int, prompt: int,
                             steps: int, options: list[str], fields: dict[str, Any]) -> None:
    payload = timeline_payload(load_model(model), load_hardware(device), Workload(batch=batch, **fields), prompt,
                               steps, samples=50)
    cli = cli_json(capsys, "timeline", "-m", model, "-H", device, "-b", str(batch), "-P", str(prompt), "-T",
                   str(steps), "--samples", "50", "--all-steps", *options)
    totals = cli["totals"]
    assert payload["tpot_s"] == totals["mean_step_time_s"]
    for key in ("ttft_s", "first_step_time_s", "last_step_time_s", "decode_time_s", "total_time_s", "tokens_per_s",
                "decode_tokens_per_s", "prefill_bound", "fits", "memory_bytes", "final_kv_cache_bytes",
                "new_tokens", "exceeds_context"):
        assert payload[key] == totals[key], key
    assert (payload["prompt_len"], payload["decode_steps"], payload["batch"]) == (prompt, steps, batch)
    assert payload["changes"] == cli["changes"] and payload["changes_total"] == len(cli["changes"])
    sampled = payload["steps"]
    assert 1 <= len(sampled) <= 50 and sampled[0]["step"] == 1 and sampled[-1]["step"] == steps
    per_step = cli["per_step"]
    cumulative = {s["step"]: s["time_s"] for s in cli["samples"]}  # the CLI's time_s: from the start
    for sample in sampled:
        i = sample["step"] - 1
        assert (sample["past_len"], sample["time_s"]) == (per_step["past_len"][i], per_step["step_time_s"][i])
        assert sample["cumulative_time_s"] == pytest.approx(totals["ttft_s"] + sum(per_step["step_time_s"][:i + 1]),
                                                            rel=1e-9)
        if sample["step"] in cumulative:
            assert sample["cumulative_time_s"] == cumulative[sample["step"]]
    # The step-level changes are among the samples, with the bound on either side of them.
    bound = {s["step"]: s["compute_bound"] for s in sampled}
    for change in payload["changes"]:
        if change["name"] == "step":
            assert bound[change["step"]] is (change["to_bound"] == "compute")
    assert sampled[-1]["cumulative_time_s"] == pytest.approx(payload["total_time_s"], rel=1e-12)


def test_timeline_samples_are_bounded() -> None:
    model, device = load_model("llama-3-8b"), load_hardware("nvidia-rtx-4090")
    workload = Workload(batch=160, weights="int4", flash_attention=True)
    payload = timeline_payload(model, device, workload, 64, 3000, samples=2)
    assert [s["step"] for s in payload["steps"]] == [1, 3000]
    payload = timeline_payload(model, device, workload, 64, 3000, samples=3)
    assert [s["step"] for s in payload["steps"]] == [1, 375, 3000]  # the step's change, kept
    assert len(timeline_payload(model, device, workload, 64, 3000)["steps"]) == 200
    for samples in (1, 2001):
        with pytest.raises(InputError, match="samples must be an integer from 2 to 2000"):
            timeline_payload(model, device, workload, 64, 10, samples=samples)
    with pytest.raises(InputError, match="steps must be"):
        timeline_payload(model, device, workload, 64, 0)
