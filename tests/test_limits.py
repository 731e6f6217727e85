"""Validated magnitudes (issue 15, item 2): every count and figure has a range (``core/limits.py``); at
each end of it the value is accepted, just outside it refused in one line (an ``InputError`` naming the
parameter in Python; exit status 2 and one line naming the flag or key on the command line); no
arithmetic gives inf or NaN; no loop runs per layer or per step without a bound.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llm_roofline import InputError, Workload, load_hardware, load_model
from llm_roofline.core import limits
from llm_roofline.core.architecture import MLP, Attention, Block, ShortConv
from llm_roofline.core.hardware import custom_hardware
from llm_roofline.core.limits import Limit
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.transformer import step_counts
from llm_roofline.faces.cli.main import build_parser, main
from llm_roofline.features.deploy import Link, expected_tokens_per_target_pass, fit, pipeline_parallel, split_layers
from llm_roofline.features.measure.experiment import MeasureOptions, measure
from llm_roofline.features.measure.stream import WorkerPool
from llm_roofline.features.studies.energy import workload_energy
from llm_roofline.features.studies.requirements import ParamsOnly, bandwidth_for_time, decode_ops, required_bandwidth
from llm_roofline.features.studies.share import share_study
from llm_roofline.features.studies.timeline import generation_timeline
from llm_roofline.inputs.model_files import CONFIG_LIMITS, catalogue_config, config_limit

TABLES = {"MODEL": limits.MODEL, "WORKLOAD": limits.WORKLOAD, "DEVICE": limits.DEVICE, "STUDY": limits.STUDY}
ENTRIES = [(table, name) for table, entries in TABLES.items() for name in entries]
DEVICE = load_hardware("jetson-orin-nx")
DOCS = Path(__file__).parent.parent / "docs" / "security.md"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(capsys: pytest.CaptureFixture[str], *argv: str, names: str) -> str:
    """The command exits 2 with one line on stderr, naming ``names``, and prints nothing else."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert names in err, err
    return err


def strict_json(text: str) -> Any:
    """``text`` as JSON, refusing NaN and Infinity as the JSON standard does."""

    def refuse(word: str) -> None:
        raise AssertionError(f"{word} in JSON output")

    return json.loads(text, parse_constant=refuse)


def just_outside(limit: Limit) -> tuple[float, float]:
    """The nearest values below and above the range: one integer out, or one ulp-ish step out."""
    if limit.integer:
        return limit.low - 1, limit.high + 1
    return (limit.low - max(limit.low * 1e-9, 1e-12), limit.high * (1 + 1e-9))


def write_config(folder: Path, name: str, **changes: Any) -> Path:
    config = {**catalogue_config("llama-2-7b"), **changes}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


# --- the checks themselves, for every entry of every table -----------------------------------------------


@pytest.mark.parametrize(("table", "name"), ENTRIES)
def test_every_range_accepts_both_ends_and_refuses_just_outside(table: str, name: str) -> None:
    limit = TABLES[table][name]
    check = limits.count if limit.integer else limits.figure
    assert limit.low <= limit.high
    for inside in (int(limit.low) if limit.integer else limit.low, int(limit.high) if limit.integer else limit.high):
        assert check(name, inside, limit) == inside
    for outside in just_outside(limit):
        value = int(outside) if limit.integer else outside
        with pytest.raises(InputError, match=f"^{name} must be an? (integer|number) from .* got "):
            check(name, value, limit)
    for wrong in (True, "12", None, [1], math.nan, math.inf, -math.inf, 10**400):
        with pytest.raises(InputError, match=f"^{name} must be "):
            check(name, wrong, limit)
    if limit.integer:
        with pytest.raises(InputError, match=f"^{name} must be an integer"):
            limits.count(name, float(limit.high), limit)  # 12.0 is a number, not a count


def test_a_huge_integer_is_shown_by_its_length() -> None:
    # repr() of an integer past 4300 digits raises ValueError; the message must not.
    assert limits.shown(10**5000) == "an integer of 5001 digits"
    assert limits.shown(10**400 - 1) == "an integer of 400 digits"
    assert limits.shown(12) == "12" and limits.shown("x" * 100).endswith("...")


