"""Predicted vs measured on this machine: a real Llama-style ``transformers`` model on the CPU.

Builds Llama-architecture models from configs (random weights, eager attention), each in fp32 and in
bf16: the model whose speed is predicted, 246 M parameters (16 layers, hidden 1024, GQA 16/4 heads,
SwiGLU 2816, vocabulary 32000); and three calibration models of other shapes: 125 M parameters (12
layers, hidden 768), 436 M (20 layers, hidden 1280) and 10 M (hidden 128, whose decode step is nearly
all fixed cost). With PyTorch on the CPU (``torch.set_num_threads``, 2 by default) it times:

- prefill: one forward pass over a ``--prompt``-token prompt, logits of the last token only;
- decode: single-token steps against the KV cache that prefill left (consecutive steps, so the cache
  grows by one per step; the prediction is made at the middle of the timed steps).

Each figure is the median of ``--repeats`` timed runs after ``--warmup`` untimed ones; the eight
model/precision pairs take turns run by run, so that load from elsewhere on a shared machine falls on
all of them alike. The runs are written in the calibration CSV schema (each model named by its
config.json) and go through the commands a user runs, on the device of ``--hardware`` (a profile
measured here: ``llm-roofline measure --save FILE``) or of a stated ``--bandwidth-gb-s``:

- ``llm-roofline validate``: the 246 M model's roofline bound, and its expectation with the cpu class
  defaults;
- ``llm-roofline calibrate`` on the three calibration models' runs (prefill and decode) in the same
  precision, then ``validate`` of the 246 M model with the calibrated profile: a prediction for a model
  the fit never saw, between a smaller and a larger one it did.

    python bench/bench_fidelity.py --hardware measured-here.toml [--threads 2] [--format json]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

CONFIG: dict[str, Any] = dict(  # the model whose speed is predicted: 246 M parameters
    model_type="llama", hidden_size=1024, intermediate_size=2816, num_hidden_layers=16, num_attention_heads=16,
    num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, rms_norm_eps=1e-5, hidden_act="silu",
    tie_word_embeddings=False,
)
# The models the device is calibrated on, of other shapes: a narrower one (12 layers, hidden 768), a wider
# one (20 layers, hidden 1280), so that the predicted model lies between them; and a tiny one (hidden
# 128), whose decode step is nearly all fixed cost: it separates the per-operator overhead from the
# bandwidth efficiency, which model sizes alone hardly do.
NARROW_CONFIG: dict[str, Any] = {**CONFIG, "hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12,
                                 "num_attention_heads": 12}
WIDE_CONFIG: dict[str, Any] = {**CONFIG, "hidden_size": 1280, "intermediate_size": 3584, "num_hidden_layers": 20,
                               "num_attention_heads": 20}
TINY_CONFIG: dict[str, Any] = {**NARROW_CONFIG, "hidden_size": 128, "intermediate_size": 256,
                               "num_attention_heads": 2, "num_key_value_heads": 2}
MODELS = {"bench-llama-246m": CONFIG, "bench-llama-125m": NARROW_CONFIG, "bench-llama-436m": WIDE_CONFIG,
          "bench-llama-10m": TINY_CONFIG}
CALIBRATION_MODELS = ("bench-llama-125m", "bench-llama-436m", "bench-llama-10m")
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def _iqr(samples: list[float]) -> float:
    """The interquartile range of timed runs (their spread, robust to a stray slow run)."""
    quartiles = statistics.quantiles(samples, n=4)
    return quartiles[2] - quartiles[0]


def _timed(run: Any) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(precisions: list[str], prompt: int, repeats: int, warmup: int) -> list[dict[str, Any]]:
    """Prefill and decode times of each model in each precision. They take turns run by run, so that a
    neighbour's load on a shared machine falls on all of them alike."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    ids = torch.randint(0, CONFIG["vocab_size"], (1, prompt))  # (1, prompt)
    token = torch.randint(0, CONFIG["vocab_size"], (1, 1))  # (1, 1)
    models = {}
    for name, config in MODELS.items():
        for precision in precisions:
            torch.manual_seed(0)
            model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**config),
                                                                  attn_implementation="eager")
            models[(name, precision)] = model.to(getattr(torch, DTYPES[precision])).eval()
    samples: dict[tuple[str, str, str], list[float]] = {(*key, f): [] for key in models for f in ("prefill", "decode")}
    with torch.inference_mode():
        for repeat in range(warmup + repeats):
            for key, model in models.items():
                elapsed = _timed(lambda m=model: m(input_ids=ids, use_cache=True, logits_to_keep=1))
                if repeat >= warmup:
                    samples[(*key, "prefill")].append(elapsed)
        pasts = {key: m(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values for key, m in models.items()}
        for repeat in range(warmup + repeats):
            for key, model in models.items():
                elapsed = _timed(lambda m=model, past=pasts[key]: m(input_ids=token, past_key_values=past,
                                                                     use_cache=True))
                if repeat >= warmup:
                    samples[(*key, "decode")].append(elapsed)
    # Decode steps ran at cached lengths prompt .. prompt + warmup + repeats - 1: predict at the timed middle.
    cached = prompt + warmup + repeats // 2
    return [{"model": name, "precision": precision, "params": sum(p.numel() for p in model.parameters()),
             "prefill_s": statistics.median(samples[(name, precision, "prefill")]),
             "prefill_samples_s": samples[(name, precision, "prefill")], "prompt_tokens": prompt,
             "decode_s": statistics.median(samples[(name, precision, "decode")]),
             "decode_samples_s": samples[(name, precision, "decode")], "decode_cached_tokens": cached}
            for (name, precision), model in models.items()]


CSV_COLUMNS = ("source", "hardware", "hw_mem_bw_GBps", "hw_peak_fp16_TFLOPS", "model", "params_B", "quant",
               "bits_per_weight", "framework", "backend", "batch", "prompt_tokens", "gen_tokens", "prefill_tok_s",
               "decode_tok_s", "notes")


def _write_rows(path: Path, rows: list[dict[str, Any]], hardware: Any, configs: dict[str, Path]) -> None:
    """Measurements in the calibration CSV schema, each model named by its config.json; decode at
    gen_tokens / 2 cached tokens (validation.py)."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(["bench/bench_fidelity.py on this machine", hardware.display_name,
                             hardware.memory_bytes_per_s / 1e9, "", configs[r["model"]], r["params"] / 1e9,
                             r["precision"], "", f"PyTorch {r['torch']} eager, {r['threads']} threads", "CPU", 1,
                             r["prompt_tokens"], 2 * r["decode_cached_tokens"], r["prompt_tokens"] / r["prefill_s"],
                             1 / r["decode_s"], "median of timed runs after warm-up"])


def _cli_json(*args: str) -> dict[str, Any]:
    """Run an llm-roofline command in this process and parse its JSON."""
    from llm_roofline.faces.cli.main import main as cli

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli([*args, "--format", "json"])
    if code != 0:
        raise SystemExit(f"llm-roofline {' '.join(args)} failed with status {code}")
    return json.loads(buffer.getvalue())


def compare(measured: list[dict[str, Any]], hardware_arg: str, hardware: Any, folder: Path) -> list[dict[str, Any]]:
    """The 246 M model's measurements against: the bound and the cpu class defaults' expectation
    (``validate``); and the expectation after calibrating the device on the calibration models' runs in the same
    precision (``calibrate``, then ``validate`` with the calibrated profile): a model the fit never saw."""
    configs = {}
    for name, config in MODELS.items():
        configs[name] = folder / name / "config.json"
        configs[name].parent.mkdir()
        configs[name].write_text(json.dumps(config))
    target = [r for r in measured if r["model"] == "bench-llama-246m"]
    everything = folder / "target.csv"
    _write_rows(everything, target, hardware, configs)
    plain = _cli_json("validate", str(everything), "--hardware", hardware_arg)
    rows = {(r["weights"], r["phase"]): r for r in plain["rows"]}
    out = []
    for r in target:
        precision = r["precision"]
        train, test = folder / f"calibration-{precision}.csv", folder / f"target-{precision}.csv"
        profile = folder / f"calibrated-{precision}.toml"
        _write_rows(train, [c for c in measured if c["model"] in CALIBRATION_MODELS and c["precision"] == precision],
                    hardware, configs)
        _write_rows(test, [r], hardware, configs)
        fitted = _cli_json("calibrate", str(train), "--hardware", hardware_arg, "--kind", "cpu",
                           "--save", str(profile))["fitted"]
        calibrated = {row["phase"]: row for row in _cli_json("validate", str(test), "--hardware", str(profile))["rows"]}
        for phase in ("prefill", "decode"):
            v = rows[(precision, phase)]
            tokens = r["prompt_tokens"] if phase == "prefill" else 1
            samples = r[f"{phase}_samples_s"]
            out.append({"precision": precision, "phase": phase, "seq_len": v["seq_len"], "measured_s": r[f"{phase}_s"],
                        "iqr": _iqr(samples) / r[f"{phase}_s"],
                        "bound_s": tokens / v["bound_tokens_per_s"], "expected_s": tokens / v["expected_tokens_per_s"],
                        "calibrated_s": tokens / calibrated[phase]["expected_tokens_per_s"],
                        "calibrated_params": fitted})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hardware", help="a device profile (llm-roofline measure --save) or catalogue name")
    parser.add_argument("--bandwidth-gb-s", type=float, help="memory bandwidth in GB/s, when no profile is given")
    parser.add_argument("--peak-tflops", type=float, default=0.2,
                        help="with --bandwidth-gb-s: fp32 peak in TFLOP/s (bf16 twice that; default 0.2)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens (default 128)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per figure (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16 (default both)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)

    import torch

    from llm_roofline import custom_hardware, load_hardware
    from llm_roofline.core.hardware import PARAMETERS
    from llm_roofline.inputs.files import toml_text

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.hardware:
            hardware_arg = args.hardware
            hardware = load_hardware(args.hardware)
        elif args.bandwidth_gb_s:
            peak = args.peak_tflops * 1e12
            hardware = replace(custom_hardware(args.bandwidth_gb_s * 1e9, {"fp32": peak, "bf16": 2 * peak},
                                               name=f"stated-{args.bandwidth_gb_s:g}-gb-s"), kind="cpu",
                               source=f"a stated bandwidth of {args.bandwidth_gb_s:g} GB/s (bench_fidelity.py)")
            hardware_arg = str(folder / "stated.toml")
            Path(hardware_arg).write_text(toml_text({k: v for k, v in hardware.to_dict().items() if v is not None}))
        else:
            parser.error("give --hardware FILE (llm-roofline measure --save FILE) or --bandwidth-gb-s")
        torch.set_num_threads(args.threads)
        measured = [{**run, "torch": torch.__version__, "threads": args.threads}
                    for run in measure(args.precisions.split(","), args.prompt, args.repeats, args.warmup)]
        rows = compare(measured, hardware_arg, hardware, folder)
    out = {
        "device": hardware.name, "device_source": hardware.source,
        "bandwidth_bytes_per_s": hardware.memory_bytes_per_s, "peaks_flops_per_s": hardware.peak_flops_per_s,
        "threads": args.threads, "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(), "params": measured[0]["params"], "models": MODELS,
        "measured": [{k: v for k, v in m.items() if not k.endswith("samples_s")} for m in measured], "rows": rows,
    }
    if args.format == "json":
        print(json.dumps(out, indent=2))
        return 0
    print(f"{hardware.display_name}: {hardware.memory_bytes_per_s / 1e9:.1f} GB/s; torch {torch.__version__}, "
          f"{args.threads} threads; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"measured, median of {args.repeats} runs after {args.warmup} (prefill: {args.prompt} tokens; decode: "
          f"{measured[0]['decode_cached_tokens']} cached):")
    for m in measured:
        print(f"  {m['model']:17s} {m['params'] / 1e6:6.1f} M  {m['precision']:5s}  "
              f"prefill {m['prefill_s'] * 1e3:8.2f} ms  decode {m['decode_s'] * 1e3:7.2f} ms")
    print("predicted for bench-llama-246m (errors: predicted / measured - 1):")
    print(f"{'precision':9s} {'phase':7s} {'tokens':>6s} {'measured':>10s} {'IQR':>7s} {'bound':>10s} {'err':>7s} "
          f"{'expected':>10s} {'err':>7s} {'calibrated':>10s} {'err':>7s}")
    for r in rows:
        errors = [100 * (r[key] / r["measured_s"] - 1) for key in ("bound_s", "expected_s", "calibrated_s")]
        print(f"{r['precision']:9s} {r['phase']:7s} {r['seq_len']:6d} {r['measured_s'] * 1e3:8.2f}ms "
              f"{100 * r['iqr']:6.1f}% {r['bound_s'] * 1e3:8.2f}ms {errors[0]:+6.1f}% "
              f"{r['expected_s'] * 1e3:8.2f}ms {errors[1]:+6.1f}% {r['calibrated_s'] * 1e3:8.2f}ms {errors[2]:+6.1f}%")
    print(f"calibrated on {' + '.join(CALIBRATION_MODELS)} in the same precision:")
    for r in rows[::2]:
        fitted = r["calibrated_params"]
        print(f"  {r['precision']}: " + ", ".join(
            f"{name} {fitted[name] * 1e6:.1f} µs" if name.startswith("overhead") else f"{name} {fitted[name]:.3f}"
            for name in PARAMETERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
