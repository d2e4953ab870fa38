"""The evaluation client's config for a generated project (filled in once the backend exists)."""

from __future__ import annotations

from pathlib import Path


def build(project: Path, work: Path) -> Path | None:
    """Not available yet."""
    raise RuntimeError("the evaluation client config is not available yet")
