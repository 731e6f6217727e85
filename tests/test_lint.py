"""ruff and mypy are part of the suite: the code stays clean and its types checked on every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import require_module, require_tool

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    ruff = require_tool("ruff")  # installed by the test extra
    folders = [name for name in ("src", "tests", "bench", "tools") if (ROOT / name).is_dir()]
    done = subprocess.run([ruff, "check", *folders], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_clean() -> None:
    """``mypy`` with the project's configuration (pyproject.toml: strict, on src/) reports no error."""
    require_module("mypy")  # installed by the test extra
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
