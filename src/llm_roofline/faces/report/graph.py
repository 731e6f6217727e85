"""The model as a picture: the dataflow of one step's operators, layer kind by layer kind, as plain data.

The page draws it (``static/graph.js``): the embedding, then one section per distinct kind of layer
(``transformer.layer_kind_ops``: its layers and the names its operators have in ``Analysis.ops``), the
output head, and DeepSeek's multi-token-prediction module when the model runs it. Each node is one
operator of ``Analysis.ops``; its place comes from the tensors it reads and writes, which follow from its
name and its layer's ``Block`` (a recurrent mixer beside attention, a parallel block, latent attention, a
mixture of experts with shared experts), never from a table of model families:

- ``column``: the dataflow stage, one past the latest operator whose output it reads;
- ``row``: the lane among operators of the same stage (q, k and v; gate and up; routed and shared experts).

Edges are ``data`` (a tensor from one operator to the next) or ``residual`` (the skip connection from a
layer's input to its residual add, and from the first add to the second). No numbers are computed here:
the page colours each node from its operator's record in the device's analysis payload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from llm_roofline.core.architecture import Block, LinearAttention, ShortConv
from llm_roofline.core.roofline import Analysis
from llm_roofline.core.transformer import LayerKindOps, layer_kind_ops

_LAYER_PREFIX = re.compile(r"^(?:layer(?:\[\d+\])?|mtp)\.")
_ATTENTION_CORE = re.compile(r"^attn(?:\.(?:window|chunk|full))?\.(qk|softcap|softmax|sv|flash)$")
_RESIDUALS = ("attn_residual", "mlp_residual", "residual")
_MTP_OWN = ("enorm", "hnorm", "eh_proj", "final_norm", "lm_head")  # the module's operators outside its layer
_SKIP = "h"  # the residual stream: a layer's input and output
_GATED_ACTIVATIONS = {"silu": "SwiGLU", "gelu": "GeGLU", "gelu_tanh": "GeGLU", "relu": "ReGLU",
                      "swiglu_clamp": "SwiGLU"}
_ACTIVATIONS = {"silu": "SiLU", "gelu": "GELU", "gelu_tanh": "GELU", "relu": "ReLU"}
_LABELS = {
    "embed": "embedding", "final_norm": "final norm", "lm_head": "lm_head", "final_softcap": "logit softcap",
    "final_scale": "logit scale", "enorm": "embed norm", "hnorm": "hidden norm", "eh_proj": "eh_proj",
    "attn_post_norm": "post-norm", "mlp_post_norm": "post-norm", "attn_residual": "+ residual",
    "mlp_residual": "+ residual", "residual": "+ residual",
    "attn.q_norm": "q norm", "attn.k_norm": "k norm", "attn.q_a_norm": "q latent norm",
    "attn.kv_a_norm": "kv latent norm", "attn.rope": "RoPE", "attn.q_absorb": "absorb q",
    "attn.v_absorb": "absorb v", "attn.gate": "output gate",
    "mlp.router": "router", "mlp.router_softmax": "router softmax", "mlp.experts.gate_proj": "experts gate",
    "mlp.experts.up_proj": "experts up", "mlp.experts.down_proj": "experts down", "mlp.shared.gate_proj": "shared gate",
    "mlp.shared.up_proj": "shared up", "mlp.shared.down_proj": "shared down", "mlp.shared_expert_gate": "shared σ-gate",
    "mlp.combine": "combine",
    "conv.gate_in": "B·x gate", "conv.conv": "conv1d", "conv.gate_out": "C· gate",
    "linear_attn.in_proj_qkvz": "in_proj qkvz", "linear_attn.in_proj_ba": "in_proj ba",
    "linear_attn.scan": "delta rule", "ssm.scan": "SSD scan", "ssm.gate": "SiLU gate",
}
_CORE_LABELS = {"qk": "QKᵀ", "softcap": "softcap", "softmax": "softmax", "sv": "P·V", "flash": "flash attention"}


class _Wiring(NamedTuple):
    """What an operator reads and writes, as named tensors, and the lane it prefers (None: its input's)."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    lane: int | None = None


def _top_wiring(name: str) -> _Wiring | None:
    """The embedding and the output head (and the MTP module's own inputs and head)."""
    return {
        "embed": _Wiring((), (_SKIP,)),
        "final_norm": _Wiring((_SKIP,), ("x",)),
        "lm_head": _Wiring(("x",), ("logits",)),
        "final_softcap": _Wiring(("logits",), ("logits",)),
        "final_scale": _Wiring(("logits",), ("logits",)),
        "enorm": _Wiring((), ("e",), 0),
        "hnorm": _Wiring((), ("hn",), 1),
        "eh_proj": _Wiring(("e", "hn"), (_SKIP,), 0),
    }.get(name)


def _attention_wiring(name: str, block: Block, base: int) -> _Wiring | None:
    a = block.attention
    if a is None:
        return None
    core = _ATTENTION_CORE.match(name)
    if core:
        return {"qk": _Wiring(("q", "k", "kpe"), ("s",)), "softcap": _Wiring(("s",), ("s",)),
                "softmax": _Wiring(("s",), ("p",)), "sv": _Wiring(("p", "v"), ("o",)),
                "flash": _Wiring(("q", "k", "kpe", "v"), ("o",))}[core.group(1)]
    rope = ("q", "kpe") if a.is_mla else ("q", "k")
    return {
        "attn.q_proj": _Wiring(("x",), ("q", "g") if a.output_gate else ("q",), base),
        "attn.k_proj": _Wiring(("x",), ("k",), base + 1),
        "attn.v_proj": _Wiring(("x",), ("v",), base + 2),
        "attn.q_a_proj": _Wiring(("x",), ("ql",), base),
        "attn.q_a_norm": _Wiring(("ql",), ("ql",)),
        "attn.q_b_proj": _Wiring(("ql",), ("q",)),
        "attn.kv_a_proj": _Wiring(("x",), ("kvl", "kpe"), base + 1),
        # absorbed latent attention attends to the normed latent itself: it is the keys and the values
        "attn.kv_a_norm": _Wiring(("kvl",), ("kvl", "k", "v")),
        "attn.kv_b_proj": _Wiring(("kvl",), ("k", "v")),
        "attn.q_norm": _Wiring(("q",), ("q",)),
        "attn.k_norm": _Wiring(("k",), ("k",)),
        "attn.rope": _Wiring(rope, rope),
        "attn.q_absorb": _Wiring(("q",), ("q",)),
        "attn.v_absorb": _Wiring(("o",), ("o",)),
        "attn.gate": _Wiring(("o", "g"), ("o",)),
        "attn.o_proj": _Wiring(("o",), ("a",)),
    }.get(name)


def _mixer_wiring(name: str, block: Block, base: int) -> _Wiring | None:
    mixer = block.mixer
    if mixer is None or not name.startswith(mixer.name + "."):
        return None
    role = name.removeprefix(mixer.name + ".")
    if role.startswith("in_proj"):
        side = role.endswith("_ba")  # Gated DeltaNet's write strengths and decays, beside q, k, v and z
        return _Wiring(("x",), ("cb",) if side else ("c",), base + side)
    if role == "out_proj":
        return _Wiring(("c",), ("m",))
    return _Wiring(("c", "cb") if role == "scan" else ("c",), ("c",))


def _mlp_wiring(name: str, block: Block, base: int) -> _Wiring | None:
    mlp = block.mlp
    if mlp is None:
        return None
    if mlp.is_moe:
        return {
            "mlp.router": _Wiring(("x",), ("r",), base),
            "mlp.router_softmax": _Wiring(("r",), ("r",)),
            "mlp.experts.gate_proj": _Wiring(("r",), ("eg",), base),
            "mlp.experts.up_proj": _Wiring(("r",), ("eu",), base + 1),
            "mlp.act": _Wiring(("eg", "eu"), ("ey",)),
            "mlp.experts.down_proj": _Wiring(("ey",), ("e",)),
            "mlp.shared.gate_proj": _Wiring(("x",), ("sg",), base + 2),
            "mlp.shared.up_proj": _Wiring(("x",), ("su",), base + 3),
            "mlp.shared.act": _Wiring(("sg", "su"), ("sy",)),
            "mlp.shared.down_proj": _Wiring(("sy",), ("s",)),
            "mlp.shared_expert_gate": _Wiring(("x",), ("sz",), base + 1),
            "mlp.combine": _Wiring(("e", "s", "sz"), ("f",)),
        }.get(name)
    return {
        "mlp.gate_proj": _Wiring(("x",), ("mg",), base),
        "mlp.up_proj": _Wiring(("x",), ("mu",), base + 1),
        "mlp.fc": _Wiring(("x",), ("mg",), base),
        "mlp.act": _Wiring(("mg", "mu"), ("my",)),
        "mlp.down_proj": _Wiring(("my",), ("f",)),
        "mlp.proj": _Wiring(("my",), ("f",)),
    }.get(name)


def _layer_wiring(name: str, block: Block) -> _Wiring | None:
    """An operator of a decoder layer, by its name without the ``layer.`` prefix."""
    sublayers = {
        "attn_norm": _Wiring((_SKIP,), ("x",), 0),
        "attn_post_norm": _Wiring(("a", "m"), ("a", "m")),
        "attn_residual": _Wiring((_SKIP, "a", "m"), (_SKIP,), 0),
        "mlp_norm": _Wiring((_SKIP,), ("x",), 0),
        "mlp_post_norm": _Wiring(("f",), ("f",)),
        "mlp_residual": _Wiring((_SKIP, "f"), (_SKIP,), 0),
        "residual": _Wiring((_SKIP, "a", "f"), (_SKIP,), 0),
    }
    if name in sublayers:
        return sublayers[name]
    mixer_lanes = 0 if block.mixer is None else 1 + isinstance(block.mixer, LinearAttention)
    attention_lanes = 0 if block.attention is None else 2 if block.attention.is_mla else 3
    return (_mixer_wiring(name, block, 0) or _attention_wiring(name, block, mixer_lanes)
            or _mlp_wiring(name, block, attention_lanes if block.parallel else 0))


@dataclass(frozen=True, slots=True)
class _Node:
    id: str
    op: str  # the operator's name in ``Analysis.ops``
    label: str
    column: int
    row: int
    group: str
    instances: int  # the operator's instances this node stands for: its section's layers

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "op": self.op, "label": self.label, "column": self.column, "row": self.row,
                "group": self.group, "instances": self.instances}


