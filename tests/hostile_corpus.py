"""The hostile-input corpus: every command and file argument given what an attacker or an unlucky user would.

A case is a JSON-able dict:

- ``id``: a unique name; ``argv``: the command line after ``llm-roofline``, run in the case's own
  empty folder (paths in it are relative);
- ``files``: ``{relative path: how to make it}`` (see ``hostile_runner.materialize``): text, bytes, a
  symlink to /dev/zero or /dev/urandom, a FIFO, a folder, a sparse file of a given size, a GGUF built
  from a recipe;
- ``expect``: ``"refused"`` (exit 2, one line on stderr) or ``"either"`` (exit 0 with clean output, or
  refused as above); ``outputs``: files an exit 0 may leave.

Every case must also end in under ``CASE_LIMIT_S`` with a peak RSS under ``RSS_LIMIT_BYTES``, print no
control characters that a terminal would obey, leave no temporary file, and (with ``--format json``)
print strict JSON. ``hostile_runner`` runs them; tests/test_fuzz.py checks the results.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

CASE_LIMIT_S = 10.0
RSS_LIMIT_BYTES = 1 << 30

Case = dict[str, Any]

LLAMA_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 512, "intermediate_size": 1376,
    "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 32000,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "torch_dtype": "float16",
}
GEMMA_CONFIG: dict[str, Any] = {
    "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 256, "intermediate_size": 1024,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 1000,
    "max_position_embeddings": 8192, "sliding_window": 4096, "query_pre_attn_scalar": 64, "torch_dtype": "bfloat16",
}
MOE_CONFIG: dict[str, Any] = {
    "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 512, "intermediate_size": 1024,
    "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 32000,
    "max_position_embeddings": 4096, "num_local_experts": 8, "num_experts_per_tok": 2, "torch_dtype": "bfloat16",
}
DEVICE_TOML = """name = "fuzz-device"
display_name = "Fuzz Device"
kind = "gpu"
memory_bytes = 17_179_869_184
memory_bytes_per_s = {bandwidth}
source = "tests/hostile_corpus.py"

