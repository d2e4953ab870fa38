"""Writing a Python-function method's output as a Measurement: checked Parquet parts."""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas import (
    INDEX_COLUMN,
    REPLICATION_COLUMN,
    MethodError,
    MethodOutput,
    Store,
    arrow_schema,
)

__all__ = ["PART_ROWS", "MeasurementWriter"]

logger = logging.getLogger(__name__)

PART_ROWS = 131_072
"""Rows per Parquet part: big enough for few files, small enough to buffer in memory."""

_KEY_TYPES = {INDEX_COLUMN: pa.int64(), REPLICATION_COLUMN: pa.int32()}


class MeasurementWriter:
    """Checks tables against a method's declared output and writes them as parts.

    The first table fixes the schema when `output.columns` declares none; every later
    table must have the same columns. Instance-level output needs `_index_`, unique
    per (`_index_`, `_replication_`) over the whole output.
    """

    def __init__(self, method: str, store: Store, output: MethodOutput) -> None:
        self._where = f"Method/{method}"
        self._store = store
        self._output = output
        self._schema: pa.Schema | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._parts = 0
        self._rows = 0
        self._keys: list[pa.Table] = []

    def add(self, table: pa.Table) -> None:
        """Check one table of output and buffer it, writing a part when enough rows wait."""
        table = self._conform(table)
        if self._output.level == "instance":
            self._keys.append(table.select([c for c in _KEY_TYPES if c in table.column_names]))
        self._rows += table.num_rows
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= PART_ROWS:
            self._flush()

    def close(self) -> int:
        """Write what is left and return the number of rows.

        Raises:
            MethodError: no data and no declared columns, or duplicate instance keys.
        """
        if self._schema is None:
            if not self._output.columns:
                raise MethodError(
                    f"{self._where}: the function produced no data and spec.output.columns "
                    "declares none, so the Measurement has no schema"
                )
            self._schema = self._expected_schema(set())
        self._check_unique_keys()
        if self._pending or self._parts == 0:
            self._flush()
        return self._rows

    # ------------------------------------------------------------ checking

    def _conform(self, table: pa.Table) -> pa.Table:
        names = table.column_names
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise MethodError(f"{self._where}: output has duplicate columns: {', '.join(dupes)}")
        if self._output.level == "instance" and INDEX_COLUMN not in names:
            raise MethodError(
                f"{self._where}: an instance-level Measurement needs an '{INDEX_COLUMN}' "
                f"column (the output has: {', '.join(names)})"
            )
        if self._schema is None:
            self._schema = self._expected_schema(set(names)) if self._output.columns else None
            if self._schema is None:
                self._schema = _with_key_types(table.schema)
        self._check_names(names)
        table = table.select(self._schema.names)
        columns = [self._cast(table[f.name], f) for f in self._schema]
        return pa.Table.from_arrays(columns, schema=self._schema)

    def _expected_schema(self, names: set[str]) -> pa.Schema:
        keys = [
            pa.field(c, t, nullable=False)
            for c, t in _KEY_TYPES.items()
            if c in names or (c == INDEX_COLUMN and self._output.level == "instance")
        ]
        return pa.schema([*keys, *arrow_schema(dict(self._output.columns))])

    def _check_names(self, names: list[str]) -> None:
        assert self._schema is not None
        expected = self._schema.names
        missing = [n for n in expected if n not in names]
        extra = [n for n in names if n not in expected]
        if missing:
            raise MethodError(
                f"{self._where}: the output has no column {missing[0]!r} "
                f"(expected: {', '.join(expected)}; got: {', '.join(names)})"
            )
        if extra:
            what = (
                "spec.output.columns does not declare it"
                if self._output.columns
                else "the first output table had no such column"
            )
            raise MethodError(f"{self._where}: the output has column {extra[0]!r}, but {what}")

    def _cast(self, column: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
        if not field.nullable and column.null_count:
            raise MethodError(f"{self._where}: column {field.name!r} has null values")
        if column.type == field.type:
            return column
        try:
            return column.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise MethodError(
                f"{self._where}: column {field.name!r} is {column.type}, which cannot be "
                f"cast to the declared {field.type}: {exc}"
            ) from exc

    def _check_unique_keys(self) -> None:
        if not self._keys:
            return
        keys = pa.concat_tables(self._keys)
        names = keys.column_names
        counts = keys.group_by(names).aggregate([([], "count_all")])
        repeated = counts.filter(pc.greater(counts["count_all"], 1))
        if repeated.num_rows:
            first = repeated.slice(0, 1).to_pylist()[0]
            key = ", ".join(f"{n}={first[n]}" for n in names)
            raise MethodError(
                f"{self._where}: an instance-level Measurement has one row per "
                f"{' and '.join(names)}, but {key} appears {first['count_all']} times"
            )

    # ------------------------------------------------------------- writing

    def _flush(self) -> None:
        assert self._schema is not None
        table = pa.concat_tables(self._pending) if self._pending else self._schema.empty_table()
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        name = f"part-{self._parts:05d}.parquet"
        self._store.write_output(sink.getvalue().to_pybytes(), "", name)
        logger.debug("wrote %s (%d rows)", name, table.num_rows)
        self._parts += 1
        self._pending, self._pending_rows = [], 0


def _with_key_types(schema: pa.Schema) -> pa.Schema:
    """An undeclared output's schema, with `_index_`/`_replication_` normalised."""
    fields = [
        pa.field(f.name, _KEY_TYPES[f.name], nullable=False) if f.name in _KEY_TYPES else f
        for f in schema
    ]
    return pa.schema(fields)  # pandas metadata of the first table is dropped on purpose
