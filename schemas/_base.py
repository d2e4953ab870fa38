"""Shared pydantic base classes and constrained types for every resource kind."""

from __future__ import annotations

import re
import string
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "ARROW_TYPE_PATTERN",
    "ColumnName",
    "ColumnType",
    "Documentation",
    "Duration",
    "Quantity",
    "RelativePath",
    "ResourceName",
    "SpecModel",
    "check_score_format",
]


class SpecModel(BaseModel):
    """Base of every spec model: unknown fields are errors, values are immutable.

    A field is documented by the string literal under it. Those docstrings reach the
    JSON Schema and the reference through `compiler._schema_docs`, not pydantic's
    `use_attribute_docstrings`: that reads every model's source as the class is made,
    a cost every command would pay at import (≈ 0.04 s) for what only `auditc schema`
    prints.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


ResourceName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$"),
]
"""Lower-case letters, digits and '-', 1–52 characters, starting and ending alphanumeric.

Short enough that `<name>-<node id>` stays a valid Kubernetes name (63 characters).
"""

ColumnName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,127}$")]
"""A column name: a letter, then letters, digits or '_'. Names wrapped in '_' are reserved."""

_PRIMITIVE_TYPES = (
    "string|large_string|bool|int8|int16|int32|int64|uint8|uint16|uint32|uint64|"
    "float16|float32|float64|binary|date32|timestamp\\[(s|ms|us|ns)\\]"
)
ARROW_TYPE_PATTERN = re.compile(rf"^((list<)*({_PRIMITIVE_TYPES})(>)*)$")
"""Arrow type names a column may declare: primitives, optionally nested in `list<…>`."""

ColumnType = Annotated[
    str,
    StringConstraints(pattern=ARROW_TYPE_PATTERN.pattern),
]
"""An Arrow type name: `string`, `int64`, `float64`, `bool`, `list<string>`, …"""

RelativePath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=900, pattern=r"^[^\x00]+$"),
]
"""A path relative to the YAML file that names it; it must stay inside the project."""

Quantity = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"),
]
"""A Kubernetes quantity: `500m`, `2`, `4Gi`."""

Duration = Annotated[float, Field(gt=0, le=7 * 24 * 3600)]
"""Seconds, greater than 0 and at most a week."""


class Documentation(SpecModel):
    """Human-facing documentation, shown in reports; it does not change any result."""

    title: str | None = Field(default=None, max_length=200)
    """A short title."""
    summary: str | None = Field(default=None, max_length=1000)
    """One or two sentences."""
    markdown: str | None = Field(default=None, max_length=100_000)
    """A full description in Markdown."""


_NUMBER_SPEC = re.compile(r"^(.?[<>=^])?[+\- ]?z?#?0?(\d{1,2})?[,_]?(\.\d{1,2})?[eEfFgGn%]?$")
MAX_FORMAT_LENGTH = 100


def check_score_format(fmt: str) -> str:
    """Check a score's format string; return it unchanged.

    Only the field `{value}` is allowed, with a number format spec whose width and
    precision have at most two digits (`{value:.1%}`, `{value:,.0f} rows`). Specs come
    from untrusted pull requests: attribute access (`{value.x}`) or a huge width would
    crash or exhaust the machine that validates them.

    Raises:
        ValueError: with what was found and what is expected.
    """
    if len(fmt) > MAX_FORMAT_LENGTH:
        raise ValueError(
            f"format is {len(fmt)} characters long; at most {MAX_FORMAT_LENGTH} are allowed"
        )
    try:
        fields = [
            (name, spec, conv)
            for _, name, spec, conv in string.Formatter().parse(fmt)
            if name is not None
        ]
    except ValueError as exc:
        raise ValueError(f"format {fmt!r} is not a valid format string: {exc}") from None
    if not fields:
        raise ValueError(f"format {fmt!r} has no {{value}} field")
    for name, spec, conversion in fields:
        if name != "value" or conversion:
            found = "{" + name + (f"!{conversion}" if conversion else "") + "}"
            raise ValueError(f"format {fmt!r} may only use the field {{value}} (found {found})")
        if spec and not _NUMBER_SPEC.match(spec):
            raise ValueError(
                f"format spec {spec!r} in {fmt!r} is not a number format; expected e.g. "
                "'.3g', '.1%' or ',.0f', with width and precision of at most two digits"
            )
    try:
        fmt.format(value=0.5)
    except ValueError as exc:
        raise ValueError(f"format {fmt!r} cannot format a number: {exc}") from None
    return fmt
