"""Where a spec's Python callable comes from, checked from source without importing anything.

A callable (`Method.spec.implementation.python`, `Model.spec.python.callable`) is code
that `auditc run` executes. A spec may only name code that a reviewer sees as code:

- from Modules (a Method's `modules`, a Model's `module`): the module must be a Python
  source file in one of those directories, and the first attribute must be defined there
  (`def`, `class` or an assignment), or imported from another module of those
  directories. A name the module imports from elsewhere (`from subprocess import
  Popen`) is refused: otherwise a YAML-only change could call any function that code
  happens to import. Only `function`, `Class`, `Class.method` and a module-level
  value are accepted, never dunder names (`__globals__`, `__class__`, ...);
- from a package (a Model's pinned `package`, without `module`): which import names a
  requirement provides cannot be known offline, so here only what no package can
  provide is refused (the standard library, auditc itself, dunder names); the runner
  checks the rest before importing, from the installed distribution's metadata
  (`runners.load_callable`).

The parse is `ast.parse` of the module's source: nothing is imported or executed.
"""

from __future__ import annotations

import ast
import difflib
import importlib.machinery
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CallableProblem", "CallableChecker", "split_callable"]

_AUDITC_PACKAGES = frozenset({"schemas", "compiler", "runners"})
_FORBIDDEN_TOP = frozenset(sys.stdlib_module_names) | _AUDITC_PACKAGES | {"__main__"}
_MAX_HOPS = 16
"""Re-exports followed from module to module before giving up (a cycle, or a maze)."""


@dataclass(frozen=True)
class CallableProblem:
    """Why a callable is refused: the message (without the resource) and an issue code."""

    message: str
    code: str


def split_callable(target: str) -> tuple[str, list[str]]:
    """`'pkg.mod:Class.method'` → `('pkg.mod', ['Class', 'method'])`."""
    module, _, attributes = target.partition(":")
    return module, attributes.split(".")


def forbidden_name(target: str) -> CallableProblem | None:
    """What no callable may name, wherever it comes from: dunders, the stdlib, auditc."""
    module, attributes = split_callable(target)
    for part in [*module.split("."), *attributes]:
        if part.startswith("__") and part.endswith("__"):
            return CallableProblem(
                f"{target!r} uses the special name {part!r}; expected a plain function, "
                "class or method name",
                "callable-not-allowed",
            )
    top = module.split(".")[0]
    if top in _FORBIDDEN_TOP:
        what = "part of auditc" if top in _AUDITC_PACKAGES else "a standard-library module"
        return CallableProblem(
            f"{top!r} is {what}; expected a callable defined in the resource's Modules "
            "(or, for a Model, in its pinned package)",
            "callable-not-allowed",
        )
    return None


@dataclass(frozen=True)
class _Binding:
    """How a module binds a top-level name."""

    kind: str
    """`def`, `class`, `value`, `module` (import) or `from` (from-import)."""
    line: int
    source: str = ""
    """For `module`: the module imported; for `from`: the module imported from."""
    name: str = ""
    """For `from`: the name imported."""
    body: tuple[ast.stmt, ...] = ()
    """For `class`: the class body."""


@dataclass
class _Source:
    """One parsed module: its top-level bindings and star imports."""

    bindings: dict[str, list[_Binding]]
    stars: list[_Binding]
    package: str
    """The package relative imports start from."""


@dataclass
class CallableChecker:
    """Checks callables against the Module directories that must provide them.

    Parsed modules are cached, so many resources naming one module cost one parse.
    """

    _parsed: dict[Path, _Source | CallableProblem] = field(default_factory=dict)

    def check_module_callable(
        self, target: str, directories: list[Path], shown: str
    ) -> CallableProblem | None:
        """Whether `target` is defined in `directories` (a resource's Modules, in order).

        Args:
            target: `module.path:attribute.path` as written.
            directories: resolved Module directories, in `sys.path` order.
            shown: how to name those Modules in messages (`Module bias-metrics`).
        """
        problem = forbidden_name(target)
        if problem is not None:
            return problem
        module, attributes = split_callable(target)
        located = _locate(directories, module)
        if located is None:
            return CallableProblem(
                f"no module {module!r} in {shown}{self._hint(directories, module)}; "
                "a callable must be defined in the resource's Modules",
                "callable-not-found",
            )
        if isinstance(located, CallableProblem):
            return located
        return _Walk(self, directories, target).attribute(module, located, attributes, 0)

    def source(self, file: Path, module: str) -> _Source | CallableProblem:
        """The parsed bindings of a module's source file (cached)."""
        if file not in self._parsed:
            self._parsed[file] = _parse(file, module)
        return self._parsed[file]

    @staticmethod
    def _hint(directories: list[Path], module: str) -> str:
        top = module.split(".")[0]
        names = sorted(
            {
                p.stem if p.suffix == ".py" else p.name
                for d in directories
                if d.is_dir()
                for p in d.iterdir()
                if (p.suffix == ".py" or (p / "__init__.py").is_file())
                and not p.name.startswith(".")
            }
        )
        close = difflib.get_close_matches(top, names, n=1)
        if close:
            return f" (did you mean {close[0]!r}?)"
        return f" (it provides: {', '.join(names)})" if names else " (it holds no Python modules)"


