"""Arrow schemas of datasets and outputs, built from declared column types.

pyarrow is imported lazily so that importing `schemas` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._store_format import ERROR_COLUMN, ERROR_TYPE_COLUMN, INDEX_COLUMN, REPLICATION_COLUMN

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["arrow_schema", "arrow_type", "dataset_schema", "evaluation_output_schema"]


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type for a declared type name (`int64`, `list<string>`, `timestamp[us]`)."""
    import pyarrow as pa

    if name.startswith("list<") and name.endswith(">"):
        return pa.list_(arrow_type(name[5:-1]))
    if name.startswith("timestamp[") and name.endswith("]"):
        return pa.timestamp(name[10:-1])
    if name == "bool":  # pyarrow spells the factory `bool_`
        return pa.bool_()
    factory = getattr(pa, name, None)
    if factory is None:
        raise ValueError(f"unknown Arrow type {name!r}")
    return factory()


def arrow_schema(columns: dict[str, str]) -> pa.Schema:
    """An Arrow schema with the declared columns, in declaration order."""
    import pyarrow as pa

    return pa.schema([pa.field(n, arrow_type(t)) for n, t in columns.items()])


def dataset_schema(columns: dict[str, str]) -> pa.Schema:
    """A stored Dataset: `_index_` first, then the declared columns."""
    import pyarrow as pa

    return pa.schema([pa.field(INDEX_COLUMN, pa.int64(), nullable=False), *arrow_schema(columns)])


def evaluation_output_schema(output_columns: dict[str, str]) -> pa.Schema:
    """A stored Evaluation: `_index_`, `_replication_`, the output columns, then the error columns."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(INDEX_COLUMN, pa.int64(), nullable=False),
            pa.field(REPLICATION_COLUMN, pa.int32(), nullable=False),
            *arrow_schema(output_columns),
            pa.field(ERROR_COLUMN, pa.string()),
            pa.field(ERROR_TYPE_COLUMN, pa.string()),
        ]
    )
