"""Stage 1, load: YAML files → plain documents with the source position of every node.

Only standard YAML tags are accepted (str, int, float, bool, null, seq, map; a
timestamp is kept as the text written), so loading never builds Python objects.
Files over `MAX_FILE_BYTES`, alias expansions past `MAX_ALIAS_NODES` nodes or
`MAX_EXPANDED_CHARS` characters of text, nesting past `MAX_DEPTH`, duplicate keys,
binary and non-UTF-8 files are errors; so are spec files that are symlink loops. Every problem
becomes an `Issue`; `load_files` returns the documents it could read together
with the issues of the rest, so that validation can report everything at once.

Positions come from PyYAML node marks (`yaml.compose` with libyaml's C composer
when available, which keeps marks), so composing is fast and the tree is turned
into Python values here, by one walk that also records where each value was.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from schemas import Issue

from ._paths import SymlinkLoop, resolve
from ._project import SourceLocation

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_EXPANDED_CHARS",
    "MAX_FILE_BYTES",
    "SPEC_SUFFIXES",
    "Document",
    "FieldPath",
    "LoadResult",
    "discover_spec_files",
    "load_files",
    "load_text",
]

MAX_FILE_BYTES = 10 * 1024 * 1024
"""Larger spec files are refused: specs are config, data belongs in data files."""
MAX_ALIAS_NODES = 10_000
"""Nodes built by expanding aliases, per file; stops 'billion laughs' documents."""
MAX_EXPANDED_CHARS = MAX_FILE_BYTES
"""Characters of scalar text (keys and values) per file once aliases are expanded.

Without aliases a file holds less text than its size; with them, one large scalar
repeated by a few thousand aliases stays under `MAX_ALIAS_NODES` yet expands to
gigabytes in every later copy (validation, canonical JSON for ids, manifests).
"""
MAX_DEPTH = 64
"""Nesting depth of mappings and sequences; no spec needs more."""
SPEC_SUFFIXES = (".yaml", ".yml")

FieldPath = tuple[str | int, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}
_SEQ_TAG = f"{_TAG}seq"
_MAP_TAG = f"{_TAG}map"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_ALLOWED_TAGS = "only the standard tags !!str, !!int, !!float, !!bool, !!null, !!seq and !!map are"


@dataclass(frozen=True)
class Document:
    """One YAML document of a spec file, as plain Python values with positions."""

    file: str
    """Project-relative POSIX path of the file."""
    index: int
    """0-based position of the document in its file."""
    data: Any
    location: SourceLocation
    """Where the document's top-level value starts."""
    positions: dict[FieldPath, SourceLocation] = field(default_factory=dict)
    """Field path → where its value was written."""
    key_positions: dict[FieldPath, SourceLocation] = field(default_factory=dict)
    """Field path → where its key was written (unknown fields are reported there)."""


@dataclass
class LoadResult:
    """The documents that could be read and the issues of those that could not."""

    documents: list[Document] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """Every spec file looked at, project-relative."""
    unreadable: set[str] = field(default_factory=set)
    """Files none of whose documents could be read (names in them are unknown)."""


