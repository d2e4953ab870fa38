"""The tutorial from a fresh copy: `auditc run audits/tutorial`, then a no-op re-run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from e2e_helpers import AUDITC, REPO, auditc, run_store_docs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project holding a copy of audits/tutorial and nothing else (no store)."""
    project = tmp_path_factory.mktemp("tutorial")
    shutil.copytree(
        REPO / "audits" / "tutorial",
        project / "audits" / "tutorial",
        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"),
    )
    return project


@pytest.fixture(scope="module")
def first_run(project: Path) -> subprocess.CompletedProcess[str]:
    """`auditc run audits/tutorial` into the fresh copy, once for the module.

    Every test that reads the store asks for this fixture, so each one also runs alone
    (`pytest -k NAME`) or in any order.
    """
    done = auditc("-C", str(project), "run", "audits/tutorial", timeout=600)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def tutorial(project: Path, first_run: subprocess.CompletedProcess[str]) -> Path:
    """The tutorial project after its first run: `.auditc/` holds every node."""
    return project


def test_tutorial_runs_to_a_safety_case_and_a_second_run_is_a_no_op(
    tutorial: Path, first_run: subprocess.CompletedProcess[str]
) -> None:
    done = first_run
    assert " 0 failed, 0 skipped" in done.stdout
    line = next(x for x in done.stdout.splitlines() if x.startswith("SafetyCase "))
    report = Path(line.split(": ", 1)[1])
    assert report.name == "index.html" and report.stat().st_size > 1000
    scores = json.loads((report.parent / "scores.json").read_text())  # both in _case/
    primary = [s for s in scores["scores"] if s["primary"]]
    assert [s["name"] for s in primary] == ["max_fpr_gap"]
    assert 0.0 <= primary[0]["value"] <= 1.0

    again = auditc("-C", str(tutorial), "run", "audits/tutorial")
    assert again.returncode == 0, again.stderr
    assert "Nothing to run: all 9 workflow nodes are complete in" in again.stdout
    assert line in again.stdout  # the same safety case, kept
    # How fast the no-op is, is measured by tests/benchmarks/bench_noop.py, not here.


def test_store_docs_examples_read_the_tutorial_store(tutorial: Path) -> None:
    out = run_store_docs(tutorial)
    assert "rows with errors: 0" in out
    assert "max_fpr_gap" in out and "(primary)" in out


