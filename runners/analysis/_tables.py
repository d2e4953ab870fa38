"""Turning what user code returns (Arrow, pandas, polars) into pyarrow Tables."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["as_table", "describe_type"]


def as_table(obj: Any) -> pa.Table | None:
    """`obj` as a pyarrow Table when it is tabular data, else None.

    Accepts a pyarrow Table or RecordBatch, anything with `to_arrow()` (polars), and a
    pandas DataFrame (its index is dropped: `_index_` must be a column).
    """
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    if type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame":
        return pa.Table.from_pandas(obj, preserve_index=False)
    to_arrow = getattr(obj, "to_arrow", None)
    if callable(to_arrow):
        result = to_arrow()
        if isinstance(result, pa.Table | pa.RecordBatch):
            return as_table(result)
    return None


def describe_type(obj: Any) -> str:
    """A short name of an object's type for error messages (`pandas.Series`, `int`)."""
    kind = type(obj)
    module = kind.__module__.split(".")[0]
    return kind.__name__ if module == "builtins" else f"{module}.{kind.__name__}"
