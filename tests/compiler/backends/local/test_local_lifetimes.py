"""Children die with their parent: SIGKILL, SIGHUP and SIGTERM of `auditc run` and `auditc
serve`, methods' grandchildren, time limits kept to the second, work directories removed.

Real processes and real signals; the only time bounds are generous ("stopped within 20 s,
not 65 s").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from local_backend_helpers import (
    AUDITC,
    load_graph,
    read_until,
    start_auditc,
    write_method_project,
)

from compiler.backends.local import run_local
from compiler.backends.local._workdirs import sweep_stale_work_dirs
from schemas import Store

SLOW_MODEL = {"AUDITC_TEST_MODEL_DELAY": "1"}
"""Keeps the test audit's evaluation busy for many seconds."""


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _all_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still alive (zombies count as gone) after `timeout` seconds."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _work_dirs(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("auditc-"))


def _run_until_evaluating(project: Path, tmp: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """`auditc run` of the test audit, stopped in the middle of its evaluation."""
    proc = start_auditc(
        "-C", str(project), "run", "audit.yaml", env={**SLOW_MODEL, "TMPDIR": str(tmp)}
    )
    read_until(proc.stderr, "InferenceService/length-service started at")
    time.sleep(1.0)  # the client is waiting for its first answers by now
    names = [c.name() for c in _descendants(proc.pid)]
    assert "auditc-launch" in names and "auditc-eval" in names, names
    return proc, names


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """A TMPDIR of the test's own, to see which work directories are left."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def test_sigkill_of_run_stops_every_child_and_removes_the_work_dir(
    project: Path, tmp: Path
) -> None:
    proc, _ = _run_until_evaluating(project, tmp)
    children = _descendants(proc.pid)
    assert any("runners.inference" in " ".join(c.cmdline()) for c in children)
    assert _work_dirs(tmp) != []
    proc.kill()
    proc.wait(timeout=10)
    assert _all_gone(children, timeout=20) == []
    deadline = time.monotonic() + 10
    while _work_dirs(tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _work_dirs(tmp) == []

    # Nothing is left to answer twice: the re-run completes every row exactly once.
    done = subprocess.run(
        [*AUDITC, "-C", str(project), "run", "audit.yaml"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    store = Store.open(project / ".auditc")
    graph = load_graph(project)
    table = store.open_dataset(graph["phrases-through-length"].store_path).to_table()
    keys = sorted(
        zip(table["_index_"].to_pylist(), table["_replication_"].to_pylist(), strict=True)
    )
    assert keys == [(i, 0) for i in range(24)]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_sighup_and_sigterm_of_run_stop_it_cleanly(
    project: Path, tmp: Path, sig: signal.Signals
) -> None:
    proc, _ = _run_until_evaluating(project, tmp)
    children = _descendants(proc.pid)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.rstrip().endswith(("Aborted.", "Interrupted.")) and "Traceback" not in stderr
    assert _all_gone(children, timeout=20) == []
    assert _work_dirs(tmp) == []


def _serve(project: Path, tmp: Path) -> tuple[subprocess.Popen[str], str]:
    proc = start_auditc(
        "-C", str(project), "serve", "length-service", "audit.yaml", env={"TMPDIR": str(tmp)}
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    read_until(proc.stderr, "is ready")
    return proc, url


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_of_serve_stop_the_server(
    project: Path, tmp: Path, sig: signal.Signals
) -> None:
    proc, url = _serve(project, tmp)
    children = _descendants(proc.pid)
    assert _answers(url)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "InferenceService/length-service stopped." in stderr
    assert _all_gone(children, timeout=20) == []
    assert not _answers(url)
    assert _work_dirs(tmp) == []


def test_sigkill_of_serve_stops_the_server(project: Path, tmp: Path) -> None:
    proc, url = _serve(project, tmp)
    children = _descendants(proc.pid)
    proc.kill()
    proc.wait(timeout=10)
    assert _all_gone(children, timeout=20) == []
    assert not _answers(url)


_GRANDCHILD = """
import subprocess, sys
import pyarrow as pa

def spawn(rows, pid_file):
    # A grandchild in a session of its own, left running when the method returns.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True
    )
    open(pid_file, "w").write(str(child.pid))
    return pa.table({"n": [child.pid]})

def sleep(rows):
    import time
    time.sleep(300)
"""


def test_a_methods_grandchild_does_not_outlive_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    project = write_method_project(
        tmp_path / "project",
        _GRANDCHILD,
        f'implementation: {{python: "steps:spawn"}}\nparameters: {{pid_file: "{pid_file}"}}',
    )
    result = run_local(load_graph(project), tmp_path / "store")
    assert result.ok, [n.error for n in result.nodes]
    grandchild = int(pid_file.read_text())
    assert not psutil.pid_exists(grandchild) or _all_gone([psutil.Process(grandchild)], 20) == []


def test_a_method_timeout_is_kept_to_the_second(tmp_path: Path) -> None:
    project = write_method_project(
        tmp_path / "project", _GRANDCHILD, 'implementation: {python: "steps:sleep"}\ntimeout: 5'
    )
    started = time.monotonic()
    result = run_local(load_graph(project), tmp_path / "store")
    took = time.monotonic() - started
    method = result["m"]
    assert method.status == "failed"
    assert method.error is not None and "it ran past spec.timeout (5 s)" in method.error
    assert took < 20, f"stopped after {took:.0f} s"  # the limit plus the grace, not 65 s


_CRASH = """
import os, signal
import pyarrow as pa

def crash(rows):
    os.kill(os.getpid(), signal.SIGSEGV)

def fine(rows):
    return pa.table({"n": [rows.count_rows()]})
"""


def test_a_crashing_step_fails_its_node_only(tmp_path: Path) -> None:
    project = write_method_project(
        tmp_path / "project", _CRASH, 'implementation: {python: "steps:crash"}'
    )
    with (project / "audit.yaml").open("a") as spec:
        spec.write(
            "---\nkind: Method\nname: other\nspec:\n  modules: [steps]\n  inputs: {rows: rows}\n"
            '  implementation: {python: "steps:fine"}\n'
            "  output: {kind: Measurement, columns: {n: int64}}\n"
        )
    result = run_local(load_graph(project), tmp_path / "store")
    crashed = result["m"]
    assert crashed.status == "failed"
    assert crashed.error is not None and f"exit code -{int(signal.SIGSEGV)}" in crashed.error
    assert crashed.log is not None and "Segmentation fault" in Path(crashed.log).read_text()
    assert result["other"].status == "ran" and result["rows"].status == "ran"


def test_stale_work_dirs_of_dead_processes_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [tmp_path / f"auditc-{kind}-{dead.pid}-x" for kind in ("run", "serve", "method")]
    mine = tmp_path / f"auditc-run-{os.getpid()}-y"
    other = tmp_path / "auditc-something-else"
    for path in [*stale, mine, other]:
        (path / "inner").mkdir(parents=True)
    removed = sweep_stale_work_dirs(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert mine.is_dir() and other.is_dir()
