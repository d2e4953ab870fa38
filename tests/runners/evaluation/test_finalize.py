"""Canonical evaluation parts: the same rows give the same bytes, however they were written."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from runners.evaluation import finalize_parts
from runners.evaluation._io import PartWriter
from schemas import Store, evaluation_output_schema

SCHEMA = evaluation_output_schema({"score": "float64"})


def rows(n: int, replications: int = 2) -> list[tuple[object, ...]]:
    return [
        (i, r, i / 7 + r, None if i % 5 else "timeout", None if i % 5 else "timeout")
        for i in range(n)
        for r in range(replications)
    ]


def write_shuffled(root: Path, seed: int, shards: int, part_rows: int) -> Store:
    """The rows split over shards and parts in an order that depends on `seed`."""
    store = Store.open(root)
    shuffled = rows(300)
    random.Random(seed).shuffle(shuffled)
    for shard in range(shards):
        writer = PartWriter(store, SCHEMA, shard, 0)
        mine = shuffled[shard::shards]
        for start in range(0, len(mine), part_rows):
            writer.write(mine[start : start + part_rows])
    return store


def canonical(store: Store) -> dict[str, bytes]:
    return {f: store.read_bytes(f) for f in store.list_files() if f.startswith("part-")}


@pytest.mark.parametrize("part_rows", [1000, 128])
def test_rows_written_in_any_order_end_as_the_same_bytes(tmp_path: Path, part_rows: int) -> None:
    first = write_shuffled(tmp_path / "a", seed=1, shards=1, part_rows=70)
    second = write_shuffled(tmp_path / "b", seed=2, shards=3, part_rows=33)
    assert canonical(first) != canonical(second)
    expected_parts = -(-600 // part_rows)
    assert finalize_parts(first, part_rows) == finalize_parts(second, part_rows) == expected_parts
    assert canonical(first) == canonical(second)
    names = sorted(canonical(first))
    assert names == [f"part-{i:05d}.parquet" for i in range(expected_parts)]
    table = pq.read_table(first.base, schema=SCHEMA)
    keys = list(zip(table["_index_"].to_pylist(), table["_replication_"].to_pylist(), strict=True))
    assert keys == sorted(keys) and len(keys) == 600
    assert table.to_pylist() == [dict(zip(SCHEMA.names, row, strict=True)) for row in rows(300)]
    # The canonical parts' digests were recorded as they were written; the shard parts' went.
    outputs = first.collect_outputs("")
    assert sorted(outputs) == names
    assert all(outputs[n] == first.hash_file(n) for n in names)


def test_finalizing_twice_changes_nothing(tmp_path: Path) -> None:
    store = write_shuffled(tmp_path, seed=3, shards=2, part_rows=50)
    finalize_parts(store)
    before = canonical(store)
    assert finalize_parts(store) == 0
    assert canonical(store) == before


def test_canonical_and_shard_parts_side_by_side_are_merged_keeping_every_row_once(
    tmp_path: Path,
) -> None:
    # A rewrite interrupted after its canonical parts, before the shard parts went.
    store = write_shuffled(tmp_path / "a", seed=4, shards=2, part_rows=50)
    shard_parts = {f: store.read_bytes(f) for f in store.list_files() if f.startswith("part-")}
    finalize_parts(store, part_rows=128)
    for name, data in list(shard_parts.items())[:3]:
        store.write_bytes(data, name)
    # A shard that ran again after the rewrite, sending some of its rows once more.
    PartWriter(store, SCHEMA, 1, 0).write(rows(300)[1::7])
    finalize_parts(store, part_rows=128)
    table = pq.read_table(store.base, schema=SCHEMA)
    assert table.to_pylist() == [dict(zip(SCHEMA.names, row, strict=True)) for row in rows(300)]
    reference = write_shuffled(tmp_path / "b", seed=5, shards=1, part_rows=600)
    finalize_parts(reference, part_rows=128)
    assert canonical(store) == canonical(reference)


def test_finalizing_leaves_pandas_unimported(tmp_path: Path) -> None:
    # It runs in `auditc run`'s own process: pyarrow's first conversion of numpy or
    # Python values would import pandas there, 0.2 s of the fixed cost of every run.
    store = write_shuffled(tmp_path, seed=6, shards=2, part_rows=40)
    script = (
        "import sys\n"
        "from runners.evaluation import finalize_parts\n"
        "from schemas import Store\n"
        f"assert finalize_parts(Store.open({str(store.base)!r}), 128) == 5\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    table = pq.read_table(store.base, schema=SCHEMA)
    assert table.to_pylist() == [dict(zip(SCHEMA.names, row, strict=True)) for row in rows(300)]
