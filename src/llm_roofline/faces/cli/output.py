"""The command line's output edge: everything written to stdout and stderr is made printable.

Names come from files (a GGUF's ``general.name``, a config's display name, a device file, a CSV cell)
and from the command line itself; any of them may hold terminal escapes (``ESC ] 0 ; title BEL``,
``ESC [ 2 J``). While a command runs, ``sys.stdout`` and ``sys.stderr`` pass every write through
``inputs.printable.printable``, so no path (a result, a warning, an argparse error, the sweep's CSV on
stdout) prints one raw. Newlines and tabs are kept; a carriage return is kept only in a write that
starts with one (a progress bar redrawing its line), escaped elsewhere.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast

from llm_roofline.inputs.printable import printable


class _Printable:
    """A text stream that writes the printable form of what it is given to ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text, "\n\t\r" if text.startswith("\r") else "\n\t"))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, buffer: the stream's own
        return getattr(self._stream, name)


@contextmanager
def printable_output() -> Iterator[None]:
    """Within the block, ``sys.stdout`` and ``sys.stderr`` write only printable text."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = cast(TextIO, _Printable(stdout)), cast(TextIO, _Printable(stderr))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr
