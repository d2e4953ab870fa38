"""Digests of a node's files, and what `verify_store` / `verify_node` find when they change."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas import (
    FileDigest,
    IntegrityError,
    Manifest,
    Problem,
    Store,
    StoreError,
    node_path,
    verify_store,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
DATASET = node_path("Dataset", "d", "d" * 20)
EVALUATION = node_path("Evaluation", "e", "e" * 20)


def parquet(values: list[int]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"_index_": values}), sink)
    return sink.getvalue()


def commit(
    store: Store, path: str, files: dict[str, bytes], upstream: dict[str, str] | None = None
) -> Manifest:
    """Write a node as a backend does: outputs with their digests, then the manifest."""
    kind, name, node_id = path.split("/")
    for relative, data in files.items():
        store.write_output(data, path, relative)
    manifest = Manifest(
        kind=kind.capitalize(),
        name=name,
        id=node_id,
        status="complete",
        spec={},
        upstream=upstream or {},
        auditc_version="test",
        started_at=NOW,
        finished_at=NOW,
        duration_s=0.0,
        outputs=store.collect_outputs(path),
    )
    store.write_manifest(path, manifest)
    return manifest


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    commit(store, DATASET, {"part-00000.parquet": parquet([0, 1, 2]), "_logs/dataset.log": b"ok\n"})
    commit(
        store,
        EVALUATION,
        {"part-0-000000.parquet": parquet([0, 1, 2]), "_logs/evaluation.log": b"3 rows\n"},
        upstream={"Dataset/d": "d" * 20, "InferenceService/s": "s" * 20},
    )
    return store


def file(store: Store, path: str, relative: str) -> Path:
    return Path(store.path(path, relative))


def lines(problems: list[Problem]) -> list[str]:
    return [p.render() for p in problems]


def test_every_file_is_listed_with_size_and_sha256_and_no_digest_is_left(store: Store) -> None:
    manifest = store.read_manifest(EVALUATION)
    assert manifest is not None
    assert sorted(manifest.outputs) == ["_logs/evaluation.log", "part-0-000000.parquet"]
    for relative, digest in manifest.outputs.items():
        assert digest == FileDigest.of(file(store, EVALUATION, relative).read_bytes())
    assert not Path(store.path(EVALUATION, "_digests")).exists()
    assert verify_store(store) == []


def test_recorded_digests_are_used_instead_of_reading_the_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(tmp_path)
    store.write_output(parquet(list(range(1000))), DATASET, "part-00000.parquet")
    Path(store.path(DATASET, "_logs")).mkdir(parents=True)
    file(store, DATASET, "_logs/step.log").write_bytes(b"appended by a subprocess\n")
    hashed: list[str] = []
    original = Store.hash_file

    def spy(self: Store, *parts: str) -> FileDigest:
        hashed.append(parts[-1])
        return original(self, *parts)

    monkeypatch.setattr(Store, "hash_file", spy)
    outputs = store.collect_outputs(DATASET)
    assert hashed == ["_logs/step.log"]  # the log has no recorded digest; the part has
    assert outputs["part-00000.parquet"] == FileDigest.of(
        file(store, DATASET, "part-00000.parquet").read_bytes()
    )


def test_a_recorded_digest_of_another_size_is_not_trusted(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.write_output(b"first", DATASET, "a.txt")
    file(store, DATASET, "a.txt").write_bytes(b"rewritten without a digest")
    assert store.collect_outputs(DATASET)["a.txt"] == FileDigest.of(b"rewritten without a digest")


def test_temporary_files_of_interrupted_writes_are_removed_at_commit(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.write_output(b"x", DATASET, "part-00000.parquet")
    file(store, DATASET, "part-00001.parquet.tmp-0123abcd").write_bytes(b"half")
    assert list(store.collect_outputs(DATASET)) == ["part-00000.parquet"]
    assert not file(store, DATASET, "part-00001.parquet.tmp-0123abcd").exists()


def test_a_flipped_byte_is_reported_and_refused(store: Store) -> None:
    part = file(store, EVALUATION, "part-0-000000.parquet")
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    [problem] = verify_store(store)
    assert (problem.node, problem.file, problem.kind) == (
        EVALUATION,
        "part-0-000000.parquet",
        "changed",
    )
    assert problem.render().startswith(f"{EVALUATION}/part-0-000000.parquet: changed: sha256 ")
    with pytest.raises(IntegrityError, match=r"Evaluation/e e{20}: its files do not match"):
        store.open_dataset(EVALUATION)


def test_a_truncated_file_is_reported_and_refused(store: Store) -> None:
    part = file(store, DATASET, "part-00000.parquet")
    size = part.stat().st_size
    part.write_bytes(part.read_bytes()[:-10])
    assert lines(verify_store(store)) == [
        f"{DATASET}/part-00000.parquet: truncated: {size - 10} bytes, the manifest says {size}"
    ]
    with pytest.raises(IntegrityError, match="part-00000.parquet: truncated"):
        store.open_dataset(DATASET)


def test_a_deleted_file_is_reported_and_refused(store: Store) -> None:
    file(store, DATASET, "_logs/dataset.log").unlink()
    assert lines(verify_store(store)) == [
        f"{DATASET}/_logs/dataset.log: missing: listed in the manifest, not found"
    ]
    with pytest.raises(IntegrityError, match="_logs/dataset.log: missing"):
        store.open_dataset(DATASET)


def test_an_added_file_is_reported_and_refused(store: Store) -> None:
    file(store, DATASET, "part-00001.parquet").write_bytes(parquet([0]))
    assert lines(verify_store(store)) == [
        f"{DATASET}/part-00001.parquet: unlisted: not listed in the manifest"
    ]
    with pytest.raises(IntegrityError, match="part-00001.parquet: unlisted"):
        store.open_dataset(DATASET)


def test_an_edited_digest_in_a_manifest_is_reported(store: Store) -> None:
    manifest_file = file(store, DATASET, "_manifest.json")
    raw = json.loads(manifest_file.read_text())
    raw["outputs"]["part-00000.parquet"]["sha256"] = "0" * 64
    manifest_file.write_text(json.dumps(raw))
    [problem] = verify_store(store)
    assert (problem.file, problem.kind) == ("part-00000.parquet", "changed")


def test_a_manifest_that_does_not_parse_is_reported_and_refused(store: Store) -> None:
    file(store, DATASET, "_manifest.json").write_text('{"kind": "Dataset"')
    problems = verify_store(store)
    assert [(p.node, p.kind) for p in problems] == [
        (DATASET, "bad-manifest"),
        (EVALUATION, "upstream-incomplete"),
    ]
    assert "not a valid Manifest" in problems[0].message
    with pytest.raises(StoreError, match="not a valid Manifest"):
        list(store.manifests())


def test_a_manifest_that_is_a_directory_is_reported_and_refused(store: Store) -> None:
    manifest_file = file(store, DATASET, "_manifest.json")
    manifest_file.unlink()
    manifest_file.mkdir()
    (manifest_file / "x").write_text("{}")
    problems = verify_store(store)
    assert (problems[0].node, problems[0].kind) == (DATASET, "bad-manifest")
    assert "is a directory, not a manifest" in problems[0].message
    with pytest.raises(IntegrityError, match="_manifest.json is a directory, not a manifest"):
        list(store.manifests())


def test_upstream_missing_or_not_complete_is_reported(store: Store) -> None:
    manifest = store.read_manifest(DATASET)
    assert manifest is not None
    store.write_manifest(DATASET, manifest.model_copy(update={"status": "failed"}))
    assert lines(verify_store(store)) == [
        f"{EVALUATION}: upstream-incomplete: upstream Dataset/d {'d' * 20} is failed, not complete"
    ]
    store.delete_dir(DATASET)
    assert lines(verify_store(store)) == [
        f"{EVALUATION}: upstream-missing: upstream Dataset/d {'d' * 20} is not in the store"
    ]


def test_a_node_with_files_but_no_manifest_is_reported(store: Store) -> None:
    file(store, DATASET, "_manifest.json").unlink()
    assert lines(verify_store(store)) == [
        f"{DATASET}: no-manifest: files but no manifest: an unfinished run, or a removed manifest",
        f"{EVALUATION}: upstream-missing: upstream Dataset/d {'d' * 20} is not in the store",
    ]


def test_only_selects_the_nodes_to_check(store: Store) -> None:
    file(store, DATASET, "part-00000.parquet").write_bytes(b"x")
    assert verify_store(store, only=lambda path: path == EVALUATION) == []
    assert [p.node for p in verify_store(store, only=lambda path: path == DATASET)] == [DATASET]


def test_output_paths_must_stay_in_the_node_directory() -> None:
    digest = {"size": 1, "sha256": "0" * 64}
    for bad in ("../x", "/etc/passwd", "a/../../b", "a//b", ""):
        with pytest.raises(ValueError, match="not a plain path inside the node directory"):
            Manifest.model_validate(
                {
                    "kind": "Dataset",
                    "name": "d",
                    "id": "d" * 20,
                    "status": "complete",
                    "spec": {},
                    "auditc_version": "t",
                    "started_at": NOW,
                    "finished_at": NOW,
                    "duration_s": 0,
                    "outputs": {bad: digest},
                }
            )
