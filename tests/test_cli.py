"""The command line: documented examples, the JSON contract, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llm_roofline.faces.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_default_analysis_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze")
    assert code == 0
    assert "Llama-2-7B" in out and "Jetson Orin NX" in out
    assert "layer.mlp.down_proj" in out and "tokens/s" in out


def test_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", "-m", "llama-3-8b", "-H", "nvidia-a100-80gb-sxm", "--phase", "prefill",
                       "--batch", "2", "--seq-len", "512", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["model"]["params"] == 8_030_261_248
    for key in ("flops", "bytes", "arithmetic_intensity", "time_s", "tokens_per_s", "weight_bytes",
                "kv_cache_bytes"):
        assert isinstance(data["totals"][key], (int, float)), key
    kinds = {op["name"]: op["kind"] for op in data["ops"]}
    for name in ("layer.attn.q_proj", "layer.attn.qk", "layer.attn.sv", "layer.mlp.down_proj", "lm_head"):
        assert kinds[name] == "matmul"
    assert kinds["layer.attn.softmax"] != "matmul"
    for op in data["ops"]:
        assert {"name", "kind", "count", "flops", "bytes", "arithmetic_intensity", "bound", "time_s"} <= set(op)
    # An operator's share of the totals is its figures x count.
    assert sum(op["flops"] * op["count"] for op in data["ops"]) == pytest.approx(data["totals"]["flops"])
    assert sum(op["time_s"] * op["count"] for op in data["ops"]) == pytest.approx(data["totals"]["time_s"])
    # Prefill tokens/s = batch x prompt / time.
    assert data["totals"]["tokens_per_s"] == pytest.approx(2 * 512 / data["totals"]["time_s"])


def test_csv_has_raw_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", "--format", "csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("name,kind,group,count,flops,bytes")
    lm_head = next(line for line in lines if line.startswith("lm_head,"))
    float(lm_head.split(",")[4])  # raw SI number, not "262 MFLOP"
    assert lines[-1].startswith("total,")


@pytest.mark.parametrize("command", ["hardware", "models"])
def test_catalogue_listings(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--format", "json")
    assert code == 0
    entries = json.loads(out)
    assert all("name" in e for e in entries)
    code, table, _ = run(capsys, command)
    assert code == 0 and entries[0]["name"] in table


def test_matmul_calculator_gemv(capsys: pytest.CaptureFixture[str]) -> None:
    # Chapter 2.1.4: 33.6 MFLOP, 67.1 MB, 0.5 FLOP/B, memory-bound on any edge device.
    code, out, _ = run(capsys, "matmul", "--m", "1", "--k", "4096", "--n", "4096", "--precision", "fp32",
                       "-H", "apple-m2-gpu", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert data["flops"] == 33_554_432 and data["bytes"] == 67_141_632
    assert data["bound"] == "memory" and data["ridge_point"] == pytest.approx(36.0)


def test_roofline_exercise_2_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "roofline", "--peak-tflops", "1.2", "--bandwidth-gb-s", "48", "-i", "15",
                       "--format", "json")
    ceiling = json.loads(out)["ceilings"][0]
    assert code == 0
    assert ceiling["ridge_point"] == pytest.approx(25.0)
    assert ceiling["points"][0]["attainable_flops_per_s"] == pytest.approx(720e9)
    assert ceiling["points"][0]["bound"] == "memory"


BAD_INPUTS = {
    "unknown model": (["analyze", "-m", "llama-7b"], "did you mean"),
    "unknown device": (["analyze", "-H", "jetson-orin"], "did you mean"),
    "zero batch": (["analyze", "--batch", "0"], "--batch"),
    "negative length": (["analyze", "--seq-len", "-5"], "--seq-len"),
    "unknown precision": (["analyze", "--weights", "int3"], "unknown precision"),
    "unknown kv precision": (["analyze", "--kv-cache", "fp12x"], "unknown precision"),
    "bad phase": (["analyze", "--phase", "train"], "invalid choice"),
    "missing file": (["analyze", "-m", "/nonexistent/config.json"], "cannot read"),
    "half a custom device": (["roofline", "--bandwidth-gb-s", "50"], "--peak-tflops"),
    "zero bandwidth": (["roofline", "--bandwidth-gb-s", "0", "--peak-tflops", "1"], "--bandwidth-gb-s"),
    "unknown peak precision": (["roofline", "--bandwidth-gb-s", "5", "--peak-tflops", "1", "--peak-precision", "fp7"],
                               "--peak-precision"),
    "no such command": (["frobnicate"], "invalid choice"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_one_line_exit_2(capsys: pytest.CaptureFixture[str], case: str) -> None:
    args, fragment = BAD_INPUTS[case]
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llm-roofline: error:")
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_malformed_config_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "truncated.json": '{"model_type": "llama", "hidden_size": 64,',
        "missing.json": json.dumps({"model_type": "llama", "hidden_size": 64}),
        "unknown_family.json": json.dumps({"model_type": "mamba", "hidden_size": 64}),
        "negative.json": json.dumps({"model_type": "llama", "hidden_size": -64, "num_hidden_layers": 2,
                                     "num_attention_heads": 4, "intermediate_size": 8, "vocab_size": 10}),
        "bad_gqa.json": json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                                    "num_attention_heads": 4, "num_key_value_heads": 3, "intermediate_size": 8,
                                    "vocab_size": 10}),
        "not_object.json": "[1, 2, 3]",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        code, _, err = run(capsys, "analyze", "-m", str(path))
        assert code == 2, name
        assert len(err.strip().splitlines()) == 1, (name, err)
        assert str(path) in err, (name, err)


def test_config_folder_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000}))
    code, out, _ = run(capsys, "analyze", "-m", str(tmp_path), "--format", "json")
    assert code == 0
    assert json.loads(out)["model"]["family"] == "qwen2"


def test_console_script_start_up_imports_nothing_heavy() -> None:
    # The analyze path imports the core's one dependency (numpy: the step plan is a matrix product) and
    # nothing heavy: no torch, transformers, plotting, web framework or Parquet, and not the measuring code.
    heavy = ('torch', 'transformers', 'matplotlib', 'fastapi', 'uvicorn', 'pyarrow', 'gguf',
             'llm_roofline.features.measure.experiment')
    code = ("import sys; from llm_roofline.faces.cli.main import main; main(['analyze', '-f', 'json']); "
            f"heavy = [m for m in {heavy!r} if m in sys.modules]; "
            "sys.stderr.write(repr(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "[]"


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_the_byte_split_sums_to_the_total(capsys: pytest.CaptureFixture[str], phase: str) -> None:
    # Every byte of the step is in one of the parts the text names: weights, KV read, KV write, activations.
    import re

    code, out, _ = run(capsys, "analyze", "-p", phase, "-l", "2048")
    assert code == 0
    line = next(text for text in out.splitlines() if text.startswith("total bytes"))
    scale = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    figures = {name: float(number) * scale[prefix]
               for name, number, prefix in re.findall(r"(total bytes|weights|KV read|KV write|activations)\s+"
                                                      r"([\d.]+) ([kMGT]?)B", line)}
    assert set(figures) == {"total bytes", "weights", "KV read", "KV write", "activations"}
    parts = sum(value for name, value in figures.items() if name != "total bytes")
    assert parts == pytest.approx(figures["total bytes"], rel=5e-3)  # three significant digits each


def test_a_length_past_the_context_window_warns_in_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    # llama-2-7b's window is 4096: decode at 4096 cached tokens processes token 4097.
    note = "4097 tokens exceed llama-2-7b's context window (4096, max_position_embeddings)"
    code, out, _ = run(capsys, "analyze", "-l", "4096")
    assert code == 0 and f"warning: {note}" in out
    code, out, _ = run(capsys, "analyze", "-l", "4095", "-f", "json")
    assert code == 0 and json.loads(out)["warnings"] == []
    code, out, _ = run(capsys, "analyze", "-l", "4096", "-f", "json")
    assert json.loads(out)["warnings"][0].startswith(note)
    code, out, _ = run(capsys, "share", "-p", "decode", "-l", "1024", "4096")
    assert code == 0 and f"warning: {note}" in out
    code, out, err = run(capsys, "sweep", "-l", "4096", "-q", "boundary")
    assert code == 0 and f"warning: {note}" in err
    code, out, _ = run(capsys, "timeline", "-P", "4000", "-T", "100")
    assert code == 0 and "beyond the model's context window" in out
    for command in (["transition"], ["whatif", "--vary", "batch=2"], ["fit"], ["energy"]):
        code, out, err = run(capsys, *command, "-l", "4096")
        assert code == 0 and f"warning: {note}" in err, command
    code, out, err = run(capsys, "fit", "-l", "4095")
    assert code == 0 and "warning" not in err
