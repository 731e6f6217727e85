"""The chapter's correct worked numbers, each with its derivation (spec sections 2.1.3, 2.1.4, ex. 2.1, 2.2)."""

from __future__ import annotations

import pytest

from llm_roofline import custom_hardware, load_hardware
from llm_roofline.core.ops import gemm
from llm_roofline.core.roofline import attainable_flops_per_s, bound_of
from llm_roofline.features.studies.share import idealized_layer_flops, idealized_ratio, idealized_share


@pytest.mark.parametrize(
    ("device", "precision", "ridge"),
    [
        # Snapdragon 8 Gen 3 GPU: 2 TFLOPS fp16 / 64 GB/s = 2000e9 / 64e9 = 31.25 FLOP/B
        ("snapdragon-8-gen-3-gpu", "fp16", 31.25),
        # Apple M2 GPU: 3.6 TFLOPS fp32 / 100 GB/s = 3600e9 / 100e9 = 36 FLOP/B
        ("apple-m2-gpu", "fp32", 36.0),
        # Jetson Orin NX: 5.3 TFLOPS fp16 / 102.4 GB/s = 5300 / 102.4 = 51.7578 FLOP/B (chapter: ~51.8)
        ("jetson-orin-nx", "fp16", 5300 / 102.4),
    ],
)
def test_chapter_ridge_points(device: str, precision: str, ridge: float) -> None:
    assert load_hardware(device).ridge_point(precision) == pytest.approx(ridge, rel=1e-12)


def test_chapter_device_figures_are_exact() -> None:
    # Chapter 2.1.3, verbatim: the catalogue must carry exactly these figures.
    sd_cpu, sd_gpu = load_hardware("snapdragon-8-gen-3-cpu"), load_hardware("snapdragon-8-gen-3-gpu")
    assert sd_cpu.peak_flops_per_s["fp32"] == 100e9 and sd_cpu.memory_bytes_per_s == 64e9
    assert sd_gpu.peak_flops_per_s["fp16"] == 2e12 and sd_gpu.memory_bytes_per_s == 64e9
    m2_cpu, m2_gpu = load_hardware("apple-m2-cpu"), load_hardware("apple-m2-gpu")
    assert m2_cpu.peak_flops_per_s["fp32"] == 400e9 and m2_cpu.memory_bytes_per_s == 100e9
    assert m2_gpu.peak_flops_per_s["fp32"] == 3.6e12 and m2_gpu.memory_bytes_per_s == 100e9
    orin = load_hardware("jetson-orin-nx")
    assert orin.peak_flops_per_s["fp16"] == 5.3e12 and orin.memory_bytes_per_s == 102.4e9


def test_gemv_example_2_1_4() -> None:
    # [1, 4096] x [4096, 4096] in fp32:
    # FLOPs = 2 * 1 * 4096 * 4096 = 33,554,432 ~ 33.6 MFLOP
    # bytes = (1*4096 + 4096*4096 + 1*4096) * 4 = 67,141,632 ~ 67.1 MB
    # I = 33,554,432 / 67,141,632 = 0.49976 ~ 0.5 FLOP/B
    cost = gemm(1, 1, 4096, 4096, 4, 4, 4)
    assert cost.flops == 33_554_432
    assert cost.bytes == 67_141_632
    assert cost.flops / cost.bytes == pytest.approx(0.49976, abs=1e-5)


def test_exercise_2_1() -> None:
    # Ridge = 1.2e12 / 48e9 = 25 FLOP/B; I = 15 < 25 -> memory-bound at 15 * 48e9 = 720 GFLOP/s.
    device = custom_hardware(48e9, {"fp16": 1.2e12})
    ridge = device.ridge_point("fp16")
    assert ridge == pytest.approx(25.0)
    assert attainable_flops_per_s(15, 1.2e12, 48e9) == pytest.approx(720e9)
    assert bound_of(15, ridge) == "memory"


def test_exercise_2_2() -> None:
    # L = 1024, d = 2048:
    # attention = 8 * 1024 * 2048^2 + 4 * 1024^2 * 2048 = 34.36e9 + 8.59e9 = 42.95e9 ~ 43.0 GFLOP
    # FFN = 16 * 1024 * 2048^2 = 68.72e9 ~ 68.7 GFLOP
    # share = 42.95 / (42.95 + 68.72) = 0.3846 ~ 38.5 %
    attention, ffn = idealized_layer_flops(1024, 2048)
    assert attention == 42_949_672_960
    assert ffn == 68_719_476_736
    assert idealized_share(1024, 2048) == pytest.approx(0.3846, abs=5e-5)
    # The closed-form ratio agrees: 1/2 + 1024 / (4 * 2048) = 0.625 = 42.95 / 68.72
    assert idealized_ratio(1024, 2048) == pytest.approx(attention / ffn)


def test_softmax_flops_are_per_head_erratum_e11() -> None:
    # 2.2.2 writes ~5L² for the softmax; each of the H heads has its own L x L scores: 5·H·L² per layer.
    from llm_roofline import analyze

    softmax = next(op for op in analyze("llama-2-7b", "jetson-orin-nx", phase="prefill", seq_len=2048).ops
                   if op.name == "layer.attn.softmax")
    assert softmax.flops == 5 * 32 * 2048**2 == 32 * (5 * 2048**2)
