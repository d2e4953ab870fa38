"""Stage 2, validate: loaded documents → a `Project` of typed resources, or every issue at once.

Each document is validated with the pydantic models of `schemas` (one
`TypeAdapter(AnyResource)`), and each pydantic error is relocated to the file,
line and column where the offending value (or unknown key) was written. Then the
graph checks run over the resources that validated: duplicate names, unknown and
wrong-kind references (with "did you mean"), cycles, the files a spec reads
(missing, of the wrong type, or leaving the project root, also through symlinks),
and column checks between datasets, request adapters, evaluations and methods.
The files that pass are hashed here, so that resolving stays pure.

Nothing here executes code from the specs, their modules or their notebooks.
"""

from __future__ import annotations

import difflib
import graphlib
import hashlib
import os
import re
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas import (
    ARROW_TYPE_PATTERN,
    ERROR_COLUMN,
    ERROR_TYPE_COLUMN,
    IMAGE_REFERENCE_PATTERN,
    INDEX_COLUMN,
    KINDS,
    LABEL_VALUE_PATTERN,
    REPLICATION_COLUMN,
    AnyResource,
    ColumnName,
    Dataset,
    Evaluation,
    GraphError,
    InferenceService,
    Issue,
    Method,
    Model,
    Module,
    PythonModelSource,
    ResourceName,
    SpecLoadError,
    SpecValidationError,
    TransformJSON,
    format_loc,
)

from ._callables import CallableChecker, CallableProblem, forbidden_name
from ._load import Document, FieldPath, discover_spec_files, load_files
from ._paths import SymlinkLoop, resolve
from ._project import LoadedResource, PathRef, Project, SourceLocation, path_refs, references
from ._secrets import SECRET_HINT, secret_findings

__all__ = ["hash_path", "load_project", "tree_hashes", "validate_documents"]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyResource)
_PRIMITIVE_TYPES = [
    "string",
    "large_string",
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "binary",
    "date32",
    "timestamp[s]",
    "timestamp[ms]",
    "timestamp[us]",
    "timestamp[ns]",
]
_HASH_IGNORED_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints"})


def load_project(root: Path, paths: list[Path]) -> Project:
    """Load and validate the specs under `paths`: the public entry point of stages 1 and 2.

    Args:
        root: the project directory; no spec or path named by a spec may leave it.
        paths: spec files or directories (searched for *.yaml/*.yml, sorted).

    Returns:
        The validated project, with the hash of every file its specs read.

    Raises:
        SpecLoadError: a file could not be read as YAML (with every other issue found).
        SpecValidationError: a document does not match its kind's model.
        GraphError: references, names, cycles, files or columns do not fit.

    Example:
        >>> project = load_project(Path("."), [Path("audits")])   # doctest: +SKIP
        >>> sorted(project.resources)[:2]                         # doctest: +SKIP
        ['identity-phrases', 'offensive-filter']
    """
    root = root.resolve()
    files, path_issues = discover_spec_files(root, paths)
    loaded = load_files(root, files)
    load_issues = path_issues + loaded.issues
    if not files and not path_issues:
        shown = ", ".join(_display(root, Path(p)) for p in paths) or "."
        load_issues.append(
            Issue(shown, 0, 0, "no spec files (*.yaml, *.yml) found", "no-spec-files")
        )
    project, field_issues, graph_issues = validate_documents(
        root, loaded.documents, incomplete=bool(load_issues)
    )
    if load_issues:
        raise SpecLoadError(load_issues + field_issues + graph_issues)
    if field_issues:
        raise SpecValidationError(field_issues + graph_issues)
    if graph_issues:
        raise GraphError(graph_issues)
    return project


def validate_documents(
    root: Path, documents: list[Document], *, incomplete: bool = False
) -> tuple[Project, list[Issue], list[Issue]]:
    """Validate loaded documents and check the graph they form.

    Args:
        root: the resolved project root.
        documents: every document loaded.
        incomplete: some files could not be loaded, so names may be missing; unknown
            references are then not reported (they would be noise).

    Returns:
        The project of the resources that validated and passed the checks, the field
        issues, and the graph issues.
    """
    resources: list[LoadedResource] = []
    field_issues: list[Issue] = []
    invalid_names: set[str] = set()
    for document in documents:
        loaded, issues = _validate_document(document)
        field_issues.extend(issues)
        if loaded is not None:
            resources.append(loaded)
            field_issues.extend(_secret_issues(loaded))
        elif isinstance(document.data, dict) and isinstance(document.data.get("name"), str):
            invalid_names.add(document.data["name"])
    checker = _GraphChecker(root, resources, invalid_names, incomplete)
    project = checker.run()
    return project, field_issues, checker.issues


