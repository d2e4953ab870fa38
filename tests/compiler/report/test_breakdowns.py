"""Which Measurement tables are per-group breakdowns, and how their columns are read."""

from __future__ import annotations

import pyarrow as pa

from compiler.report._breakdowns import MAX_GROUPS, group_table


def test_values_by_group_with_interval_columns() -> None:
    table = pa.table(
        {
            "group": ["a", "b"],
            "fpr": [0.1, 0.2],
            "fpr_low": [0.05, 0.1],
            "fpr_high": [0.2, 0.3],
            "n": pa.array([10, 20], pa.int64()),
        }
    )

    found = group_table(table)

    assert found is not None
    assert (found.group_column, found.groups, found.columns) == ("group", ["a", "b"], ["fpr"])
    assert found.values["fpr"] == {"a": 0.1, "b": 0.2}
    assert found.low["fpr"] == {"a": 0.05, "b": 0.1}
    assert found.high["fpr"] == {"a": 0.2, "b": 0.3}


def test_generic_ci_columns_belong_to_the_first_value_column() -> None:
    table = pa.table(
        {"term": ["x", "y"], "rate": [0.5, 0.6], "ci_low": [0.4, 0.5], "ci_high": [0.6, 0.7]}
    )

    found = group_table(table)

    assert found is not None and found.columns == ["rate"]
    assert found.low["rate"] == {"x": 0.4, "y": 0.5}


def test_integer_columns_are_charted_when_there_are_no_floats() -> None:
    found = group_table(pa.table({"label": ["p", "q"], "count": [3, 4]}))

    assert found is not None and found.values == {"count": {"p": 3.0, "q": 4.0}}


def test_tables_that_are_not_breakdowns() -> None:
    instance_level = pa.table({"_index_": [0, 1], "group": ["a", "b"], "v": [0.1, 0.2]})
    no_text = pa.table({"v": [0.1, 0.2]})
    repeated_groups = pa.table({"group": ["a", "a"], "v": [0.1, 0.2]})
    too_long = pa.table(
        {"group": [str(i) for i in range(MAX_GROUPS + 1)], "v": [0.0] * (MAX_GROUPS + 1)}
    )
    text_only = pa.table({"group": ["a"], "note": ["b"]})

    for table in (instance_level, no_text, repeated_groups, too_long, text_only):
        assert group_table(table) is None, table.column_names
