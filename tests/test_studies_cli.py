"""The studies' commands: JSON with raw SI numbers, readable tables, one-line errors with exit status 2."""

from __future__ import annotations

import json

import pytest

from llm_roofline.faces.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    code, out, err = run(capsys, *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_share_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "share", "-l", "1024", "4096", "--target-share", "0.4")
    assert [r["seq_len"] for r in data["rows"]] == [1024, 4096]
    row = data["rows"][0]
    assert isinstance(row["attention_flops"], float) and 0 < row["share"] < 1
    assert row["recommendation"]["focus"] in ("FFN first", "balanced", "attention first")
    assert isinstance(data["crossover_seq_len"], int)


def test_transition_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "transition", "--qk-batches", "1", "--qk-lengths", "128")
    q_proj = next(p for p in data["decode_batch"] if p["name"] == "layer.attn.q_proj")
    assert q_proj["critical"] == 54 and q_proj["ridge_flop_per_byte"] == pytest.approx(51.7578125)
    assert data["decode_batch"][-1]["name"] == "whole step"
    assert len(data["qk"]) == 1 and len(data["precisions"]) == 4


def test_timeline_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "timeline", "-P", "128", "-T", "100", "--samples", "3", "--all-steps")
    assert data["totals"]["new_tokens"] == 101
    assert [s["step"] for s in data["samples"]] == [1, 50, 100]
    assert len(data["per_step"]["step_time_s"]) == 100
    assert sum(data["per_step"]["step_time_s"]) == pytest.approx(data["totals"]["decode_time_s"])


def test_requirements_json_exercise_2_3(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "requirements", "--params", "3e9", "-w", "int8", "--tokens-per-s", "10")
    assert data["bytes_per_s"] == 30e9  # 3 GB x 10 tokens/s


def test_feasibility_json_exercise_2_6(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "feasibility", "--params", "7e9", "--bandwidth-gb-s", "50", "--peak-tflops", "2",
                    "--target-ms", "100", "--formats", "fp16", "int4")
    assert [f["time_per_token_s"] for f in data["formats"]] == [pytest.approx(0.28), pytest.approx(0.07)]
    assert data["remedies"][0]["meets"] is True
    assert {r["kind"] for r in data["remedies"]} >= {"weights", "device", "speculative", "batching"}


def test_scaling_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "scaling", "--params", "7e9", "70e9", "--formats", "fp16")
    assert [r["weight_bytes"] for r in data] == [14e9, 140e9]


def test_whatif_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "whatif", "--vary", "kv-heads=8,1", "--vary", "flash-attention=on")
    assert [v["label"] for v in data["variants"]] == ["kv-heads=8", "kv-heads=1", "flash-attention=on"]
    assert data["variants"][0]["kv_cache_ratio"] == 0.25


def test_energy_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "energy")
    assert data["data_movement_j"] + data["arithmetic_j"] == pytest.approx(data["total_j"])
    assert "Horowitz" in data["coefficients"]["memory"]["source"]
    assert set(data["coefficients"]["arithmetic"]) == {"fp16"}


@pytest.mark.parametrize(
    "command",
    [
        ["share"], ["share", "--hidden-size", "2048", "-l", "1024"], ["transition", "-l", "128"],
        ["timeline", "-T", "20"], ["requirements", "--tokens-per-s", "5", "-H", "jetson-orin-nx"],
        ["feasibility", "--target-ms", "100"], ["scaling"], ["whatif", "--vary", "batch=4"], ["energy"],
    ],
)
def test_tables_have_no_trailing_blanks(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, err = run(capsys, *command)
    assert code == 0, err
    assert out.strip() and all(line == line.rstrip() for line in out.splitlines())


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["share", "--target-share", "1"], "strictly between 0 and 1"),
        (["share", "--target-share", "1.5"], "argument --target-share: expected a number > 0 and <= 1"),
        (["share", "-l", "-4"], "expected an integer from 1 to 16777216"),
        (["feasibility", "--target-ms", "0"], "expected a number from 0.001 to 1e+09"),
        (["requirements", "--params", "3e9", "--tokens-per-s", "10", "--bandwidth-gb-s", "0", "--peak-tflops", "1"],
         "expected a number from 0.001 to 1e+09"),
        (["requirements", "--tokens-per-s", "10000", "-H", "jetson-orin-nx"], "impossible"),
        (["timeline", "--steps", "-5"], "expected an integer from 1 to 262144"),
        (["transition", "--compare", "int4"], "WEIGHTS/ACTIVATIONS"),
        (["whatif", "--vary", "kv-heads=3"], "multiple of"),
        (["whatif", "--vary", "colour=blue"], "unknown knob"),
        (["energy", "--memory-technology", "hbm9"], "unknown memory technology"),
        (["scaling", "-m", "llama-7b"], "unknown model"),
        (["feasibility", "--target-ms", "100", "--draft-cost-ratio", "1"], "draft cost ratio"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], command: list[str],
                                          message: str) -> None:
    code, out, err = run(capsys, *command)
    assert code == 2 and out == ""
    assert err.startswith("llm-roofline: error: ") and err.count("\n") == 1
    assert message in err
