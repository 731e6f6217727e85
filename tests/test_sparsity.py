"""2:4 structured sparsity (Workload.sparsity = "2:4"): on a device with sparse tensor cores the decoder
layers' projections keep two values of every four, each with a 2-bit index (fp16: 9 bits per dense
element instead of 16), and half their multiplies run; the embedding, the output head and the router stay
dense. A device without sparse units runs the model dense, and says so."""

from __future__ import annotations

import json

import pytest

from llm_roofline import InputError, Workload, analyze, load_hardware, load_model
from llm_roofline.core.formats import get_format, sparse_2_4
from llm_roofline.core.hardware import hardware_from_dict
from llm_roofline.faces.cli.main import main
from llm_roofline.features.deploy import fit
from llm_roofline.features.sweep import iter_sweep, make_spec

# Llama-2-7B's layer projections: 32 x (4 d² + 3 d I) = 32 x (4 x 4096² + 3 x 4096 x 11008) = 6,476,005,376
LAYER_PARAMS = 32 * (4 * 4096**2 + 3 * 4096 * 11008)


def test_the_pruned_format() -> None:
    fp16, int8 = sparse_2_4(get_format("fp16")), sparse_2_4(get_format("int8"))
    assert (fp16.name, fp16.bits_per_element, fp16.value_bits, fp16.density) == ("fp16+2:4", 9, 16, 0.5)
    assert (int8.bits_per_element, int8.math) == (5, "int8")


def test_llama_2_7b_decode_on_an_a100_by_hand() -> None:
    # Batch 1, 1024 cached tokens: the projections' weights cost 9/16 of their fp16 bytes, 2 B -> 1.125 B per
    # parameter (5,666,504,704 B less), and their 2 FLOPs per parameter halve (6,476,005,376 FLOPs less).
    dense = analyze("llama-2-7b", "nvidia-a100-80gb-sxm", Workload(seq_len=1024))
    sparse = analyze("llama-2-7b", "nvidia-a100-80gb-sxm", Workload(seq_len=1024, sparsity="2:4"))
    assert dense.totals.weight_bytes - sparse.totals.weight_bytes == pytest.approx(0.875 * LAYER_PARAMS, abs=1)
    assert dense.totals.flops - sparse.totals.flops == pytest.approx(LAYER_PARAMS, abs=1)
    assert dense.memory.weight_bytes - sparse.memory.weight_bytes == pytest.approx(0.875 * LAYER_PARAMS, abs=1)
    head = [next(op for op in a.ops if op.name == "lm_head") for a in (dense, sparse)]
    assert head[0] == head[1]  # the output head stays dense
    assert sparse.workload.weights_label == "fp16+2:4" and sparse.warnings == ()


def test_a_device_without_sparse_units_runs_it_dense_and_says_so() -> None:
    dense = analyze("llama-2-7b", "nvidia-t4", Workload())
    asked = analyze("llama-2-7b", "nvidia-t4", Workload(sparsity="2:4"))
    assert asked.totals == dense.totals
    assert asked.warnings == ("2:4 sparsity needs sparse tensor cores, which nvidia-t4 does not have "
                              "(sparse_2_4 in its device file): priced dense",)


def test_fit_and_the_sweep_price_each_device_as_analyze_does() -> None:
    devices = ["nvidia-rtx-4090", "nvidia-t4", "jetson-orin-nx"]
    spec = make_spec(["llama-2-7b"], devices, [1, 16], [512], sparsity="2:4")
    rows = {(str(h), int(b)): (float(t), float(m), str(w))
            for chunk in iter_sweep(spec)
            for h, b, t, m, w in zip(chunk["hardware"], chunk["batch"], chunk["time_s"], chunk["memory_bytes"],
                                     chunk["weights"], strict=True)}
    for device in devices:
        for batch in (1, 16):
            workload = Workload(batch=batch, seq_len=512, sparsity="2:4")
            result = analyze("llama-2-7b", device, workload)
            time_s, memory, label = rows[(device, batch)]
            assert time_s == pytest.approx(result.totals.time_s, rel=1e-9)
            assert memory == pytest.approx(result.memory.total_bytes, rel=1e-12)
            assert label == ("fp16" if device == "nvidia-t4" else "fp16+2:4")
            assert fit(load_model("llama-2-7b"), load_hardware(device), workload).footprint == result.memory


def test_a_device_file_must_cite_its_sparse_units() -> None:
    data = {"name": "x", "kind": "gpu", "memory_bytes": 1e9, "memory_bytes_per_s": 1e11,
            "peak_flops_per_s": {"fp16": 1e13}, "source": "a datasheet", "sparse_2_4": True}
    with pytest.raises(InputError, match="sparse_2_4 = true needs sparse_2_4_source"):
        hardware_from_dict(data, "x.toml")
    assert hardware_from_dict(data | {"sparse_2_4_source": "a whitepaper"}, "x.toml").sparse_2_4
    catalogue = [load_hardware(name) for name in ("nvidia-a100-80gb-sxm", "nvidia-t4", "apple-m2-gpu")]
    assert [d.sparse_2_4 for d in catalogue] == [True, False, False]


def test_the_command_line_json_and_the_studies_that_refuse_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "-H", "nvidia-a100-80gb-sxm", "--sparsity", "2:4", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workload"]["sparsity"] == "2:4" and data["workload"]["weights"] == "fp16+2:4"
    assert main(["feasibility", "--target-ms", "100", "--sparsity", "2:4"]) == 2
    assert "feasibility: sparsity 2:4 is priced per device" in capsys.readouterr().err


def test_transition_and_the_web_api_agree_with_analyze() -> None:
    from fastapi.testclient import TestClient

    from llm_roofline.faces.web.app import create_app
    from llm_roofline.features.studies.transition import WHOLE_STEP, critical_batch

    model, device = load_model("llama-2-7b"), load_hardware("jetson-orin-nx")
    workload = Workload(seq_len=128, sparsity="2:4")
    crossing = next(p for p in critical_batch(model, device, workload) if p.name == WHOLE_STEP).critical
    assert crossing is not None
    bounds = [analyze(model, device, Workload(batch=b, seq_len=128, sparsity="2:4")).totals.bound
              for b in (crossing - 1, crossing)]
    assert bounds == ["memory", "compute"]
    with TestClient(create_app()) as client:
        web = client.post("/api/analyze", json={"hardware": ["jetson-orin-nx"], "seq_len": 128, "batch": crossing,
                                                "sparsity": "2:4"}).json()["results"][0]
    assert web["totals"]["bound"] == "compute" and web["workload"]["weights"] == "fp16+2:4"
