"""Shared by the install tests: a store entry written as the local backend writes it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from schemas import MANIFEST_FILE, Manifest


def write_manifest(store: Path, kind: str, name: str, node_id: str) -> None:
    """A complete node's manifest, as the local backend writes it."""
    now = datetime.now(UTC)
    manifest = Manifest(
        kind=kind,
        name=name,
        id=node_id,
        status="complete",
        spec={},
        auditc_version="0.1.0",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
    )
    directory = store / kind.lower() / name / node_id
    directory.mkdir(parents=True)
    (directory / MANIFEST_FILE).write_text(manifest.model_dump_json(), encoding="utf-8")