def _display(root: Path, path: Path) -> str:
    absolute = Path(os.path.abspath(path))
    return absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else str(path)


# ------------------------------------------------------------ field checks


def _validate_document(document: Document) -> tuple[LoadedResource | None, list[Issue]]:
    data = document.data
    if not isinstance(data, dict):
        message = f"a document must be a mapping with kind, name and spec; found {_kind_of(data)}"
        return None, [_issue_at(document, (), message, "not-a-mapping")]
    label = _label(data)
    kind = data.get("kind")
    if isinstance(kind, str) and kind not in KINDS:
        return None, [_unknown_kind(document, kind, label)]
    try:
        resource = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        return None, [_relocate(document, error, label) for error in exc.errors(include_url=False)]
    return LoadedResource(resource, document.location, document.positions), []


def _secret_issues(loaded: LoadedResource) -> list[Issue]:
    issues = []
    for path, what in secret_findings(loaded):
        where = loaded.locate(path)
        issues.append(
            Issue(
                where.file,
                where.line,
                where.column,
                f"looks like a secret ({what}); {SECRET_HINT}",
                "secret-in-spec",
                loaded.key,
                format_loc(path),
            )
        )
    return issues


def _label(data: dict[Any, Any]) -> str | None:
    kind, name = data.get("kind"), data.get("name")
    if isinstance(kind, str) and kind in KINDS and isinstance(name, str):
        return f"{kind}/{name}"
    return None


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, dict):
        return "an empty mapping" if not value else "a mapping"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    return f"a string ({Issue.echo(value)})"


def _unknown_kind(document: Document, kind: str, label: str | None) -> Issue:
    hint = _did_you_mean(kind, KINDS)
    return _issue_at(
        document,
        ("kind",),
        f"unknown kind {kind!r}{hint}; expected one of {', '.join(KINDS)}",
        "unknown-kind",
        label,
    )


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _issue_at(
    document: Document,
    path: FieldPath,
    message: str,
    code: str,
    resource: str | None = None,
    *,
    at_key: bool = False,
) -> Issue:
    where = _locate(document, path, at_key=at_key)
    return Issue(
        where.file, where.line, where.column, message, code, resource, format_loc(path) or None
    )


def _locate(document: Document, path: FieldPath, *, at_key: bool = False) -> SourceLocation:
    if at_key and path in document.key_positions:
        return document.key_positions[path]
    for end in range(len(path), 0, -1):
        found = document.positions.get(path[:end])
        if found is not None:
            return found
    return document.location


