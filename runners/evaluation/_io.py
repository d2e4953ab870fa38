"""Store access for the evaluation client: read the shard's rows, find what is done,
write output parts.

Parts are named `part-<shard>-<seq:06d>.parquet` and written with `Store.write_output`
(temporary file, then rename, then its digest), so a killed client leaves only whole
parts; a restart reads them and skips the (`_index_`, `_replication_`) pairs they hold.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from schemas import (
    ERROR_TYPE_COLUMN,
    INDEX_COLUMN,
    REPLICATION_COLUMN,
    Store,
    StoreError,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "Committed",
    "PartWriter",
    "count_shard_rows",
    "read_committed",
    "remove_stale_temporaries",
    "shard_batches",
]

logger = logging.getLogger(__name__)

_READ_BATCH_ROWS = 16_384
_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_DATA_PART = re.compile(r"^part-[^/]*\.parquet$")
"""A data part of a node (what `Store.open_dataset` reads)."""
_ERROR_TYPE_SCHEMA = "schema"


def _dataset_parts(store: Store) -> list[str]:
    """The dataset node's `part-*.parquet` files, in the order `Store.open_dataset` reads them.

    Raises:
        StoreError: the node holds no parts.
    """
    parts = [f for f in store.list_files() if _DATA_PART.match(f)]
    if not parts:
        raise StoreError(f"{store.uri_of('')} holds no data parts")
    return parts


def shard_batches(
    store: Store, shard_index: int, shard_count: int
) -> Iterator[list[dict[str, Any]]]:
    """The shard's dataset rows as lists of dicts, in dataset order.

    Shard `i` of `n` holds the rows whose position `p` (in part order) has `p % n == i`.
    Parts are streamed with `pyarrow.parquet` record batch by record batch: unlike
    `pyarrow.dataset`, it neither imports pandas (a quarter of a second and ~40 MB at
    start-up) nor reads ahead whole files.

    Raises:
        StoreError: the dataset node holds no parts, or one cannot be read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    position = 0
    for name in _dataset_parts(store):
        try:
            with store.fs.open_input_file(store.path(name)) as handle:
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=_READ_BATCH_ROWS):
                    size = batch.num_rows
                    if shard_count > 1:
                        first = (shard_index - position) % shard_count
                        batch = batch.take(pa.array(range(first, size, shard_count), pa.int64()))
                    position += size
                    if batch.num_rows:
                        yield batch.to_pylist()
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise StoreError(f"cannot read the dataset part {store.uri_of(name)}: {exc}") from exc


def count_shard_rows(store: Store, shard_index: int, shard_count: int) -> int:
    """Rows of the dataset that fall in the shard (read from Parquet metadata)."""
    import pyarrow.parquet as pq

    total = 0
    for name in _dataset_parts(store):
        try:
            with store.fs.open_input_file(store.path(name)) as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read the dataset part {store.uri_of(name)}: {exc}") from exc
    return (total - shard_index + shard_count - 1) // shard_count if total > shard_index else 0


@dataclass
class Committed:
    """What the node's committed parts already hold."""

    done: dict[int, set[int]] = field(default_factory=dict)
    """Replication → the `_index_` values written for it."""
    rows: int = 0
    errors: int = 0
    next_seq: int = 0
    """The sequence number of this shard's next part."""

    def holds(self, index: int, replication: int) -> bool:
        """Whether (`index`, `replication`) is already written."""
        written = self.done.get(replication)
        return written is not None and index in written


def _part_files(store: Store) -> list[str]:
    return [f for f in store.list_files() if "/" not in f and _PART.match(f)]


def read_committed(store: Store, shard_index: int) -> Committed:
    """Read the keys of every committed part in the node, for a resume.

    Keys of every shard's parts are skipped (so no pair is ever written twice); rows and
    errors are counted from this shard's own parts.

    Raises:
        StoreError: a part cannot be read.
    """
    import pyarrow.parquet as pq

    committed = Committed()
    for name in _part_files(store):
        match = _PART.match(name)
        assert match is not None
        own = int(match[1]) == shard_index
        if own:
            committed.next_seq = max(committed.next_seq, int(match[2]) + 1)
        try:
            with store.fs.open_input_file(store.path(name)) as handle:
                columns = (
                    pq.ParquetFile(handle)
                    .read(columns=[INDEX_COLUMN, REPLICATION_COLUMN, ERROR_TYPE_COLUMN])
                    .to_pydict()
                )
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise StoreError(f"cannot read the committed part {store.uri_of(name)}: {exc}") from exc
        for index, replication in zip(
            columns[INDEX_COLUMN], columns[REPLICATION_COLUMN], strict=True
        ):
            committed.done.setdefault(replication, set()).add(index)
        if own:
            committed.rows += len(columns[INDEX_COLUMN])
            committed.errors += sum(t is not None for t in columns[ERROR_TYPE_COLUMN])
    return committed


def remove_stale_temporaries(store: Store, shard_index: int) -> None:
    """Delete temporary files a killed writer of this shard left behind (never counted)."""
    prefix = f"part-{shard_index}-"
    for name in store.list_files():
        if name.startswith(prefix) and ".parquet.tmp-" in name and "/" not in name:
            try:
                store.fs.delete_file(store.path(name))
            except OSError as exc:
                logger.warning("cannot remove the stale temporary file %s: %s", name, exc)


class PartWriter:
    """Turns buffered row tuples into Parquet parts (called in a worker thread).

    A row tuple is (`_index_`, `_replication_`, *output columns, `_error_`, `_error_type_`).
    """

    def __init__(self, store: Store, schema: pa.Schema, shard_index: int, next_seq: int) -> None:
        self.store = store
        self.schema = schema
        self.shard_index = shard_index
        self.seq = next_seq
        self.names = schema.names
        self.parts: list[str] = []

    def write(self, rows: list[tuple[Any, ...]]) -> int:
        """Write one part atomically; returns how many rows became `schema` errors."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table, schema_errors = self._table(rows)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=max(len(rows), 1), compression="zstd")
        name = f"part-{self.shard_index}-{self.seq:06d}.parquet"
        self.store.write_output(sink.getvalue().to_pybytes(), "", name)
        self.seq += 1
        self.parts.append(name)
        logger.debug("wrote %s (%d rows)", posixpath.join(self.store.uri, name), len(rows))
        return schema_errors

    def _table(self, rows: list[tuple[Any, ...]]) -> tuple[pa.Table, int]:
        import pyarrow as pa

        columns = list(zip(*rows, strict=True))
        try:
            return pa.Table.from_arrays(
                [pa.array(col, type=f.type) for col, f in zip(columns, self.schema, strict=True)],
                schema=self.schema,
            ), 0
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            # Some value does not fit its declared column: find the rows, make them errors.
            fixed, errors = self._fix_rows(rows)
            return self._table(fixed)[0], errors

    def _fix_rows(self, rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], int]:
        import pyarrow as pa

        outputs = list(self.schema)[2:-2]
        fixed: list[tuple[Any, ...]] = []
        errors = 0
        for row in rows:
            problem = None
            for position, column in enumerate(outputs, start=2):
                try:
                    pa.array([row[position]], type=column.type)
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
                    value = repr(row[position])
                    value = value if len(value) <= 50 else value[:49] + "…"
                    problem = (
                        f"output column {column.name!r}: {value} does not fit the declared "
                        f"type {column.type}"
                    )
                    break
            if problem is None:
                fixed.append(row)
            else:
                errors += 1
                blank = (None,) * len(outputs)
                fixed.append((row[0], row[1], *blank, problem, _ERROR_TYPE_SCHEMA))
        return fixed, errors