def test_the_docs_list_every_range() -> None:
    section = DOCS.read_text().split("## Limits on numbers", 1)[1].split("\n## ", 1)[0]
    for table, name in ENTRIES:
        limit = TABLES[table][name]
        span = f"{int(limit.low)} to {int(limit.high)}" if limit.integer else f"{limit.low:g} to {limit.high:g}"
        assert f"| `{name}` | {span} |" in section, (table, name)
    for key in CONFIG_LIMITS:
        assert f"`{key}`" in section, key


# --- a model: the core records and config.json ------------------------------------------------------------


def _model(attention: Attention | None = None, mlp: MLP | None = None, layers: int = 2, **fields: Any) -> ModelSpec:
    block = Block(attention or Attention(heads=4, kv_heads=2, head_dim=16), mlp or MLP(intermediate_size=128))
    return ModelSpec(**{"name": "m", "family": "llama", "hidden_size": 64, "vocab_size": 1000,
                        "max_position_embeddings": 4096, "layers": (block,) * layers, **fields})


def _mla(rank: int) -> Attention:
    return Attention(heads=4, kv_heads=4, head_dim=24, kv_lora_rank=rank, qk_rope_head_dim=8, v_head_dim=16)


# Each entry of limits.MODEL, set through the record that holds it: value -> a model built with it.
MODEL_FIELDS: dict[str, tuple[str, Callable[[Any], ModelSpec]]] = {
    "layers": ("num_hidden_layers", lambda v: _model(layers=v)),
    "hidden_size": ("hidden_size", lambda v: _model(hidden_size=v)),
    "heads": ("heads", lambda v: _model(Attention(heads=v, kv_heads=1, head_dim=8))),
    "kv_heads": ("kv_heads", lambda v: _model(Attention(heads=4096, kv_heads=v, head_dim=8))),
    "head_dim": ("head_dim", lambda v: _model(Attention(heads=1, kv_heads=1, head_dim=v))),
    "rotary_dims": ("rope_dim", lambda v: _model(Attention(heads=1, kv_heads=1, head_dim=8192, rope_dim=v))),
    "lora_rank": ("kv_lora_rank", lambda v: _model(_mla(v))),
    "intermediate_size": ("intermediate_size", lambda v: _model(mlp=MLP(intermediate_size=v))),
    "shared_intermediate_size": ("shared_intermediate_size", lambda v: _model(
        mlp=MLP(intermediate_size=8, experts=4, experts_per_token=2, shared_intermediate_size=v))),
    "experts": ("num_experts", lambda v: _model(mlp=MLP(intermediate_size=8, experts=v, experts_per_token=1))),
    "experts_per_token": ("experts_per_token", lambda v: _model(
        mlp=MLP(intermediate_size=8, experts=65536, experts_per_token=v))),
    "vocab_size": ("vocab_size", lambda v: _model(vocab_size=v)),
    "max_position_embeddings": ("max_position_embeddings", lambda v: _model(max_position_embeddings=v)),
    "window": ("window", lambda v: _model(Attention(heads=4, kv_heads=2, head_dim=16, window=v))),
    "position_rows": ("position_rows", lambda v: _model(learned_positions=True, position_rows=v)),
    "layer_count": ("mtp_modules", lambda v: _model(mtp_modules=v)),
    "softcap": ("attn_logit_softcapping", lambda v: _model(Attention(heads=4, kv_heads=2, head_dim=16, softcap=v))),
    "conv_kernel": ("conv_kernel", lambda v: ModelSpec(
        name="m", family="lfm2", hidden_size=64, vocab_size=1000, max_position_embeddings=4096,
        layers=(Block(None, MLP(intermediate_size=128), mixer=ShortConv(kernel=v)),))),
}


def test_every_model_range_is_checked_by_a_record() -> None:
    assert set(MODEL_FIELDS) == set(limits.MODEL)


