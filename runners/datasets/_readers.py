"""Reading one data file as record batches of exactly the declared columns and types.

Arrow's readers do the work in batches (the file is never held as Python objects).
Their errors name neither the line nor the column, so when one fails the file is
scanned again row by row, in Python, to say where: that costs time only on failure.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from schemas import DatasetError

__all__ = ["FileFormat", "read_batches", "sniff_format"]

FileFormat = Literal["jsonl", "csv", "parquet", "arrow", "inspect"]

BLOCK_SIZE = 8 << 20
"""Bytes per read block; a JSON line or CSV row must fit in one."""

_SUFFIXES: dict[str, FileFormat] = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".eval": "inspect",
}
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def sniff_format(path: Path, declared: FileFormat | None) -> FileFormat:
    """The file's format: as declared, else from its extension.

    Raises:
        DatasetError: no format is declared and the extension is not known.
    """
    if declared is not None:
        return declared
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise DatasetError(
            f"{path}: cannot tell the format from the extension {path.suffix!r} "
            f"(known: {', '.join(sorted(_SUFFIXES))}); set spec.file.format"
        )
    return found


def read_batches(path: Path, fmt: FileFormat, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Record batches of `path` with exactly `schema`'s columns, cast to its types.

    Raises:
        DatasetError: the file is missing or unreadable, lacks a declared column, or a
            row does not fit; the message names the file, the line or row, and the column.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: no such data file")
    readers = {
        "jsonl": _read_jsonl,
        "csv": _read_csv,
        "parquet": _read_arrow_file,
        "inspect": _read_inspect_log,
    }
    reader = readers.get(fmt, _read_arrow_file)
    yield from reader(path, fmt, schema)


# ----------------------------------------------------------------- JSON Lines


def _read_jsonl(path: Path, fmt: FileFormat, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        reader = pajson.open_json(
            path, read_options=pajson.ReadOptions(block_size=BLOCK_SIZE), parse_options=options
        )
        for batch in reader:
            yield batch.select(schema.names)
    except _ARROW_ERRORS as exc:
        raise _locate_jsonl_error(path, schema, exc) from exc


def _locate_jsonl_error(path: Path, schema: pa.Schema, exc: Exception) -> DatasetError:
    row = 0
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number} (row {row})"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as bad:
                    return DatasetError(
                        f"{where}: not valid JSON: {bad.msg} at character {bad.pos}"
                    )
                if not isinstance(record, dict):
                    return DatasetError(
                        f"{where}: expected a JSON object, found {_json_kind(record)}"
                    )
                for field in schema:
                    problem = _value_problem(record.get(field.name), field.type)
                    if problem:
                        return DatasetError(f"{where}: column {field.name!r}: {problem}")
                row += 1
    except UnicodeDecodeError as bad:
        return DatasetError(f"{path}: not UTF-8 text ({bad.reason} at byte {bad.start})")
    if row == 0:
        return DatasetError(f"{path}: has no rows")
    return DatasetError(f"{path}: cannot read as JSON Lines with the declared columns: {exc}")


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _value_problem(value: Any, type_: pa.DataType) -> str | None:
    """Why a JSON value does not fit an Arrow type, or None when it does (null always does)."""
    if value is None:
        return None
    if isinstance(value, bool) and not pa.types.is_boolean(type_):
        return f"{value!r} is a boolean, expected {type_}"
    try:
        pa.array([value], type=type_)
    except (*_ARROW_ERRORS, TypeError, ValueError, OverflowError):
        shown = json.dumps(value)
        shown = shown if len(shown) <= 50 else shown[:49] + "…"
        return f"{shown} is not a valid {type_}"
    return None


# ------------------------------------------------------------------------ CSV


def _read_csv(path: Path, fmt: FileFormat, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    _check_csv_header(path, schema)
    convert = pacsv.ConvertOptions(
        column_types=schema, include_columns=schema.names, strings_can_be_null=False
    )
    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE), convert_options=convert
        )
        for batch in reader:
            yield batch.select(schema.names)
    except _ARROW_ERRORS as exc:
        raise _locate_csv_error(path, schema, exc) from exc


def _check_csv_header(path: Path, schema: pa.Schema) -> None:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
    except UnicodeDecodeError as bad:
        raise DatasetError(f"{path}: not UTF-8 text ({bad.reason} at byte {bad.start})") from bad
    missing = [name for name in schema.names if name not in header]
    if missing:
        raise DatasetError(
            f"{path}:1: the header has no column {missing[0]!r} "
            f"(it has: {', '.join(header) or 'nothing'})"
        )


def _locate_csv_error(path: Path, schema: pa.Schema, exc: Exception) -> DatasetError:
    nulls = set(pacsv.ConvertOptions().null_values)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for row, record in enumerate(reader):
            where = f"{path}:{reader.line_num} (row {row})"
            for field in schema:
                text = record.get(field.name)
                if text is None:
                    return DatasetError(f"{where}: the row has fewer fields than the header")
                if pa.types.is_string(field.type) or text in nulls:
                    continue
                try:
                    pa.array([text]).cast(field.type)
                except (*_ARROW_ERRORS, ValueError):
                    return DatasetError(
                        f"{where}: column {field.name!r}: {text[:50]!r} is not a valid {field.type}"
                    )
    return DatasetError(f"{path}: cannot read as CSV with the declared columns: {exc}")


# ------------------------------------------------------------- Parquet, Arrow


def _read_inspect_log(path: Path, fmt: FileFormat, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    from runners.imports import inspect_table

    table = inspect_table(path)
    yield from _select_declared(path, table.column_names, table.to_batches(), schema)


def _read_arrow_file(path: Path, fmt: FileFormat, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    names, batches = _open_arrow_source(path, fmt)
    yield from _select_declared(path, names, batches, schema)


def _select_declared(
    path: Path, names: list[str], batches: Iterable[pa.RecordBatch], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """The declared columns of each batch, cast to their declared types."""
    missing = [name for name in schema.names if name not in names]
    if missing:
        raise DatasetError(f"{path}: no column {missing[0]!r} (it has: {', '.join(names)})")
    row = 0
    for batch in batches:
        yield _cast_batch(path, batch.select(schema.names), schema, row)
        row += batch.num_rows


def _open_arrow_source(path: Path, fmt: FileFormat) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    """The column names of a Parquet or Arrow IPC file and its record batches, streamed.

    pyarrow.parquet and pyarrow.ipc rather than pyarrow.dataset: the latter imports
    pandas (~0.3 s at start-up) and reads ahead.
    """
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            parquet = pq.ParquetFile(path)
            return parquet.schema_arrow.names, parquet.iter_batches()
        source = pa.memory_map(str(path))
        try:
            reader = pa.ipc.open_file(source)
        except _ARROW_ERRORS:
            # not the IPC file format: try the IPC stream format
            stream = pa.ipc.open_stream(source)
            return stream.schema.names, iter(stream)
        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        return reader.schema.names, batches
    except (*_ARROW_ERRORS, OSError) as exc:
        raise DatasetError(f"{path}: cannot read as {fmt}: {exc}") from exc


def _cast_batch(
    path: Path, batch: pa.RecordBatch, schema: pa.Schema, offset: int
) -> pa.RecordBatch:
    columns = []
    for field in schema:
        column = batch.column(field.name)
        try:
            columns.append(column if column.type == field.type else column.cast(field.type))
        except _ARROW_ERRORS as exc:
            row = offset + _first_bad_row(column, field.type)
            value = column[row - offset].as_py()
            raise DatasetError(
                f"{path}: row {row}: column {field.name!r}: {str(value)[:50]!r} "
                f"({column.type}) cannot be cast to the declared {field.type}"
            ) from exc
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _first_bad_row(column: pa.Array, type_: pa.DataType) -> int:
    for i in range(len(column)):
        try:
            column.slice(i, 1).cast(type_)
        except _ARROW_ERRORS:
            return i
    return 0
