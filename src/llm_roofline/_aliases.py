"""Old import paths of the flat layout (before the layer folders), kept working for one release.

``import llm_roofline.sweep`` or ``from llm_roofline.models import load_model`` resolve to the modules'
new homes. Nothing is imported until an old path is used; the finder is registered by the package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence

# Old module (relative to the package) -> its new module(s); with several, a name is looked up in each
# in turn (a module that was split).
OLD_PATHS: dict[str, tuple[str, ...]] = {
    **{name: (f"core.{name}",) for name in (
        "units", "errors", "formats", "architecture", "ops", "transformer", "quant", "roofline")},
    "models": ("core.models", "inputs.model_files"),
    "hardware": ("core.hardware", "inputs.device_files"),
    "efficiency": ("core.efficiency", "features.fidelity.fitting", "core.hardware"),
    **{name: (f"inputs.{name}",) for name in ("gguf", "measurements", "names")},
    "studies": ("features.studies",),
    **{f"studies.{name}": (f"features.studies.{name}",) for name in (
        "energy", "requirements", "share", "steps", "timeline", "transition", "whatif")},
    "studies.commands": ("faces.cli.studies_commands",),
    "deploy": ("features.deploy",),
    "sweep": ("features.sweep",),
    "measure": ("features.measure",),
    **{f"measure.{name}": (f"features.measure.{name}",) for name in (
        "backends", "blas", "experiment", "profile", "stream", "system", "timing")},
    "measure.commands": ("faces.cli.measure_commands",),
    "measure.report": ("faces.report.measurement_text",),
    "validation": ("features.fidelity.validation",),
    "cli": ("faces.cli.main",),
    **{f"{name}_commands": (f"faces.cli.{name}_commands",) for name in ("deploy", "sweep", "validation", "viz")},
    "web": ("faces.web",),
    "web.app": ("faces.web.app",),
    "render": ("faces.report.render", "inputs.files"),
    **{name: (f"faces.report.{name}",) for name in ("charts", "plots")},
    "report": ("faces.report.html",),
}


class _MergedModule(types.ModuleType):
    """An old module that was split: its names come from the new modules, in order."""

    def __init__(self, name: str, targets: Sequence[types.ModuleType]) -> None:
        super().__init__(name)
        self._targets = tuple(targets)

    def __getattr__(self, attr: str) -> object:
        for target in self._targets:
            if hasattr(target, attr):
                return getattr(target, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")

    def __dir__(self) -> list[str]:
        return sorted({name for target in self._targets for name in dir(target)})


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, package: str, targets: tuple[str, ...]) -> None:
        self._targets = tuple(f"{package}.{target}" for target in targets)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        modules = [importlib.import_module(target) for target in self._targets]
        if len(modules) > 1:
            return _MergedModule(spec.name, modules)
        self._own_spec = modules[0].__spec__  # the import system overwrites it with the alias's
        return modules[0]

    def exec_module(self, module: types.ModuleType) -> None:
        """The target modules ran when they were imported; a module keeps its own spec."""
        own_spec = getattr(self, "_own_spec", None)
        if own_spec is not None:
            module.__spec__ = own_spec


class OldPathFinder(importlib.abc.MetaPathFinder):
    """Finds ``<package>.<old path>`` for every entry of ``OLD_PATHS``."""

    def __init__(self, package: str) -> None:
        self._package = package

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        prefix = self._package + "."
        old = fullname[len(prefix):] if fullname.startswith(prefix) else None
        if old is None or old not in OLD_PATHS:
            return None
        targets = OLD_PATHS[old]
        is_package = any(key.startswith(old + ".") for key in OLD_PATHS)
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(self._package, targets),
                                              is_package=is_package)


def register(package: str) -> None:
    """Put the finder on ``sys.meta_path`` once, first: an old package's path (``llm_roofline.web``) is
    the new folder, where the path finder would load a second copy of ``llm_roofline.web.app``."""
    if not any(isinstance(finder, OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, OldPathFinder(package))