@pytest.mark.parametrize("entry", list(limits.MODEL))
def test_model_ranges_at_both_ends(entry: str) -> None:
    label, build = MODEL_FIELDS[entry]
    limit = limits.MODEL[entry]
    high = int(limit.high) if limit.integer else limit.high
    assert isinstance(build(high), ModelSpec)
    for outside in just_outside(limit):
        if outside < 0 or (entry == "experts_per_token" and outside == 0):
            continue  # a count below zero is refused by the same check; shown once below
        with pytest.raises(InputError, match=f"model 'm': {label} must be an? (integer|number) from"):
            build(int(outside) if limit.integer else outside)


def test_a_model_at_every_bound_gives_finite_figures() -> None:
    # The widest, deepest model the ranges allow, on the slowest and the fastest device the ranges allow, at
    # the largest batch and prompt: every figure is a finite float (the arithmetic cannot overflow).
    from llm_roofline import analyze

    m = limits.MODEL
    attention = Attention(heads=int(m["heads"].high), kv_heads=int(m["kv_heads"].high),
                          head_dim=int(m["head_dim"].high))
    mlp = MLP(intermediate_size=int(m["intermediate_size"].high), experts=int(m["experts"].high),
              experts_per_token=int(m["experts_per_token"].high),
              shared_intermediate_size=int(m["shared_intermediate_size"].high))
    widest = ModelSpec(name="widest", family="llama", hidden_size=int(m["hidden_size"].high),
                       vocab_size=int(m["vocab_size"].high),
                       max_position_embeddings=int(m["max_position_embeddings"].high),
                       layers=(Block(attention, mlp),) * int(m["layers"].high))
    d = limits.DEVICE
    bandwidth, peak, memory = d["memory_bytes_per_s"], d["peak_flops_per_s"], d["memory_bytes"]
    slowest = custom_hardware(bandwidth.low, {"fp16": peak.low}, memory.low)
    fastest = custom_hardware(bandwidth.high, {"fp16": peak.high}, memory.high)
    batch, length = int(limits.WORKLOAD["batch"].high), int(limits.WORKLOAD["seq_len"].high)
    for device in (slowest, fastest):
        for phase in ("prefill", "decode"):
            result = analyze(widest, device, Workload(phase=phase, batch=batch, seq_len=length))
            figures = strict_json(json.dumps(result.to_dict(), allow_nan=False))
            assert figures["totals"]["time_s"] > 0 and math.isfinite(figures["totals"]["flops"])


def test_grid_counts_do_not_wrap_around_at_the_largest_prefill() -> None:
    # batch x attention pairs at 2^20 sequences of 2^24 tokens is ~3e20: past int64, so a grid of int64
    # arrays must count in float64 (as a Python integer counts exactly).
    model = load_model("llama-2-7b")
    batch, length = int(limits.WORKLOAD["batch"].high), int(limits.WORKLOAD["seq_len"].high)
    exact = step_counts(model, batch, length, 0, False)
    grid = step_counts(model, np.array([batch]), np.array([length]), np.array([0]), False)
    for one, many in zip(exact, grid, strict=True):
        assert float(many[0]) == pytest.approx(float(one), rel=1e-12)
    assert float(exact[3]) > 2**63


@pytest.mark.parametrize("key", list(CONFIG_LIMITS))
def test_config_keys_at_both_ends(tmp_path: Path, key: str) -> None:
    from llm_roofline.inputs.model_files import model_from_hf_config

    limit = config_limit(key)
    if key in ("num_experts", "n_shared_experts"):
        limit = limit._replace(low=0)  # a dense Qwen3-MoE has 0 experts; DeepSeek may have no shared ones
    for outside in just_outside(limit):
        value = int(outside) if limit.integer else outside
        data = {**catalogue_config("llama-2-7b"), "model_type": "deepseek_v3" if "lora" in key else "llama",
                key: value}
        with pytest.raises(InputError, match=f"^c.json: '{key}' must be an? (integer|number) from .*got "):
            model_from_hf_config(_config_reading(key, data), where="c.json")


MAMBA2_KEYS = ("num_heads", "n_groups", "state_size", "chunk_size", "conv_kernel")
MAMBA2_CONFIG = dict(model_type="mamba2", hidden_size=1536, num_heads=48, head_dim=64, state_size=128, n_groups=1,
                     num_hidden_layers=48, vocab_size=50288, conv_kernel=4, chunk_size=256)


def _config_reading(key: str, data: dict[str, Any]) -> dict[str, Any]:
    """A config whose family reads ``key`` before anything else can fail: the catalogue config of a model
    that has the key, with it changed."""
    holders = {"n_layer": "gpt2", "n_embd": "gpt2", "n_head": "gpt2", "n_inner": "gpt2", "n_positions": "gpt2",
               "ffn_dim": "opt-6.7b", "qk_nope_head_dim": "deepseek-v3", "qk_rope_head_dim": "deepseek-v3",
               "v_head_dim": "deepseek-v3", "q_lora_rank": "deepseek-v3", "kv_lora_rank": "deepseek-v3",
               "moe_intermediate_size": "deepseek-v3", "n_routed_experts": "deepseek-v3",
               "n_shared_experts": "deepseek-v3", "first_k_dense_replace": "deepseek-v3",
               "num_nextn_predict_layers": "deepseek-v3", "num_experts_per_tok": "mixtral-8x7b",
               "num_local_experts": "mixtral-8x7b", "num_experts": "qwen3-30b-a3b",
               "decoder_sparse_step": "qwen3-30b-a3b",
               "sliding_window": "mistral-7b", "max_window_layers": "qwen3-30b-a3b",
               "attention_chunk_size": "llama-4-scout", "interleave_moe_layer_step": "llama-4-scout",
               "intermediate_size_mlp": "llama-4-scout", "no_rope_layer_interval": "smollm3-3b",
               "sliding_window_pattern": "gemma-3-1b", "attn_logit_softcapping": "gemma-2-2b",
               "final_logit_softcapping": "gemma-2-2b",
               **dict.fromkeys(("block_ff_dim", "block_multiple_of", "conv_L_cache"), "lfm2-1.2b"),
               **dict.fromkeys(("full_attention_interval", "linear_num_key_heads", "linear_num_value_heads",
                                "linear_key_head_dim", "linear_value_head_dim", "linear_conv_kernel_dim",
                                "shared_expert_intermediate_size"), "qwen3-next-80b-a3b"),
               **dict.fromkeys(("mamba_n_heads", "mamba_n_groups", "mamba_d_head", "mamba_d_state", "mamba_d_ssm",
                                "mamba_chunk_size", "mamba_d_conv"), "falcon-h1-0.5b")}
    if key in MAMBA2_KEYS:  # no Mamba-2 in the catalogue: a config of its shape
        return {**MAMBA2_CONFIG, key: data[key]}
    base = catalogue_config(holders.get(key, "llama-2-7b"))
    base.pop("no_rope_layers", None)  # SmolLM3: the interval is read only without the list
    base.pop("moe_layers", None)
    if key == "max_window_layers":
        base["use_sliding_window"] = True
    return {**base, key: data[key]}


def test_config_keys_accept_their_largest_values() -> None:
    from llm_roofline.inputs.model_files import model_from_hf_config

    for key in ("num_hidden_layers", "hidden_size", "vocab_size", "max_position_embeddings", "intermediate_size"):
        data = {**catalogue_config("llama-2-7b"), key: int(config_limit(key).high)}
        if key == "hidden_size":
            data["head_dim"] = 128
        assert model_from_hf_config(data, where="c.json").to_dict()[key if key != "num_hidden_layers"
                                                                     else "num_layers"] == data[key]


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"num_hidden_layers": 12.0}, "'num_hidden_layers' must be an integer from 1 to 1024, got 12.0"),
    ({"num_hidden_layers": "12"}, "'num_hidden_layers' must be an integer"),
    ({"num_hidden_layers": True}, "'num_hidden_layers' must be an integer"),
    ({"hidden_size": -4096}, "'hidden_size' must be an integer from 1 to 131072"),
    ({"attention_bias": "yes"}, "'attention_bias' must be true or false"),
    ({"model_type": ["llama"]}, "'model_type' must be a string"),
    ({"model_type": "x" * 10_000}, "unsupported model_type"),
    ({"_display_name": ["a"]}, "'_display_name' must be a string"),
    ({"_source": {"url": 1}}, "'_source' must be a string"),
])
def test_config_types_are_strict(changes: dict[str, Any], fragment: str) -> None:
    from llm_roofline.inputs.model_files import model_from_hf_config

    with pytest.raises(InputError, match=r"^c\.json: ") as error:
        model_from_hf_config({**catalogue_config("llama-2-7b"), **changes}, where="c.json")
    assert fragment in str(error.value) and len(str(error.value)) < 300


