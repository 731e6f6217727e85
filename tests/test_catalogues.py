"""Every data file loads into a validated, cited record; the catalogues cover what the docs promise."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from llm_roofline import InputError, hardware_names, load_hardware, load_model, model_names
from llm_roofline.core.formats import format_names, get_format
from llm_roofline.core.hardware import hardware_from_dict
from llm_roofline.inputs.device_files import load_hardware_file

REQUIRED_DEVICES = [
    "snapdragon-8-gen-3-cpu", "snapdragon-8-gen-3-gpu", "apple-m2-cpu", "apple-m2-gpu", "jetson-orin-nx",
    "apple-m1-gpu", "apple-m1-pro-gpu", "apple-m1-max-gpu", "apple-m1-ultra-gpu", "apple-m2-pro-gpu",
    "apple-m2-max-gpu", "apple-m2-ultra-gpu", "apple-m3-gpu", "apple-m3-pro-gpu", "apple-m3-max-gpu",
    "apple-m4-gpu", "apple-m4-pro-gpu", "apple-m4-max-gpu", "apple-a17-pro-gpu",
    "qualcomm-snapdragon-8-elite-gpu", "qualcomm-snapdragon-x-elite-gpu", "mediatek-dimensity-9300-gpu",
    "nvidia-jetson-orin-nano-8gb", "nvidia-jetson-agx-orin-64gb", "raspberry-pi-5", "intel-core-i9-13900k",
    "amd-ryzen-9-7950x", "nvidia-rtx-3090", "nvidia-rtx-4090", "nvidia-t4", "nvidia-l4", "nvidia-a100-40gb-sxm",
    "nvidia-a100-80gb-sxm", "nvidia-h100-sxm", "nvidia-h100-pcie", "nvidia-h200-sxm",
    # issue 13: the devices people deploy on now, and the two desktop cards of the calibration file
    "qualcomm-snapdragon-8-elite-cpu", "qualcomm-snapdragon-8-elite-npu", "qualcomm-snapdragon-8-elite-gen-5-cpu",
    "qualcomm-snapdragon-8-elite-gen-5-gpu", "qualcomm-snapdragon-8-elite-gen-5-npu", "nvidia-jetson-agx-thor",
    "nvidia-jetson-orin-nano-super-8gb", "nvidia-dgx-spark", "amd-ryzen-ai-max-plus-395-gpu",
    "amd-ryzen-ai-max-plus-395-cpu", "nvidia-rtx-5070", "nvidia-rtx-5080", "nvidia-rtx-5090", "nvidia-b200-sxm",
    "amd-instinct-mi300x", "apple-m5-gpu", "raspberry-pi-5-16gb", "nvidia-rtx-3070", "nvidia-rtx-4080",
]
REQUIRED_MODELS = [
    "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3.2-1b", "llama-3.2-3b", "mistral-7b",
    "qwen2.5-0.5b", "qwen2.5-7b", "phi-3-mini", "gemma-2b", "tinyllama-1.1b", "gpt2",
]


def test_catalogue_sizes() -> None:
    assert set(REQUIRED_DEVICES) <= set(hardware_names())
    assert len(hardware_names()) >= 35  # the chapter's 5 entries + at least 30 more
    assert set(REQUIRED_MODELS) <= set(model_names())


@pytest.mark.parametrize("name", hardware_names())
def test_every_device_loads_with_a_source(name: str) -> None:
    spec = load_hardware(name)
    assert spec.name == name
    assert spec.source.strip()
    assert spec.memory_bytes and spec.memory_bytes > 1e8
    assert 1e9 <= spec.memory_bytes_per_s <= 1e13  # GB/s to 10 TB/s: catches a GB/s-vs-B/s slip
    for precision, peak in spec.peak_flops_per_s.items():
        assert 1e9 <= peak <= 1e16, precision


@pytest.mark.parametrize("name", model_names())
def test_every_model_loads_with_a_source(name: str) -> None:
    spec = load_model(name)
    assert spec.source.startswith("https://")
    assert spec.display_name


def test_every_format_has_a_source() -> None:
    for name in format_names():
        fmt = get_format(name)
        assert fmt.source and fmt.bits_per_element > 0
    assert get_format("F16") is get_format("fp16")  # aliases, case-insensitive
    assert get_format("4.5").bits_per_element == 4.5


def test_a_device_without_a_source_is_refused(tmp_path: Path) -> None:
    text = resources.files("llm_roofline").joinpath("data/hardware/nvidia-t4.toml").read_text()
    data = tomllib.loads(text)
    del data["source"]
    with pytest.raises(InputError, match="source"):
        hardware_from_dict(data, "t4-copy")
    data["source"] = "  "
    with pytest.raises(InputError, match="source"):
        hardware_from_dict(data, "t4-copy")


def test_user_device_file(tmp_path: Path) -> None:
    path = tmp_path / "my-board.toml"
    path.write_text('name = "my-board"\nkind = "gpu"\nmemory_bytes = 8e9\nmemory_bytes_per_s = 50e9\n'
                    'source = "measured"\n[peak_flops_per_s]\nfp16 = 4e12\n')
    spec = load_hardware(str(path))
    assert spec.ridge_point("fp16") == pytest.approx(80.0)
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\nkind = "gpu"\nmemory_bytes = 8e9\nmemory_bytes_per_s = -1\nsource = "x"\n'
                   '[peak_flops_per_s]\nfp16 = 4e12\n')
    with pytest.raises(InputError, match="memory_bytes_per_s"):
        load_hardware_file(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "b"\nkind = ')
    with pytest.raises(InputError, match="not valid"):
        load_hardware_file(broken)
