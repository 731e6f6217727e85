"""ruff is part of the suite: the code stays clean on every run."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    ruff = require_tool("ruff")  # installed by the test extra
    folders = [name for name in ("src", "tests", "bench") if (ROOT / name).is_dir()]
    done = subprocess.run([ruff, "check", *folders], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
