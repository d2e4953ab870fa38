"""Where the files an audit reads live in a store, content-addressed.

```
<store>/inputs/sha256/<sha256>          the bytes of one file, named by their hash
<store>/inputs/trees/<tree hash>.json   a directory: its (relative path, hash) entries
```

A directory's hash is the sha256 over its sorted entries, each `relative\\0hash\\n`,
where a file's hash is the sha256 of its bytes and an entry ending in `/` is a
nested directory (a symlinked one) named by its own tree hash. That is exactly how
the compiler hashes directories into node ids (`Project.file_hashes`), so what a
pod downloads is checked against the same hash that decided whether it runs.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "INPUTS_PREFIX",
    "SHA256_PATTERN",
    "TREES_PREFIX",
    "TreeListing",
    "blob_key",
    "tree_digest",
    "tree_key",
]

INPUTS_PREFIX = "inputs/sha256"
TREES_PREFIX = "inputs/trees"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
_SHA256 = re.compile(SHA256_PATTERN)


def blob_key(sha256: str) -> str:
    """Store path of a file's bytes."""
    return f"{INPUTS_PREFIX}/{_checked(sha256)}"


def tree_key(sha256: str) -> str:
    """Store path of a directory's listing."""
    return f"{TREES_PREFIX}/{_checked(sha256)}.json"


def _checked(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


class TreeListing(BaseModel):
    """A directory's entries, as stored at `tree_key(hash)`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    entries: list[tuple[str, str]] = Field(default_factory=list)
    """Sorted `(relative path, sha256)`; a path ending in `/` is a nested tree."""

    def digest(self) -> str:
        """The directory's hash, computed from the entries."""
        return tree_digest(self.entries)


def tree_digest(entries: list[tuple[str, str]]) -> str:
    """The sha256 hex of a directory with these `(relative path, hash)` entries."""
    digest = hashlib.sha256()
    for relative, file_hash in sorted(entries):
        digest.update(f"{relative}\0{file_hash}\n".encode())
    return digest.hexdigest()
