"""Text that is safe to print: control characters from files and command lines shown, never obeyed.

A name read from a file (a GGUF's ``general.name``, a config's display name, a device file's
``display_name``, a CSV cell) or typed on the command line may hold ``ESC ] 0 ; ... BEL`` (rewrite the
terminal's title), ``ESC [ 2 J`` (clear the screen), a carriage return (overwrite the line) or a
right-to-left override (show ``txt.exe`` as ``exe.txt``). Printed as it is, the terminal obeys it.
``printable`` writes each such character as a visible escape instead: C0 controls (U+0000-U+001F),
DEL, the C1 controls (U+0080-U+009F), the bidirectional overrides and isolates (U+202A-U+202E,
U+2066-U+2069) and lone surrogates (undecodable bytes of a command line) become ``\\u001b``,
``\\u202e``, ... The escape is JSON's own, so JSON stays valid JSON and a JSON reader gets the
original character back.

Names are escaped where they are read (``escape_strings`` on a device file's data, the measurement
reader's cells); the command line escapes everything it prints as well (``faces.cli.output``), so a
path no reader covers is still safe.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from llm_roofline.core.errors import InputError

_UNSAFE = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
MAX_DEPTH = 64  # as reading.MAX_JSON_DEPTH: a device file nests 3 levels, a profile 4


@functools.cache
def _unsafe(keep: str) -> re.Pattern[str]:
    return re.compile(f"(?![{re.escape(keep)}])[{_UNSAFE}]" if keep else f"[{_UNSAFE}]")


def printable(text: str, keep: str = "") -> str:
    """``text`` with every control, bidi-override and lone-surrogate character written as ``\\uXXXX``.

    ``keep``: control characters left as they are (``"\\n\\t"`` for multi-line output).
    """
    return _unsafe(keep).sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def escape_strings(data: Any, where: str) -> Any:
    """Parsed JSON or TOML with every string, keys included, passed through ``printable``.

    Nesting deeper than ``MAX_DEPTH`` is refused in one line (TOML has no depth limit of its own).
    """
    def walk(value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise InputError(f"{where}: nested deeper than {MAX_DEPTH} levels; a device file nests a few")
        if isinstance(value, str):
            return printable(value)
        if isinstance(value, dict):
            return {printable(str(k)): walk(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, depth + 1) for v in value]
        return value

    return walk(data, 0)