@pytest.mark.parametrize(("model", "changes", "fragment"), [
    ("smollm3-3b", {"no_rope_layers": [2] * 36}, "'no_rope_layers' must hold 0 or 1"),
    ("qwen3-30b-a3b", {"mlp_only_layers": [48]},
     "'mlp_only_layers' must be a list of layer indices, each from 0 to 47"),
    ("qwen3-30b-a3b", {"mlp_only_layers": [-1]}, "each from 0 to 47"),
    ("llama-4-scout", {"moe_layers": [True]}, "'moe_layers' must be a list of layer indices"),
    ("gemma-2-2b", {"layer_types": ["full_attention"]}, "'layer_types' must list one entry per layer (26)"),
])
def test_per_layer_lists_are_strict(model: str, changes: dict[str, Any], fragment: str) -> None:
    from llm_roofline.inputs.model_files import model_from_hf_config

    with pytest.raises(InputError, match=r"^c\.json: ") as error:
        model_from_hf_config({**catalogue_config(model), **changes}, where="c.json")
    assert fragment in str(error.value)


# --- the failing cases, on the command line ---------------------------------------------------------


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"num_hidden_layers": int("9" * 400)}, "'num_hidden_layers' must be an integer from 1 to 1024, got an integer "
                                            "of 400 digits"),
    ({"hidden_size": 2**62}, "'hidden_size' must be an integer from 1 to 131072, got 4611686018427387904"),
    ({"model_type": ["llama"]}, "'model_type' must be a string"),
])
def test_hostile_configs_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      changes: dict[str, Any], fragment: str) -> None:
    path = write_config(tmp_path, "c", **changes)
    assert_refused(capsys, "analyze", "-m", str(path), names=fragment)


def test_a_trillion_layer_gemma_is_refused_at_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # It looped per layer for hours; the range is checked before any layer is built.
    path = tmp_path / "g.json"
    path.write_text(json.dumps({**catalogue_config("gemma-2-9b"), "num_hidden_layers": 10**12}))
    start = time.perf_counter()
    assert_refused(capsys, "analyze", "-m", str(path), names="'num_hidden_layers' must be an integer from 1 to 1024")
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(("bandwidth", "shown"), [("1e308", "1e+308"), ("5e-324", "5e-324"), ("1e-300", "1e-300")])
def test_device_files_with_absurd_bandwidth_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        bandwidth: str, shown: str) -> None:
    path = tmp_path / "d.toml"
    path.write_text(f'name = "d"\nkind = "gpu"\nmemory_bytes = 1e10\nmemory_bytes_per_s = {bandwidth}\n'
                    f'source = "tests"\n[peak_flops_per_s]\nfp16 = 1e12\n')
    assert_refused(capsys, "analyze", "-H", str(path), "--format", "json",
                   names=f"memory_bytes_per_s must be a number from 1e+06 to 1e+18 B/s, got {shown}")


