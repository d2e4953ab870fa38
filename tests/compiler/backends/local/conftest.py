"""Fixtures of the local backend's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from local_backend_helpers import copy_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the test audit in a temporary directory."""
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local")
