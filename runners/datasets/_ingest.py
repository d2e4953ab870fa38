"""The dataset ingestion step: a file or Hugging Face dataset → Parquet parts with `_index_`."""

from __future__ import annotations

import fnmatch
import logging
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas import (
    DIGESTS_DIR,
    DatasetError,
    DatasetSpec,
    HuggingFaceDatasetSource,
    MissingDependencyError,
    Store,
    arrow_schema,
    dataset_schema,
)

from ._config import IngestConfig, IngestResult
from ._readers import FileFormat, read_batches, sniff_format

__all__ = ["PART_ROWS", "ingest_dataset"]

logger = logging.getLogger(__name__)

PART_ROWS = 262_144
"""Rows per Parquet part written to the store."""


def ingest_dataset(config: IngestConfig) -> IngestResult:
    """Read a Dataset's source, check it against its columns, and store it as Parquet.

    Every row gets `_index_` (int64): its position over all source files, or the value
    of `spec.index`. Outputs of an earlier attempt are replaced; on failure nothing of
    this attempt is left behind.

    Example:
        >>> ingest_dataset(IngestConfig.model_validate_json(text)).rows   # doctest: +SKIP
        1080

    Raises:
        DatasetError: a source is missing or unreadable, a row does not fit the declared
            columns (the message names file, line or row, and column), a declared column
            is empty in every row, the dataset has no rows, or `_index_` is not unique.
        MissingDependencyError: a Hugging Face source without huggingface_hub installed.
        StoreError: the output cannot be written.
    """
    started = time.monotonic()
    name = config.dataset.name
    spec = config.dataset.spec
    store = Store.open(config.output_uri)
    _clear_parts(store)
    writer = _PartWriter(store, dataset_schema(dict(spec.columns)))
    try:
        rows = _ingest(name, spec, _sources(config), writer)
    except BaseException:
        _clear_parts(store)
        raise
    logger.info("Dataset/%s: %d rows in %.1fs", name, rows, time.monotonic() - started)
    return IngestResult(rows=rows, columns=writer.schema.names)


def _ingest(
    name: str, spec: DatasetSpec, sources: list[tuple[Path, FileFormat]], writer: _PartWriter
) -> int:
    schema = arrow_schema(dict(spec.columns))
    if spec.index is not None and not pa.types.is_integer(schema.field(spec.index).type):
        raise DatasetError(
            f"Dataset/{name}: index column {spec.index!r} is {schema.field(spec.index).type}; "
            "it must be an integer type"
        )
    filled = dict.fromkeys(schema.names, False)
    indexes: list[pa.Array] = []
    position = 0
    for path, fmt in sources:
        logger.debug("Dataset/%s: reading %s (%s)", name, path, fmt)
        for batch in read_batches(path, fmt, schema):
            index = _index(name, spec, batch, position, path)
            indexes.append(index)
            writer.add(pa.RecordBatch.from_arrays([index, *batch.columns], schema=writer.schema))
            for column in schema.names:
                filled[column] = filled[column] or batch.column(column).null_count < batch.num_rows
            position += batch.num_rows
    _check_complete(name, sources, position, filled)
    if spec.index is not None:
        _check_unique(name, spec.index, pa.chunked_array(indexes, pa.int64()))
    writer.close()
    return position


def _index(name: str, spec: DatasetSpec, batch: pa.RecordBatch, start: int, path: Path) -> pa.Array:
    if spec.index is None:
        return pa.array(range(start, start + batch.num_rows), pa.int64())
    column = batch.column(spec.index)
    if column.null_count:
        row = start + pc.index(pc.is_null(column), True).as_py()
        raise DatasetError(
            f"Dataset/{name}: {path}: row {row}: the index column {spec.index!r} is null"
        )
    return column.cast(pa.int64())


def _check_complete(
    name: str, sources: list[tuple[Path, FileFormat]], rows: int, filled: dict[str, bool]
) -> None:
    files = ", ".join(str(path) for path, _ in sources)
    if rows == 0:
        raise DatasetError(f"Dataset/{name}: {files} has no rows")
    empty = [column for column, seen in filled.items() if not seen]
    if empty:
        raise DatasetError(
            f"Dataset/{name}: column {empty[0]!r} is null or absent in every row of {files}; "
            "is the name in spec.columns spelled as in the data?"
        )


