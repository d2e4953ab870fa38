"""`python -m runners.datasets`: Hugging Face datasets from the cache, exit codes, --result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas import Store

REPO = "auditc-tests/toy-phrases"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def _hf_cache(root: Path) -> Path:
    """A Hugging Face hub cache holding one dataset repo at REVISION (what a download leaves)."""
    repo_dir = root / ("datasets--" + REPO.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / REVISION / "data"
    snapshot.mkdir(parents=True)
    (snapshot / "train-00000.jsonl").write_text(
        '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n', encoding="utf-8"
    )
    (snapshot / "train-00001.jsonl").write_text('{"text": "c", "label": 1}\n', encoding="utf-8")
    (snapshot / "README.md").write_text("# toy\n", encoding="utf-8")
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(REVISION, encoding="utf-8")
    return root


def _run(tmp_path: Path, config: dict[str, object]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "ingest.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    env = {**os.environ, "HF_HUB_CACHE": str(_hf_cache(tmp_path / "hf")), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "runners.datasets", str(path), "--result", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _hf_dataset(files: list[str], revision: str = REVISION) -> dict[str, object]:
    return {
        "kind": "Dataset",
        "name": "toy",
        "spec": {
            "huggingface": {"repo": REPO, "revision": revision, "files": files},
            "columns": {"text": "string", "label": "int8"},
        },
    }


def test_huggingface_dataset_is_read_offline_from_the_cache(tmp_path: Path) -> None:
    out = tmp_path / "store" / "dataset" / "toy" / "abc123"
    files = ["data/train-00000.jsonl", "data/train-*.jsonl"]
    done = _run(tmp_path, {"dataset": _hf_dataset(files), "output_uri": str(out)})
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r.json").read_text()) == {
        "rows": 3,
        "columns": ["_index_", "text", "label"],
    }
    table = Store.open(out).open_dataset("").to_table().sort_by("_index_")
    # files in the order named (a file matched twice is read once); positions run on
    assert table.column("text").to_pylist() == ["a", "b", "c"]
    assert table.column("_index_").to_pylist() == [0, 1, 2]


def test_revision_missing_from_the_cache_fails_with_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "store" / "dataset" / "toy" / "abc123"
    dataset = _hf_dataset(["data/train-00000.jsonl"], revision="f" * 40)
    done = _run(tmp_path, {"dataset": dataset, "output_uri": str(out)})
    assert done.returncode == 1
    assert (
        f"huggingface dataset {REPO}@{'f' * 40}: cannot get 'data/train-00000.jsonl'" in done.stderr
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "config",
    [
        {"dataset": _hf_dataset(["x.jsonl"]), "output_uri": "/tmp/x", "surprise": 1},
        {"dataset": _hf_dataset(["x.jsonl"]), "source_path": "/tmp/x.jsonl", "output_uri": "/x"},
    ],
)
def test_invalid_config_exits_2(tmp_path: Path, config: dict[str, object]) -> None:
    done = _run(tmp_path, config)
    assert done.returncode == 2
    assert "not a valid IngestConfig (1 error):" in done.stderr
