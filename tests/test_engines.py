"""Engines (core/engines.py, data/engines.toml): the fusion level sets which operators launch a kernel, the
named engine's figures price the expected time — the same in analyze, the sweep, the timeline and the
efficiency model's own sum — and a measurement's framework names its engine."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from llm_roofline import analyze
from llm_roofline.core import ops
from llm_roofline.core.efficiency import efficiency_key, engine_params, expected_time_s, params_for, step_cost
from llm_roofline.core.engines import FUSED_KINDS, FUSION_LEVELS, engine_for, engines, engines_from, kernel_flags
from llm_roofline.core.errors import InputError
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.transformer import Workload, attended_past_len
from llm_roofline.faces.cli.main import main
from llm_roofline.features.studies.timeline import generation_timeline
from llm_roofline.features.sweep import evaluate_grid
from llm_roofline.inputs.device_files import load_hardware
from llm_roofline.inputs.model_files import load_model

ROOT = Path(__file__).resolve().parents[1]


def test_the_engine_file_is_well_formed() -> None:
    assert FUSED_KINDS == ops.FUSIBLE_KINDS  # what an engine fuses is what --fuse treats as fusible
    known = engines()
    assert {"llama.cpp-cuda", "llama.cpp-metal", "llama.cpp-cpu", "mlx", "mlc", "vllm", "qnn"} <= set(known)
    for engine in known.values():
        assert engine.fusion in FUSION_LEVELS and engine.kinds and engine.match
        assert set(engine.kinds) <= {"gpu", "cpu", "npu"}
        assert engine.source.startswith("https://") and engine.description
        assert all(word == word.lower() for words in engine.match for word in words)


def test_fusion_sets_which_operators_launch_a_kernel() -> None:
    kinds = ["matmul", "norm", "elementwise", "activation", "softmax", "attention"]
    assert kernel_flags(kinds, "none") == (1, 1, 1, 1, 1, 1)
    assert kernel_flags(kinds, "elementwise") == (1, 0, 0, 0, 1, 1)


def npu_with_fp16() -> HardwareSpec:
    """A Hexagon-like NPU with an fp16 roof (the catalogue's NPU entries publish int8 only, and a model's norms
    and softmax need a ceiling for their fp16 math): a test device, not a catalogue figure."""
    npu = load_hardware("qualcomm-snapdragon-8-elite-npu")
    return replace(npu, name="test-npu", peak_flops_per_s=dict(npu.peak_flops_per_s) | {"fp16": 10e12})


@pytest.mark.parametrize(("model", "device", "engine", "workload"), [
    ("llama-2-7b", "jetson-orin-nx", "mlc", Workload()),
    ("llama-3.1-8b", "nvidia-rtx-4090", "llama.cpp-cuda", Workload(weights="q4_0")),
    ("qwen3-8b", "apple-m2-gpu", "mlx", Workload(phase="prefill", seq_len=512, weights="q4_k_m")),
    ("llama-3.2-1b", "test-npu", "qnn", Workload(weights="int4")),
    ("lfm2-1.2b", "qualcomm-snapdragon-8-elite-cpu", "llama.cpp-cpu", Workload(weights="q4_k_m")),
    ("llama-3.1-8b", "nvidia-rtx-4090", "llama.cpp-cuda", Workload(batch=8, weights="q4_0")),  # no CUDA graph
    ("llama-2-7b", "nvidia-dgx-spark", "llama.cpp-cuda", Workload(phase="prefill", seq_len=512, weights="q4_0")),
])
def test_an_engines_expected_time_is_the_efficiency_models_sum(model: str, device: str, engine: str,
                                                               workload: Workload) -> None:
    spec, hardware = load_model(model), (npu_with_fp16() if device == "test-npu" else load_hardware(device))
    named = replace(workload, engine=engine)
    result = analyze(spec, hardware, named)
    fusion = engines()[engine].fusion
    cost = step_cost(result.ops, named.weight_scheme(spec), named.activation_format, spec.tied_embeddings, fusion)
    params = params_for(hardware, engine, named.batch * named.q_len)
    assert result.totals.expected_time_s == pytest.approx(expected_time_s(cost, params), rel=1e-12)
    # The bound is the engine's too: the same step, its cache read padded as the engine pads it (llama.cpp: 256).
    padding = engines()[engine].kv_padding
    same = workload if padding is None or workload.phase == "prefill" else replace(
        workload, seq_len=attended_past_len(1, workload.seq_len, padding))
    assert result.totals.time_s == analyze(spec, hardware, same).totals.time_s
    # The operators an elementwise-fusing engine runs inside a neighbour launch nothing: with the same figures,
    # the expected time is lower by the per-kernel cost of each of their instances.
    if fusion == "elementwise":
        unfused = step_cost(result.ops, named.weight_scheme(spec), named.activation_format, spec.tied_embeddings)
        fused_instances = sum(op.count for op in result.ops if op.kind in FUSED_KINDS)
        assert fused_instances > 0
        assert expected_time_s(unfused, params) - expected_time_s(cost, params) == pytest.approx(
            fused_instances * params.overhead_per_op_s, rel=1e-9)
    # The sweep and the timeline price it the same way.
    grid = evaluate_grid(spec, [hardware], named.phase, np.array([named.batch]), np.array([named.seq_len]),
                         named.weight_scheme(spec), named.activation_format, named.kv_format, named.flash_attention,
                         lm_head=named.lm_head, fuse=named.fuse, engine=engine)
    assert grid.expected_time_s[0, 0] == pytest.approx(result.totals.expected_time_s, rel=1e-12)
    if named.phase == "decode":
        timeline = generation_timeline(spec, hardware, named, named.seq_len, 3)
        first = analyze(spec, hardware, replace(named, seq_len=named.seq_len)).totals.time_s
        assert timeline.step_time_s[0] == pytest.approx(first, rel=1e-12)


def test_a_step_an_engine_does_not_replay_as_a_graph_launches_at_the_ungraphed_cost() -> None:
    """llama.cpp's CUDA backend replays a step as a CUDA graph only when it computes one position ("disabling
    CUDA graphs due to batch size > 1", the ggml source cited in engines.toml): a prompt or a batched decode
    step launches every kernel from the CPU, at the cost per kernel fitted on the 2023 builds, which had no
    graphs. Only that figure changes; analyze, the sweep and the validation's fit all price it so."""
    cuda = engines()["llama.cpp-cuda"]
    assert (cuda.graph_max_tokens, cuda.ungraphed_launches) == (1, "llama.cpp-cuda-2023")
    assert not cuda.launches_ungraphed(1) and cuda.launches_ungraphed(2)
    assert all(e.graph_max_tokens is None for name, e in engines().items() if name != "llama.cpp-cuda")
    own, ungraphed = engine_params("llama.cpp-cuda"), engine_params("llama.cpp-cuda-2023")
    assert own is not None and ungraphed is not None
    assert ungraphed.overhead_per_op_s > own.overhead_per_op_s  # launches from the CPU cost more than a replay
    spark, spec = load_hardware("nvidia-dgx-spark"), load_model("gemma-3-4b")
    assert params_for(spark, "llama.cpp-cuda") == params_for(spark, "llama.cpp-cuda", 1) == own
    batched = params_for(spark, "llama.cpp-cuda", 2)
    assert batched.overhead_per_op_s == ungraphed.overhead_per_op_s
    assert batched.values()[:3] == own.values()[:3] and "without a graph" in batched.source
    times = {}
    for batch in (1, 2, 8):
        workload = Workload(batch=batch, seq_len=528, weights="q4_0", engine="llama.cpp-cuda")
        result = analyze(spec, spark, workload)
        cost = step_cost(result.ops, workload.weight_scheme(spec), workload.activation_format, spec.tied_embeddings)
        launches = sum(op.count for op in result.ops)
        paid = own if batch == 1 else batched
        assert result.totals.expected_time_s == pytest.approx(expected_time_s(cost, paid), rel=1e-12)
        if batch > 1:
            assert result.totals.expected_time_s - expected_time_s(cost, own) == pytest.approx(
                launches * (ungraphed.overhead_per_op_s - own.overhead_per_op_s), rel=1e-9)
        times[batch] = result.totals.expected_time_s
    grid = evaluate_grid(spec, [spark], "decode", np.array([1, 2, 8]), np.array([528] * 3), Workload(
        weights="q4_0").weight_scheme(spec), Workload().activation_format, Workload().kv_format, False,
        engine="llama.cpp-cuda")
    assert grid.expected_time_s[0] == pytest.approx([times[1], times[2], times[8]], rel=1e-12)
    mine = replace(spark, efficiency=own)  # a device's own fitted figures: one cost per kernel for every step
    assert params_for(mine, "llama.cpp-cuda", 8) == own
    with pytest.raises(ValueError, match="graph_max_tokens and ungraphed_launches go together"):
        engines_from({"engine": {"x": {"kinds": ["gpu"], "fusion": "none", "match": [["x"]], "description": "x",
                                       "source": "https://x", "graph_max_tokens": 1}}})
    with pytest.raises(ValueError, match="must name an engine of the same one kind that captures no graphs"):
        engines_from({"engine": {"x": {"kinds": ["gpu"], "fusion": "none", "match": [["x"]], "description": "x",
                                       "source": "https://x", "graph_max_tokens": 1, "ungraphed_launches": "x"}}})
    two_kinds = {"kinds": ["cpu", "gpu"], "fusion": "none", "match": [["y"]], "description": "y", "source": "https://y"}
    with pytest.raises(ValueError, match="must name an engine of the same one kind that captures no graphs"):
        engines_from({"engine": {"x": {**two_kinds, "graph_max_tokens": 1, "ungraphed_launches": "y"}, "y": two_kinds}})


