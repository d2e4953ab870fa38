"""git for auditc: plan baselines at a git ref, and the tree state a run records.

`git_state(root)` says what produced a run: the commit, whether files under the project
root differed from it, and a hash of those differences (`Manifest.git_*`).

Baselines for `auditc plan`: the project as it was at a git ref, or what a store holds.

The files under the project root at that ref are copied, blob by blob, into a
temporary directory (`git ls-tree` + `git cat-file --batch`), which is then loaded
like any project. The working tree, the index and HEAD are never touched, and no
git filters or hooks run (blobs are read raw), so planning a pull request from a
fork executes nothing from it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from schemas import (
    Issue,
    SpecError,
    UsageError,
    listing_problems,
    local_file_sizes,
    local_manifests,
)

from ._plan import Baseline
from ._project import Project
from ._resolve import resolve_graph
from ._validate import load_project

__all__ = [
    "GitError",
    "GitState",
    "checkout_tree",
    "git_state",
    "load_baseline",
    "load_project_at",
    "read_file_at",
]

_GIT_TIMEOUT = 120.0


class GitError(UsageError):
    """git is missing, the project is not in a repository, or the ref is unknown."""

    code = "git"


@dataclass(frozen=True)
class GitState:
    """The git tree a run came from, as recorded in its manifest."""

    commit: str | None = None
    """`git rev-parse HEAD`; None outside git or before the first commit."""
    dirty: bool | None = None
    """Whether files under the project root differ from `commit`; None outside git."""
    uncommitted_sha256: str | None = None
    """sha256 over the differences (each changed path and its content); None when clean."""


def git_state(root: Path, *, exclude: Sequence[Path] = ()) -> GitState:
    """The commit, dirty flag and hash of uncommitted changes under `root`; never fails.

    Uncommitted changes are the paths `git status` reports under `root` (modified,
    staged, deleted and untracked files; ignored ones are not): the hash covers each
    path and the content it has in the working tree, so staging a change does not
    alter it, and two runs from the same edits get the same hash.

    Args:
        root: The project root (anywhere inside a git work tree).
        exclude: Directories under `root` not to count (a store inside the project).

    Returns:
        Everything None outside a git work tree or without git.
    """
    try:
        toplevel = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    except GitError:
        return GitState()
    try:
        commit: str | None = _git(root, "rev-parse", "--verify", "--quiet", "HEAD").strip()
    except GitError:
        commit = None  # a repository without commits yet: everything is uncommitted
    pathspecs = ["."] + [
        f":(exclude){p.resolve().relative_to(root.resolve()).as_posix()}"
        for p in exclude
        if p.resolve().is_relative_to(root.resolve()) and p.resolve() != root.resolve()
    ]
    try:
        status = _git(
            root,
            "-c",
            "core.fsmonitor=false",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--",
            *pathspecs,
        )
    except GitError:
        return GitState(commit)
    paths = sorted({record[3:] for record in status.split("\0") if len(record) > 3})
    if not paths:
        return GitState(commit, False, None)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(
            f"{path}\0{_content_hash(toplevel / path)}\n".encode("utf-8", "surrogateescape")
        )
    return GitState(commit, True, digest.hexdigest())


def _content_hash(path: Path) -> str:
    """What a changed path holds in the working tree: a file's sha256, a link's target."""
    try:
        if path.is_symlink():
            return "link:" + os.readlink(path)
        if not path.exists():
            return "deleted"
        if path.is_dir():  # a submodule or nested repository
            return "directory"
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError as exc:
        return f"unreadable:{exc.strerror}"


def load_baseline(
    root: Path, paths: list[Path], *, against: str | None = None, store: str | None = None
) -> Baseline:
    """The baseline of a plan: the graph at git ref `against`, else what `store` holds.

    A local store that does not exist yet is an empty baseline (everything is new).
    Each complete node of the store is listed (not hashed) and compared with its
    manifest, as `auditc run` does before it keeps a node: one that does not match is
    damaged in the plan, not kept.

    Args:
        root: the project root.
        paths: the spec paths, as for `load_project`.
        against: a git ref; when given, `store` is not read.
        store: a store URI or directory (default `<root>/.auditc`).

    Raises:
        GitError: `against` cannot be read from git.
        SpecError: the specs at `against` are invalid.
        StoreError: the store cannot be read.
    """
    if against is not None:
        graph = resolve_graph(load_project_at(root, against, paths))
        return Baseline.from_graph(graph, f"git {against}")
    uri = store if store is not None else str(root / ".auditc")
    if "://" not in uri:
        local = Path(uri).expanduser()
        if local.exists() and not local.is_dir():
            raise UsageError(f"store {uri!r} is a file; expected a directory or a URI")
        if not local.is_dir():
            return Baseline.empty(f"store {uri} (empty)")
        # Read without pyarrow: the core install plans against a local store too.
        return Baseline.from_manifests(
            local_manifests(local),
            f"store {uri}",
            damage=lambda path, m: listing_problems(path, m, local_file_sizes(local / path)),
        )
    from schemas import Store, require_extra

    require_extra("s3", f"planning against the store {uri}")
    opened = Store.open(uri, create=False)
    return Baseline.from_manifests(
        opened.manifests(),
        f"store {uri}",
        damage=lambda path, m: listing_problems(path, m, opened.file_sizes(path)),
    )


def load_project_at(root: Path, ref: str, paths: list[Path]) -> Project:
    """Load the specs as they were at `ref`, with the same spec paths as now.

    Spec paths that did not exist at `ref` are skipped; if none existed, the project
    at `ref` is empty (everything is new).

    Args:
        root: the project root now (inside a git work tree).
        ref: any commit-ish git understands (`HEAD~1`, `main`, a sha).
        paths: spec files or directories, under `root`.

    Returns:
        The project at `ref`; its `root` is a temporary directory that is removed on return,
        so use it only for what was already read (resources and file hashes).

    Raises:
        GitError: not a git repository, unknown ref, or git failed.
        SpecError: the specs at `ref` are invalid (file names are prefixed with `ref:`).
    """
    root = root.resolve()
    with checkout_tree(root, ref) as tree:
        relative = [_relative(root, p) for p in paths]
        existing = [tree / r for r in relative if (tree / r).exists()]
        if not existing:
            return Project(tree, {}, {})
        try:
            return load_project(tree, existing)
        except SpecError as exc:
            issues = [_at_ref(issue, ref) for issue in exc.issues]
            raise type(exc)(issues) from None


def _at_ref(issue: Issue, ref: str) -> Issue:
    return Issue(
        f"{ref}:{issue.file}",
        issue.line,
        issue.column,
        issue.message,
        issue.code,
        issue.resource,
        issue.path,
    )


def _relative(root: Path, path: Path) -> Path:
    absolute = Path(os.path.abspath(path))
    if not absolute.is_relative_to(root):
        raise UsageError(f"spec path {str(path)!r} is outside the project root {str(root)!r}")
    return absolute.relative_to(root)


@contextmanager
def checkout_tree(root: Path, ref: str) -> Iterator[Path]:
    """Write the files under `root` as they were at `ref` into a temporary directory.

    Yields:
        The temporary directory that stands for `root` at `ref`.

    Raises:
        GitError: as for `load_project_at`.
    """
    toplevel = Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    prefix = root.relative_to(toplevel).as_posix() if root != toplevel else ""
    commit = _resolve_ref(root, ref)
    temp = Path(tempfile.mkdtemp(prefix="auditc-git-"))
    try:
        _extract(toplevel, commit, prefix, temp)
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def read_file_at(root: Path, ref: str, relative: Path) -> str | None:
    """The text of one file under `root` as it was at `ref`; None if it did not exist.

    Raises:
        GitError: as for `load_project_at`.
    """
    toplevel = Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    path = (root.resolve() / relative).relative_to(toplevel).as_posix()
    commit = _resolve_ref(root, ref)
    listing = _git(toplevel, "ls-tree", "-z", "--full-tree", commit, "--", path)
    record = listing.split("\0")[0]
    if not record:
        return None
    meta, _, _ = record.partition("\t")
    _, kind, sha = meta.split()
    if kind != "blob":
        return None
    return _read_blobs(toplevel, [sha])[sha].decode("utf-8", errors="replace")


def _resolve_ref(root: Path, ref: str) -> str:
    if ref.startswith("-"):
        raise GitError(f"git ref {ref!r} is not valid; expected a commit, branch or tag")
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except GitError:
        raise GitError(
            f"unknown git ref {ref!r} in {root}; expected a commit, branch or tag "
            "(is the history fetched? CI checkouts are often shallow: fetch-depth 0)"
        ) from None


def _extract(toplevel: Path, commit: str, prefix: str, target: Path) -> None:
    listing = _git(toplevel, "ls-tree", "-r", "-z", "--full-tree", commit, "--", prefix or ".")
    entries: list[tuple[str, str, str]] = []
    for record in listing.split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, kind, sha = meta.split()
        if kind == "blob":
            entries.append((mode, sha, path))
    blobs = _read_blobs(toplevel, [sha for _, sha, _ in entries])
    for mode, sha, path in entries:
        relative = PurePosixPath(path)
        if prefix:
            relative = relative.relative_to(prefix)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            # A symlink: recreate it as is; validation refuses targets outside the root.
            os.symlink(blobs[sha].decode("utf-8", errors="replace"), destination)
        else:
            destination.write_bytes(blobs[sha])


def _read_blobs(toplevel: Path, shas: list[str]) -> dict[str, bytes]:
    unique = list(dict.fromkeys(shas))
    if not unique:
        return {}
    process = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=toplevel,
        input="".join(f"{sha}\n" for sha in unique).encode(),
        capture_output=True,
        timeout=_GIT_TIMEOUT,
        check=False,
        env=_git_env(),
    )
    if process.returncode != 0:
        raise GitError(f"git cat-file failed: {process.stderr.decode(errors='replace').strip()}")
    out = process.stdout
    blobs: dict[str, bytes] = {}
    position = 0
    for sha in unique:
        header_end = out.index(b"\n", position)
        _, _, size = out[position:header_end].decode().split()
        start = header_end + 1
        blobs[sha] = out[start : start + int(size)]
        position = start + int(size) + 1
    return blobs


def _git(cwd: Path, *args: str) -> str:
    try:
        process = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            timeout=_GIT_TIMEOUT,
            check=False,
            env=_git_env(),
        )
    except FileNotFoundError:
        raise GitError("git is not installed; --against needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {_GIT_TIMEOUT:.0f} s") from None
    if process.returncode != 0:
        stderr = process.stderr.decode(errors="replace").strip()
        if "not a git repository" in stderr:
            raise GitError(f"{cwd} is not inside a git repository; --against needs one")
        raise GitError(f"git {args[0]} failed: {stderr or 'exit ' + str(process.returncode)}")
    return process.stdout.decode("utf-8", errors="surrogateescape")


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never prompt (CI has no terminal) and never page.
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"})
    return env
