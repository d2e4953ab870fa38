"""Checking exported scores against a method's score specs.

Both sides use these rules: `analysis.score` checks each score as the notebook exports
it (so the failing cell is the one that exported it), and the method runner checks the
whole set again after the notebook ends, before it writes `scores.json`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas import (
    INDEX_COLUMN,
    InstanceArrays,
    MethodError,
    ScoreAggregate,
    ScoreSpec,
    ScoreValue,
)

from ._tables import as_table, describe_type

__all__ = [
    "INSTANCE_SCHEMA",
    "check_reproduces",
    "check_score",
    "check_scores",
    "instance_arrays",
    "instances_table",
]

INSTANCE_SCHEMA = pa.schema(
    [pa.field(INDEX_COLUMN, pa.int64(), nullable=False), pa.field("value", pa.float64())]
)
"""`instances/<score>.parquet`: one value per dataset row (plus the columns the score's
`aggregate` names), for intervals and paired comparisons."""


def check_score(
    method: str, specs: Iterable[ScoreSpec], name: str, value: Any, text: str | None = None
) -> ScoreValue:
    """One exported score, checked against its spec and combined with it.

    Args:
        method: the Method's name, for messages.
        specs: the method's declared score specs.
        name: the score's name.
        value: a real number (int, float, numpy scalar).
        text: a sentence about the value.

    Returns:
        The stored form of the score.

    Raises:
        MethodError: the name is not declared, or the value is not a finite number inside
            the spec's [minimum, maximum].
    """
    by_name = {spec.name: spec for spec in specs}
    spec = by_name.get(name)
    if spec is None:
        declared = ", ".join(sorted(by_name)) or "none"
        raise MethodError(
            f"Method/{method}: score {name!r} is not declared in spec.scores (declared: {declared})"
        )
    number = _as_float(method, name, value)
    _check_range(method, spec, number)
    return ScoreValue(
        name=spec.name,
        value=number,
        title=spec.title,
        summary=spec.summary,
        valence=spec.valence,
        primary=spec.primary,
        minimum=spec.minimum,
        maximum=spec.maximum,
        unit=spec.unit,
        format=spec.format,
        gate_min=spec.gate.min if spec.gate else None,
        gate_max=spec.gate.max if spec.gate else None,
        gate_confidence=spec.gate.confidence if spec.gate else None,
        text=text,
        aggregate=spec.aggregate,
    )


def _as_float(method: str, name: str, value: Any) -> float:
    # numpy scalars are Reals; 0-d arrays and pyarrow scalars are unwrapped first.
    if not isinstance(value, Real):
        unwrap = getattr(value, "as_py", None) or getattr(value, "item", None)
        if callable(unwrap):
            value = unwrap()
    # bool is a Real too, but True as a score is almost surely a mistake.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise MethodError(
            f"Method/{method}: score {name!r} must be a real number, got {describe_type(value)}"
        )
    number = float(value)
    if not math.isfinite(number):
        raise MethodError(f"Method/{method}: score {name!r} is {number}; expected a finite number")
    return number


def _check_range(method: str, spec: ScoreSpec, number: float) -> None:
    low, high = spec.minimum, spec.maximum
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise MethodError(
            f"Method/{method}: score {spec.name!r} is {number}, outside its declared range {bounds}"
        )


def check_scores(
    method: str, specs: list[ScoreSpec], exported: list[ScoreValue]
) -> list[ScoreValue]:
    """The complete set of a run's scores, checked and in declaration order.

    Raises:
        MethodError: a score was exported twice, the primary score is missing, or a
            score with a gate is missing (a gate must never pass by default).
    """
    names = [score.name for score in exported]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MethodError(f"Method/{method}: scores exported more than once: {', '.join(twice)}")
    for score in exported:
        check_score(method, specs, score.name, score.value, score.text)
    present = set(names)
    missing_primary = [s.name for s in specs if s.primary and s.name not in present]
    if missing_primary:
        raise MethodError(
            f"Method/{method}: the primary score {missing_primary[0]!r} was not exported "
            "(call analysis.score in the notebook)"
        )
    missing_gated = [s.name for s in specs if s.gate is not None and s.name not in present]
    if missing_gated:
        raise MethodError(
            f"Method/{method}: scores with a gate were not exported: {', '.join(missing_gated)}"
        )
    unjudged = [s.name for s in exported if s.gate_confidence is not None and s.interval is None]
    if unjudged:
        raise MethodError(
            f"Method/{method}: scores with a confidence gate have no interval: "
            f"{', '.join(unjudged)} (export them with instances=… or interval=(low, high))"
        )
    order = {spec.name: i for i, spec in enumerate(specs)}
    return sorted(exported, key=lambda score: order[score.name])


def instances_table(
    method: str, name: str, instances: Any, aggregate: ScoreAggregate | None = None
) -> pa.Table:
    """Per-instance values of a score: `_index_` (int64), `value` (float64) and the
    columns its `aggregate` names (a group column as string, a denominator as float64).

    Args:
        method: the Method's name, for messages.
        name: the score's name, for messages.
        instances: a mapping `{_index_: value}` (mean and ratio-free scores only), or a
            table (pyarrow, pandas, polars) with columns `_index_`, `value` and the
            aggregate's columns.
        aggregate: how the score aggregates the values (default: their mean).

    Raises:
        MethodError: the data has the wrong shape, a value is missing or not finite, or
            an `_index_` appears twice.
    """
    where = f"Method/{method}: instances of score {name!r}"
    extra = aggregate.columns if aggregate else []
    if isinstance(instances, Mapping):
        if extra:
            raise MethodError(
                f"{where}: the score aggregates as {aggregate.describe() if aggregate else ''}, "
                f"so pass a table with columns '{INDEX_COLUMN}', 'value' and "
                f"{', '.join(repr(c) for c in extra)}"
            )
        try:
            table = pa.table(
                {
                    INDEX_COLUMN: pa.array(list(instances.keys()), pa.int64()),
                    "value": pa.array([float(v) for v in instances.values()], pa.float64()),
                }
            )
        except (TypeError, ValueError, pa.ArrowException) as exc:
            raise MethodError(f"{where}: expected {{_index_: number}}: {exc}") from exc
    else:
        found = as_table(instances)
        if found is None:
            raise MethodError(
                f"{where}: expected a mapping {{_index_: value}} or a table with columns "
                f"'{INDEX_COLUMN}' and 'value', got {describe_type(instances)}"
            )
        table = _conform_instances(where, found, aggregate)
    _check_instance_values(where, table, aggregate)
    return table.cast(_instance_schema(aggregate))


def _instance_schema(aggregate: ScoreAggregate | None) -> pa.Schema:
    fields = list(INSTANCE_SCHEMA)
    if aggregate is not None and aggregate.group is not None:
        fields.append(pa.field(aggregate.group, pa.string()))
    if aggregate is not None and aggregate.denominator is not None:
        fields.append(pa.field(aggregate.denominator, pa.float64()))
    return pa.schema(fields)


def _conform_instances(where: str, table: pa.Table, aggregate: ScoreAggregate | None) -> pa.Table:
    schema = _instance_schema(aggregate)
    missing = [c for c in schema.names if c not in table.column_names]
    if missing:
        raise MethodError(
            f"{where}: the table has no column {missing[0]!r} "
            f"(it has: {', '.join(table.column_names)})"
        )
    try:
        return pa.table({f.name: table[f.name].cast(f.type) for f in schema}, schema=schema)
    except pa.ArrowException as exc:
        raise MethodError(
            f"{where}: cannot read the columns as {', '.join(f'{f.name} {f.type}' for f in schema)}: "
            f"{exc}"
        ) from exc


def _check_instance_values(where: str, table: pa.Table, aggregate: ScoreAggregate | None) -> None:
    required = [INDEX_COLUMN, "value", *(aggregate.columns if aggregate else [])]
    nulls = [c for c in required if table[c].null_count]
    if nulls:
        raise MethodError(f"{where}: null values in column {nulls[0]!r}; every instance needs one")
    for column in ("value", aggregate.denominator if aggregate else None):
        if column is None:
            continue
        finite = pc.is_finite(table[column])
        if not pc.all(finite).as_py() and table.num_rows:
            bad = pc.filter(table[INDEX_COLUMN], pc.invert(finite))[0].as_py()
            raise MethodError(f"{where}: the {column} of _index_ {bad} is not a finite number")
    if pc.count_distinct(table[INDEX_COLUMN]).as_py() != table.num_rows:
        counts = pc.value_counts(table[INDEX_COLUMN])
        dupes = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        raise MethodError(f"{where}: _index_ {dupes[0].as_py()} appears more than once")


def instance_arrays(table: pa.Table, aggregate: ScoreAggregate | None) -> InstanceArrays:
    """Per-instance values (as `instances_table` returns them) ready to aggregate."""
    return InstanceArrays(
        aggregate,
        table["value"].to_numpy(),
        table[aggregate.denominator].to_numpy() if aggregate and aggregate.denominator else None,
        table[aggregate.group].to_pylist() if aggregate and aggregate.group else None,
    )


def check_reproduces(method: str, name: str, value: float, arrays: InstanceArrays) -> None:
    """The per-instance values must aggregate to the exported value.

    Otherwise an interval or a paired comparison computed from them would describe
    another number than the one reported.

    Raises:
        MethodError: they aggregate to something else (or to nothing).
    """
    recomputed = arrays.score() if len(arrays) else math.nan
    if math.isclose(recomputed, value, rel_tol=1e-6, abs_tol=1e-9):
        return
    how = arrays.aggregate.describe()
    hint = (
        " (declare `aggregate` on the score spec if it is not their mean)"
        if arrays.aggregate.kind == "mean"
        else ""
    )
    raise MethodError(
        f"Method/{method}: score {name!r} is {value!r}, but {how} of its {len(arrays)} "
        f"per-instance values is {recomputed!r}: the instances must reproduce the score{hint}"
    )
