"""Access to a store: a local directory or any pyarrow filesystem URI (`s3://…`).

Every package reads and writes the store through `Store`, so the layout of
`_store.py` has one implementation. pyarrow is imported lazily.

S3-compatible servers take their endpoint in the URI, as pyarrow parses it:
`s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http`. Credentials come
from the usual AWS environment variables, never from specs.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import StoreError
from ._store import MANIFEST_FILE, SCORES_FILE, Manifest, ScoresFile

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

__all__ = ["Store", "local_manifests"]


@dataclass(frozen=True)
class Store:
    """A store root on a pyarrow filesystem.

    Example:
        >>> store = Store.open(".auditc")                      # doctest: +SKIP
        >>> store.read_manifest("evaluation/e/3f2a9c0b1d2e3f4a5b6c")  # doctest: +SKIP
    """

    uri: str
    fs: pafs.FileSystem
    base: str
    """Root path on `fs` (no trailing slash)."""

    @classmethod
    def open(cls, uri: str | Path, *, create: bool = True) -> Store:
        """Open a store by URI or local path, creating a local root if needed.

        Raises:
            StoreError: the URI is not understood or the filesystem cannot be reached.
        """
        import pyarrow.fs as pafs

        text = str(uri)
        try:
            if "://" in text:
                fs, base = pafs.FileSystem.from_uri(text)
            else:
                local = Path(text).expanduser().resolve()
                if local.exists() and not local.is_dir():
                    raise StoreError(f"store {text!r} is a file; expected a directory (or a URI)")
                if create:
                    local.mkdir(parents=True, exist_ok=True)
                elif not local.is_dir():
                    raise StoreError(
                        f"store {text!r} does not exist (run an audit first, or pass --store)"
                    )
                fs, base = pafs.LocalFileSystem(), local.as_posix()
        except StoreError:
            raise
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError subclasses
            raise StoreError(f"cannot open store {text!r}: {exc}") from exc
        return cls(text, fs, base.rstrip("/"))

    @property
    def is_local(self) -> bool:
        """Whether the store is a directory on this machine."""
        import pyarrow.fs as pafs

        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        """A path on `fs` under the root."""
        return posixpath.join(self.base, *parts)

    def uri_of(self, *parts: str) -> str:
        """A URI (or local path) that other processes can open for the same location."""
        if self.is_local:
            return self.path(*parts)
        scheme, _, rest = self.uri.partition("://")
        bucket_prefix, _, query = rest.partition("?")
        joined = posixpath.join(bucket_prefix.rstrip("/"), *parts)
        return f"{scheme}://{joined}" + (f"?{query}" if query else "")

    # ---------------------------------------------------------------- bytes

    def exists(self, *parts: str) -> bool:
        """Whether a file exists."""
        import pyarrow.fs as pafs

        found: bool = self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound
        return found

    def read_bytes(self, *parts: str) -> bytes:
        """The content of a file. Raises StoreError when it is missing."""
        try:
            with self.fs.open_input_stream(self.path(*parts)) as stream:
                data: bytes = stream.read()
                return data
        except (FileNotFoundError, OSError) as exc:
            raise StoreError(f"cannot read {self.uri_of(*parts)}: {exc}") from exc

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Write a file atomically: readers see the old content or the new, never a part."""
        target = self.path(*parts)
        self.makedirs(posixpath.dirname(target))
        tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)
            self.fs.move(tmp, target)
        except OSError as exc:
            raise StoreError(f"cannot write {self.uri_of(*parts)}: {exc}") from exc

    def makedirs(self, fs_path: str) -> None:
        """Create a directory on `fs` (a no-op on object stores)."""
        if self.is_local:
            self.fs.create_dir(fs_path, recursive=True)

    def delete_dir(self, *parts: str) -> None:
        """Remove a directory and everything in it, if it exists."""
        import pyarrow.fs as pafs

        target = self.path(*parts)
        if self.fs.get_file_info(target).type != pafs.FileType.NotFound:
            self.fs.delete_dir(target)

    def list_files(self, *parts: str) -> list[str]:
        """Paths (relative to `parts`) of every file below a directory; empty when it is missing."""
        import pyarrow.fs as pafs

        root = self.path(*parts)
        selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
        return sorted(
            posixpath.relpath(info.path, root)
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
        )

    # ------------------------------------------------------------- manifests

    def read_manifest(self, node_path: str) -> Manifest | None:
        """The node's manifest, or None when the node has none (never run, or unfinished)."""
        if not self.exists(node_path, MANIFEST_FILE):
            return None
        parsed: Manifest = Manifest.parse(
            self.read_bytes(node_path, MANIFEST_FILE), self.uri_of(node_path, MANIFEST_FILE)
        )
        return parsed

    def is_complete(self, node_path: str) -> bool:
        """Whether the node's outputs are complete: its manifest exists and says so."""
        manifest = self.read_manifest(node_path)
        return manifest is not None and manifest.status == "complete"

    def write_manifest(self, node_path: str, manifest: Manifest) -> None:
        """Write `manifest.json`, atomically and last: it is what marks the node done."""
        self.write_bytes(manifest.model_dump_json(indent=2).encode(), node_path, MANIFEST_FILE)

    def read_scores(self, node_path: str) -> ScoresFile:
        """A SafetyCase's `scores.json`."""
        parsed: ScoresFile = ScoresFile.parse(
            self.read_bytes(node_path, SCORES_FILE), self.uri_of(node_path, SCORES_FILE)
        )
        return parsed

    def manifests(self) -> Iterator[Manifest]:
        """Every manifest in the store (`<kind>/<name>/<id>/manifest.json`), in path order."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.base, recursive=True, allow_not_found=True)
        paths = sorted(
            info.path
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.path.endswith("/" + MANIFEST_FILE)
        )
        for path in paths:
            relative = posixpath.relpath(posixpath.dirname(path), self.base)
            if relative.count("/") == 2:
                manifest = self.read_manifest(relative)
                if manifest is not None:
                    yield manifest

    # ------------------------------------------------------------------ data

    def open_dataset(self, node_path: str, **kwargs: Any) -> pads.Dataset:
        """The node's Parquet parts as one pyarrow dataset."""
        import pyarrow.dataset as pads

        files = [self.path(node_path, f) for f in self.list_files(node_path) if _is_part(f)]
        if not files:
            raise StoreError(f"{self.uri_of(node_path)} holds no data parts")
        return pads.dataset(files, filesystem=self.fs, format="parquet", **kwargs)


def local_manifests(root: Path) -> Iterator[Manifest]:
    """Every manifest of a local store, as `Store.manifests` reads them, without pyarrow.

    The core install (no extras) plans against a local store with it.
    """
    for path in sorted(root.glob(f"*/*/*/{MANIFEST_FILE}")):
        if path.is_file():
            yield Manifest.parse(path.read_bytes(), str(path))


def _is_part(relative: str) -> bool:
    name = posixpath.basename(relative)
    return name.startswith("part-") and name.endswith(".parquet") and "/" not in relative
