"""The scalar path: one configuration priced in plain Python, without numpy, and equal to the array path.

``analyze`` evaluates a step plan's coefficients through a compiled Python function (core/compiled.py,
roofline._step_source); the sweep evaluates the same coefficients as numpy arrays. These tests hold the
two to each other and to the operator-by-operator roofline (``evaluate_op``), and check that the CLI's
scalar commands never load numpy (issue 16: numpy costs 0.2 s of a 0.25 s start).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from llm_roofline import Workload, analyze, load_hardware, load_model
from llm_roofline.core import compiled
from llm_roofline.core.efficiency import expected_time_s, params_for, step_cost
from llm_roofline.core.roofline import evaluate_op
from llm_roofline.core.transformer import COST_FIELDS, step_counts, step_ops, workload_plan
from llm_roofline.inputs.model_files import model_names

# Every command the CLI answers from the formulas alone: none may import numpy.
SCALAR_COMMANDS = (
    ["analyze"],
    ["analyze", "-m", "mixtral-8x7b", "-H", "nvidia-a100-80gb-sxm", "--phase", "prefill", "--seq-len", "4096",
     "--format", "json"],
    ["hardware"],
    ["models"],
    ["formats"],
    ["matmul", "--m", "1", "--n", "4096", "--k", "4096"],
    ["roofline", "-H", "jetson-orin-nx"],
    ["share"],
    ["transition"],
    ["fit"],
    ["whatif", "--vary", "weights=fp16,int4"],
    ["feasibility", "--target-ms", "50"],
    ["requirements", "--tokens-per-s", "20"],
    ["scaling", "--model", "llama-2-7b", "llama-2-13b"],
    ["energy"],
)


def test_scalar_commands_never_import_numpy() -> None:
    """``import llm_roofline.cli`` and a scalar ``analyze`` leave numpy out of ``sys.modules``; so does each
    scalar command, run in one fresh interpreter (a command that fails its arguments fails the test)."""
    script = textwrap.dedent(f"""
        import contextlib, io, json, sys
        import llm_roofline.cli
        from llm_roofline import analyze
        analyze("llama-2-7b", "jetson-orin-nx", phase="decode", batch=4, seq_len=2048).to_dict()
        loaded = {{"api": "numpy" in sys.modules}}
        for argv in {SCALAR_COMMANDS!r}:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                try:
                    status = llm_roofline.cli.main(argv)
                except SystemExit as stop:
                    status = stop.code
            loaded[" ".join(argv)] = ("numpy" in sys.modules, status, len(out.getvalue()))
        print(json.dumps(loaded))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    assert loaded.pop("api") is False
    for command, (numpy_loaded, status, printed) in loaded.items():
        assert status == 0 and printed > 0, command
        assert numpy_loaded is False, f"`llm-roofline {command}` imported numpy"


@pytest.mark.parametrize("name", model_names())
def test_compiled_costs_equal_the_coefficient_product(name: str) -> None:
    """A step's costs in plain Python equal numpy's coefficients · (1, *counts), field by field."""
    model = load_model(name)
    rng = random.Random(name)
    for _ in range(10):
        workload = Workload(phase=rng.choice(["prefill", "decode"]), batch=rng.randint(1, 512),
                            seq_len=rng.randint(1, 30_000), weights=rng.choice(["fp16", "int4", "q4_k_m", None]),
                            flash_attention=rng.random() < 0.5)
        plan = workload_plan(model, workload)
        counts = step_counts(model, workload.batch, workload.q_len, workload.past_len, workload.skips_masked_scores)
        scalar = np.array(plan.costs(counts))
        vector = plan.coefficients.dot(np.array((1.0, *counts), dtype=np.float64))
        assert scalar.shape == (len(COST_FIELDS), len(plan.names))
        np.testing.assert_allclose(scalar, vector, rtol=1e-13, atol=0)


