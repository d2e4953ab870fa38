"""The JSON Schema of audit specs and the Markdown reference of every kind, both from the models.

`spec_json_schema()` is what `auditc schema` prints and what
`schemas/auditc-spec.schema.json` holds; editors use it through a
`# yaml-language-server: $schema=…` line. `spec_reference_markdown()` is
`docs/reference.md`. Both are generated from the pydantic models of `schemas`,
so neither can drift from what `auditc validate` accepts (tests compare the
committed files with freshly generated ones).
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
import textwrap
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas import KINDS, AnyResource, SpecModel

__all__ = [
    "SCHEMA_DIALECT",
    "embed_reference",
    "render_schema",
    "spec_json_schema",
    "spec_reference_markdown",
]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_REF = "#/$defs/"


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one audit spec document (any kind).

    The shorthands the models accept before validation (a string for a method
    input, a mapping for a one-step request/response adapter pipeline) are added,
    so valid specs also validate against the schema.
    """
    schema = copy.deepcopy(TypeAdapter(AnyResource).json_schema())
    defs = schema["$defs"]
    _add_field_docstrings(defs)
    inputs = defs["MethodSpec"]["properties"]["inputs"]
    inputs["additionalProperties"] = {
        "anyOf": [
            {"$ref": f"{_REF}MethodInput"},
            {
                "type": "string",
                "pattern": defs["MethodInput"]["properties"]["resource"]["pattern"],
                "description": "Shorthand for `{resource: <name>}`.",
            },
        ]
    }
    for name in ("request", "response"):
        prop = defs["Interface"]["properties"][name]
        items = prop.pop("items")
        prop.pop("type")
        prop["anyOf"] = [
            {"type": "array", "items": items},
            {
                "type": "object",
                "description": "Shorthand for one TransformJSON adapter with this template.",
            },
        ]
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "auditc audit spec",
        "description": "One YAML document of an auditc project: a resource chosen by its `kind`.",
        **schema,
    }


def _add_field_docstrings(defs: dict[str, Any]) -> None:
    """Describe each model's fields by their docstrings, where no `description` is given."""
    models = {m.__name__: m for m in _subclasses(SpecModel) if m.__module__.startswith("schemas.")}
    for name, definition in defs.items():
        model = models.get(name)
        if model is None:
            continue
        docstrings = _attribute_docstrings(model)
        aliases = {info.alias or field: field for field, info in model.model_fields.items()}
        for key, prop in definition.get("properties", {}).items():
            doc = docstrings.get(aliases.get(key, key))
            if doc is not None and "description" not in prop:
                prop["description"] = doc


