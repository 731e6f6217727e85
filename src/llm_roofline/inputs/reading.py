"""Reading files: the one gate every file the tool reads passes through.

A path a user names may be anything: a folder, a FIFO that never ends, ``/dev/zero``, a symlink to
``/dev/urandom`` named ``x.json``, a 7 GB file, text nested 100,000 levels deep. Every reader of a
user's file (model configs, device files and profiles, measurement CSVs, chart data; GGUF headers
have their own incremental reader in ``gguf``) calls ``read_text`` and, for JSON, ``parse_json``:

- only regular files are read (opened without blocking, checked with ``fstat`` on the open handle,
  so a symlink or a swapped path cannot slip a device in between the check and the read);
- at most ``SIZE_LIMITS_BYTES[kind]`` bytes are read, whatever the file claims its size is;
- text must be UTF-8; JSON must nest at most ``MAX_JSON_DEPTH`` levels and hold no NaN/Infinity.

Each refusal is one ``InputError`` line: "<name> <path>: <what is wrong> (<what is accepted>)".
The limits are listed in docs/security.md.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from llm_roofline.core.errors import InputError

MiB = 1 << 20

# The most a file of each kind may hold. Real files sit far below: a Hugging Face config.json is
# 1-10 kB (Llama-4's, the largest we know, 12 kB); a device file or profile ~2 kB; a calibration
# CSV ~10 kB a hundred rows, llama-bench output ~1 kB a test; the caps leave room for 1000x that.
SIZE_LIMITS_BYTES: dict[str, int] = {
    "model config": 4 * MiB,
    "hardware file": 1 * MiB,
    "profile": 1 * MiB,
    "measurements": 64 * MiB,
    "chart data": 16 * MiB,
}
MAX_JSON_DEPTH = 64  # config.json nests 3 levels (rope_scaling, quantization_config); llama-bench 2

_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket"}
_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


@contextmanager
def open_regular(path: str | Path, kind: str, name: str = "") -> Iterator[BinaryIO]:
    """The regular file ``path`` opened for reading in binary, or one InputError line.

    Opened without blocking (a FIFO would wait forever for a writer) and checked with ``fstat`` on the
    open handle. ``kind`` names the file in messages ("GGUF file"); ``name``: the option or parameter
    that gave the path ("--model"), put before it in messages when given.
    """
    label = f"{name} {path}" if name else f"{kind} {path}"
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError) as err:  # ValueError: a NUL in the path
        raise InputError(f"{label}: cannot read ({_why(err)}); expected a readable {kind}") from None
    try:
        mode = os.fstat(handle).st_mode
    except OSError as err:
        os.close(handle)
        raise InputError(f"{label}: cannot read ({_why(err)}); expected a readable {kind}") from None
    if not stat.S_ISREG(mode):
        os.close(handle)
        what = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise InputError(f"{label}: cannot read {what}; expected a regular file ({kind})")
    with os.fdopen(handle, "rb") as file:
        yield file


def read_bytes(path: str | Path, kind: str, name: str = "") -> bytes:
    """At most ``SIZE_LIMITS_BYTES[kind]`` bytes of the regular file ``path`` (``open_regular``), or one
    InputError line; whatever size the file claims (a /proc file says 0), no more is read."""
    limit = SIZE_LIMITS_BYTES[kind]
    label = f"{name} {path}" if name else f"{kind} {path}"
    with open_regular(path, kind, name) as file:
        try:
            data = file.read(limit + 1)
        except OSError as err:
            raise InputError(f"{label}: cannot read ({_why(err)}); expected a readable {kind}") from None
    if len(data) > limit:
        raise InputError(f"{label}: larger than the {limit // MiB} MiB a {kind} may be; is it the right file?")
    return data


def read_text(path: str | Path, kind: str, name: str = "", encoding: str = "utf-8") -> str:
    """``read_bytes`` decoded as UTF-8 (``utf-8-sig``: a leading byte-order mark is dropped)."""
    data = read_bytes(path, kind, name)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        label = f"{name} {path}" if name else f"{kind} {path}"
        raise InputError(f"{label}: not UTF-8 text (byte {err.start}); expected a {kind} as text") from None


def parse_json(text: str | bytes, where: str) -> Any:
    """JSON with at most ``MAX_JSON_DEPTH`` levels of nesting and no NaN or Infinity, or one InputError line."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = deepest = 0
    for match in _BRACKETS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    raise InputError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels; "
                                     "a config or data file nests a few")
        elif token in (b"]", b"}"):
            depth -= 1
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: not valid JSON: {err}") from None
    except (RecursionError, UnicodeDecodeError) as err:
        raise InputError(f"{where}: not valid JSON ({err.__class__.__name__})") from None
    except ValueError:  # an integer past Python's digit limit (sys.get_int_max_str_digits)
        raise InputError(f"{where}: a number in it has more than {sys.get_int_max_str_digits()} digits; "
                         "no count in a model or device file is that large") from None


def path_kind(path: str | Path) -> str | None:
    """"file", "folder" or "other" for what ``path`` names (symlinks followed); None when nothing is
    there or it cannot be looked at (a name too long to be a path, a folder we may not enter)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return None
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def _no_constant(word: str) -> Any:
    raise json.JSONDecodeError(f"{word} is not a number JSON allows (write a finite value)", word, 0)


def _why(err: OSError | ValueError) -> str:
    if not isinstance(err, OSError):
        return "not a path"
    if err.errno == errno.ENOENT:
        return "no such file"
    if err.errno == errno.EISDIR:
        return "it is a folder"
    return err.strerror or err.__class__.__name__
