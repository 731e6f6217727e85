"""The layer dataflow graph (faces/report/graph.py) and the layer kinds it is read from (transformer.layer_kind_ops).

Every catalogue model, both phases and the kernel options that rename or replace operators: every operator of
the analysis is a node, each node's operator exists, edges stay in their section and run forward, and the
layer sections partition the stack. Then the structure of the families that differ: LFM2's convolution and
attention layers, Gemma-3's window and global layers, DeepSeek's dense and MoE layers, latent attention and
MTP module, Falcon-H1's mixer beside attention, Phi-2's parallel block.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llm_roofline import analyze
from llm_roofline.core.roofline import Analysis
from llm_roofline.core.transformer import layer_kind_ops
from llm_roofline.faces.report.graph import layer_graph, layer_numbers
from llm_roofline.inputs.model_files import load_model, model_names

DEVICE = "jetson-orin-nx"
OPTIONS = ({"flash_attention": True}, {"fuse": "elementwise"}, {"lm_head": "all"},
           {"flash_attention": True, "fuse": "elementwise", "phase": "prefill", "seq_len": 4096})
VARIED = ("llama-2-7b", "gemma-2-2b", "gemma-3-4b", "deepseek-v3", "lfm2-1.2b", "qwen3-next-80b-a3b",
          "falcon-h1-0.5b", "qwen3-30b-a3b", "gpt-oss-20b", "phi-2", "llama-4-scout", "olmo-2-7b")


def _graph(analysis: Analysis) -> dict[str, Any]:
    graph: dict[str, Any] = layer_graph(analysis)
    return graph


def _sections(graph: dict[str, Any], prefix: str = "kind-") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [s for s in graph["sections"] if s["id"].startswith(prefix)]
    return found


def _node(section: dict[str, Any], op_suffix: str) -> dict[str, Any]:
    """The one node of ``section`` whose operator name ends with ``op_suffix``."""
    found: list[dict[str, Any]] = [n for n in section["nodes"] if n["op"].endswith(op_suffix)]
    assert len(found) == 1, (section["id"], op_suffix, [n["op"] for n in section["nodes"]])
    return found[0]


def check_graph(analysis: Analysis, graph: dict[str, Any]) -> None:
    """The graph's contract with the page, for any model and workload."""
    assert json.loads(json.dumps(graph, allow_nan=False)) == graph  # plain JSON: str, int, list, dict
    ops = {op.name: op for op in analysis.ops}
    nodes = [node for section in graph["sections"] for node in section["nodes"]]
    ids = [node["id"] for node in nodes]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    by_id = {node["id"]: node for node in nodes}
    assert set(graph["ops"]) == set(ops)  # every operator is drawn, and nothing else
    for name, node_id in graph["ops"].items():
        assert by_id[node_id]["op"] == name
        assert graph["op_nodes"][name][0] == node_id
    for node in nodes:
        assert node["op"] in ops
        assert node["group"] == ops[node["op"]].group
        assert isinstance(node["label"], str) and node["label"]
    # an operator's nodes stand for all its instances: layer.attn_norm is 10 in LFM2's conv layers + 6 elsewhere
    instances: Counter[str] = Counter()
    for node in nodes:
        instances[node["op"]] += node["instances"]
    assert instances == Counter({name: op.count for name, op in ops.items()})

    for section in graph["sections"]:
        local = {node["id"]: node for node in section["nodes"]}
        assert len({node["op"] for node in section["nodes"]}) == len(section["nodes"])  # one node per op here
        places = [(node["column"], node["row"]) for node in section["nodes"]]
        assert len(places) == len(set(places)), section["id"]
        assert min(node["column"] for node in section["nodes"]) == 0
        for edge in section["edges"]:
            assert edge["kind"] in ("data", "residual")
            assert edge["from"] in local and edge["to"] in local, (section["id"], edge)
            assert local[edge["from"]]["column"] < local[edge["to"]]["column"], edge  # dataflow runs forward
        targets = {edge["to"] for edge in section["edges"]}
        for node in section["nodes"]:  # past the first stage, every operator reads another's output: the stage
            sources = [local[e["from"]]["column"] for e in section["edges"] if e["to"] == node["id"]]  # after them
            assert node["column"] == 1 + max(sources, default=-1), (section["id"], node["op"])
            assert (node["id"] in targets) == (node["column"] > 0)
        if section["id"].startswith("kind-"):  # one stage reads the layer's input: the norm, or q/k/v without one
            assert section["nodes"][0]["column"] == 0
            assert len({n["op"].split(".")[-1] for n in section["nodes"] if n["column"] == 0}) <= 3
        if section["id"].startswith("kind-") or section["id"] == "mtp":
            for node in section["nodes"]:  # each residual add is fed by a skip connection
                skips = [e for e in section["edges"] if e["to"] == node["id"] and e["kind"] == "residual"]
                assert len(skips) == (1 if node["group"] == "residual" else 0), (section["id"], node["op"])

    layers = _sections(graph)
    stack = len(analysis.model.layers)
    assert sum(s["repeat"] for s in layers) == stack
    assert sorted(i for s in layers for i in s["layers"]) == list(range(stack))
    for section in layers:
        assert section["repeat"] == len(section["layers"])
        assert section["title"].startswith(f"{section['repeat']} × ")
        assert all(node["instances"] == section["repeat"] for node in section["nodes"])
    section_ids = [s["id"] for s in graph["sections"]]
    assert section_ids[:1] == ["embed"] and "head" in section_ids
    for section in layers:
        names = [node["op"] for node in section["nodes"]]
        if any(".attn.q_proj" in name for name in names):  # q, k and v: three lanes of one stage
            q, k, v = (_node(section, f"attn.{p}_proj") for p in "qkv")
            assert q["column"] == k["column"] == v["column"]
            assert len({q["row"], k["row"], v["row"]}) == 3
        if "moe" in section["kind"]:
            router = _node(section, "mlp.router")
            experts = [n for n in section["nodes"] if ".experts." in n["op"]]
            assert len(experts) == 3
            assert all(router["column"] < n["column"] for n in experts)


