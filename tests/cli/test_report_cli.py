"""`auditc report`, `auditc diff` and `auditc check` as commands: outputs, exit codes, errors.

Stores are written here through `schemas` the way the local backend writes them
(manifest last); the report's own tests under tests/compiler/report/ use richer ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from compiler import load_project, resolve_graph
from compiler.cli.main import main
from schemas import Manifest, ScoresFile, ScoreValue, Store, node_path

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def write_case(
    root: Path,
    method: str,
    node_id: str,
    scores: list[ScoreValue],
    *,
    instances: dict[str, list[float]] | None = None,
    service: str = "svc",
) -> Store:
    """A complete SafetyCase node with scores.json, per-instance values and a page."""
    store = Store.open(root)
    path = node_path("Method", method, node_id)
    store.write_output(
        ScoresFile(method=method, id=node_id, scores=scores).model_dump_json().encode(),
        path,
        "_case/scores.json",
    )
    for score, values in (instances or {}).items():
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({"_index_": list(range(len(values))), "value": values}), sink)
        store.write_output(sink.getvalue().to_pybytes(), path, f"_case/instances/{score}.parquet")
    store.write_output(
        b"<html><head></head><body><h1>case</h1></body></html>", path, "_case/index.html"
    )
    store.write_manifest(
        path,
        Manifest(
            kind="Method",
            name=method,
            id=node_id,
            status="complete",
            spec={"output": {"kind": "SafetyCase"}},
            upstream={f"InferenceService/{service}": "5" * 20},
            auditc_version="0.1.0",
            started_at=NOW,
            finished_at=NOW,
            duration_s=1.0,
            outputs=store.collect_outputs(path),
        ),
    )
    return store


def accuracy(value: float, **extra: float) -> ScoreValue:
    return ScoreValue(
        name="accuracy",
        value=value,
        primary=True,
        valence="positive",
        format="{value:.1%}",
        **extra,
    )


# ------------------------------------------------------------------ report


def test_report_writes_the_site_and_prints_its_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path / "store", "sc", "a" * 20, [accuracy(0.9, gate_min=0.95)])
    out = tmp_path / "site"

    main(["report", "--all", "--store", str(tmp_path / "store"), "--out", str(out)])

    captured = capsys.readouterr()
    assert captured.out == f"{out / 'index.html'}\n"
    assert captured.err == "1 audit, 1 system, 1 safety case, 1 failed gate: 5 pages\n"
    assert (out / "cases" / ("a" * 20) / "index.html").is_file()


def test_report_of_a_missing_store_is_an_error_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(
            [
                "report",
                "--all",
                "--store",
                str(tmp_path / "nowhere"),
                "--out",
                str(tmp_path / "site"),
            ]
        )

    assert info.value.code == 1
    err = capsys.readouterr().err
    assert (
        err
        == f"error: store '{tmp_path / 'nowhere'}' does not exist (run an audit first, or pass --store)\n"
    )
    assert not (tmp_path / "site").exists()


def test_report_refuses_to_overwrite_a_foreign_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path / "store", "sc", "a" * 20, [accuracy(0.9)])
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "keep.md").write_text("mine")

    with pytest.raises(SystemExit) as info:
        main(
            ["report", "--all", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "docs")]
        )

    assert info.value.code == 2
    assert "was not written by `auditc report`" in capsys.readouterr().err
    assert (tmp_path / "docs" / "keep.md").read_text() == "mine"


def test_report_uses_the_project_store_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path / ".auditc", "sc", "a" * 20, [accuracy(0.9)])

    main(["-C", str(tmp_path), "report", "--all", "--out", str(tmp_path / "site")])

    assert capsys.readouterr().out.endswith("site/index.html\n")


# ------------------------------------------------------------------- check


def test_check_exits_1_and_lists_the_failed_gate(tmp_path: Path) -> None:
    write_case(tmp_path / "store", "sc", "a" * 20, [accuracy(0.9, gate_min=0.95)])

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler.cli.main",
            "check",
            "--all",
            "--store",
            str(tmp_path / "store"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "FAIL  sc · svc  accuracy = 90.0% (0.9)  [gate min 0.95]: below the minimum 0.95",
        "1 gate: 1 failed, 0 inconclusive, 0 passed (1 safety case)",
    ]
    assert "Traceback" not in done.stderr


def test_check_passes_and_says_when_there_is_nothing_to_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path / "ok", "sc", "a" * 20, [accuracy(0.97, gate_min=0.95)])
    Store.open(tmp_path / "empty")

    passed = main(["check", "--all", "--store", str(tmp_path / "ok"), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    empty = main(["check", "--all", "--store", str(tmp_path / "empty")])

    assert passed == 0 and data["ok"] is True and data["gates"][0]["passed"] is True
    assert empty == 0
    assert capsys.readouterr().out.startswith("no complete safety cases in ")


# -------------------------------------------------------------------- diff


def _regression(tmp_path: Path) -> tuple[Path, Path]:
    base_values = [1.0] * 150 + [0.0] * 50
    head_values = [0.0 if i % 4 == 0 else v for i, v in enumerate(base_values)]
    write_case(
        tmp_path / "base", "sc", "a" * 20, [accuracy(0.75)], instances={"accuracy": base_values}
    )
    write_case(
        tmp_path / "head", "sc", "b" * 20, [accuracy(0.56)], instances={"accuracy": head_values}
    )
    return tmp_path / "base", tmp_path / "head"


def test_diff_of_two_stores_as_markdown_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = _regression(tmp_path)

    main(["diff", str(base), str(head), "--all", "--format", "markdown", "--resamples", "500"])
    markdown = capsys.readouterr().out
    main(["diff", str(base), str(head), "--all", "--format", "json", "--seed", "3"])
    data = json.loads(capsys.readouterr().out)

    assert markdown.startswith(f"### auditc diff: `{base}` → `{head}`")
    assert "| **accuracy** | 75.0% | 56.0% | -19.0% |" in markdown
    assert "🔴 worse (significant)" in markdown
    score = data["cases"][0]["scores"][0]
    assert data["schema_version"] == 2 and data["seed"] == 3
    assert score["significant"] is True and score["comparison"]["high"] < 0
    assert score["comparison"]["test"] == "mcnemar" and score["comparison"]["changed"] == 38


def test_diff_rejects_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, head = _regression(tmp_path)

    with pytest.raises(SystemExit) as info:
        main(["diff", str(base), str(head), "--all", "--confidence", "1.5"])

    assert info.value.code == 2
    assert "--confidence" in capsys.readouterr().err


PROJECT = """\
kind: Dataset
name: rows
spec:
  file: {path: rows.jsonl}
  columns: {text: string}
