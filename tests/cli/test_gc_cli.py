"""`auditc gc`: remove what no spec references, never a node of the current specs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from compiler.cli.main import main
from schemas import Store

AUDIT = """\
kind: Dataset
name: NAME
spec:
  file: {path: rows.jsonl}
  columns: {text: string}
"""


def _write(project: Path, names: list[str]) -> None:
    folder = project / "audits"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    (folder / "audit.yaml").write_text("---\n".join(AUDIT.replace("NAME", n) for n in names))


def _age(store: Path, seconds: float) -> None:
    """Pretend every file of the store was written `seconds` ago."""
    moment = time.time() - seconds
    for path in store.rglob("*"):
        os.utime(path, (moment, moment))


def _nodes(store: Path) -> set[str]:
    return {m.name for m in Store.open(store, create=False).manifests()}


def test_gc_removes_only_what_no_spec_references(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "p"
    _write(project, ["kept", "renamed-away"])
    assert main(["-C", str(project), "run"]) is None
    _write(project, ["kept"])  # renamed-away left the specs
    store = project / ".auditc"
    (store / "inputs").mkdir()
    (store / "inputs" / "blob").write_text("x")
    _age(store, 7200)
    capsys.readouterr()

    main(["-C", str(project), "gc", "--dry-run"])
    dry = capsys.readouterr().out
    assert _nodes(store) == {"kept", "renamed-away"}  # a dry run removes nothing

    main(["-C", str(project), "gc"])
    done = capsys.readouterr().out

    assert "1 node(s) referenced by the specs are kept." in dry
    assert "would remove 1 node(s), " in dry and "  - Dataset/renamed-away  " in dry
    assert "left alone (not node directories): inputs" in dry
    assert "dry run: nothing removed" in dry
    assert "removed 1 node(s), freed " in done
    assert _nodes(store) == {"kept"}
    assert (store / "inputs" / "blob").exists() and not (
        store / "dataset" / "renamed-away"
    ).exists()


def test_gc_keeps_recent_nodes_and_the_nodes_of_kept_refs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "p"
    project.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    _write(project, ["on-main"])
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(
        ["git", "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "main"],
        cwd=project,
        check=True,
    )
    assert main(["-C", str(project), "run"]) is None
    _write(project, ["on-branch"])
    assert main(["-C", str(project), "run"]) is None
    store = project / ".auditc"
    capsys.readouterr()

    main(["-C", str(project), "gc", "--dry-run"])
    recent = capsys.readouterr().out
    _age(store, 7200)
    main(["-C", str(project), "gc", "--keep-ref", "HEAD"])
    kept = capsys.readouterr().out

    assert (
        "nothing to remove" in recent
        and "kept 1 unreferenced node(s) written to within --min-age" in recent
    )
    assert "and the specs at HEAD are kept" in kept and "nothing to remove" in kept
    assert _nodes(store) == {"on-main", "on-branch"}


def test_gc_does_not_remove_while_a_run_writes_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from compiler.backends.local import store_writer_lock

    project = tmp_path / "p"
    _write(project, ["kept", "gone"])
    assert main(["-C", str(project), "run"]) is None
    _write(project, ["kept"])
    store = project / ".auditc"
    capsys.readouterr()

    with store_writer_lock(Store.open(store)), pytest.raises(SystemExit) as info:
        main(["-C", str(project), "gc", "--min-age", "0"])

    assert info.value.code == 1
    assert "is being written by" in capsys.readouterr().err
    assert _nodes(store) == {"kept", "gone"}
