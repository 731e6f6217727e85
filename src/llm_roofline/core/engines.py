"""Inference engines: how each turns a step's operators into kernels, and how a measurement names it.

``data/engines.toml`` lists the engines (llama.cpp on CUDA, Metal, other GPUs and CPUs; MLX; MLC; vLLM;
TensorRT-LLM; ExecuTorch; LiteRT; QNN; other NPU runtimes), each with the device kinds it runs on, its
**fusion level** — ``none``: every operator is a kernel of its own; ``elementwise``: norms, activations,
RoPE and residual adds run inside a neighbouring kernel — and the words that identify it in a published
measurement's ``framework`` column. The fusion level sets how many kernels a step launches, and so how
many times the engine's fitted cost per kernel is paid (``efficiency.py``); the figures themselves are
fitted per engine and stored in ``data/efficiency.toml``. No engine named: the device class's figures,
every operator a kernel (the defaults fitted on all measurements of the class).
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from llm_roofline.core.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from llm_roofline.core.hardware import HardwareSpec

FUSION_LEVELS = ("none", "elementwise")
# Operator kinds (ops.py's registry) that an engine fusing elementwise work runs inside a neighbour: the
# kinds ``ops.fused_cost`` treats as fusible (kept equal by tests/test_engines.py).
FUSED_KINDS = ("elementwise", "norm", "activation")


class Engine(NamedTuple):
    name: str
    kinds: tuple[str, ...]  # device kinds it runs on: gpu, cpu, npu
    fusion: str  # FUSION_LEVELS
    match: tuple[tuple[str, ...], ...]  # a measurement is this engine's when all words of one entry appear
    description: str
    source: str
    fp16_accumulate: bool = False  # its fp16 matrix products accumulate in fp16 (HardwareSpec.for_engine)
    # A step of more tokens than this is not replayed as a captured graph (CUDA graphs): its kernels are
    # launched one by one from the CPU, each at the cost per kernel of the engine ``ungraphed_launches``
    # names (one that never captured graphs); None: the engine's own cost per kernel for every step.
    graph_max_tokens: int | None = None
    ungraphed_launches: str | None = None
    # The cache a step attends over is padded to a multiple of this many positions (llama.cpp: 256), the
    # padding masked but read and scored; None: the positions cached and new, exactly.
    kv_padding: int | None = None

    @overload
    def launches_ungraphed(self, step_tokens: int) -> bool: ...
    @overload
    def launches_ungraphed(self, step_tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]: ...

    def launches_ungraphed(self, step_tokens: int | npt.NDArray[np.int64]) -> bool | npt.NDArray[np.bool_]:
        """Whether a step of ``step_tokens`` tokens (batch x new positions) launches its kernels from the CPU
        at ``ungraphed_launches``'s cost per kernel instead of replaying a graph (a number, or a numpy array
        of a grid's steps: true or false each)."""
        return step_tokens > (math.inf if self.graph_max_tokens is None else self.graph_max_tokens)


@functools.cache
def engines() -> dict[str, Engine]:
    """The engines of ``data/engines.toml``, by name."""
    return engines_from(tomllib.loads(resources.files("llm_roofline").joinpath("data/engines.toml").read_text()))


def engines_from(data: dict[str, Any]) -> dict[str, Engine]:
    """The engines of a parsed engines file, checked (a malformed entry: ValueError naming it)."""
    found = {}
    for name, entry in data.get("engine", {}).items():
        engine = Engine(name, tuple(entry["kinds"]), entry["fusion"], tuple(tuple(m) for m in entry["match"]),
                        entry["description"], entry["source"], bool(entry.get("fp16_accumulate", False)),
                        entry.get("graph_max_tokens"), entry.get("ungraphed_launches"), entry.get("kv_padding"))
        if engine.fusion not in FUSION_LEVELS:
            raise ValueError(f"data/engines.toml: {name}: fusion {engine.fusion!r} is not one of {FUSION_LEVELS}")
        if engine.kv_padding is not None and (not isinstance(engine.kv_padding, int) or engine.kv_padding < 1):
            raise ValueError(f"data/engines.toml: {name}: kv_padding must be a positive number of positions")
        if (engine.graph_max_tokens is None) != (engine.ungraphed_launches is None):
            raise ValueError(f"data/engines.toml: {name}: graph_max_tokens and ungraphed_launches go together")
        found[name] = engine
    for engine in found.values():
        target = found.get(engine.ungraphed_launches or "")
        if engine.ungraphed_launches is not None and (target is None or target.graph_max_tokens is not None
                                                      or target.kinds != engine.kinds or len(target.kinds) != 1):
            # one kind: its figures go by its bare name (efficiency.efficiency_key), which is how they are looked up
            raise ValueError(f"data/engines.toml: {engine.name}: ungraphed_launches must name an engine of the same "
                             f"one kind that captures no graphs, got {engine.ungraphed_launches!r}")
    return found


def engine_names() -> list[str]:
    return list(engines())


def get_engine(name: str) -> Engine:
    """An engine by name; an unknown name is an input error that lists the known ones."""
    known = engines()
    if name not in known:
        raise InputError(f"unknown engine {name!r}; known: {', '.join(known)}")
    return known[name]


def check_engine(name: str | None) -> None:
    """None (no engine named) or a known engine's name."""
    if name is not None:
        get_engine(name)


def check_engine_on(name: str, device_kind: str, device: str) -> Engine:
    """The engine, refused (an input error) when it does not run on that kind of device."""
    engine = get_engine(name)
    if device_kind not in engine.kinds:
        raise InputError(f"engine {name!r} runs on {', '.join(engine.kinds)} devices; {device} is a {device_kind}")
    return engine


def engine_device(hardware: HardwareSpec, name: str | None) -> HardwareSpec:
    """The device as the engine's matrix products see it (``HardwareSpec.for_engine``); no engine: itself."""
    return hardware if name is None else hardware.for_engine(get_engine(name).fp16_accumulate)


def kv_padding_of(name: str | None) -> int | None:
    """The positions an engine pads the cache a step attends over to a multiple of; no engine named: None."""
    return None if name is None else get_engine(name).kv_padding


def fusion_of(name: str | None) -> str:
    """The fusion level of an engine; no engine named: every operator a kernel."""
    return "none" if name is None else get_engine(name).fusion


def kernel_flags(kinds: Sequence[str], fusion: str) -> tuple[int, ...]:
    """Per operator, whether it is a kernel launch of its own (1) or runs inside a neighbour (0)."""
    if fusion == "none":
        return (1,) * len(kinds)
    return tuple(0 if kind in FUSED_KINDS else 1 for kind in kinds)


def engine_for(framework: str, backend: str, hardware: str, device_kind: str) -> str | None:
    """The engine a published measurement was made with, from its ``framework``, ``backend`` and ``hardware``
    columns: the first engine, in the file's order, all of one of whose word lists appear (None: none does,
    or the engine does not run on that kind of device)."""
    text = f"{framework} {backend} {hardware}".lower()
    for engine in engines().values():
        if device_kind in engine.kinds and any(all(word in text for word in words) for words in engine.match):
            return engine.name
    return None