---
kind: Method
name: case
spec:
  implementation: {notebook: case.ipynb}
  inputs: {rows: rows}
  parameters: {alpha: ALPHA}
  output: {kind: SafetyCase}
  scores:
    - {name: accuracy, primary: true, valence: positive, format: "{value:.1%}"}
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _commit_project(repo: Path, alpha: str) -> str:
    """Commit the project with `alpha` and return the safety case's node id."""
    audits = repo / "audits"
    audits.mkdir(parents=True, exist_ok=True)
    (audits / "rows.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    (audits / "case.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    (audits / "audit.yaml").write_text(PROJECT.replace("ALPHA", alpha))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"alpha {alpha}")
    graph = resolve_graph(load_project(repo, [audits]))
    return graph["case"].id


def test_diff_of_two_git_refs_looks_runs_up_in_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    old_id = _commit_project(repo, "0.1")
    new_id = _commit_project(repo, "0.2")
    store = tmp_path / "store"
    write_case(
        store, "case", old_id, [accuracy(0.75)], instances={"accuracy": [1.0] * 150 + [0.0] * 50}
    )
    write_case(
        store, "case", new_id, [accuracy(0.75)], instances={"accuracy": [1.0] * 150 + [0.0] * 50}
    )

    main(["-C", str(repo), "diff", "HEAD~1", "HEAD", "--store", str(store)])
    text = capsys.readouterr().out

    assert text.startswith("auditc diff: HEAD~1 → HEAD\n")
    assert f"case · svc  (run {old_id[:10]} → {new_id[:10]}, changed)" in text
    assert "unchanged" in text


def test_diff_of_a_ref_whose_run_is_not_in_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    old_id = _commit_project(repo, "0.1")
    new_id = _commit_project(repo, "0.2")
    store = tmp_path / "store"
    write_case(store, "case", old_id, [accuracy(0.75)])

    main(["-C", str(repo), "diff", "HEAD~1", "HEAD", "--store", str(store)])
    text = capsys.readouterr().out

    assert f"not in the store: HEAD: Method/case {new_id} (run `auditc run` at HEAD)" in text
    assert "only in base" in text


def test_diff_of_an_unknown_ref_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _commit_project(repo, "0.1")
    Store.open(tmp_path / "store")

    with pytest.raises(SystemExit) as info:
        main(
            ["-C", str(repo), "diff", "no-such-branch", "HEAD", "--store", str(tmp_path / "store")]
        )

    assert info.value.code == 2
    assert "unknown git ref 'no-such-branch'" in capsys.readouterr().err


