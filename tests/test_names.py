"""Names as people write them: devices and models resolved to catalogue names, and the errors that
name the closest entries when a name is unknown or ambiguous."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llm_roofline import load_hardware
from llm_roofline.core.errors import InputError
from llm_roofline.faces.cli.main import main
from llm_roofline.features.fidelity.validation import catalogue_device
from llm_roofline.inputs.device_files import hardware_names
from llm_roofline.inputs.measurements import read_measurements
from llm_roofline.inputs.model_files import load_model, model_names
from llm_roofline.inputs.names import DEVICE_RULES, resolve, resolve_device, resolve_model

CALIBRATION = Path(__file__).resolve().parents[1] / "bench/data/calibration.csv"

DEVICES = {
    "Snapdragon 8 Elite QRD": "qualcomm-snapdragon-8-elite-gpu",  # a reference design; the SoC's GPU by default
    "Samsung Galaxy S24 Ultra (Snapdragon 8 Gen 3)": "snapdragon-8-gen-3-gpu",  # the phone states its SoC
    "NVIDIA RTX 4080 16GB": "nvidia-rtx-4080",
    "Apple M2 Pro (19-core GPU)": "apple-m2-pro-gpu",  # the catalogue's full chip
    "Raspberry Pi 5 8GB (BCM2712, 4x Cortex-A76)": "raspberry-pi-5",
    "rtx5090": "nvidia-rtx-5090",
    "Jetson Orin Nano Super": "nvidia-jetson-orin-nano-super-8gb",
    "NVIDIA Jetson Orin Nano 8GB (original, 15W)": "nvidia-jetson-orin-nano-8gb",  # not the Super mode
    "NVIDIA GeForce RTX 5090 Founders Edition": "nvidia-rtx-5090",
    "nvidia-rtx-4090": "nvidia-rtx-4090",
    "NVIDIA GeForce RTX 3090": "nvidia-rtx-3090",  # a display name
    "Snapdragon 8 Elite CPU": "qualcomm-snapdragon-8-elite-cpu",
    "Snapdragon 8 Elite Gen 5 NPU": "qualcomm-snapdragon-8-elite-gen-5-npu",
    "Raspberry Pi 5": "raspberry-pi-5",  # the entry whose name states no memory size
    "Raspberry Pi 5 16GB": "raspberry-pi-5-16gb",
    "A100 80GB": "nvidia-a100-80gb-sxm",
    "MacBook Air M2": "apple-m2-gpu",  # the host named before the chip
    "MI300X": "amd-instinct-mi300x",  # the product line left out
    "B200": "nvidia-b200-sxm",  # the form factor left out
    "Ryzen AI Max+ 395": "amd-ryzen-ai-max-plus-395-gpu",
    "GB10": "nvidia-dgx-spark",
    "Apple M4 Max (16-core CPU, 40-core GPU)": "apple-m4-max-gpu",  # the CPU's core count is about the CPU
}


@pytest.mark.parametrize("text", sorted(DEVICES))
def test_devices_as_people_write_them(text: str) -> None:
    assert resolve_device(text) == DEVICES[text]
    assert load_hardware(text).name == DEVICES[text]  # --hardware reads names the same way


@pytest.mark.parametrize("name", hardware_names())
def test_every_entry_by_its_name_and_its_display_name(name: str) -> None:
    display = load_hardware(name).display_name
    assert resolve_device(name) == name
    assert resolve_device(display) == name
    assert resolve_device(display.upper().replace(" ", "_")) == name  # case and spacing do not matter


def test_a_kind_picks_the_soc_entry() -> None:
    phone = "Samsung Galaxy S24 Ultra (Snapdragon 8 Gen 3)"
    assert resolve_device(phone, kind="cpu") == "snapdragon-8-gen-3-cpu"
    assert resolve_device(phone, kind="gpu") == "snapdragon-8-gen-3-gpu"
    with pytest.raises(InputError, match="unknown hardware"):
        resolve_device("RTX 4090", kind="cpu")


def closest(message: str) -> list[str]:
    """The names after "did you mean" in an error."""
    match = re.search(r"did you mean (.*?)\?", message)
    assert match, message
    return match.group(1).split(", ")


def test_unknown_names_the_three_closest_entries() -> None:
    with pytest.raises(InputError) as err:
        resolve_device("nonexistent gpu")
    message = str(err.value)
    assert message.startswith("unknown hardware 'nonexistent gpu'") and "\n" not in message
    assert len(closest(message)) == 3 and set(closest(message)) <= set(hardware_names())
    with pytest.raises(InputError) as err:
        resolve_device("RTX 4080 Super")  # another card, not the RTX 4080
    assert closest(str(err.value))[0] == "nvidia-rtx-4080"


@pytest.mark.parametrize(("text", "candidates"), [
    ("H100", {"nvidia-h100-pcie", "nvidia-h100-sxm"}),
    ("A100", {"nvidia-a100-40gb-sxm", "nvidia-a100-80gb-sxm"}),
    ("jetson-orin", {"jetson-orin-nx", "nvidia-jetson-orin-nano-8gb", "nvidia-jetson-orin-nano-super-8gb"}),
])
def test_ambiguous_names_its_candidates(text: str, candidates: set[str]) -> None:
    with pytest.raises(InputError, match=f"ambiguous hardware '{text}'") as err:
        resolve_device(text)
    assert set(closest(str(err.value))) == candidates


@pytest.mark.parametrize(("text", "why"), [
    ("Apple M2 Pro (16-core GPU)", "apple-m2-pro-gpu is 19-core"),  # a binned chip is not the full one
    ("Raspberry Pi 5 4GB", "raspberry-pi-5 is 8 GB"),
    ("RTX 4090 CPU", "nvidia-rtx-4090 is a gpu"),
])
def test_a_stated_qualifier_rules_an_entry_out(text: str, why: str) -> None:
    with pytest.raises(InputError, match=re.escape(f"unknown hardware '{text}' ({why})")):
        resolve_device(text)


def test_cli_refuses_an_unknown_device_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyze", "-H", "nonexistent gpu"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("llm-roofline: error: unknown hardware 'nonexistent gpu'")
    assert main(["analyze", "-H", "H100"]) == 2
    assert "ambiguous hardware 'H100'" in capsys.readouterr().err


def test_every_calibration_row_on_a_catalogue_device_maps_to_it() -> None:
    """Rows map unless they state a core count the catalogue's chip does not have (binned Apple chips)."""
    for m in read_measurements(CALIBRATION):
        spec = catalogue_device(m)
        binned = re.search(r"(\d+)-core", m.hardware) and spec is None
        assert spec is not None or binned, m.hardware
        assert spec is None or spec.kind == m.backend
    rows = {m.hardware: catalogue_device(m) for m in read_measurements(CALIBRATION)}
    assert rows["NVIDIA RTX 3070 8GB"].name == "nvidia-rtx-3070"
    assert rows["OnePlus 12 (Snapdragon 8 Gen 3, 16GB)"].name == "snapdragon-8-gen-3-cpu"  # a CPU row
    assert rows["Apple M1 Max (24-core GPU, 32GB)"] is None  # binned: the catalogue's M1 Max has 32 cores