@pytest.mark.parametrize("device", ["jetson-orin-nx", "nvidia-a100-80gb-sxm", "apple-m2-max-gpu"])
@pytest.mark.parametrize("name", ["llama-2-7b", "mixtral-8x7b", "gemma-2-2b", "deepseek-v3", "mistral-7b"])
def test_compiled_step_equals_the_operator_roofline(name: str, device: str) -> None:
    """``analyze``'s records and totals, from the compiled step, equal each operator priced on its own by
    ``evaluate_op`` (the ``roofline`` function) and the efficiency model's ``expected_time_s``."""
    model, hardware = load_model(name), load_hardware(device)
    rng = random.Random(f"{name} {device}")
    for _ in range(8):
        workload = Workload(phase=rng.choice(["prefill", "decode"]), batch=rng.randint(1, 64),
                            seq_len=rng.randint(1, 8192), weights=rng.choice(["fp16", "int4", "q8_0"]))
        result = analyze(model, hardware, workload)
        direct = [evaluate_op(op, hardware) for op in step_ops(model, result.workload)]
        assert [op[:4] for op in result.ops] == [op[:4] for op in direct]
        for got, want in zip(result.ops, direct, strict=True):
            assert got.bound == want.bound and got.precision == want.precision, got.name
            assert got.peak_precision == want.peak_precision
            for field in ("flops", "bytes", "weight_bytes", "kv_read_bytes", "arithmetic_intensity",
                          "attainable_flops_per_s", "compute_time_s", "memory_time_s", "time_s"):
                assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-12), (got.name, field)
        totals = result.totals
        assert totals.time_s == pytest.approx(sum(op.time_s * op.count for op in direct), rel=1e-12)
        assert totals.flops == pytest.approx(sum(op.flops * op.count for op in direct), rel=1e-12)
        cost = step_cost(result.ops, result.workload.weight_scheme(model), result.workload.activation_format,
                         model.tied_embeddings)
        assert totals.expected_time_s == pytest.approx(expected_time_s(cost, params_for(hardware)), rel=1e-12)


def test_the_records_are_built_once_when_read() -> None:
    first = analyze("llama-2-7b", "jetson-orin-nx")
    assert first.ops is first.ops and len(first.ops) == 19
    assert first == analyze("llama-2-7b", "jetson-orin-nx")  # equal analyses: equal model, device, workload, totals
    assert first.to_dict()["ops"][0]["name"] == "embed"


def test_a_probe_refuses_to_branch_and_broadcasts_numbers() -> None:
    probe = compiled.probes(2)
    assert probe[0] == (0.0, 1.0, 0.0, 3.0, 4.1e3) and probe[1] == (0.0, 0.0, 1.0, 7.0, 2.9e6)
    assert 2 * probe[0] + 1 == (1.0, 3.0, 1.0, 7.0, 8201.0)
    with pytest.raises(compiled.NotAffineError):
        bool(probe[0])
    with pytest.raises(compiled.NotAffineError):
        compiled.coefficients(compiled.at_probes(probe[0] * probe[1], 2), 2)  # a product of counts
    assert compiled.coefficients(compiled.at_probes(5 + 2 * probe[1], 2), 2) == (5.0, 0.0, 2.0)
    assert compiled.affine_source((5.0, 0.0, 2.0), ["a", "b"]) == "5.0 + 2.0 * b"
    assert compiled.affine_source((0.0, 0.0, 0.0), ["a", "b"]) == "0.0"


@pytest.mark.parametrize("name", ["llama-2-7b", "mixtral-8x7b", "deepseek-v3", "gemma-2-2b", "gpt-oss-20b"])
def test_the_footprint_of_a_rectangle_equals_each_deployment(name: str) -> None:
    """A grid's footprint (batches as a column, contexts as a row: the sweep's rectangles, where a peak linear
    in the batch is computed over the contexts alone) equals the footprint of each deployment on its own."""
    from llm_roofline.core.memory import grid_footprint_bytes
    from llm_roofline.core.quant import weight_scheme

    model = load_model(name)
    fp16 = Workload().activation_format
    scheme = weight_scheme(model, "q4_k_m")
    batch = np.array([1.0, 3.0, 64.0, 1000.0])[:, None]
    context = np.array([1.0, 2.0, 511.0, 512.0, 513.0, 4097.0, 100_000.0])[None, :]
    for flash in (False, True):
        _, kv, act, total = grid_footprint_bytes(model, scheme, fp16, fp16, flash, flash, False, None, batch, context)
        assert np.shape(total) == (4, 7)
        for i, b in enumerate(batch[:, 0]):
            for j, c in enumerate(context[0]):
                _, kv_one, act_one, total_one = grid_footprint_bytes(model, scheme, fp16, fp16, flash, flash, False,
                                                                     None, int(b), int(c))
                assert act[i, j] == pytest.approx(act_one, rel=1e-12)
                assert np.broadcast_to(kv, (4, 7))[i, j] == pytest.approx(kv_one, rel=1e-12)
                assert total[i, j] == pytest.approx(total_one, rel=1e-12)
