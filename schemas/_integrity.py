"""Checking a store against its manifests: what `auditc verify` and every reader rely on.

A node's manifest lists each of its files with size and sha256 (`Manifest.outputs`).
`check_files` compares one node directory with its manifest; `verify_store` does it
for every node of a store (earlier runs in `_runs/` included) and checks that each
node's upstream nodes are there and complete. Both return `Problem`s, one per finding,
so that a report names every node and file at once.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._errors import StoreError
from ._resources import WORKFLOW_KINDS
from ._store_format import DIGESTS_DIR, RUNS_DIR, FileDigest, Manifest, node_path

if TYPE_CHECKING:
    from ._store_access import Store

__all__ = ["Problem", "ProblemKind", "check_files", "listing_problems", "verify_store"]

ProblemKind = Literal[
    "missing",
    "truncated",
    "changed",
    "unlisted",
    "bad-manifest",
    "no-manifest",
    "upstream-missing",
    "upstream-incomplete",
    "not-run",
    "unsigned",
    "bad-attestation",
    "not-reproduced",
]

_HASH_THREADS = 2
"""Files hashed at the same time (hashlib and pyarrow release the GIL while they work)."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a stored node: which node, which file, what."""

    node: str
    """The node directory, relative to the store root (`<kind>/<name>/<id>[/_runs/<n>]`)."""
    file: str | None
    """The file, relative to the node directory, when the problem is about one file."""
    kind: ProblemKind
    message: str

    def render(self) -> str:
        """`<node>/<file>: <kind>: <message>` on one line."""
        where = posixpath.join(self.node, self.file) if self.file else self.node
        return f"{where}: {self.kind}: {self.message}"


def check_files(
    store: Store, node: str, manifest: Manifest, *, hashes: bool = True
) -> list[Problem]:
    """Compare a node directory with its manifest: every listed file there, whole and unchanged,
    and no file that is not listed (the manifest, `_runs/` and `_attestations/` aside).

    With `hashes=False`, only what a directory listing shows (missing, truncated,
    resized and unlisted files): cheap enough for every no-op run.

    Raises:
        StoreError: a file cannot be read (other than because it is missing).
    """
    sizes = store.file_sizes(node)
    problems = listing_problems(node, manifest, sizes)
    # Only files whose size matches: the others are reported already.
    to_hash = [
        relative
        for relative, expected in manifest.outputs.items()
        if hashes and sizes.get(relative) == expected.size
    ]
    for relative, found in _hashed(store, node, to_hash):
        expected = manifest.outputs[relative]
        if found.sha256 != expected.sha256:
            problems.append(
                Problem(
                    node,
                    relative,
                    "changed",
                    f"sha256 {found.sha256[:16]}…, the manifest says {expected.sha256[:16]}…",
                )
            )
    return sorted(problems)


def listing_problems(node: str, manifest: Manifest, sizes: Mapping[str, int]) -> list[Problem]:
    """What a directory listing shows wrong with a node: missing, truncated, resized and
    unlisted files (`check_files` with `hashes=False`, from a listing made elsewhere).

    Args:
        node: The node directory, relative to the store root (for the problems' `node`).
        manifest: The node's manifest.
        sizes: Size of every file below the node directory, by node-relative posix path.

    Returns:
        The problems, sorted; empty when every listed file is there with its size.
    """
    from ._store_access import is_node_metadata

    problems: list[Problem] = []
    for relative, expected in manifest.outputs.items():
        size = sizes.get(relative)
        if size is None:
            problems.append(Problem(node, relative, "missing", "listed in the manifest, not found"))
        elif size != expected.size:
            kind: ProblemKind = "truncated" if size < expected.size else "changed"
            problems.append(
                Problem(node, relative, kind, f"{size} bytes, the manifest says {expected.size}")
            )
    for relative in sizes:
        if relative not in manifest.outputs and not is_node_metadata(relative):
            problems.append(Problem(node, relative, "unlisted", "not listed in the manifest"))
    return sorted(problems)


def _hashed(store: Store, node: str, files: list[str]) -> Iterator[tuple[str, FileDigest]]:
    if len(files) <= 1:
        yield from ((f, store.hash_file(node, f)) for f in files)
        return
    with ThreadPoolExecutor(max_workers=_HASH_THREADS) as pool:
        yield from zip(files, pool.map(lambda f: store.hash_file(node, f), files), strict=True)


