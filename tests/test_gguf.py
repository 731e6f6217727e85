"""GGUF files written by the ``gguf`` package's own writer: structure, per-tensor formats, exact bytes, errors."""

from __future__ import annotations

import re
import struct
import tempfile
from pathlib import Path

import pytest

from conftest import require_module

gguf = require_module("gguf")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gguf_factory import T, llama_keys, llama_like_tensors, tensor_bytes, write_gguf  # noqa: E402
from llm_roofline import InputError, analyze, load_hardware, load_model  # noqa: E402
from llm_roofline.cli import main  # noqa: E402
from llm_roofline.gguf import read_gguf_header, read_gguf_model  # noqa: E402
from llm_roofline.models import model_from_hf_config  # noqa: E402

JETSON = "jetson-orin-nx"
# A small llama: rows of 256 so that every K-quant fits whole blocks.
D, LAYERS, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB = 256, 8, 4, 2, 64, 512, 320
LLAMA_TENSORS = llama_like_tensors(D, LAYERS, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB)
LLAMA_KEYS = llama_keys(D, LAYERS, HEADS, KV_HEADS, INTER)


def q4_k_m_style(name: str, shape: tuple[int, ...]) -> gguf.GGMLQuantizationType:
    """Q4_K, with Q6_K for the output and for attn_v/ffn_down in every other layer (like llama.cpp's Q4_K_M)."""
    if name == "output.weight":
        return T.Q6_K
    match = re.match(r"blk\.(\d+)\.(attn_v|ffn_down)", name)
    return T.Q6_K if match and int(match.group(1)) % 2 == 0 else T.Q4_K


def write_llama(path: Path, type_of=q4_k_m_style, **kwargs) -> int:  # type: ignore[no-untyped-def]
    return write_gguf(path, "llama", LLAMA_KEYS, LLAMA_TENSORS, type_of, **kwargs)


def test_mixed_gguf_weight_bytes_equal_its_tensor_bytes(tmp_path: Path) -> None:
    path = tmp_path / "mixed.gguf"
    file_bytes = write_llama(path, file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M, vocab_tokens=VOCAB)
    info = read_gguf_model(path)
    assert info.header.tensor_bytes == file_bytes and info.modelled_bytes == file_bytes
    result = analyze(str(path), JETSON)
    assert round(result.memory.weight_bytes) == file_bytes  # to the byte
    assert result.workload.weights_label == "gguf:q4_k_m"
    formats = dict(info.model.stored_weights.by_role)
    assert formats["attn.v_proj"].name == "q4_k+q6_k" and formats["lm_head"].name == "q6_k"
    assert formats["vectors"].name == "fp32"
    # Decode reads every layer matrix once, the output once and one embedding row per token:
    v = next(op for op in result.ops if op.name == "layer.attn.v_proj")
    assert v.weight_bytes * v.count == sum(tensor_bytes(s, q4_k_m_style(n, s)) for n, s in LLAMA_TENSORS
                                           if ".attn_v." in n)


def test_same_model_at_q8_0_and_f16_scales_as_the_bytes(tmp_path: Path) -> None:
    hw = load_hardware(JETSON)
    results, files = {}, {}
    for label, ggml_type in (("q4_k_m", None), ("q8_0", T.Q8_0), ("f16", T.F16)):
        path = tmp_path / f"{label}.gguf"
        files[label] = write_llama(path, q4_k_m_style if ggml_type is None else (lambda n, s, t=ggml_type: t))
        results[label] = analyze(str(path), hw, seq_len=16)
        assert round(results[label].memory.weight_bytes) == files[label]
        # batch-1 decode is memory-bound everywhere: time = bytes moved / bandwidth
        assert results[label].totals.time_s == pytest.approx(results[label].totals.bytes / hw.memory_bytes_per_s)
    weights = {k: r.totals.weight_bytes for k, r in results.items()}
    assert weights["q8_0"] / weights["f16"] == pytest.approx(8.5 / 16, rel=2e-3)  # norms stay fp32 in both
    assert weights["q4_k_m"] < weights["q8_0"] < weights["f16"]


def test_reader_agrees_with_gguf_reader(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path, vocab_tokens=VOCAB)
    ours = read_gguf_header(path)
    theirs = gguf.GGUFReader(path)
    assert ours.data_offset == theirs.data_offset
    assert [(t.name, t.ggml_type, t.dims, t.bytes, ours.data_offset + t.offset) for t in ours.tensors] == [
        (t.name, t.tensor_type.name, tuple(int(x) for x in t.shape), int(t.n_bytes), t.data_offset)
        for t in theirs.tensors]
    assert ours.metadata["llama.block_count"] == theirs.fields["llama.block_count"].contents()
    assert ours.metadata["tokenizer.ggml.tokens"].length == VOCAB