@dataclass
class _Section:
    """One section being laid out: its nodes and edges, and which node last wrote each tensor."""

    id: str
    title: str
    instances: int
    layers: tuple[int, ...] = ()
    block: Block | None = None
    nodes: list[_Node] = field(default_factory=list)
    edges: list[dict[str, str]] = field(default_factory=list)
    writers: dict[str, _Node] = field(default_factory=dict)
    skip_source: _Node | None = None  # the first operator to read the layer's input: where its skip starts
    taken: set[tuple[int, int]] = field(default_factory=set)

    def add(self, op_name: str, local: str, group: str, wiring: _Wiring | None) -> None:
        if wiring is None:  # an operator this picture does not know yet: after the one before it
            wiring = _Wiring(("_previous",), ())
        sources: list[tuple[_Node, str]] = []
        reads_input = False
        for tensor in wiring.reads:
            writer = self._writer(tensor)
            residual = tensor == _SKIP and local in _RESIDUALS
            if residual:
                writer = writer or self.skip_source
            elif writer is None and tensor in (_SKIP, "x"):
                reads_input = True
            if writer is not None and all(writer is not seen for seen, _ in sources):
                sources.append((writer, "residual" if residual else "data"))
        column = 1 + max((source.column for source, _ in sources), default=-1)
        lane = wiring.lane if wiring.lane is not None else sources[0][0].row if sources else 0
        while (column, lane) in self.taken:
            lane += 1
        self.taken.add((column, lane))
        node = _Node(f"{self.id}.{local}", op_name, _label(local, self.block), column, lane, group, self.instances)
        self.nodes.append(node)
        self.edges += [{"from": source.id, "to": node.id, "kind": kind} for source, kind in sources]
        if reads_input and self.skip_source is None:
            self.skip_source = node
        for tensor in wiring.writes:
            self.writers[tensor] = node
        if local == "attn_residual":  # the MLP reads the new residual stream, or its norm's output
            self.writers.pop("x", None)
        self.writers["_previous"] = node

    def _writer(self, tensor: str) -> _Node | None:
        if tensor == "x" and "x" not in self.writers:  # no norm before it: the layer's input itself
            tensor = _SKIP
        return self.writers.get(tensor)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"id": self.id, "title": self.title, "repeat": self.instances,
                                   "layers": list(self.layers)}
        if self.block is not None:
            mlp = self.block.mlp
            data["kind"] = self.block.mixer_kind + ("" if mlp is None else "+moe" if mlp.is_moe else "+mlp")
            data["parallel"] = self.block.parallel
        data["nodes"] = [node.to_dict() for node in self.nodes]
        data["edges"] = self.edges
        return data


