"""The sweep's pricing by groups of operators equals the straightforward one (every operator at every point,
then summed), on whole grids chunked every way; and its chunks are the grid's points in the meshgrid's order."""

from __future__ import annotations

import random

import numpy as np
import pytest

from llm_roofline import InputError, hardware_names, load_hardware, model_names
from llm_roofline.core.efficiency import expected_step_time_s, params_for, plan_dequantizes
from llm_roofline.core.formats import get_format
from llm_roofline.core.hardware import HardwareSpec
from llm_roofline.core.memory import grid_footprint_bytes
from llm_roofline.core.roofline import roofline, step_time
from llm_roofline.core.transformer import (
    COST_FIELDS,
    mla_absorbed,
    over_operators,
    phase_lengths,
    step_counts,
    step_math,
    step_plan,
)
from llm_roofline.features.sweep import _Block, _blocks, _Points, evaluate_grid, grid_points, make_spec

RTOL = 1e-12  # the groups' sums are the same terms added in another order (measured within 1e-14)


def _usable(devices: list[str], activations: str) -> bool:
    try:
        for device in devices:
            load_hardware(device).peak_for(get_format(activations).math)
            load_hardware(device).peak_for("fp16")
    except InputError:
        return False
    return True


def _straightforward(block: _Block, causal_skip: bool | None, lm_head: str, fuse: str) -> dict[str, np.ndarray]:
    """The totals of a block as the sweep computed them before it grouped operators: every operator's FLOPs and
    bytes at every point from the plan, its roofline on every device, then the sums over the operators."""
    devices: tuple[HardwareSpec, ...] = block.devices
    batch, seq_len = block.grid.points.pairs()
    skip = block.flash_attention if causal_skip is None else causal_skip
    plan = step_plan(block.model, block.scheme, block.activations, block.kv_format, block.flash_attention,
                     lm_head == "all", mla_absorbed(block.phase, None), fuse == "elementwise")
    q_len, past_len = phase_lengths(block.phase, seq_len)
    costs = plan.costs(step_counts(block.model, batch, q_len, past_len, skip))
    op_flops, op_bytes = costs[0], costs[COST_FIELDS.index("bytes")]
    peaks = np.array([[d.peak_for(math)[1] for d in devices] for math in plan.maths])[:, :, None]
    bandwidth = np.array([[d.memory_bytes_per_s] for d in devices])
    line = roofline(op_flops[:, None], op_bytes[:, None], peaks, bandwidth)
    step = step_time(line, plan.instance_weights)
    params = [column[:, None] for column in np.array([params_for(d).values() for d in devices]).T]
    expected = expected_step_time_s(line.compute_time_s, line.memory_time_s, plan_dequantizes(plan),
                                    plan.instance_weights, params)
    flops, moved = over_operators(op_flops, plan.instance_weights), over_operators(op_bytes, plan.instance_weights)
    _, kv, act, total = grid_footprint_bytes(block.model, block.scheme, block.activations, block.kv_format,
                                             block.flash_attention, skip, lm_head == "all", None, batch,
                                             past_len + q_len, fuse_elementwise=fuse == "elementwise")
    ridge = np.array([[d.peak_for(step_math(block.activations, block.scheme))[1] / d.memory_bytes_per_s]
                      for d in devices])
    return {"time_s": step.time_s, "compute_bound_time_s": step.compute_bound_time_s, "expected_time_s": expected,
            "flops": flops, "bytes": moved, "kv_cache_bytes": kv, "activation_bytes": act, "memory_bytes": total,
            "tokens": batch * q_len, "ridge_bytes": ridge * moved[None, :]}


