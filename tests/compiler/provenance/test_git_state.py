"""`git_state`: the commit, the dirty flag and a hash of the uncommitted changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from compiler import GitState, git_state


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def make_repo(root: Path) -> Path:
    root.mkdir()
    git(root, "init", "-q")
    (root / "audits").mkdir()
    (root / "audits" / "a.yaml").write_text("kind: Dataset\n")
    (root / ".gitignore").write_text("ignored/\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "one")
    return root


def test_outside_git_everything_is_unknown(tmp_path: Path) -> None:
    assert git_state(tmp_path) == GitState(None, None, None)


def test_a_clean_tree_has_no_hash(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert git_state(repo) == GitState(git(repo, "rev-parse", "HEAD"), False, None)
    (repo / "ignored").mkdir()
    (repo / "ignored" / "x").write_text("ignored files are not changes")
    assert git_state(repo).dirty is False


def test_every_kind_of_change_makes_the_tree_dirty_with_its_own_hash(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    hashes: set[str | None] = set()
    for change in (
        lambda: (repo / "audits" / "a.yaml").write_text("kind: Model\n"),  # modified
        lambda: (repo / "audits" / "new.yaml").write_text("kind: Dataset\n"),  # untracked
        lambda: (repo / "audits" / "new.yaml").unlink(),  # back to one modification
        lambda: (repo / "audits" / "a.yaml").unlink(),  # deleted
    ):
        change()
        state = git_state(repo)
        assert state.commit == head and state.dirty is True
        assert state.uncommitted_sha256 is not None and len(state.uncommitted_sha256) == 64
        hashes.add(state.uncommitted_sha256)
    assert len(hashes) == 3  # the third change returned to the first state


def test_changes_outside_the_project_root_or_in_an_excluded_store_do_not_count(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "elsewhere.txt").write_text("outside audits/")
    project = repo / "audits"
    assert git_state(project).dirty is False
    (project / ".auditc").mkdir()
    (project / ".auditc" / "_manifest.json").write_text("{}")
    assert git_state(project, exclude=[project / ".auditc"]).dirty is False
    assert git_state(project).dirty is True


def test_a_repository_without_commits_is_dirty_without_a_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.yaml").write_text("x")
    state = git_state(repo)
    assert state.commit is None and state.dirty is True and state.uncommitted_sha256