def test_llama_cpp_attends_over_its_cache_padded_to_256_positions() -> None:
    """llama.cpp's attention reads n_kv = max(256, the cache's used cells rounded up to 256) positions
    (llama_kv_cache::get_n_kv, cited in engines.toml): the padding is masked but read and scored. A decode step
    at 528 cached positions reads 768; analyze, the sweep and the studies' steps price the same padded step."""
    from llm_roofline.core.transformer import step_ops

    assert {name for name, e in engines().items() if e.kv_padding == 256} == {
        "llama.cpp-cuda", "llama.cpp-metal", "llama.cpp-gpu", "llama.cpp-cpu"}
    assert all(e.kv_padding is None for name, e in engines().items() if not name.startswith("llama.cpp-")
               or name == "llama.cpp-cuda-2023")
    assert attended_past_len(1, 527, 256) == 767 and attended_past_len(1, 527, None) == 527
    assert attended_past_len(1, 0, 256) == 255  # the first token reads 256 positions
    assert attended_past_len(512, 0, 256) == 0 and attended_past_len(494, 0, 256) == 18  # a prompt: 512 keys
    assert attended_past_len(np.array([1, 1]), np.array([255, 256]), 256).tolist() == [255, 511]
    spec, gpu = load_model("llama-2-7b"), load_hardware("nvidia-rtx-4090")
    plain = Workload(seq_len=527, weights="q4_0")
    padded = replace(plain, engine="llama.cpp-cuda")
    per_position = 2 * 32 * 4096 * 2  # K and V, 32 layers, 4096 wide, fp16 bytes
    assert analyze(spec, gpu, plain).totals.kv_read_bytes == pytest.approx(528 * per_position)
    assert analyze(spec, gpu, padded).totals.kv_read_bytes == pytest.approx(768 * per_position)
    assert analyze(spec, gpu, replace(plain, engine="llama.cpp-cuda-2023")).totals.kv_read_bytes == pytest.approx(
        528 * per_position)
    assert sum(op.cost.kv_read_bytes * op.instances for op in step_ops(spec, padded)) == pytest.approx(
        768 * per_position)
    grid = evaluate_grid(spec, [gpu], "decode", np.array([1, 1]), np.array([527, 767]), plain.weight_scheme(spec),
                         plain.activation_format, plain.kv_format, False, engine="llama.cpp-cuda")
    assert grid.time_s[0, 0] == pytest.approx(grid.time_s[0, 1], rel=1e-12)  # 528 and 768 positions: one padding
    assert grid.time_s[0, 0] == pytest.approx(analyze(spec, gpu, padded).totals.time_s, rel=1e-12)
    # Only attention reads the padded cache: a hybrid model's prompt resumes no recurrent state either way.
    from llm_roofline.core.transformer import step_counts

    lfm2 = load_model("lfm2-1.2b")
    exact, padded_counts = (step_counts(lfm2, 1, 494, 0, False, padding) for padding in (None, 256))
    span = exact.layout.spans[0]
    assert (exact.keys(span), padded_counts.keys(span)) == (494, 512)
    assert exact.resumed == padded_counts.resumed == 0
    with pytest.raises(ValueError, match="kv_padding must be a positive number of positions"):
        engines_from({"engine": {"x": {"kinds": ["gpu"], "fusion": "none", "match": [["x"]], "description": "x",
                                       "source": "https://x", "kv_padding": 0}}})