def _relocate(document: Document, error: Any, label: str | None) -> Issue:
    """One pydantic error → an Issue at the position of the value (or key) it is about."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    path = _field_path(loc)
    kind = error["type"]
    message = _error_message(error, loc, path)
    code = _ERROR_CODES.get(kind, kind.replace("_", "-"))
    return _issue_at(document, path, message, code, label, at_key=kind == "extra_forbidden")


_ERROR_CODES = {
    "missing": "missing-field",
    "extra_forbidden": "unknown-field",
    "union_tag_invalid": "unknown-kind",
    "union_tag_not_found": "missing-kind",
    "value_error": "invalid-value",
    "assertion_error": "invalid-value",
    "string_pattern_mismatch": "invalid-format",
}


def _error_message(error: Any, loc: tuple[str | int, ...], path: FieldPath) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    found = error.get("input")
    if kind == "missing":
        return f"required field {path[-1]!r} is missing" if path else "required field is missing"
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        hint = _did_you_mean(str(path[-1]), allowed)
        expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown field {path[-1]!r}{hint}{expected}"
    if kind == "union_tag_invalid":
        tags = re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
        tag = str(ctx.get("tag"))
        what = "kind" if not path else f"{path[-1]} kind"
        return (
            f"unknown {what} {tag!r}{_did_you_mean(tag, tags)}; expected one of {', '.join(tags)}"
        )
    if kind == "union_tag_not_found":
        return (
            f"'kind' is missing; expected one of {', '.join(KINDS)}"
            if not path
            else "'kind' is missing; it says which variant this is"
        )
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind == "string_pattern_mismatch":
        return _pattern_message(str(ctx.get("pattern", "")), found)
    return f"{_lower_first(error['msg'])}; found {_kind_of(found)}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _constraint_pattern(annotated: Any) -> str:
    return str(typing.get_args(annotated)[1].pattern)


_PATTERN_TEXT = {
    _constraint_pattern(ResourceName): "a name of lower-case letters, digits and '-' "
    "(1-52 characters, starting and ending with a letter or digit)",
    _constraint_pattern(ColumnName): "a column name: a letter, then letters, digits or '_'",
    ARROW_TYPE_PATTERN.pattern: "an Arrow type (string, int64, float64, bool, list<string>, …)",
    r"^[0-9a-f]{40}$": "a full 40-character commit hash",
    IMAGE_REFERENCE_PATTERN: "an image reference: [registry[:port]/]name[:tag][@sha256:digest], "
    "the name in lower case, no spaces or line breaks",
    LABEL_VALUE_PATTERN: "a Kubernetes label value: letters, digits, '-', '_' and '.', "
    "starting and ending with a letter or digit",
}


def _pattern_message(pattern: str, found: Any) -> str:
    text = _PATTERN_TEXT.get(pattern)
    if text is None and ":" in pattern and "A-Za-z_" in pattern:
        text = "'module.path:function'"
    hint = ""
    if pattern == ARROW_TYPE_PATTERN.pattern and isinstance(found, str):
        hint = _did_you_mean(found, _PRIMITIVE_TYPES)
    expected = text or f"text matching {pattern}"
    return f"{Issue.echo(found)} is not valid{hint}; expected {expected}"


def _field_path(loc: tuple[str | int, ...]) -> FieldPath:
    """Drop what pydantic adds to a `loc` beyond the user's field path (union tags, `[key]`)."""
    path: list[str | int] = []
    annotation: Any = AnyResource
    for item in loc:
        annotation, is_tag = _step(annotation, item)
        if not is_tag and item != "[key]":
            path.append(item)
    return tuple(path)


def _step(annotation: Any, item: str | int) -> tuple[Any, bool]:
    """The annotation one `loc` item below `annotation`, and whether the item was a union tag."""
    annotation = _unwrap(annotation)
    members = _union_members(annotation)
    if members is not None:
        for member in members:
            if _tag_of(member) == item:
                return member, True
        models = [m for m in members if m is not type(None)]
        annotation = models[0] if len(models) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(str(item))
        return (info.annotation if info is not None else None), False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and args:
        return args[0], False
    if origin is dict and len(args) == 2:
        return (args[0] if item == "[key]" else args[1]), False
    return None, False


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> list[Any] | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [_unwrap(a) for a in typing.get_args(annotation)]
    return None


