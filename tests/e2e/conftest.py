"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_helpers import copy_fixture


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the local-basic test audit."""
    return copy_fixture("local-basic", tmp_path / "project")
