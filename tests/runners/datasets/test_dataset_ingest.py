"""Dataset ingestion: formats, declared types, `_index_`, and errors that say where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import runners.datasets._ingest as ingest_module
from runners.datasets import IngestConfig, IngestResult, ingest_dataset
from schemas import Dataset, DatasetError, Store, dataset_schema

COLUMNS = {"text": "string", "label": "int8"}


def _dataset(columns: dict[str, str] | None = None, **spec: Any) -> Dataset:
    spec.setdefault("file", {"path": "data.jsonl"})
    return Dataset.model_validate(
        {"kind": "Dataset", "name": "phrases", "spec": {"columns": columns or COLUMNS, **spec}}
    )


def _ingest(tmp_path: Path, source: Path, **spec: Any) -> tuple[IngestResult, pa.Table]:
    out = tmp_path / "store" / "dataset" / "phrases" / "0a1b2c"
    config = IngestConfig(dataset=_dataset(**spec), source_path=str(source), output_uri=str(out))
    result = ingest_dataset(config)
    return result, Store.open(out).open_dataset("").to_table().sort_by("_index_")


def _jsonl(tmp_path: Path, rows: list[Any], name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_rows_get_positions_and_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"text": "hello", "label": 0, "extra": 1}\n\n{"text": "you idiot", "label": 1}\n',
        encoding="utf-8",
    )
    result, table = _ingest(tmp_path, path)
    assert result == IngestResult(rows=2, columns=["_index_", "text", "label"])
    assert table.schema == dataset_schema(COLUMNS)
    assert table.to_pylist() == [
        {"_index_": 0, "text": "hello", "label": 0},
        {"_index_": 1, "text": "you idiot", "label": 1},
    ]


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        (
            '{"text": "b", "label": "x"}',
            "data.jsonl:3 (row 2): column 'label': \"x\" is not a valid int8",
        ),
        (
            '{"text": "b", "label": 300}',
            "data.jsonl:3 (row 2): column 'label': 300 is not a valid int8",
        ),
        ('{"text": 5, "label": 1}', "data.jsonl:3 (row 2): column 'text': 5 is not a valid string"),
        ('{"text": "b", "label": 1', "data.jsonl:3 (row 2): not valid JSON"),
        ('["b", 1]', "data.jsonl:3 (row 2): expected a JSON object, found an array"),
    ],
)
def test_jsonl_row_that_does_not_fit_names_file_line_and_column(
    tmp_path: Path, bad_line: str, expected: str
) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n' + bad_line + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DatasetError) as info:
        _ingest(tmp_path, path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_column_absent_from_every_row_is_reported(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, [{"text": "a", "lable": 0}, {"text": "b", "lable": 1}])
    with pytest.raises(DatasetError, match="column 'label' is null or absent in every row"):
        _ingest(tmp_path, path)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DatasetError, match="has no rows"):
        _ingest(tmp_path, path)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such data file"):
        _ingest(tmp_path, tmp_path / "nope.jsonl")


def test_csv_is_read_with_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text('label,text,ignored\n0,"hello, world",x\n1,you idiot,y\n', encoding="utf-8")
    _, table = _ingest(tmp_path, path, file={"path": "data.csv"})
    assert table.to_pylist() == [
        {"_index_": 0, "text": "hello, world", "label": 0},
        {"_index_": 1, "text": "you idiot", "label": 1},
    ]


def test_csv_bad_value_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,label\na,0\nb,1\nc,many\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        _ingest(tmp_path, path, file={"path": "data.csv"})
    assert f"{path}:4 (row 2): column 'label': 'many' is not a valid int8" in str(info.value)


def test_csv_missing_column_names_the_header(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,lbl\na,0\n", encoding="utf-8")
    with pytest.raises(
        DatasetError, match=r"data.csv:1: the header has no column 'label' \(it has: text, lbl\)"
    ):
        _ingest(tmp_path, path, file={"path": "data.csv"})


def test_parquet_columns_are_cast_to_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"label": pa.array([1, 0], pa.int64()), "text": ["x", "y"]}), path)
    _, table = _ingest(tmp_path, path, file={"path": "data.parquet"})
    assert table.schema == dataset_schema(COLUMNS)
    assert table.column("label").to_pylist() == [1, 0]


def test_parquet_value_out_of_range_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": ["x", "y", "z"], "label": pa.array([1, 0, 300])}), path)
    with pytest.raises(
        DatasetError,
        match=r"row 2: column 'label': '300' \(int64\) cannot be cast to the declared int8",
    ):
        _ingest(tmp_path, path, file={"path": "data.parquet"})


def test_parquet_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": ["x"]}), path)
    with pytest.raises(DatasetError, match=r"no column 'label' \(it has: text\)"):
        _ingest(tmp_path, path, file={"path": "data.parquet"})


@pytest.mark.parametrize("layout", ["file", "stream"])
def test_arrow_ipc_file_and_stream(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "data.arrow"
    source = pa.table({"text": ["x", "y"], "label": pa.array([0, 1], pa.int8())})
    if layout == "file":
        feather.write_feather(source, path, compression="uncompressed")
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, source.schema) as writer:
            writer.write_table(source)
    result, table = _ingest(tmp_path, path, file={"path": "data.arrow"})
    assert result.rows == 2
    assert table.column("text").to_pylist() == ["x", "y"]


def test_unknown_extension_needs_a_format(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text('{"text": "a", "label": 0}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="set spec.file.format"):
        _ingest(tmp_path, path, file={"path": "data.txt"})
    _, table = _ingest(tmp_path, path, file={"path": "data.txt", "format": "jsonl"})
    assert table.num_rows == 1


def test_index_column_becomes_index(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, [{"id": 10, "text": "a"}, {"id": 7, "text": "b"}])
    _, table = _ingest(tmp_path, path, columns={"id": "int32", "text": "string"}, index="id")
    assert table.to_pylist() == [
        {"_index_": 7, "id": 7, "text": "b"},
        {"_index_": 10, "id": 10, "text": "a"},
    ]


def test_duplicate_index_is_an_error_and_leaves_no_parts(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path, [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}, {"id": 1, "text": "c"}]
    )
    with pytest.raises(
        DatasetError, match=r"'id' must be unique, but 1 appears 2 times \(rows 0, 2\)"
    ):
        _ingest(tmp_path, path, columns={"id": "int64", "text": "string"}, index="id")
    assert Store.open(tmp_path / "store" / "dataset" / "phrases" / "0a1b2c").list_files() == []


def test_null_and_non_integer_index(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, [{"id": 1, "text": "a"}, {"text": "b"}])
    with pytest.raises(DatasetError, match="row 1: the index column 'id' is null"):
        _ingest(tmp_path, path, columns={"id": "int64", "text": "string"}, index="id")
    with pytest.raises(DatasetError, match="index column 'text' is string; it must be an integer"):
        _ingest(tmp_path, path, columns={"id": "int64", "text": "string"}, index="text")


def test_large_input_is_split_into_parts_and_stale_parts_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "store" / "dataset" / "phrases" / "0a1b2c"
    Store.open(out).write_bytes(b"stale", "part-00099.parquet")
    monkeypatch.setattr(ingest_module, "PART_ROWS", 1000)
    path = _jsonl(tmp_path, [{"text": f"row {i}", "label": i % 2} for i in range(3500)])
    result, table = _ingest(tmp_path, path)
    assert result.rows == 3500
    assert table.column("_index_").to_pylist() == list(range(3500))
    assert table.column("text")[3499].as_py() == "row 3499"
    node = Store.open(out)
    parts = [f for f in node.list_files() if not f.startswith("_digests/")]
    assert "part-00099.parquet" not in parts
    assert parts == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
        "part-00003.parquet",
    ]
    # Each part's digest was recorded as it was written, and is what the file holds.
    assert node.collect_outputs("") == {part: node.hash_file(part) for part in parts}