def test_readme_exports_run_as_written(tutorial: Path) -> None:
    """The README's "Using results elsewhere" commands and Python, on the tutorial's store."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Using results elsewhere", 1)[1].split("\n## ", 1)[0]
    # The first block runs on the tutorial; the Inspect import's has its own test.
    console = re.findall(r"```console\n(.*?)```", section, re.S)[0]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command, shown in re.findall(r"^\$ (.*)\n((?:[^$].*\n)*)", console, re.M):
        done = subprocess.run(
            command, shell=True, cwd=tutorial, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == (1 if "auditc check" in command else 0), (command, done.stderr)
        # Paths as shown, but for the time in an Inspect log's name and the ids (a change
        # to the tutorial or to a spec default gives its nodes new ids).
        pattern = re.sub(
            r"[0-9a-f]{12,}|(?:[0-9a-f]{4,}\\-){4}[0-9a-f]{12}", "[0-9a-f-]+", re.escape(shown)
        )
        pattern = re.sub(r"\d{4}(?:\\-\d\d){2}T\d\d(?:\\-\d\d){2}", r"[\\d-]+T[\\d-]+", pattern)
        assert re.fullmatch(pattern, done.stdout), (command, done.stdout)
    python, output = re.findall(r"```python\n(.*?)```\n\s*```\n(.*?)```", section, re.S)[0]
    ran = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(python)],
        cwd=tutorial,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == textwrap.dedent(output)
    gates = (tutorial / "gates.xml").read_text()
    assert 'failures="1"' in gates and "max_fpr_gap" in gates


def _complete_nodes(tutorial: Path) -> dict[Path, int]:
    """Every complete node directory of the tutorial store → the rows it should read as."""
    nodes: dict[Path, int] = {}
    for manifest_file in sorted((tutorial / ".auditc").glob("*/*/*/_manifest.json")):
        manifest = json.loads(manifest_file.read_text())
        assert manifest["status"] == "complete", manifest_file
        scores = manifest["metrics"].get("scores")
        nodes[manifest_file.parent] = int(scores if manifest["rows"] is None else manifest["rows"])
    kinds = {path.parts[-3] for path in nodes}
    assert kinds == {"dataset", "evaluation", "method"} and len(nodes) == 9
    return nodes


def test_pandas_reads_every_node_directory_as_it_is(tutorial: Path) -> None:
    import pandas as pd

    for node, rows in _complete_nodes(tutorial).items():
        assert len(pd.read_parquet(node)) == rows, node


def test_polars_reads_every_node_directory_by_its_parquet_glob(tutorial: Path) -> None:
    import polars as pl

    for node, rows in _complete_nodes(tutorial).items():
        assert pl.scan_parquet(f"{node}/*.parquet").collect().height == rows, node


def test_duckdb_reads_every_node_directory_by_its_parquet_glob(tutorial: Path) -> None:
    import duckdb

    for node, rows in _complete_nodes(tutorial).items():
        [(count,)] = duckdb.sql(f"SELECT count(*) FROM read_parquet('{node}/*.parquet')").fetchall()
        assert count == rows, node


def test_readme_store_example_runs_as_written(tutorial: Path) -> None:
    import re
    import subprocess
    import sys

    section = (REPO / "README.md").read_text().split("### The store and reading outputs", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tutorial, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    [manifest] = (tutorial / ".auditc" / "evaluation" / "filter-on-identity-sentences").glob(
        "*/_manifest.json"
    )
    rows = json.loads(manifest.read_text())["rows"]
    assert re.search(rf"│\s+{rows}\s+│", done.stdout), done.stdout


def test_a_second_run_into_another_store_reproduces_every_output_digest(tutorial: Path) -> None:
    """The same commit, run twice into two stores: the same bytes (logs aside)."""
    again = tutorial / "second-store"
    done = auditc("-C", str(tutorial), "run", "audits/tutorial", "--store", str(again), timeout=600)
    assert done.returncode == 0, done.stderr

    def digests(store: Path) -> dict[str, dict[str, str]]:
        found = {}
        for manifest_file in sorted(store.glob("*/*/*/_manifest.json")):
            manifest = json.loads(manifest_file.read_text())
            found[manifest_file.parent.relative_to(store).as_posix()] = {
                path: digest["sha256"]
                for path, digest in manifest["outputs"].items()
                if not path.startswith("_logs/")
            }
        return found

    first, second = digests(tutorial / ".auditc"), digests(again)
    assert sorted(first) == sorted(second) and len(first) == 9
    differ = {
        f"{node}/{path}"
        for node in first
        for path in first[node].keys() | second[node].keys()
        if first[node].get(path) != second[node].get(path)
    }
    assert differ == set()
    # And `auditc verify --rerun` says so for one node, with the same store.
    rerun = auditc(
        "-C", str(tutorial), "verify", "--rerun", "filter-on-identity-sentences", "audits/tutorial",
        timeout=600,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert "the re-run reproduced" in rerun.stderr and "bit for bit" in rerun.stderr


def test_the_store_docs_commands_sign_and_verify_the_tutorial(tutorial: Path) -> None:
    """The `console` commands of docs/store.md, as written, on the tutorial's store.

    The auditor's run in the project directory; the reviewer's (`console reviewer`
    blocks) in a directory holding only what the auditor sent — the archive and the
    public key — and, for the specs, a copy of the project without its store.
    """
    import re
    import shlex
    import subprocess

    text = (REPO / "docs" / "store.md").read_text()
    blocks = re.findall(r"```console( reviewer)?\n(.*?)```", text, re.S)
    commands = [
        (bool(reviewer), line[2:].split("  #")[0].strip())
        for reviewer, block in blocks
        for line in block.splitlines()
        if line.startswith("$ ")
    ]
    assert (False, "auditc attest --key auditor.pem") in commands
    assert (True, "auditc verify --store received/.auditc --key auditor.pub") in commands
    reviewer = tutorial.parent / "reviewer"
    results = {}
    for by_reviewer, command in commands:
        if by_reviewer and not reviewer.exists():
            reviewer.mkdir()
            for sent in ("audit.tar.gz", "auditor.pub"):
                shutil.copy(tutorial / sent, reviewer / sent)
            shutil.copytree(tutorial / "audits", reviewer / "project" / "audits")
        argv = shlex.split(command)
        if argv[0] == "auditc":  # as a user types it
            argv = [*AUDITC, *argv[1:]]
        cwd = reviewer if by_reviewer else tutorial
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
        results.setdefault(command, []).append((done.returncode, done.stderr[-300:]))
    assert all(code == 0 for runs in results.values() for code, _ in runs), results
    done = auditc("-C", str(tutorial), "verify", "--key", str(tutorial / "auditor.pub"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signed by 1 trusted key" in done.stderr

    # What the reviewer's verify proves: a changed byte in what was received fails it.
    [scores] = (reviewer / "received" / ".auditc").glob("method/*/*/_case/scores.json")
    scores.write_text(scores.read_text() + " ")
    verify = [*AUDITC, "verify", "--store", "received/.auditc", "--key", "auditor.pub"]
    done = subprocess.run(verify, cwd=reviewer, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1 and "_case/scores.json: changed" in done.stdout, done.stdout
