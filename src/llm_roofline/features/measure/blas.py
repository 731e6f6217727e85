"""Which BLAS numpy calls, which kernel it picked for this CPU, and how many threads it may use.

threadpoolctl answers and controls this when it is installed. Without it, OpenBLAS (what numpy's
wheels ship) is asked directly through its C API: the library is found among the shared objects
this process has loaded, and its symbols tried under the names its builds use.
"""

from __future__ import annotations

import ctypes
import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _ctypes import CFuncPtr

_OPENBLAS_PREFIXES = ("scipy_openblas_", "openblas_")  # scipy-openblas (numpy's wheels), plain OpenBLAS
_OPENBLAS_SUFFIXES = ("64_", "", "_64")  # 64-bit-integer builds rename their symbols


def _loaded_libraries(fragment: str) -> list[str]:
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    paths = {line.split()[-1] for line in lines if fragment in line.lower() and line.split()[-1].startswith("/")}
    return sorted(paths)


def _symbol(lib: ctypes.CDLL, name: str) -> CFuncPtr | None:
    for prefix in _OPENBLAS_PREFIXES:
        for suffix in _OPENBLAS_SUFFIXES:
            function: CFuncPtr | None = getattr(lib, f"{prefix}{name}{suffix}", None)
            if function is not None:
                return function
    return None


class BlasControl:
    """numpy's BLAS: a description for the record, and a thread limit that can be set and undone."""

    def __init__(self) -> None:
        import numpy as np

        self._threadpoolctl: Any = None
        self._openblas: ctypes.CDLL | None = None
        self.info: dict[str, str] = {}
        if importlib.util.find_spec("threadpoolctl") is not None:
            import threadpoolctl

            self._threadpoolctl = threadpoolctl
            blas = [m for m in threadpoolctl.threadpool_info() if m.get("user_api") == "blas"]
            if blas:
                self.info = {"blas": f"{blas[0].get('internal_api')} {blas[0].get('version')}",
                             "blas_kernel": str(blas[0].get("architecture") or "unknown"),
                             "blas_threading": str(blas[0].get("threading_layer") or "unknown"),
                             "source": f"threadpoolctl {threadpoolctl.__version__}"}
        if not self.info:
            self._openblas = self._find_openblas()
            if self._openblas is not None:
                self.info = {"blas": self._call_str("get_config").split("  ")[0] or "OpenBLAS",
                             "blas_kernel": self._call_str("get_corename") or "unknown",
                             "source": "OpenBLAS C API"}
        if not self.info:
            config: Mapping[str, Any] = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
            blas = config.get("Build Dependencies", {}).get("blas", {}) if isinstance(config, dict) else {}
            self.info = {"blas": f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip(),
                         "blas_kernel": "unknown", "source": "numpy.show_config"}

    @staticmethod
    def _find_openblas() -> ctypes.CDLL | None:
        for path in _loaded_libraries("openblas"):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            if _symbol(lib, "get_num_threads") is not None:
                return lib
        return None

    def _call_str(self, name: str) -> str:
        function = _symbol(self._openblas, name) if self._openblas is not None else None
        if function is None:
            return ""
        function.restype = ctypes.c_char_p
        return (function() or b"").decode(errors="replace").strip()

    def threads(self) -> int | None:
        if self._threadpoolctl is not None:
            counts = [m["num_threads"] for m in self._threadpoolctl.threadpool_info() if m.get("user_api") == "blas"]
            return counts[0] if counts else None
        function = _symbol(self._openblas, "get_num_threads") if self._openblas is not None else None
        if function is None:
            return None
        function.restype = ctypes.c_int
        return int(function())

    def set_threads(self, threads: int) -> Callable[[], None]:
        """Limit the BLAS to ``threads`` threads; returns the function that restores the old limit."""
        if self._threadpoolctl is not None:
            limiter = self._threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
            restore: Callable[[], None] = limiter.restore_original_limits
            return restore
        function = _symbol(self._openblas, "set_num_threads") if self._openblas is not None else None
        if function is None:
            return lambda: None
        before = self.threads()
        function.argtypes = [ctypes.c_int]
        function(threads)
        return (lambda: function(before)) if before else (lambda: None)
