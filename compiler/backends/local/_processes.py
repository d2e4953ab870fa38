"""Child processes of a local run: started through one launcher, stopped as trees.

Every runner, server and client the local backend starts goes through one
`Supervisor`, and through its `Launcher` (`runners.launcher`): the steps are forked
from a process that has already imported them, and every child dies with this process
— after Ctrl-C, SIGTERM or SIGHUP the supervisor stops them itself; after SIGKILL the
launcher notices and does. Stopping a child stops its whole tree, including the
processes it started in sessions of their own, such as a notebook's Jupyter kernel.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._launch import ChildProcess, Launcher, LaunchOptions

__all__ = [
    "DEFAULT_GRACE_S",
    "Cancelled",
    "ChildProcess",
    "LaunchOptions",
    "Supervisor",
    "stop_tree",
]

logger = logging.getLogger(__name__)

DEFAULT_GRACE_S = 5.0
"""Seconds a process gets to exit after SIGTERM before it is killed."""


class Cancelled(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The run is being interrupted: the step stops and records nothing."""


class Supervisor:
    """Starts child processes and stops every one of them on `cancel()`.

    Thread-safe: worker threads start and wait on processes while the main thread
    may cancel the run at any time. Create it on the thread that owns the run, before
    any other thread starts, so that its launcher can be a fork of this process.
    """

    def __init__(self, options: LaunchOptions | None = None) -> None:
        self._lock = threading.Lock()
        self._children: set[ChildProcess] = set()
        self._cancelled = threading.Event()
        self._launcher = Launcher(options)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cancelled(self) -> bool:
        """Whether `cancel()` was called."""
        return self._cancelled.is_set()

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log: Path | None,
        env: Mapping[str, str] | None = None,
        name: str = "auditc-step",
    ) -> ChildProcess:
        """Start `argv` in a new session, stdout and stderr appended to `log`.

        With `log=None` the child shares this process's stdout and stderr. `name` is
        the process name `ps -o comm` shows.

        Raises:
            Cancelled: the run is being interrupted; nothing was started.
            BackendError: the launcher could not start it.
        """
        if self._cancelled.is_set():
            raise Cancelled
        # Not under the lock: `cancel()` must not wait for a launcher that is busy.
        proc = self._launcher.spawn(argv, log=log, env=env, name=name)
        with self._lock:
            self._children.add(proc)
            cancelled = self._cancelled.is_set()
        if cancelled:  # cancel() ran while it started: it did not see this one
            self.stop(proc)
            raise Cancelled
        logger.debug("started pid %d: %s", proc.pid, " ".join(argv))
        return proc

    def wait(self, proc: ChildProcess, timeout: float | None) -> int | None:
        """Wait for `proc` to exit; on timeout, stop its tree and return None.

        Raises:
            Cancelled: the run was interrupted while waiting.
        """
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(proc)
            if self.cancelled:
                raise Cancelled from None
            return None
        self._forget(proc)
        if self.cancelled:
            raise Cancelled
        return code

    def stop(self, proc: ChildProcess, grace: float = DEFAULT_GRACE_S) -> None:
        """Stop `proc` and every process it started (SIGTERM, then SIGKILL after `grace`)."""
        stop_tree(proc, grace)
        self._forget(proc)

    def cancel(self, grace: float = DEFAULT_GRACE_S) -> None:
        """Refuse new processes and stop every running one, all at once."""
        with self._lock:
            self._cancelled.set()
            children = [c for c in self._children if c.poll() is None]
            self._children.clear()
        _stop_all(children, grace)

    def close(self, grace: float = DEFAULT_GRACE_S) -> None:
        """Stop whatever still runs, then the launcher."""
        with self._lock:
            children = [c for c in self._children if c.poll() is None]
            self._children.clear()
        _stop_all(children, grace)
        self._launcher.close()

    def _forget(self, proc: ChildProcess) -> None:
        with self._lock:
            self._children.discard(proc)


def stop_tree(proc: ChildProcess, grace: float = DEFAULT_GRACE_S) -> None:
    """Stop a process, its process group and its descendants in other sessions.

    SIGTERM first, so that servers shut down and clients close their files; SIGKILL
    for whatever is still alive after `grace` seconds.
    """
    _stop_all([proc], grace)


def _stop_all(children: Sequence[ChildProcess], grace: float) -> None:
    from runners.launcher import stop_trees

    if not children:
        return
    by_pid = {c.pid: c for c in children}

    def exited(pid: int, timeout: float) -> bool:
        try:
            by_pid[pid].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    stop_trees(list(by_pid), wait_exit=exited, grace=grace)