def verify_store(
    store: Store,
    *,
    only: Callable[[str], bool] | None = None,
    on_node: Callable[[str], None] | None = None,
) -> list[Problem]:
    """Check every node of a store (or those `only` accepts, by node path) and its history.

    For each node: the manifest parses (and is a file), the node's files match it
    (`check_files`), its earlier runs in `_runs/<n>/` match theirs, and every
    Dataset, Evaluation and Method in its `upstream` map is in the store and complete.
    A node directory with files but no manifest (an interrupted run, or a deleted
    manifest) is reported too.

    Args:
        store: The store to check.
        only: Which node paths (`<kind>/<name>/<id>`) to check; default all.
        on_node: Called with each node path before it is checked (progress).

    Returns:
        Every problem found, sorted by node and file; empty when the store is sound.

    Raises:
        StoreError: the store cannot be listed or a file cannot be read.
    """
    problems: list[Problem] = []
    recorded: dict[str, Manifest | None] = {}
    for stored in store.nodes():
        recorded[stored.path] = stored.manifest
        if only is not None and not only(stored.path):
            continue
        if on_node is not None:
            on_node(stored.path)
        if stored.manifest is None:
            problems.append(
                Problem(stored.path, None, "bad-manifest", stored.error or "unreadable")
            )
            continue
        problems.extend(_check_node(store, stored.path, stored.manifest))
    for path, has_files in _unrecorded_nodes(store, recorded):
        if only is not None and not only(path):
            continue
        if has_files:
            problems.append(
                Problem(
                    path,
                    None,
                    "no-manifest",
                    "files but no manifest: an unfinished run, or a removed manifest",
                )
            )
        for run_path, run in _earlier_runs(store, path, problems):
            if run.status == "complete":
                problems.extend(check_files(store, run_path, run))
    for path, manifest in recorded.items():
        if manifest is not None and (only is None or only(path)):
            problems.extend(_check_upstream(path, manifest, recorded))
    return sorted(problems)


def _check_node(store: Store, path: str, manifest: Manifest) -> list[Problem]:
    problems: list[Problem] = []
    if manifest.status == "complete":
        problems.extend(check_files(store, path, manifest))
    for run in _earlier_runs(store, path, problems):
        if run[1].status == "complete":
            problems.extend(check_files(store, run[0], run[1]))
    return problems


def _earlier_runs(store: Store, path: str, problems: list[Problem]) -> list[tuple[str, Manifest]]:
    runs: list[tuple[str, Manifest]] = []
    for number in sorted(
        int(p.split("/")[1]) for p in _run_dirs(store, path) if p.split("/")[1].isdigit()
    ):
        run_path = posixpath.join(path, RUNS_DIR, str(number))
        try:
            manifest = store.read_manifest(run_path)
        except StoreError as exc:
            problems.append(Problem(run_path, None, "bad-manifest", str(exc)))
            continue
        if manifest is None:
            problems.append(
                Problem(run_path, None, "no-manifest", "an earlier run without manifest")
            )
        else:
            runs.append((run_path, manifest))
    return runs


def _run_dirs(store: Store, path: str) -> set[str]:
    return {
        "/".join(relative.split("/")[:2])
        for relative in store.list_files(path)
        if relative.startswith(RUNS_DIR + "/") and relative.count("/") >= 2
    }


def _unrecorded_nodes(
    store: Store, recorded: dict[str, Manifest | None]
) -> Iterable[tuple[str, bool]]:
    """Node directories (`<kind>/<name>/<id>`) without a manifest that hold files, and
    whether any of those files is more than earlier runs (`_runs/`)."""
    import pyarrow.fs as pafs

    kinds = {k.lower() for k in WORKFLOW_KINDS}
    found: dict[str, bool] = {}
    selector = pafs.FileSelector(store.base, recursive=True, allow_not_found=True)
    for info in store.fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        parts = posixpath.relpath(info.path, store.base).split("/")
        if len(parts) < 4 or parts[0] not in kinds:
            continue
        node = "/".join(parts[:3])
        if node not in recorded and parts[3] != DIGESTS_DIR:
            found[node] = found.get(node, False) or parts[3] != RUNS_DIR
    return sorted(found.items())


def _check_upstream(
    path: str, manifest: Manifest, recorded: dict[str, Manifest | None]
) -> list[Problem]:
    problems: list[Problem] = []
    for key, upstream_id in manifest.upstream.items():
        kind, _, name = key.partition("/")
        if kind not in WORKFLOW_KINDS:
            continue
        upstream_path = node_path(kind, name, upstream_id)
        found = recorded.get(upstream_path)
        if upstream_path not in recorded:
            problems.append(
                Problem(
                    path,
                    None,
                    "upstream-missing",
                    f"upstream {key} {upstream_id} is not in the store",
                )
            )
        elif found is None or found.status != "complete":
            state = "unreadable" if found is None else found.status
            problems.append(
                Problem(
                    path,
                    None,
                    "upstream-incomplete",
                    f"upstream {key} {upstream_id} is {state}, not complete",
                )
            )
    return problems