def test_diff_of_a_missing_store_names_that_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Store.open(tmp_path / "store")
    with pytest.raises(SystemExit) as info:
        main(
            ["-C", str(tmp_path), "diff", str(tmp_path / "nope"), str(tmp_path / "store"), "--all"]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"'{tmp_path / 'nope'}' is not a store (no such directory)" in err


# ------------------------------------------------------------------ scoping

AUDIT = """\
kind: Dataset
name: rows-NAME
spec:
  file: {path: rows.jsonl}
  columns: {text: string}
---
kind: Method
name: METHOD
spec:
  implementation: {notebook: case.ipynb}
  inputs: {rows: rows-NAME}
  output: {kind: SafetyCase}
  scores:
    - {name: accuracy, primary: true, valence: positive, format: "{value:.1%}", gate: {min: 0.8}}
"""


def _audit(project: Path, name: str, method: str | None = None) -> None:
    folder = project / "audits" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.jsonl").write_text('{"text": "a"}\n')
    (folder / "case.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    text = AUDIT.replace("METHOD", method or f"case-{name}").replace("NAME", name)
    (folder / "audit.yaml").write_text(text)


def _ids(project: Path) -> dict[str, str]:
    graph = resolve_graph(load_project(project, [project / "audits"]))
    return {node.name: node.id for node in graph}


def _shared_store(tmp_path: Path) -> Path:
    """A project of audits `a` (passing) and `b` (failing), and a store holding both runs."""
    project = tmp_path / "project"
    _audit(project, "a")
    _audit(project, "b")
    ids = _ids(project)
    write_case(project / ".auditc", "case-a", ids["case-a"], [accuracy(0.9, gate_min=0.8)])
    write_case(project / ".auditc", "case-b", ids["case-b"], [accuracy(0.5, gate_min=0.8)])
    return project


def test_check_of_one_audit_ignores_another_audits_failing_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, defect 3: one audit's failing gate made `check` fail for every audit."""
    project = _shared_store(tmp_path)

    only_a = main(["-C", str(project), "check", "audits/a"])
    out_a = capsys.readouterr().out
    selected = main(["-C", str(project), "check", "--select", "case-a"])
    capsys.readouterr()
    everything = main(["-C", str(project), "check"])
    out_all = capsys.readouterr().out

    assert only_a == 0 and selected == 0 and everything == 1
    assert "case-b" not in out_a and out_a.startswith("PASS  case-a · svc  accuracy = 90.0%")
    assert out_all.splitlines()[0].startswith("FAIL  case-b · svc")


def test_report_and_check_leave_out_runs_of_methods_no_longer_in_the_specs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11, defect 3: a renamed Method appeared twice and its old gate still counted."""
    project = tmp_path / "project"
    _audit(project, "a", method="old-name")
    write_case(
        project / ".auditc", "old-name", _ids(project)["old-name"], [accuracy(0.1, gate_min=0.8)]
    )
    _audit(project, "a", method="new-name")
    write_case(
        project / ".auditc", "new-name", _ids(project)["new-name"], [accuracy(0.9, gate_min=0.8)]
    )

    checked = main(["-C", str(project), "check"])
    out = capsys.readouterr().out
    main(["-C", str(project), "report", "--out", str(tmp_path / "site")])
    err = capsys.readouterr().err
    whole = main(["-C", str(project), "check", "--all"])

    assert checked == 0 and "old-name" not in out
    assert err.startswith("1 audit, 1 system, 1 safety case: ")
    assert not list((tmp_path / "site").glob("audit-old-name*.html"))
    assert whole == 1  # the whole store still holds the old run


def test_check_fails_for_a_gated_safety_case_that_has_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    _audit(project, "a")
    Store.open(project / ".auditc")

    code = main(["-C", str(project), "check"])

    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[0].startswith("NOT RUN  case-a  (id ")
    assert "gates accuracy cannot pass before it runs" in out
    main(["-C", str(project), "report", "--out", str(tmp_path / "site")])
    assert capsys.readouterr().err.startswith("0 audits, 0 systems, 0 safety cases, 1 not run yet")
    assert (
        "Not run yet, so not shown: <code>Method/case-a</code>"
        in (tmp_path / "site" / "index.html").read_text()
    )


def test_check_and_report_say_how_to_read_a_store_outside_a_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path / "store", "sc", "a" * 20, [accuracy(0.9)])

    with pytest.raises(SystemExit) as info:
        main(["-C", str(tmp_path), "check", "--store", str(tmp_path / "store")])

    assert info.value.code == 2
    assert (
        "pass PATHS (or --project-dir), or --all to read the whole store" in capsys.readouterr().err
    )


def test_diff_fail_on_regression_exits_1_for_ci(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passing = [1.0] * 90 + [0.0] * 10
    failing = [1.0] * 60 + [0.0] * 40
    write_case(
        tmp_path / "base",
        "sc",
        "a" * 20,
        [accuracy(0.9, gate_min=0.8)],
        instances={"accuracy": passing},
    )
    write_case(
        tmp_path / "head",
        "sc",
        "b" * 20,
        [accuracy(0.6, gate_min=0.8)],
        instances={"accuracy": failing},
    )
    stores = [str(tmp_path / "base"), str(tmp_path / "head")]

    plain = main(["diff", *stores, "--all"])
    out = capsys.readouterr().out
    gated = main(["diff", *stores, "--all", "--fail-on", "regression"])
    improved = main(["diff", *reversed(stores), "--all", "--fail-on", "regression"])

    assert (plain, gated, improved) == (0, 1, 0)
    assert "REGRESSION   sc · svc  PASS → FAIL  accuracy 90.0% → 60.0% (gate ≥ 80.0%)" in out


def test_diff_fail_on_worse_also_fails_on_a_significant_change_for_the_worse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = _regression(tmp_path)  # accuracy drops significantly; no gate

    regression = main(["diff", str(base), str(head), "--all", "--fail-on", "regression"])
    worse = main(["diff", str(base), str(head), "--all", "--fail-on", "worse"])

    assert (regression, worse) == (0, 1)