[peak_flops_per_s]
fp16 = {peak}
fp32 = 1e12
"""
CALIBRATION_HEADER = ("source,hardware,hw_mem_bw_GBps,hw_peak_fp16_TFLOPS,model,params_B,quant,bits_per_weight,"
                      "framework,backend,batch,prompt_tokens,gen_tokens,prefill_tok_s,decode_tok_s,notes")
CALIBRATION_ROW = ("https://example.org/run,NVIDIA Jetson Orin NX 16GB,102.4,,Llama-2-7B,6.74,Q4_0,4.5,"
                   "llama.cpp (CUDA),GPU,1,512,128,{prefill},{decode},{notes}")
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil"  # title, clear screen, C1 CSI, a bidi override

# Text a terminal obeys: C0 controls but tab/newline/carriage return, DEL, C1, bidi overrides and isolates.
FORBIDDEN_OUTPUT = ([chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\x7f"]
                    + [chr(c) for c in range(0x80, 0xA0)] + [chr(c) for c in (*range(0x202A, 0x202F),
                                                                                  *range(0x2066, 0x206A))])

# How each command is run when it is not the thing under attack: the smallest valid command line.
BASE_ARGV: dict[str, list[str]] = {
    "analyze": ["analyze"], "matmul": ["matmul", "--m", "64", "--k", "64", "--n", "64"], "roofline": ["roofline"],
    "sweep": ["sweep", "-q", "boundary", "-b", "1..4", "-l", "128"],
    "plot roofline": ["plot", "roofline", "-o", "out.png"], "plot breakdown": ["plot", "breakdown", "-o", "out.png"],
    "plot share": ["plot", "share", "-o", "out.png"], "plot timeline": ["plot", "timeline", "-o", "out.png"],
    "plot context": ["plot", "context", "-l", "1024", "4096", "-o", "out.png"],
    "report": ["report", "-o", "out.html"], "share": ["share"], "transition": ["transition"],
    "timeline": ["timeline"], "context": ["context", "-l", "1024", "4096"],
    "requirements": ["requirements", "--tokens-per-s", "10"],
    "feasibility": ["feasibility", "--target-ms", "100"], "scaling": ["scaling"],
    "whatif": ["whatif", "--vary", "weights=int4"], "energy": ["energy"], "fit": ["fit"], "offload": ["offload"],
    "advise": ["advise", "--target-ms", "100"],
    "parallel": ["parallel", "--devices", "2", "--link-gb-s", "50"],
    "speculative": ["speculative", "-m", "llama-3.1-8b", "--draft", "llama-3.2-1b"],
}
OUTPUTS = {"plot roofline": ["out.png"], "plot breakdown": ["out.png"], "plot share": ["out.png"],
           "plot timeline": ["out.png"], "plot context": ["out.png"], "report": ["out.html"]}
JSON_COMMANDS = {"analyze", "sweep", "matmul", "roofline", "share", "transition", "timeline", "context", "requirements",
                 "feasibility",
                 "scaling", "whatif", "energy", "fit", "offload", "parallel", "speculative", "advise"}
SLOW_COMMANDS = {"plot roofline", "plot breakdown", "plot share", "plot timeline", "plot context", "report"}

# Numbers that parse, overflow, underflow, are not numbers, or are not finite.
HOSTILE_NUMBERS = ["1e308", "-1", "0", "nan", "inf", "99999999999999999999", "1e20", "5e-324", "abc"]
HOSTILE_NUMBERS_SLOW = ["1e308", "nan", "99999999999999999999", "5e-324"]


def _case(case_id: str, argv: list[str], files: dict[str, Any] | None = None, expect: str = "either",
          outputs: list[str] | None = None) -> Case:
    return {"id": case_id, "argv": argv, "files": files or {}, "expect": expect, "outputs": outputs or []}


def _number_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The options of a command that take numbers (their ``type`` turns "1" into an int or float)."""
    flags = []
    for action in parser._actions:
        if not action.option_strings or action.type is None or not callable(action.type):
            continue
        try:
            value = action.type("1")
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flags.append(max(action.option_strings, key=len))
    return flags


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                key = f"{prefix}{name}"
                found[key] = sub
                found |= _subparsers(sub, f"{key} ")
    return found


def number_cases() -> list[Case]:
    """Every numeric option of every command that computes, given each hostile number."""
    from llm_roofline.faces.cli.main import build_parser

    commands = _subparsers(build_parser())
    cases = []
    for command, base in BASE_ARGV.items():
        values = HOSTILE_NUMBERS_SLOW if command in SLOW_COMMANDS else HOSTILE_NUMBERS
        tail = ["--format", "json"] if command in JSON_COMMANDS else []
        for flag in _number_flags(commands[command]):
            for value in values:
                argv = [arg for arg in base]
                if flag in argv:  # replace the base's own value
                    argv[argv.index(flag) + 1] = value
                else:
                    argv += [flag, value]
                cases.append(_case(f"number {command} {flag} {value}", argv + tail,
                                   outputs=OUTPUTS.get(command, [])))
    # a few numbers the generic list misses, on the paths the issue names
    cases += [
        _case("timeline steps 1e8", ["timeline", "--steps", "100000000", "--format", "json"]),
        _case("plot timeline steps 1e8", ["plot", "timeline", "--steps", "100000000", "-o", "out.png"],
              outputs=["out.png"]),
        _case("plot share seq-len 1e20", ["plot", "share", "--seq-len", "1e20", "-o", "out.png"], outputs=["out.png"]),
        _case("requirements tokens 1e308", ["requirements", "--tokens-per-s", "1e308", "--format", "json"]),
        _case("roofline intensity nan", ["roofline", "-i", "nan", "inf", "-inf", "--format", "json"]),
        _case("roofline intensity huge", ["roofline", "-i", "1e308", "5e-324", "-1", "--format", "json"]),
        _case("measure threads 100000", ["measure", "--quick", "--threads", "100000"], expect="refused"),
        _case("measure threads 0", ["measure", "--quick", "--threads", "0"], expect="refused"),
        _case("measure budget negative", ["measure", "--budget-s", "-1"], expect="refused"),
        _case("measure budget nan", ["measure", "--budget-s", "nan"], expect="refused"),
        _case("serve port 99999", ["serve", "--port", "99999"], expect="refused"),
        _case("serve port -1", ["serve", "--port", "-1"], expect="refused"),
        _case("analyze batch 2**64", ["analyze", "-b", str(2**64), "--format", "json"]),
        _case("analyze seq 2**40", ["analyze", "-l", str(2**40), "--format", "json"]),
        _case("analyze prefill batch 1e6 seq 1e6", ["analyze", "--phase", "prefill", "-b", "1000000", "-l",
                                                    "1000000", "--format", "json"]),
    ]
    return cases


