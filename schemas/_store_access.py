"""Access to a store: a local directory or any pyarrow filesystem URI (`s3://…`).

Every package reads and writes the store through `Store`, so the layout of
`_store_format.py` has one implementation. pyarrow is imported lazily.

S3-compatible servers take their endpoint in the URI, as pyarrow parses it:
`s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http`. Credentials come
from the usual AWS environment variables, never from specs.

Object stores are opened with every request bounded in time (`AUDITC_STORE_TIMEOUT`
seconds, 30 by default) and answer one request before `Store.open` returns, waited
for in a way Ctrl-C interrupts: an unreachable store is a `StoreError` in seconds,
not a process that hangs for a quarter of an hour and ignores signals.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import posixpath
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import IntegrityError, StoreError
from ._store_format import (
    ATTESTATIONS_DIR,
    DIGESTS_DIR,
    LEGACY_MANIFEST_FILE,
    LOGS_DIR,
    MANIFEST_FILE,
    RUNS_DIR,
    SCORES_FILE,
    STORE_SCHEMA_VERSION,
    FileDigest,
    Manifest,
    ScoresFile,
    case_file,
)

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

__all__ = [
    "DEFAULT_STORE_TIMEOUT_S",
    "STORE_TIMEOUT_ENV",
    "NodeRun",
    "Store",
    "StoredNode",
    "is_node_metadata",
    "local_file_sizes",
    "local_manifests",
    "on_remote_store",
    "remote_stores_opened",
    "store_timeout",
]

_HASH_CHUNK = 1 << 20
_TEMPORARY = re.compile(r"\.tmp-[0-9a-f]{8}$")
"""What `Store.write_bytes` names a file while it is being written."""


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
        if not text.strip():
            raise StoreError("the store is an empty string; expected a directory or a URI")
        try:
            if "://" in text:
                fs, base = _connect(text)
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

    def file_sizes(self, *parts: str) -> dict[str, int]:
        """Size of every file below a directory, by path relative to it; empty when it is missing."""
        import pyarrow.fs as pafs

        root = self.path(*parts)
        selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
        return {
            posixpath.relpath(info.path, root): int(info.size or 0)
            for info in sorted(self.fs.get_file_info(selector), key=lambda i: str(i.path))
            if info.type == pafs.FileType.File
        }

    def is_dir(self, *parts: str) -> bool:
        """Whether a directory exists (on object stores: whether anything is below it)."""
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self.path(*parts))
        return bool(info.type == pafs.FileType.Directory)

    # --------------------------------------------------------------- digests

    def hash_file(self, *parts: str) -> FileDigest:
        """Size and sha256 of a stored file, read once in chunks.

        Raises:
            StoreError: the file cannot be read.
        """
        digest = hashlib.sha256()
        size = 0
        try:
            with self.fs.open_input_stream(self.path(*parts)) as stream:
                while chunk := stream.read(_HASH_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise StoreError(f"cannot read {self.uri_of(*parts)}: {exc}") from exc
        return FileDigest(size=size, sha256=digest.hexdigest())

    def write_output(self, data: bytes, node_path: str, relative: str) -> FileDigest:
        """Write one output file of a node atomically and record its digest.

        The digest is computed from the bytes being written, so no one reads a large
        file a second time to list it in the manifest: it goes to
        `_digests/<relative>.json` in the node, which `collect_outputs` gathers at commit.
        Runners, which open their node URI as the store root, pass `node_path=""`.

        Raises:
            StoreError: the file cannot be written.
        """
        digest = FileDigest.of(data)
        self.write_bytes(data, node_path, relative)
        self.write_bytes(
            digest.model_dump_json().encode(), node_path, DIGESTS_DIR, f"{relative}.json"
        )
        return digest

    def collect_outputs(self, node_path: str) -> dict[str, FileDigest]:
        """Digests of every file of a node, for its manifest; run once, at commit.

        Files written with `write_output` take the digest recorded when they were
        written (checked against the file's size); any other file (a log the step
        appended to) is read and hashed. Temporary files of interrupted writes and
        the recorded digests are removed. The manifest itself, earlier runs
        (`_runs/`) and attestations are not outputs.

        Raises:
            StoreError: a file cannot be read or removed.
        """
        sizes = self.file_sizes(node_path)
        recorded: dict[str, FileDigest] = {}
        outputs: dict[str, FileDigest] = {}
        for relative in sizes:
            if relative.startswith(DIGESTS_DIR + "/") and relative.endswith(".json"):
                try:
                    digest = FileDigest.model_validate_json(self.read_bytes(node_path, relative))
                except ValueError:
                    continue  # a digest cut short by a crash: the file is hashed instead
                recorded[relative[len(DIGESTS_DIR) + 1 : -len(".json")]] = digest
        for relative, size in sizes.items():
            if _TEMPORARY.search(relative):
                self._delete_file(node_path, relative)
            elif not is_node_metadata(relative) and not relative.startswith(DIGESTS_DIR + "/"):
                known = recorded.get(relative)
                outputs[relative] = (
                    known
                    if known is not None and known.size == size
                    else self.hash_file(node_path, relative)
                )
        self.delete_dir(node_path, DIGESTS_DIR)
        return outputs

    def _delete_file(self, *parts: str) -> None:
        try:
            self.fs.delete_file(self.path(*parts))
        except OSError as exc:
            raise StoreError(f"cannot remove {self.uri_of(*parts)}: {exc}") from exc

    # ------------------------------------------------------------- manifests

    def read_manifest(self, node_path: str) -> Manifest | None:
        """The node's manifest, or None when the node has none (never run, or unfinished).

        Raises:
            StoreError: the manifest is unreadable, of another version, or a directory;
                or the node was written by an auditc of store format 1.
        """
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self.path(node_path, MANIFEST_FILE))
        if info.type == pafs.FileType.NotFound:
            if self.exists(node_path, LEGACY_MANIFEST_FILE):
                raise StoreError(_legacy_message(self.uri_of(node_path, LEGACY_MANIFEST_FILE)))
            return None
        if info.type != pafs.FileType.File:
            raise IntegrityError(
                f"{self.uri_of(node_path, MANIFEST_FILE)} is a directory, not a manifest"
            )
        parsed: Manifest = Manifest.parse(
            self.read_bytes(node_path, MANIFEST_FILE), self.uri_of(node_path, MANIFEST_FILE)
        )
        return parsed

    def is_complete(self, node_path: str) -> bool:
        """Whether the node's outputs are complete: its manifest exists and says so."""
        manifest = self.read_manifest(node_path)
        return manifest is not None and manifest.status == "complete"

    def write_manifest(self, node_path: str, manifest: Manifest) -> None:
        """Write `_manifest.json`, atomically and last: it is what marks the node done."""
        self.write_bytes(manifest.model_dump_json(indent=2).encode(), node_path, MANIFEST_FILE)

    def read_scores(self, node_path: str, manifest: Manifest | None = None) -> ScoresFile:
        """A SafetyCase's `_case/scores.json`, checked against its manifest's digest.

        Args:
            node_path: The node (or earlier run) directory.
            manifest: The node's manifest, when the caller has read it already.

        Raises:
            StoreError: the file is missing or invalid.
            IntegrityError: the file is not what the manifest lists.
        """
        relative = case_file(SCORES_FILE)
        data = self.read_bytes(node_path, relative)
        manifest = manifest if manifest is not None else self.read_manifest(node_path)
        if manifest is not None:
            _check_bytes(self.uri_of(node_path), relative, data, manifest)
        parsed: ScoresFile = ScoresFile.parse(data, self.uri_of(node_path, relative))
        return parsed

    def nodes(self) -> Iterator[StoredNode]:
        """Every node directory with a manifest (or a broken one), in path order.

        Unlike `manifests()`, a manifest that cannot be read is yielded with its error
        instead of raising (what `auditc verify` reports).

        Raises:
            StoreError: the store cannot be listed.
        """
        found = self._manifest_files()
        for relative in sorted(found):
            node = posixpath.dirname(relative)
            if posixpath.basename(relative) == LEGACY_MANIFEST_FILE:
                if posixpath.join(node, MANIFEST_FILE) not in found:
                    yield StoredNode(node, None, _legacy_message(self.uri_of(relative)))
                continue
            try:
                manifest = self.read_manifest(node)
            except StoreError as exc:
                yield StoredNode(node, None, str(exc))
                continue
            if manifest is not None:
                yield StoredNode(node, manifest, None)

    def _manifest_files(self) -> set[str]:
        """The store-relative paths of `<kind>/<name>/<id>/` manifests (current or legacy)."""
        names = (MANIFEST_FILE, LEGACY_MANIFEST_FILE)
        if self.is_local:
            # Three levels and no deeper: a recursive listing follows directory symlinks
            # without end (`--store /proc/self` walked the whole machine, again and again).
            root = Path(self.base)
            return {
                path.relative_to(root).as_posix()
                for name in names
                for path in root.glob(f"*/*/*/{name}")
            }
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.base, recursive=True, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:  # unreadable, a symlink loop, a pseudo-filesystem
            raise StoreError(f"cannot list store {self.uri}: {_cut(exc)}") from exc
        found: set[str] = set()
        for info in infos:
            relative = posixpath.relpath(info.path, self.base)
            if relative.count("/") == 3 and posixpath.basename(relative) in names:
                found.add(relative)
        return found

    def manifests(self) -> Iterator[Manifest]:
        """Every node's manifest (`<kind>/<name>/<id>/_manifest.json`), in path order.

        Raises:
            StoreError: a manifest is unreadable, of another version, or a directory.
        """
        for node in self.nodes():
            if node.error is not None:
                error = IntegrityError if "is a directory" in node.error else StoreError
                raise error(node.error)
            assert node.manifest is not None
            yield node.manifest

    # ------------------------------------------------------------------ runs

    def node_runs(self, node_path: str) -> list[NodeRun]:
        """Every recorded run of a node id, oldest first; the current run (if any) last.

        Earlier runs are the ones `auditc run --force` (or a failed attempt) replaced;
        each is whole in `<node>/_runs/<n>/`, so the store's readers (`read_manifest`,
        `read_scores`, `open_dataset`) take `NodeRun.path` like a node path.

        Raises:
            StoreError: a manifest is unreadable.
        """
        runs: list[NodeRun] = []
        for number in self._run_numbers(node_path):
            path = posixpath.join(node_path, RUNS_DIR, str(number))
            manifest = self.read_manifest(path)
            if manifest is not None:
                runs.append(NodeRun(number, path, manifest, current=False))
        current = self.read_manifest(node_path)
        if current is not None:
            runs.append(NodeRun(current.run, node_path, current, current=True))
        return runs

    def next_run(self, node_path: str) -> int:
        """The run number of the node's next manifest: one more than every kept run."""
        return max(self._run_numbers(node_path), default=0) + 1

    def _run_numbers(self, node_path: str) -> list[int]:
        import pyarrow.fs as pafs

        root = self.path(node_path, RUNS_DIR)
        selector = pafs.FileSelector(root, recursive=False, allow_not_found=True)
        names = [posixpath.basename(i.path) for i in self.fs.get_file_info(selector)]
        return sorted(int(n) for n in names if n.isdigit())

    def archive_run(self, node_path: str, *, resume: bool = False) -> int | None:
        """Move the node's recorded run into `_runs/<n>/`, so that a new run overwrites nothing.

        Only a run with a manifest (complete or failed) is kept; files of an unfinished
        attempt are not history. With `resume` (a failed evaluation that resumes from its
        committed parts) the files stay where they are for the new attempt: only the
        manifest moves, and the logs are copied.

        Returns:
            The kept run's number, or None when the node had no manifest.

        Raises:
            StoreError: the files cannot be moved.
        """
        manifest = self.read_manifest(node_path)
        if manifest is None:
            return None
        number = max(self.next_run(node_path), manifest.run)
        target = posixpath.join(node_path, RUNS_DIR, str(number))
        for relative in self.list_files(node_path):
            if relative.startswith(RUNS_DIR + "/") or relative == MANIFEST_FILE:
                continue
            is_log = relative.startswith(LOGS_DIR + "/")
            if resume and not is_log:
                continue
            source, destination = self.path(node_path, relative), self.path(target, relative)
            self.makedirs(posixpath.dirname(destination))
            try:
                if resume:
                    self.fs.copy_file(source, destination)
                else:
                    self.fs.move(source, destination)
            except OSError as exc:
                raise StoreError(f"cannot keep {self.uri_of(node_path, relative)}: {exc}") from exc
        # The manifest last: until it has moved, the node still reads as recorded.
        self.write_manifest(target, manifest)
        self._delete_file(node_path, MANIFEST_FILE)
        return number

    def clear_node(self, node_path: str) -> None:
        """Remove a node's files, keeping its earlier runs (`_runs/`)."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.path(node_path), recursive=False, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if posixpath.basename(info.path) == RUNS_DIR:
                continue
            if info.type == pafs.FileType.Directory:
                self.fs.delete_dir(info.path)
            else:
                self.fs.delete_file(info.path)

    # ------------------------------------------------------------------ data

    def open_dataset(self, node_path: str, *, verify: bool = True, **kwargs: Any) -> pads.Dataset:
        """The node's Parquet parts as one pyarrow dataset.

        A node with a manifest is verified first: every file it lists is re-hashed and
        nothing unlisted may be there (`verify=False` skips this, for a node still
        being written).

        Raises:
            StoreError: the node holds no data parts.
            IntegrityError: the node's files do not match its manifest.
        """
        import pyarrow.dataset as pads

        if verify:
            self.verify_node(node_path)
        files = [self.path(node_path, f) for f in self.list_files(node_path) if _is_part(f)]
        if not files:
            raise StoreError(f"{self.uri_of(node_path)} holds no data parts")
        return pads.dataset(files, filesystem=self.fs, format="parquet", **kwargs)

    def verify_node(self, node_path: str, manifest: Manifest | None = None) -> Manifest | None:
        """Check a node's files against its manifest; raise on the first node that does not match.

        Returns:
            The manifest (None when the node has none yet: nothing to check).

        Raises:
            IntegrityError: a listed file is missing, truncated or changed, or a file
                is not listed; the message names every such file.
        """
        from ._integrity import check_files

        manifest = manifest if manifest is not None else self.read_manifest(node_path)
        if manifest is None:
            return None
        problems = check_files(self, node_path, manifest)
        if problems:
            lines = "\n".join(f"  {p.render()}" for p in problems)
            raise IntegrityError(
                f"{manifest.kind}/{manifest.name} {manifest.id}: its files do not match its "
                f"manifest; refusing to read it (`auditc verify` lists every problem):\n{lines}"
            )
        return manifest


@dataclass(frozen=True)
class StoredNode:
    """A node directory of the store and its manifest, or why the manifest cannot be read."""

    path: str
    """`<kind>/<name>/<id>`, relative to the store root."""
    manifest: Manifest | None
    error: str | None


@dataclass(frozen=True)
class NodeRun:
    """One recorded run of a node id: the current one or an earlier one kept in `_runs/<n>/`."""

    run: int
    """The run's number (`Manifest.run`): 1 for the first, counting up."""
    path: str
    """Its directory relative to the store root: the node path, or `<node>/_runs/<n>`."""
    manifest: Manifest
    current: bool