@dataclass
class _Walk:
    """Follows one callable's attribute path through module sources."""

    checker: CallableChecker
    directories: list[Path]
    target: str

    def attribute(
        self, module: str, file: Path, attributes: list[str], hops: int
    ) -> CallableProblem | None:
        if hops > _MAX_HOPS:
            return CallableProblem(
                f"{self.target!r}: gave up following imports after {_MAX_HOPS} modules "
                "(an import cycle?); define the callable where the spec names it",
                "callable-not-allowed",
            )
        parsed = self.checker.source(file, module)
        if isinstance(parsed, CallableProblem):
            return parsed
        name = attributes[0]
        bindings = parsed.bindings.get(name)
        if not bindings:
            return self._unbound(module, parsed, name, attributes, hops)
        for binding in bindings:
            problem = self._binding(module, parsed, binding, attributes, hops)
            if problem is not None:
                return problem
        return None

    def _binding(
        self, module: str, parsed: _Source, binding: _Binding, attributes: list[str], hops: int
    ) -> CallableProblem | None:
        name, rest = attributes[0], attributes[1:]
        where = f"{module}.{name} (line {binding.line})"
        if binding.kind == "class":
            if len(rest) > 1 or (rest and not _class_defines(binding.body, rest[0])):
                return self._too_deep(where, "a class and one method defined in its body")
            return None
        if binding.kind in ("def", "value"):
            return self._too_deep(where, "the function or value itself") if rest else None
        if binding.kind == "module":
            return self._into_module(where, binding.source, rest, hops)
        # A from-import: a submodule of ours, a name from one of ours, or a foreign name.
        source = _absolute(binding.source, parsed.package)
        submodule = f"{source}.{binding.name}"
        if self._ours(submodule):
            return self._into_module(where, submodule, rest, hops)
        if self._ours(source):
            file = _locate(self.directories, source)
            assert isinstance(file, Path)
            return self.attribute(source, file, [binding.name, *rest], hops + 1)
        return CallableProblem(
            f"{self.target!r}: {name!r} in {module!r} is imported from {source!r} "
            f"(line {binding.line}), which is not in the resource's Modules; a callable "
            "must be defined there (write a function that calls it)",
            "callable-not-allowed",
        )

    def _into_module(
        self, where: str, module: str, rest: list[str], hops: int
    ) -> CallableProblem | None:
        if not self._ours(module):
            return CallableProblem(
                f"{self.target!r}: {where} is the module {module!r}, which is not in the "
                "resource's Modules; a callable must be defined there",
                "callable-not-allowed",
            )
        if not rest:
            return CallableProblem(
                f"{self.target!r}: {where} is a module, not a callable", "callable-not-found"
            )
        file = _locate(self.directories, module)
        assert isinstance(file, Path)
        return self.attribute(module, file, rest, hops + 1)

    def _unbound(
        self, module: str, parsed: _Source, name: str, attributes: list[str], hops: int
    ) -> CallableProblem | None:
        if self._ours(f"{module}.{name}"):  # a submodule that another import loaded
            return self._into_module(f"{module}.{name}", f"{module}.{name}", attributes[1:], hops)
        for star in parsed.stars:
            source = _absolute(star.source, parsed.package)
            if not self._ours(source):
                return CallableProblem(
                    f"{self.target!r}: cannot tell where {name!r} comes from in {module!r}: "
                    f"it is not defined there, and `from {source} import *` (line "
                    f"{star.line}) imports from outside the resource's Modules",
                    "callable-not-allowed",
                )
            file = _locate(self.directories, source)
            assert isinstance(file, Path)
            found = self.attribute(source, file, attributes, hops + 1)
            if found is None:
                return None
        defined = sorted(n for n, b in parsed.bindings.items() if b[0].kind in ("def", "class"))
        close = difflib.get_close_matches(name, defined, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return CallableProblem(
            f"{self.target!r}: module {module!r} defines no {name!r}{hint}",
            "callable-not-found",
        )

    def _too_deep(self, where: str, allowed: str) -> CallableProblem:
        return CallableProblem(
            f"{self.target!r}: {where} has no attribute path auditc accepts; expected "
            f"{allowed} (write a function for anything else)",
            "callable-not-allowed",
        )

    def _ours(self, module: str) -> bool:
        """Whether `module` is Python source in the resource's Modules (not shadowing stdlib)."""
        if not module or module.split(".")[0] in _FORBIDDEN_TOP:
            return False
        return isinstance(_locate(self.directories, module), Path)


def _class_defines(body: tuple[ast.stmt, ...], name: str) -> bool:
    if name.startswith("__"):
        return False
    bindings: dict[str, list[_Binding]] = {}
    _collect(list(body), bindings, [], "")
    return any(b.kind in ("def", "value", "class") for b in bindings.get(name, []))


def _absolute(source: str, package: str) -> str:
    """A from-import's module, made absolute (`source` is `.`-prefixed when relative)."""
    level = len(source) - len(source.lstrip("."))
    if level == 0:
        return source
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return ""  # beyond the top-level package: Python refuses it too
    base = parts[: len(parts) - (level - 1)]
    rest = source[level:]
    return ".".join([*base, rest] if rest else base)


def _parse(file: Path, module: str) -> _Source | CallableProblem:
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        at = f" at line {line}" if line else ""
        return CallableProblem(
            f"cannot parse module {module!r}{at}: {getattr(exc, 'msg', exc)}", "module-syntax"
        )
    except RecursionError:
        return CallableProblem(f"module {module!r} is nested too deeply to parse", "module-syntax")
    bindings: dict[str, list[_Binding]] = {}
    stars: list[_Binding] = []
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    _collect(tree.body, bindings, stars, package)
    return _Source(bindings, stars, package)


def _collect(
    body: list[ast.stmt], bindings: dict[str, list[_Binding]], stars: list[_Binding], package: str
) -> None:
    """Record the names statements bind at this level (into if/try/with/loop blocks too)."""

    def bind(name: str, binding: _Binding) -> None:
        bindings.setdefault(name, []).append(binding)

    for stmt in body:
        line = stmt.lineno
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            bind(stmt.name, _Binding("def", line))
        elif isinstance(stmt, ast.ClassDef):
            bind(stmt.name, _Binding("class", line, body=tuple(stmt.body)))
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets: list[ast.expr] = (
                list(stmt.targets) if isinstance(stmt, ast.Assign) else [stmt.target]
            )
            if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
                continue  # an annotation alone binds nothing
            for name in _target_names(targets):
                bind(name, _Binding("value", line))
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    bind(alias.asname, _Binding("module", line, source=alias.name))
                else:
                    top = alias.name.split(".")[0]
                    bind(top, _Binding("module", line, source=top))
        elif isinstance(stmt, ast.ImportFrom):
            source = "." * stmt.level + (stmt.module or "")
            for alias in stmt.names:
                if alias.name == "*":
                    stars.append(_Binding("from", line, source=source))
                else:
                    binding = _Binding("from", line, source=source, name=alias.name)
                    bind(alias.asname or alias.name, binding)
        elif isinstance(stmt, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith):
            targets = (
                [stmt.target]
                if isinstance(stmt, ast.For | ast.AsyncFor)
                else [i.optional_vars for i in stmt.items if i.optional_vars is not None]
            )
            for name in _target_names(targets):
                bind(name, _Binding("value", line))
        for block in _blocks(stmt):
            _collect(block, bindings, stars, package)


def _blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists nested in a compound statement that still run at this level."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return []
    blocks: list[list[ast.stmt]] = []
    for name in ("body", "orelse", "finalbody"):
        value = getattr(stmt, name, None)
        if isinstance(value, list):
            blocks.append(value)
    for handler in getattr(stmt, "handlers", []) or []:
        blocks.append(handler.body)
    for case in getattr(stmt, "cases", []) or []:
        blocks.append(case.body)
    return blocks


def _target_names(targets: list[ast.expr]) -> list[str]:
    names: list[str] = []
    for target in targets:
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            names.extend(_target_names(list(target.elts)))
        elif isinstance(target, ast.Starred):
            names.extend(_target_names([target.value]))
    return names


def _locate(directories: list[Path], module: str) -> Path | CallableProblem | None:
    """The source file Python would import `module` from, searching `directories` in order.

    A package is its `__init__.py`. Returns None when no directory provides the module,
    and a problem when what provides it is not Python source (an extension module, or
    a namespace package, which holds no callables).
    """
    search = directories
    parts = module.split(".")
    for i, part in enumerate(parts):
        found: Path | None = None
        portions: list[Path] = []
        for directory in search:
            package = directory / part
            if (package / "__init__.py").is_file():
                found = package / "__init__.py"
                break
            if (directory / f"{part}.py").is_file():
                found = directory / f"{part}.py"
                break
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                if (directory / f"{part}{suffix}").is_file():
                    return CallableProblem(
                        f"module {'.'.join(parts[: i + 1])!r} is a compiled extension "
                        f"({part}{suffix}); callables must be defined in Python source",
                        "callable-not-allowed",
                    )
            if package.is_dir():
                portions.append(package)
        last = i == len(parts) - 1
        if found is None and portions and not last:
            search = portions  # a namespace package: its submodules may be in any portion
            continue
        if found is None:
            if portions:
                return CallableProblem(
                    f"{module!r} is a directory without __init__.py (a namespace package); "
                    "it defines no callables",
                    "callable-not-found",
                )
            return None
        if last:
            return found
        if found.name != "__init__.py":
            return None  # a plain module has no submodules
        search = [found.parent]
    return None