def test_device_files_at_the_ends_of_the_ranges_give_strict_json(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    d = limits.DEVICE
    for bandwidth, peak in ((d["memory_bytes_per_s"].low, d["peak_flops_per_s"].high),
                            (d["memory_bytes_per_s"].high, d["peak_flops_per_s"].low)):
        path = tmp_path / "d.toml"
        path.write_text(f'name = "d"\nkind = "gpu"\nmemory_bytes = {d["memory_bytes"].high:e}\n'
                        f'memory_bytes_per_s = {bandwidth:e}\nsource = "tests"\n[peak_flops_per_s]\nfp16 = {peak:e}\n')
        code, out, err = run(capsys, "analyze", "-H", str(path), "-p", "prefill", "-l", "16777216", "--format", "json")
        assert code == 0, err
        assert strict_json(out)["totals"]["time_s"] > 0


@pytest.mark.parametrize(("argv", "names"), [
    (["requirements", "--tokens-per-s", "1e308"], "argument --tokens-per-s: expected a number from 1e-06 to 1e+06"),
    (["timeline", "--steps", "100000000"], "argument --steps/-T: expected an integer from 1 to 262144"),
    (["measure", "--threads", "100000"], "argument --threads: expected an integer from 1 to 1024"),
    (["share", "--seq-len", "100000000000000000000"], "argument --seq-len/-l: expected an integer from 1 to 16777216"),
    (["analyze", "-b", "9" * 5000], "an argument of 5000 characters"),  # past PATH_MAX: refused before parsing
    (["roofline", "-i", "nan"], "argument --intensity/-i"),
])
def test_hostile_flags_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], names: str) -> None:
    assert_refused(capsys, *argv, names=names)


def test_plot_share_of_a_huge_length_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Matplotlib failed on a 10^20-token axis; the length is refused before anything is drawn.
    output = tmp_path / "share.png"
    code, _, err = run(capsys, "plot", "share", "--seq-len", "100000000000000000000", "-o", str(output))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "16777216" in err, err
    assert not output.exists()


# Each flag with a range: (command line before it, flag, the entry, the flag's unit).
FLAGS: list[tuple[list[str], str, Limit, float]] = [
    (["analyze"], "--batch", limits.WORKLOAD["batch"], 1),
    (["analyze"], "--seq-len", limits.WORKLOAD["seq_len"], 1),
    (["analyze"], "--bandwidth-gb-s", limits.DEVICE["memory_bytes_per_s"], 1e9),
    (["analyze"], "--peak-tflops", limits.DEVICE["peak_flops_per_s"], 1e12),
    (["analyze"], "--memory-gb", limits.DEVICE["memory_bytes"], 1e9),
    (["matmul", "--m", "1", "--n", "1"], "--k", limits.STUDY["matrix_size"], 1),
    (["roofline"], "--intensity", limits.STUDY["arithmetic_intensity"], 1),
    (["share"], "--hidden-size", limits.MODEL["hidden_size"], 1),
    (["timeline"], "--steps", limits.STUDY["steps"], 1),
    (["timeline"], "--prompt-len", limits.WORKLOAD["seq_len"], 1),
    (["requirements"], "--tokens-per-s", limits.STUDY["tokens_per_s"], 1),
    (["requirements", "--tokens-per-s", "1"], "--params", limits.STUDY["params"], 1),
    (["feasibility"], "--target-ms", limits.STUDY["time_per_token_s"], 1e-3),
    (["energy"], "--dram-pj-per-byte", limits.STUDY["dram_pj_per_byte"], 1),
    (["fit"], "--overhead-gb", limits.STUDY["overhead_bytes"], 1e9),
    (["fit"], "--prefill-chunk", limits.STUDY["prefill_chunk_tokens"], 1),
    (["offload"], "--storage-gb-s", limits.DEVICE["memory_bytes_per_s"], 1e9),
    (["offload"], "--gpu-layers", limits.STUDY["gpu_layers"], 1),
    (["parallel", "--link-gb-s", "1"], "--devices", limits.STUDY["devices"], 1),
    (["parallel", "-n", "2"], "--link-gb-s", limits.STUDY["link_bytes_per_s"], 1e9),
    (["parallel", "-n", "2", "--link-gb-s", "1"], "--link-latency-us", limits.STUDY["link_latency_s"], 1e-6),
    (["parallel", "-n", "2", "--link-gb-s", "1"], "--micro-batches", limits.WORKLOAD["batch"], 1),
    (["speculative", "--draft", "gpt2"], "--draft-tokens", limits.STUDY["draft_tokens"]._replace(low=1), 1),
    (["measure"], "--threads", limits.STUDY["threads"], 1),
    (["measure"], "--budget-s", limits.STUDY["budget_s"], 1),
]


