"""Spec paths as a scope: the whole project is validated, the nodes under PATHS are kept.

A project is one namespace: resources refer to each other by name across files, and
names are unique across all of them. So `auditc plan audits/newcomer` (or `validate`,
`run`, `check`, …) loads and checks the whole project — duplicate names, references,
cycles — and then keeps the resources defined under the given PATHS, with everything
they need (`Graph.select`). The whole project is `<root>/audits` (the default spec
directory) plus any PATHS outside it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from schemas import SpecLoadError, UsageError

from ._load import discover_spec_files
from ._project import Project
from ._resolve import Graph, resolve_graph
from ._validate import load_project

__all__ = [
    "DEFAULT_SPEC_DIR",
    "ScopedGraph",
    "load_scoped_graph",
    "load_scoped_graph_at",
    "project_paths",
    "scope_project",
]

DEFAULT_SPEC_DIR = "audits"


@dataclass(frozen=True)
class ScopedGraph:
    """The graph of the resources in scope (with their upstream), from a validated project."""

    graph: Graph
    project: Project
    subset: bool
    """Whether PATHS or selectors narrowed the project."""


def project_paths(root: Path, paths: Sequence[Path]) -> list[Path]:
    """Every spec path of the project: `<root>/audits` and the `paths` outside it."""
    default = root / DEFAULT_SPEC_DIR
    whole = [default] if default.is_dir() else []
    for path in paths:
        absolute = Path(os.path.abspath(path))
        if not whole or not absolute.is_relative_to(default):
            whole.append(absolute)
    return whole


def scope_project(project: Project, root: Path, paths: Sequence[Path]) -> set[str]:
    """The names of the resources written in files under `paths`.

    Raises:
        UsageError: no resource is defined under them.
    """
    wanted = []
    for path in paths:
        absolute = Path(os.path.abspath(path))
        inside = absolute.is_relative_to(root)
        wanted.append(absolute.relative_to(root).as_posix() if inside else absolute.as_posix())
    names = {
        name
        for name, loaded in project.resources.items()
        if any(_under(loaded.location.file, w) for w in wanted)
    }
    if not names:
        shown = ", ".join(wanted)
        raise UsageError(f"no resources are defined under {shown}")
    return names


def _under(file: str, path: str) -> bool:
    return path in (".", "") or file == path or file.startswith(path.rstrip("/") + "/")


def load_scoped_graph(
    root: Path, paths: Sequence[Path], *, given: bool, select: Iterable[str] = ()
) -> ScopedGraph:
    """Validate the whole project, resolve it, and keep what `paths` and `select` name.

    Args:
        root: the project root.
        paths: the spec paths the user gave (or the default spec directory).
        given: whether the user gave `paths` (else the whole project is in scope).
        select: `--select` names (`name`, `name+`), as for `Graph.select`.

    Raises:
        SpecError: the project is invalid, or a path is missing.
        GraphError: an unknown selector.
        UsageError: nothing is defined under `paths`.
    """
    root = root.resolve()
    if given:
        _, issues = discover_spec_files(root, paths)
        if issues:
            raise SpecLoadError(issues)
    project = load_project(root, project_paths(root, paths) or list(paths))
    graph, subset = _narrow(resolve_graph(project), project, root, paths, given, list(select))
    return ScopedGraph(graph, project, subset)


def load_scoped_graph_at(
    root: Path, ref: str, paths: Sequence[Path], *, given: bool, select: Iterable[str] = ()
) -> Graph:
    """The same scope as `load_scoped_graph`, for the specs at a git ref.

    What did not exist at the ref is simply absent: no resource under `paths`, or a
    selected name the ref lacks, gives an empty (or smaller) graph, not an error.

    Raises:
        GitError: the ref cannot be read.
        SpecError: the specs at the ref are invalid.
    """
    from ._git import load_project_at

    root = root.resolve()
    project = load_project_at(root, ref, project_paths(root, paths))
    graph = resolve_graph(project)
    chosen = [name for name in select if name.strip("+") in graph.nodes]
    try:
        narrowed, _ = _narrow(graph, project, root, paths, given, chosen)
    except UsageError:  # nothing under PATHS at that ref: everything is new
        return graph.select([])
    return narrowed.select([]) if list(select) and not chosen else narrowed


def _narrow(
    graph: Graph,
    project: Project,
    root: Path,
    paths: Sequence[Path],
    given: bool,
    select: list[str],
) -> tuple[Graph, bool]:
    """The part of `graph` under `paths` (when they are not the whole project) and `select`."""
    subset = False
    whole = project_paths(root, paths)
    if given and sorted(map(os.path.abspath, paths)) != sorted(map(os.path.abspath, whole)):
        graph = graph.select(scope_project(project, root, paths))
        subset = True
    if select:
        graph = graph.select(select)
        subset = True
    return graph, subset