def _subclasses(cls: type[SpecModel]) -> Iterator[type[SpecModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _attribute_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """`{field: docstring}`: the string literal under each annotated field, bases first.

    A field a subclass declares again keeps only the subclass's docstring, if any (as
    pydantic's `use_attribute_docstrings` reads them).
    """
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not issubclass(cls, BaseModel) or cls is BaseModel or cls is SpecModel:
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
        assert isinstance(body, ast.ClassDef)
        statements = body.body
        for i, statement in enumerate(statements):
            if not (
                isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
            ):
                continue
            after = statements[i + 1] if i + 1 < len(statements) else None
            field = statement.target.id
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[field] = inspect.cleandoc(after.value.value)
            else:
                docs.pop(field, None)
    return docs


def render_schema() -> str:
    """The JSON Schema as committed: sorted keys, two-space indents, final newline."""
    return json.dumps(spec_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def spec_reference_markdown() -> str:
    """A Markdown reference of every kind and field, in the order a reader needs them."""
    schema = spec_json_schema()
    defs: dict[str, Any] = schema["$defs"]
    order = _reading_order(defs)
    lines = [
        "# Spec reference",
        "",
        "<!-- Generated by `auditc schema --format markdown`; do not edit by hand. -->",
        "",
        "Every YAML document is one resource: `kind`, `name`, optional `documentation` and",
        "`labels`, and a kind-specific `spec`. Unknown fields are errors. Paths are relative",
        "to the YAML file that names them and may not leave the project root. The same",
        "rules as a JSON Schema: `schemas/auditc-spec.schema.json` (`auditc schema`).",
        "",
        "Kinds: " + ", ".join(f"[{k}](#{k.lower()})" for k in KINDS) + ".",
        "",
    ]
    for name in order:
        level = "##" if name in KINDS else "###"
        lines += _section(name, defs[name], level)
    return "\n".join(lines).rstrip() + "\n"


_BEGIN = "<!-- BEGIN spec reference"
_END = "<!-- END spec reference -->"


def embed_reference(readme: str) -> str:
    """`readme` with the spec reference between its BEGIN/END markers, one heading level down.

    The README carries the same reference as `docs/reference.md`, regenerated by
    `make readme`; a test checks it is current.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = readme.find(_BEGIN), readme.find(_END)
    if start < 0 or end < start:
        raise ValueError(f"the README needs the markers {_BEGIN!r} … and {_END!r}")
    start = readme.index("\n", start) + 1
    body = spec_reference_markdown().split("\n")
    # Drop the reference's own title and "generated" comment: the README section has both.
    body = [line for line in body[1:] if not line.startswith("<!-- Generated")]
    demoted: list[str] = []
    fenced = False
    for line in body:
        if line.startswith("```"):
            fenced = not fenced
        demoted.append("#" + line if line.startswith("#") and not fenced else line)
    return readme[:start] + "\n".join(demoted).strip("\n") + "\n" + readme[end:]


def _reading_order(defs: dict[str, Any]) -> list[str]:
    """Kinds first, each followed by the types it introduces (depth first)."""
    seen: list[str] = []

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.append(name)
        for ref in _refs(defs[name]):
            visit(ref)

    for kind in KINDS:
        visit(kind)
    seen += sorted(set(defs) - set(seen))
    return seen


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.append(ref[len(_REF) :])
        for key, value in node.items():
            if key != "discriminator":
                found += [r for r in _refs(value) if r not in found]
    elif isinstance(node, list):
        for value in node:
            found += [r for r in _refs(value) if r not in found]
    return found


def _section(name: str, definition: dict[str, Any], level: str) -> list[str]:
    lines = [f"{level} {name}", ""]
    if definition.get("description"):
        lines += [_one_line(definition["description"]), ""]
    properties: dict[str, Any] = definition.get("properties", {})
    if not properties:
        return lines
    required = set(definition.get("required", []))
    lines += ["| field | type | required / default | description |", "|---|---|---|---|"]
    for field_name, prop in properties.items():
        if field_name in required:
            default = "required"
        elif "default" in prop:
            default = f"`{json.dumps(prop['default'], ensure_ascii=False)}`"
        else:
            default = "optional"
        lines.append(
            f"| `{field_name}` | {_type(prop)} | {default} | {_cell(prop.get('description', ''))} |"
        )
    lines.append("")
    return lines


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        target = prop["$ref"][len(_REF) :]
        return f"[{target}](#{target.lower()})"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    for combinator in ("anyOf", "oneOf"):
        if combinator in prop:
            return " \\| ".join(_type(option) for option in prop[combinator])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object":
        values = prop.get("additionalProperties")
        if isinstance(values, dict) and values:
            return f"mapping of {_type(values)}"
        return "mapping"
    text = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
    rendered = text.get(str(kind), str(kind))
    return rendered + _constraints(prop)


def _constraints(prop: dict[str, Any]) -> str:
    parts = []
    for key, symbol in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in prop:
            parts.append(f"{symbol} {prop[key]}")
    if "pattern" in prop:
        parts.append(f"pattern `{_cell(prop['pattern'])}`")
    if "maxLength" in prop:
        parts.append(f"at most {prop['maxLength']} characters")
    return f" ({', '.join(parts)})" if parts else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|")