def _flag_value(value: float, limit: Limit, unit: float) -> str:
    return str(int(value)) if limit.integer else repr(value / unit)


@pytest.mark.parametrize(("before", "flag", "limit", "unit"), FLAGS, ids=[flag for _, flag, _, _ in FLAGS])
def test_flags_at_both_ends(capsys: pytest.CaptureFixture[str], before: list[str], flag: str, limit: Limit,
                            unit: float) -> None:
    parser = build_parser()
    for inside in (limit.low, limit.high):
        args = parser.parse_args([*before, flag, _flag_value(inside, limit, unit)])  # parsed, not run
        dest = flag.lstrip("-").replace("-", "_")
        parsed = getattr(args, dest)
        assert (parsed[0] if isinstance(parsed, list) else parsed) == pytest.approx(inside / unit, rel=1e-12)
    for outside in just_outside(limit):
        value = _flag_value(outside, limit, unit) if limit.integer else repr(outside / unit * (1 + 1e-9 * (
            outside > limit.high)))
        assert_refused(capsys, *before, flag, value, names=f"argument {flag}")


# --- each range is checked where the Python API takes the value ---------------------------------------------


TINY = load_model("smollm2-135m")


def _outside_refused(call: Callable[[Any], object], name: str, limit: Limit) -> None:
    for outside in just_outside(limit):
        with pytest.raises(InputError, match=f"{name} must be an? (integer|number) from"):
            call(int(outside) if limit.integer else outside)


@pytest.mark.parametrize("field", ["batch", "seq_len", "new_tokens"])
def test_workload_ranges(field: str) -> None:
    limit = limits.WORKLOAD[field]
    assert getattr(Workload(**{field: int(limit.high)}), field) == limit.high
    _outside_refused(lambda v: Workload(**{field: v}), field, limit)


@pytest.mark.parametrize("field", ["memory_bytes", "memory_bytes_per_s", "usable_memory_bytes", "storage_bytes_per_s"])
def test_device_ranges(field: str) -> None:
    from dataclasses import replace

    limit = limits.DEVICE["memory_bytes" if field.removeprefix("usable_") == "memory_bytes" else "memory_bytes_per_s"]
    base = replace(DEVICE, memory_bytes=limits.DEVICE["memory_bytes"].high, usable_memory_bytes=None)
    for inside in (limit.low, limit.high):
        assert getattr(replace(base, **{field: inside}), field) == inside
    _outside_refused(lambda v: replace(base, **{field: v}), field, limit)


def test_peak_ranges() -> None:
    limit = limits.DEVICE["peak_flops_per_s"]
    for inside in (limit.low, limit.high):
        assert custom_hardware(1e9, {"fp16": inside}).peak_flops_per_s["fp16"] == inside
    _outside_refused(lambda v: custom_hardware(1e9, {"fp16": v}), "peak_flops_per_s.fp16", limit)