def sweep_cases() -> list[Case]:
    """Ranges that overflow, never progress, or ask for more values than memory holds."""
    ranges = ["1..100000000", "1..1000:x1.0000000001", "1..1000:x1", "1..1000:x0.5", "1..1000:x-2", "1..1000:+0",
              "1..1000:+-1", "99999999999999999999", "1..", "..5", "5..1", "1e400", "nan", "0", "-3", "1,,2", "",
              "1..10:x", "1..10:", "1..1e20", "1.5", "0x10", "1..1000:x1e308"]
    cases = [_case(f"sweep batch {r!r}", ["sweep", "-q", "pareto", "-b", r, "-l", "128"]) for r in ranges]
    cases += [_case(f"sweep length {r!r}", ["sweep", "-q", "pareto", "-b", "1", "-l", r]) for r in ranges[:12]]
    cases += [
        _case("sweep 10k x 10k max-batch", ["sweep", "-b", "1..10000", "-l", "1..10000", "-q", "max-batch"]),
        _case("sweep chunk huge", ["sweep", "-q", "boundary", "-b", "1..4", "-l", "128", "--chunk",
                                   "99999999999999999999"]),
        _case("sweep chunk 1", ["sweep", "-b", "1..64", "-l", "1..64", "--chunk", "1", "-o", "g.csv"],
              outputs=["g.csv"]),
        _case("sweep all devices huge grid", ["sweep", "-q", "max-batch", "-H", "all", "-b", "1..100000", "-l",
                                              "1..100000"]),
    ]
    return cases


def _file_kinds(suffix: str) -> dict[str, dict[str, Any]]:
    """Files that are not what their name says."""
    return {
        "zero": {"link": "/dev/zero"}, "urandom": {"link": "/dev/urandom"}, "fifo": {"fifo": True},
        "folder": {"folder": True}, "missing": {"missing": True}, "empty": {"text": ""},
        "binary": {"bytes_hex": "00ff" * 2048 + "89504e470d0a1a0a"}, "sparse 200 MiB": {"sparse": 200 << 20},
        "deep json": {"text": "[" * 100_000 + "]" * 100_000}, "not utf-8": {"bytes_hex": "7b22ff22fe3a317d"},
        "truncated": {"text": json.dumps(LLAMA_CONFIG)[:57] if suffix == ".json" else "name = \"x\"\nmemory_bytes"},
        "dev-null": {"link": "/dev/null"}, "symlink loop": {"link": "input" + suffix},
    }


