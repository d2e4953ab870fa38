"""Inspect AI logs (`.eval` archives and `.json` logs) read as rows, without inspect_ai.

A Dataset with `file: {path: logs/run.eval}` (or `format: inspect` for a `.json` log), or
an Evaluation with `imported: {path: logs/run.eval, columns: …}`, takes in a run made with
Inspect: one row per sample and epoch, so that an audit can add methods, safety cases and
gates on top of it. The columns (declare the ones you use):

| column | type | from the sample |
|---|---|---|
| `sample_id` | string | `id` |
| `epoch` | int64 | `epoch` |
| `input` | string | `input` (a chat input as JSON: `[{"role": …, "content": …}]`) |
| `target` | string | `target` (a list as JSON) |
| `completion` | string | `output.completion` |
| `model` | string | `output.model`, else the log's `eval.model` |
| `error` | string | `error.message` (null when the sample succeeded) |
| `score_<scorer>` | float64 | the score's value: numbers as they are, true/false as 1/0, Inspect's `C`/`I`/`P`/`N` as 1/0/0.5/0 (a dict value gives `score_<scorer>_<key>`) |
| `answer_<scorer>` | string | the score's `answer` |
| `metadata` | string | `metadata` as JSON |
| `metadata_<key>` | as the value | each scalar `metadata` value |

Rows come in the log's sample order (`eval.dataset.sample_ids`), each sample's epochs
in order. A Dataset's `_index_` is the row position; an Evaluation's is the sample's
position, with `_replication_` its epoch - 1 (`inspect_evaluation_table`). Only the extracted columns are kept in memory,
not the samples' messages and events.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from schemas import (
    ERROR_COLUMN,
    ERROR_TYPE_COLUMN,
    INDEX_COLUMN,
    REPLICATION_COLUMN,
    DatasetError,
    MissingDependencyError,
    evaluation_output_schema,
)

__all__ = ["inspect_evaluation_table", "inspect_rows", "inspect_table", "read_inspect_log"]

MAX_ENTRY_BYTES = 512 << 20
"""An archive entry larger than this (uncompressed) is refused: a zip bomb, not a sample."""
_LETTER_SCORES = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}
_SAMPLE_ENTRY = re.compile(r"^samples/[^/]+\.json$")


def _load_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise DatasetError(f"{where}: not an Inspect log (invalid JSON: {exc})") from exc


def _zstd_zipfile() -> None:
    """Teach `zipfile` the zstd compression Inspect writes `.eval` archives with (< 3.14)."""
    if sys.version_info >= (3, 14):
        return
    try:
        import zipfile_zstd  # noqa: F401 - registers ZIP_ZSTANDARD with zipfile
    except ImportError as exc:
        raise MissingDependencyError(
            "reading Inspect .eval logs needs zipfile-zstd: pip install 'auditc[run]'"
        ) from exc


def _eval_archive(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The header and the samples of an `.eval` archive, samples read one at a time."""
    _zstd_zipfile()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{path}: not an Inspect .eval log (not a zip archive: {exc})") from exc
    names = archive.namelist()

    def read(name: str) -> Any:
        info = archive.getinfo(name)
        if info.file_size > MAX_ENTRY_BYTES:
            raise DatasetError(f"{path}: {name} is {info.file_size:,} bytes uncompressed; refused")
        return _load_json(archive.read(name), f"{path}:{name}")

    if "header.json" in names:
        header = read("header.json")
    elif "_journal/start.json" in names:
        header = read("_journal/start.json")
    else:
        raise DatasetError(f"{path}: not an Inspect .eval log (no header.json)")

    def samples() -> Iterator[dict[str, Any]]:
        with archive:
            for name in (n for n in names if _SAMPLE_ENTRY.match(n)):
                yield read(name)

    return header, samples()