def _check_unique(name: str, column: str, index: pa.ChunkedArray) -> None:
    if pc.count_distinct(index).as_py() == len(index):
        return
    counts = pc.value_counts(index)
    repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))[0].as_py()
    rows = pc.indices_nonzero(pc.equal(index, repeated["values"])).to_pylist()[:5]
    raise DatasetError(
        f"Dataset/{name}: index column {column!r} must be unique, but {repeated['values']} "
        f"appears {repeated['counts']} times (rows {', '.join(map(str, rows))})"
    )


# ------------------------------------------------------------------ sources


def _sources(config: IngestConfig) -> list[tuple[Path, FileFormat]]:
    spec = config.dataset.spec
    if spec.file is not None:
        assert config.source_path is not None  # IngestConfig checked it
        path = Path(config.source_path)
        return [(path, sniff_format(path, spec.file.format))]
    assert spec.huggingface is not None
    return [(path, sniff_format(path, None)) for path in _huggingface_files(spec.huggingface)]


def _huggingface_files(source: HuggingFaceDatasetSource) -> list[Path]:
    """Local paths of the source's files, downloaded through (or found in) the HF cache.

    With `HF_HUB_OFFLINE=1` nothing is downloaded: the files must be in the cache at
    the pinned revision.
    """
    try:
        import huggingface_hub
        from huggingface_hub.errors import EntryNotFoundError
    except ImportError as exc:
        raise MissingDependencyError(
            "reading a Hugging Face dataset needs huggingface_hub: pip install huggingface_hub"
        ) from exc
    where = f"huggingface dataset {source.repo}@{source.revision}"
    paths: list[Path] = []
    for pattern in source.files:
        try:
            paths.extend(_fetch(huggingface_hub, source, pattern))
        except (EntryNotFoundError, OSError, ValueError) as exc:  # HTTP errors are OSErrors
            raise DatasetError(
                f"{where}: cannot get {pattern!r}: {type(exc).__name__}: {exc} (offline, the "
                "file must already be in the Hugging Face cache at this revision)"
            ) from exc
    # A file named twice (by name and by a glob) is read once, where it first appears.
    return list(dict.fromkeys(paths))


def _fetch(hub: object, source: HuggingFaceDatasetSource, pattern: str) -> list[Path]:
    common = {"repo_id": source.repo, "repo_type": "dataset", "revision": source.revision}
    if not any(char in pattern for char in "*?["):
        return [Path(hub.hf_hub_download(filename=pattern, **common))]  # type: ignore[attr-defined]
    folder = Path(hub.snapshot_download(allow_patterns=[pattern], **common))  # type: ignore[attr-defined]
    found = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and fnmatch.fnmatch(path.relative_to(folder).as_posix(), pattern)
    )
    if not found:
        raise FileNotFoundError(f"no file of the repository matches {pattern!r}")
    return found


# ------------------------------------------------------------------- output


def _clear_parts(store: Store) -> None:
    for relative in store.list_files():
        if "/" not in relative and relative.startswith("part-") and relative.endswith(".parquet"):
            store.fs.delete_file(store.path(relative))
    store.delete_dir(DIGESTS_DIR)


class _PartWriter:
    """Buffers batches and writes them as `part-NNNNN.parquet`, PART_ROWS rows at a time."""

    def __init__(self, store: Store, schema: pa.Schema) -> None:
        self.store = store
        self.schema = schema
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._parts = 0

    def add(self, batch: pa.RecordBatch) -> None:
        # Slicing is zero-copy; it keeps every part at most PART_ROWS rows.
        while batch.num_rows:
            room = PART_ROWS - self._pending_rows
            self._pending.append(batch.slice(0, room))
            self._pending_rows += min(room, batch.num_rows)
            batch = batch.slice(room)
            if self._pending_rows >= PART_ROWS:
                self._flush()

    def close(self) -> None:
        if self._pending or self._parts == 0:
            self._flush()

    def _flush(self) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_batches(self._pending, schema=self.schema), sink)
        self.store.write_output(sink.getvalue().to_pybytes(), "", f"part-{self._parts:05d}.parquet")
        self._parts += 1
        self._pending, self._pending_rows = [], 0
