"""The suite's rule for a missing tool, module or file (conftest.py): a skip on a developer's machine, a
failure in CI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import require_file, require_module, require_tool

MISSING = [
    (require_tool, ("llm-roofline-no-such-tool",)),
    (require_module, ("llm_roofline_no_such_module",)),
    (require_file, (Path("/no-such-folder/chromium"), "a browser")),
]


@pytest.mark.parametrize(("require", "args"), MISSING)
@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_missing_fails_in_ci(require: Callable[..., object], args: tuple[object, ...], ci: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        require(*args)


@pytest.mark.parametrize(("require", "args"), MISSING)
@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_missing_skips_elsewhere(require: Callable[..., object], args: tuple[object, ...], ci: str | None,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="a failure in CI"):
        require(*args)


def test_present_is_returned(tmp_path: Path) -> None:
    assert require_tool("python3").endswith("python3")
    assert require_module("json").dumps([]) == "[]"
    assert require_file(tmp_path, "a folder") == tmp_path