def _layer_ops_match(analysis: Analysis) -> None:
    """layer_kind_ops names each kind's operators as ``analysis.ops`` does, with the right counts and order."""
    kinds = layer_kind_ops(analysis.model, analysis.workload)
    order = {op.name: i for i, op in enumerate(analysis.ops)}
    counts = Counter[str]()
    for kind in kinds:
        assert all(name in order for name in kind.op_names), set(kind.op_names) - set(order)
        positions = [order[name] for name in kind.op_names]
        assert positions == sorted(positions)  # execution order
        assert len(set(kind.op_names)) == len(kind.op_names)
        for name in kind.op_names:
            counts[name] += len(kind.layers)
    assert counts == Counter({op.name: op.count for op in analysis.ops if op.name in counts})
    outside = [op.name for op in analysis.ops if op.name not in counts]
    assert all(not name.startswith("layer") for name in outside), outside
    assert sorted(i for kind in kinds for i in kind.layers) == list(range(len(analysis.model.layers)))
    assert all(analysis.model.layers[i] == kind.block for kind in kinds for i in kind.layers)


@pytest.mark.parametrize("phase", ["decode", "prefill"])
@pytest.mark.parametrize("model", model_names())
def test_every_catalogue_model(model: str, phase: str) -> None:
    analysis = analyze(model, DEVICE, phase=phase, seq_len=512)
    check_graph(analysis, _graph(analysis))
    _layer_ops_match(analysis)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("model", VARIED)
def test_kernel_options(model: str, options: dict[str, Any]) -> None:
    analysis = analyze(model, DEVICE, **options)
    check_graph(analysis, _graph(analysis))
    _layer_ops_match(analysis)


def test_lfm2_has_ten_convolution_and_six_attention_layers() -> None:
    analysis = analyze("lfm2-1.2b", DEVICE)
    graph = _graph(analysis)
    kinds = {s["kind"]: s for s in _sections(graph)}
    assert set(kinds) == {"conv+mlp", "attention+mlp"}
    assert kinds["conv+mlp"]["repeat"] == 10 and kinds["attention+mlp"]["repeat"] == 6
    assert kinds["attention+mlp"]["layers"] == [2, 5, 8, 10, 12, 14]  # LFM2-1.2B's full_attn_idxs
    # the norm both kinds run is one operator of 16 instances, drawn in each section
    assert len(graph["op_nodes"]["layer.attn_norm"]) == 2
    assert graph["ops"]["layer.attn_norm"] == graph["op_nodes"]["layer.attn_norm"][0]
    conv = kinds["conv+mlp"]
    chain = [_node(conv, f"conv.{p}") for p in ("in_proj", "gate_in", "conv", "gate_out", "out_proj")]
    assert [n["column"] for n in chain] == [1, 2, 3, 4, 5]  # after the norm, one stage each
    assert "short convolution" in conv["title"]


def test_gemma3_has_five_global_and_29_window_layers() -> None:
    graph = _graph(analyze("gemma-3-4b", DEVICE))
    sections = _sections(graph)
    assert [s["repeat"] for s in sections] == [29, 5]
    window, full = sections
    assert full["layers"] == [5, 11, 17, 23, 29]  # every sixth layer
    assert "global attention" in full["title"] and "6, 12, 18, 24, 30" in full["title"]  # 1-based
    assert "sliding-window attention W=1024" in window["title"]
    assert _node(window, "attn.window.qk") and _node(full, "layer.attn.qk")
    # post-norms sit between each sublayer and its residual add
    post, add = _node(full, "attn_post_norm"), _node(full, "attn_residual")
    assert {"from": post["id"], "to": add["id"], "kind": "data"} in full["edges"]