def test_the_resolver_is_generic() -> None:
    entries = [("acme-x1-gpu", "Acme X1 GPU (12-core)"), ("acme-x1-cpu", "Acme X1 CPU"), ("acme-x2-gpu", "Acme X2")]
    assert resolve("Acme X1", entries, "board", DEVICE_RULES) == "acme-x1-gpu"
    assert resolve("ACME x1 cpu", entries, "board", DEVICE_RULES) == "acme-x1-cpu"
    with pytest.raises(InputError, match=r"unknown board 'Acme X1 \(8-core GPU\)' \(acme-x1-gpu is 12-core\)"):
        resolve("Acme X1 (8-core GPU)", entries, "board", DEVICE_RULES)
    with pytest.raises(InputError, match="empty"):
        resolve("  ", entries, "board", DEVICE_RULES)


MODEL_ENTRIES = [(name, load_model(name).display_name) for name in model_names()]
MODELS = {
    "meta-llama/Llama-3.2-3B-Instruct": "llama-3.2-3b",  # organisation prefix, fine-tune suffix
    "Llama-3.2-3B-Instruct-Q4_K_M.gguf": "llama-3.2-3b",  # llama.cpp quant type and file extension
    "unsloth/Llama-3.2-1B-Instruct-bnb-4bit": "llama-3.2-1b",
    "mlx-community/Llama-3.2-3B-Instruct-4bit": "llama-3.2-3b",
    "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ": "qwen2.5-7b",  # a -Coder fine-tune has its base's shapes
    "Qwen2.5-7B-Instruct-GPTQ-Int4": "qwen2.5-7b",
    "Meta-Llama-3-8B-Instruct": "llama-3-8b",
    "Llama-2-7b-chat-hf": "llama-2-7b",
    "Gemma-3-1B-IT": "gemma-3-1b",
    "TinyLlama-1.1B-Chat-v1.0": "tinyllama-1.1b",  # the entry states no version
    "Mistral-7B-Instruct-v0.1": "mistral-7b",  # the entry is v0.1
    "Phi 3.5 3B (Phi-3.5-mini)": "phi-3.5-mini",  # the name in parentheses
    "Llama 3.1 8B": "llama-3.1-8b",
    "GPT-2": "gpt2",
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "qwen3-30b-a3b",  # a dated refresh has its release's shapes
    "Qwen3-4B-Thinking-2507-GGUF": "qwen3-4b",
    "openai/gpt-oss-20b": "gpt-oss-20b",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": "deepseek-r1-distill-qwen-14b",
    "unsloth/Llama-3.3-70B-Instruct-bnb-4bit": "llama-3.3-70b",
    "mlx-community/SmolLM2-360M-Instruct-4bit": "smollm2-360m",
}


@pytest.mark.parametrize("text", sorted(MODELS))
def test_models_as_people_write_them(text: str) -> None:
    assert resolve_model(text, MODEL_ENTRIES) == MODELS[text]


def test_a_model_version_is_kept() -> None:
    assert resolve_model("Mistral-7B-Instruct-v0.3", MODEL_ENTRIES) == "mistral-7b-v0.3"  # another vocabulary
    with pytest.raises(InputError, match=re.escape("unknown model 'Mistral-7B-Instruct-v0.2' (mistral-7b is v0.1)")):
        resolve_model("Mistral-7B-Instruct-v0.2", MODEL_ENTRIES)  # not in the catalogue: not silently v0.1
    with pytest.raises(InputError, match=re.escape("unknown model 'Qwen2.5'")):
        resolve_model("Qwen2.5", MODEL_ENTRIES)  # no size: models are not abbreviated


def test_load_model_reads_names_as_people_write_them(capsys: pytest.CaptureFixture[str]) -> None:
    # The CLI, the Python API and validate all go through models.load_model.
    assert load_model("meta-llama/Llama-3.1-8B-Instruct").name == "llama-3.1-8b"  # not taken for a path
    assert main(["analyze", "-m", "Qwen/Qwen3-8B-GGUF", "-H", "rtx 4090", "-f", "json"]) == 0
    assert '"name": "qwen3-8b"' in capsys.readouterr().out
    assert main(["analyze", "-m", "SmolLM2"]) == 2  # which size? one line naming the three
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "smollm2-135m" in err and "smollm2-1.7b" in err
