"""Fixtures for method-runner tests: a store with one Dataset node, module directories."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from methods_support import PHRASES


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store root holding one Dataset node, `dataset/phrases/d1`."""
    root = tmp_path / "store"
    node = root / "dataset" / "phrases" / "d1"
    node.mkdir(parents=True)
    pq.write_table(PHRASES, node / "part-00000.parquet")
    return root


@pytest.fixture
def module_dir(tmp_path: Path) -> Callable[[str], Path]:
    """Write `source` as `tmod.py` in a fresh module directory and return the directory."""
    counter = iter(range(1000))

    def write(source: str) -> Path:
        directory = tmp_path / f"module{next(counter)}"
        directory.mkdir()
        # A fresh module name per call: imported modules stay cached in sys.modules.
        name = f"tmod_{directory.name}_{uuid.uuid4().hex}"
        (directory / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        (directory / "NAME").write_text(name, encoding="utf-8")
        return directory

    return write
