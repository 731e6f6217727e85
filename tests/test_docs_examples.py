"""Every ``console`` example in the README and docs/ runs, and prints what the page shows."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def console_examples(page: Path) -> list[tuple[str, str, str]]:
    """(id, command, expected output) for each ``$ command`` in the page's console blocks."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", page.read_text(), flags=re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            command = lines[i][2:]
            while command.endswith("\\"):
                i += 1
                command = command + "\n" + lines[i]
            i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            examples.append((f"{page.name}:{command.split()[1] if len(command.split()) > 1 else ''}:{len(examples)}",
                             command, "\n".join(output)))
    return examples


EXAMPLES = [example for page in PAGES for example in console_examples(page)]


@pytest.mark.parametrize(("command", "expected"), [e[1:] for e in EXAMPLES], ids=[e[0] for e in EXAMPLES])
def test_documented_example(command: str, expected: str) -> None:
    require_tool("llm-roofline")  # the installed console script
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=120)
    printed = (done.stdout + done.stderr).rstrip()
    assert printed == expected.rstrip(), f"$ {command}\n--- printed ---\n{printed}"
