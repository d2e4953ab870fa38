"""The store: atomic manifests, version checks, listing, datasets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas import Manifest, Store, StoreError, evaluation_output_schema, node_path


def manifest(status: str = "complete") -> Manifest:
    now = datetime.now(UTC)
    return Manifest(
        kind="Evaluation",
        name="e",
        id="0123456789abcdef0123",
        status=status,
        spec={},
        auditc_version="0.1.0",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
    )


def test_manifest_roundtrip_and_completeness(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    path = node_path("Evaluation", "e", "0123456789abcdef0123")
    assert path == "evaluation/e/0123456789abcdef0123"
    assert store.read_manifest(path) is None
    store.write_manifest(path, manifest("failed"))
    assert not store.is_complete(path)
    store.write_manifest(path, manifest())
    assert store.is_complete(path)
    assert [m.name for m in store.manifests()] == ["e"]
    assert not [p for p in (tmp_path / "store").rglob("*.tmp-*")], "temporary files left behind"


def test_manifest_of_another_version_names_file_and_versions(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    path = node_path("Dataset", "d", "x" * 20)
    data = json.loads(manifest().model_dump_json())
    data["schema_version"] = 99
    store.write_bytes(json.dumps(data).encode(), path, "manifest.json")
    with pytest.raises(
        StoreError,
        match=r"manifest.json: schema_version 99 is not supported \(this auditc reads version 1\)",
    ):
        store.read_manifest(path)


def test_open_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "nope", create=False)


def test_a_file_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file; expected a directory"):
        Store.open(tmp_path / "f")


def test_open_dataset_reads_parts_only(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    schema = evaluation_output_schema({"score": "float64"})
    table = pa.table(
        {
            "_index_": [0, 1],
            "_replication_": [0, 0],
            "score": [0.1, 0.9],
            "_error_": [None, None],
            "_error_type_": [None, None],
        },
        schema=schema,
    )
    node = node_path("Evaluation", "e", "y" * 20)
    pq.write_table(table, store.path(node, "part-0-000000.parquet")) if store.makedirs(
        store.path(node)
    ) is None else None
    store.write_bytes(b"not parquet", node, "logs", "client.log")
    assert store.open_dataset(node).to_table().num_rows == 2
    with pytest.raises(StoreError, match="holds no data parts"):
        store.open_dataset(node_path("Evaluation", "other", "z" * 20))