class _LoadProblem(Exception):
    """Internal: a problem at one position that stops reading a document."""

    def __init__(self, message: str, code: str, mark: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.mark = mark


# ------------------------------------------------------------------ discovery


def discover_spec_files(root: Path, paths: Iterable[Path]) -> tuple[list[Path], list[Issue]]:
    """The spec files named by `paths`: files as given, directories searched for *.yaml/*.yml.

    Directories are walked without following symlinks, skipping hidden ones; every
    file found must resolve to a place inside `root`.

    Args:
        root: the resolved project root.
        paths: files or directories (absolute, or relative to the current directory).

    Returns:
        The files, sorted and without repeats, and an issue per path that is missing
        or leaves the project root.
    """
    files: dict[Path, None] = {}
    issues: list[Issue] = []
    for raw in paths:
        path = Path(os.path.abspath(raw))
        shown = _display(root, path)
        if not _inside(root, path):
            issues.append(Issue(shown, 0, 0, "is outside the project root", "path-outside-root"))
        elif path.is_dir() and not path.is_symlink():
            for found in _walk_specs(path):
                files.setdefault(found, None)
        elif path.is_file() or os.path.islink(path):
            files.setdefault(path, None)  # a link is checked below, with the files found
        else:
            issues.append(Issue(shown, 0, 0, "no such file or directory", "missing-path"))
    chosen: list[Path] = []
    for path in sorted(files):
        problem = _link_problem(root, path)
        if problem is None:
            chosen.append(path)
        else:
            issues.append(Issue(_display(root, path), 0, 0, *problem))
    return chosen, issues


def _link_problem(root: Path, path: Path) -> tuple[str, str] | None:
    """Why a spec file found (possibly a symlink) cannot be read: (message, code), or None."""
    try:
        target = resolve(path)
    except SymlinkLoop:
        return "is a symlink loop; expected a spec file", "symlink-loop"
    if not _inside(root, target):
        return "is a symlink that leads outside the project root", "path-outside-root"
    if not os.path.lexists(target):
        return "is a symlink to nothing (its target does not exist)", "missing-path"
    if not target.is_file():  # a FIFO would block the read forever
        return "is not a regular file; expected a spec file", "wrong-file-type"
    return None


def _walk_specs(directory: Path) -> Iterable[Path]:
    for current, dirs, names in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.endswith(SPEC_SUFFIXES) and not name.startswith("."):
                yield Path(current) / name


def _inside(root: Path, path: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# -------------------------------------------------------------------- loading


def load_files(root: Path, files: Iterable[Path]) -> LoadResult:
    """Read every spec file into documents, collecting the issues of those that fail.

    Args:
        root: the resolved project root (file names in results are relative to it).
        files: spec files inside `root`, as returned by `discover_spec_files`.
    """
    result = LoadResult()
    for path in files:
        name = _display(root, path)
        result.files.append(name)
        documents, issues = _load_file(path, name)
        result.documents.extend(documents)
        result.issues.extend(issues)
        if issues and not documents:
            result.unreadable.add(name)
    return result


def _load_file(path: Path, name: str) -> tuple[list[Document], list[Issue]]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return [], [
                Issue(
                    name,
                    0,
                    0,
                    f"file is {size:,} bytes; spec files may be at most {MAX_FILE_BYTES:,} bytes",
                    "file-too-large",
                )
            ]
        data = path.read_bytes()
    except OSError as exc:
        return [], [Issue(name, 0, 0, f"cannot read file: {exc.strerror}", "unreadable-file")]
    return load_text(data, name)


def load_text(data: bytes, name: str) -> tuple[list[Document], list[Issue]]:
    """Parse the bytes of one spec file.

    Args:
        data: the file's content.
        name: the project-relative file name used in positions and issues.

    Returns:
        The documents read and the issues found; a syntax error stops the file.
    """
    text, issue = _decode(data, name)
    if issue is not None:
        return [], [issue]
    documents: list[Document] = []
    issues: list[Issue] = []
    budget = _Budget()
    try:
        for index, node in enumerate(yaml.compose_all(text, Loader=_Loader)):
            try:
                documents.append(_build_document(node, name, index, budget))
            except _LoadProblem as problem:
                issues.append(_problem_issue(problem, name))
                if problem.code == "alias-limit":
                    break  # the file's budget is spent: later documents would only repeat it
    except yaml.MarkedYAMLError as exc:
        issues.append(_yaml_issue(exc, name))
    except yaml.YAMLError as exc:  # unmarked reader errors (rare with str input)
        issues.append(Issue(name, 0, 0, f"YAML error: {exc}", "yaml-syntax"))
    if not documents and not issues:
        issues.append(
            Issue(name, 0, 0, "file holds no YAML documents (expected at least one)", "empty-file")
        )
    return documents, issues


def _decode(data: bytes, name: str) -> tuple[str, Issue | None]:
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _byte_position(data, nul)
        return "", Issue(
            name, line, column, "file is binary (NUL byte); expected UTF-8 YAML text", "binary-file"
        )
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        found = data[exc.start : exc.start + 1].hex()
        return "", Issue(
            name,
            line,
            column,
            f"invalid UTF-8 byte 0x{found}; expected UTF-8 text",
            "not-utf8",
        )


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    before = data[:offset]
    line_start = before.rfind(b"\n") + 1
    column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
    return before.count(b"\n") + 1, column


def _yaml_issue(exc: yaml.MarkedYAMLError, name: str) -> Issue:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    return Issue(name, line, column, f"YAML syntax error: {problem}{context}", "yaml-syntax")


def _problem_issue(problem: _LoadProblem, name: str) -> Issue:
    mark = problem.mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    return Issue(name, line, column, problem.message, problem.code)


# ------------------------------------------------------------ node → values


@dataclass
class _Budget:
    """What alias expansion has used so far in one file (anchors are per document; limits are not)."""

    alias_nodes: int = 0
    chars: int = 0


def _build_document(node: yaml.Node | None, name: str, index: int, budget: _Budget) -> Document:
    if node is None:
        raise _LoadProblem("empty YAML document; expected a resource", "empty-document")
    builder = _Builder(name, budget)
    data = builder.build(node, (), 0)
    return Document(
        name, index, data, builder.locate(node), builder.positions, builder.key_positions
    )


class _Builder:
    """Turns a composed node tree into values, recording positions and enforcing limits."""

    def __init__(self, file: str, budget: _Budget) -> None:
        self.file = file
        self.positions: dict[FieldPath, SourceLocation] = {}
        self.key_positions: dict[FieldPath, SourceLocation] = {}
        self.budget = budget
        self.seen: set[int] = set()
        self.active: set[int] = set()

    def locate(self, node: yaml.Node) -> SourceLocation:
        mark = node.start_mark
        return SourceLocation(self.file, mark.line + 1, mark.column + 1)

    def build(self, node: yaml.Node, path: FieldPath, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _LoadProblem(
                f"nesting deeper than {MAX_DEPTH} levels; specs never need that much",
                "too-deep",
                node.start_mark,
            )
        key = id(node)
        if key in self.active:
            raise _LoadProblem(
                "recursive alias: a node contains itself", "alias-recursion", node.start_mark
            )
        if key in self.seen:
            self.budget.alias_nodes += 1
            if self.budget.alias_nodes > MAX_ALIAS_NODES:
                raise _LoadProblem(
                    f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes (an alias bomb?)",
                    "alias-limit",
                    node.start_mark,
                )
        else:
            self.seen.add(key)
        self.positions.setdefault(path, self.locate(node))
        if isinstance(node, yaml.ScalarNode):
            self._count_text(node)
            return self._scalar(node)
        self.active.add(key)
        try:
            if isinstance(node, yaml.SequenceNode):
                self._check_tag(node, _SEQ_TAG)
                return [
                    self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)
                ]
            assert isinstance(node, yaml.MappingNode)  # the composer makes no other node kinds
            self._check_tag(node, _MAP_TAG)
            return self._mapping(node, path, depth)
        finally:
            self.active.discard(key)

    def _mapping(self, node: yaml.MappingNode, path: FieldPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                raise _LoadProblem(
                    "merge keys ('<<') are not supported; write the fields out",
                    "merge-key",
                    key_node.start_mark,
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise _LoadProblem(
                    "mapping keys must be plain scalars, found a "
                    + ("list" if isinstance(key_node, yaml.SequenceNode) else "mapping"),
                    "complex-key",
                    key_node.start_mark,
                )
            self._count_text(key_node)
            key = self._scalar(key_node)
            if key in first:
                earlier = first[key].start_mark
                raise _LoadProblem(
                    f"duplicate key {key!r} (first written at line {earlier.line + 1}, "
                    f"column {earlier.column + 1}); each key may appear once",
                    "duplicate-key",
                    key_node.start_mark,
                )
            first[key] = key_node
            child = (*path, key)
            self.key_positions.setdefault(child, self.locate(key_node))
            result[key] = self.build(value_node, child, depth + 1)
        return result

    def _count_text(self, node: yaml.ScalarNode) -> None:
        self.budget.chars += len(node.value)
        if self.budget.chars > MAX_EXPANDED_CHARS:
            raise _LoadProblem(
                f"aliases expand this file to more than {MAX_EXPANDED_CHARS:,} characters of "
                "text (an alias bomb?); write large values once, or move data into a data file",
                "alias-limit",
                node.start_mark,
            )

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            shown = tag.replace(_TAG, "!!") if tag.startswith(_TAG) else tag
            raise _LoadProblem(
                f"YAML tag {shown!r} is not allowed; {_ALLOWED_TAGS}",
                "unsafe-tag",
                node.start_mark,
            )
        if tag.endswith(":timestamp"):
            # Dates are kept as written: spec fields are text, and this avoids datetime objects.
            return node.value
        return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)

    def _check_tag(self, node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            shown = node.tag.replace(_TAG, "!!") if node.tag.startswith(_TAG) else node.tag
            raise _LoadProblem(
                f"YAML tag {shown!r} is not allowed; {_ALLOWED_TAGS}",
                "unsafe-tag",
                node.start_mark,
            )
