"""The process launcher: forked steps behave as executed ones, and nothing outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from local_backend_helpers import load_graph

from compiler.backends.local import run_local
from compiler.backends.local._launch import FORK_ENV, forkable
from compiler.backends.local._processes import Supervisor
from schemas import Store

DATASETS_HELP = [sys.executable, "-m", "runners.datasets", "--help"]
BAD_CONFIG = [sys.executable, "-m", "runners.datasets", "/nonexistent/config.json"]


def _launcher_of(supervisor: Supervisor) -> psutil.Process:
    return psutil.Process(supervisor._launcher.pid)


def test_steps_are_forked_and_other_commands_executed() -> None:
    assert forkable(DATASETS_HELP, None)
    assert forkable([sys.executable, "-m", "runners.evaluation", "c.json"], dict(os.environ))
    assert not forkable([sys.executable, "-m", "runners.inference", "c.json"], None)
    assert not forkable([sys.executable, "-c", "pass"], None)
    # Python reads PYTHON* variables only at start-up: such a step gets a new interpreter.
    assert not forkable(DATASETS_HELP, {**os.environ, "PYTHONPYCACHEPREFIX": "/tmp/x"})


# Run in a fresh interpreter: the launcher is forked only from a process with one thread,
# and a thread another test left behind in this one would make it executed instead.
_SUPERVISE = """
import json, sys
from pathlib import Path
import psutil
from compiler.backends.local._processes import LaunchOptions, Supervisor
tmp, help_cmd, bad_cmd = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
with Supervisor(LaunchOptions(tmp_dir=tmp)) as supervisor:
    launcher = psutil.Process(supervisor._launcher.pid)
    ok = supervisor.spawn(help_cmd, log=tmp / "help.log", name="auditc-dataset")
    bad = supervisor.spawn(bad_cmd, log=tmp / "bad.log")
    print(json.dumps({
        "cmdline": launcher.cmdline(),
        "name": launcher.name(),
        "ok": supervisor.wait(ok, timeout=60),
        "bad": supervisor.wait(bad, timeout=60),
    }))
"""


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "executed"])
def test_a_step_runs_the_same_forked_or_executed(tmp_path: Path, fork: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SUPERVISE, str(tmp_path)]
        + [json.dumps(DATASETS_HELP), json.dumps(BAD_CONFIG)],
        env={**os.environ, FORK_ENV: "1" if fork else "0"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert ("runners.launcher" in " ".join(seen["cmdline"])) is not fork
    assert seen["name"] == "auditc-launch"
    assert seen["ok"] == 0
    assert seen["bad"] == 2  # the entry point's "invalid config"
    assert "Usage: python -m runners.datasets" in (tmp_path / "help.log").read_text()
    assert (
        "error: cannot read IngestConfig /nonexistent/config.json"
        in (tmp_path / "bad.log").read_text()
    )


def test_the_launcher_is_executed_when_another_thread_runs(tmp_path: Path) -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with Supervisor() as supervisor:
            assert "runners.launcher" in " ".join(_launcher_of(supervisor).cmdline())
            proc = supervisor.spawn(DATASETS_HELP, log=tmp_path / "help.log")
            assert supervisor.wait(proc, timeout=60) == 0
    finally:
        stop.set()
        other.join()


def test_children_die_with_a_killed_launcher(tmp_path: Path) -> None:
    supervisor = Supervisor()
    sleeper = supervisor.spawn(
        [sys.executable, "-c", "import time; time.sleep(300)"], log=tmp_path / "sleep.log"
    )
    child = psutil.Process(sleeper.pid)
    os.kill(supervisor._launcher.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs([child], timeout=20)
    assert alive == []
    assert sleeper.wait(timeout=10) == -signal.SIGKILL  # reported lost with its launcher
    supervisor.close()


def test_a_whole_run_in_executed_steps(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FORK_ENV, "0")
    started = time.monotonic()
    result = run_local(
        load_graph(project), Store.open(tmp_path / "store"), selected=["label-counts"]
    )
    assert result.ok and [n.status for n in result.nodes] == ["ran", "ran"]
    assert time.monotonic() - started < 120


_HAS_CHILDREN = """
import subprocess, sys, time
import psutil
from runners.launcher._tree import has_children

assert not has_children()
child = subprocess.Popen([sys.executable, "-c", "pass"])
assert has_children()
deadline = time.monotonic() + 30
while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
    assert time.monotonic() < deadline
    time.sleep(0.01)
assert has_children()  # exited and not reaped: still a child
assert child.wait(timeout=30) == 0  # has_children reaped nothing: the exit code is there
assert not has_children()
"""


def test_has_children_sees_running_and_exited_children_and_reaps_none() -> None:
    # What lets a step (or the launcher) end without psutil when it started nothing;
    # in a process of its own, which has no children but the ones it makes.
    done = subprocess.run(
        [sys.executable, "-c", _HAS_CHILDREN], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
