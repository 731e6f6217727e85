"""Memory pressure: what the OS lets a model use, and what fit says beyond it (issue 17, part 2)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from llm_roofline import InputError, Workload, analyze, load_hardware, load_model
from llm_roofline.core.hardware import hardware_from_dict
from llm_roofline.faces.cli.main import main
from llm_roofline.features.deploy import fit, soc_cpu, split_layers
from llm_roofline.inputs.device_files import hardware_names

GIB = 2**30
APPLE = [n for n in hardware_names() if n.startswith("apple-") and load_hardware(n).kind != "cpu"]
ANDROID = [n for n in hardware_names() if n.startswith(("snapdragon-8-", "qualcomm-snapdragon-8-", "mediatek-"))]
JETSON = [n for n in hardware_names() if "jetson" in n]


def test_the_families_are_all_there() -> None:
    # 16 M-series GPUs and the A17 Pro; the Snapdragon 8 Gen 3, 8 Elite and 8 Elite Gen 5 CPU/GPU/NPU entries and
    # the Dimensity 9300; the Orin Nano (and Super), Orin NX, AGX Orin and AGX Thor.
    assert (len(APPLE), len(ANDROID), len(JETSON)) == (17, 9, 5)


@pytest.mark.parametrize("name", APPLE + ANDROID + JETSON)
def test_every_apple_android_jetson_device_has_a_cited_usable_memory(name: str) -> None:
    device = load_hardware(name)
    assert device.memory_bytes is not None and device.usable_memory_bytes is not None
    assert 0 < device.usable_memory_bytes < device.memory_bytes
    assert device.available_memory_bytes == device.usable_memory_bytes
    assert "https://" in device.usable_memory_source
    expected_scope = "accelerator" if name.startswith("apple-m") else "process"
    assert device.usable_memory_scope == expected_scope


@pytest.mark.parametrize("name", [n for n in APPLE if n.startswith("apple-m")])
def test_the_metal_working_set_rule(name: str) -> None:
    # recommendedMaxWorkingSetSize as llama.cpp logs it: 2/3 of the RAM up to 32 GiB, 3/4 above (floored to a byte).
    device = load_hardware(name)
    assert device.memory_bytes is not None
    share = (2, 3) if device.memory_bytes <= 32 * GIB else (3, 4)
    assert device.usable_memory_bytes == device.memory_bytes * share[0] // share[1]


def test_golden_usable_figures() -> None:
    # 2/3 x 17,179,869,184 = 11,453,246,122.67: the 10922.67 MiB llama.cpp prints on a 16 GiB M1.
    assert load_hardware("apple-m1-gpu").usable_memory_bytes == 11_453_246_122
    assert load_hardware("apple-m3-pro-gpu").usable_memory_bytes == 27 * GIB  # 3/4 x 36 GiB
    assert load_hardware("apple-a17-pro-gpu").usable_memory_bytes == 6 * GIB  # measured on an iPhone 15 Pro Max
    assert load_hardware("snapdragon-8-gen-3-gpu").usable_memory_bytes == 6 * GIB  # half of 12 GiB
    assert load_hardware("mediatek-dimensity-9300-gpu").usable_memory_bytes == 8 * GIB  # half of 16 GiB
    assert load_hardware("nvidia-jetson-orin-nano-8gb").usable_memory_bytes == 5_261_334_937  # 4.9 GiB measured
    assert load_hardware("jetson-orin-nx").usable_memory_bytes == int(12.9 * GIB)  # 16 GiB - 3.1 GiB
    # macOS limits the GPU's working set, not the CPU: the M2's CPU entry keeps its whole memory.
    assert load_hardware("apple-m2-cpu").usable_memory_bytes is None


def test_a_7b_fp16_model_on_a_16_gb_mac_does_not_fit_the_gpu_working_set() -> None:
    model, mac = load_model("llama-2-7b"), load_hardware("apple-m1-gpu")
    report = fit(model, mac, Workload())
    f = report.footprint
    assert f.total_bytes == 14_585_595_136  # 13.48 GB of fp16 weights + 537 MB of cache + 71 MB + 0.5 GB
    assert f.fits is False and f.memory_pressure is True
    assert f.capacity_bytes == report.usable_memory_bytes == 11_453_246_122
    assert f.physical_memory_bytes == report.physical_memory_bytes == 16 * GIB
    assert report.memory_pressure is True and report.max_batch == 0 and report.max_context_tokens == 0
    split = report.fallback
    assert split is not None and split.host == "apple-m1-gpu:cpu"
    assert "no CPU of this SoC" in report.fallback_host_assumed
    # -ngl N holds N - 1 layers of 404,766,720 B of weights + 16,793,600 B of cache each, the fp16 lm_head
    # (262,144,000 B), the activations (71,368,704 B) and the 0.5 GB runtime: 25 layers make 11,372,520,704 B
    # <= 11,453,246,122, 26 make 11,794,081,024 B.
    assert (split.gpu_layers, split.accelerator_layers, split.host_layers) == (26, 25, 7)
    assert split.accelerator_bytes == 25 * (404_766_720 + 16_793_600) + 262_144_000 + 71_368_704 + 0.5e9
    assert split.accelerator_fits and split.output_on_accelerator
    # The CPU reads the same memory at the same 68.25 GB/s: the roofline does not slow down; the efficiency
    # model's CPU class does.
    alone = analyze(model, mac, Workload()).totals
    assert split.tokens_per_s == pytest.approx(alone.tokens_per_s)
    assert split.expected_tokens_per_s < alone.expected_tokens_per_s
    assert split == split_layers(model, mac, soc_cpu(mac)[0], Workload())


def test_the_fallback_is_the_offload_commands_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "-m", "llama-2-7b", "-H", "apple-m1-gpu", "-f", "json"]) == 0
    fallback = json.loads(capsys.readouterr().out)["fallback"]
    host = tmp_path / "m1-cpu.json"  # the assumed CPU, as a device file offload can read
    host.write_text(json.dumps(soc_cpu(load_hardware("apple-m1-gpu"))[0].to_dict()))
    assert main(["offload", "-m", "llama-2-7b", "-H", "apple-m1-gpu", "--host", str(host),
                 "--gpu-layers", str(fallback["gpu_layers"]), "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == fallback


def test_a_catalogued_soc_cpu_is_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    # Llama-2-13B at q8_0 with a 4096-token context: 18 GB, beyond the M2 GPU's 16 GiB, within its 24 GiB.
    args = ["-m", "llama-2-13b", "-H", "apple-m2-gpu", "-w", "q8_0", "-l", "4095", "-f", "json"]
    assert main(["fit", *args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["memory_pressure"] is True and report["fallback_host_assumed"] == ""
    fallback = report["fallback"]
    assert fallback["host"] == "apple-m2-cpu" and 0 < fallback["host_layers"] < 40
    assert main(["offload", *args, "--host", "apple-m2-cpu", "--gpu-layers", str(fallback["gpu_layers"])]) == 0
    assert json.loads(capsys.readouterr().out) == fallback
    assert main(["offload", *args[:-2], "--host", "apple-m2-cpu", "--gpu-layers", str(fallback["gpu_layers"])]) == 0
    assert f"({fallback['tokens_per_s']:.4g} tokens/s; expected" in capsys.readouterr().out


def test_soc_cpu() -> None:
    assert soc_cpu(load_hardware("apple-m2-gpu")) == (load_hardware("apple-m2-cpu"), "")
    assert soc_cpu(load_hardware("qualcomm-snapdragon-8-elite-npu"))[0].name == "qualcomm-snapdragon-8-elite-cpu"
    m1 = load_hardware("apple-m1-gpu")
    cpu, assumed = soc_cpu(m1)
    assert cpu.kind == "cpu" and cpu.memory_bytes_per_s == m1.memory_bytes_per_s and assumed
    assert cpu.usable_memory_bytes is None and cpu.available_memory_bytes == m1.memory_bytes


def test_the_fit_text_says_what_happens(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "-m", "llama-2-7b", "-H", "apple-m1-gpu"]) == 0
    text = capsys.readouterr().out
    assert "total                 14.6 GB of 11.5 GB (10.7 GiB) usable: fits NO" in text
    assert ("memory pressure       needs 14.6 GB: beyond the 11.5 GB (10.7 GiB) the OS lets the GPU use, within "
            "the 17.2 GB (16 GiB) of memory") in text
    assert "fallback              -ngl 26: 25 of 32 layers + output on the GPU, 7 on the CPU: 4.956 tokens/s" in text
    assert "or the OS swaps" in text and "fallback CPU          apple-m1-gpu:cpu, assumed: no CPU" in text


def test_a_limit_on_the_whole_program_has_no_fallback(capsys: pytest.CaptureFixture[str]) -> None:
    # 8.27 GB of q8_0 on an Orin Nano: more than the 4.9 GiB JetPack leaves, less than its 8 GiB.
    report = fit(load_model("llama-2-7b"), load_hardware("nvidia-jetson-orin-nano-8gb"), Workload(weights="q8_0"))
    assert report.memory_pressure is True and report.fallback is None and report.fallback_host_assumed == ""
    assert main(["fit", "-m", "llama-2-7b", "-H", "nvidia-jetson-orin-nano-8gb", "-w", "q8_0"]) == 0
    text = capsys.readouterr().out
    assert "the OS lets a program use, within the 8.59 GB (8 GiB) of memory" in text
    assert "the OS swaps, or ends the program" in text and "fallback" not in text


def test_a_model_within_the_limit_still_fits(capsys: pytest.CaptureFixture[str]) -> None:
    model, mac = load_model("llama-2-7b"), load_hardware("apple-m1-gpu")
    report = fit(model, mac, Workload(weights="q4_0"))  # 4.93 GB
    assert report.footprint.fits is True and report.memory_pressure is False and report.fallback is None
    assert report.max_context_limited_by == "model" and report.max_batch == 11
    assert main(["fit", "-m", "llama-2-7b", "-H", "apple-m1-gpu", "-w", "q4_0"]) == 0
    text = capsys.readouterr().out
    assert "usable: fits yes" in text and "memory pressure" not in text
    # Beyond the physical memory it is plain "does not fit": no pressure, no fallback.
    beyond = fit(load_model("llama-2-13b"), mac, Workload())  # 27.5 GB
    assert beyond.footprint.fits is False and beyond.memory_pressure is False and beyond.fallback is None
    # A device with no OS share (a data-centre GPU) is never under pressure.
    h100 = fit(model, load_hardware("nvidia-h100-sxm"), Workload())
    assert h100.usable_memory_bytes == h100.physical_memory_bytes and h100.memory_pressure is False


def test_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "-m", "llama-2-7b", "-H", "apple-m1-gpu", "-f", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    before = {"model", "hardware", "weights", "batch", "context_tokens", "footprint", "max_context_tokens",
              "max_context_limited_by", "model_max_context_tokens", "max_batch"}
    added = {"usable_memory_bytes", "physical_memory_bytes", "memory_pressure", "fallback", "fallback_host_assumed"}
    assert set(report) == before | added
    assert {"expected_time_s", "expected_tokens_per_s", "gpu_layers", "tokens_per_s"} <= set(report["fallback"])
    memory_keys = {"weight_bytes", "kv_cache_bytes", "total_bytes", "capacity_bytes", "fits", "activation_bytes",
                   "overhead_bytes", "headroom_bytes", "state_bytes"}
    assert set(report["footprint"]) == memory_keys | {"physical_memory_bytes", "memory_pressure"}
    assert main(["analyze", "-m", "llama-2-7b", "-H", "apple-m1-gpu", "-f", "json"]) == 0
    memory = json.loads(capsys.readouterr().out)["memory"]
    assert memory["memory_pressure"] is True and memory["physical_memory_bytes"] == 16 * GIB
    assert memory == report["footprint"]
    device = json.loads(json.dumps(load_hardware("apple-m1-gpu").to_dict()))
    assert device["usable_memory_scope"] == "accelerator" and device["usable_memory_source"]


def test_bad_input_is_refused_as_before(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--bandwidth-gb-s", "100", "--peak-tflops", "10"]) == 2
    assert "(--memory-gb)" in capsys.readouterr().err
    assert main(["fit", "-H", "apple-m1-gpu", "-b", "0"]) == 2
    assert "batch" in capsys.readouterr().err
    data = load_hardware("apple-m1-gpu").to_dict()
    with pytest.raises(InputError, match="usable_memory_scope must be one of process, accelerator"):
        hardware_from_dict({**data, "usable_memory_scope": "gpu", "efficiency": None}, "a.toml")
    with pytest.raises(InputError, match="usable_memory_source must be a string"):
        hardware_from_dict({**data, "usable_memory_source": 3, "efficiency": None}, "a.toml")
    with pytest.raises(InputError, match="exceeds memory_bytes"):
        replace(load_hardware("apple-m1-gpu"), memory_bytes=8 * GIB)


def test_memory_gb_keeps_the_devices_usable_share(capsys: pytest.CaptureFixture[str]) -> None:
    """``--memory-gb`` on a device with a usable limit scales the limit with it (the issue's 16 GB Mac)."""
    assert main(["fit", "-m", "llama-2-7b", "-H", "apple-m2-gpu", "--memory-gb", "16", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    m2 = load_hardware("apple-m2-gpu")
    assert m2.usable_memory_bytes is not None and m2.memory_bytes is not None
    assert data["usable_memory_bytes"] == pytest.approx(16e9 * m2.usable_memory_bytes / m2.memory_bytes, rel=1e-12)
    assert data["physical_memory_bytes"] == 16e9 and data["memory_pressure"] is True
    assert data["footprint"]["fits"] is False and data["fallback"] is not None


@pytest.mark.parametrize(("argv", "line"), [
    (["-m", "llama-2-7b", "-H", "apple-m1-gpu"],  # 14.6 GB: past the Metal working set, within 16 GiB
     "memory pressure        beyond what the OS lets the GPU use, within the device's memory: the times above "
     "assume the model fits; the OS swaps, or layers run on the CPU (llm-roofline fit prices that split)"),
    (["-m", "llama-2-7b", "-H", "nvidia-jetson-orin-nano-8gb", "-w", "q8_0"],  # a limit on the whole program
     "memory pressure        beyond what the OS lets a program use, within the device's memory: the times above "
     "assume the model fits; the OS swaps or ends the program (llm-roofline fit)"),
    (["-m", "llama-2-13b", "-H", "apple-m1-gpu"],  # 27.5 GB: past the device's memory
     "beyond memory          the times above assume the model fits, which it does not: llm-roofline offload "
     "prices streaming layers from storage or splitting them with a host"),
])
def test_analyze_says_what_its_times_mean_for_a_model_that_does_not_fit(
        capsys: pytest.CaptureFixture[str], argv: list[str], line: str) -> None:
    assert main(["analyze", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[lines.index(line) - 1].startswith("memory needed") and lines[lines.index(line) - 1].endswith(
        "fits: NO")


def test_analyze_adds_nothing_for_a_model_that_fits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "-m", "llama-2-7b", "-H", "apple-m1-gpu", "-w", "q4_0"]) == 0
    text = capsys.readouterr().out
    assert "fits: yes" in text and "memory pressure" not in text and "beyond memory" not in text
