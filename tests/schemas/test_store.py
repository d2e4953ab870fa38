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
    store.write_bytes(json.dumps(data).encode(), path, "_manifest.json")
    with pytest.raises(
        StoreError,
        match=r"_manifest.json: schema_version 99 is not supported \(this auditc reads version 2\)",
    ):
        store.read_manifest(path)


def test_a_store_of_format_1_is_refused_with_what_to_do(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    path = node_path("Dataset", "d", "x" * 20)
    data = json.loads(manifest().model_dump_json())
    data["schema_version"] = 1
    store.write_bytes(json.dumps(data).encode(), path, "manifest.json")
    message = r"manifest.json: written by an older auditc \(store format 1\); this auditc reads store format 2 only"
    with pytest.raises(StoreError, match=message):
        store.read_manifest(path)
    with pytest.raises(StoreError, match=message):
        list(store.manifests())


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
    store.write_bytes(b"not parquet", node, "_logs", "client.log")
    assert store.open_dataset(node).to_table().num_rows == 2
    with pytest.raises(StoreError, match="holds no data parts"):
        store.open_dataset(node_path("Evaluation", "other", "z" * 20))


def _run_node(store: Store, path: str, content: bytes, status: str = "complete") -> Manifest:
    """One run of a node: an output written with its digest, then its manifest."""
    store.write_output(content, path, "part-00000.parquet")
    store.write_output(b"log of " + content, path, "_logs/step.log")
    recorded = manifest(status).model_copy(
        update={"outputs": store.collect_outputs(path), "run": store.next_run(path)}
    )
    store.write_manifest(path, recorded)
    return recorded


def test_archive_keeps_each_run_whole_and_node_runs_lists_them(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    path = node_path("Evaluation", "e", "0123456789abcdef0123")
    assert store.node_runs(path) == [] and store.archive_run(path) is None
    first = _run_node(store, path, b"first")
    assert first.run == 1
    assert store.archive_run(path) == 1
    store.clear_node(path)
    second = _run_node(store, path, b"second")
    assert second.run == 2
    runs = store.node_runs(path)
    assert [(r.run, r.path, r.current) for r in runs] == [
        (1, f"{path}/_runs/1", False),
        (2, path, True),
    ]
    assert runs[0].manifest == first and runs[1].manifest == second
    assert store.read_bytes(runs[0].path, "part-00000.parquet") == b"first"
    assert store.read_bytes(runs[1].path, "part-00000.parquet") == b"second"
    # Each run verifies against its own manifest; history is not an unlisted file.
    for run in runs:
        assert store.verify_node(run.path) == run.manifest
    assert [m.run for m in store.manifests()] == [2]  # readers of the store see the current run


def test_archive_for_a_resume_keeps_the_parts_in_place(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    path = node_path("Evaluation", "e", "0123456789abcdef0123")
    _run_node(store, path, b"partial", status="failed")
    assert store.archive_run(path, resume=True) == 1
    assert store.read_manifest(path) is None  # the node reads as unfinished
    assert store.read_bytes(path, "part-00000.parquet") == b"partial"  # for the resume
    assert store.read_bytes(path, "_runs", "1", "_logs", "step.log") == b"log of partial"
    assert [r.manifest.status for r in store.node_runs(path)] == ["failed"]


def test_clear_node_keeps_earlier_runs(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    path = node_path("Dataset", "d", "x" * 20)
    _run_node(store, path, b"one")
    store.archive_run(path)
    store.write_bytes(b"stale", path, "part-00009.parquet")
    store.clear_node(path)
    assert store.list_files(path) == [
        "_runs/1/_logs/step.log",
        "_runs/1/_manifest.json",
        "_runs/1/part-00000.parquet",
    ]