def test_deepseek_dense_then_moe_layers_and_latent_attention() -> None:
    graph = _graph(analyze("deepseek-v3", DEVICE, mla="naive"))
    dense, moe = _sections(graph)
    assert (dense["repeat"], dense["kind"], moe["repeat"], moe["kind"]) == (3, "attention+mlp", 58, "attention+moe")
    assert dense["layers"] == [0, 1, 2]
    assert _node(moe, "mlp.act")["op"] == "layer[1].mlp.act"  # _merge_layers' name for the experts' activation
    decompress = _node(moe, "attn.kv_b_proj")
    assert decompress["row"] == _node(moe, "attn.kv_a_proj")["row"] != _node(moe, "attn.q_a_proj")["row"]
    router, routed, shared = (_node(moe, s) for s in ("mlp.router", "experts.gate_proj", "shared.gate_proj"))
    assert router["column"] < routed["column"]
    assert shared["row"] not in (routed["row"], _node(moe, "experts.up_proj")["row"])  # beside the routed experts
    combine = _node(moe, "mlp.combine")
    sources = {e["from"] for e in moe["edges"] if e["to"] == combine["id"]}
    assert sources == {_node(moe, "experts.down_proj")["id"], _node(moe, "shared.down_proj")["id"]}


def test_deepseek_mtp_module_is_its_own_section() -> None:
    analysis = analyze(load_model("deepseek-v3").with_mtp(), DEVICE)
    graph = _graph(analysis)
    check_graph(analysis, graph)
    ids = [s["id"] for s in graph["sections"]]
    assert ids[-2:] == ["head", "mtp"]
    mtp = graph["sections"][-1]
    assert mtp["repeat"] == 1 and mtp["kind"] == "attention+moe"
    eh = _node(mtp, "mtp.eh_proj")
    feeds = {e["from"] for e in mtp["edges"] if e["to"] == eh["id"]}
    assert feeds == {_node(mtp, "mtp.enorm")["id"], _node(mtp, "mtp.hnorm")["id"]}
    skip = [e for e in mtp["edges"] if e["to"] == _node(mtp, "mtp.attn_residual")["id"] and e["kind"] == "residual"]
    assert skip == [{"from": eh["id"], "to": _node(mtp, "mtp.attn_residual")["id"], "kind": "residual"}]


def test_falcon_h1_runs_mamba_beside_attention() -> None:
    (section,) = _sections(_graph(analyze("falcon-h1-0.5b", DEVICE)))
    assert section["kind"] == "attention+ssm+mlp"
    ssm, q = _node(section, "ssm.in_proj"), _node(section, "attn.q_proj")
    assert ssm["column"] == q["column"] and ssm["row"] != q["row"]
    add = _node(section, "attn_residual")
    into = {e["from"] for e in section["edges"] if e["to"] == add["id"] and e["kind"] == "data"}
    assert into == {_node(section, "ssm.out_proj")["id"], _node(section, "attn.o_proj")["id"]}


def test_phi2_parallel_block_has_one_residual_add() -> None:
    (section,) = _sections(_graph(analyze("phi-2", DEVICE)))
    assert section["parallel"] is True
    assert _node(section, "mlp.fc")["column"] == _node(section, "attn.q_proj")["column"]
    add = _node(section, "layer.residual")
    into = {e["from"]: e["kind"] for e in section["edges"] if e["to"] == add["id"]}
    assert into == {_node(section, "attn.o_proj")["id"]: "data", _node(section, "mlp.proj")["id"]: "data",
                    _node(section, "attn_norm")["id"]: "residual"}


def test_flash_attention_is_one_node() -> None:
    graph = _graph(analyze("llama-2-7b", DEVICE, flash_attention=True))
    (section,) = _sections(graph)
    flash = _node(section, "attn.flash")
    assert flash["label"] == "flash attention"
    into = {e["from"] for e in section["edges"] if e["to"] == flash["id"]}
    assert into == {_node(section, "attn.rope")["id"], _node(section, "attn.v_proj")["id"]}
    assert not [n for n in section["nodes"] if n["op"].endswith(("attn.qk", "attn.softmax", "attn.sv"))]
    act = _node(section, "mlp.act")  # SwiGLU: SiLU(gate) x up
    assert act["label"] == "SwiGLU"
    assert {e["from"] for e in section["edges"] if e["to"] == act["id"]} == {
        _node(section, "mlp.gate_proj")["id"], _node(section, "mlp.up_proj")["id"]}


def test_layer_numbers() -> None:
    assert layer_numbers((0, 1, 2, 5)) == "1–3, 6"
    assert layer_numbers((5, 11, 17, 23, 29)) == "6, 12, 18, 24, 30"
    assert layer_numbers((0, 2, 4, 6, 8, 10)) == "1, 3, 5, …, 11"


def test_graph_module_imports_no_numpy() -> None:
    source = Path(__file__).resolve().parents[1] / "src" / "llm_roofline" / "faces" / "report" / "graph.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "numpy" not in imported
