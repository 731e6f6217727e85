"""A model and a workload become a list of named operators: prefill and decode are one code path.

A step processes ``q_len`` new tokens per sequence against ``past_len`` tokens already in the KV
cache: prefill is q_len = prompt length, past_len = 0; decode is q_len = 1 (or the ``new_tokens`` a
speculative verification checks), past_len = tokens cached. Each distinct kind of layer in the
model's description is priced once, so a per-layer operator appears once with ``instances`` = the layers
that run it; where layers share a role in different formats (a per-layer mix of weight formats), the
per-instance figures are the mean over layers, so count x figures is the exact total.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, ParamSpec, TypeVar, overload

from llm_roofline.core import architecture as arch
from llm_roofline.core import compiled, limits, ops
from llm_roofline.core.architecture import FULL, MLP, Attention, Block, LinearAttention, ShortConv, Span, StateSpace
from llm_roofline.core.engines import check_engine, kv_padding_of
from llm_roofline.core.errors import InputError, one_of
from llm_roofline.core.formats import NumberFormat, WeightScheme, get_format, product_math
from llm_roofline.core.models import ModelSpec
from llm_roofline.core.quant import (
    WeightsSpec,
    default_weight_format,
    is_sparse,
    sparse_scheme,
    weight_scheme,
    weights_label,
)
from llm_roofline.core.units import Array, Quantity, Scalar, is_array, minimum

if TYPE_CHECKING:
    from llm_roofline.core.hardware import HardwareSpec

PHASES = ("prefill", "decode")
LM_HEAD_MODES = ("last", "all")
MLA_FORMS = ("naive", "absorbed")
FUSE_MODES = ("none", "elementwise")  # elementwise: norms, RoPE, activations, residual adds inside the matmuls
SPARSITY_MODES = ("none", "2:4")  # 2:4: the layers' projections pruned 2:4, run on sparse tensor cores
# Elementwise kernels (norms, softmax, adds) run in 16-bit even when the matmuls take 8-bit inputs.
_NARROW_MATH = {"int8": "fp16", "int4": "fp16", "fp8": "fp16", "fp4": "fp16"}


Length = TypeVar("Length", int, Array)  # a token count: one step's, or an array of a grid's


def phase_lengths(phase: str, seq_len: Length, new_tokens: int = 1) -> tuple[Length, Length]:
    """(q_len, past_len) of a step: the tokens it processes per sequence and the tokens already cached.

    Prefill processes the prompt (``seq_len`` tokens) with nothing cached; decode processes
    ``new_tokens`` per sequence after ``seq_len`` cached ones. Numbers or numpy arrays (the sweep's grid).
    """
    if phase == "prefill":
        return seq_len, seq_len * 0
    return seq_len * 0 + new_tokens, seq_len


def attended_past_len(q_len: Quantity, past_len: Quantity, kv_padding: int | None) -> Quantity:
    """The cached positions a step's attention reads, given ``past_len`` cached and ``q_len`` new per sequence:
    ``past_len`` itself, or, for an engine that pads the cache it attends over to a multiple of ``kv_padding``
    positions (llama.cpp: 256, ``engines.toml``), the padded length less the step's own positions. The padding
    is masked, but its keys and values are read and its scores computed (``step_counts`` takes the result as
    the step's past for its attention). Numbers or numpy arrays."""
    if kv_padding is None:
        return past_len
    return -(-(past_len + q_len) // kv_padding) * kv_padding - q_len


def step_math(activations: NumberFormat, weights: NumberFormat | WeightScheme | None = None) -> str:
    """The precision a step's bound is judged in: the one its weight matmuls run in, the wider of the
    activations' and the (main) weight format's (``formats.product_math``: W4A16 and W16A16 run fp16,
    W8A8 int8, W16A8 fp16). ``HardwareSpec.peak_for`` maps it to the device's ceiling, falling back where
    the device has no unit for it. Without weights: the activations' math (the operators' default)."""
    if weights is None:
        return activations.math
    main = weights.default if isinstance(weights, WeightScheme) else weights
    return product_math(activations.math, main.math)


def on_device(model: ModelSpec, workload: Workload, hardware: HardwareSpec) -> tuple[Workload, str | None]:
    """``workload`` as ``hardware`` runs it, and a note when it cannot run as asked.

    2:4 sparsity prunes the decoder layers' projections (``quant.sparse_scheme``: half the values with a
    2-bit index each, half the multiplies) on a device with sparse tensor cores (``sparse_2_4``, cited in
    its file); elsewhere the model runs dense, and the note says so.
    """
    if workload.sparsity == "none" or is_sparse(workload.weights):
        return workload, None
    if not hardware.sparse_2_4:
        return workload, (f"2:4 sparsity needs sparse tensor cores, which {hardware.name} does not have "
                          f"(sparse_2_4 in its device file): priced dense")
    return replace(workload, weights=sparse_scheme(workload.weight_scheme(model))), None


def mla_absorbed(phase: str, mla: str | None) -> bool:
    """Whether latent attention runs weight-absorbed: as asked, else absorbed for decode and naive for
    prefill (what engines do: absorption saves the cache's up-projection per step but costs FLOPs per token)."""
    return phase == "decode" if mla is None else mla == "absorbed"


@dataclass(frozen=True, slots=True)
class Workload:
    """What is run: the phase, batch and length, the number formats, and the kernel options.

    ``seq_len`` is the prompt length for prefill and the number of tokens already cached for
    decode (the new token attends to them and to itself).

    ``weights``: a format (every matrix in it), a llama.cpp mix (``q4_k_m``), a ``WeightScheme``, or
    None for the model's own formats (a GGUF file's tensor types; fp16 for a config.json model).
    ``weight_format`` is the format most weights are in; ``weight_scheme(model)`` is the full scheme.
    ``new_tokens``: decode only, the tokens each sequence processes in the step (1; gamma + 1 when a
    target model verifies gamma drafted tokens).

    A **fixed-shape graph** (an NPU runtime's compiled decode step: Core ML, QNN, LiteRT) computes the same
    shapes whatever the sequence holds, and a step still yields one token per sequence: ``graph_tokens``
    positions per step (the graph's width, the real token one of them; 1: no padding) over a cache of
    ``graph_context`` positions read in full (the graph's capacity, the step's own positions included; None:
    ``seq_len`` cached tokens, as without a graph). Decode only, with ``new_tokens`` 1.
    """

    phase: str = "decode"
    batch: int = 1
    seq_len: int = 1024
    weights: WeightsSpec = None
    activations: NumberFormat | str | float = "fp16"
    kv_cache: NumberFormat | str | float | None = None  # None: the activations' format
    flash_attention: bool = False
    causal_skip: bool | None = None  # None: skip masked scores exactly when flash_attention is on
    lm_head: str = "last"  # "last": logits for the last token of each sequence; "all": every token
    new_tokens: int = 1
    mla: str | None = None  # multi-head latent attention: "naive" or "absorbed"; None: naive prefill, absorbed decode
    fuse: str = "none"  # "elementwise": elementwise operators run inside their neighbouring matmul (ops.fused_cost)
    sparsity: str = "none"  # "2:4": the layers' projections pruned 2:4 where the device has sparse units (on_device)
    engine: str | None = None  # the inference engine (engines.py): its fitted figures and fusion; None: the class's
    graph_tokens: int = 1  # decode: positions a fixed-shape graph computes per step (one real token); 1: no padding
    graph_context: int | None = None  # decode: the cache a fixed-shape graph attends over, in full; None: seq_len
    weight_format: NumberFormat = field(init=False, repr=False, compare=False)
    activation_format: NumberFormat = field(init=False, repr=False, compare=False)
    kv_format: NumberFormat = field(init=False, repr=False, compare=False)
    q_len: int = field(init=False, repr=False, compare=False)  # tokens processed per sequence (phase_lengths)
    past_len: int = field(init=False, repr=False, compare=False)  # tokens already cached per sequence

    def __post_init__(self) -> None:
        one_of("phase", self.phase, PHASES)
        for label in ("batch", "seq_len", "new_tokens", "graph_tokens"):
            limits.count(label, getattr(self, label), limits.WORKLOAD[label])
        if self.phase == "prefill" and self.new_tokens != 1:
            raise InputError("new_tokens applies to decode steps; a prefill step processes seq_len tokens")
        if self.graph_context is not None:
            limits.count("graph_context", self.graph_context, limits.WORKLOAD["graph_context"])
            if self.graph_context <= self.graph_tokens:
                raise InputError(f"graph_context must exceed graph_tokens ({self.graph_tokens}): the cache a fixed-"
                                 f"shape graph attends over holds the step's own positions and earlier ones, "
                                 f"got {self.graph_context}")
        if self.fixed_graph and self.phase != "decode":
            raise InputError("graph_tokens and graph_context describe a fixed-shape decode graph; a prefill step "
                             "processes seq_len tokens")
        if self.fixed_graph and self.new_tokens != 1:
            raise InputError("a fixed-shape graph yields one token per sequence per step: new_tokens must be 1 "
                             "with graph_tokens or graph_context")
        if self.mla is not None and self.mla not in MLA_FORMS:
            raise InputError(f"mla must be one of {', '.join(MLA_FORMS)} or None, got {self.mla!r}")
        for option, text, choices in (("sparsity", self.sparsity, SPARSITY_MODES), ("fuse", self.fuse, FUSE_MODES),
                                      ("lm_head", self.lm_head, LM_HEAD_MODES)):
            one_of(option, text, choices)
        check_engine(self.engine)
        activations = get_format(self.activations)
        object.__setattr__(self, "weight_format", default_weight_format(self.weights))
        object.__setattr__(self, "activation_format", activations)
        object.__setattr__(self, "kv_format", activations if self.kv_cache is None else get_format(self.kv_cache))
        q_len, past_len = phase_lengths(self.phase, self.seq_len, self.new_tokens)
        if self.fixed_graph:
            q_len = self.graph_tokens
            past_len = self.seq_len if self.graph_context is None else self.graph_context - self.graph_tokens
        object.__setattr__(self, "q_len", q_len)
        object.__setattr__(self, "past_len", past_len)

    @property
    def mla_absorbed(self) -> bool:
        """Whether latent attention runs weight-absorbed (the default for decode, as engines do)."""
        return mla_absorbed(self.phase, self.mla)

    @property
    def skips_masked_scores(self) -> bool:
        return self.flash_attention if self.causal_skip is None else self.causal_skip

    @property
    def fixed_graph(self) -> bool:
        """Whether the step is a fixed-shape graph's (``graph_tokens`` > 1 or a ``graph_context``)."""
        return self.graph_tokens > 1 or self.graph_context is not None

    @property
    def length_label(self) -> str:
        """'prompt 512 tokens', '1024 tokens cached', or a fixed-shape graph's shape, for headers."""
        if self.phase == "prefill":
            return f"prompt {self.seq_len} tokens"
        if self.fixed_graph:
            return (f"a fixed-shape graph of {self.q_len} positions over a {self.past_len + self.q_len}-position "
                    f"cache (one token per sequence)")
        return f"{self.seq_len} tokens cached"

    @property
    def tokens(self) -> int:
        """Tokens this step produces per second of work: prompt tokens (prefill) or new tokens (decode; one per
        sequence from a fixed-shape graph, whatever positions it computes)."""
        return self.batch * (1 if self.fixed_graph else self.q_len)

    @property
    def step_positions(self) -> int:
        """Positions the step computes, batch x new positions per sequence (a fixed-shape graph's padding
        included): what decides whether an engine replays the step as a captured graph
        (``efficiency.launch_overhead_s``)."""
        return self.batch * self.q_len

    @property
    def weights_label(self) -> str:
        """The weights' name in outputs: a mix's or scheme's name, else the format's."""
        return weights_label(self.weights)

    def weight_scheme(self, model: ModelSpec) -> WeightScheme:
        """The format of each of ``model``'s weight tensors under this workload."""
        return weight_scheme(model, self.weights)

    def to_dict(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "batch": self.batch,
            "seq_len": self.seq_len,
            "q_len": self.q_len,
            "past_len": self.past_len,
            "weights": self.weights_label,
            "activations": self.activation_format.name,
            "kv_cache": self.kv_format.name,
            "flash_attention": self.flash_attention,
            "causal_skip": self.skips_masked_scores,
            "lm_head": self.lm_head,
            "mla": "absorbed" if self.mla_absorbed else "naive",
            "fuse": self.fuse,
            "sparsity": self.sparsity,
            "engine": self.engine,
            "graph_tokens": self.graph_tokens,
            "graph_context": self.graph_context,
        }


class Op(NamedTuple, Generic[Quantity]):
    """One named operator of the model, its cost per instance, and how many instances run.

    ``Op[Scalar]``: an operator of one step; ``Op[Array]``: of a grid of steps (its costs are arrays).
    """

    name: str
    kind: str
    group: str  # attention, ffn, norm, residual, embedding, lm_head
    instances: int  # layers for a per-layer operator, else 1 (``count`` in analyze's records)
    cost: ops.OpCost[Quantity]
    math: str  # the precision its arithmetic runs in


def attention_pairs(q_len: Quantity, past_len: Quantity, causal_skip: bool, span: Span = FULL) -> Quantity:
    """(query, key) scores per sequence and head (conventions 4 and 6 in ops.py)."""
    kind, size = span
    kv_len = past_len + q_len
    if kind == "full":
        if causal_skip:
            return q_len * past_len + q_len * (q_len + 1) // 2
        return q_len * kv_len
    if not causal_skip:
        return q_len * keys_read(q_len, past_len, span)
    prefix = _window_prefix_pairs if kind == "window" else _chunk_prefix_pairs
    return prefix(kv_len, size) - prefix(past_len, size)


def keys_read(q_len: Quantity, past_len: Quantity, span: Span = FULL) -> Quantity:
    """Keys (and values) per sequence a step reads: all of them, the window its queries span, or the
    chunks they fall in (from the start of the first query's chunk)."""
    kind, size = span
    kv_len = past_len + q_len
    if kind == "window":
        return minimum(kv_len, size + q_len - 1)
    if kind == "chunk":
        return kv_len - size * (past_len // size)
    return kv_len


def _window_prefix_pairs(length: Quantity, window: int) -> Quantity:
    """Causal pairs of the first ``length`` positions with a window: sum over j <= length of min(j, W)."""
    inside = minimum(length, window)
    return inside * (inside + 1) // 2 + (length - inside) * window


def _chunk_prefix_pairs(length: Quantity, chunk: int) -> Quantity:
    """Causal pairs of the first ``length`` positions in chunks of C: each full chunk C(C+1)/2, then r(r+1)/2."""
    full, rest = length // chunk, length % chunk
    return full * (chunk * (chunk + 1) // 2) + rest * (rest + 1) // 2


class CountLayout(NamedTuple):
    """Which counts a model's steps are affine in: rows, then keys and scores per attention span, then the
    experts touched per kind of mixture (experts, experts per token), then — in a model with recurrent
    mixers — the sequences resuming from a stored state, the tokens of a recurrent (one-token) step and the
    chunks scanned per chunk size."""

    spans: tuple[Span, ...]
    mixtures: tuple[tuple[int, int], ...]
    size: int  # 2 + 2 x spans + mixtures (+ 2 + chunk sizes with recurrent mixers)
    chunk_sizes: tuple[int, ...] = ()
    recurrent: bool = False

    @property
    def recurrent_start(self) -> int:
        """Index of the first recurrent count (``resumed``)."""
        return 2 + 2 * len(self.spans) + len(self.mixtures)


@functools.lru_cache(maxsize=256)
def count_layout(model: ModelSpec) -> CountLayout:
    groups = model.groups
    spans = tuple(dict.fromkeys(a.span for a in model.attentions))
    mixtures = tuple(dict.fromkeys((b.mlp.experts, b.mlp.experts_per_token) for b, _ in groups
                                   if b.mlp is not None and b.mlp.is_moe))
    mixers = [b.mixer for b, _ in groups if b.mixer is not None]
    chunk_sizes = tuple(dict.fromkeys(m.chunk for m in mixers if m.chunk is not None))
    recurrent = bool(mixers)
    size = 2 + 2 * len(spans) + len(mixtures) + (2 + len(chunk_sizes) if recurrent else 0)
    return CountLayout(spans, mixtures, size, chunk_sizes, recurrent)


class StepCounts(tuple[Quantity, ...], Generic[Quantity]):
    """The counts a step's cost is affine in: every operator's FLOPs and bytes are c0 + sum_j c_j x count_j.

    Each is a total over the batch (numbers, or numpy arrays for a grid of steps), in the order of the
    model's ``CountLayout``: sequences (the rows lm_head scores when only the last token is kept), tokens
    (batch x q_len), then per attention span the cached keys read and the (query, key) scores per head,
    then per kind of mixture of experts the distinct experts touched (in expectation), then in a model with
    recurrent mixers (ops.py, convention 8): the sequences that resume from a stored state (batch when
    tokens are cached, else 0), the tokens of a recurrent step (batch when q_len is 1, else 0) and per chunk
    size C the chunks a longer step scans (batch x ceil(q_len / C), 0 for a one-token step).
    """

    layout: CountLayout

    def __new__(cls, layout: CountLayout, values: Sequence[Quantity]) -> StepCounts[Quantity]:
        if len(values) != layout.size:
            raise ValueError(f"a step of this model has {layout.size} counts, got {len(values)}")
        counts = tuple.__new__(cls, values)
        counts.layout = layout
        return counts

    @property
    def sequences(self) -> Quantity:
        return self[0]

    @property
    def tokens(self) -> Quantity:
        return self[1]

    def keys(self, span: Span) -> Quantity:
        return self[2 + 2 * self.layout.spans.index(span)]

    def scores(self, span: Span) -> Quantity:
        return self[3 + 2 * self.layout.spans.index(span)]

    def experts_touched(self, mixture: tuple[int, int]) -> Quantity:
        return self[2 + 2 * len(self.layout.spans) + self.layout.mixtures.index(mixture)]

    @property
    def resumed(self) -> Quantity:
        """Sequences whose recurrent state the step reads (they have tokens cached)."""
        return self[self.layout.recurrent_start]

    @property
    def recurrent_tokens(self) -> Quantity:
        """Tokens the recurrent form processes (a one-token step's); the others are scanned in chunks."""
        return self[self.layout.recurrent_start + 1]

    def chunks(self, size: int) -> Quantity:
        """Chunks of ``size`` tokens the step scans, over the batch."""
        return self[self.layout.recurrent_start + 2 + self.layout.chunk_sizes.index(size)]


def step_counts(model: ModelSpec, batch: Quantity, q_len: Quantity, past_len: Quantity,
                causal_skip: bool, kv_padding: int | None = None) -> StepCounts[Quantity]:
    """The counts of a step of ``q_len`` new tokens per sequence over ``past_len`` cached ones; ``kv_padding``:
    the engine's padding of the cache its attention reads (``attended_past_len``; a recurrent state is not
    padded).

    A grid's counts are float64, whatever its arrays hold: batch x scores reaches 2^68 at the largest
    batch and prompt (``limits.WORKLOAD``), past what int64 holds; Python integers are exact at any size."""
    if is_array(batch) or is_array(q_len) or is_array(past_len):
        batch, q_len, past_len = _float_grid(batch), _float_grid(q_len), _float_grid(past_len)
    layout = count_layout(model)
    tokens = batch * q_len
    values: list[Quantity] = [batch, tokens]
    attended = attended_past_len(q_len, past_len, kv_padding)
    for span in layout.spans:
        values += [batch * keys_read(q_len, attended, span),
                   batch * attention_pairs(q_len, attended, causal_skip, span)]
    values += [ops.expected_experts_touched(tokens, experts, k) for experts, k in layout.mixtures]
    if layout.recurrent:
        one_token = q_len < 2  # the recurrent form; longer steps scan in chunks (ops.py, convention 8)
        values += [batch * (past_len > 0), tokens * one_token]
        values += [batch * (-(-q_len // size)) * (1 - one_token) for size in layout.chunk_sizes]
    return StepCounts(layout, values)


def _float_grid(count: Quantity) -> Quantity:
    if not is_array(count):  # a number beside arrays: broadcast as it is
        return count
    import numpy as np

    return np.asarray(count, dtype=np.float64)


# The rows of a plan's coefficients: OpCost's fields (flops, weight_bytes, act_read_bytes, act_write_bytes,
# kv_read_bytes, kv_write_bytes), then their five byte categories summed.
COST_FIELDS = (*ops.OpCost._fields, "bytes")


def over_operators(values: Array, instances: Array) -> Array:
    """sum_i instances[i] x values[i, ...]: a per-instance figure summed over a step's operators (axis 0 of
    ``values``; its other axes, if any, are configurations)."""
    if values.ndim == 1:  # .dot: the fastest numpy call for small vectors (``@`` costs a few µs more)
        one: Array = values.dot(instances)
        return one
    total: Array = instances.dot(values.reshape(values.shape[0], -1)).reshape(values.shape[1:])
    return total


@dataclass(frozen=True, eq=False)
class StepPlan:
    """The operators of a step, each cost field kept as coefficients of the step counts.

    Built once per (model, weights, formats, kernel options) by evaluating ``_operators`` — the
    formulas of ``ops.py`` — with probes for counts (``compiled.Probe``: all zero, each count one alone,
    two generic points where a formula that is not affine shows). Every step of that plan is then
    ``coefficients · (1, *counts)``: for one step, a compiled Python function of the counts (no numpy);
    for a grid, one numpy product.
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    groups: tuple[str, ...]
    instances: tuple[int, ...]  # Op.instances: layers for per-layer operators, else 1
    maths: tuple[str, ...]
    weight_formats: tuple[NumberFormat | None, ...]  # the format of a matmul's weight matrix; None: reads none
    activations: NumberFormat
    rows: tuple[tuple[tuple[float, ...], ...], ...]  # [COST_FIELDS][operator] = (c0, c1, ..., c_counts)
    unique_maths: tuple[str, ...]  # the precisions in ``maths``, each once
    math_index: tuple[int, ...]  # maths[i] == unique_maths[math_index[i]]

    @functools.cached_property
    def coefficients(self) -> Array:
        """The coefficients as a read-only numpy array, (COST_FIELDS, operators, 1 + counts), for grids."""
        import numpy as np

        return _frozen(np.array(self.rows, dtype=np.float64))

    @functools.cached_property
    def instance_weights(self) -> Array:
        """``instances`` as float64, to sum a grid's figures x count."""
        import numpy as np

        return _frozen(np.array(self.instances, dtype=np.float64))

    @functools.cached_property
    def totals_rows(self) -> tuple[tuple[float, ...], ...]:
        """Per cost field, the coefficients of the step's total (sum over operators of instances x figures)."""
        return tuple(tuple(math.fsum(n * row[j] for n, row in zip(self.instances, field_rows, strict=True))
                           for j in range(len(field_rows[0]))) for field_rows in self.rows)

    @functools.cached_property
    def scalar_costs(self) -> Callable[..., tuple[tuple[float, ...], ...]]:
        """``(counts...) -> COST_FIELDS x operators`` for one step, in plain Python (``compiled.py``)."""
        names = [f"c{j}" for j in range(1, len(self.rows[0][0]))]
        body = ", ".join("(" + "".join(f"{compiled.affine_source(row, names)}, " for row in field_rows) + ")"
                         for field_rows in self.rows)
        return compiled.compile_function("costs", [f"def costs({', '.join(names)}):", f"    return ({body})"], {})

    def costs(self, counts: Sequence[Scalar] | Sequence[Array]) -> Any:
        """Every operator's ``COST_FIELDS``: a (7, operators) tuple of tuples of floats for one step's numbers,
        a (7, operators, n) numpy array for arrays of n steps."""
        if not any(is_array(count) for count in counts):
            return self.scalar_costs(*counts)
        import numpy as np

        vector = count_matrix(counts, np.broadcast(*counts).shape[0])
        fields, operators, size = self.coefficients.shape  # a grid: one 2-D product (BLAS), reshaped
        return self.coefficients.reshape(fields * operators, size).dot(vector).reshape(fields, operators, -1)

    @overload
    def ops(self, counts: Sequence[Scalar]) -> list[Op[Scalar]]: ...

    @overload
    def ops(self, counts: Sequence[Array]) -> list[Op[Array]]: ...

    def ops(self, counts: Sequence[Scalar] | Sequence[Array]) -> list[Op[Scalar]] | list[Op[Array]]:
        """The operators at ``counts``, as ``Op`` records: for numbers, ``Op[Scalar]`` whose costs are Python
        floats; for arrays of n steps, ``Op[Array]``."""
        costs = self.costs(counts)[:-1]
        rows = list(zip(*costs, strict=True)) if isinstance(costs, tuple) else list(costs.swapaxes(0, 1))
        return [Op(name, kind, group, n, ops.OpCost(*fields), math) for name, kind, group, n, math, fields
                in zip(self.names, self.kinds, self.groups, self.instances, self.maths, rows, strict=True)]


def count_matrix(counts: Sequence[Scalar] | Sequence[Array], n: int) -> Array:
    """(1, *counts) for ``n`` steps, as a (1 + counts, n) float64 matrix (numbers are repeated)."""
    import numpy as np

    matrix = np.empty((1 + len(counts), n), dtype=np.float64)
    matrix[0] = 1.0
    for row, count in zip(matrix[1:], counts, strict=True):
        row[...] = count
    return matrix


@functools.lru_cache(maxsize=256)
def step_plan(model: ModelSpec, weights: NumberFormat | WeightScheme, activations: NumberFormat,
              kv_format: NumberFormat, flash_attention: bool, lm_head_all_tokens: bool,
              mla_absorbed: bool = False, fuse_elementwise: bool = False) -> StepPlan:
    """The plan of ``model``'s steps under these formats and options (memoized: a pure function of
    frozen records; what varies from step to step is only the counts)."""
    scheme = weights if isinstance(weights, WeightScheme) else WeightScheme.uniform(weights)
    size = count_layout(model).size
    counts: StepCounts[Any] = StepCounts(count_layout(model), compiled.probes(size))
    operators = _operators(model, counts, scheme, activations, kv_format, flash_attention, lm_head_all_tokens,
                           mla_absorbed, fuse_elementwise)
    rows: list[list[tuple[float, ...]]] = [[] for _ in COST_FIELDS]
    for op in operators:
        for field_rows, value in zip(rows, (*op.cost, op.cost.bytes), strict=True):
            try:
                field_rows.append(compiled.coefficients(compiled.at_probes(value, size), size))
            except compiled.NotAffineError as error:
                raise ValueError(f"the cost of operator {op.name!r} is not affine in the step counts ({error}); "
                                 "see ops.py") from None
    weight_formats = tuple(scheme.format_for(weight_role(op.name, model.tied_embeddings))
                           if op.kind == "matmul" and any(rows[1][i]) else None
                           for i, op in enumerate(operators))
    maths = tuple(op.math for op in operators)
    unique_maths = tuple(dict.fromkeys(maths))
    return StepPlan(
        names=tuple(op.name for op in operators),
        kinds=tuple(op.kind for op in operators),
        groups=tuple(op.group for op in operators),
        instances=tuple(op.instances for op in operators),
        maths=maths,
        weight_formats=weight_formats,
        activations=activations,
        rows=tuple(tuple(field_rows) for field_rows in rows),
        unique_maths=unique_maths,
        math_index=tuple(unique_maths.index(math) for math in maths),
    )


def _frozen(array: Array) -> Array:
    array.setflags(write=False)
    return array


# Operators whose weights are part of another role's tensor: MLA's absorbed halves of kv_b_proj.
_ROLE_OF = {"attn.q_absorb": arch.KV_B_PROJ, "attn.v_absorb": arch.KV_B_PROJ}


def weight_role(op_name: str, tied_embeddings: bool) -> str:
    """The weight tensor an operator reads: its name without ``layer.`` (a tied lm_head reads the embedding)."""
    if op_name == "lm_head" and tied_embeddings:
        return arch.EMBED
    if op_name == "mtp.lm_head":  # the module shares the model's output head
        return arch.EMBED if tied_embeddings else arch.LM_HEAD
    if op_name == arch.MTP_EH_PROJ:
        return op_name
    name = op_name.split(".", 1)[1] if op_name.startswith(("layer", "mtp.")) else op_name
    return _ROLE_OF.get(name, name)


def workload_plan(model: ModelSpec, workload: Workload) -> StepPlan:
    """The plan of ``workload``'s steps on ``model``: its formats and kernel options (the one place a Workload
    becomes plan arguments)."""
    return step_plan(model, workload.weight_scheme(model), workload.activation_format, workload.kv_format,
                     workload.flash_attention, workload.lm_head == "all", workload.mla_absorbed,
                     workload.fuse == "elementwise")


def step_ops(model: ModelSpec, workload: Workload, *, batch: int | None = None, q_len: int | None = None,
             past_len: int | None = None) -> list[Op[Scalar]]:
    """The operators of ``workload``'s step, in execution order, layers aggregated, each cost per instance.

    ``batch``, ``q_len`` or ``past_len`` override the workload's (a study's search over one of them); a grid
    of steps at once is ``workload_plan(...).costs(step_counts(...))`` with numpy arrays.
    """
    q_len = workload.q_len if q_len is None else q_len
    past_len = workload.past_len if past_len is None else past_len
    return workload_plan(model, workload).ops(step_counts(
        model, workload.batch if batch is None else batch, q_len, past_len, workload.skips_masked_scores,
        kv_padding_of(workload.engine)))


@dataclass(frozen=True)
class _Step(Generic[Quantity]):
    """What every operator of a step is priced with: the counts, the formats, the kernel options."""

    model: ModelSpec
    counts: StepCounts[Quantity]
    scheme: WeightScheme
    act: float  # bytes per activation element
    kv: float  # bytes per KV-cache element
    matmul_math: str
    other_math: str
    param_bytes: float  # bytes per norm weight or bias
    flash_attention: bool
    mla_absorbed: bool
    fuse_elementwise: bool = False

    @property
    def tokens(self) -> Quantity:
        return self.counts.tokens


def _operators(model: ModelSpec, counts: StepCounts[Quantity], scheme: WeightScheme, activations: NumberFormat,
                   kv_format: NumberFormat, flash_attention: bool, lm_head_all_tokens: bool,
                   mla_absorbed: bool = False, fuse_elementwise: bool = False) -> list[Op[Quantity]]:
    """The operators of a step, in execution order, each priced by its formula in ``ops.py``.

    The model's structure, read from its description: the embedding, then each distinct kind of layer
    (``architecture.Block``) priced once with its number of layers — an operator that several kinds
    of layer share with the same cost is one entry whose count is their layers together — then the
    final norm and the output head. Every operator's kind comes from the registry entry of the formula
    that prices it. ``step_plan`` evaluates this once per model and set of formats; ``step_ops`` is the
    way to price a step.
    """
    step = _new_step(model, counts, scheme, activations, kv_format, flash_attention, mla_absorbed, fuse_elementwise)
    d, tokens, act = model.hidden_size, counts.tokens, step.act
    top = _OpMaker(step, 1, "")
    result = [top("embed", "embedding", ops.embedding, tokens, d, scheme.format_for(arch.EMBED), act,
                  model.learned_positions, model.embedding_scale, positions=scheme.format_for(arch.POSITIONS))]
    result += _merge_layers([_block_ops(step, block, n) for block, n in model.groups])
    if model.final_norm:
        result.append(top("final_norm", "norm", ops.norm, tokens, d, model.norm, act, step.param_bytes))
    lm_tokens = tokens if lm_head_all_tokens else counts.sequences
    lm_format = scheme.format_for(arch.EMBED if model.tied_embeddings else arch.LM_HEAD)
    result.append(top("lm_head", "lm_head", ops.linear, lm_tokens, d, model.vocab_size, lm_format, act, act,
                      model.lm_head_bias, bias_bytes=step.param_bytes))
    if model.final_logit_softcapping is not None:
        result.append(top("final_softcap", "lm_head", ops.softcap, lm_tokens * model.vocab_size, act))
    if model.logits_scale:
        result.append(top("final_scale", "lm_head", ops.scale, lm_tokens * model.vocab_size, act))
    if model.mtp_included:
        result += _mtp_ops(step, lm_tokens, lm_format)
    return [op._replace(math=_product_math(op, model, scheme, kv_format)) for op in result]


def _new_step(model: ModelSpec, counts: StepCounts[Quantity], scheme: WeightScheme, activations: NumberFormat,
              kv_format: NumberFormat, flash_attention: bool, mla_absorbed: bool,
              fuse_elementwise: bool) -> _Step[Quantity]:
    matmul_math = step_math(activations)
    vectors = scheme.vector_format()
    return _Step(model, counts, scheme, activations.bytes_per_element, kv_format.bytes_per_element, matmul_math,
                 _NARROW_MATH.get(matmul_math, matmul_math),
                 vector_param_bytes(activations) if vectors is None else vectors.bytes_per_element,
                 flash_attention, mla_absorbed, fuse_elementwise)


class LayerKindOps(NamedTuple):
    """One kind of layer of a model's stack: its block, the layers that run it (0-based positions in
    ``ModelSpec.layers``), and the names its operators have in a step's operator list, in execution order."""

    block: Block
    layers: tuple[int, ...]
    op_names: tuple[str, ...]


def layer_kind_ops(model: ModelSpec, workload: Workload) -> tuple[LayerKindOps, ...]:
    """The kinds of layer of ``model`` in order of first appearance, each with its operators' names as
    ``step_ops`` and ``analyze`` give them (``_merge_layers``: an operator shared by several kinds has one name,
    a clashing one is ``layer[n].x``). Pass the workload an ``Analysis`` holds: its weights and options are the
    ones its operators were priced with."""
    layout = count_layout(model)
    counts: StepCounts[Any] = StepCounts(layout, compiled.probes(layout.size))
    step = _new_step(model, counts, workload.weight_scheme(model), workload.activation_format, workload.kv_format,
                     workload.flash_attention, workload.mla_absorbed, workload.fuse == "elementwise")
    names: list[list[str]] = []
    _merge_layers([_block_ops(step, block, n) for block, n in model.groups], names)
    return tuple(LayerKindOps(block, tuple(i for i, layer in enumerate(model.layers) if layer == block),
                              tuple(kind_names))
                 for (block, _), kind_names in zip(model.groups, names, strict=True))


def _product_math(op: Op[Quantity], model: ModelSpec, scheme: WeightScheme, kv_format: NumberFormat) -> str:
    """The precision a matrix product runs in (``formats.product_math``): the wider of the activations' and
    its other operand's — the weights of a weight matmul, the KV cache for attention."""
    if op.kind not in ops.MATMUL_KINDS:
        return op.math
    reads_weights = op.kind == "matmul" and _nonzero(op.cost.weight_bytes)
    operand = scheme.format_for(weight_role(op.name, model.tied_embeddings)) if reads_weights else kv_format
    return product_math(op.math, operand.math)


def _mtp_ops(step: _Step[Quantity], lm_tokens: Quantity, lm_format: NumberFormat) -> list[Op[Quantity]]:
    """DeepSeek's multi-token-prediction module(s), when the model includes them (``ModelSpec.with_mtp``): per
    module, the next token's embedding and the last hidden state each normalized, concatenated and projected
    (eh_proj, 2d -> d), one more decoder layer, a norm, and the shared output head again (its weights read
    once more). The embedding lookup is shared with the main model's."""
    model, d, tokens, act = step.model, step.model.hidden_size, step.tokens, step.act
    block, modules = model.layers[-1], model.mtp_modules
    op = _OpMaker(step, modules, "mtp.")
    norm = _norm_maker(step, block, op)
    result = [norm("enorm", tokens, d), norm("hnorm", tokens, d),
              op(arch.MTP_EH_PROJ.removeprefix("mtp."), "embedding", ops.linear, tokens, 2 * d, d,
                 step.scheme.format_for(arch.MTP_EH_PROJ), act, act, False, bias_bytes=step.param_bytes)]
    result += [layer._replace(name="mtp." + layer.name.removeprefix("layer."), instances=modules)
               for layer in _block_ops(step, block, modules)]
    result += [norm("final_norm", tokens, d),
               op("lm_head", "lm_head", ops.linear, lm_tokens, d, model.vocab_size, lm_format, act, act,
                  model.lm_head_bias, bias_bytes=step.param_bytes)]
    return result


_P = ParamSpec("_P")


class _OpMaker(Generic[Quantity]):
    """Builds an ``Op`` by calling a registered formula: its kind is the registry's, and so is its precision
    (matrix products and fused attention run in the activations' math, everything else in ``other_math``)."""

    def __init__(self, step: _Step[Quantity], instances: int, prefix: str) -> None:
        self.step: _Step[Quantity] = step
        self.instances = instances
        self.prefix = prefix

    def __call__(self, name: str, group: str, formula: Callable[_P, ops.OpCost[Quantity]], *args: _P.args,
                 **kwargs: _P.kwargs) -> Op[Quantity]:
        kind = ops.kind_of(formula)
        math = self.step.matmul_math if kind in ops.MATMUL_KINDS else self.step.other_math
        cost = formula(*args, **kwargs)
        if self.step.fuse_elementwise:
            cost = ops.fused_cost(formula, cost)
        return Op(self.prefix + name, kind, group, self.instances, cost, math)


def _merge_layers(per_kind: list[list[Op[Quantity]]], names: list[list[str]] | None = None) -> list[Op[Quantity]]:
    """One operator list from each kind of layer's: an operator of the same name and cost in several kinds
    is one entry (instances added); one that is new goes right after its predecessor in its own kind's order.
    ``names``, when given, receives per kind the name each of its operators has in the merged list."""
    merged: list[Op[Quantity]] = []
    for number, kind_ops in enumerate(per_kind):
        position = 0
        kind_names: list[str] = []
        if names is not None:
            names.append(kind_names)
        for op in kind_ops:
            index = next((i for i, other in enumerate(merged) if other.name == op.name), None)
            if index is not None and not _same_cost(merged[index], op):
                # the same cost under a kind's own name already (a third kind of layer like the second)?
                index = next((i for i, other in enumerate(merged) if _kind_free(other.name) == op.name
                              and other.name != op.name and _same_cost(other, op)), None)
                if index is None:
                    op = op._replace(name=f"layer[{number}].{op.name.removeprefix('layer.')}")
            if index is None:
                merged.insert(position, op)
                index = position
            else:
                merged[index] = merged[index]._replace(instances=merged[index].instances + op.instances)
            kind_names.append(merged[index].name)
            position = index + 1
    return merged


def _kind_free(name: str) -> str:
    """'layer[2].mlp.act' -> 'layer.mlp.act': an operator's name without the kind number ``_merge_layers`` gave it."""
    if not name.startswith("layer["):
        return name
    return "layer." + name.split("].", 1)[1]


def _same_cost(a: Op[Quantity], b: Op[Quantity]) -> bool:
    return a.math == b.math and a.kind == b.kind and all(
        _same_value(x, y) for x, y in zip(a.cost, b.cost, strict=True))


def _same_value(x: object, y: object) -> bool:
    """Equal numbers, or equal at every probe point (a number is the same at all of them)."""
    if isinstance(x, compiled.Probe) or isinstance(y, compiled.Probe):
        size = len(x) if isinstance(x, compiled.Probe) else len(y)  # type: ignore[arg-type]
        return _probe_values(x, size) == _probe_values(y, size)
    return bool(x == y)


def _probe_values(value: object, size: int) -> tuple[object, ...]:
    return tuple(value) if isinstance(value, compiled.Probe) else (value,) * size


def _nonzero(value: object) -> bool:
    """Whether a cost (a number, or a quantity at the probe points) is nonzero."""
    return value.nonzero() if isinstance(value, compiled.Probe) else bool(value)


def _block_ops(step: _Step[Quantity], block: Block, layers: int) -> list[Op[Quantity]]:
    """The operators of ``layers`` layers of one kind, in execution order.

    The norm before the token mixer and the residual add after it keep their attention names
    (``attn_norm``, ``attn_residual``) whatever the mixer is, so layers of different kinds share them."""
    d, tokens, act = step.model.hidden_size, step.tokens, step.act
    scaled = step.model.residual_scale
    op = _OpMaker(step, layers, "layer.")
    norm = _norm_maker(step, block, op)
    result = [norm("attn_norm", tokens, d)] if block.pre_norms else []
    if block.mixer is not None:  # a recurrent mixer, alone or beside attention (run first, as Falcon-H1 does)
        result += _mixer_ops(step, block, op)
    if block.attention is not None:
        result += _attention_ops(step, block, op, norm)
    if block.post_norms:
        result.append(norm("attn_post_norm", tokens, d))
    if not block.parallel:
        both = block.attention is not None and block.mixer is not None  # two outputs join the residual
        result.append(op("attn_residual", "residual", ops.residual_add, tokens, d, act, branches=1 + both,
                         scaled=scaled))
        if block.pre_norms and block.mlp is not None:
            result.append(norm("mlp_norm", tokens, d))
    if block.mlp is None:
        return result
    result += _mlp_ops(step, block.mlp, op)
    if block.post_norms:
        result.append(norm("mlp_post_norm", tokens, d))
    if block.parallel:  # attention and MLP outputs join the residual together
        result.append(op("residual", "residual", ops.residual_add, tokens, d, act, branches=2, scaled=scaled))
    else:
        result.append(op("mlp_residual", "residual", ops.residual_add, tokens, d, act, scaled=scaled))
    return result


def _mixer_ops(step: _Step[Quantity], block: Block, op: _OpMaker[Quantity]) -> list[Op[Quantity]]:
    """A recurrent mixer's operators (group ``mixer``): its projections, its short convolution (the cache of
    the last k - 1 inputs), and for linear attention and state spaces the scan over the recurrent state
    (ops.py, convention 8) and the gated output."""
    mixer, d, tokens, act, counts = block.mixer, step.model.hidden_size, step.tokens, step.act, step.counts
    assert mixer is not None
    resumed, sequences = counts.resumed, counts.sequences
    channels, kernel = mixer.conv_channels(d), block.conv_kernel
    if isinstance(mixer, ShortConv):
        return [_proj(step, op, arch.CONV_IN_PROJ, "mixer", tokens, d, 3 * d, mixer.bias),
                op("conv.gate_in", "mixer", ops.gate, tokens * d, act),
                op("conv.conv", "mixer", ops.causal_conv, tokens, resumed, sequences, d, kernel, act, step.kv,
                   step.param_bytes, mixer.bias),
                op("conv.gate_out", "mixer", ops.gate, tokens * d, act),
                _proj(step, op, arch.CONV_OUT_PROJ, "mixer", tokens, d, d, mixer.bias)]
    name = mixer.name
    conv_bias = isinstance(mixer, StateSpace) and mixer.conv_bias
    conv: list[Op[Quantity]] = [
        op(f"{name}.conv", "mixer", ops.causal_conv, tokens, resumed, sequences, channels, kernel, act, step.kv,
           step.param_bytes, conv_bias),
        op(f"{name}.conv_act", "mixer", ops.activation, tokens, channels, "silu", False, act)]
    recurrent_tokens, chunks = counts.recurrent_tokens, counts.chunks(mixer.chunk)
    if isinstance(mixer, LinearAttention):
        result = [_proj(step, op, arch.LINEAR_QKVZ_PROJ, "mixer", tokens, d, 2 * mixer.key_size + 2 * mixer.value_size,
                        False),
                  _proj(step, op, arch.LINEAR_BA_PROJ, "mixer", tokens, d, 2 * mixer.value_heads, False)]
        result += conv
        result += [op("linear_attn.scan", "mixer", ops.gated_delta_rule, tokens, recurrent_tokens, chunks, resumed,
                      sequences, mixer.key_heads, mixer.value_heads, mixer.key_head_dim, mixer.value_head_dim,
                      mixer.chunk, act, step.kv),
                   op("linear_attn.norm", "mixer", ops.gated_norm, tokens, mixer.value_size, mixer.value_head_dim, act,
                      step.param_bytes),
                   _proj(step, op, arch.LINEAR_OUT_PROJ, "mixer", tokens, mixer.value_size, d, False)]
        return result
    inner = mixer.inner_size
    result = [_proj(step, op, arch.SSM_IN_PROJ, "mixer", tokens, d, inner + channels + mixer.heads, mixer.in_bias)]
    result += conv
    result.append(op("ssm.scan", "mixer", ops.ssd_scan, tokens, recurrent_tokens, chunks, resumed, sequences,
                     mixer.heads, mixer.head_dim, mixer.state_size, mixer.groups, mixer.chunk, act, step.kv))
    if mixer.gated_norm:  # RMSNorm(y x SiLU(z)) (Mamba-2), or y x SiLU(z) alone (Falcon-H1 without mamba_rms_norm)
        result.append(op("ssm.norm", "mixer", ops.gated_norm, tokens, inner, inner, act, step.param_bytes))
    else:
        result.append(op("ssm.gate", "mixer", ops.activation, tokens, inner, "silu", True, act))
    result.append(_proj(step, op, arch.SSM_OUT_PROJ, "mixer", tokens, inner, d, mixer.out_bias))
    return result


_NormMaker = Callable[..., Op[Quantity]]


def _norm_maker(step: _Step[Quantity], block: Block, op: _OpMaker[Quantity]) -> _NormMaker[Quantity]:
    def norm(name: str, rows: Quantity, width: int, param_bytes: float | None = None) -> Op[Quantity]:
        weight = step.param_bytes if param_bytes is None else param_bytes
        return op(name, "norm", ops.norm, rows, width, block.norm, step.act, weight)

    return norm


def _proj(step: _Step[Quantity], op: _OpMaker[Quantity], role: str, group: str, rows: Quantity, n_in: int,
          n_out: int, bias: bool, to_kv: bool = False) -> Op[Quantity]:
    return op(role, group, ops.linear, rows, n_in, n_out, step.scheme.format_for(role), step.act,
              step.kv if to_kv else step.act, bias, to_kv, bias_bytes=step.param_bytes)


def _attention_ops(step: _Step[Quantity], block: Block, op: _OpMaker[Quantity],
                   norm: _NormMaker[Quantity]) -> list[Op[Quantity]]:
    a, d, tokens = block.attention, step.model.hidden_size, step.tokens
    assert a is not None
    if a.is_mla:
        return _latent_attention_ops(step, block, op, norm)
    result = [_proj(step, op, arch.Q_PROJ, "attention", tokens, d, a.q_proj_size, a.qkv_bias),
              _proj(step, op, arch.K_PROJ, "attention", tokens, d, a.kv_size, a.qkv_bias, to_kv=True),
              _proj(step, op, arch.V_PROJ, "attention", tokens, d, a.kv_size, a.qkv_bias, to_kv=True)]
    result += _qk_norms(step, a, norm)
    if a.rotary_dim:
        result.append(op("attn.rope", "attention", ops.rope, tokens, a.heads, a.kv_heads, a.rotary_dim, step.act))
    result += _attention_core(step, a, op, (a.heads, a.kv_heads, a.head_dim, step.act, step.kv), a.head_dim)
    if a.output_gate:  # o x sigmoid(gate), the gate from q_proj's second half (Qwen3-Next)
        result.append(op("attn.gate", "attention", ops.gate, tokens * a.q_size, step.act, function="sigmoid"))
    result.append(_proj(step, op, arch.O_PROJ, "attention", tokens, a.q_size, d, a.out_bias))
    return result


def _qk_norms(step: _Step[Quantity], a: Attention, norm: _NormMaker[Quantity]) -> list[Op[Quantity]]:
    tokens = step.tokens
    if a.qk_norm == "head":  # one head_dim-wide norm over each query head and each new key head
        return [norm("attn.q_norm", tokens * a.heads, a.head_dim), norm("attn.k_norm", tokens * a.kv_heads, a.head_dim)]
    if a.qk_norm == "full":  # one norm over all query heads, one over all key heads (OLMo-2)
        return [norm("attn.q_norm", tokens, a.q_size), norm("attn.k_norm", tokens, a.kv_size)]
    if a.qk_norm == "l2":  # Llama 4: x / ||x|| per head, no weight
        return [norm("attn.q_norm", tokens * a.heads, a.head_dim, 0.0),
                norm("attn.k_norm", tokens * a.kv_heads, a.head_dim, 0.0)]
    return []


def _span_prefix(step: _Step[Quantity], a: Attention) -> str:
    """The attention core's name: ``attn`` when every layer attends alike, else by span (``attn.window``)."""
    if len(count_layout(step.model).spans) == 1 or a.span == FULL:
        return "attn"
    return f"attn.{a.span[0]}"


def _attention_core(step: _Step[Quantity], a: Attention, op: _OpMaker[Quantity],
                    shape: tuple[int, int, int, float, float], value_dim: int, keys_from_cache: bool = True,
                    values_share_keys: bool = False) -> list[Op[Quantity]]:
    """Q K^T, (soft-capping,) softmax and P V over the span's keys — or the one fused FlashAttention kernel."""
    counts, tokens, prefix = step.counts, step.tokens, _span_prefix(step, a)
    keys, scores = counts.keys(a.span), counts.scores(a.span)
    heads, kv_heads, head_dim, act, kv = shape
    sink_rows = tokens if a.sinks else 0  # a sink adds one logit to every query row's softmax
    if step.flash_attention:
        return [op(f"{prefix}.flash", "attention", ops.flash_attention, tokens, keys, scores, heads, kv_heads,
                   head_dim, act, kv, softcapped=a.softcap is not None, value_dim=value_dim,
                   values_share_keys=values_share_keys, sink_rows=sink_rows, keys_from_cache=keys_from_cache)]
    result: list[Op[Quantity]] = [op(f"{prefix}.qk", "attention", ops.attention_scores, tokens, keys, scores, heads,
                                     kv_heads, head_dim, act, kv, keys_from_cache=keys_from_cache)]
    if a.softcap is not None:
        result.append(op(f"{prefix}.softcap", "attention", ops.softcap, heads * scores, step.act))
    result.append(op(f"{prefix}.softmax", "attention", ops.softmax, scores + sink_rows, heads, step.act))
    result.append(op(f"{prefix}.sv", "attention", ops.attention_values, tokens, keys, scores, heads, kv_heads,
                     head_dim, act, kv, value_dim=value_dim, keys_from_cache=keys_from_cache))
    return result


def _latent_attention_ops(step: _Step[Quantity], block: Block, op: _OpMaker[Quantity],
                          norm: _NormMaker[Quantity]) -> list[Op[Quantity]]:
    """DeepSeek's multi-head latent attention (MLA), in the form ``step.mla_absorbed`` selects.

    Both forms cache the normalized KV latent (kv_lora_rank) and the RoPE key (qk_rope_head_dim) per
    token. Naive: every step decompresses the keys and values of all the keys it reads through kv_b_proj,
    then runs multi-head attention over them (as transformers does, and engines for prefill). Absorbed:
    kv_b_proj's key half multiplies into each query head and its value half into each output head, so
    attention runs on the latent itself, one shared "KV head" of kv_lora_rank + qk_rope_head_dim channels
    (as engines do for decode: FlashMLA, vLLM, SGLang). Derivations in docs/cost-model.md.
    """
    a, d, tokens, act = block.attention, step.model.hidden_size, step.tokens, step.act
    assert a is not None and a.kv_lora_rank is not None
    rank, rope, nope, heads = a.kv_lora_rank, a.qk_rope_head_dim, a.nope_head_dim, a.heads
    if a.q_lora_rank is None:
        result = [_proj(step, op, arch.Q_PROJ, "attention", tokens, d, a.q_size, False)]
    else:
        result = [_proj(step, op, arch.Q_A_PROJ, "attention", tokens, d, a.q_lora_rank, a.qkv_bias),
                  norm("attn.q_a_norm", tokens, a.q_lora_rank),
                  _proj(step, op, arch.Q_B_PROJ, "attention", tokens, a.q_lora_rank, a.q_size, False)]
    result += [_proj(step, op, arch.KV_A_PROJ, "attention", tokens, d, rank + rope, a.qkv_bias, to_kv=True),
               norm("attn.kv_a_norm", tokens, rank),
               op("attn.rope", "attention", ops.rope, tokens, heads, 1, rope, act)]
    kv_b = step.scheme.format_for(arch.KV_B_PROJ)
    if step.mla_absorbed:
        result.append(op("attn.q_absorb", "attention", ops.head_linear, tokens, heads, nope, rank, kv_b, act, act,
                         stored_rows=heads * nope))
        result += _attention_core(step, a, op, (heads, 1, rank + rope, act, step.kv), rank, values_share_keys=True)
        result.append(op("attn.v_absorb", "attention", ops.head_linear, tokens, heads, rank, a.v_head_dim, kv_b, act,
                         act, stored_rows=heads * a.v_head_dim))
    else:
        result.append(op(arch.KV_B_PROJ, "attention", ops.latent_decompress, step.counts.keys(a.span), heads, rank,
                         rope, nope, a.v_head_dim, kv_b, act, step.kv))
        result += _attention_core(step, a, op, (heads, heads, a.head_dim, act, act), a.v_head_dim,
                                  keys_from_cache=False)
    result.append(_proj(step, op, arch.O_PROJ, "attention", tokens, a.out_size, d, a.out_bias))
    return result


def _mlp_ops(step: _Step[Quantity], mlp: MLP, op: _OpMaker[Quantity]) -> list[Op[Quantity]]:
    d, tokens, act = step.model.hidden_size, step.tokens, step.act
    inter = mlp.intermediate_size
    if not mlp.is_moe:
        activation = op("mlp.act", "ffn", ops.activation, tokens, inter, mlp.activation, mlp.gated, act)
        if mlp.gated:
            return [_proj(step, op, arch.GATE_PROJ, "ffn", tokens, d, inter, mlp.bias),
                    _proj(step, op, arch.UP_PROJ, "ffn", tokens, d, inter, mlp.bias),
                    activation,
                    _proj(step, op, arch.DOWN_PROJ, "ffn", tokens, inter, d, mlp.bias)]
        return [_proj(step, op, arch.FC, "ffn", tokens, d, inter, mlp.bias), activation,
                _proj(step, op, arch.PROJ, "ffn", tokens, inter, d, mlp.bias)]
    k = mlp.experts_per_token
    touched = step.counts.experts_touched((mlp.experts, k))

    def expert(role: str, n_in: int, n_out: int) -> Op[Quantity]:
        return op(role, "ffn", ops.expert_linear, tokens, k, touched, n_in, n_out, step.scheme.format_for(role), act,
                  act, mlp.bias, bias_bytes=step.param_bytes)

    result = [_proj(step, op, arch.ROUTER, "ffn", tokens, d, mlp.experts, mlp.router_bias),
              op("mlp.router_softmax", "ffn", ops.softmax, tokens, mlp.experts, act),
              expert(arch.EXPERT_GATE_PROJ, d, inter),
              expert(arch.EXPERT_UP_PROJ, d, inter),
              op("mlp.act", "ffn", ops.activation, tokens * k, inter, mlp.activation, True, act),
              expert(arch.EXPERT_DOWN_PROJ, inter, d)]
    shared = mlp.shared_intermediate_size
    if shared:
        result += [_proj(step, op, arch.SHARED_GATE_PROJ, "ffn", tokens, d, shared, False),
                   _proj(step, op, arch.SHARED_UP_PROJ, "ffn", tokens, d, shared, False),
                   op("mlp.shared.act", "ffn", ops.activation, tokens, shared, mlp.activation, True, act),
                   _proj(step, op, arch.SHARED_DOWN_PROJ, "ffn", tokens, shared, d, False)]
    if mlp.shared_gate:
        result.append(_proj(step, op, arch.SHARED_EXPERT_GATE, "ffn", tokens, d, 1, False))
    result.append(op("mlp.combine", "ffn", ops.moe_combine, tokens, k, d, act, shared=shared > 0,
                     shared_gate=mlp.shared_gate))
    return result


def vector_param_bytes(activations: NumberFormat) -> float:
    """Bytes per norm weight or bias: these stay unquantized, in the activations' format or 16-bit."""
    return max(activations.bytes_per_element, 2.0)


def kv_cache_bytes(model: ModelSpec, batch: Quantity, context_len: Quantity, kv_format: NumberFormat) -> Quantity:
    """KV cache held for ``batch`` sequences of ``context_len`` tokens: every layer's K and V (MLA: its latent).

    A layer with a sliding window keeps only its last W tokens (a rolling buffer, as Mistral's
    reference implementation does: Jiang et al. 2023, arXiv:2310.06825, section 2); a layer with
    chunked attention keeps at most one chunk.
    """
    elements: Quantity | Scalar = 0
    for per_token, (kind, size) in _cache_terms(model):
        elements = elements + per_token * (context_len if kind == "full" else minimum(context_len, size))
    return kv_format.tensor_bytes(batch * elements)


def state_bytes(model: ModelSpec, batch: Quantity, kv_format: NumberFormat) -> Quantity:
    """Recurrent state held for ``batch`` sequences, whatever their context: every recurrent mixer's states and
    its convolution's last k - 1 inputs (``ModelSpec.state_elements_per_sequence``), in the KV cache's format
    (0 for a transformer). It replaces the KV cache in the layers that do not attend, and joins it in the
    footprint (``memory.py``)."""
    elements = _state_elements(model)
    return kv_format.tensor_bytes(batch * elements) if elements else batch * 0.0


@functools.lru_cache(maxsize=256)
def _state_elements(model: ModelSpec) -> int:
    """``ModelSpec.state_elements_per_sequence``, memoized: it is asked for every footprint."""
    return model.state_elements_per_sequence


@functools.lru_cache(maxsize=256)
def _cache_terms(model: ModelSpec) -> tuple[tuple[int, Span], ...]:
    """(cache elements per token over the layers of a span, the span), one per span the model has."""
    terms: dict[Span, int] = {}
    for block, layers in model.groups:
        if block.attention is None:
            continue
        span = block.attention.span
        terms[span] = terms.get(span, 0) + layers * block.attention.cache_elements_per_token
    return tuple((per_token, span) for span, per_token in terms.items())


@functools.lru_cache(maxsize=1024)
def weight_storage_bytes(model: ModelSpec, weights: NumberFormat | WeightScheme, activations: NumberFormat) -> float:
    """Bytes of the stored weights: every tensor in its scheme's format (norms and biases unquantized
    unless the scheme names their format); a tied lm_head is stored once, unless the scheme stores it again
    as an output matrix of its own (``untied_head``: ExecuTorch's 8da4w), in its ``lm_head`` format.

    Memoized: a pure function of frozen records, asked again for every workload of the same model.
    """
    scheme = weights if isinstance(weights, WeightScheme) else WeightScheme.uniform(weights)
    total = 0.0
    for tensor in model.weight_tensors():
        if tensor.role == arch.VECTORS:
            vectors = scheme.vector_format()
            per_element = vector_param_bytes(activations) if vectors is None else vectors.bytes_per_element
            total += tensor.elements * per_element
        else:
            fmt = scheme.format_for(tensor.role)
            total += tensor.instances * fmt.tensor_bytes(tensor.elements, tensor.rows, tensor.columns)
            if tensor.role == arch.EMBED and model.tied_embeddings and scheme.untied_head:
                head = scheme.format_for(arch.LM_HEAD)
                total += tensor.instances * head.tensor_bytes(tensor.elements, tensor.rows, tensor.columns)
    return total
