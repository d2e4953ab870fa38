"""Per-group breakdowns: which Measurements are small tables of values by group.

A dataset-level Measurement such as "false-positive rate per identity term" has one
row per group: a text column naming the group and numeric columns of values,
sometimes with interval bounds (`fpr_low`/`fpr_high`, or `ci_low`/`ci_high`). The
report draws those as grouped bar charts across systems. Instance-level
Measurements (with `_index_`) and large tables are not breakdowns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from schemas import RESERVED_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MAX_GROUPS", "MAX_VALUE_COLUMNS", "GroupTable", "group_table"]

MAX_GROUPS = 60
"""More rows than this is a table to download, not a chart to look at."""
MAX_VALUE_COLUMNS = 4
LOW_SUFFIXES = ("_low", "_lo", "_lower", "_ci_low")
HIGH_SUFFIXES = ("_high", "_hi", "_upper", "_ci_high")
GENERIC_BOUNDS = (("ci_low", "ci_high"), ("low", "high"), ("lower", "upper"))


@dataclass(frozen=True)
class GroupTable:
    """A Measurement's values by group."""

    group_column: str
    groups: list[str]
    columns: list[str]
    """The value columns, in table order."""
    values: dict[str, dict[str, float]]
    """Column → group → value."""
    low: dict[str, dict[str, float]] = field(default_factory=dict)
    """Column → group → lower interval bound, for the columns that have one."""
    high: dict[str, dict[str, float]] = field(default_factory=dict)


def group_table(table: pa.Table) -> GroupTable | None:
    """Read a Measurement table as values by group, or None when it is not one.

    It is one when it has no `_index_`, at most `MAX_GROUPS` rows, a text column (the
    first one names the groups, and its values are unique) and numeric columns.
    Float columns are preferred over integer ones (counts), and interval bounds are
    paired with their value column instead of being charted themselves.
    """
    import pyarrow.types as pat

    names = [n for n in table.column_names if n not in RESERVED_COLUMNS]
    if "_index_" in table.column_names or not 0 < table.num_rows <= MAX_GROUPS:
        return None
    text = [n for n in names if _is_text(table.schema.field(n).type)]
    if not text:
        return None
    groups = [str(g) for g in table.column(text[0]).to_pylist()]
    if len(set(groups)) != len(groups):
        return None
    numeric = [n for n in names if _is_number(table.schema.field(n).type)]
    floats = [n for n in numeric if pat.is_floating(table.schema.field(n).type)]
    bounds = _bounds(floats or numeric)
    values = [n for n in (floats or numeric) if n not in _bound_names(bounds)][:MAX_VALUE_COLUMNS]
    if not values:
        return None
    column = {n: _as_floats(table, n, groups) for n in {*values, *_bound_names(bounds)}}
    return GroupTable(
        text[0],
        groups,
        values,
        {v: column[v] for v in values},
        {v: column[bounds[v][0]] for v in values if v in bounds},
        {v: column[bounds[v][1]] for v in values if v in bounds},
    )


def _bounds(candidates: list[str]) -> dict[str, tuple[str, str]]:
    """Value column → its (low, high) bound columns."""
    present = set(candidates)
    found: dict[str, tuple[str, str]] = {}
    for name in candidates:
        for low, high in zip(LOW_SUFFIXES, HIGH_SUFFIXES, strict=True):
            if name + low in present and name + high in present:
                found[name] = (name + low, name + high)
                break
    taken = _bound_names(found)
    plain = [n for n in candidates if n not in taken and n not in found]
    for low, high in GENERIC_BOUNDS:
        if low in present and high in present:
            # Generic bounds belong to the first value column that has none of its own.
            owner = next((n for n in plain if n not in (low, high)), None)
            if owner is not None:
                found[owner] = (low, high)
            break
    return found


def _bound_names(bounds: dict[str, tuple[str, str]]) -> set[str]:
    return {name for pair in bounds.values() for name in pair}


def _as_floats(table: pa.Table, name: str, groups: list[str]) -> dict[str, float]:
    return {
        g: float(v)
        for g, v in zip(groups, table.column(name).to_pylist(), strict=True)
        if v is not None
    }


def _is_text(dtype: pa.DataType) -> bool:
    import pyarrow.types as pat

    if pat.is_dictionary(dtype):
        return _is_text(dtype.value_type)
    return bool(pat.is_string(dtype) or pat.is_large_string(dtype))


def _is_number(dtype: pa.DataType) -> bool:
    import pyarrow.types as pat

    return bool(pat.is_integer(dtype) or pat.is_floating(dtype))