def is_node_metadata(relative: str) -> bool:
    """Whether a node-relative path is the node's own bookkeeping rather than an output."""
    return (
        relative == MANIFEST_FILE
        or relative.startswith(RUNS_DIR + "/")
        or relative.startswith(ATTESTATIONS_DIR + "/")
    )


def _check_bytes(where: str, relative: str, data: bytes, manifest: Manifest) -> None:
    expected = manifest.outputs.get(relative)
    if expected is None:
        raise IntegrityError(f"{where}: {relative} is not listed in the node's manifest")
    if FileDigest.of(data) != expected:
        raise IntegrityError(
            f"{where}: {relative} does not match its manifest (changed after it was written)"
        )


def _legacy_message(where: str) -> str:
    return (
        f"{where}: written by an older auditc (store format 1); this auditc reads store "
        f"format {STORE_SCHEMA_VERSION} only. Run the audit into a new store "
        "(`auditc run --store DIR`), or read this one with the auditc that wrote it"
    )


def local_manifests(root: Path) -> Iterator[Manifest]:
    """Every manifest of a local store, as `Store.manifests` reads them, without pyarrow.

    The core install (no extras) plans against a local store with it.
    """
    for path in sorted(root.glob(f"*/*/*/{LEGACY_MANIFEST_FILE}")):
        if not (path.parent / MANIFEST_FILE).exists():
            raise StoreError(_legacy_message(str(path)))
    for path in sorted(root.glob(f"*/*/*/{MANIFEST_FILE}")):
        if not path.is_file():
            raise IntegrityError(f"{path} is a directory, not a manifest")
        yield Manifest.parse(path.read_bytes(), str(path))


