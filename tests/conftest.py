"""The suite's one rule for what it needs from the machine.

A test that needs a tool, a module or a file of the test environment asks for it here. Outside CI a
missing one skips the test (a partial install still runs the rest); in CI (the ``CI`` environment
variable set, as CI services do) it fails it: there, a missing tool must not pass silently.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(what: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{what}: required in CI (the CI environment variable is set)", pytrace=False)
    pytest.skip(f"{what} (a failure in CI)", allow_module_level=True)


def require_tool(name: str) -> str:
    """The path of the command ``name`` on PATH."""
    path = shutil.which(name)
    if path is None:
        _missing(f"{name} is not on PATH")
    return path


def require_module(name: str) -> ModuleType:
    """The module ``name``, imported."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        _missing(f"{name} cannot be imported ({err})")


def require_file(path: Path, what: str) -> Path:
    """``path``, which must exist: ``what`` says what it is and who provides it."""
    if not path.exists():
        _missing(f"{path} is missing ({what})")
    return path