def test_model_structure_from_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path)
    model = load_model(str(path))
    config = dict(model_type="llama", hidden_size=D, intermediate_size=INTER, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, vocab_size=VOCAB,
                  max_position_embeddings=256)
    same = model_from_hf_config(config)
    for field in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
                  "vocab_size", "tied_embeddings", "params"):
        assert getattr(model, field) == getattr(same, field), field
    assert model.display_name == "test llama"


def test_mixtral_gguf(tmp_path: Path) -> None:
    path = tmp_path / "moe.gguf"
    tensors = llama_like_tensors(D, 2, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB, experts=4)
    file_bytes = write_gguf(path, "llama", llama_keys(D, 2, HEADS, KV_HEADS, INTER, experts=4, used=2), tensors,
                            lambda n, s: T.Q8_0 if "ffn_gate_inp" not in n else T.F32)
    model = load_model(str(path))
    assert model.family == "mixtral" and (model.num_experts, model.experts_per_token) == (4, 2)
    config = dict(model_type="mixtral", hidden_size=D, intermediate_size=INTER, num_hidden_layers=2,
                  num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, num_local_experts=4,
                  num_experts_per_tok=2, vocab_size=VOCAB, max_position_embeddings=256)
    assert model.params == model_from_hf_config(config).params
    assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes
    assert dict(model.stored_weights.by_role)["mlp.router"].name == "fp32"


def _family_files() -> dict[str, tuple[str, dict[str, int], list[tuple[str, tuple[int, ...]]]]]:
    d, i, v, layers = 64, 96, 100, 2
    qwen = llama_like_tensors(d, layers, 4, 2, 16, i, v, qkv_bias=True)
    phi3 = [("token_embd.weight", (v, d)), ("output_norm.weight", (d,)), ("output.weight", (v, d))]
    gemma = [("token_embd.weight", (v, d)), ("output_norm.weight", (d,))]
    gpt2 = [("token_embd.weight", (v, d)), ("position_embd.weight", (128, d)), ("output_norm.weight", (d,)),
            ("output_norm.bias", (d,))]
    for b in range(layers):
        p = f"blk.{b}"
        phi3 += [(f"{p}.attn_norm.weight", (d,)), (f"{p}.attn_qkv.weight", (3 * d, d)),
                 (f"{p}.attn_output.weight", (d, d)), (f"{p}.ffn_norm.weight", (d,)),
                 (f"{p}.ffn_up.weight", (2 * i, d)), (f"{p}.ffn_down.weight", (d, i))]
        gemma += [(f"{p}.attn_norm.weight", (d,)), (f"{p}.attn_q.weight", (4 * 32, d)),
                  (f"{p}.attn_k.weight", (32, d)), (f"{p}.attn_v.weight", (32, d)),
                  (f"{p}.attn_output.weight", (d, 4 * 32)), (f"{p}.ffn_norm.weight", (d,)),
                  (f"{p}.ffn_gate.weight", (i, d)), (f"{p}.ffn_up.weight", (i, d)), (f"{p}.ffn_down.weight", (d, i))]
        gpt2 += [(f"{p}.attn_norm.weight", (d,)), (f"{p}.attn_norm.bias", (d,)),
                 (f"{p}.attn_qkv.weight", (3 * d, d)), (f"{p}.attn_qkv.bias", (3 * d,)),
                 (f"{p}.attn_output.weight", (d, d)), (f"{p}.attn_output.bias", (d,)),
                 (f"{p}.ffn_norm.weight", (d,)), (f"{p}.ffn_norm.bias", (d,)),
                 (f"{p}.ffn_up.weight", (4 * d, d)), (f"{p}.ffn_up.bias", (4 * d,)),
                 (f"{p}.ffn_down.weight", (d, 4 * d)), (f"{p}.ffn_down.bias", (d,))]
    base = {"embedding_length": d, "block_count": layers, "context_length": 128}
    return {
        "qwen2": ("qwen2", {**base, "feed_forward_length": i, "attention.head_count": 4,
                            "attention.head_count_kv": 2}, qwen),
        "phi3": ("phi3", {**base, "feed_forward_length": i, "attention.head_count": 4}, phi3),
        "gemma": ("gemma", {**base, "feed_forward_length": i, "attention.head_count": 4,
                            "attention.head_count_kv": 1, "attention.key_length": 32}, gemma),
        "gpt2": ("gpt2", {**base, "feed_forward_length": 4 * d, "attention.head_count": 4}, gpt2),
    }


HF_EQUIVALENT = {
    "qwen2": dict(model_type="qwen2", hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=100, max_position_embeddings=128),
    "phi3": dict(model_type="phi3", hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                 vocab_size=100, max_position_embeddings=128),
    "gemma": dict(model_type="gemma", hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=1, head_dim=32, vocab_size=100, max_position_embeddings=128),
    "gpt2": dict(model_type="gpt2", n_embd=64, n_head=4, n_layer=2, n_positions=128, vocab_size=100),
}


