"""Writing files: TOML text, atomic writes and the one rule every output path follows."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from llm_roofline.core.errors import InputError


def toml_text(data: dict[str, Any], _prefix: str = "") -> str:
    """TOML for nested dicts of numbers, strings, booleans and lists (a device profile, a defaults table).

    None values are left out (TOML has no null); dicts become tables, lists of dicts arrays of tables.
    """
    scalars, tables, arrays = [], [], []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            scalars.append(f"{_toml_key(key)} = {_toml_value(value)}")
    parts = ["\n".join(scalars)] if scalars else []
    for key, table_data in tables:
        name = f"{_prefix}{_toml_key(key)}"
        body = toml_text(table_data, f"{name}.").rstrip("\n")
        has_own_keys = any(not isinstance(v, (dict, list)) or (isinstance(v, list) and not all(
            isinstance(item, dict) for item in v)) for v in table_data.values() if v is not None)
        parts.append(f"[{name}]\n{body}" if has_own_keys or not body else body)
    for key, items in arrays:
        name = f"{_prefix}{_toml_key(key)}"
        parts += [f"[[{name}]]\n{toml_text(item, f'{name}.')}".rstrip("\n") for item in items]
    return "\n\n".join(part for part in parts if part) + "\n"


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


@contextmanager
def atomic_output(path: str | Path, name: str, mode: str = "w", newline: str | None = None) -> Iterator[IO[Any]]:
    """A file object whose content appears at ``path`` only when the ``with`` block ends without error.

    It writes a temporary file in the target folder and renames it over ``path``: an interrupted or
    failed write (a full disk, an exception, Ctrl-C) leaves the previous file, or none, never half a
    file. Missing folders are created; the file gets the mode a plain write gives it (0666 less the
    umask); every OS error becomes one InputError line, "NAME PATH: cannot write (why)".
    ``mode``: "w" (text, UTF-8) or "wb".
    """
    path = create_folders(path, name)
    if path.is_dir():
        raise InputError(f"{name} {path}: cannot write (it is a folder, not a file)")
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise InputError(f"{name} {path}: cannot write ({err.strerror or err})") from None
    try:
        binary = "b" in mode
        with os.fdopen(handle, mode, encoding=None if binary else "utf-8", newline=None if binary else newline) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as err:
        Path(temporary).unlink(missing_ok=True)
        raise InputError(f"{name} {path}: cannot write ({err.strerror or err})") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str, name: str = "path") -> None:
    """Write ``text`` to ``path`` through ``atomic_output``."""
    with atomic_output(path, name) as out:
        out.write(text)


def write_bytes_atomically(path: str | Path, data: bytes, name: str = "path") -> None:
    """Write ``data`` to ``path`` through ``atomic_output``."""
    with atomic_output(path, name, "wb") as out:
        out.write(data)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# Every file the program writes (-o, --output, --heatmap, --save) follows one rule: missing folders
# are created, as `mkdir -p` would; anything else that stops the write is refused in one line,
# "NAME PATH: cannot write (why)", where NAME is the option (CLI) or the parameter (Python API).

def check_writable(path: str | Path, name: str) -> Path:
    """Refuse now, before any work and without creating anything, a file the rule could not write."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{name} {path}: cannot write (it is a folder, not a file)")
    folder = existing = path.parent
    while not existing.is_dir():
        if existing.exists():
            raise InputError(f"{name} {path}: cannot write ({existing} is a file, not a folder)")
        existing = existing.parent
    try:  # create and remove an entry where the write will make one: what a permission check cannot tell
        if existing == folder:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".check"):
                pass
        else:
            os.rmdir(tempfile.mkdtemp(dir=existing, prefix=f".{path.name}.", suffix=".check"))
    except OSError as err:
        raise InputError(f"{name} {path}: cannot write ({existing}: {err.strerror or err})") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{name} {path}: cannot write (the file is read-only)")
    return path


def create_folders(path: str | Path, name: str) -> Path:
    """Create the missing folders above ``path`` (the rule above), refusing in one line."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{name} {path}: cannot write ({err.filename or path.parent}: {err.strerror or err})"
                         ) from None
    return path


def check_profile_path(path: str | Path, name: str) -> Path:
    """A device profile's file: the rule above, and a name that ``--hardware`` reads (.toml or .json)."""
    path = Path(path)
    if path.suffix.lower() not in (".toml", ".json"):
        raise InputError(f"{name} {path}: the profile must be a .toml or .json file (what load_hardware reads)")
    return check_writable(path, name)
