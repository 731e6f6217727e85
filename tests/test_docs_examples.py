"""Every ``console`` example in the README and docs/ runs, and prints what the page shows.

Each example runs in a fresh folder of its own, as a reader in a clone's root would run it: the clone's
``docs/`` and ``bench/`` (the files the examples read) are linked in, and the commands before it in its
console block run first, since a block is one shell session read top to bottom. So no example depends
on the order the tests run in, on another page, or on anything outside the clone; what an example
writes lands in its own folder (an example must not write into ``docs/`` or ``bench/``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CLONE_FOLDERS = ("docs", "bench", "data")
TIMEOUT_S = 120


class Example(NamedTuple):
    id: str
    command: str
    expected: str
    earlier: tuple[str, ...]  # the commands before it in its console block


def console_examples(page: Path) -> list[Example]:
    """Each ``$ command`` of the page's console blocks, with the output the page shows for it."""
    examples: list[Example] = []
    for block in re.findall(r"```console\n(.*?)```", page.read_text(), flags=re.S):
        lines = block.splitlines()
        earlier: list[str] = []
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
            words = command.split()
            examples.append(Example(f"{page.name}:{words[1] if len(words) > 1 else ''}:{len(examples)}", command,
                                    "\n".join(output), tuple(earlier)))
            earlier.append(command)
    return examples


EXAMPLES = [example for page in PAGES for example in console_examples(page)]


def test_no_example_writes_outside_its_folder() -> None:
    """Absolute paths would share files between examples and with the machine (a fixed /tmp/... path did)."""
    assert [e.id for e in EXAMPLES if re.search(r"(^|[\s=>'\"])/(tmp|var|home|root)\b", e.command)] == []


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_documented_example(example: Example, tmp_path: Path) -> None:
    require_tool("llm-roofline")  # the installed console script
    for name in CLONE_FOLDERS:
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    for command in example.earlier:  # their output is checked by their own tests
        subprocess.run(["bash", "-c", command], capture_output=True, cwd=tmp_path, timeout=TIMEOUT_S)
    done = subprocess.run(["bash", "-c", example.command], capture_output=True, text=True, cwd=tmp_path,
                          timeout=TIMEOUT_S)
    printed = (done.stdout + done.stderr).rstrip()
    assert printed == example.expected.rstrip(), f"$ {example.command}\n--- printed ---\n{printed}"