def local_file_sizes(directory: Path) -> dict[str, int]:
    """`Store.file_sizes` of a local directory, without pyarrow: the size of every file
    below it by posix path relative to it; empty when it is missing.

    Raises:
        StoreError: the directory cannot be listed.
    """

    def fail(exc: OSError) -> None:
        if not isinstance(exc, FileNotFoundError):  # gone while listed: as if never there
            raise StoreError(f"cannot list {exc.filename or directory}: {exc.strerror or exc}")

    sizes: dict[str, int] = {}
    for folder, _, files in os.walk(directory, onerror=fail):
        for name in files:
            path = Path(folder, name)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue  # removed while listed (a run writing, `gc`): as if never seen
            except OSError as exc:
                raise StoreError(f"cannot read the size of {path}: {exc.strerror or exc}") from exc
            sizes[path.relative_to(directory).as_posix()] = size
    return dict(sorted(sizes.items()))


def _is_part(relative: str) -> bool:
    name = posixpath.basename(relative)
    return name.startswith("part-") and name.endswith(".parquet") and "/" not in relative


# ---------------------------------------------------------------- connecting

STORE_TIMEOUT_ENV = "AUDITC_STORE_TIMEOUT"
DEFAULT_STORE_TIMEOUT_S = 30.0
"""Seconds an object store may take to answer the first request (and each request after)."""
_CONNECT_TIMEOUT_S = 5.0
_RETRY_ATTEMPTS = 3