@pytest.mark.parametrize("family", sorted(HF_EQUIVALENT))
def test_other_architectures(tmp_path: Path, family: str) -> None:
    arch, keys, tensors = _family_files()[family]
    path = tmp_path / f"{family}.gguf"
    file_bytes = write_gguf(path, arch, keys, tensors, lambda n, s: T.Q8_0)
    model = load_model(str(path))
    same = model_from_hf_config(HF_EQUIVALENT[family])
    for field in ("family", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
                  "vocab_size", "norm", "activation", "gated_mlp", "qkv_bias", "out_bias", "mlp_bias",
                  "tied_embeddings", "learned_positions", "embedding_scale", "params"):
        assert getattr(model, field) == getattr(same, field), field
    assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes


def test_a_40_gb_file_is_read_from_its_header(tmp_path: Path) -> None:
    # Llama-2-70B shapes at Q4_K: ~38.8 GB of tensor data, written as a sparse hole (no disk used).
    path = tmp_path / "big.gguf"
    tensors = llama_like_tensors(8192, 80, 64, 8, 128, 28672, 32000)
    file_bytes = write_gguf(path, "llama", llama_keys(8192, 80, 64, 8, 28672, 4096), tensors, lambda n, s: T.Q4_K,
                            with_data=False, vocab_tokens=32000)
    assert path.stat().st_size > 38e9
    model = load_model(str(path))
    assert model.params == load_model("llama-2-70b").params
    assert round(analyze(model, JETSON).memory.weight_bytes) == file_bytes


# --- bad files ------------------------------------------------------------------------------------


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path)
    data = path.read_bytes()
    header_end = read_gguf_header(path).data_offset
    for cut in (0, 3, 10, 30, header_end // 2, header_end - 1, len(data) - 1):
        broken = tmp_path / f"cut{cut}.gguf"
        broken.write_bytes(data[:cut])
        with pytest.raises(InputError) as err:
            load_model(str(broken))
        assert "\n" not in str(err.value)


def test_not_gguf_and_unknown_architecture(tmp_path: Path) -> None:
    text = tmp_path / "a.gguf"
    text.write_text("hello, this is not a model file at all\n")
    with pytest.raises(InputError, match="not a GGUF file"):
        load_model(str(text))
    with pytest.raises(InputError, match="cannot read GGUF file"):
        load_model(str(tmp_path / "missing.gguf"))
    path = tmp_path / "mamba.gguf"
    write_gguf(path, "mamba", LLAMA_KEYS, LLAMA_TENSORS, lambda n, s: T.F16)
    with pytest.raises(InputError, match="unsupported architecture 'mamba'"):
        load_model(str(path))


def test_missing_key_and_missing_tensor(tmp_path: Path) -> None:
    path = tmp_path / "nokey.gguf"
    write_gguf(path, "llama", {k: v for k, v in LLAMA_KEYS.items() if k != "block_count"}, LLAMA_TENSORS,
               lambda n, s: T.F16)
    with pytest.raises(InputError, match=r"missing metadata key 'llama\.block_count'"):
        load_model(str(path))
    path = tmp_path / "notensor.gguf"
    write_gguf(path, "llama", LLAMA_KEYS, [t for t in LLAMA_TENSORS if t[0] != "blk.3.ffn_up.weight"],
               lambda n, s: T.F16)
    with pytest.raises(InputError, match=r"'mlp\.up_proj'"):
        load_model(str(path))


def test_unknown_tensor_type_id(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path, lambda n, s: T.F16)
    data = bytearray(path.read_bytes())
    name = b"blk.0.attn_q.weight"
    at = data.index(name) + len(name) + 4 + 2 * 8  # past n_dims and two dims: the type id
    struct.pack_into("<I", data, at, 999)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="unknown ggml type id 999"):
        load_model(str(path))


def test_cli_gguf_command_and_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.gguf"
    write_llama(path)
    assert main(["gguf", str(path), "--format", "json"]) == 0
    assert '"modelled_tensor_bytes"' in capsys.readouterr().out
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(path.read_bytes()[:100])
    assert main(["analyze", "-m", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("llm-roofline: error:")


def _small_file() -> tuple[bytes, int]:
    """A valid small GGUF file (its data a sparse hole) and where its header ends."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "h.gguf"
        write_gguf(path, "llama", llama_keys(64, 2, 4, 2, 96), llama_like_tensors(64, 2, 4, 2, 16, 96, 100),
                   lambda n, s: T.Q8_0, with_data=False, vocab_tokens=20)
        return path.read_bytes(), read_gguf_header(path).data_offset


HEADER, HEADER_END = _small_file()


def _load_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.gguf"
        path.write_bytes(data)
        try:
            load_model(str(path))
        except InputError as err:
            assert "\n" not in str(err)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, HEADER_END - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, HEADER_END))
def test_fuzzed_headers_never_crash(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(HEADER)
    for position, value in edits:
        data[position] = value
    _load_bytes(bytes(data))  # a valid model or one InputError line, never another exception
    _load_bytes(bytes(data[:cut]))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_after_the_magic_never_crash(tail: bytes) -> None:
    _load_bytes(b"GGUF" + struct.pack("<I", 3) + tail)