def _tag_of(member: Any) -> str | None:
    if isinstance(member, type) and issubclass(member, BaseModel):
        info = member.model_fields.get("kind")
        if info is not None and typing.get_origin(info.annotation) is typing.Literal:
            values = typing.get_args(info.annotation)
            return str(values[0]) if len(values) == 1 else None
    return None


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model a `loc` points into (for "did you mean" on unknown fields)."""
    annotation: Any = AnyResource
    for item in loc:
        annotation, _ = _step(annotation, item)
    annotation = _unwrap(annotation)
    members = _union_members(annotation)
    if members is not None:
        models = [m for m in members if m is not type(None)]
        annotation = models[0] if len(models) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


# ------------------------------------------------------------ graph checks


@dataclass
class _GraphChecker:
    """Cross-resource checks over the resources that validated; collects issues."""

    root: Path
    loaded: list[LoadedResource]
    invalid_names: set[str]
    incomplete: bool
    issues: list[Issue] = field(default_factory=list)
    by_name: dict[str, LoadedResource] = field(default_factory=dict)
    file_hashes: dict[str, str] = field(default_factory=dict)
    _hash_cache: dict[str, str | Issue] = field(default_factory=dict)
    _callables: CallableChecker = field(default_factory=CallableChecker)

    def run(self) -> Project:
        self._check_duplicates()
        bad_refs = self._check_references()
        self._check_cycles(bad_refs)
        self._check_files()
        self._check_callables()
        for loaded in self.by_name.values():
            self._check_columns(loaded)
        return Project(self.root, self.by_name, self.file_hashes)

    def add(self, loaded: LoadedResource, path: FieldPath, message: str, code: str) -> None:
        where = loaded.locate(path)
        self.issues.append(
            Issue(
                where.file,
                where.line,
                where.column,
                message,
                code,
                loaded.key,
                format_loc(path) or None,
            )
        )

    # names and references ---------------------------------------------------

    def _check_duplicates(self) -> None:
        for loaded in self.loaded:
            name = loaded.resource.name
            first = self.by_name.get(name)
            if first is None:
                self.by_name[name] = loaded
                continue
            self.add(
                loaded,
                ("name",),
                f"duplicate name {name!r}: {first.key} at {first.location} already has it; "
                "names are unique across all kinds in a project",
                "duplicate-name",
            )

    def _check_references(self) -> set[str]:
        """Report unknown and wrong-kind references; return the names that have any."""
        bad: set[str] = set()
        for loaded in self.by_name.values():
            for ref in references(loaded.resource):
                if not self._reference_ok(loaded, ref.field, ref.target, ref.kinds):
                    bad.add(loaded.resource.name)
        return bad

    def _reference_ok(
        self, loaded: LoadedResource, path: FieldPath, target: str, kinds: tuple[str, ...]
    ) -> bool:
        wanted = _expected_kinds(loaded.resource, path, kinds)
        found = self.by_name.get(target)
        if found is None:
            if target in self.invalid_names or self.incomplete:
                return False  # already reported where that resource is written
            choices = [n for n, r in self.by_name.items() if _provides(r) in wanted]
            self.add(
                loaded,
                path,
                f"no {_either(wanted)} named {target!r}{_did_you_mean(target, choices)}",
                "unknown-reference",
            )
            return False
        provided = _provides(found)
        if provided not in wanted:
            what = (
                _a(provided)
                if provided == found.resource.kind
                else f"a Method producing {_a(provided)}"
            )
            self.add(
                loaded,
                path,
                f"{target!r} is {what} ({found.location}); expected {_either(wanted, article=True)}",
                "wrong-kind-reference",
            )
            return False
        return True

    def _check_cycles(self, skip: set[str]) -> None:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name, loaded in self.by_name.items():
            targets = [r.target for r in references(loaded.resource) if r.target in self.by_name]
            sorter.add(name, *targets)
        try:
            sorter.prepare()
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1]
            first = self.by_name[cycle[0]]
            keys = " -> ".join(self.by_name[n].key for n in cycle)
            self.add(first, (), f"dependency cycle: {keys}; references must form a DAG", "cycle")
            # Remove the cycle so resolve never sees it; the issue is already recorded.
            for name in set(cycle):
                self.by_name.pop(name, None)

    # files ---------------------------------------------------------------------

    def _check_files(self) -> None:
        for loaded in list(self.by_name.values()):
            for ref in path_refs(loaded.resource):
                self._check_file(loaded, ref)

    def _check_file(self, loaded: LoadedResource, ref: PathRef) -> None:
        value = ref.value
        if os.path.isabs(value) or re.match(r"^[A-Za-z]:[\\/]", value):
            self.add(
                loaded,
                ref.field,
                f"absolute path {Issue.echo(value)}; expected a path relative to "
                f"{loaded.location.file}",
                "absolute-path",
            )
            return
        project_path = _normalise(loaded.base_dir, value)
        if project_path is None:
            self.add(
                loaded,
                ref.field,
                f"path {Issue.echo(value)} leaves the project root; expected a path inside it",
                "path-outside-root",
            )
            return
        result = self._hash(project_path, ref.type)
        if isinstance(result, Issue):
            self.add(loaded, ref.field, result.message, result.code)
            return
        if isinstance(loaded.resource, Module):
            for compiled in _sourceless_bytecode(self.root, self.root / project_path):
                self.add(
                    loaded,
                    ref.field,
                    f"{compiled!r} is compiled bytecode without its source: Python would "
                    "import it, but ids hash source files only; delete it (commit the .py file)",
                    "sourceless-module",
                )
        self.file_hashes[project_path] = result

    def _hash(self, project_path: str, kind: str) -> str | Issue:
        key = f"{kind}:{project_path}"
        if key not in self._hash_cache:
            self._hash_cache[key] = _checked_hash(self.root, project_path, kind)
        return self._hash_cache[key]

    # callables -------------------------------------------------------------------

    def _check_callables(self) -> None:
        for loaded in list(self.by_name.values()):
            resource = loaded.resource
            if isinstance(resource, Method) and resource.spec.implementation.python:
                self._check_callable(
                    loaded,
                    ("spec", "implementation", "python"),
                    resource.spec.implementation.python,
                    list(resource.spec.modules),
                    "spec.modules",
                )
            elif isinstance(resource, Model) and resource.spec.python is not None:
                self._check_model_callable(loaded, resource.spec.python)

    def _check_model_callable(self, loaded: LoadedResource, python: PythonModelSource) -> None:
        path: FieldPath = ("spec", "python", "callable")
        if python.module is not None:
            self._check_callable(
                loaded, path, python.callable, [python.module], "spec.python.module"
            )
            return
        if python.package is None:
            self.add(
                loaded,
                ("spec", "python"),
                "a python model needs 'module' (the Module that defines its callable) or "
                "'package' (the pinned requirement that provides it); without either, the "
                "callable could be any code installed where it runs",
                "callable-source-missing",
            )
            return
        problem = forbidden_name(python.callable)
        if problem is not None:
            self.add(loaded, path, problem.message, problem.code)

    def _check_callable(
        self,
        loaded: LoadedResource,
        path: FieldPath,
        target: str,
        modules: list[str],
        listed_in: str,
    ) -> None:
        directories: list[Path] = []
        for name in modules:
            found = self.by_name.get(name)
            if found is None or not isinstance(found.resource, Module):
                return  # reported as a reference problem
            project_path = _normalise(found.base_dir, found.resource.spec.path)
            if project_path is None or project_path not in self.file_hashes:
                return  # its path was reported
            directories.append(resolve(self.root / project_path))
        problem: CallableProblem | None
        if not directories:
            problem = forbidden_name(target) or CallableProblem(
                f"{target!r} must be defined in the resource's Modules, and {listed_in} names "
                "none; add the Module that defines it",
                "callable-not-found",
            )
        else:
            shown = ", ".join(f"Module {m}" for m in modules)
            problem = self._callables.check_module_callable(target, directories, shown)
        if problem is not None:
            self.add(loaded, path, problem.message, problem.code)

    # columns ---------------------------------------------------------------------

    def _check_columns(self, loaded: LoadedResource) -> None:
        resource = loaded.resource
        if isinstance(resource, Evaluation):
            self._check_evaluation(loaded, resource)
        elif isinstance(resource, Method):
            self._check_method_inputs(loaded, resource)

    def _check_evaluation(self, loaded: LoadedResource, evaluation: Evaluation) -> None:
        service = self._get(evaluation.spec.service, InferenceService)
        dataset = self._get(evaluation.spec.dataset, Dataset)
        if service is None:
            return
        interface = service.spec.interface
        if evaluation.spec.batch_size > 1 and not interface.batching:
            self.add(
                loaded,
                ("spec", "batch_size"),
                f"batch_size {evaluation.spec.batch_size} needs a service whose "
                f"interface.batching is true; InferenceService {service.name!r} does not batch",
                "batching-unsupported",
            )
        if dataset is None:
            return
        available = set(dataset.spec.columns) | {INDEX_COLUMN}
        for column, written in _request_fields(service):
            if column not in available:
                self.add(
                    loaded,
                    ("spec", "dataset"),
                    f"InferenceService {service.name!r} reads {written} in interface.request, "
                    f"but Dataset {dataset.name!r} has no column {column!r}"
                    f"{_did_you_mean(column, sorted(available))}; its columns: "
                    f"{', '.join(sorted(available))}",
                    "column-mismatch",
                )

    def _check_method_inputs(self, loaded: LoadedResource, method: Method) -> None:
        for keyword, item in method.spec.inputs.items():
            target = self.by_name.get(item.resource)
            if target is None:
                continue
            provided = _provides(target)
            if item.kind is not None and item.kind != provided:
                continue  # reported as a wrong-kind reference already
            columns = self._columns_of(target)
            if columns is None:
                continue
            for i, column in enumerate(item.columns):
                if column not in columns:
                    self.add(
                        loaded,
                        ("spec", "inputs", keyword, "columns", i),
                        f"{target.key} provides no column {column!r}"
                        f"{_did_you_mean(column, sorted(columns))}; it provides: "
                        f"{', '.join(sorted(columns))}",
                        "column-mismatch",
                    )

    def _columns_of(self, target: LoadedResource) -> set[str] | None:
        """The columns an input provides, or None when they are not declared."""
        resource = target.resource
        if isinstance(resource, Dataset):
            return set(resource.spec.columns) | {INDEX_COLUMN}
        if isinstance(resource, Evaluation):
            service = self._get(resource.spec.service, InferenceService)
            if resource.spec.imported is not None:
                output = set(resource.spec.imported.columns)
            elif service is not None:
                output = set(service.spec.interface.output)
            else:
                return None
            return output | {
                INDEX_COLUMN,
                REPLICATION_COLUMN,
                ERROR_COLUMN,
                ERROR_TYPE_COLUMN,
            }
        if isinstance(resource, Method) and resource.spec.output.columns:
            columns = set(resource.spec.output.columns)
            if resource.spec.output.level == "instance":
                columns.add(INDEX_COLUMN)
            return columns
        return None

    def _get(self, name: str | None, cls: type[Any]) -> Any:
        found = self.by_name.get(name) if name is not None else None
        return found.resource if found is not None and isinstance(found.resource, cls) else None


def _provides(loaded: LoadedResource) -> str:
    """What a resource is as a reference target: its kind, or a Method's output kind."""
    resource = loaded.resource
    if isinstance(resource, Method):
        return resource.spec.output.kind
    return resource.kind