def test_an_engine_that_accumulates_in_fp16_runs_at_that_rate() -> None:
    """llama.cpp's CUDA and Vulkan matrix products accumulate in fp16 (cuBLAS CUBLAS_COMPUTE_16F, Vulkan's
    f16acc pipelines; int8 MMQ is faster still): on a GeForce card, whose fp16 figure is the half-rate
    fp32-accumulate one, they run at its fp16_accumulate_flops_per_s (Ada whitepaper: 330.3 TFLOPS on the
    RTX 4090); a card with one rate (A100) is unchanged; the sweep prices it the same way."""
    spec, gpu, a100 = load_model("llama-2-7b"), load_hardware("nvidia-rtx-4090"), load_hardware("nvidia-a100-80gb-sxm")
    assert all(engines()[name].fp16_accumulate
               for name in ("llama.cpp-cuda-2023", "llama.cpp-cuda", "llama.cpp-gpu"))
    assert not engines()["llama.cpp-metal"].fp16_accumulate and not engines()["vllm"].fp16_accumulate
    assert gpu.fp16_accumulate_flops_per_s == 330.3e12 and a100.fp16_accumulate_flops_per_s is None
    assert gpu.for_engine(True).peak_flops_per_s["fp16"] == 330.3e12 and gpu.for_engine(False) is gpu
    prefill = Workload(phase="prefill", seq_len=512, weights="q4_0")
    plain, cuda = analyze(spec, gpu, prefill), analyze(spec, gpu, replace(prefill, engine="llama.cpp-cuda-2023"))
    up, up_cuda = (next(op for op in r.ops if op.name == "layer.mlp.up_proj") for r in (plain, cuda))
    assert up.bound == up_cuda.bound == "compute"
    assert up_cuda.compute_time_s == pytest.approx(up.flops / 330.3e12) and up.compute_time_s == pytest.approx(
        up.flops / 165.2e12)
    assert cuda.totals.ridge_flop_per_byte == pytest.approx(plain.totals.ridge_flop_per_byte * 330.3 / 165.2)
    assert cuda.totals.time_s < 0.6 * plain.totals.time_s
    mlc = analyze(spec, gpu, replace(prefill, engine="mlc"))  # TVM's kernels: no such claim, the fp16 figure
    assert mlc.totals.time_s == plain.totals.time_s
    assert (analyze(spec, a100, replace(prefill, engine="llama.cpp-cuda-2023")).totals.time_s
            == analyze(spec, a100, prefill).totals.time_s)
    grid = evaluate_grid(spec, [gpu], "prefill", np.array([1]), np.array([512]), prefill.weight_scheme(spec),
                         prefill.activation_format, prefill.kv_format, False, engine="llama.cpp-cuda-2023")
    assert grid.time_s[0, 0] == pytest.approx(cuda.totals.time_s, rel=1e-12)
    assert grid.expected_time_s[0, 0] == pytest.approx(cuda.totals.expected_time_s, rel=1e-12)
    with pytest.raises(InputError, match=r"fp16_accumulate_flops_per_s .* is below its fp16 figure"):
        replace(gpu, fp16_accumulate_flops_per_s=100e12)


