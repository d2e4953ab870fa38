"""An evaluation's committed parts, rewritten in one canonical layout once every shard is done.

While shards run, each writes `part-<shard>-<seq>.parquet` as rows complete: their order
and boundaries depend on timing (concurrency, retries, time-based flushes, restarts).
Once all shards succeeded, the backend calls `finalize_parts`: the rows are written
again sorted by (`_index_`, `_replication_`) into `part-<nnnnn>.parquet` of
`CANONICAL_PART_ROWS` rows each, with fixed writer options, and the shard parts are
removed. The same commit run twice gives the same bytes (docs/store.md, bit-for-bit
re-runs), whatever happened while it ran.

Memory stays bounded: only the two key columns of the whole output are held at once,
then each canonical part with the shard parts its rows come from.

A crash part-way leaves shard parts and some canonical parts side by side; the shard
parts are whole, so the next attempt (a resume reads only shard parts) starts the
rewrite again after removing the canonical ones.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from schemas import DIGESTS_DIR, INDEX_COLUMN, REPLICATION_COLUMN, Store, StoreError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CANONICAL_PART_ROWS", "finalize_parts"]

logger = logging.getLogger(__name__)

CANONICAL_PART_ROWS = 262_144
"""Rows per canonical part (the last part holds the rest)."""
_SHARD_PART = re.compile(r"^part-\d+-\d+\.parquet$")
_CANONICAL_PART = re.compile(r"^part-\d{5}\.parquet$")


def finalize_parts(store: Store, part_rows: int = CANONICAL_PART_ROWS) -> int:
    """Rewrite the node's shard parts (the node opened as the store root) canonically.

    Returns:
        The number of canonical parts written (0 when there were no shard parts: the
        node is canonical already).

    Raises:
        StoreError: a part cannot be read, written or removed.
    """
    import pyarrow.compute as pc

    files = store.list_files()
    shard_parts = sorted(f for f in files if _SHARD_PART.match(f))
    if not shard_parts:
        return 0
    for stale in (f for f in files if _CANONICAL_PART.match(f)):
        _remove(store, stale)
    keys = _keys(store, shard_parts)
    order = pc.sort_indices(keys, [(INDEX_COLUMN, "ascending"), (REPLICATION_COLUMN, "ascending")])
    sorted_keys = keys.take(order)
    count = 0
    for start in range(0, keys.num_rows, part_rows):
        table = _gather(store, shard_parts, sorted_keys.slice(start, part_rows))
        _write(store, f"part-{count:05d}.parquet", table)
        count += 1
    if count == 0:  # no rows at all: one empty part keeps the schema
        _write(store, "part-00000.parquet", _read(store, shard_parts[0]).slice(0, 0))
        count = 1
    for name in shard_parts:
        _remove(store, name)
    logger.debug("%s: %d rows in %d canonical parts", store.uri, keys.num_rows, count)
    return count


def _read(store: Store, name: str, columns: list[str] | None = None) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        with store.fs.open_input_file(store.path(name)) as handle:
            return pq.ParquetFile(handle).read(columns=columns)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StoreError(f"cannot read the part {store.uri_of(name)}: {exc}") from exc


def _keys(store: Store, parts: list[str]) -> pa.Table:
    """(`_index_`, `_replication_`, part number, row in part) of every row."""
    import pyarrow as pa

    tables = []
    for number, name in enumerate(parts):
        table = _read(store, name, [INDEX_COLUMN, REPLICATION_COLUMN])
        tables.append(
            table.append_column(
                "_part", pa.array([number] * table.num_rows, pa.int32())
            ).append_column("_row", pa.array(range(table.num_rows), pa.int64()))
        )
    return pa.concat_tables(tables)


def _gather(store: Store, parts: list[str], chosen: pa.Table) -> pa.Table:
    """The full rows named by `chosen` (already in canonical order), from their parts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pieces: list[pa.Table] = []
    positions: list[pa.Array] = []
    for number in sorted(pc.unique(chosen["_part"]).to_pylist()):
        mask = pc.equal(chosen["_part"], number)
        pieces.append(_read(store, parts[number]).take(pc.filter(chosen["_row"], mask)))
        positions.append(pc.indices_nonzero(mask))
    table = pa.concat_tables(pieces)
    # Row i of `table` belongs at position `placed[i]` of the canonical part.
    placed = pa.chunked_array(positions).combine_chunks()
    return table.take(pc.sort_indices(placed))


def _write(store: Store, name: str, table: pa.Table) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        row_group_size=max(table.num_rows, 1),
        compression="zstd",
    )
    store.write_output(sink.getvalue().to_pybytes(), "", name)


def _remove(store: Store, name: str) -> None:
    try:
        store.fs.delete_file(store.path(name))
    except OSError as exc:
        raise StoreError(f"cannot remove {store.uri_of(name)}: {exc}") from exc
    digest = f"{DIGESTS_DIR}/{name}.json"  # recorded by the part's writer
    if store.exists(digest):
        store.fs.delete_file(store.path(digest))