# (command line with FILE where the file goes, the file's suffix)
FILE_ARGUMENTS: list[tuple[list[str], str]] = [
    (["analyze", "-m", "FILE"], ".json"), (["analyze", "-H", "FILE"], ".toml"), (["analyze", "-H", "FILE"], ".json"),
    (["fit", "-m", "FILE"], ".json"), (["share", "-m", "FILE"], ".json"), (["timeline", "-m", "FILE"], ".json"),
    (["context", "-m", "FILE", "-l", "1024"], ".json"),
    (["whatif", "-m", "FILE", "--vary", "batch=1,8"], ".json"), (["transition", "-m", "FILE"], ".json"),
    (["advise", "-m", "FILE"], ".json"),
    (["sweep", "-q", "boundary", "-m", "FILE", "-b", "1..4", "-l", "128"], ".json"),
    (["sweep", "-q", "boundary", "-H", "FILE", "-b", "1", "-l", "1"],
                                                                    ".toml"),
    (["matmul", "--m", "8", "--k", "8", "--n", "8", "-H", "FILE"], ".toml"), (["roofline", "-H", "FILE"], ".toml"),
    (["gguf", "FILE"], ".gguf"), (["analyze", "-m", "FILE"], ".gguf"), (["validate", "FILE"], ".csv"),
    (["calibrate", "FILE", "--save", "prof.toml"], ".csv"), (["validate", "FILE"], ".json"),
    (["plot", "measured", "--profile", "FILE", "-o", "out.png"], ".toml"),
    (["speculative", "--draft", "FILE"], ".json"), (["scaling", "-m", "FILE", "llama-2-7b"], ".json"),
]


def file_cases() -> list[Case]:
    """Every file argument given a device, a FIFO, a folder, a huge sparse file, garbage, ..."""
    cases = []
    for argv, suffix in FILE_ARGUMENTS:
        for kind, spec in _file_kinds(suffix).items():
            name = f"input{suffix}"
            files = {} if "missing" in spec else {name: spec}
            cases.append(_case(f"file {' '.join(argv)} {suffix} {kind}",
                               [name if arg == "FILE" else arg for arg in argv], files, expect="refused"))
    return cases