def _label(local: str, block: Block | None) -> str:
    core = _ATTENTION_CORE.match(local)
    if core:
        return _CORE_LABELS[core.group(1)]
    if local in ("attn_norm", "mlp_norm") and block is not None:
        return "LayerNorm" if block.norm == "layernorm" else "RMSNorm"
    if local in ("mlp.act", "mlp.shared.act") and block is not None and block.mlp is not None:
        gated = block.mlp.gated or block.mlp.is_moe
        return _GATED_ACTIVATIONS.get(block.mlp.activation, "GLU") if gated else _ACTIVATIONS.get(
            block.mlp.activation, block.mlp.activation)
    if local in _LABELS:
        return _LABELS[local]
    mixer = block.mixer if block is not None else None
    if mixer is not None and local.startswith(mixer.name + "."):
        role = local.removeprefix(mixer.name + ".")
        return {"conv": "conv1d", "conv_act": "SiLU", "norm": "gated norm"}.get(role, role)
    return local.rsplit(".", 1)[-1]


def _attention_title(block: Block, several_spans: bool) -> str:
    a = block.attention
    assert a is not None
    if a.is_mla:
        text = "latent attention (MLA)"
    elif a.span[0] == "window":
        text = f"sliding-window attention W={a.span[1]}"
    elif a.span[0] == "chunk":
        text = f"chunked attention C={a.span[1]}"
    else:
        text = "global attention" if several_spans else "attention"
    return text + (" without RoPE" if a.rotary_dim == 0 and not a.is_mla else "")