def test_grouped_pricing_equals_every_operator_at_every_point() -> None:
    rng = random.Random(20261203)
    devices_all, models = hardware_names(), model_names()
    checked = 0
    for case in range(len(models) + 20):
        # Every catalogue model once, then random ones; lists with repeats and constant lists; chunks that cut rows.
        model = models[case] if case < len(models) else rng.choice(models)
        devices = rng.sample(devices_all, rng.randint(1, 3))
        activations = rng.choice(["fp16", "bf16", "fp32", "int8"])
        if not _usable(devices, activations):
            continue
        batch = [rng.randint(1, 600) for _ in range(rng.randint(1, 9))]
        seq_len = [rng.randint(1, 9000) for _ in range(rng.randint(1, 9))]
        if case % 5 == 0:
            seq_len = [seq_len[0]] * len(seq_len)
        if case % 7 == 0:
            batch = [batch[0]] * len(batch)
        causal, lm_head = rng.choice([None, True, False]), rng.choice(["last", "all"])
        fuse, sparsity = rng.choice(["none", "elementwise"]), rng.choice(["none", "none", "2:4"])
        spec = make_spec([model], devices, batch, seq_len, phases=["prefill", "decode"],
                         weights=[rng.choice(["fp16", "int4", "q4_k_m", "int8", None])], activations=[activations],
                         kv_cache=[rng.choice([None, "fp8", "int8"])], flash_attention=[rng.random() < 0.5],
                         causal_skip=causal, lm_head=lm_head, fuse=fuse, sparsity=sparsity)
        chunk = rng.choice([1, 3, 7, len(seq_len) * 2 + 1, 64, 1 << 16]) * len(devices)
        for block in _blocks(spec, chunk):
            grid, expected = block.grid, _straightforward(block, causal, lm_head, fuse)
            for name in ("time_s", "compute_bound_time_s", "expected_time_s", "flops", "bytes", "kv_cache_bytes",
                         "activation_bytes", "memory_bytes"):
                np.testing.assert_allclose(getattr(grid, name), expected[name], rtol=RTOL, atol=0, err_msg=name)
            assert np.array_equal(grid.tokens, expected["tokens"])
            # The bound may differ only at a tie that rounding decides (intensity at the ridge to 1e-12).
            tie = np.isclose(grid.flops[None, :], expected["ridge_bytes"], rtol=RTOL, atol=0)
            assert np.array_equal(grid.compute_bound | tie, (grid.flops[None, :] >= expected["ridge_bytes"]) | tie)
            checked += grid.time_s.size
    assert checked > 3000


def test_a_block_holds_the_grid_points_in_the_meshgrid_order() -> None:
    rng = np.random.default_rng(7)
    for rows, columns, size in [(1, 1, 1), (3, 5, 4), (7, 3, 5), (4, 6, 24), (5, 4, 1000), (9, 1, 2), (2, 9, 4),
                                (6, 7, 13)]:
        batch, seq_len = rng.integers(1, 5000, rows), rng.integers(1, 5000, columns)
        total = rows * columns
        for (expected_batch, expected_seq), start in zip(grid_points(batch, seq_len, size), range(0, total, size),
                                                         strict=True):
            points = _Points(batch, seq_len, start, min(start + size, total))
            pieces = list(points.rectangles())
            made = [(np.broadcast_to(b, (b.shape[0], s.shape[1])).ravel(),
                     np.broadcast_to(s, (b.shape[0], s.shape[1])).ravel()) for _, b, s in pieces]
            assert len(pieces) <= 3  # a partial row, whole rows, a partial row
            assert [offset for offset, _, _ in pieces] == list(np.cumsum([0, *(len(b) for b, _ in made)])[:-1])
            assert np.array_equal(np.concatenate([b for b, _ in made]), expected_batch)
            assert np.array_equal(np.concatenate([s for _, s in made]), expected_seq)


def test_evaluate_grid_on_parallel_points_with_a_constant_batch() -> None:
    # The timeline's use: one batch, a run of contexts. The batch's counts do not vary, so the operators that
    # depend on them alone are priced once; the totals are those of every operator at every point.
    spec = make_spec(["llama-3.1-8b"], ["nvidia-l4"], [3], [1])
    model, device = spec.models[0], spec.hardware[0]
    cached = np.arange(100, 400)
    fp16 = get_format("fp16")
    grid = evaluate_grid(model, [device], "decode", np.full(cached.shape, 3), cached, fp16, fp16, fp16, False)
    one_by_one = [evaluate_grid(model, [device], "decode", np.array([3]), np.array([c]), fp16, fp16, fp16, False)
                  for c in cached[::37]]
    assert grid.time_s[0, ::37] == pytest.approx([g.time_s[0, 0] for g in one_by_one], rel=RTOL)
    assert grid.expected_time_s[0, ::37] == pytest.approx([g.expected_time_s[0, 0] for g in one_by_one], rel=RTOL)
    assert grid.memory_bytes[::37] == pytest.approx([g.memory_bytes[0] for g in one_by_one], rel=RTOL)
    assert len(grid.op_time_s) == len(grid.ops) == len(grid.plan.names)
