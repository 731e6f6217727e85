"""Parameter counts of every catalogue model as transformers reports them: an independent reference.

    python tests/data/make_transformers_param_counts.py           # rewrite transformers_param_counts.json
    python tests/data/make_transformers_param_counts.py --check   # exit 1 if the file is out of date

For each src/llm_roofline/data/models/*.json the config (without the catalogue's own ``_`` keys) is
loaded with ``AutoConfig.for_model``, the causal LM is built on the meta device (no weights are
allocated) and ``sum(p.numel() for p in model.parameters())`` is recorded; ``parameters()`` yields a
shared tensor once, so tied embeddings count once, as transformers counts them. Nothing is
downloaded: the script runs offline on the installed torch and transformers.

Two adaptations, neither of which changes the structure:
- ``quantization_config`` is dropped, so the model is built unquantized (gpt-oss's mxfp4 and
  DeepSeek's fp8 configs describe how the checkpoint is stored, not how many parameters there are);
- Llama-4-Scout's Hub config has ``attn_temperature_tuning: 4`` (an int, from transformers 4.51's
  default); transformers >= 5 types the field as a bool, so a number is passed as its truth value.

The "published" strings are the model cards' and papers' own figures, kept for people to compare
with; they are quoted, not computed. The counts come from transformers only.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
import transformers

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "src" / "llm_roofline" / "data" / "models"
OUTPUT = Path(__file__).resolve().parent / "transformers_param_counts.json"

# Text models of multimodal checkpoints: AutoModelForCausalLM would pick the multimodal class.
CAUSAL_LM = {"gemma3_text": "Gemma3ForCausalLM", "llama4_text": "Llama4ForCausalLM"}

HF = "https://huggingface.co/"
GEMMA3_REPORT = "Gemma 3 technical report, Table 1, https://arxiv.org/abs/2503.19786"
GPT_OSS_CARD = "gpt-oss-120b & gpt-oss-20b model card, https://arxiv.org/abs/2508.10925"
PUBLISHED = {
    # the catalogue before this file
    "deepseek-r1-distill-qwen-1.5b": f"1.5B in the name; the card states no count "
    f"({HF}deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B)",
    "gemma-2-2b": "2.6B: 590M embedding + 2024M non-embedding (Gemma 2 report, Table 1, https://arxiv.org/abs/2408.00118)",
    "gemma-2-9b": "9.2B: 917M embedding + 8324M non-embedding (Gemma 2 report, Table 1, https://arxiv.org/abs/2408.00118)",
    "gemma-2b": "2.5B: 524M embedding + 1981M non-embedding (Gemma report, Table 2, https://arxiv.org/abs/2403.08295)",
    "gemma-3-1b": f"1B: 302M embedding + 698M non-embedding ({GEMMA3_REPORT})",
    "gpt2": f"124M ({HF}openai-community/gpt2)",
    "llama-2-13b": f"13B ({HF}meta-llama/Llama-2-13b-hf)",
    "llama-2-70b": f"70B ({HF}meta-llama/Llama-2-70b-hf)",
    "llama-2-7b": f"7B ({HF}meta-llama/Llama-2-7b-hf)",
    "llama-3-8b": f"8B ({HF}meta-llama/Meta-Llama-3-8B)",
    "llama-3.1-8b": f"8B ({HF}meta-llama/Llama-3.1-8B)",
    "llama-3.2-1b": f"1.23B ({HF}meta-llama/Llama-3.2-1B)",
    "llama-3.2-3b": f"3.21B ({HF}meta-llama/Llama-3.2-3B)",
    "mistral-7b": "7B (Mistral 7B paper, https://arxiv.org/abs/2310.06825; the announcement says 7.3B)",
    "mixtral-8x7b": "46.7B total, 12.9B active (https://mistral.ai/news/mixtral-of-experts)",
    "phi-3-mini": f"3.8B ({HF}microsoft/Phi-3-mini-4k-instruct)",
    "phi-3.5-mini": f"3.8B ({HF}microsoft/Phi-3.5-mini-instruct)",
    "phi-4-mini": f"3.8B ({HF}microsoft/Phi-4-mini-instruct)",
    "qwen2.5-0.5b": f"0.49B, 0.36B non-embedding ({HF}Qwen/Qwen2.5-0.5B)",
    "qwen2.5-7b": f"7.61B, 6.53B non-embedding ({HF}Qwen/Qwen2.5-7B)",
    "tinyllama-1.1b": f"1.1B ({HF}TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T)",
    # added with this file
    "deepseek-r1": f"671B total, 37B activated; the checkpoint's extra 14B MTP module is not part of transformers' "
    f"model ({HF}deepseek-ai/DeepSeek-R1)",
    "deepseek-r1-distill-qwen-14b": f"14B in the name; the card states no count; its base Qwen2.5-14B: 14.7B "
    f"({HF}deepseek-ai/DeepSeek-R1-Distill-Qwen-14B, {HF}Qwen/Qwen2.5-14B)",
    "deepseek-r1-distill-qwen-7b": f"7B in the name; the card states no count; its base has Qwen2.5-7B's shape, 7.61B "
    f"({HF}deepseek-ai/DeepSeek-R1-Distill-Qwen-7B, {HF}Qwen/Qwen2.5-7B)",
    "deepseek-v3": f"671B total, 37B activated; the checkpoint's extra 14B MTP module is not part of transformers' "
    f"model ({HF}deepseek-ai/DeepSeek-V3)",
    "gemma-3-12b": f"12.2B with a 417M vision encoder; text: 1012M embedding + 10759M non-embedding ({GEMMA3_REPORT})",
    "gemma-3-27b": f"27.4B with a 417M vision encoder; text: 1416M embedding + 25600M non-embedding ({GEMMA3_REPORT})",
    "gemma-3-4b": f"4.3B with a 417M vision encoder; text: 675M embedding + 3209M non-embedding ({GEMMA3_REPORT})",
    "gpt-oss-120b": f"116.8B total, 5.1B active ({GPT_OSS_CARD}; {HF}openai/gpt-oss-120b says 117B)",
    "gpt-oss-20b": f"20.9B total, 3.6B active ({GPT_OSS_CARD}; {HF}openai/gpt-oss-20b says 21B)",
    "granite-3.3-8b": f"8B ({HF}ibm-granite/granite-3.3-8b-instruct)",
    "llama-3.1-70b": f"70B ({HF}meta-llama/Llama-3.1-70B)",
    "llama-3.3-70b": f"70B ({HF}meta-llama/Llama-3.3-70B-Instruct)",
    "llama-4-maverick": f"400B total with the vision encoder, 17B active ({HF}meta-llama/Llama-4-Maverick-17B-128E)",
    "llama-4-scout": f"109B total with the vision encoder, 17B active ({HF}meta-llama/Llama-4-Scout-17B-16E)",
    "mistral-7b-v0.3": f"7B in the name; the card states no count ({HF}mistralai/Mistral-7B-v0.3)",
    "olmo-2-7b": "7B (OLMo 2 paper, https://arxiv.org/abs/2501.00656)",
    "opt-6.7b": "6.7B (OPT paper, Table 1, https://arxiv.org/abs/2205.01068)",
    "phi-2": f"2.7B ({HF}microsoft/phi-2)",
    "qwen3-0.6b": f"0.6B, 0.44B non-embedding ({HF}Qwen/Qwen3-0.6B)",
    "qwen3-1.7b": f"1.7B, 1.4B non-embedding ({HF}Qwen/Qwen3-1.7B)",
    "qwen3-14b": f"14.8B, 13.2B non-embedding ({HF}Qwen/Qwen3-14B)",
    "qwen3-235b-a22b": f"235B total, 22B activated, 234B non-embedding ({HF}Qwen/Qwen3-235B-A22B)",
    "qwen3-30b-a3b": f"30.5B total, 3.3B activated, 29.9B non-embedding ({HF}Qwen/Qwen3-30B-A3B)",
    "qwen3-32b": f"32.8B, 31.2B non-embedding ({HF}Qwen/Qwen3-32B)",
    "qwen3-4b": f"4.0B, 3.6B non-embedding ({HF}Qwen/Qwen3-4B)",
    "qwen3-8b": f"8.2B, 6.95B non-embedding ({HF}Qwen/Qwen3-8B)",
    "smollm2-1.7b": f"1.7B ({HF}HuggingFaceTB/SmolLM2-1.7B)",
    "smollm2-135m": f"135M ({HF}HuggingFaceTB/SmolLM2-135M)",
    "smollm2-360m": f"360M ({HF}HuggingFaceTB/SmolLM2-360M)",
    "smollm3-3b": f"3B ({HF}HuggingFaceTB/SmolLM3-3B)",
}


def transformers_config(path: Path) -> dict:
    """The catalogue file as the config transformers is given (see the module docstring)."""
    config = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    config.pop("quantization_config", None)
    tuning = config.get("attn_temperature_tuning")
    if isinstance(tuning, int) and not isinstance(tuning, bool):
        config["attn_temperature_tuning"] = bool(tuning)
    return config


def param_count(config: dict) -> int:
    cfg = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        if config["model_type"] in CAUSAL_LM:
            model = getattr(transformers, CAUSAL_LM[config["model_type"]])(cfg)
        else:
            model = transformers.AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def counts() -> dict:
    transformers.logging.set_verbosity_error()
    names = sorted(path.stem for path in MODELS.glob("*.json"))
    missing = sorted(set(names) - set(PUBLISHED))
    extra = sorted(set(PUBLISHED) - set(names))
    if missing or extra:
        raise SystemExit(f"PUBLISHED out of step with the catalogue: missing {missing}, unknown {extra}")
    return {
        name: {
            "params": param_count(transformers_config(MODELS / f"{name}.json")),
            "transformers_version": transformers.__version__,
            "published": PUBLISHED[name],
        }
        for name in names
    }


def main(argv: list[str]) -> int:
    table = counts()
    text = json.dumps(table, indent=2, sort_keys=True) + "\n"
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.name} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(table)} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
