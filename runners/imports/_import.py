"""The import step: an Inspect AI log → a stored Evaluation (`evaluation_output_schema`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas import (
    DIGESTS_DIR,
    ERROR_COLUMN,
    INDEX_COLUMN,
    REPLICATION_COLUMN,
    DatasetError,
    EvaluationError,
    Store,
)

from ._config import ImportConfig, ImportResult
from ._inspect_log import inspect_evaluation_table

__all__ = ["import_evaluation"]

logger = logging.getLogger(__name__)

SAMPLE_ID_COLUMN = "sample_id"
"""A Dataset column that, when present, must list the log's samples in order."""


def import_evaluation(config: ImportConfig) -> ImportResult:
    """Read the Evaluation's log and store it as the Evaluation's output.

    One Parquet part, written only once every check passed; an earlier attempt's
    parts are replaced.

    Raises:
        EvaluationError: the file is not an Inspect log, a declared column is in no
            sample or does not fit its type, or `spec.dataset` does not list the log's
            samples (row count, or `sample_id` in order).
        StoreError: the output cannot be written.
    """
    started = time.monotonic()
    evaluation = config.evaluation
    imported = evaluation.spec.imported
    assert imported is not None  # ImportConfig checked it
    where = f"Evaluation/{evaluation.name}"
    try:
        table, sample_ids = inspect_evaluation_table(
            Path(config.source_path), dict(imported.columns)
        )
    except DatasetError as exc:
        raise EvaluationError(f"{where}: spec.imported: {exc}") from exc
    if config.dataset_uri is not None:
        _check_dataset(where, evaluation.spec.dataset or "", config.dataset_uri, sample_ids)
    samples = len(sample_ids)
    store = Store.open(config.output_uri)
    _clear_parts(store)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    store.write_output(sink.getvalue().to_pybytes(), "", "part-00000.parquet")
    epochs = pc.max(table[REPLICATION_COLUMN]).as_py() + 1
    errors = table.num_rows - table[ERROR_COLUMN].null_count
    logger.info(
        "%s: %d samples × %d epochs from %s in %.1fs",
        where,
        samples,
        epochs,
        config.source_path,
        time.monotonic() - started,
    )
    return ImportResult(
        rows=table.num_rows,
        samples=samples,
        epochs=epochs,
        errors=errors,
        columns=table.column_names,
    )


def _check_dataset(where: str, name: str, uri: str, sample_ids: list[str]) -> None:
    """The Dataset pairs with the log: one row per sample, `sample_id` (if any) in log order."""
    dataset = Store.open(uri).open_dataset("")
    rows = dataset.count_rows()
    samples = len(sample_ids)
    if rows != samples:
        raise EvaluationError(
            f"{where}: spec.dataset: Dataset {name!r} has {rows} rows, but the log has {samples} "
            "samples; it must hold one row per sample, in the log's order (a Dataset read "
            "from a log with several epochs has one row per epoch: use a log of one epoch, "
            "or leave spec.dataset out)"
        )
    if SAMPLE_ID_COLUMN not in dataset.schema.names:
        return
    ids = dataset.to_table(columns=[INDEX_COLUMN, SAMPLE_ID_COLUMN]).sort_by(INDEX_COLUMN)
    for position, (have, want) in enumerate(
        zip(ids[SAMPLE_ID_COLUMN].to_pylist(), sample_ids, strict=True)
    ):
        if str(have) != want:
            raise EvaluationError(
                f"{where}: spec.dataset: Dataset {name!r} row {position} is sample {have!r}, "
                f"but sample {position} of the log is {want!r}"
            )


def _clear_parts(store: Store) -> None:
    for relative in store.list_files():
        if "/" not in relative and relative.startswith("part-") and relative.endswith(".parquet"):
            store.fs.delete_file(store.path(relative))
    store.delete_dir(DIGESTS_DIR)