def test_study_ranges_are_checked_by_their_functions() -> None:
    s = limits.STUDY
    params = ParamsOnly(7e9)
    assert required_bandwidth(params, Workload(), s["tokens_per_s"].high).tokens_per_s == s["tokens_per_s"].high
    _outside_refused(lambda v: required_bandwidth(params, Workload(), v), "tokens_per_s", s["tokens_per_s"])
    ops = decode_ops(params, Workload())
    assert bandwidth_for_time(ops, None, s["time_per_token_s"].low) > 0
    _outside_refused(lambda v: bandwidth_for_time(ops, None, v), "time_s", s["time_per_token_s"])
    assert ParamsOnly(s["params"].high).params == s["params"].high
    _outside_refused(ParamsOnly, "params", s["params"])
    assert workload_energy(TINY, DEVICE, Workload(), dram_pj_per_byte=s["dram_pj_per_byte"].high).total_j > 0
    _outside_refused(lambda v: workload_energy(TINY, DEVICE, Workload(), dram_pj_per_byte=v), "dram_pj_per_byte",
                     s["dram_pj_per_byte"])
    assert expected_tokens_per_target_pass(1.0, int(s["draft_tokens"].high)) == s["draft_tokens"].high + 1
    _outside_refused(lambda v: expected_tokens_per_target_pass(0.5, v), "draft_tokens", s["draft_tokens"])
    for field in ("link_bytes_per_s", "link_latency_s"):
        make = (lambda v: Link(v)) if field == "link_bytes_per_s" else (lambda v: Link(1e9, v))
        assert make(s[field].high) is not None
        _outside_refused(make, field.removeprefix("link_"), s[field])
    _outside_refused(lambda v: pipeline_parallel(TINY, DEVICE, Workload(), v, Link(1e9)), "devices", s["devices"])
    _outside_refused(lambda v: pipeline_parallel(TINY, DEVICE, Workload(), 2, Link(1e9), micro_batches=v),
                     "micro_batches", limits.WORKLOAD["batch"])
    assert split_layers(TINY, DEVICE, DEVICE, Workload(), int(s["gpu_layers"].high)).gpu_layers == s["gpu_layers"].high
    _outside_refused(lambda v: split_layers(TINY, DEVICE, DEVICE, Workload(), v), "gpu_layers", s["gpu_layers"])
    assert fit(TINY, DEVICE, Workload(), s["overhead_bytes"].low, int(s["prefill_chunk_tokens"].high)).max_batch > 0
    _outside_refused(lambda v: fit(TINY, DEVICE, Workload(), v), "overhead_bytes", s["overhead_bytes"])
    _outside_refused(lambda v: fit(TINY, DEVICE, Workload(), 0.0, v), "prefill_chunk_tokens",
                     s["prefill_chunk_tokens"])
    _outside_refused(lambda v: share_study(TINY, Workload(), [v]), "seq_lens", limits.WORKLOAD["seq_len"])
    _outside_refused(lambda v: share_study(None, Workload(), [512], hidden_size=v), "hidden_size",
                     limits.MODEL["hidden_size"])
    for field in ("threads", "budget_s"):
        _outside_refused(lambda v, field=field: measure(MeasureOptions(**{field: v})), field, s[field])


def test_the_timeline_bounds_its_steps_and_its_last_context() -> None:
    steps = limits.STUDY["steps"]
    _outside_refused(lambda v: generation_timeline(TINY, DEVICE, Workload(), 16, v), "steps", steps)
    _outside_refused(lambda v: generation_timeline(TINY, DEVICE, Workload(), v, 1), "prompt_len",
                     limits.WORKLOAD["seq_len"])
    longest = int(limits.WORKLOAD["seq_len"].high)
    with pytest.raises(InputError, match=r"prompt_len \+ steps - 1 .* at most 16777216"):
        generation_timeline(TINY, DEVICE, Workload(), longest, 2)
    assert generation_timeline(TINY, DEVICE, Workload(), longest, 1).totals.new_tokens == 2


def test_the_longest_timeline_stays_small() -> None:
    # 2^18 decode steps, evaluated a chunk at a time: the per-step arrays and one chunk's operators.
    import tracemalloc

    tracemalloc.start()
    timeline = generation_timeline(TINY, DEVICE, Workload(), 16, int(limits.STUDY["steps"].high))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert timeline.steps == limits.STUDY["steps"].high and np.isfinite(timeline.step_time_s).all()
    assert peak < 200 * 2**20, peak  # the per-step arrays (5 x 2 MiB) and a chunk's operators, not 1.4 GB


def test_a_thread_the_system_refuses_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[threading.Thread] = []
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name.startswith("llm-roofline-measure-") and len(started) == 3:
            raise RuntimeError("can't start new thread")
        started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    with pytest.raises(InputError, match=r"^threads: only 3 of 8 could start \(can't start new thread\)"):
        WorkerPool(8)
    for thread in started:
        thread.join(timeout=5)
        assert not thread.is_alive()  # the started ones were released, not left waiting