def _expected_kinds(resource: AnyResource, path: FieldPath, kinds: tuple[str, ...]) -> set[str]:
    """The kinds a reference may name, with Method inputs meaning 'a Method's Measurement'."""
    wanted = {"Measurement" if k == "Method" else k for k in kinds}
    if isinstance(resource, Method) and path[:2] == ("spec", "inputs"):
        declared = resource.spec.inputs[str(path[2])].kind
        if declared is not None:
            wanted = {declared}
    return wanted


def _either(kinds: Iterable[str], *, article: bool = False) -> str:
    names = sorted(kinds, key=lambda k: (KINDS + ("Measurement",)).index(k))
    if article:
        names = [_a(n) for n in names]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _a(word: str) -> str:
    return ("an " if word[:1] in "AEIOU" else "a ") + word


def _normalise(base_dir: str, value: str) -> str | None:
    """The project-relative path of `value` written in a file in `base_dir`; None if it leaves."""
    joined = os.path.normpath(os.path.join(base_dir or ".", value)).replace(os.sep, "/")
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


_PATH_FIELD = re.compile(r"^\$(?:\.([A-Za-z_][A-Za-z0-9_-]*)|\[\s*(['\"])(.*?)\2\s*\]|\[)")


def _request_fields(service: InferenceService) -> Iterator[tuple[str, str]]:
    """Top-level dataset columns the first request adapter reads: (column, path as written).

    Only a leading TransformJSON reads dataset rows directly; later adapters read its output.
    """
    request = service.spec.interface.request
    if not request or not isinstance(request[0], TransformJSON):
        return
    for text in _template_strings(request[0].template):
        if text.startswith("$$") or not text.startswith("$") or text == "$":
            continue
        match = _PATH_FIELD.match(text)
        if match is not None and (match.group(1) or match.group(3)):
            yield (match.group(1) or match.group(3), text)