def _block_title(block: Block, several_spans: bool) -> str:
    """'global attention + MLP', 'short convolution + MLP', 'Mamba-2 ∥ attention + MLP', 'attention ∥ MLP'."""
    mixer = block.mixer
    mixers = []
    if mixer is not None:
        mixers.append("short convolution" if isinstance(mixer, ShortConv) else
                      "linear attention (Gated DeltaNet)" if isinstance(mixer, LinearAttention) else "Mamba-2 SSM")
    if block.attention is not None:
        mixers.append(_attention_title(block, several_spans))
    text = " ∥ ".join(mixers)
    mlp = block.mlp
    if mlp is None:
        return text
    if mlp.is_moe:
        shared = ", shared expert" if mlp.shared_intermediate_size else ""
        ffn = f"MoE {mlp.experts} experts top-{mlp.experts_per_token}{shared}"
    else:
        ffn = "MLP"
    return f"{text} {'∥' if block.parallel else '+'} {ffn}"


def layer_numbers(layers: tuple[int, ...], most: int = 5) -> str:
    """0-based layer positions as 1-based numbers in runs: (0, 1, 2, 5) -> '1–3, 6'; past ``most`` runs, the
    first ones, an ellipsis and the last."""
    runs: list[list[int]] = []
    for layer in layers:
        if runs and layer == runs[-1][-1] + 1:
            runs[-1].append(layer)
        else:
            runs.append([layer])
    texts = [f"{run[0] + 1}–{run[-1] + 1}" if len(run) > 1 else str(run[0] + 1) for run in runs]
    if len(texts) > most:
        texts = [*texts[:most - 2], "…", texts[-1]]
    return ", ".join(texts)


