"""The validated project: the hand-off from load/validate to resolve.

`Project` holds every resource with where it was written, and the content hash of
every file or directory the specs reference. It is produced by `load_project`
(`compiler/_validate.py`) and consumed by `resolve_graph` (`compiler/_resolve.py`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from schemas import (
    AnyResource,
    Dataset,
    Evaluation,
    InferenceService,
    InferenceSession,
    Method,
    Model,
    Module,
)

__all__ = [
    "LoadedResource",
    "PathRef",
    "Project",
    "Reference",
    "SourceLocation",
    "path_refs",
    "references",
]


@dataclass(frozen=True, order=True)
class SourceLocation:
    """Where something was written: project-relative POSIX path, 1-based line and column."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass(frozen=True)
class LoadedResource:
    """A validated resource and where each of its fields was written."""

    resource: AnyResource
    location: SourceLocation
    """Start of the YAML document."""
    positions: Mapping[tuple[str | int, ...], SourceLocation] = field(default_factory=dict)
    """Field path (`("spec", "service")`) → where its value was written."""

    @property
    def key(self) -> str:
        """`Kind/name`, the way messages and plans name a resource."""
        return f"{self.resource.kind}/{self.resource.name}"

    @property
    def base_dir(self) -> str:
        """Project-relative directory of the YAML file; relative paths in the spec start here."""
        return posixpath.dirname(self.location.file)

    def locate(self, path: tuple[str | int, ...]) -> SourceLocation:
        """The location of a field, or of its closest written ancestor."""
        for end in range(len(path), 0, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return self.location


@dataclass(frozen=True)
class PathRef:
    """A file or directory a resource reads, as written in its spec."""

    field: tuple[str | int, ...]
    """Where in the resource the path is written."""
    value: str
    """The path as written, relative to the YAML file."""
    type: Literal["file", "dir"]


@dataclass(frozen=True)
class Reference:
    """A reference by name from one resource to another."""

    field: tuple[str | int, ...]
    target: str
    """The name referred to."""
    kinds: tuple[str, ...]
    """Kinds the target may have (a Method referred to as input must produce a Measurement)."""


def path_refs(resource: AnyResource) -> list[PathRef]:
    """Every file or directory `resource` reads; the one place that knows which fields are paths."""
    if isinstance(resource, Dataset) and resource.spec.file is not None:
        return [PathRef(("spec", "file", "path"), resource.spec.file.path, "file")]
    if isinstance(resource, Model) and resource.spec.path is not None:
        return [PathRef(("spec", "path"), resource.spec.path, "dir")]
    if isinstance(resource, Module):
        return [PathRef(("spec", "path"), resource.spec.path, "dir")]
    if isinstance(resource, Evaluation) and resource.spec.imported is not None:
        return [PathRef(("spec", "imported", "path"), resource.spec.imported.path, "file")]
    if isinstance(resource, Method) and resource.spec.implementation.notebook is not None:
        notebook = resource.spec.implementation.notebook
        return [PathRef(("spec", "implementation", "notebook"), notebook, "file")]
    return []


def references(resource: AnyResource) -> list[Reference]:
    """Every name `resource` refers to; the one place that knows which fields are references."""
    refs: list[Reference] = []
    if isinstance(resource, Model):
        python = resource.spec.python
        if python is not None and python.module is not None:
            refs.append(Reference(("spec", "python", "module"), python.module, ("Module",)))
    elif isinstance(resource, InferenceService):
        if resource.spec.model is not None:
            refs.append(Reference(("spec", "model"), resource.spec.model, ("Model",)))
    elif isinstance(resource, InferenceSession):
        refs.append(Reference(("spec", "service"), resource.spec.service, ("InferenceService",)))
    elif isinstance(resource, Evaluation):
        if resource.spec.service is not None:
            service = resource.spec.service
            refs.append(Reference(("spec", "service"), service, ("InferenceService",)))
        if resource.spec.dataset is not None:
            refs.append(Reference(("spec", "dataset"), resource.spec.dataset, ("Dataset",)))
    elif isinstance(resource, Method):
        for keyword, item in resource.spec.inputs.items():
            refs.append(
                Reference(
                    ("spec", "inputs", keyword, "resource"),
                    item.resource,
                    ("Dataset", "Evaluation", "Method"),
                )
            )
        for i, module in enumerate(resource.spec.modules):
            refs.append(Reference(("spec", "modules", i), module, ("Module",)))
    return refs


@dataclass(frozen=True)
class Project:
    """Every validated resource of one project, with the hashes of the files they read."""

    root: Path
    """The project directory; no spec path may leave it."""
    resources: dict[str, LoadedResource]
    """By name, in the order they were read (files sorted, documents in file order)."""
    file_hashes: dict[str, str] = field(default_factory=dict)
    """Project-relative POSIX path → sha256 hex of a file's bytes, or of a directory's tree."""

    def __iter__(self) -> Iterator[LoadedResource]:
        return iter(self.resources.values())

    def resolve_path(self, loaded: LoadedResource, value: str) -> str:
        """The project-relative POSIX path of `value` as written in `loaded`'s spec."""
        return posixpath.normpath(posixpath.join(loaded.base_dir, value))

    def absolute(self, project_path: str) -> Path:
        """The filesystem path of a project-relative path."""
        return self.root / project_path
