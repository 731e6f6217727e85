"""The step plan: the formulas of ops.py as coefficients of the step counts.

``analyze()``, ``step_ops`` and the sweep price a step as ``coefficients · (1, *counts)``. These tests
hold that product to the formulas themselves, evaluated directly at the same counts, for every
catalogue model and many random steps, and check that a formula that is not affine is refused.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from llm_roofline import get_format, load_model
from llm_roofline import ops as cost_formulas
from llm_roofline.core.formats import WeightScheme
from llm_roofline.core.quant import weight_scheme
from llm_roofline.core.transformer import (
    COST_FIELDS,
    _operators,
    step_counts,
    step_plan,
)
from llm_roofline.core.units import minimum
from llm_roofline.inputs.model_files import model_names


@pytest.mark.parametrize("name", model_names())
def test_plan_equals_the_formulas_evaluated_directly(name: str) -> None:
    model = load_model(name)
    rng = random.Random(name)
    for _ in range(40):
        weights = rng.choice(["fp16", "int4", "q4_k_m", "q8_0", "fp8", None])
        activations, kv = get_format(rng.choice(["fp16", "fp32", "int8"])), get_format(rng.choice(["fp16", "int8"]))
        flash, causal, lm_all = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5
        batch, seq = rng.randint(1, 256), rng.randint(1, 40_000)
        q_len, past = (seq, 0) if rng.random() < 0.5 else (rng.randint(1, 8), seq)
        scheme = weight_scheme(model, weights)
        counts = step_counts(model, batch, q_len, past, causal)
        direct = _operators(model, counts, scheme, activations, kv, flash, lm_all)
        plan = step_plan(model, scheme, activations, kv, flash, lm_all)
        planned = plan.ops(step_counts(model, batch, q_len, past, causal))
        assert [op[:4] + op[5:] for op in planned] == [op[:4] + op[5:] for op in direct]
        for got, want in zip(planned, direct, strict=True):
            assert got.cost == pytest.approx(tuple(float(v) for v in want.cost), rel=1e-12, abs=0), got.name


def test_counts_of_a_step() -> None:
    llama = load_model("llama-2-7b")
    # decode, 4 sequences of 100 cached tokens + 1 new: 101 keys each; causal pairs 1 x 100 + 1 = 101
    assert step_counts(llama, 4, 1, 100, True) == (4, 4, 404, 404)  # sequences, tokens, keys, scores
    # prefill of 10 tokens, full pairs 10 x 10 against causal 55
    assert step_counts(llama, 2, 10, 0, False).scores(("full", 0)) == 200
    assert step_counts(llama, 2, 10, 0, True).scores(("full", 0)) == 110
    mistral = load_model("mistral-7b")  # every layer has a 4096-token window: only the window counts
    window = step_counts(mistral, 1, 1, 10_000, True)
    assert window.layout.spans == (("window", 4096),) and window.keys(("window", 4096)) == 4096
    mixtral = load_model("mixtral-8x7b")
    assert step_counts(mixtral, 1, 1, 10, True).experts_touched((8, 2)) == pytest.approx(2.0)  # one token: k experts
    gemma2 = load_model("gemma-2-2b")  # windowed and global layers alternate: keys and scores for each span
    both = step_counts(gemma2, 1, 1, 10_000, True)
    assert both.keys(("full", 0)) == 10_001 and both.keys(("window", 4096)) == 4096


def test_plan_arrays_equal_plan_numbers() -> None:
    model = load_model("qwen2.5-0.5b")
    plan = step_plan(model, get_format("fp16"), get_format("fp16"), get_format("fp16"), False, False)
    batch, past = np.array([1, 7, 64]), np.array([10, 500, 9000])
    grid = plan.costs(step_counts(model, batch, np.ones(3, dtype=np.int64), past, True))
    assert grid.shape == (len(COST_FIELDS), len(plan.names), 3)
    for j in range(3):
        single = plan.costs(step_counts(model, int(batch[j]), 1, int(past[j]), True))
        np.testing.assert_array_equal(grid[:, :, j], single)
    # the bytes row is the sum of the five byte categories
    np.testing.assert_allclose(grid[-1], grid[1:-1].sum(axis=0), rtol=1e-15)


@pytest.mark.parametrize("work", [
    lambda tokens: tokens * tokens,  # quadratic
    lambda tokens: minimum(tokens, 1000),  # affine over the small counts, clamped above them
])
def test_a_formula_that_is_not_affine_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                 work: Callable[[float], float]) -> None:
    def residual_add(tokens: float, width: int, act_bytes: float, **_: Any) -> cost_formulas.OpCost:
        return cost_formulas.OpCost(flops=work(tokens) * width, act_read_bytes=tokens * width * act_bytes)

    monkeypatch.setattr(cost_formulas, "residual_add", residual_add)
    monkeypatch.setitem(cost_formulas._BY_FUNCTION, residual_add, cost_formulas.FORMULAS["residual_add"])
    model = dataclasses.replace(load_model("llama-3.2-1b"), name="not-cached")  # a plan not built before
    fp16 = get_format("fp16")
    with pytest.raises(ValueError, match=r"layer\.attn_residual.*not affine"):
        step_plan(model, WeightScheme.uniform(fp16), fp16, fp16, False, False)
