"""The libraries whose kernels are measured: numpy (default), PyTorch on the CPU, PyTorch on a CUDA GPU.

A backend makes timed matrix products (``gemm_run``) for each precision it offers, and names the
library and kernel behind each. Bandwidth on the CPU is always measured with numpy's STREAM kernels
(``stream.NumpyStream``), whichever library does the matrix products; on a GPU, with PyTorch kernels
on the device, timed with CUDA events.

numpy and torch are imported inside the functions that use them, never at module level.
"""

from __future__ import annotations

import importlib.util
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from llm_roofline.core.errors import InputError
from llm_roofline.core.units import binary_bytes
from llm_roofline.features.measure import system
from llm_roofline.features.measure.timing import Clock, DeadlinePassed, Run

BACKENDS = ("numpy", "torch")
DEVICES = ("auto", "cpu", "cuda")
ELEMENT_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
OUTPUT_BYTES = {"int8": 4, "fp8": 2}  # int8 products accumulate into int32; fp8 ones are written as bf16


@dataclass(frozen=True, slots=True)
class BackendChoice:
    backend: str  # "numpy" or "torch"
    device: str  # "cpu" or "cuda"


def choose_backend(backend: str, device: str, torch_installed: bool, cuda_available: bool) -> BackendChoice:
    """Which library runs where, from the options and what this machine has; bad options raise InputError."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend '{backend}'; known: {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise InputError(f"unknown device '{device}'; known: {', '.join(DEVICES)}")
    if backend == "numpy":
        if device == "cuda":
            raise InputError("the numpy backend runs on the CPU only; use backend 'torch' for a CUDA GPU")
        return BackendChoice("numpy", "cpu")
    if not torch_installed:
        raise InputError("backend 'torch' needs PyTorch, which is not installed (pip install torch)")
    if device == "cuda" and not cuda_available:
        raise InputError("device 'cuda': PyTorch sees no CUDA GPU on this machine")
    return BackendChoice("torch", "cuda" if device == "cuda" or (device == "auto" and cuda_available) else "cpu")


def choose_backend_here(backend: str, device: str) -> BackendChoice:
    """``choose_backend`` with what this machine has (imports torch only if it is asked for)."""
    torch_installed = backend == "torch" and importlib.util.find_spec("torch") is not None
    cuda_available = False
    if torch_installed and device != "cpu":
        import torch

        cuda_available = torch.cuda.is_available()
    return choose_backend(backend, device, torch_installed, cuda_available)


class StreamBench(Protocol):
    threads: int
    dispatch_s: float  # the fixed cost of one run (thread hand-offs); runs are made long enough to bury it
    fill_bytes_per_s: float | None  # how fast its arrays were allocated and first written (None: not timed)

    @property
    def max_working_set_bytes(self) -> int: ...  # how far its arrays reach (their allocation may stop early)

    def working_set_bytes(self, kernel: str, working_set_bytes: int) -> int: ...
    def make_run(self, kernel: str, working_set_bytes: int, repeat: int) -> tuple[Run, int]: ...
    def take_memory(self) -> Any: ...  # its arrays' memory, for reuse after close (None: none to give)
    def close(self) -> None: ...


class Backend(Protocol):
    name: str  # "numpy", "torch"
    device: str  # "cpu", "cuda"
    kind: str  # "cpu" or "gpu", as in the hardware catalogue
    threads: int
    library: dict[str, str]

    def precisions(self) -> list[str]: ...
    def kernel(self, precision: str) -> tuple[str, bool | None]: ...
    def gemm_run(self, precision: str, m: int, k: int, n: int, copies: int, repeat: int) -> Run: ...
    def operand_fill_s(self, precision: str, m: int, k: int, n: int, copies: int) -> float: ...
    def set_fill_deadline(self, stop_s: float, clock: Clock) -> None: ...
    def adopt_memory(self, memory: Any, precision: str, fill_bytes_per_s: float | None) -> None: ...
    def stream(self, max_working_set_bytes: int, allowance_s: float, clock: Clock) -> StreamBench: ...
    def caches(self) -> list[system.Cache]: ...
    def memory_bytes(self) -> int | None: ...
    def display_name(self) -> str: ...
    def close(self) -> None: ...


ARENA_ALIGN_BYTES = 4096  # B starts on a page boundary after A in a precision's operand arena
FILL_BLOCK_ELEMENTS = 1 << 16  # operands are a random block of this many elements, repeated
FILL_CHUNK_BYTES = 64 * 2**20  # operands are filled this much at a time, the deadline checked in between
FRESH_FILL_BYTES_PER_S = 1e9  # guesses until a fill is timed: memory that must first be faulted in ...
RESIDENT_FILL_BYTES_PER_S = 2e9  # ... and memory already faulted in (one thread writing)


def arena_layout(a_elements: int, b_elements: int, element_bytes: int) -> tuple[int, int]:
    """(where B starts, elements the arena needs): A at the start, B after it on a page boundary."""
    align = max(1, ARENA_ALIGN_BYTES // element_bytes)
    b_start = -(-a_elements // align) * align
    return b_start, b_start + b_elements


class FillMeter:
    """Bytes of operands filled and the seconds it took: the rate the next fill is predicted from."""

    def __init__(self) -> None:
        self.bytes = 0
        self.seconds = 0.0

    def add(self, filled_bytes: int, seconds: float) -> None:
        self.bytes += filled_bytes
        self.seconds += seconds

    def bytes_per_s(self) -> float | None:
        return self.bytes / self.seconds if self.bytes and self.seconds > 0 else None


def fill_in_chunks(first: int, elements: int, element_bytes: int, fill: Callable[[int, int], object], clock: Clock,
                   stop_s: float, meter: FillMeter) -> None:
    """``fill(begin, end)`` from ``first`` to ``elements`` in chunks of ``FILL_CHUNK_BYTES``; raises
    ``DeadlinePassed`` as soon as the rate so far says the rest would end after ``stop_s`` (memory that first
    has to be faulted in can take seconds a GiB on a VM)."""
    start_s = clock()
    chunk = max(1, FILL_CHUNK_BYTES // element_bytes)
    for begin in range(first, elements, chunk):
        end = min(elements, begin + chunk)
        fill(begin, end)
        now_s = clock()
        if end < elements and now_s + (elements - end) * (now_s - start_s) / (end - first) > stop_s:
            meter.add((end - first) * element_bytes, now_s - start_s)
            raise DeadlinePassed(f"filling its operands ({binary_bytes((elements - first) * element_bytes)}) "
                                 f"would have ended past the deadline")
    meter.add((elements - first) * element_bytes, clock() - start_s)


def operand_copies(operand_bytes: float, llc_bytes: int, limit_bytes: float = 2**30) -> int:
    """How many copies of a product's operands to rotate through so that each call finds them cold.

    Enough copies to span four times the last-level cache (STREAM's rule), no more than fit in
    ``limit_bytes``, at least one.
    """
    wanted = math.ceil(4 * llc_bytes / max(operand_bytes, 1))
    affordable = int(limit_bytes // max(operand_bytes, 1))
    return max(1, min(wanted, affordable, 64))


class NumpyBackend:
    """numpy's matmul: BLAS (OpenBLAS in numpy's wheels) for fp64/fp32, a generic loop for fp16/int8."""

    name = "numpy"
    device = "cpu"
    kind = "cpu"
    _DTYPES: ClassVar[dict[str, str]] = {"fp64": "float64", "fp32": "float32", "fp16": "float16", "int8": "int8"}

    def __init__(self, threads: int) -> None:
        import numpy as np

        from llm_roofline.features.measure.blas import BlasControl

        self.threads = threads
        self._blas = BlasControl()
        self._restore_threads = self._blas.set_threads(threads)
        self.library = {"numpy": np.__version__, **self._blas.info}
        self._rng = np.random.default_rng(0)
        self._arenas: dict[str, Any] = {}
        self._fresh, self._resident = FillMeter(), FillMeter()  # fills of new memory, of memory faulted in
        self._fresh_guess_bytes_per_s = FRESH_FILL_BYTES_PER_S
        self._fill_clock: Clock = time.perf_counter
        self._fill_stop_s = math.inf
        self._spare: Any = None  # memory faulted in already (the STREAM arrays' block) ...
        self._spare_precision: str | None = None  # ... for this precision's arena

    def precisions(self) -> list[str]:
        return list(self._DTYPES)  # no bfloat16 or fp8 dtype in numpy

    def kernel(self, precision: str) -> tuple[str, bool | None]:
        """(label, whether the library has a fast kernel for it; None: judge from the figures)."""
        if precision in ("fp64", "fp32"):
            blas = self.library.get("blas", "BLAS")
            routine = "dgemm" if precision == "fp64" else "sgemm"
            return f"{blas} {routine} ({self.library.get('blas_kernel', 'unknown')} kernel)", True
        return f"numpy generic matmul loop ({self._DTYPES[precision]}, no BLAS kernel)", False

    def _in_spare(self, precision: str, elements: int) -> bool:
        spare = self._spare
        return (precision == self._spare_precision and spare is not None
                and elements * ELEMENT_BYTES[precision] <= spare.nbytes - 64)

    def _grown(self, precision: str, arena: Any, elements: int) -> Any:
        """An arena of ``elements`` values: a random block repeated (the products' speed does not depend on
        the values, and filling then goes as fast as memory can be written). In the adopted memory when it is
        this precision's and large enough, where only what the old arena did not hold is filled; else in new
        memory, the old arena freed first."""
        import numpy as np

        dtype = np.dtype(self._DTYPES[precision])
        spare = self._spare
        if self._in_spare(precision, elements):
            start = -spare.ctypes.data % 64
            values = spare[start:start + elements * dtype.itemsize].view(dtype)
            first = arena.size if arena is not None and np.may_share_memory(arena, spare) else 0
            meter = self._resident
        else:
            self._arenas.pop(precision, None)
            values, first, meter = np.empty(elements, dtype=dtype), 0, self._fresh
        block_elements = min(elements, FILL_BLOCK_ELEMENTS)
        block: Any = (self._rng.integers(-4, 4, size=block_elements, dtype=np.int8) if precision == "int8" else
                      self._rng.random(size=block_elements, dtype=np.float64 if precision == "fp64" else np.float32))

        def fill(begin: int, end: int) -> None:
            part = values[begin:end]
            whole = part.size - part.size % block_elements
            part[:whole].reshape(-1, block_elements)[...] = block  # (blocks, block_elements)
            part[whole:] = block[:part.size - whole]
        fill_in_chunks(first, elements, dtype.itemsize, fill, self._fill_clock, self._fill_stop_s, meter)
        return values

    def _operands(self, precision: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> tuple[Any, Any]:
        """Filled A and B of these shapes: disjoint views of one arena per precision, grown on demand (the
        GEMV -> GEMM series reuses one weight matrix; the equal-FLOPs series' big operands share memory)."""
        b_start, need = arena_layout(math.prod(a_shape), math.prod(b_shape), ELEMENT_BYTES[precision])
        arena = self._arenas.get(precision)
        if arena is None or arena.size < need:
            arena = self._arenas[precision] = self._grown(precision, arena, need)
        return arena[:math.prod(a_shape)].reshape(a_shape), arena[b_start:need].reshape(b_shape)

    def operand_fill_s(self, precision: str, m: int, k: int, n: int, copies: int) -> float:
        """Predicted seconds to fill what a product of this shape needs beyond the arena (0: nothing)."""
        import numpy as np

        element = ELEMENT_BYTES[precision]
        _, need = arena_layout(copies * m * k, copies * k * n, element)
        arena = self._arenas.get(precision)
        have = 0 if arena is None else arena.size
        if have >= need:
            return 0.0
        if self._in_spare(precision, need):
            first = have if arena is not None and np.may_share_memory(arena, self._spare) else 0
            return (need - first) * element / (self._resident.bytes_per_s() or RESIDENT_FILL_BYTES_PER_S)
        return need * element / (self._fresh.bytes_per_s() or self._fresh_guess_bytes_per_s)

    def set_fill_deadline(self, stop_s: float, clock: Clock) -> None:
        self._fill_stop_s, self._fill_clock = stop_s, clock

    def adopt_memory(self, memory: Any, precision: str, fill_bytes_per_s: float | None) -> None:
        """Memory already faulted in (the STREAM arrays' block) for ``precision``'s arena, which then fills at
        the speed of writes, not of page faults; ``fill_bytes_per_s``: how fast new memory was filled."""
        self._spare, self._spare_precision = memory, precision
        self._fresh_guess_bytes_per_s = fill_bytes_per_s or FRESH_FILL_BYTES_PER_S

    def gemm_run(self, precision: str, m: int, k: int, n: int, copies: int, repeat: int) -> Run:
        import numpy as np

        a, b = self._operands(precision, (copies, m, k), (copies, k, n))  # (copies, M, K), (copies, K, N)
        c = np.empty((m, n), dtype=self._DTYPES[precision])  # (M, N)
        order = [(a[i % copies], b[i % copies]) for i in range(repeat)]
        matmul, clock = np.matmul, time.perf_counter

        def run() -> float:
            start_s = clock()
            for x, y in order:
                matmul(x, y, out=c)
            return clock() - start_s
        return run

    def stream(self, max_working_set_bytes: int, allowance_s: float, clock: Clock) -> StreamBench:
        from llm_roofline.features.measure.stream import NumpyStream

        return NumpyStream(self.threads, max_working_set_bytes, allowance_s, clock)

    def caches(self) -> list[system.Cache]:
        return system.data_caches()

    def memory_bytes(self) -> int | None:
        return system.physical_memory_bytes()

    def display_name(self) -> str:
        return system.cpu_model()

    def close(self) -> None:
        self._arenas.clear()
        self._spare = self._spare_precision = None
        self._restore_threads()


def torch_library(torch: Any, device: str) -> dict[str, str]:
    """PyTorch's version and the math libraries it was built with (from torch.__config__)."""
    config = torch.__config__.show()
    info = {"torch": torch.__version__}
    for key, pattern in (("blas", r"BLAS_INFO=(\w+)"), ("mkl", r"Math Kernel Library Version ([\w.]+)"),
                         ("onednn", r"MKL-DNN (v[\d.]+)"), ("cpu_capability", r"CPU capability usage: (\w+)")):
        found = re.search(pattern, config)
        if found:
            info[key] = found.group(1)
    if device == "cuda":
        info["cuda"] = str(torch.version.cuda)
        info["gpu"] = torch.cuda.get_device_name(0)
        info["blas"] = "cuBLAS"
    return info


class TorchBackend:
    """torch.matmul (and torch._int_mm, torch._scaled_mm) on the CPU or a CUDA GPU."""

    name = "torch"

    def __init__(self, device: str, threads: int) -> None:
        import torch

        self._torch = torch
        self.device = device
        self.kind = "gpu" if device == "cuda" else "cpu"
        self.threads = threads
        self._threads_before = torch.get_num_threads()
        if device == "cpu":
            torch.set_num_threads(threads)
        self._matmul_precision_before = torch.get_float32_matmul_precision()
        self.library = torch_library(torch, device)
        self._generator = torch.Generator(device=device).manual_seed(0)
        self._arenas: dict[str, Any] = {}
        self._fills = FillMeter()
        self._fresh_guess_bytes_per_s = FRESH_FILL_BYTES_PER_S
        self._fill_clock: Clock = time.perf_counter
        self._fill_stop_s = math.inf

    def _dtype(self, precision: str) -> Any:
        torch = self._torch
        return {"fp64": torch.float64, "fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
                "fp16": torch.float16, "int8": torch.int8, "fp8": getattr(torch, "float8_e4m3fn", None)}[precision]

    def precisions(self) -> list[str]:
        offered = ["fp64", "fp32", "bf16", "fp16", "int8"]
        if self.device == "cuda":
            offered.insert(2, "tf32")
            if self._torch.cuda.get_device_capability(0) >= (8, 9) and self._dtype("fp8") is not None:
                offered.append("fp8")
        return offered

    def kernel(self, precision: str) -> tuple[str, bool | None]:
        lib = self.library.get("blas", "?")
        if precision == "int8":
            return f"torch._int_mm int8 -> int32 ({lib})", None
        if precision == "fp8":
            return "torch._scaled_mm float8_e4m3fn -> bf16 (cuBLASLt)", None
        if precision == "tf32":
            return "torch.matmul float32 with TF32 tensor cores (cuBLAS)", None
        return f"torch.matmul {str(self._dtype(precision)).removeprefix('torch.')} ({lib})", None

    def _filled(self, elements: int, precision: str) -> Any:
        """As ``NumpyBackend._filled``: a random block repeated."""
        torch = self._torch
        block_elements = min(elements, FILL_BLOCK_ELEMENTS)
        if precision == "int8":
            block = torch.randint(-4, 4, (block_elements,), dtype=torch.int8, device=self.device,
                                  generator=self._generator)
        else:
            block = torch.randn((block_elements,), dtype=torch.float32, device=self.device,
                                generator=self._generator).to(self._dtype(precision))
        values = torch.empty((elements,), dtype=block.dtype, device=self.device)

        def fill(begin: int, end: int) -> None:
            part = values[begin:end]
            whole = part.numel() - part.numel() % block_elements
            part[:whole].view(-1, block_elements).copy_(block)  # (blocks, block_elements), broadcast
            part[whole:].copy_(block[:part.numel() - whole])
            if self.device == "cuda":
                torch.cuda.synchronize()
        fill_in_chunks(0, elements, ELEMENT_BYTES[precision], fill, self._fill_clock, self._fill_stop_s, self._fills)
        return values

    def _operands(self, precision: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> tuple[Any, Any]:
        """As ``NumpyBackend._operands``: disjoint views of one filled arena per precision."""
        b_start, need = arena_layout(math.prod(a_shape), math.prod(b_shape), ELEMENT_BYTES[precision])
        arena = self._arenas.get(precision)
        if arena is None or arena.numel() < need:
            self._arenas.pop(precision, None)
            arena = self._arenas[precision] = self._filled(need, precision)
        return arena[:math.prod(a_shape)].view(a_shape), arena[b_start:need].view(b_shape)

    def operand_fill_s(self, precision: str, m: int, k: int, n: int, copies: int) -> float:
        _, need = arena_layout(copies * m * k, copies * k * n, ELEMENT_BYTES[precision])
        arena = self._arenas.get(precision)
        if arena is not None and arena.numel() >= need:
            return 0.0
        return need * ELEMENT_BYTES[precision] / (self._fills.bytes_per_s() or self._fresh_guess_bytes_per_s)

    def set_fill_deadline(self, stop_s: float, clock: Clock) -> None:
        self._fill_stop_s, self._fill_clock = stop_s, clock

    def adopt_memory(self, memory: Any, precision: str, fill_bytes_per_s: float | None) -> None:
        """The memory is not reused (PyTorch allocates its own); the rate guesses how fast its fills go."""
        self._fresh_guess_bytes_per_s = fill_bytes_per_s or FRESH_FILL_BYTES_PER_S

    def gemm_run(self, precision: str, m: int, k: int, n: int, copies: int, repeat: int) -> Run:
        torch = self._torch
        if precision == "fp8":  # _scaled_mm wants B column-major: store (copies, N, K), use its transpose
            a, b_stored = self._operands(precision, (copies, m, k), (copies, n, k))  # (copies, M, K), (copies, N, K)
            b = b_stored.transpose(1, 2)  # (copies, K, N)
            scale = torch.ones((), device=self.device)
            c = torch.empty((m, n), dtype=torch.bfloat16, device=self.device)  # (M, N)

            def product(x: Any, y: Any) -> Any:
                return torch._scaled_mm(x, y, scale_a=scale, scale_b=scale, out_dtype=torch.bfloat16, out=c)
        elif precision == "int8":
            a, b = self._operands(precision, (copies, m, k), (copies, k, n))  # (copies, M, K), (copies, K, N)
            c = torch.empty((m, n), dtype=torch.int32, device=self.device)  # (M, N)

            def product(x: Any, y: Any) -> Any:
                return torch._int_mm(x, y, out=c)
        else:
            a, b = self._operands(precision, (copies, m, k), (copies, k, n))  # (copies, M, K), (copies, K, N)
            c = torch.empty((m, n), dtype=self._dtype(precision), device=self.device)  # (M, N)

            def product(x: Any, y: Any) -> Any:
                return torch.matmul(x, y, out=c)
        order = [(a[i % copies], b[i % copies]) for i in range(repeat)]
        tf32 = "high" if precision == "tf32" else "highest"
        if self.device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

            def run_cuda() -> float:
                torch.set_float32_matmul_precision(tf32)
                start.record()
                for x, y in order:
                    product(x, y)
                end.record()
                end.synchronize()
                return float(start.elapsed_time(end)) / 1e3  # CUDA events count milliseconds
            return run_cuda
        clock = time.perf_counter

        def run_cpu() -> float:
            start_s = clock()
            for x, y in order:
                product(x, y)
            return clock() - start_s
        return run_cpu

    def stream(self, max_working_set_bytes: int, allowance_s: float, clock: Clock) -> StreamBench:
        if self.device == "cuda":
            return TorchCudaStream(self._torch, max_working_set_bytes)
        from llm_roofline.features.measure.stream import NumpyStream

        return NumpyStream(self.threads, max_working_set_bytes, allowance_s, clock)

    def caches(self) -> list[system.Cache]:
        if self.device == "cuda":
            l2_bytes = getattr(self._torch.cuda.get_device_properties(0), "L2_cache_size", 0)
            return [system.Cache("L2", int(l2_bytes), 1)] if l2_bytes else []
        return system.data_caches()

    def memory_bytes(self) -> int | None:
        if self.device == "cuda":
            return int(self._torch.cuda.get_device_properties(0).total_memory)
        return system.physical_memory_bytes()

    def display_name(self) -> str:
        return self.library["gpu"] if self.device == "cuda" else system.cpu_model()

    def close(self) -> None:
        self._arenas.clear()
        self._torch.set_float32_matmul_precision(self._matmul_precision_before)
        if self.device == "cpu":
            self._torch.set_num_threads(self._threads_before)


class TorchCudaStream:
    """The four STREAM kernels as PyTorch kernels on the GPU (triad is one fused ``add`` with alpha)."""

    threads = 1
    dispatch_s = 0.0  # kernels are queued back to back; events time the device alone

    def __init__(self, torch: Any, max_working_set_bytes: int) -> None:
        self._torch = torch
        start_s = time.perf_counter()
        elements = max(1024, max_working_set_bytes // 16)  # copy/scale: the largest arrays
        self.a = torch.full((elements,), 1.0, dtype=torch.float64, device="cuda")
        self.b = torch.full((elements,), 2.0, dtype=torch.float64, device="cuda")
        self.c = torch.zeros((elements,), dtype=torch.float64, device="cuda")
        torch.cuda.synchronize()
        self.fill_bytes_per_s: float | None = 3 * 8 * elements / max(time.perf_counter() - start_s, 1e-9)
        self.max_working_set_bytes = 16 * elements  # copy's: two arrays (a GPU allocates at once, no allowance)

    def _elements(self, kernel: str, working_set_bytes: int) -> int:
        from llm_roofline.features.measure.stream import ARRAYS_PER_KERNEL, ELEMENT_BYTES

        per_array = working_set_bytes // (ARRAYS_PER_KERNEL[kernel] * ELEMENT_BYTES)
        return min(int(self.a.numel()), max(1024, per_array - per_array % 128))

    def working_set_bytes(self, kernel: str, working_set_bytes: int) -> int:
        from llm_roofline.features.measure.stream import counted_bytes

        return counted_bytes(kernel, self._elements(kernel, working_set_bytes))

    def make_run(self, kernel: str, working_set_bytes: int, repeat: int) -> tuple[Run, int]:
        from llm_roofline.features.measure.stream import SCALAR, counted_bytes

        torch = self._torch
        elements = self._elements(kernel, working_set_bytes)
        a, b, c = self.a[:elements], self.b[:elements], self.c[:elements]
        kernels: dict[str, Callable[[], object]] = {
            "copy": lambda: c.copy_(a), "scale": lambda: torch.mul(c, SCALAR, out=b),
            "add": lambda: torch.add(a, b, out=c), "triad": lambda: torch.add(b, c, alpha=SCALAR, out=a)}
        step = kernels[kernel]
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def run() -> float:
            start.record()
            for _ in range(repeat):
                step()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end)) / 1e3
        return run, counted_bytes(kernel, elements) * repeat

    def take_memory(self) -> None:
        return None  # GPU memory: PyTorch's caching allocator reuses it anyway

    def close(self) -> None:
        del self.a, self.b, self.c
        self._torch.cuda.empty_cache()


def open_backend(choice: BackendChoice, threads: int) -> Backend:
    if choice.backend == "numpy":
        return NumpyBackend(threads)
    return TorchBackend(choice.device, threads)
