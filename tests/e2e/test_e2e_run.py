"""`auditc run` as users run it: output, exit codes, no-op re-runs, failures, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import psutil
import pytest
from e2e_helpers import AUDITC, auditc, copy_fixture, edit, run_store_docs

from schemas import Store

NODES = 5


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The test audit copied and run once (store: <project>/.auditc)."""
    project = copy_fixture("local-basic", tmp_path_factory.mktemp("e2e") / "project")
    return project, auditc("-C", str(project), "run", "audit.yaml")


def _table(stdout: str) -> dict[str, str]:
    """NODE → STATUS from the summary table."""
    rows: dict[str, str] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and "/" in parts[0] and parts[2] in ("ran", "kept", "failed", "skipped"):
            rows[parts[0]] = parts[2]
    return rows


def test_run_prints_progress_summary_and_report(
    ran: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    project, done = ran
    assert done.returncode == 0, done.stderr
    assert set(_table(done.stdout).values()) == {"ran"} and len(_table(done.stdout)) == NODES
    report = project / ".auditc" / "method" / "case"
    case_line = next(line for line in done.stdout.splitlines() if line.startswith("SafetyCase"))
    path = Path(case_line.split(": ", 1)[1])
    assert path.is_file() and path.name == "index.html" and path.parent.parent.parent == report
    assert "5 ran, 0 kept, 0 failed, 0 skipped" in done.stdout
    # Plain progress lines on stderr (not a terminal): a start and an end per node.
    assert "Evaluation/phrases-through-length" in done.stderr
    assert " run…" in done.stderr and "done in" in done.stderr
    assert "(24 rows, 0 errors)" in done.stderr
    assert "InferenceService/length-service started at http://127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr


def test_second_run_is_a_no_op_and_says_so(
    ran: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    project, _ = ran
    again = auditc("-C", str(project), "run", "audit.yaml")
    assert again.returncode == 0, again.stderr
    assert f"Nothing to run: all {NODES} workflow nodes are complete in" in again.stdout
    assert set(_table(again.stdout).values()) == {"kept"}
    assert "SafetyCase Method/case:" in again.stdout
    assert " run…" not in again.stderr


def test_no_op_run_reads_manifests_only(ran: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """No runner, server, Arrow dataset or notebook machinery is imported for a no-op."""
    project, _ = ran
    probe = (
        "import sys\n"
        "from compiler.cli.main import main\n"
        f"main(['-C', {str(project)!r}, 'run', 'audit.yaml'])\n"
        "heavy = ['pyarrow.dataset', 'torch', 'papermill', 'nbconvert', 'aiohttp', 'httpx',"
        " 'runners.evaluation', 'runners.inference', 'runners.methods', 'rich']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert took < 10  # the target is under 1 s; shared CI machines are noisy


def test_store_docs_examples_read_a_real_store(
    ran: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    project, _ = ran
    out = run_store_docs(
        project,
        {
            "filter-on-identity-sentences": "phrases-through-length",
            "offensive-filter-safety-case": "case",
        },
    )
    assert "rows with errors: 0" in out
    assert "mean_score" in out and "(primary)" in out
    assert "24 ['_index_', '_replication_', 'score', '_error_', '_error_type_']" in out


def test_failing_notebook_is_recorded_with_its_log_and_exit_code_1(
    ran: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    project, _ = ran
    edit(
        project / "audit.yaml",
        "inputs: {summary: mean-score}\n  parameters: {fail: false}",
        "inputs: {summary: mean-score}\n  parameters: {fail: true}",
    )
    done = auditc("-C", str(project), "run", "audit.yaml")
    assert done.returncode == 1
    assert _table(done.stdout) == {
        "Dataset/phrases": "kept",
        "Evaluation/phrases-through-length": "kept",
        "Method/mean-score": "kept",
        "Method/label-counts": "kept",
        "Method/case": "failed",
    }
    assert "Method/case" in done.stderr and "FAILED after" in done.stderr
    assert "the safety case was asked to fail" in done.stderr
    log_line = next(line for line in done.stderr.splitlines() if line.strip().startswith("log:"))
    log = Path(log_line.split("log:", 1)[1].strip())
    assert log.name == "method.log" and "the safety case was asked to fail" in log.read_text()
    assert "error: 1 node failed" in done.stderr
    assert "Traceback (most recent call last)" not in done.stderr.split("log:")[0]
    manifests = [
        json.loads(p.read_text())
        for p in (project / ".auditc" / "method" / "case").glob("*/_manifest.json")
    ]
    failed = [m for m in manifests if m["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["log"] == "_logs/method.log"
    assert "the safety case was asked to fail" in failed[0]["error"]


def test_unknown_selection_is_a_usage_error(
    ran: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    project, _ = ran
    done = auditc("-C", str(project), "run", "audit.yaml", "--select", "mean-scor")
    assert done.returncode == 2
    assert "no resource named 'mean-scor' (did you mean 'mean-score'?)" in done.stderr
    assert "Traceback" not in done.stderr


def _read_until(stream: IO[str], marker: str) -> str:
    """Lines of a running process's stderr up to the first that contains `marker`."""
    seen = []
    for line in stream:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"the run ended before {marker!r}:\n{''.join(seen)}")


def test_ctrl_c_stops_every_process_and_a_rerun_completes_exactly_once(project: Path) -> None:
    store = project / ".auditc"
    # A slow model keeps the evaluation busy long enough to interrupt it.
    env = {**os.environ, "AUDITC_TEST_MODEL_DELAY": "1"}
    proc = subprocess.Popen(
        [*AUDITC, "-C", str(project), "run", "audit.yaml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        before = _read_until(proc.stderr, "InferenceService/length-service started at")
        assert "Evaluation/phrases-through-length" in before
        time.sleep(1.2)  # the client is waiting for its first answers by now
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("runners.inference" in " ".join(c.cmdline()) for c in children)
        assert any(c.name() == "auditc-eval" for c in children)
        proc.send_signal(signal.SIGINT)
        _, after = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert after.rstrip().endswith(("Aborted.", "Interrupted.")) and "Traceback" not in after
    assert "Evaluation/phrases-through-length" not in after  # neither done nor failed
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    assert not any(store.glob("evaluation/*/*/_manifest.json"))  # nothing recorded as complete

    done = auditc("-C", str(project), "run", "audit.yaml")
    assert done.returncode == 0, done.stderr
    assert _table(done.stdout)["Evaluation/phrases-through-length"] == "ran"
    [node] = store.glob("evaluation/*/*")
    table = Store.open(store).open_dataset(str(node.relative_to(store))).to_table()
    keys = list(
        zip(
            table.column("_index_").to_pylist(),
            table.column("_replication_").to_pylist(),
            strict=True,
        )
    )
    assert sorted(keys) == [(i, 0) for i in range(24)]