def read_inspect_log(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The log's header (`eval`, `results`, …) and its samples, read one at a time.

    Raises:
        DatasetError: the file is not an Inspect log.
    """
    if path.suffix.lower() == ".eval" or zipfile.is_zipfile(path):
        header, samples = _eval_archive(path)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read: {exc}") from exc
        header = _load_json(data, str(path))
        if not isinstance(header, dict):
            raise DatasetError(f"{path}: not an Inspect log (expected a JSON object)")
        samples = iter(header.pop("samples", None) or [])
    if not isinstance(header.get("eval"), dict):
        raise DatasetError(f"{path}: not an Inspect log (no 'eval' section)")
    return header, samples


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return json.dumps(
            [{"role": m.get("role"), "content": _content(m.get("content"))} for m in value],
            ensure_ascii=False,
        )
    return json.dumps(value, ensure_ascii=False, default=str)


def _content(content: Any) -> str:
    """A message's text: the text parts of a list of content blocks, joined."""
    if isinstance(content, list):
        return "".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return "" if content is None else str(content)


def _score_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _LETTER_SCORES.get(value.strip().upper())
    return None


def _row(sample: dict[str, Any], model: str | None) -> dict[str, Any]:
    output = sample.get("output") or {}
    error = sample.get("error")
    row: dict[str, Any] = {
        "sample_id": str(sample.get("id")),
        "epoch": int(sample.get("epoch", 1)),
        "input": _text(sample.get("input", "")),
        "target": _text(sample.get("target", "")),
        "completion": output.get("completion")
        or _content(((output.get("choices") or [{}])[0].get("message") or {}).get("content")),
        "model": output.get("model") or model,
        "error": error.get("message") if isinstance(error, dict) else None,
        "metadata": json.dumps(sample.get("metadata") or {}, ensure_ascii=False, default=str),
    }
    for name, score in (sample.get("scores") or {}).items():
        value = score.get("value") if isinstance(score, dict) else score
        if isinstance(value, dict):
            row.update({f"score_{name}_{k}": _score_value(v) for k, v in value.items()})
        else:
            row[f"score_{name}"] = _score_value(value)
        if isinstance(score, dict) and score.get("answer") is not None:
            row[f"answer_{name}"] = str(score["answer"])
    for key, value in (sample.get("metadata") or {}).items():
        if isinstance(value, str | int | float | bool):
            row[f"metadata_{key}"] = value
    return row


def inspect_rows(path: Path) -> list[dict[str, Any]]:
    """The samples of an Inspect log as rows of the columns above, in log order.

    Raises:
        DatasetError: not an Inspect log, or no samples.
    """
    header, samples = read_inspect_log(path)
    model = header["eval"].get("model")
    rows = [_row(sample, model) for sample in samples if isinstance(sample, dict)]
    if not rows:
        raise DatasetError(
            f"{path}: the Inspect log holds no samples (was it run with log_samples?)"
        )
    ids = header["eval"].get("dataset", {}).get("sample_ids") or []
    order = {str(s): i for i, s in enumerate(ids)}
    rows.sort(key=lambda r: (order.get(r["sample_id"], len(order)), r["sample_id"], r["epoch"]))
    return rows


def inspect_table(path: Path) -> pa.Table:
    """The samples of an Inspect log as a table of the columns above, in log order.

    Raises:
        DatasetError: not an Inspect log, no samples, or a column whose values differ in type.
    """
    rows = inspect_rows(path)
    names = list(dict.fromkeys(k for row in rows for k in row))
    try:
        return pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetError(f"{path}: the samples' values do not fit one table: {exc}") from exc


def inspect_evaluation_table(path: Path, columns: dict[str, str]) -> tuple[pa.Table, list[str]]:
    """An Inspect log as a stored Evaluation (`schemas.evaluation_output_schema(columns)`),
    and the log's sample ids by `_index_`.

    One row per sample and epoch: `_index_` is the sample's position in the log (its
    first appearance in `eval.dataset.sample_ids` order), `_replication_` its epoch - 1,
    then the `columns` taken from the sample as `inspect_table` names them, `_error_` the
    sample's error message and `_error_type_` `inspect` where it has one.

    Raises:
        DatasetError: not an Inspect log, no samples, a column that no sample has, a value
            that does not fit its declared type, or a sample and epoch that appear twice.
    """
    rows = inspect_rows(path)
    present = set().union(*rows)
    missing = [c for c in columns if c not in present]
    if missing:
        raise DatasetError(
            f"{path}: no sample of the Inspect log has {', '.join(map(repr, missing))}; "
            f"its samples have: {', '.join(sorted(present))}"
        )
    positions: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    records: list[dict[str, Any]] = []
    for row in rows:
        key = (row["sample_id"], row["epoch"])
        if key in seen:
            raise DatasetError(
                f"{path}: sample {key[0]!r} epoch {key[1]} appears twice in the Inspect log"
            )
        seen.add(key)
        error = row.get("error")
        records.append(
            {
                INDEX_COLUMN: positions.setdefault(row["sample_id"], len(positions)),
                REPLICATION_COLUMN: row["epoch"] - 1,
                **{c: row.get(c) for c in columns},
                ERROR_COLUMN: error,
                ERROR_TYPE_COLUMN: "inspect" if error is not None else None,
            }
        )
    schema = evaluation_output_schema(columns)
    try:
        return pa.Table.from_pylist(records, schema=schema), list(positions)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        bad = _first_misfit(records, schema)
        raise DatasetError(f"{path}: {bad or exc}") from exc


def _first_misfit(records: list[dict[str, Any]], schema: pa.Schema) -> str | None:
    """Which sample's column does not fit its declared type, for the error message."""
    for field in schema:
        for record in records:
            try:
                pa.array([record[field.name]], field.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                value = repr(record[field.name])[:50]
                return (
                    f"column {field.name!r} is declared {field.type}, but sample "
                    f"{record[INDEX_COLUMN]} (epoch {record[REPLICATION_COLUMN] + 1}) has {value}"
                )
    return None
