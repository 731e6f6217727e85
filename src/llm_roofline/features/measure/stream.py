"""STREAM-style bandwidth kernels in numpy, run on every core by a pool of persistent threads.

Kernels (McCalpin's STREAM, with s = 3):

    copy   c = a          2 arrays, 16 bytes counted per element
    scale  b = s * c      2 arrays, 16 bytes counted per element
    add    c = a + b      3 arrays, 24 bytes counted per element
    triad  a = b + s * c  3 arrays, 24 bytes counted per element

Bytes are counted as STREAM counts them: each array element read or written once, no
write-allocate. With ordinary stores a CPU first reads each destination line it writes, so the DRAM
really moves 1.5x (copy, scale) or 1.33x (add, triad) the counted bytes; STREAM's figures, and ours,
leave that out. The counted bytes of one pass equal the working set: the bytes of the arrays touched.

numpy ufuncs release the GIL while they loop, so each thread runs its kernel on its own slice of
the arrays in parallel with the others. Nothing is allocated while the clock runs: every view and
scratch block is made before. A working set that fits a cache is passed over ``repeat`` times in
one ufunc call (a view that repeats the slice with stride 0), so the Python call overhead is paid
once per run, not once per pass. The ufunc buffer size is set to the slice length in the worker
thread: a larger buffer makes numpy 2.4 copy the repeated rows into it, a smaller one makes numpy 2.5
cut every row into buffer-sized pieces. numpy has no single-pass triad: it is computed block by
block, ``w = s * c`` into a scratch block that stays in cache, then ``a = b + w``, so that the arrays
themselves are each passed over once.
"""

from __future__ import annotations

import functools
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from llm_roofline.core.errors import InputError
from llm_roofline.features.measure.timing import Clock, Run

if TYPE_CHECKING:
    import numpy as np

KERNELS = ("copy", "scale", "add", "triad")
ARRAYS_PER_KERNEL = {"copy": 2, "scale": 2, "add": 3, "triad": 3}
SCALAR = 3.0
ELEMENT_BYTES = 8  # float64, as STREAM
ALIGN_ELEMENTS = 16  # slices are whole 128-byte pairs of cache lines: no line is shared by two threads
TRIAD_BLOCK_ELEMENTS = 131072  # 1 MiB per array per block: the scratch block stays in L2/L3
MAX_NUMPY_BUFFER_ELEMENTS = 10**7  # the largest np.setbufsize accepts
PAGE_ALIGN_BYTES = 2 * 2**20  # arrays start on a 2 MiB boundary, where a transparent huge page can begin
TOUCH_CHUNK_BYTES = 32 * 2**20  # each thread first touches its part of each array this much at a time


def counted_bytes(kernel: str, elements: int) -> int:
    """STREAM's count for one pass of ``kernel`` over ``elements`` elements per array."""
    return ARRAYS_PER_KERNEL[kernel] * ELEMENT_BYTES * elements


