"""Analytic parameter counts equal what transformers reports for the same config, exactly."""

from __future__ import annotations

import pytest

from conftest import require_module
from llm_roofline import load_model, model_names
from llm_roofline.inputs.model_files import catalogue_config, model_from_hf_config
from test_flops_vs_torch import CONFIGS

ref = require_module("hf_reference")  # PyTorch and transformers

# Published totals (model cards / papers), an anchor independent of both implementations.
PUBLISHED = {
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    "llama-3-8b": 8_030_261_248,
    "llama-3.1-8b": 8_030_261_248,  # the same architecture as Llama-3-8B
    "mistral-7b": 7_241_732_096,
    "gpt2": 124_439_808,
}


@pytest.mark.parametrize("name", model_names())
def test_catalogue_params_equal_transformers(name: str) -> None:
    assert load_model(name).params == ref.param_count(catalogue_config(name))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_catalogue_params_equal_published(name: str) -> None:
    assert load_model(name).params == PUBLISHED[name]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_small_config_params_equal_transformers(name: str) -> None:
    assert model_from_hf_config(CONFIGS[name]).params == ref.param_count(CONFIGS[name])
