"""Declarative request/response adapters (after Dyff's schema adapters).

An adapter turns one JSON object into zero or more JSON objects. A service's
`interface.request` pipeline maps a dataset row to the request body; its
`interface.response` pipeline maps each response body to output rows. The models
here only describe adapters; `runners` compiles and applies them.

JSONPath subset: `$` (the whole object), `$.a.b`, `$.a[0]`, `$.a[-1]`, `$["key with spaces"]`.
A template string starting with `$` is a path that must match exactly one value;
`$$` at the start escapes a literal `$`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._base import SpecModel

__all__ = [
    "Adapter",
    "AdapterPipeline",
    "Drop",
    "ExplodeCollections",
    "FlattenHierarchy",
    "Map",
    "Rename",
    "Select",
    "TransformJSON",
]


class TransformJSON(SpecModel):
    """Build a new object from a template; `$`-strings are JSONPaths into the input.

    Example: `{kind: TransformJSON, template: {prompt: "$.text", max_tokens: 64}}`.
    """

    kind: Literal["TransformJSON"]
    template: dict[str, Any]
    """The output object. Strings starting with `$` are paths into the input object."""


class ExplodeCollections(SpecModel):
    """Zip equal-length lists into one object each, copying the other fields."""

    kind: Literal["ExplodeCollections"]
    collections: list[str] = Field(min_length=1)
    """Top-level list fields to zip; they must have equal lengths."""
    index: str | None = None
    """If set, a field of this name receives the position 0..n-1 of each element."""


class FlattenHierarchy(SpecModel):
    """Flatten nested objects into `a.b.c` keys (or leaf names)."""

    kind: Literal["FlattenHierarchy"]
    fields: list[str] | None = None
    """Only flatten these top-level fields (default: all)."""
    depth: int | None = Field(default=None, ge=1)
    """Flatten at most this many levels (default: all)."""
    add_prefix: bool = True
    """Keep the parent path as a prefix (`a.b`); if false, keep leaf names only."""
    separator: str = "."
    """Joins the parts of a flattened key."""


class Rename(SpecModel):
    """Rename top-level fields: `{old: new}`."""

    kind: Literal["Rename"]
    fields: dict[str, str] = Field(min_length=1)


class Drop(SpecModel):
    """Remove top-level fields."""

    kind: Literal["Drop"]
    fields: list[str] = Field(min_length=1)


class Select(SpecModel):
    """Keep only these top-level fields."""

    kind: Literal["Select"]
    fields: list[str] = Field(min_length=1)


class Map(SpecModel):
    """Apply an adapter to each element of some list fields."""

    kind: Literal["Map"]
    collections: list[str] = Field(min_length=1)
    adapter: Adapter


Adapter = Annotated[
    TransformJSON | ExplodeCollections | FlattenHierarchy | Rename | Drop | Select | Map,
    Field(discriminator="kind"),
]
"""One adapter, chosen by its `kind`."""

AdapterPipeline = list[Adapter]
"""Adapters applied in order; the output of one feeds the next."""

Map.model_rebuild()
