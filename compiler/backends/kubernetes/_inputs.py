"""Upload the files an audit reads to the store, content-addressed, for pods to fetch.

Pods never see the project directory: each pod's fetch step downloads its inputs
from `<store>/inputs/` by the hashes the compiler put in node ids, and refuses any
that does not match (`runners.fetch`). `auditc push` runs this before `pulumi up`;
`pulumi preview` never uploads. Uploads are idempotent: what the store already holds
(same hash) is skipped.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, urlsplit

from schemas import BackendError, Store, StoreError

from ..._project import path_refs

if TYPE_CHECKING:
    from ..._resolve import Graph

__all__ = ["InputFile", "PushResult", "check_endpoint", "graph_inputs", "push_inputs"]

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
CONNECT_TIMEOUT_S = 5.0
"""How long `auditc push` waits for an object store's endpoint to accept a connection."""


@dataclass(frozen=True, order=True)
class InputFile:
    """A file or directory the graph reads, by project-relative path and hash."""

    path: str
    sha256: str
    type: Literal["file", "dir"]


@dataclass
class PushResult:
    """What `push_inputs` uploaded and what the store already held."""

    uploaded: list[InputFile] = field(default_factory=list)
    present: list[InputFile] = field(default_factory=list)
    bytes: int = 0
    """Bytes uploaded (0 for a dry run)."""


def graph_inputs(graph: Graph) -> list[InputFile]:
    """Every file and directory the graph's nodes read, sorted by path."""
    import posixpath

    found: dict[str, InputFile] = {}
    for node in graph:
        base = posixpath.dirname(node.location.file)
        for ref in path_refs(node.resource):
            path = posixpath.normpath(posixpath.join(base, ref.value))
            found[path] = InputFile(path, node.files[path], ref.type)
    return sorted(found.values())


def push_inputs(graph: Graph, store_uri: str, *, dry_run: bool = False) -> PushResult:
    """Upload every input of `graph` to `<store>/inputs/`, skipping what is already there.

    Args:
        graph: the resolved graph (its root is the project directory).
        store_uri: the store the cluster uses (`s3://bucket/prefix?…` or a local path).
        dry_run: only report what would be uploaded.

    Raises:
        BackendError: a file changed since the specs were loaded (its hash differs).
        StoreError: the store cannot be read or written.
    """
    from runners.fetch import blob_key, tree_key

    check_endpoint(store_uri)
    store = Store.open(store_uri)
    result = PushResult()
    for item in graph_inputs(graph):
        key = blob_key(item.sha256) if item.type == "file" else tree_key(item.sha256)
        try:
            present = store.exists(key)
        except OSError as exc:
            raise StoreError(f"cannot read the store {store_uri}: {exc}") from exc
        if present:
            result.present.append(item)
            continue
        result.uploaded.append(item)
        if dry_run:
            continue
        source = Path(graph.root) / item.path
        if item.type == "file":
            result.bytes += _upload_file(store, source, item.sha256, item.path)
        else:
            result.bytes += _upload_tree(store, source, item.sha256, item.path, graph.root)
        logger.info("pushed %s (sha256 %s…)", item.path, item.sha256[:12])
    return result


def check_endpoint(store_uri: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, naming the endpoint, when an object store's endpoint cannot be reached.

    pyarrow's S3 client retries a refused or unresolvable endpoint for several seconds
    and then raises an error that names only the key it wanted; one TCP connect with a
    short timeout says what is wrong at once. Stores without `endpoint_override` (AWS
    itself) and local paths are not checked here.

    Raises:
        StoreError: the endpoint's host cannot be resolved or does not accept connections.
    """
    endpoint = parse_qs(urlsplit(store_uri).query).get("endpoint_override", [""])[0]
    if "://" not in store_uri or not endpoint:
        return
    host, _, port = endpoint.rpartition(":") if ":" in endpoint else (endpoint, "", "")
    scheme = parse_qs(urlsplit(store_uri).query).get("scheme", ["https"])[0]
    number = int(port) if port.isdigit() else (80 if scheme == "http" else 443)
    try:
        socket.create_connection((host.strip("[]"), number), timeout=timeout_s).close()
    except OSError as exc:
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {timeout_s:g} s"
        else:
            reason = exc.strerror or str(exc)
        raise StoreError(
            f"cannot reach the store's endpoint {host}:{number}: {reason} (store {store_uri}); "
            "check endpoint_override and that this machine can reach it (a cluster-internal "
            "name resolves only inside the cluster: run `auditc push` where it does, or "
            "through a port-forward)"
        ) from None


def _upload_file(store: Store, source: Path, sha256: str, label: str) -> int:
    from runners.fetch import blob_key

    key = blob_key(sha256)
    if store.exists(key):
        return 0
    target = store.path(key)
    store.makedirs(target.rsplit("/", 1)[0])
    tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
    digest, size = hashlib.sha256(), 0
    try:
        with source.open("rb") as handle, store.fs.open_output_stream(tmp) as out:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if digest.hexdigest() != sha256:
            store.fs.delete_file(tmp)
            raise BackendError(
                f"{label} changed since the specs were loaded (sha256 {digest.hexdigest()}, "
                f"expected {sha256}); run the command again"
            )
        store.fs.move(tmp, target)
    except OSError as exc:
        raise StoreError(f"cannot upload {label} to {store.uri_of(key)}: {exc}") from exc
    return size


def _upload_tree(store: Store, directory: Path, sha256: str, label: str, root: Path) -> int:
    """Upload a directory's files, then its listing: a listing present means all of it is."""
    from runners.fetch import TreeListing, tree_key

    from ... import tree_hashes

    if store.exists(tree_key(sha256)):
        return 0
    entries = tree_hashes(directory, Path(root).resolve())
    listing = TreeListing(entries=entries)
    if listing.digest() != sha256:
        raise BackendError(
            f"{label} changed since the specs were loaded (tree hash {listing.digest()}, "
            f"expected {sha256}); run the command again"
        )
    size = 0
    for relative, entry_hash in entries:
        path = directory / relative.rstrip("/")
        if relative.endswith("/"):
            size += _upload_tree(store, path.resolve(), entry_hash, f"{label}/{relative}", root)
        else:
            size += _upload_file(store, path.resolve(), entry_hash, f"{label}/{relative}")
    store.write_bytes(listing.model_dump_json().encode(), tree_key(sha256))
    return size
