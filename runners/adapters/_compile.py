"""Compile adapter pipelines (`schemas.Adapter`) into plain Python closures.

The evaluation client applies a service's adapters to every row and response, so
the templates and JSONPaths are parsed once here and each adapter becomes a small
closure; applying a pipeline costs a few dictionary operations per row.

The JSONPath subset is the one `schemas._adapters` documents: `$`, `$.a.b`, `$.a[0]`,
`$.a[-1]`, `$["key with spaces"]`. A template string starting with `$` is a path
that must match exactly one value; `$$` at the start escapes a literal `$`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from schemas import (
    Adapter,
    Drop,
    ExplodeCollections,
    FlattenHierarchy,
    Map,
    Rename,
    RunnerError,
    Select,
    TransformJSON,
)

__all__ = ["AdapterError", "Pipeline", "compile_path", "compile_pipeline"]

JSON = Any
Row = dict[str, Any]
OneToOne = Callable[[Row], Row]
OneToMany = Callable[[Row], list[Row]]

_SEGMENT = re.compile(
    r"""\.(?P<name>[^.\[\]"']+)"""
    r"""|\[\s*(?P<int>-?\d+)\s*\]"""
    r"""|\[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]"""
    r"""|\[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]"""
)
_ESCAPE = re.compile(r"\\(.)")
_MAX_KEYS_SHOWN = 8


class AdapterError(RunnerError):
    """An adapter could not be compiled, or could not be applied to a row or response.

    The evaluation client records a row that fails this way with `_error_type_ = "adapter"`.
    """

    code = "adapter"


# ------------------------------------------------------------------ JSONPath


def _parse_path(path: str, where: str) -> tuple[str | int, ...]:
    """Split a path of the supported subset into keys (str) and list positions (int)."""
    if not path.startswith("$"):
        raise AdapterError(f"{where}: {path!r} is not a JSONPath (it must start with '$')")
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        match = _SEGMENT.match(path, pos)
        if match is None:
            raise AdapterError(
                f"{where}: cannot parse JSONPath {path!r} at character {pos + 1} "
                f'({path[pos:]!r}); supported: $.a.b, $.a[0], $.a[-1], $["a key"]'
            )
        if match["name"] is not None:
            steps.append(match["name"])
        elif match["int"] is not None:
            steps.append(int(match["int"]))
        else:
            quoted = match["dq"] if match["dq"] is not None else match["sq"]
            steps.append(_ESCAPE.sub(r"\1", quoted))
        pos = match.end()
    return tuple(steps)


def _render_path(steps: Sequence[str | int]) -> str:
    text = "$"
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", step):
            text += f".{step}"
        else:
            text += f'["{step}"]'
    return text


def _describe(value: JSON) -> str:
    if isinstance(value, dict):
        keys = list(value)
        shown = ", ".join(repr(k) for k in keys[:_MAX_KEYS_SHOWN])
        more = ", …" if len(keys) > _MAX_KEYS_SHOWN else ""
        return f"an object with keys {shown}{more}" if keys else "an empty object"
    if isinstance(value, list):
        return (
            f"a list of {len(value)} element{'s' if len(value) != 1 else ''}"
            if value
            else "an empty list"
        )
    return f"a {type(value).__name__} ({str(value)[:30]!r})" if value is not None else "null"


def _miss(path: str, steps: tuple[str | int, ...], depth: int, value: JSON, where: str) -> str:
    step = steps[depth]
    at = _render_path(steps[:depth])
    wanted = f"key {step!r}" if isinstance(step, str) else f"position {step}"
    return f"{where}: path {path!r} matched nothing: {at} is {_describe(value)}, with no {wanted}"


def compile_path(path: str, *, where: str = "path") -> Callable[[JSON], JSON]:
    """Compile a JSONPath of the supported subset into a getter.

    Args:
        path: `$`, `$.a.b`, `$.a[0]`, `$.a[-1]` or `$["key with spaces"]`.
        where: Names the path's place in the spec, for error messages.

    Returns:
        A function of a JSON value that returns the one value the path matches.

    Raises:
        AdapterError: the path cannot be parsed (here) or matches nothing (when applied;
            the message names the path and what was found instead).
    """
    steps = _parse_path(path, where)
    if not steps:
        return _identity
    if len(steps) == 1 and isinstance(steps[0], str):
        key = steps[0]

        def get_key(obj: JSON) -> JSON:
            # The common case (`$.text`) in one dictionary lookup.
            if type(obj) is dict and key in obj:
                return obj[key]
            raise AdapterError(_miss(path, steps, 0, obj, where))

        return get_key

    def get(obj: JSON) -> JSON:
        current = obj
        for depth, step in enumerate(steps):
            if isinstance(step, str):
                if isinstance(current, dict) and step in current:
                    current = current[step]
                    continue
            elif isinstance(current, list) and -len(current) <= step < len(current):
                current = current[step]
                continue
            raise AdapterError(_miss(path, steps, depth, current, where))
        return current

    return get


def _identity(obj: JSON) -> JSON:
    return obj


# ------------------------------------------------------------------ adapters


def _constant(value: JSON) -> Callable[[JSON], JSON]:
    # Constants are shared between output rows; no adapter mutates its input, so this is safe.
    return lambda _obj: value


def _compile_template(value: JSON, where: str) -> tuple[bool, Callable[[JSON], JSON]]:
    """Compile a template value; returns (is_constant, builder)."""
    if isinstance(value, str):
        if value.startswith("$$"):
            return True, _constant(value[1:])
        if value.startswith("$"):
            return False, compile_path(value, where=where)
        return True, _constant(value)
    if isinstance(value, dict):
        items = [(k, _compile_template(v, f"{where}.{k}")) for k, v in value.items()]
        if all(const for _, (const, _) in items):
            return True, _constant({k: fn(None) for k, (_, fn) in items})
        builders = tuple((k, fn) for k, (_, fn) in items)
        return False, lambda obj: {k: fn(obj) for k, fn in builders}
    if isinstance(value, list):
        elements = [_compile_template(v, f"{where}.{i}") for i, v in enumerate(value)]
        if all(const for const, _ in elements):
            return True, _constant([fn(None) for _, fn in elements])
        fns = tuple(fn for _, fn in elements)
        return False, lambda obj: [fn(obj) for fn in fns]
    return True, _constant(value)


def _transform_json(adapter: TransformJSON, where: str) -> OneToOne:
    _, build = _compile_template(adapter.template, f"{where}.template")
    return build


def _explode(adapter: ExplodeCollections, where: str) -> OneToMany:
    names = tuple(adapter.collections)
    drop = frozenset(names)
    index = adapter.index

    def explode(obj: Row) -> list[Row]:
        lists: list[list[Any]] = []
        for name in names:
            value = obj.get(name)
            if not isinstance(value, list):
                found = "missing" if name not in obj else _describe(value)
                raise AdapterError(f"{where}: field {name!r} is {found}, expected a list")
            lists.append(value)
        lengths = {len(v) for v in lists}
        if len(lengths) > 1:
            sizes = ", ".join(f"{n}={len(v)}" for n, v in zip(names, lists, strict=True))
            raise AdapterError(f"{where}: collections have different lengths ({sizes})")
        base = {k: v for k, v in obj.items() if k not in drop}
        rows: list[Row] = []
        for position, values in enumerate(zip(*lists, strict=True)):
            row = dict(base)
            row.update(zip(names, values, strict=True))
            if index is not None:
                row[index] = position
            rows.append(row)
        return rows

    return explode


def _flatten(adapter: FlattenHierarchy, where: str) -> OneToOne:
    fields = frozenset(adapter.fields) if adapter.fields is not None else None
    depth, prefix, sep = adapter.depth, adapter.add_prefix, adapter.separator

    def into(out: Row, obj: Row, parent: str, level: int) -> None:
        for key, value in obj.items():
            name = f"{parent}{sep}{key}" if prefix else key
            if isinstance(value, dict) and value and (depth is None or level < depth):
                into(out, value, name, level + 1)
            else:
                out[name] = value

    def flatten(obj: Row) -> Row:
        out: Row = {}
        for key, value in obj.items():
            if isinstance(value, dict) and value and (fields is None or key in fields):
                into(out, value, key, 1)
            else:
                out[key] = value
        return out

    return flatten


def _rename(adapter: Rename, where: str) -> OneToOne:
    mapping = dict(adapter.fields)
    return lambda obj: {mapping.get(k, k): v for k, v in obj.items()}


def _drop(adapter: Drop, where: str) -> OneToOne:
    drop = frozenset(adapter.fields)
    return lambda obj: {k: v for k, v in obj.items() if k not in drop}


def _select(adapter: Select, where: str) -> OneToOne:
    keep = tuple(adapter.fields)
    return lambda obj: {k: obj[k] for k in keep if k in obj}


def _map(adapter: Map, where: str) -> OneToOne:
    names = tuple(adapter.collections)
    multi, inner = _stage(adapter.adapter, f"{where}.adapter")

    def apply(obj: Row) -> Row:
        out = dict(obj)
        for name in names:
            value = obj.get(name)
            if not isinstance(value, list):
                found = "missing" if name not in obj else _describe(value)
                raise AdapterError(f"{where}: field {name!r} is {found}, expected a list")
            mapped: list[Row] = []
            for position, element in enumerate(value):
                if not isinstance(element, dict):
                    raise AdapterError(
                        f"{where}: {name}[{position}] is {_describe(element)}, expected an object"
                    )
                if multi:
                    mapped.extend(inner(element))
                else:
                    mapped.append(inner(element))
            out[name] = mapped
        return out

    return apply


_ONE_TO_ONE: dict[type[Any], Callable[[Any, str], OneToOne]] = {
    TransformJSON: _transform_json,
    FlattenHierarchy: _flatten,
    Rename: _rename,
    Drop: _drop,
    Select: _select,
    Map: _map,
}


def _stage(adapter: Adapter, where: str) -> tuple[bool, Callable[[Row], Any]]:
    """(is_one_to_many, function) for one adapter."""
    if isinstance(adapter, ExplodeCollections):
        return True, _explode(adapter, where)
    return False, _ONE_TO_ONE[type(adapter)](adapter, where)


# ------------------------------------------------------------------ pipelines


class Pipeline:
    """A compiled adapter pipeline.

    Attributes:
        apply: object → list of objects (the general form).
        one: object → exactly one object; raises AdapterError when the pipeline
            yields none or several (the evaluation client uses this per row).
        one_to_one: whether every adapter maps one object to one object.
    """

    __slots__ = ("apply", "name", "one", "one_to_one")

    def __init__(self, stages: list[tuple[bool, Callable[[Row], Any]]], name: str) -> None:
        self.name = name
        self.one_to_one = not any(multi for multi, _ in stages)
        if self.one_to_one:
            self.one = _checked(_compose([fn for _, fn in stages]), name)
            one = self.one
            self.apply: OneToMany = lambda obj: [one(obj)]
        else:
            self.apply = _checked(_chain(stages), name)
            self.one = _exactly_one(self.apply, name)

    def __call__(self, obj: Row) -> list[Row]:
        """Apply the pipeline: one input object → the list of output objects."""
        return self.apply(obj)


def _compose(fns: list[OneToOne]) -> OneToOne:
    if not fns:
        return _identity
    if len(fns) == 1:
        return fns[0]
    chain = tuple(fns)

    def composed(obj: Row) -> Row:
        for fn in chain:
            obj = fn(obj)
        return obj

    return composed


def _chain(stages: list[tuple[bool, Callable[[Row], Any]]]) -> OneToMany:
    def run(obj: Row) -> list[Row]:
        rows = [obj]
        for multi, fn in stages:
            rows = [out for row in rows for out in fn(row)] if multi else [fn(r) for r in rows]
        return rows

    return run


def _checked(fn: Callable[[Row], Any], name: str) -> Callable[[Row], Any]:
    """Reject inputs that are not JSON objects (adapters work on objects)."""

    def checked(obj: Row) -> Any:
        if type(obj) is not dict:
            raise AdapterError(f"{name}: expected a JSON object, got {_describe(obj)}")
        return fn(obj)

    return checked


def _exactly_one(fn: OneToMany, name: str) -> OneToOne:
    def one(obj: Row) -> Row:
        rows = fn(obj)
        if len(rows) != 1:
            raise AdapterError(f"{name}: produced {len(rows)} objects, expected exactly one")
        return rows[0]

    return one


def compile_pipeline(adapters: Sequence[Adapter], *, name: str = "adapters") -> Pipeline:
    """Compile adapters, in order, into one pipeline (templates and paths parsed once).

    Args:
        adapters: The pipeline, e.g. `service.spec.interface.request`.
        name: Names the pipeline in error messages (`interface.request`).

    Returns:
        A `Pipeline`: call it with a JSON object to get the list of output objects,
        or use `.one` when exactly one output is expected.

    Raises:
        AdapterError: a template holds a JSONPath that cannot be parsed.

    Example:
        >>> from schemas import Rename
        >>> compile_pipeline([Rename(kind="Rename", fields={"a": "b"})]).one({"a": 1})
        {'b': 1}
    """
    stages = [_stage(adapter, f"{name}.{i} ({adapter.kind})") for i, adapter in enumerate(adapters)]
    return Pipeline(stages, name)
