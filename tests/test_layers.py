"""The package's folders are its layers, and no import runs upward (docs/architecture.md).

core imports only core; inputs imports core; features import core and inputs (and one another: a
study may use the sweep's grid); faces import anything below, the public API included. The package's own top level (the
public API in ``__init__``, the old-path finder) may use any layer. Every import counts, including one
inside a function, and ``if TYPE_CHECKING:`` imports.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "llm_roofline"
LAYERS = ("core", "inputs", "features", "faces")
ALLOWED = {
    "core": {"core"},
    "inputs": {"core", "inputs"},
    "features": {"core", "inputs", "features"},
    "faces": {"core", "inputs", "features", "faces", "top"},  # top: the public API (``analyze``, ``__version__``)
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """The absolute names of the package's modules (or packages) this file imports."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {name for name in names if name == "llm_roofline" or name.startswith("llm_roofline.")}


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "data" not in p.relative_to(PACKAGE).parts)


def test_every_module_sits_in_a_layer() -> None:
    loose = [p.name for p in MODULES if p.parent == PACKAGE and p.name not in ("__init__.py", "_aliases.py")]
    assert loose == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_upward(path: Path) -> None:
    layer = _layer(_module_name(path))
    if layer is None:
        return  # the public API and the old-path finder
    upward = sorted(name for name in _imported(path)
                    if (_layer(name) or "top") not in ALLOWED[layer])
    assert upward == [], f"{layer} module imports {upward}"


def test_the_rule_is_checked_on_real_imports() -> None:
    """The parser sees imports inside functions and relative ones (a test that saw none would pass)."""
    imported = _imported(PACKAGE / "faces" / "cli" / "main.py")
    assert "llm_roofline.core.roofline" in imported
    assert any(name.startswith("llm_roofline.features.") for name in _imported(PACKAGE / "faces" / "cli" /
                                                                                 "viz_commands.py"))


OLD_IMPORTS = [  # (old path, a name it held, the module that holds it now)
    ("llm_roofline.models", "load_model", "llm_roofline.inputs.model_files"),
    ("llm_roofline.models", "ModelSpec", "llm_roofline.core.models"),
    ("llm_roofline.hardware", "load_hardware", "llm_roofline.inputs.device_files"),
    ("llm_roofline.efficiency", "fit_params", "llm_roofline.features.fidelity.fitting"),
    ("llm_roofline.efficiency", "EfficiencyParams", "llm_roofline.core.hardware"),
    ("llm_roofline.render", "check_writable", "llm_roofline.inputs.files"),
    ("llm_roofline.sweep", "evaluate_grid", "llm_roofline.features.sweep"),
    ("llm_roofline.studies.timeline", "generation_timeline", "llm_roofline.features.studies.timeline"),
    ("llm_roofline.web.app", "create_app", "llm_roofline.faces.web.app"),
    ("llm_roofline.cli", "main", "llm_roofline.faces.cli.main"),
    ("llm_roofline.measure", "MeasureOptions", "llm_roofline.features.measure.experiment"),
]


@pytest.mark.parametrize(("old", "name", "new"), OLD_IMPORTS, ids=[f"{o}.{n}" for o, n, _ in OLD_IMPORTS])
def test_the_flat_layouts_import_paths_still_work(old: str, name: str, new: str) -> None:
    import importlib
    import sys

    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name)
    assert sys.modules[new].__name__ == new  # one module, under its own name: no second copy
    loaded_twice = [key for key, module in sys.modules.items()
                    if key.startswith("llm_roofline.") and getattr(module, "__name__", key) != key
                    and key not in {f"llm_roofline.{old}" for old in _old_paths()}]
    assert loaded_twice == []


def _old_paths() -> list[str]:
    from llm_roofline._aliases import OLD_PATHS

    return list(OLD_PATHS)


FLAG = re.compile(r"""["'][^"'\n]*(?<![\w-])--[a-z][a-z0-9-]+[^"'\n]*["']""")


def test_only_the_command_line_names_flags() -> None:
    # The Python API's errors name parameters; faces/cli turns them into flags (main.in_flags).
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("faces/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = ast.unparse(node.exc)
                if FLAG.search(text):
                    offenders.append(f"{relative}:{node.lineno}: {text[:80]}")
    assert not offenders, "\n".join(offenders)


def test_the_command_line_still_shows_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from llm_roofline.faces.cli.main import main

    assert main(["fit", "--bandwidth-gb-s", "100", "--peak-tflops", "10"]) == 2
    assert "(--memory-gb)" in capsys.readouterr().err


WORKLOAD_OPTIONS = ("phase", "batch", "seq_len", "weights", "activations", "kv_cache", "flash_attention",
                    "causal_skip", "lm_head", "mla", "fuse", "sparsity")


def _subcommand_defaults(command: str) -> dict[str, object]:
    from llm_roofline.faces.cli.main import build_parser

    parser = build_parser()
    chosen = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    sub = chosen.choices[command]
    return {action.dest: action.default for action in sub._actions if action.dest in WORKLOAD_OPTIONS}


@pytest.mark.parametrize("command", ["analyze", "share", "transition", "timeline", "whatif", "energy", "feasibility"])
def test_one_default_per_option_across_command_line_api_and_web(command: str) -> None:
    # Every workload option a command takes has the default of the Python API (Workload) and of the web API.
    import dataclasses

    from llm_roofline.core.transformer import Workload
    from llm_roofline.faces.web.app import AnalyzeRequest

    api = {f.name: f.default for f in dataclasses.fields(Workload) if f.name in WORKLOAD_OPTIONS}
    web = {name: field.default for name, field in AnalyzeRequest.model_fields.items() if name in WORKLOAD_OPTIONS}
    assert web == api
    cli = _subcommand_defaults(command)
    if command != "analyze":  # a study's phase and lengths are its question's (share: prefill, a list of lengths)
        cli = {name: value for name, value in cli.items() if name not in ("phase", "batch", "seq_len")}
    assert cli, f"{command} takes no workload option"
    assert {name: api[name] for name in cli} == cli