def _config(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    config = {**base, **changes}
    return {k: v for k, v in config.items() if v is not _DROP}


_DROP = object()


def config_variants() -> dict[str, tuple[Any, str]]:
    """config.json contents that parse but make no model, or a model too large to compute, and whether
    each must be refused ("refused") or may be read ("either")."""
    huge = int("9" * 400)
    return {
        "hidden 2**62": (_config(LLAMA_CONFIG, hidden_size=2**62), "refused"),
        "layers 400 digits": (_config(LLAMA_CONFIG, num_hidden_layers=huge), "refused"),
        "layers 10**12 gemma": (_config(GEMMA_CONFIG, num_hidden_layers=10**12), "refused"),
        "layers 10**12 llama": (_config(LLAMA_CONFIG, num_hidden_layers=10**12), "refused"),
        "model_type list": (_config(LLAMA_CONFIG, model_type=["llama"]), "refused"),
        "model_type dict": (_config(LLAMA_CONFIG, model_type={"a": 1}), "refused"),
        "model_type number": (_config(LLAMA_CONFIG, model_type=7), "refused"),
        "model_type unknown": (_config(LLAMA_CONFIG, model_type="not-a-family"), "refused"),
        "model_type escapes": (_config(LLAMA_CONFIG, model_type=ESCAPES), "refused"),
        "no model_type": (_config(LLAMA_CONFIG, model_type=_DROP, architectures=_DROP), "refused"),
        "layers 0": (_config(LLAMA_CONFIG, num_hidden_layers=0), "refused"),
        "layers -4": (_config(LLAMA_CONFIG, num_hidden_layers=-4), "refused"),
        "layers 4.5": (_config(LLAMA_CONFIG, num_hidden_layers=4.5), "refused"),
        "layers '4'": (_config(LLAMA_CONFIG, num_hidden_layers="4"), "refused"),
        "layers true": (_config(LLAMA_CONFIG, num_hidden_layers=True), "refused"),
        "layers null": (_config(LLAMA_CONFIG, num_hidden_layers=None), "refused"),
        "layers list": (_config(LLAMA_CONFIG, num_hidden_layers=[4]), "refused"),
        "layers 1e308": (_config(LLAMA_CONFIG, num_hidden_layers=1e308), "refused"),
        "heads 0": (_config(LLAMA_CONFIG, num_attention_heads=0), "refused"),
        "heads not dividing": (_config(LLAMA_CONFIG, num_attention_heads=7), "refused"),
        "kv heads above heads": (_config(LLAMA_CONFIG, num_key_value_heads=16), "refused"),
        "kv heads 0": (_config(LLAMA_CONFIG, num_key_value_heads=0), "refused"),
        "vocab 10**15": (_config(LLAMA_CONFIG, vocab_size=10**15), "refused"),
        "vocab 0": (_config(LLAMA_CONFIG, vocab_size=0), "refused"),
        "vocab -1": (_config(LLAMA_CONFIG, vocab_size=-1), "refused"),
        "intermediate 2**62": (_config(LLAMA_CONFIG, intermediate_size=2**62), "refused"),
        "intermediate 0": (_config(LLAMA_CONFIG, intermediate_size=0), "either"),
        "head_dim 2**40": (_config(LLAMA_CONFIG, head_dim=2**40), "refused"),
        "context 10**30": (_config(LLAMA_CONFIG, max_position_embeddings=10**30), "refused"),
        "context -1": (_config(LLAMA_CONFIG, max_position_embeddings=-1), "refused"),
        "rope_scaling list": (_config(LLAMA_CONFIG, rope_scaling=[1, 2]), "either"),
        "sliding window -5": (_config(GEMMA_CONFIG, sliding_window=-5), "refused"),
        "sliding window 2**62": (_config(GEMMA_CONFIG, sliding_window=2**62), "either"),
        "experts 10**9": (_config(MOE_CONFIG, num_local_experts=10**9), "refused"),
        "experts used above experts": (_config(MOE_CONFIG, num_experts_per_tok=9), "refused"),
        "experts used 0": (_config(MOE_CONFIG, num_experts_per_tok=0), "refused"),
        "experts string": (_config(MOE_CONFIG, num_local_experts="8"), "refused"),
        "torch_dtype unknown": (_config(LLAMA_CONFIG, torch_dtype="float1024"), "either"),
        "torch_dtype list": (_config(LLAMA_CONFIG, torch_dtype=["float16"]), "either"),
        "quantization_config string": (_config(LLAMA_CONFIG, quantization_config="gptq"), "either"),
        # a llama config's quantization_config is not read (the weights format is the user's choice): any value
        "quantization_config bits 0": (_config(LLAMA_CONFIG, quantization_config={"quant_method": "gptq",
                                                                                     "bits": 0}), "either"),
        "quantization_config bits 1e9": (_config(LLAMA_CONFIG, quantization_config={"quant_method": "gptq",
                                                                                       "bits": 10**9}), "either"),
        "display name escapes": (_config(LLAMA_CONFIG, _display_name=ESCAPES), "either"),
        "name_or_path escapes": (_config(LLAMA_CONFIG, _name_or_path=ESCAPES), "either"),
        "top level list": ([LLAMA_CONFIG], "refused"),
        "top level string": ("llama", "refused"),
        "text_config bad": (_config(LLAMA_CONFIG, model_type="gemma3", text_config=[1]), "refused"),
        "text_config deep": (_config(LLAMA_CONFIG, model_type="gemma3", text_config={"text_config": {}}), "refused"),
        "layer_types long": (_config(GEMMA_CONFIG, layer_types=["sliding_attention"] * 100_000), "refused"),
        "layer_types wrong": (_config(GEMMA_CONFIG, layer_types=[1, 2, 3, 4]), "refused"),
    }


def config_cases() -> list[Case]:
    """Each of ``config_variants`` given to analyze and fit."""
    cases = []
    for name, (config, expect) in config_variants().items():
        files = {"config.json": {"text": json.dumps(config)}}
        cases.append(_case(f"config {name} analyze", ["analyze", "-m", "config.json", "--format", "json"], files,
                           expect))
        cases.append(_case(f"config {name} fit", ["fit", "-m", "config.json", "--format", "json"], files, expect))
    return cases


def device_cases() -> list[Case]:
    """Device files with figures that overflow, underflow or are not numbers."""
    values = {"1e308": "1e308", "5e-324": "5e-324", "negative": "-1e9", "zero": "0", "nan": "nan", "inf": "inf",
              "string": '"fast"', "array": "[1, 2]", "table": "{ a = 1 }", "huge int": "9" * 400, "bool": "true"}
    cases = []
    for label, value in values.items():
        for field in ("bandwidth", "peak"):
            text = DEVICE_TOML.format(bandwidth=value if field == "bandwidth" else "102.4e9",
                                      peak=value if field == "peak" else "5.3e12")
            for argv in (["analyze", "-H", "dev.toml", "--format", "json"],
                         ["roofline", "-H", "dev.toml", "--format", "json"],
                         ["sweep", "-q", "pareto", "-H", "dev.toml", "-b", "1..8", "-l", "128", "--format", "json"]):
                cases.append(_case(f"device {field} {label} {argv[0]}", argv, {"dev.toml": {"text": text}}))
    base = DEVICE_TOML.format(bandwidth="102.4e9", peak="5.3e12")
    for label, text in {
        "name escapes": base.replace('display_name = "Fuzz Device"', f"display_name = {json.dumps(ESCAPES)}"),
        "memory 1e30": base.replace("17_179_869_184", "1e30"), "memory -1": base.replace("17_179_869_184", "-1"),
        "no name": base.replace('name = "fuzz-device"\n', ""), "kind unknown": base.replace('"gpu"', '"quantum"'),
        "unknown precision": base + "fp3 = 1e12\n", "peaks empty": base.split("[peak_flops_per_s]")[0],
        "json device nan": json.dumps({"name": "x", "kind": "gpu", "memory_bytes": 1e9, "memory_bytes_per_s": 1e9,
                                       "peak_flops_per_s": {"fp16": 1e12}}).replace("1000000000000.0", "NaN"),
    }.items():
        suffix = ".json" if label.startswith("json") else ".toml"
        cases.append(_case(f"device {label}", ["analyze", "-H", f"dev{suffix}", "--format", "json"],
                           {f"dev{suffix}": {"text": text}}))
    return cases


def measurement_cases() -> list[Case]:
    """Calibration CSVs and llama-bench output with fields too long, numbers out of range, bad structure."""
    def row(prefill: str = "1000", decode: str = "20", notes: str = "n") -> str:
        return CALIBRATION_ROW.format(prefill=prefill, decode=decode, notes=notes)

    texts = {
        "field 200 KiB": f"{CALIBRATION_HEADER}\n{row(notes='x' * 200_000)}\n",
        "decode nan": f"{CALIBRATION_HEADER}\n{row(decode='nan')}\n",
        "decode 1e308": f"{CALIBRATION_HEADER}\n{row(decode='1e308')}\n",
        "decode negative": f"{CALIBRATION_HEADER}\n{row(decode='-5')}\n",
        "prefill inf": f"{CALIBRATION_HEADER}\n{row(prefill='inf')}\n",
        "header only": f"{CALIBRATION_HEADER}\n",
        "wrong header": "a,b,c\n1,2,3\n",
        "short row": f"{CALIBRATION_HEADER}\n1,2,3\n",
        "quote unclosed": f'{CALIBRATION_HEADER}\n"{row()}\n',
        "many columns": ",".join(f"c{i}" for i in range(100_000)) + "\n",
        "escapes in hardware": f"{CALIBRATION_HEADER}\n{row().replace('NVIDIA Jetson Orin NX 16GB', ESCAPES)}\n",
        "bench json not list": '{"model_type": 1}',
        "bench json nan": '[{"model_type": "llama 7B Q4_0", "avg_ts": NaN}]',
        "bench jsonl garbage": '{"a": 1}\n{\n',
        "bench json deep": "[" * 5000 + "]" * 5000,
    }
    cases = []
    for label, text in texts.items():
        for command in (["validate", "m.csv", "--format", "json"], ["calibrate", "m.csv", "--save", "p.toml"]):
            cases.append(_case(f"measurements {label} {command[0]}", command, {"m.csv": {"text": text}},
                               outputs=["p.toml"]))
    return cases


def gguf_cases() -> list[Case]:
    """GGUF files that lie about their counts and lengths, end early, or carry escapes in their name."""
    recipes = {
        "bad magic": {"bytes_hex": "47475547" + "00" * 64},
        "truncated header": {"gguf": "truncated"}, "tensor count 2**63": {"gguf": "tensor_count_huge"},
        "key count 10**12": {"gguf": "key_count_huge"}, "string length 2**62": {"gguf": "string_length_huge"},
        "array length 2**62": {"gguf": "array_length_huge"}, "value type 99": {"gguf": "value_type_bad"},
        "version 99": {"gguf": "version_bad"}, "escaped name": {"gguf": "escaped_name"},
        "200k keys": {"gguf": "many_keys"}, "dims 2**40": {"gguf": "huge_dims"},
        "layers 10**9": {"gguf": "huge_layers"},
    }
    cases = []
    for label, recipe in recipes.items():
        expect = "either" if label == "escaped name" else "refused"
        files = {"m.gguf": recipe}
        cases.append(_case(f"gguf {label} inspect", ["gguf", "m.gguf", "--format", "json"], files, expect))
        cases.append(_case(f"gguf {label} analyze", ["analyze", "-m", "m.gguf"], files, expect))
    return cases


def output_cases() -> list[Case]:
    """Outputs that cannot be written: into /proc, under a file, onto a folder."""
    writers = {
        "sweep": (["sweep", "-b", "1..4", "-l", "128", "-o", "OUT"], ".csv"),
        "sweep jsonl": (["sweep", "-b", "1..4", "-l", "128", "-o", "OUT"], ".jsonl"),
        "plot": (["plot", "roofline", "-o", "OUT"], ".png"), "report": (["report", "-o", "OUT"], ".html"),
        "calibrate": (["calibrate", "m.csv", "--save", "OUT"], ".toml"),
        "heatmap": (["sweep", "-b", "1..4", "-l", "1..4", "--heatmap", "OUT"], ".png"),
    }
    targets = {"proc": ("/proc/llm-roofline-fuzz{s}", {}), "under a file": ("afile/out{s}", {"afile": {"text": "x"}}),
               "onto a folder": ("out{s}", {"out{s}": {"folder": True}}),
               "bad suffix": ("out.exe", {})}
    good_csv = f"{CALIBRATION_HEADER}\n{CALIBRATION_ROW.format(prefill='1000', decode='20', notes='n')}\n"
    cases = []
    for writer, (argv, suffix) in writers.items():
        for target, (path, files) in targets.items():
            made = {name.format(s=suffix): spec for name, spec in files.items()}
            if "m.csv" in argv:
                made["m.csv"] = {"text": good_csv}
            cases.append(_case(f"output {writer} {target}", [path.format(s=suffix) if a == "OUT" else a
                                                               for a in argv], made, expect="refused"
                               if target != "bad suffix" or writer in ("plot", "calibrate", "heatmap") else "either",
                               outputs=["out.exe"]))
    return cases


def name_cases() -> list[Case]:
    """Names typed on the command line: escapes, huge, empty, lookalikes."""
    names = {"escapes": ESCAPES, "long": "x" * 100_000, "empty": "", "spaces": "   ", "dots": "../../etc/passwd",
             "unicode": "llama\u200b-2-7b", "percent": "%s%n%x"}
    cases = []
    for label, name in names.items():  # a zero-width space is dropped by the name reader: the model is found
        cases.append(_case(f"name model {label}", ["analyze", "-m", name],
                           expect="either" if label == "unicode" else "refused"))
        cases.append(_case(f"name device {label}", ["analyze", "-H", name], expect="refused"))
        cases.append(_case(f"name precision {label}", ["analyze", "--weights", name], expect="refused"))
        cases.append(_case(f"name vary {label}", ["whatif", "--vary", name], expect="refused"))
    return cases


def all_cases() -> list[Case]:
    cases = (number_cases() + sweep_cases() + file_cases() + config_cases() + device_cases() + measurement_cases()
             + gguf_cases() + output_cases() + name_cases())
    ids = [case["id"] for case in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, duplicates
    return cases