_REMOTE_OPENED: list[str] = []


_REMOTE_HOOKS: list[Callable[[], None]] = []


def on_remote_store(hook: Callable[[], None]) -> None:
    """Call `hook` when an object store is opened, before its first request.

    The CLI starts its signal watchdog there: an object store's client is what can block
    inside C code without end, and a process without the watchdog's thread may still
    fork (the local backend forks its launcher only from a single-threaded process).
    Registering the same hook again does nothing.
    """
    if hook not in _REMOTE_HOOKS:
        _REMOTE_HOOKS.append(hook)


def remote_stores_opened() -> tuple[str, ...]:
    """The object-store URIs this process opened (their clients may hold requests in flight)."""
    return tuple(_REMOTE_OPENED)


def store_timeout() -> float:
    """`AUDITC_STORE_TIMEOUT` seconds, or `DEFAULT_STORE_TIMEOUT_S`.

    Raises:
        StoreError: the variable is not a positive number.
    """
    raw = os.environ.get(STORE_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_STORE_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise StoreError(f"{STORE_TIMEOUT_ENV}={raw!r}; expected seconds, above 0 and at most 3600")
    return value


def _connect(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a store URI, with bounded timeouts, after one answered request.

    Without bounds a store that cannot be reached hangs: pyarrow's GCS client retries
    for 15 minutes, S3 requests wait and retry for minutes, and neither returns to
    Python, so Ctrl-C cannot stop them. The first request runs in a helper thread and
    the caller waits for it at most `store_timeout()` seconds, interruptibly.
    """
    import pyarrow.fs as pafs

    fs, base = pafs.FileSystem.from_uri(uri)
    _REMOTE_OPENED.append(uri)
    for hook in _REMOTE_HOOKS:
        hook()
    fs = _bounded(fs, store_timeout())
    _probe(fs, base.rstrip("/") or base, uri)
    return fs, base


def _bounded(fs: pafs.FileSystem, timeout: float) -> pafs.FileSystem:
    """The same filesystem with each request bounded in time (S3, GCS)."""
    import pyarrow.fs as pafs

    if isinstance(fs, pafs.S3FileSystem):
        # pyarrow pickles a filesystem as its constructor arguments: rebuild it with timeouts.
        options = dict(fs.__reduce__()[1][0])
        if options.get("connect_timeout", -1) < 0:
            options["connect_timeout"] = min(_CONNECT_TIMEOUT_S, timeout)
        if options.get("request_timeout", -1) < 0:
            options["request_timeout"] = timeout
        retries = pafs.AwsStandardS3RetryStrategy(max_attempts=_RETRY_ATTEMPTS)
        return pafs.S3FileSystem(**options, retry_strategy=retries)
    gcs = getattr(pafs, "GcsFileSystem", None)
    if gcs is not None and isinstance(fs, gcs):
        options = dict(fs.__reduce__()[1][0])
        if options.get("retry_time_limit") is None:
            options["retry_time_limit"] = datetime.timedelta(seconds=timeout)
        rebuilt: pafs.FileSystem = gcs._reconstruct(options)
        return rebuilt
    return fs


def _probe(fs: pafs.FileSystem, base: str, uri: str) -> None:
    """One request to the store, waited for at most `store_timeout()` seconds.

    Raises:
        StoreError: the store did not answer in time, or answered with an error.
    """
    timeout = store_timeout()
    outcome: list[BaseException | None] = []

    def request() -> None:
        try:
            fs.get_file_info(base)
            outcome.append(None)
        except BaseException as exc:  # handed to the waiting thread
            outcome.append(exc)

    worker = threading.Thread(target=request, name="auditc-store-probe", daemon=True)
    worker.start()
    worker.join(timeout)  # interruptible: Ctrl-C raises KeyboardInterrupt here
    if not outcome:
        raise StoreError(
            f"cannot reach store {uri}: no answer within {timeout:g} s (is there a network, "
            f"and is the endpoint right? {STORE_TIMEOUT_ENV} sets the limit)"
        )
    if outcome[0] is not None:
        raise StoreError(f"cannot open store {uri}: {_cut(outcome[0])}") from outcome[0]


def _cut(exc: BaseException, limit: int = 300) -> str:
    """An error's text, cut: pyarrow's can hold a path thousands of characters long."""
    text = str(exc)
    return text if len(text) <= limit else text[: limit - 1] + "…"
