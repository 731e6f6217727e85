"""Elementwise fusion (Workload.fuse = "elementwise"): norms, RoPE, the gated activation, residual adds,
soft-capping and scaling run inside their neighbouring matmul, so their activation reads and writes are
no DRAM traffic; their FLOPs and weights stay, and so do the reads the matmul does not do for them (a
residual add's residual stream, RoPE's cos/sin rows)."""

from __future__ import annotations

import json

import pytest

from llm_roofline import Workload, analyze
from llm_roofline.faces.cli.main import main
from llm_roofline.features.studies.transition import WHOLE_STEP, critical_batch


def test_the_bytes_fusion_saves_on_llama_2_7b_decode_by_hand() -> None:
    # Batch 1, one new token, d = 4096, intermediate 11008, 32 + 32 heads of 128, fp16 (a = 2 B). Per layer:
    #   attn_norm, mlp_norm: x read and normed x written, 2 x 4096 x 2 B            = 16,384 B each
    #   rope: q and k (64 x 128 = 8192 values) read and written, 2 x 8192 x 2 B     = 32,768 B
    #         (its cos/sin rows, 2 x 128 x 2 B, are still read)
    #   attn_residual, mlp_residual: the sublayer output read and the sum written, 2 x 4096 x 2 B = 16,384 B each
    #         (the residual stream, 4096 x 2 B, is still read)
    #   act (SwiGLU): gate and up read, 2 x 11008 x 2 B, product written, 11008 x 2 B = 66,048 B
    # = 164,352 B x 32 layers + the final norm's 16,384 B = 5,275,648 B. FLOPs and weight bytes unchanged.
    plain = analyze("llama-2-7b", "jetson-orin-nx", Workload(seq_len=1024)).totals
    fused = analyze("llama-2-7b", "jetson-orin-nx", Workload(seq_len=1024, fuse="elementwise")).totals
    assert plain.bytes - fused.bytes == 5_275_648
    assert (fused.flops, fused.weight_bytes, fused.kv_read_bytes) == (plain.flops, plain.weight_bytes,
                                                                      plain.kv_read_bytes)


def test_fusion_moves_the_decode_crossing_toward_the_weights_and_kv_estimate() -> None:
    # Llama-2-7B on the Orin NX, 128 cached tokens: unfused the whole step turns compute-bound at batch
    # 75; counting only weight and KV-cache bytes (the chapter's estimate) at 71; fused, in between: 73.
    def crossing(fuse: str) -> int | None:
        points = critical_batch(*_llama_on_orin(), Workload(seq_len=128, fuse=fuse))
        return next(p for p in points if p.name == WHOLE_STEP).critical

    assert (crossing("none"), crossing("elementwise")) == (75, 73)
    for batch in (70, 71):
        totals = analyze("llama-2-7b", "jetson-orin-nx", batch=batch, seq_len=128).totals
        weights_and_kv = totals.flops / (totals.weight_bytes + totals.kv_read_bytes + totals.kv_write_bytes)
        assert (weights_and_kv >= totals.ridge_flop_per_byte) == (batch == 71)


def _llama_on_orin() -> tuple[object, object]:
    from llm_roofline import load_hardware, load_model

    return load_model("llama-2-7b"), load_hardware("jetson-orin-nx")


def test_a_fused_operator_that_moves_nothing_has_no_intensity_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--fuse", "elementwise", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    act = next(op for op in data["ops"] if op["name"] == "layer.mlp.act")
    assert act["bytes"] == 0 and act["flops"] > 0 and act["arithmetic_intensity"] is None
    assert act["bound"] == "compute" and data["workload"]["fuse"] == "elementwise"


@pytest.mark.parametrize("args", [["sweep", "-b", "8", "-l", "128", "-o", "-"],
                                  ["whatif", "--vary", "fuse=elementwise"]])
def test_the_sweep_and_whatif_take_fusion(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    fused = analyze("llama-2-7b", "jetson-orin-nx", Workload(batch=8, seq_len=128, fuse="elementwise")).totals
    if args[0] == "sweep":
        assert main([*args, "--fuse", "elementwise"]) == 0
        header, row = capsys.readouterr().out.strip().splitlines()
        columns = dict(zip(header.split(","), row.split(","), strict=True))
        assert float(columns["bytes"]) == pytest.approx(fused.bytes, rel=1e-12)
    else:
        assert main([*args, "-b", "8", "-l", "128"]) == 0
        assert "fuse=elementwise: elementwise operators inside the neighbouring matmul" in capsys.readouterr().out


def test_the_web_api_takes_fusion() -> None:
    from fastapi.testclient import TestClient

    from llm_roofline.faces.web.app import create_app

    with TestClient(create_app()) as client:
        result = client.post("/api/analyze", json={"seq_len": 1024, "fuse": "elementwise"}).json()["results"][0]
    expected = analyze("llama-2-7b", "jetson-orin-nx", Workload(seq_len=1024, fuse="elementwise"))
    assert result["totals"]["bytes"] == expected.totals.bytes
    assert result["workload"]["fuse"] == "elementwise"
