"""Import a spec's callable only from where the spec says it comes from.

`auditc validate` checks callables from source (`compiler/_callables.py`); this is the
run-time half, for what only the running interpreter knows:

- a callable from Modules: the module Python finds (before importing it) and every
  module on the attribute path must be files inside those Module directories — a
  module of the same name that is already loaded or installed (say a Module file
  `numpy.py` next to the real numpy) is refused, not silently used;
- a callable from a Model's pinned package: the distribution must be installed at a
  version the pin allows, the top-level module Python finds must be one of that
  distribution's files (from its installed metadata, before anything is imported),
  every module on the attribute path must be too, and the callable must be defined
  in that package (its `__module__`), not merely imported into it.

Nothing else is importable through a spec: a callable with neither Modules nor a
package is refused.
"""

from __future__ import annotations

import importlib
import importlib.util
import site
import sys
import sysconfig
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._bytecode import private_bytecode_cache

__all__ = ["CallableSourceError", "import_callable"]


class CallableSourceError(Exception):
    """The callable does not come from the resource's Modules or its pinned package."""


def import_callable(
    target: str, *, module_dirs: Sequence[str], package: str | None = None
) -> Callable[..., Any]:
    """Import `module.path:attribute.path` after checking where it comes from.

    Args:
        target: the callable as the spec writes it.
        module_dirs: the resource's Module directories (already on `sys.path`).
        package: the pinned requirement of a Model's `python.package`, used when
            `module_dirs` is empty.

    Raises:
        CallableSourceError: it would come from anywhere else, or is not callable.
        ImportError, AttributeError, Exception: importing the module or reading an
            attribute failed (the caller reports these as before).
    """
    private_bytecode_cache(module_dirs)  # never load bytecode that came with a Module
    module_name, _, attribute_path = target.partition(":")
    attributes = attribute_path.split(".")
    for part in [*module_name.split("."), *attributes]:
        if part.startswith("__") and part.endswith("__"):
            raise CallableSourceError(f"{target!r} uses the special name {part!r}")
    top = module_name.split(".")[0]
    if module_dirs:
        owner: _Owner = _ModuleDirs([Path(d).resolve() for d in module_dirs])
    elif package:
        owner = _Package.installed(package, top)
    else:
        raise CallableSourceError(
            f"{target!r} has no Module and no package to come from; auditc imports a "
            "callable only from the resource's Modules or a Model's pinned package"
        )
    owner.check_found(top)
    obj: Any = importlib.import_module(module_name)
    owner.check_module(obj)
    for part in attributes:
        obj = getattr(obj, part)
        if isinstance(obj, types.ModuleType):
            owner.check_module(obj)
    owner.check_defined(target, obj)
    if not callable(obj):
        raise CallableSourceError(f"{target!r} is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


class _Owner:
    """Where a callable must come from."""

    def check_found(self, top: str) -> None:
        """Before importing: the module Python would load for `top` is ours."""
        spec = importlib.util.find_spec(top)
        if spec is None:
            return  # the import fails with "No module named …", reported by the caller
        for location in _locations(spec):
            if not self.owns(location):
                raise CallableSourceError(
                    f"module {top!r} would be imported from {location}, which is not "
                    f"{self.description}; a module of that name is installed or already "
                    "loaded and shadows it (rename the module)"
                )

    def check_module(self, module: types.ModuleType) -> None:
        """After importing: a module on the attribute path is ours."""
        spec = getattr(module, "__spec__", None)
        locations = _locations(spec) if spec is not None else []
        if not locations or not all(self.owns(loc) for loc in locations):
            where = locations[0] if locations else "a built-in module"
            raise CallableSourceError(
                f"module {module.__name__!r} ({where}) is not {self.description}"
            )

    def check_defined(self, target: str, obj: Any) -> None:
        """The callable itself is defined where it must be (by default: no check)."""

    def owns(self, location: Path) -> bool:
        raise NotImplementedError

    description = ""


class _ModuleDirs(_Owner):
    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories
        self.description = "in the resource's Modules (" + ", ".join(map(str, directories)) + ")"

    def owns(self, location: Path) -> bool:
        return any(location.is_relative_to(d) for d in self.directories)

    def check_found(self, top: str) -> None:
        # A process forked from one that ran another audit's Module code (the local
        # launcher forks steps) still holds that module: forget it, it is not ours. An
        # installed library of the same name is not forgotten: it shadows the Module.
        loaded = sys.modules.get(top)
        spec = getattr(loaded, "__spec__", None) if loaded is not None else None
        locations = _locations(spec) if spec is not None else []
        if locations and not any(self.owns(p) or _installed(p) for p in locations):
            for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
                del sys.modules[name]
            importlib.invalidate_caches()
        super().check_found(top)


class _Package(_Owner):
    def __init__(self, name: str, version: str, files: set[Path], top: str) -> None:
        self.name = name
        self.top = top
        self.files = files
        self.description = f"part of the Model's package {name} {version}"

    @classmethod
    def installed(cls, requirement: str, top: str) -> _Package:
        """The installed distribution a pinned requirement names, checked against the pin."""
        from importlib import metadata

        from packaging.requirements import InvalidRequirement, Requirement

        try:
            wanted = Requirement(requirement)
        except InvalidRequirement as exc:
            raise CallableSourceError(
                f"package {requirement!r} is not a requirement: {exc}"
            ) from None
        try:
            dist = metadata.distribution(wanted.name)
        except metadata.PackageNotFoundError:
            if importlib.util.find_spec(top) is None:
                return cls(wanted.name, "(not installed)", set(), top)  # import fails, with a hint
            raise CallableSourceError(
                f"the Model's package {requirement!r} is not installed, yet a module {top!r} "
                "is importable from elsewhere; install the package"
            ) from None
        if wanted.specifier and not wanted.specifier.contains(dist.version, prereleases=True):
            raise CallableSourceError(
                f"{wanted.name} {dist.version} is installed, but the Model pins {requirement!r}; "
                "install the pinned version"
            )
        files = {Path(str(dist.locate_file(f))).resolve() for f in dist.files or []}
        return cls(wanted.name, dist.version, files, top)

    def owns(self, location: Path) -> bool:
        if location in self.files:
            return True
        # A package directory: some file of the distribution lives in it.
        return location.is_dir() and any(f.is_relative_to(location) for f in self.files)

    def check_defined(self, target: str, obj: Any) -> None:
        defined_in = getattr(obj, "__module__", None)
        if not isinstance(defined_in, str) or defined_in.split(".")[0] != self.top:
            raise CallableSourceError(
                f"{target!r} is defined in {defined_in or 'an unknown module'!r}, not in "
                f"{self.top!r}; a Model's callable must be defined in its package"
            )


def _installed(location: Path) -> bool:
    """Whether a module file belongs to the interpreter's libraries (stdlib, site-packages)."""
    roots = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(site.getsitepackages() + [site.getusersitepackages()])
    return any(location.is_relative_to(Path(root).resolve()) for root in roots if root)


def _locations(spec: Any) -> list[Path]:
    """The files (or package directories) a module spec loads from."""
    if getattr(spec, "has_location", False) and spec.origin:
        return [Path(spec.origin).resolve()]
    return [Path(p).resolve() for p in (spec.submodule_search_locations or [])]
