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

Shard parts and canonical parts side by side (a crash part-way through the rewrite, or
a shard that ran again after it) are merged: the canonical parts are renamed as the
parts of a shard no client uses (`part-999999-<n>.parquet`, which a resuming client
skips), and every (`_index_`, `_replication_`) is kept once. Nothing written is lost.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from schemas import DIGESTS_DIR, INDEX_COLUMN, REPLICATION_COLUMN, Store, StoreError

if TYPE_CHECKING:
    import numpy.typing as npt
    import pyarrow as pa

__all__ = ["CANONICAL_PART_ROWS", "finalize_parts"]

logger = logging.getLogger(__name__)

CANONICAL_PART_ROWS = 262_144
"""Rows per canonical part (the last part holds the rest)."""
_SHARD_PART = re.compile(r"^part-\d+-\d+\.parquet$")
_CANONICAL_PART = re.compile(r"^part-\d{5}\.parquet$")
_MERGED_SHARD = 999_999
"""The shard number under which earlier canonical parts join a rewrite."""


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
    if not any(_SHARD_PART.match(f) for f in files):
        return 0
    for number, name in enumerate(sorted(f for f in files if _CANONICAL_PART.match(f))):
        _rename(store, name, f"part-{_MERGED_SHARD}-{number:06d}.parquet")
    shard_parts = sorted(f for f in store.list_files() if _SHARD_PART.match(f))
    keys = _keys(store, shard_parts)
    order = pc.sort_indices(
        keys,
        [(INDEX_COLUMN, "ascending"), (REPLICATION_COLUMN, "ascending"), ("_part", "ascending")],
    )
    sorted_keys = _first_of_each_key(keys.take(order))
    count = 0
    for start in range(0, sorted_keys.num_rows, part_rows):
        table = _gather(store, shard_parts, sorted_keys.slice(start, part_rows))
        _write(store, f"part-{count:05d}.parquet", table)
        count += 1
    if count == 0:  # no rows at all: one empty part keeps the schema
        _write(store, "part-00000.parquet", _read(store, shard_parts[0]).slice(0, 0))
        count = 1
    for name in shard_parts:
        _remove(store, name)
    logger.debug("%s: %d rows in %d canonical parts", store.uri, sorted_keys.num_rows, count)
    return count


def _arrow(values: npt.NDArray[Any]) -> pa.Array:
    """A 1-d integer numpy array as an Arrow array over the same memory.

    Here, and in `_numpy`, not `pa.array(values)` and `to_numpy()`: pyarrow imports
    pandas at its first conversion between Arrow and Python or numpy values, only to
    check for pandas objects, and this runs in `auditc run`'s own process, which has
    no other use for pandas (0.2 s of its fixed cost). Integer buffers are all this
    module converts.
    """
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)]
    )


def _numpy(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    """A key column (signed integers, no nulls) as a numpy array over the same memory."""
    import numpy as np
    import pyarrow as pa

    array = column.combine_chunks()
    if not pa.types.is_signed_integer(array.type) or array.null_count:
        raise TypeError(f"expected a signed integer column without nulls, got {array.type}")
    dtype = np.dtype(f"=i{array.type.bit_width // 8}")
    if len(array) == 0:
        return np.empty(0, dtype=dtype)
    data = array.buffers()[1]
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _first_of_each_key(sorted_keys: pa.Table) -> pa.Table:
    """Drop rows whose (`_index_`, `_replication_`) equals the row before (sorted input)."""
    import numpy as np

    index = _numpy(sorted_keys[INDEX_COLUMN])
    replication = _numpy(sorted_keys[REPLICATION_COLUMN])
    first = np.ones(len(index), dtype=bool)
    first[1:] = (index[1:] != index[:-1]) | (replication[1:] != replication[:-1])
    return sorted_keys.take(_arrow(np.flatnonzero(first)))


def _read(store: Store, name: str, columns: list[str] | None = None) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        with store.fs.open_input_file(store.path(name)) as handle:
            return pq.ParquetFile(handle).read(columns=columns)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StoreError(f"cannot read the part {store.uri_of(name)}: {exc}") from exc


def _keys(store: Store, parts: list[str]) -> pa.Table:
    """(`_index_`, `_replication_`, part number, row in part) of every row."""
    import numpy as np
    import pyarrow as pa

    tables = []
    for number, name in enumerate(parts):
        table = _read(store, name, [INDEX_COLUMN, REPLICATION_COLUMN])
        rows = table.num_rows
        tables.append(
            table.append_column(
                "_part", _arrow(np.full(rows, number, dtype=np.int32))
            ).append_column("_row", _arrow(np.arange(rows, dtype=np.int64)))
        )
    return pa.concat_tables(tables)


def _gather(store: Store, parts: list[str], chosen: pa.Table) -> pa.Table:
    """The full rows named by `chosen` (already in canonical order), from their parts."""
    import numpy as np
    import pyarrow as pa

    part_of = _numpy(chosen["_part"])
    row_in_part = _numpy(chosen["_row"])
    pieces: list[pa.Table] = []
    positions: list[npt.NDArray[Any]] = []
    for number in np.unique(part_of):
        mine = np.flatnonzero(part_of == number)
        pieces.append(_read(store, parts[int(number)]).take(_arrow(row_in_part[mine])))
        positions.append(mine)
    table = pa.concat_tables(pieces)
    # Row i of `table` belongs at position `placed[i]` of the canonical part.
    placed = np.concatenate(positions)
    return table.take(_arrow(np.argsort(placed, kind="stable")))


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


def _rename(store: Store, name: str, new_name: str) -> None:
    try:
        store.fs.move(store.path(name), store.path(new_name))
    except OSError as exc:
        raise StoreError(f"cannot rename {store.uri_of(name)}: {exc}") from exc
    digest = f"{DIGESTS_DIR}/{name}.json"
    if store.exists(digest):
        store.fs.move(store.path(digest), store.path(f"{DIGESTS_DIR}/{new_name}.json"))


def _remove(store: Store, name: str) -> None:
    try:
        store.fs.delete_file(store.path(name))
    except OSError as exc:
        raise StoreError(f"cannot remove {store.uri_of(name)}: {exc}") from exc
    digest = f"{DIGESTS_DIR}/{name}.json"  # recorded by the part's writer
    if store.exists(digest):
        store.fs.delete_file(store.path(digest))