def test_an_engine_with_fitted_figures_gets_them_and_one_without_gets_its_class() -> None:
    gpu = load_hardware("nvidia-rtx-4090")
    devices = {"gpu": gpu, "cpu": load_hardware("amd-ryzen-9-7950x"), "npu": npu_with_fp16()}
    for name, engine in engines().items():
        for kind in engine.kinds:
            fitted = engine_params(name, kind)
            params = params_for(devices[kind], name)
            if fitted is None:
                assert params == params_for(devices[kind])  # the class's defaults
            else:
                assert params == fitted and params.source.startswith(f"engine '{name}'")
    assert params_for(gpu, None) == params_for(gpu)


def test_an_engine_of_several_kinds_has_figures_per_kind() -> None:
    """LiteRT runs XNNPACK on CPU cores and ML Drift on GPUs: two runtimes, two sets of figures, each fitted on
    the rows measured on its kind (data/efficiency.toml ``[engine."litert/cpu"]``, ``[engine."litert/gpu"]``);
    the bare name holds none, and an engine of one kind keeps its own name."""
    assert efficiency_key("litert", "cpu") == "litert/cpu" and efficiency_key("litert", "gpu") == "litert/gpu"
    assert efficiency_key("llama.cpp-cuda", "gpu") == "llama.cpp-cuda" == efficiency_key("llama.cpp-cuda")
    cpu, gpu = engine_params("litert", "cpu"), engine_params("litert", "gpu")
    assert cpu is not None and gpu is not None and cpu != gpu and engine_params("litert") is None
    assert params_for(load_hardware("snapdragon-8-gen-3-cpu"), "litert") == cpu
    assert params_for(load_hardware("snapdragon-8-gen-3-gpu"), "litert") == gpu
    assert "on gpu devices" in gpu.source