def _template_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _template_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _template_strings(item)


# ------------------------------------------------------------------ hashing


def _checked_hash(root: Path, project_path: str, kind: str) -> str | Issue:
    """Hash a file or directory after checking it exists, has the right type and stays inside."""
    path = root / project_path
    if not os.path.lexists(path):
        what = "file" if kind == "file" else "directory"
        return _path_issue(f"{what} {project_path!r} does not exist", "missing-file")
    try:
        resolved = resolve(path)
    except SymlinkLoop:
        return _path_issue(
            f"{project_path!r} is a symlink loop; expected a {_what(kind)}", "symlink-loop"
        )
    if not resolved.is_relative_to(root):
        return _path_issue(
            f"{project_path!r} is a symlink that leads outside the project root",
            "path-outside-root",
        )
    if kind == "file" and not resolved.is_file():
        return _path_issue(f"{project_path!r} is not a file; expected a file", "wrong-file-type")
    if kind == "dir" and not resolved.is_dir():
        return _path_issue(
            f"{project_path!r} is not a directory; expected a directory", "wrong-file-type"
        )
    try:
        return hash_path(resolved, root=root)
    except _OutsideRoot as exc:
        return _path_issue(
            f"{_rel(root, exc.path)!r} in {project_path!r} is a symlink outside the project root",
            "path-outside-root",
        )
    except SymlinkLoop as exc:
        back = f" (it leads back to {_rel(root, exc.target)!r})" if exc.target else ""
        return _path_issue(
            f"{_rel(root, exc.path)!r} in {project_path!r} is a symlink loop{back}; remove it",
            "symlink-loop",
        )


