"""The one exception hierarchy of auditc, shared by `compiler` and `runners`.

```
AuditcError                 str(e) is the user-facing message; .code is a stable kebab-case slug
├── SpecError               user-fixable; .issues: list[Issue]
│   ├── SpecLoadError       YAML syntax, duplicate keys, size/alias limits
│   ├── SpecValidationError pydantic field errors, relocated to file:line:col
│   └── GraphError          unknown/duplicate names, wrong kinds, cycles, missing files, column mismatches
├── UsageError              a bad command-line argument or option value
├── StoreError              IntegrityError: a node's files do not match its manifest
├── BackendError · MissingDependencyError (the message says what to install)
└── RunnerError             InferenceError · EvaluationError · MethodError · DatasetError
InternalError               a bug: shown with a traceback and "please report"
```

Only the CLI (and each runner's ``__main__``) catches these; everywhere else they
propagate. Exit codes: 2 for `SpecError`, `UsageError` and `MissingDependencyError` (an
extra to install), 1 for every other `AuditcError`, 3 for anything else (a bug).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = [
    "AuditcError",
    "BackendError",
    "DatasetError",
    "EvaluationError",
    "GraphError",
    "InferenceError",
    "IntegrityError",
    "InternalError",
    "Issue",
    "MethodError",
    "MissingDependencyError",
    "RunnerError",
    "SpecError",
    "SpecLoadError",
    "SpecValidationError",
    "StoreError",
    "UsageError",
    "format_loc",
]

MAX_ECHO = 50


def format_loc(loc: tuple[str | int, ...]) -> str:
    """Render a pydantic-style location as a dotted path (`spec.inputs.0.name`).

    Keys that themselves contain a dot are put in backticks, as pydantic does.
    """
    parts: list[str] = []
    for item in loc:
        text = str(item)
        parts.append(f"`{text}`" if isinstance(item, str) and "." in text else text)
    return ".".join(parts)


def _echo(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[: MAX_ECHO - 1] + "…"


@dataclass(frozen=True, order=True)
class Issue:
    """One user-fixable problem in the specs, with where it is and what was expected.

    Rendered as
    ``audits/evals.yaml:14:11: Evaluation/x: spec.service: no InferenceService named 'y' [unknown-reference]``.
    """

    file: str
    line: int
    column: int
    message: str
    code: str
    resource: str | None = None
    """`Kind/name` of the resource the issue is in, when known."""
    path: str | None = None
    """Dotted field path inside the resource (`spec.service`)."""

    def render(self) -> str:
        """The one-line, user-facing form of this issue."""
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        parts = [where]
        if self.resource:
            parts.append(self.resource)
        if self.path:
            parts.append(self.path)
        return ": ".join(parts) + f": {self.message} [{self.code}]"

    @staticmethod
    def echo(value: object) -> str:
        """A short repr of an offending input value, cut to about 50 characters."""
        return _echo(value)


class AuditcError(Exception):
    """Base of every error auditc raises on purpose; `str(e)` is the message for users."""

    code: str = "auditc-error"
    exit_code: int = 1

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class SpecError(AuditcError):
    """User-fixable problems in the audit specs; carries every issue found at once."""

    code = "invalid-spec"
    exit_code = 2

    def __init__(self, issues: list[Issue]) -> None:
        self.issues: list[Issue] = sorted(issues)
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [issue.render() for issue in self.issues]
        files = Counter(issue.file for issue in self.issues)
        n, f = len(self.issues), len(files)
        lines.append(f"{n} error{'s' if n != 1 else ''} in {f} file{'s' if f != 1 else ''}")
        return "\n".join(lines)


class SpecLoadError(SpecError):
    """YAML syntax errors, duplicate keys, unsafe tags, size or alias limits."""

    code = "spec-load"


class SpecValidationError(SpecError):
    """Field errors from the pydantic models, relocated to file:line:column."""

    code = "spec-validation"


class GraphError(SpecError):
    """Cross-resource problems: references, duplicates, cycles, files, columns."""

    code = "graph"


class UsageError(AuditcError):
    """A bad command-line argument or option value."""

    code = "usage"
    exit_code = 2


class StoreError(AuditcError):
    """The store cannot be read or written, or holds something unexpected."""

    code = "store"


class IntegrityError(StoreError):
    """A stored node's files do not match what its manifest says (changed, missing, extra)."""

    code = "integrity"


class BackendError(AuditcError):
    """A backend (local or kubernetes) could not carry out the graph."""

    code = "backend"


class MissingDependencyError(AuditcError):
    """An optional package or program is missing; the message says what to install."""

    code = "missing-dependency"
    exit_code = 2


class RunnerError(AuditcError):
    """A workflow step failed at run time."""

    code = "runner"


class InferenceError(RunnerError):
    """An inference server failed to start, to become ready, or to answer."""

    code = "inference"


class EvaluationError(RunnerError):
    """The evaluation client failed (not a per-row error, which is recorded as data)."""

    code = "evaluation"


class MethodError(RunnerError):
    """A method (Python function or notebook) raised, or its outputs are invalid."""

    code = "method"


class DatasetError(RunnerError):
    """A dataset could not be ingested: unreadable file, a row that does not fit its columns."""

    code = "dataset"


@dataclass
class InternalError(Exception):
    """A bug in auditc: shown with a traceback and a request to report it."""

    message: str
    details: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"internal error: {self.message} (this is a bug in auditc; please report it)"
