"""Download a pod's inputs from the store and refuse any whose hash does not match.

The compiler names each input by the sha256 it hashed into the node id; `auditc push`
uploaded it under that hash. A pod's first step fetches every input to the path its
runner config expects, verifying the hash of what it wrote, so a Job never runs on
data other than what `auditc plan` showed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas import RunnerError, Store, StoreError

from ._layout import SHA256_PATTERN, TreeListing, blob_key, tree_key

__all__ = ["FetchConfig", "FetchItem", "FetchResult", "InputError", "fetch_inputs"]

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


class InputError(RunnerError):
    """An input is missing from the store or its content does not match its hash.

    Exit code 2, like an invalid config: retrying cannot help, so a Kubernetes
    `podFailurePolicy` fails the Job at once.
    """

    code = "input"
    exit_code = 2


class FetchItem(BaseModel):
    """One input: a file or a directory, by hash, and where it goes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    """Project-relative path, for messages."""
    sha256: str = Field(pattern=SHA256_PATTERN)
    type: Literal["file", "dir"]
    dest: str
    """Absolute path to write it to."""


class FetchConfig(BaseModel):
    """What a pod's fetch step downloads.

    Example:
        >>> FetchConfig(store="s3://bucket/audits", items=[])  # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str
    """The store root URI (inputs live under `<store>/inputs/`)."""
    items: list[FetchItem] = Field(default_factory=list)
    started_file: str | None = None
    """If set, the current UTC time is written here first (the manifest's `started_at`)."""


class FetchResult(BaseModel):
    """What was fetched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: int
    bytes: int


def fetch_inputs(config: FetchConfig) -> FetchResult:
    """Download and verify every input of `config`.

    Raises:
        InputError: an input is missing from the store or does not match its hash.
        StoreError: the store cannot be read.
    """
    if config.started_file:
        _write_text(Path(config.started_file), datetime.now(UTC).isoformat())
    store = Store.open(config.store, create=False)
    files = size = 0
    for item in config.items:
        dest = Path(item.dest)
        if item.type == "file":
            size += _fetch_file(store, item.sha256, dest, item.path)
            files += 1
        else:
            n, s = _fetch_tree(store, item.sha256, dest, item.path)
            files, size = files + n, size + s
        logger.info("fetched %s (sha256 %s…) to %s", item.path, item.sha256[:12], dest)
    return FetchResult(files=files, bytes=size)


def _fetch_tree(store: Store, sha256: str, dest: Path, label: str) -> tuple[int, int]:
    key = tree_key(sha256)
    _require(store, key, label, sha256)
    listing = TreeListing.model_validate_json(store.read_bytes(key))
    if listing.digest() != sha256:
        raise InputError(
            f"input directory {label}: the listing at {store.uri_of(key)} hashes to "
            f"{listing.digest()}, expected {sha256}; re-run `auditc push`"
        )
    dest.mkdir(parents=True, exist_ok=True)
    files = size = 0
    for relative, entry_hash in listing.entries:
        target = _inside(dest, relative.rstrip("/"), label)
        if relative.endswith("/"):
            n, s = _fetch_tree(store, entry_hash, target, f"{label}/{relative}")
        else:
            n, s = 1, _fetch_file(store, entry_hash, target, f"{label}/{relative}")
        files, size = files + n, size + s
    return files, size


def _inside(dest: Path, relative: str, label: str) -> Path:
    target = (dest / relative).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise InputError(f"input directory {label}: entry {relative!r} leaves the directory")
    return target


def _fetch_file(store: Store, sha256: str, dest: Path, label: str) -> int:
    key = blob_key(sha256)
    _require(store, key, label, sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    digest, size = hashlib.sha256(), 0
    try:
        with store.fs.open_input_stream(store.path(key)) as stream, tmp.open("wb") as out:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot read {store.uri_of(key)}: {exc}") from exc
    if digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise InputError(
            f"input {label}: {store.uri_of(key)} has sha256 {digest.hexdigest()}, "
            f"expected {sha256}; the store holds other content than the audit hashed"
        )
    os.replace(tmp, dest)
    return size


def _require(store: Store, key: str, label: str, sha256: str) -> None:
    if not store.exists(key):
        raise InputError(
            f"input {label} (sha256 {sha256[:12]}…) is not in the store at {store.uri_of(key)}; "
            f"run `auditc push --store {store.uri}` before deploying"
        )


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
