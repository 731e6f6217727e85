"""Rewrite the output shown under each ``$ command`` of the pages' console blocks with what it prints now.

For a maintainer after a change that alters printed figures: run it on the pages concerned, then read
``git diff`` line by line (every changed figure must be one the change explains), and update the prose
that quotes them. It runs each example as ``tests/test_docs_examples.py`` does: in a fresh folder with
the clone's ``docs/`` and ``bench/`` linked in, after the commands before it in its block.

    python tools/update_docs_examples.py docs/chapter-2-walkthrough.md README.md
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLONE_FOLDERS = ("docs", "bench", "data")
TIMEOUT_S = 300


def _run(command: str, earlier: list[str]) -> str:
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        for name in CLONE_FOLDERS:
            (where / name).symlink_to(ROOT / name, target_is_directory=True)
        for before in earlier:
            subprocess.run(["bash", "-c", before], capture_output=True, cwd=where, timeout=TIMEOUT_S)
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=where, timeout=TIMEOUT_S)
    return (done.stdout + done.stderr).rstrip()


def _rewrite_block(block: str) -> str:
    lines = block.splitlines()
    out: list[str] = []
    earlier: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            out.append(lines[i])
            i += 1
            continue
        command_lines = [lines[i]]
        while command_lines[-1].endswith("\\"):
            i += 1
            command_lines.append(lines[i])
        i += 1
        while i < len(lines) and not lines[i].startswith("$ "):
            i += 1  # the old output
        command = "\n".join(command_lines)[2:]
        out.extend(command_lines)
        printed = _run(command, earlier)
        if printed:
            out.extend(printed.splitlines())
        earlier.append(command)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for page in args.pages:
        text = page.read_text()
        new = re.sub(r"(```console\n)(.*?)(```)", lambda m: m[1] + _rewrite_block(m[2]) + m[3], text, flags=re.S)
        if new != text:
            page.write_text(new)
            print(f"{page}: updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