def _kind_title(kind: LayerKindOps, several_kinds: bool, several_spans: bool) -> str:
    n = len(kind.layers)
    what = _block_title(kind.block, several_spans)
    if not several_kinds:
        return f"{n} × decoder layer{'s' if n > 1 else ''} ({what})"
    return f"{n} × {what} (layer{'s' if n > 1 else ''} {layer_numbers(kind.layers)})"


def layer_graph(analysis: Analysis) -> dict[str, object]:
    """The dataflow graph of ``analysis``' operators, JSON-ready.

    ``{"sections": [...], "ops": {op name: node id}, "op_nodes": {op name: [node ids]}, "layer_numbering"}``:
    a section per part of the model (``embed``, ``kind-0``, ``kind-1``…, ``head``, then ``mtp`` when the
    model runs its multi-token-prediction module), each ``{"id", "title", "repeat", "layers", ("kind",
    "parallel": layer sections), "nodes", "edges"}``; a node ``{"id", "op", "label", "column", "row", "group",
    "instances"}``, an edge ``{"from", "to", "kind": "data" | "residual"}``. Every operator of
    ``analysis.ops`` is a node; one that several kinds of layer share (``layer.attn_norm`` in LFM2) is a node
    in each, and ``ops`` maps it to the first.
    """
    model = analysis.model
    kinds = layer_kind_ops(model, analysis.workload)
    groups = {op.name: op.group for op in analysis.ops}
    in_layers = {name for kind in kinds for name in kind.op_names}
    first_layer_op = next((i for i, op in enumerate(analysis.ops) if op.name in in_layers), len(analysis.ops))
    several_spans = len({kind.block.attention.span for kind in kinds if kind.block.attention is not None}) > 1

    embed, head = _Section("embed", "embedding", 1), _Section("head", "output", 1)
    mtp_ops = [op for op in analysis.ops if op.name.startswith("mtp.")]
    for index, op in enumerate(analysis.ops):
        if op.name not in in_layers and not op.name.startswith("mtp."):
            (embed if index < first_layer_op else head).add(op.name, op.name, op.group, _top_wiring(op.name))
    sections = [embed]
    for number, kind in enumerate(kinds):
        section = _Section(f"kind-{number}", _kind_title(kind, len(kinds) > 1, several_spans), len(kind.layers),
                           kind.layers, kind.block)
        for name in kind.op_names:
            local = _LAYER_PREFIX.sub("", name)
            section.add(name, local, groups[name], _layer_wiring(local, kind.block))
        sections.append(section)
    sections.append(head)
    if mtp_ops:
        block, modules = model.layers[-1], mtp_ops[0].count
        title = f"{modules} × multi-token prediction module{'s' if modules > 1 else ''} (a decoder layer like the last)"
        mtp = _Section("mtp", title, modules, (), block)
        for op in mtp_ops:
            local = _LAYER_PREFIX.sub("", op.name)
            mtp.add(op.name, local, op.group, _top_wiring(local) if local in _MTP_OWN else _layer_wiring(local, block))
        sections.append(mtp)

    op_nodes: dict[str, list[str]] = {}
    for section in sections:
        for node in section.nodes:
            op_nodes.setdefault(node.op, []).append(node.id)
    return {"sections": [section.to_dict() for section in sections],
            "ops": {name: ids[0] for name, ids in op_nodes.items()}, "op_nodes": op_nodes,
            "layer_numbering": "titles number layers from 1; a section's layers list counts from 0"}