def _path_issue(message: str, code: str) -> Issue:
    """An issue about a path; the caller places it at the field that names the path."""
    return Issue("", 0, 0, message, code)


def _what(kind: str) -> str:
    return "file" if kind == "file" else "directory"


def _sourceless_bytecode(root: Path, directory: Path) -> list[str]:
    """Compiled files Python would import from `directory` without their source: `*.pyc`
    outside `__pycache__` (those inside it are never read: see `runners.private_bytecode`)."""
    found: list[str] = []
    for current, dirs, names in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found.extend(
            _rel(root, Path(current) / name)
            for name in sorted(names)
            if name.endswith((".pyc", ".pyo"))
        )
    return found


class _OutsideRoot(Exception):
    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def hash_path(path: Path, *, root: Path | None = None) -> str:
    """The sha256 hex of a file's bytes, or of a directory's tree.

    A directory's hash is the sha256 over its sorted `(relative path, file hash)`
    pairs, ignoring `__pycache__`, `*.pyc`, `.ipynb_checkpoints` and dotfiles, so it
    depends on content and layout only. Symlinks inside are followed only when they
    stay inside `root`.

    Args:
        path: the file or directory.
        root: if given, every symlink must resolve inside it.

    Raises:
        _OutsideRoot: (internal) a symlink leaves `root`.
        SymlinkLoop: a symlink inside loops, or a linked directory leads back into the tree.
    """
    if path.is_file():
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    return _TreeHasher(root).directory_hash(resolve(path))


def tree_hashes(directory: Path, root: Path | None) -> list[tuple[str, str]]:
    """The sorted `(relative path, sha256)` pairs a directory's hash is made of (see `hash_path`).

    A linked sub-directory is one entry whose path ends in `/`, with its tree hash.

    Raises:
        SymlinkLoop: as for `hash_path`.
    """
    hasher = _TreeHasher(root)
    top = resolve(directory)
    hasher.active.add(top)
    return hasher.pairs(directory)


class _TreeHasher:
    """Hashes directory trees, following links that stay inside `root`, each target once.

    `active` holds the directories being hashed: a link back to one of them is a loop.
    `done` keeps every linked directory's hash, so links that fan out to the same
    targets (a tree of links) cost one walk per target, not one per path.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.active: set[Path] = set()
        self.done: dict[Path, str] = {}

    def directory_hash(self, directory: Path) -> str:
        """The tree hash of a resolved directory."""
        if directory in self.done:
            return self.done[directory]
        self.active.add(directory)
        try:
            digest = hashlib.sha256()
            for relative, file_hash in self.pairs(directory):
                digest.update(f"{relative}\0{file_hash}\n".encode())
        finally:
            self.active.discard(directory)
        self.done[directory] = digest.hexdigest()
        return self.done[directory]

    def pairs(self, directory: Path) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        for current, dirs, names in os.walk(directory, followlinks=False):
            here = Path(current)
            dirs[:] = sorted(
                d for d in dirs if not d.startswith(".") and d not in _HASH_IGNORED_DIRS
            )
            for d in [d for d in dirs if (here / d).is_symlink()]:
                # os.walk does not descend into linked directories: hash them as one entry.
                target = self._linked(here / d)
                if target in self.active:
                    raise SymlinkLoop(here / d, target)
                relative = (here / d).relative_to(directory).as_posix()
                pairs.append((relative + "/", self.directory_hash(target)))
            for name in sorted(names):
                if name.startswith(".") or name.endswith(".pyc"):
                    continue
                file = here / name
                if file.is_symlink():
                    target = self._linked(file)
                    if not target.is_file():
                        continue
                    file = target
                relative = (here / name).relative_to(directory).as_posix()
                pairs.append((relative, hash_path(file)))
        return sorted(pairs)

    def _linked(self, link: Path) -> Path:
        """Where a link inside the tree leads, checked to stay inside `root`."""
        target = resolve(link)
        if self.root is not None and not target.is_relative_to(self.root):
            raise _OutsideRoot(link)
        return target