class WorkerPool:
    """Persistent threads that each run one task per round, released together and awaited together."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._start = threading.Barrier(threads + 1)
        self._done = threading.Barrier(threads + 1)
        self._tasks: Sequence[Callable[[], object]] | None = None
        self._errors: list[BaseException] = []
        self._workers = [threading.Thread(target=self._loop, args=(i,), daemon=True,
                                          name=f"llm-roofline-measure-{i}") for i in range(threads)]
        for started, worker in enumerate(self._workers):
            try:
                worker.start()
            except RuntimeError as err:  # the system's limit on threads (ulimit -u, cgroup pids.max)
                self._start.abort()  # releases the threads already started
                raise InputError(f"threads: only {started} of {threads} could start ({err}); ask for fewer") from None

    def _loop(self, index: int) -> None:
        while True:
            try:
                self._start.wait()
            except threading.BrokenBarrierError:  # the pool could not start: nothing to run
                return
            tasks = self._tasks
            if tasks is None:
                return
            try:
                tasks[index]()
            except BaseException as err:  # re-raised in the caller's thread by run()
                self._errors.append(err)
            self._done.wait()

    def run(self, tasks: Sequence[Callable[[], object]]) -> float:
        """Run ``tasks[i]`` on thread i, all at once; the seconds from release to the last finish."""
        if len(tasks) != self.threads:
            raise ValueError(f"{len(tasks)} tasks for {self.threads} threads")
        self._tasks = tasks
        start_s = time.perf_counter()
        self._start.wait()
        self._done.wait()
        elapsed_s = time.perf_counter() - start_s
        if self._errors:
            raise self._errors.pop()
        return elapsed_s

    def close(self) -> None:
        self._tasks = None
        self._start.wait()
        for worker in self._workers:
            worker.join()


def _aligned_arrays(elements: int, count: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``count`` float64 arrays of ``elements`` each, every one on a 2 MiB boundary in one block; and the block."""
    import numpy as np

    stride = -(-elements * ELEMENT_BYTES // PAGE_ALIGN_BYTES) * PAGE_ALIGN_BYTES
    block = np.empty(count * stride + PAGE_ALIGN_BYTES, dtype=np.uint8)
    start = -block.ctypes.data % PAGE_ALIGN_BYTES
    return block, [block[start + i * stride:start + i * stride + elements * ELEMENT_BYTES].view(np.float64)
                   for i in range(count)]


def _aligned_empty(elements: int) -> np.ndarray:
    import numpy as np

    raw = np.empty(elements * ELEMENT_BYTES + PAGE_ALIGN_BYTES, dtype=np.uint8)
    start = -raw.ctypes.data % PAGE_ALIGN_BYTES
    return raw[start:start + elements * ELEMENT_BYTES].view(np.float64)


def _repeated(view: np.ndarray, repeat: int) -> np.ndarray:
    """``view`` seen ``repeat`` times in a row, without a copy: shape (repeat, n), stride 0 between rows."""
    from numpy.lib.stride_tricks import as_strided

    return view if repeat == 1 else as_strided(view, shape=(repeat, view.size), strides=(0, view.strides[0]))


class NumpyStream:
    """The four kernels over working sets up to ``max_working_set_bytes``, split over ``threads`` threads.

    Each thread owns one region of each array (first touched by that thread) and works inside it
    at every working-set size. The first touch (the page faults: on a VM, up to seconds a GiB) may
    take ``allowance_s`` on ``clock``: it goes a chunk at a time while the next chunk fits, and the
    arrays then reach as far as it went (``max_working_set_bytes`` says how far).
    """

    def __init__(self, threads: int, max_working_set_bytes: int, allowance_s: float = math.inf,
                 clock: Clock = time.perf_counter) -> None:
        self.pool = WorkerPool(threads)
        self.threads = threads
        per_thread = max_working_set_bytes // (2 * ELEMENT_BYTES * threads)  # copy/scale: the largest slices
        self.region_stride = max(ALIGN_ELEMENTS, per_thread - per_thread % ALIGN_ELEMENTS)  # between regions
        self._block, (self.a, self.b, self.c) = _aligned_arrays(self.region_stride * threads, 3)
        self.scratch = [_aligned_empty(TRIAD_BLOCK_ELEMENTS) for _ in range(threads)]
        self.region_elements = self._first_touch_within(allowance_s, clock)  # each region's part in use
        idle = [lambda: None] * threads
        self.dispatch_s = statistics.median(self.pool.run(idle) for _ in range(21))  # release + await, no work

    @property
    def max_working_set_bytes(self) -> int:
        """The largest working set the arrays hold (copy's and scale's: two arrays)."""
        return counted_bytes("copy", self.region_elements * self.threads)

    def _first_touch_within(self, allowance_s: float, clock: Clock) -> int:
        """First touch each region chunk by chunk while the next chunk fits in ``allowance_s``; the elements
        touched per region. How fast that went is how fast fresh memory fills (``fill_bytes_per_s``)."""
        chunk = max(ALIGN_ELEMENTS, TOUCH_CHUNK_BYTES // ELEMENT_BYTES // ALIGN_ELEMENTS * ALIGN_ELEMENTS)
        start_s = clock()
        self.pool.run([functools.partial(block.fill, 0.0) for block in self.scratch])
        touched, elapsed_s = 0, 0.0
        while touched < self.region_stride:
            end = min(self.region_stride, touched + chunk)
            self.pool.run([self._first_touch(i, touched, end) for i in range(self.threads)])
            touched, elapsed_s = end, clock() - start_s
            if elapsed_s + elapsed_s / touched * chunk > allowance_s:
                break
        self.fill_bytes_per_s: float | None = 3 * touched * self.threads * ELEMENT_BYTES / max(elapsed_s, 1e-9)
        return touched

    def _region(self, array: np.ndarray, index: int, elements: int) -> np.ndarray:
        start = index * self.region_stride
        return array[start:start + elements]

    def _first_touch(self, index: int, begin: int, end: int) -> Callable[[], None]:
        def touch() -> None:
            for array, value in ((self.a, 1.0), (self.b, 2.0), (self.c, 0.0)):
                self._region(array, index, end)[begin:].fill(value)
        return touch

    def elements_per_thread(self, kernel: str, working_set_bytes: int) -> int:
        per_thread = working_set_bytes // (ARRAYS_PER_KERNEL[kernel] * ELEMENT_BYTES * self.threads)
        return min(self.region_elements, max(ALIGN_ELEMENTS, per_thread - per_thread % ALIGN_ELEMENTS))

    def working_set_bytes(self, kernel: str, working_set_bytes: int) -> int:
        """The working set actually used for a requested one (slices are whole cache lines)."""
        return counted_bytes(kernel, self.elements_per_thread(kernel, working_set_bytes) * self.threads)

    def make_run(self, kernel: str, working_set_bytes: int, repeat: int) -> tuple[Run, int]:
        """A run of ``repeat`` passes of ``kernel``, and the bytes it counts (STREAM's way)."""
        elements = self.elements_per_thread(kernel, working_set_bytes)
        tasks = [self._task(kernel, i, elements, repeat) for i in range(self.threads)]
        return (lambda: self.pool.run(tasks)), counted_bytes(kernel, elements * self.threads) * repeat

    def _task(self, kernel: str, index: int, elements: int, repeat: int) -> Callable[[], object]:
        import numpy as np

        body = self._kernel_body(kernel, index, elements, repeat)
        buffer_elements = min(elements, TRIAD_BLOCK_ELEMENTS if kernel == "triad" else elements,
                              MAX_NUMPY_BUFFER_ELEMENTS)
        buffer_elements = max(16, buffer_elements - buffer_elements % 16)  # numpy wants a multiple of 16

        def task() -> None:
            np.setbufsize(buffer_elements)  # this worker thread's own setting (a context variable)
            body()
        return task

    def _kernel_body(self, kernel: str, index: int, elements: int, repeat: int) -> Callable[[], object]:
        import numpy as np

        a, b, c = (self._region(x, index, elements) for x in (self.a, self.b, self.c))
        if kernel == "copy":
            src, dst = _repeated(a, repeat), _repeated(c, repeat)
            return lambda: np.copyto(dst, src)
        if kernel == "scale":
            src, dst = _repeated(c, repeat), _repeated(b, repeat)
            return lambda: np.multiply(src, SCALAR, out=dst)
        if kernel == "add":
            x, y, out = _repeated(a, repeat), _repeated(b, repeat), _repeated(c, repeat)
            return lambda: np.add(x, y, out=out)
        if kernel != "triad":
            raise ValueError(f"unknown kernel {kernel!r}")
        scratch = self.scratch[index]
        if elements <= TRIAD_BLOCK_ELEMENTS:  # one block: repeat inside the ufunc calls
            w = _repeated(scratch[:elements], repeat)
            aa, bb, cc = (_repeated(x, repeat) for x in (a, b, c))

            def triad_in_cache() -> None:
                np.multiply(cc, SCALAR, out=w)
                np.add(bb, w, out=aa)
            return triad_in_cache
        blocks = [(a[s:s + TRIAD_BLOCK_ELEMENTS], b[s:s + TRIAD_BLOCK_ELEMENTS], c[s:s + TRIAD_BLOCK_ELEMENTS],
                   scratch[:min(TRIAD_BLOCK_ELEMENTS, elements - s)]) for s in range(0, elements, TRIAD_BLOCK_ELEMENTS)]

        def triad_blocked() -> None:
            for _ in range(repeat):
                for aa, bb, cc, w in blocks:
                    np.multiply(cc, SCALAR, out=w)
                    np.add(bb, w, out=aa)
        return triad_blocked

    def take_memory(self) -> np.ndarray:
        """The arrays' memory, one block of bytes, already faulted in: once the stream is closed, the caller may
        reuse it (filling fresh memory of that size can take seconds on a VM)."""
        return self._block

    def close(self) -> None:
        """Stop the threads and let the arrays go (hundreds of MiB), unless ``take_memory`` kept them."""
        self.pool.close()
        del self.a, self.b, self.c, self.scratch, self._block
