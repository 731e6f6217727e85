"""Independent references from PyTorch and transformers: real models built from configs.

Imported only by the tests that need torch; the package itself never imports these libraries.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

transformers.logging.set_verbosity_error()


def build(config: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    """A randomly initialised causal LM from a config dict, with eager attention and eager experts (each
    expert's matmul on its routed tokens, which FlopCounterMode counts; the grouped_mm kernel is not in its
    registry)."""
    cfg = transformers.AutoConfig.for_model(**config)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager",
                                                          experts_implementation="eager")
    return model.eval()


def param_count(config: dict[str, Any]) -> int:
    """Parameters as transformers counts them (shared tensors once), without allocating weights."""
    config = dict(config)
    config.pop("quantization_config", None)  # gpt-oss: build the bf16 model (the same parameters)
    if isinstance(config.get("attn_temperature_tuning"), int):  # Llama 4's Hub config says 4; 5.23 wants a bool
        config["attn_temperature_tuning"] = bool(config["attn_temperature_tuning"])
    cfg = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def _count(fn: Any) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@torch.no_grad()
def prefill_flops(model: torch.nn.Module, batch: int, prompt_len: int, last_token_only: bool) -> int:
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt_len))
    keep = 1 if last_token_only else 0
    return _count(lambda: model(input_ids=ids, use_cache=False, logits_to_keep=keep))


@torch.no_grad()
def decode_step_flops(model: torch.nn.Module, batch: int, cached_len: int) -> int:
    """FLOPs of one decode step: one new token per sequence against ``cached_len`` cached tokens.

    The cache is the model's own kind, made from its config (sliding-window layers keep their window):
    the prefill fills it, the counted step reads it.
    """
    cache = transformers.DynamicCache(config=model.config)
    ids = torch.randint(0, model.config.vocab_size, (batch, cached_len))
    model(input_ids=ids, past_key_values=cache, use_cache=True)
    assert cache.get_seq_length() == cached_len
    new = torch.randint(0, model.config.vocab_size, (batch, 1))
    return _count(lambda: model(input_ids=new, past_key_values=cache, use_cache=True))