def test_bad_engines_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    known = r"llama\.cpp-gpu, llama\.cpp-cuda-2023, llama\.cpp-cuda,"
    with pytest.raises(InputError, match=rf"unknown engine 'tvm'; known: {known}"):
        Workload(engine="tvm")
    with pytest.raises(InputError, match="engine 'qnn' runs on npu devices; nvidia-rtx-4090 is a gpu"):
        analyze("llama-2-7b", "nvidia-rtx-4090", engine="qnn")
    for argv in (["analyze", "--engine", "tvm"], ["sweep", "-b", "1", "-l", "8", "-H", "nvidia-l4", "--engine", "qnn",
                                                  "-o", "-"], ["timeline", "--engine", "mlx", "-H", "amd-epyc-9654"]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and "engine" in err and "Traceback" not in err


def test_the_engine_is_part_of_the_workload_record(capsys: pytest.CaptureFixture[str]) -> None:
    assert Workload().to_dict()["engine"] is None
    assert main(["analyze", "-H", "apple-m2-gpu", "--engine", "mlx", "--format", "json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["workload"]["engine"] == "mlx"
    expected = analyze("llama-2-7b", "apple-m2-gpu", engine="mlx").totals.expected_tokens_per_s
    assert data["totals"]["expected_tokens_per_s"] == pytest.approx(expected, rel=1e-12)


def test_every_calibration_row_names_an_engine() -> None:
    rows = list(csv.DictReader((ROOT / "bench" / "data" / "calibration.csv").open(encoding="utf-8")))
    named = {}
    for row in rows:
        kind = row["backend"].strip().lower()
        engine = engine_for(row["framework"], row["backend"], row["hardware"], kind)
        assert engine is not None, (row["framework"], row["backend"], row["hardware"])
        named[row["framework"] + " / " + row["hardware"]] = engine
    assert named["llama.cpp (Metal) / Apple M1 (8-core GPU)"] == "llama.cpp-metal"
    assert any(engine == "mlc" for engine in named.values())
    assert any(engine == "llama.cpp-cuda" for engine in named.values())
    assert engine_for("MLX (mlx-lm 0.19)", "GPU", "Apple M2 Max", "gpu") == "mlx"
    assert engine_for("Qualcomm AI Hub (Genie)", "NPU", "Snapdragon 8 Elite", "npu") == "qnn"
    assert engine_for("something else", "GPU", "a GPU", "gpu") is None
