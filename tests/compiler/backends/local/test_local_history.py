"""History is never overwritten: `run --force` keeps the earlier run; manifests record git state."""

from __future__ import annotations

import subprocess
from pathlib import Path

from local_backend_helpers import git_commit_all, load_graph

from compiler.backends.local import run_local
from schemas import Store, verify_store


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True)


def test_forced_run_keeps_the_earlier_outputs_as_an_earlier_run(
    project: Path, tmp_path: Path
) -> None:
    graph = load_graph(project)
    store = Store.open(tmp_path / "store")
    path = graph["phrases"].store_path
    first = run_local(graph, store, selected=["phrases"])
    assert first["phrases"].status == "ran"
    before = store.read_manifest(path)
    assert before is not None and before.run == 1
    data_before = {f: store.read_bytes(path, f) for f in before.outputs}

    again = run_local(graph, store, selected=["phrases"], force=True)
    assert again["phrases"].status == "ran"

    runs = store.node_runs(path)
    assert [(r.run, r.current) for r in runs] == [(1, False), (2, True)]
    earlier, current = runs
    assert earlier.path == f"{path}/_runs/1"
    assert earlier.manifest == before  # the earlier run's record, unchanged
    assert {f: store.read_bytes(earlier.path, f) for f in earlier.manifest.outputs} == data_before
    assert current.manifest.run == 2 and current.manifest.started_at > before.finished_at
    assert verify_store(store) == []
    # A third forced run keeps both earlier ones.
    run_local(graph, store, selected=["phrases"], force=True)
    assert [r.run for r in store.node_runs(path)] == [1, 2, 3]


def test_manifests_record_the_git_tree_state(project: Path, tmp_path: Path) -> None:
    commit = git_commit_all(project)
    (project / ".gitignore").write_text(".auditc/\n")
    _git(project, "add", ".gitignore")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "ignore")
    store = project / ".auditc"  # inside the project: never one of its changes
    graph = load_graph(project)
    path = graph["phrases"].store_path

    run_local(graph, store, selected=["phrases"])
    clean = Store.open(store).read_manifest(path)
    assert clean is not None and clean.git_commit != commit  # the second commit
    assert (clean.git_dirty, clean.git_uncommitted_sha256) == (False, None)

    # An audit that is not committed yet: the commit alone would not say what ran.
    (project / "notes.md").write_text("an uncommitted change\n")
    run_local(graph, store, selected=["phrases"], force=True)
    dirty = Store.open(store).read_manifest(path)
    assert dirty is not None and dirty.git_commit == clean.git_commit
    assert dirty.git_dirty is True and dirty.git_uncommitted_sha256 is not None

    # Staging changes nothing; other content gives another hash.
    _git(project, "add", "notes.md")
    run_local(graph, store, selected=["phrases"], force=True)
    staged = Store.open(store).read_manifest(path)
    assert staged is not None
    assert staged.git_uncommitted_sha256 == dirty.git_uncommitted_sha256
    (project / "notes.md").write_text("another change\n")
    run_local(graph, store, selected=["phrases"], force=True)
    edited = Store.open(store).read_manifest(path)
    assert edited is not None and edited.git_dirty is True
    assert edited.git_uncommitted_sha256 not in (None, dirty.git_uncommitted_sha256)
