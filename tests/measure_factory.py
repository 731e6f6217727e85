"""A measurement made up for exact arithmetic: what the profile, comparison and output tests save and read."""

from __future__ import annotations

from llm_roofline.features.measure import experiment, timing
from llm_roofline.features.measure.system import Cache


def synthetic_measurement() -> experiment.Measurement:
    """Figures chosen for exact arithmetic: 40 GB/s DRAM, 200 GFLOP/s fp32."""
    def steady(seconds: float) -> timing.Timing:
        return timing.Timing((seconds,) * 5)

    plan = experiment.Plan(budget_s=1.0, working_sets_bytes=(2**15, 2**28), dram_min_bytes=2**27,
                           precisions=("fp32", "fp16"), gemm_start_n=128, gemm_floor_n=512, gemm_max_n=1024,
                           shape_precision="fp32", shape_n=64, series_k=256, series_m=(1,), min_run_s=0.001)
    bandwidth = (experiment.BandwidthPoint("add", 2**15, 2**15, "L1", 2 * 10**9, 1000, steady(0.01)),
                 experiment.BandwidthPoint("add", 2**28, 2**28, "DRAM", 4 * 10**9, 1, steady(0.1)))
    peaks = (experiment.ComputePeak("fp32", 1024, 2e9, "sgemm", True, steady(0.01)),
             experiment.ComputePeak("fp16", 128, 1e6, "loop", False, steady(0.01)))
    shape = experiment.ShapePoint("gemv-to-gemm", "M=1", 1, 256, 256, "fp32", 2 * 256 * 256.0,
                                  4.0 * (256 + 256 * 256 + 256), 1, 1, steady(0.001))
    return experiment.Measurement(
        host="box", date="2026-01-01T00:00:00+00:00", command="llm-roofline measure", backend="numpy",
        device="cpu", kind="cpu", display_name="Test CPU", threads=2, memory_bytes=2**34,
        library={"numpy": "2.0", "blas": "OpenBLAS 0.3", "blas_kernel": "Haswell"},
        caches=(Cache("L1", 2**15, 1),), plan=plan, bandwidth=bandwidth, peaks=peaks, unavailable={},
        shapes=(shape,), load_before=0.0, neighbours=None, elapsed_s=1.0, warnings=())
