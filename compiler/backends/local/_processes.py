"""Child processes of a local run: started in their own process groups, stopped as trees.

Every runner, server and client the local backend starts goes through one
`Supervisor`, so that an interrupted run (Ctrl-C) can stop all of them — and
their own children, such as the Jupyter kernel of a notebook method, which
jupyter_client starts in a session of its own — before it exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

__all__ = ["DEFAULT_GRACE_S", "Cancelled", "Supervisor", "stop_tree"]

logger = logging.getLogger(__name__)

DEFAULT_GRACE_S = 5.0
"""Seconds a process gets to exit after SIGTERM before it is killed."""


class Cancelled(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The run is being interrupted: the step stops and records nothing."""


class Supervisor:
    """Starts child processes and stops every one of them on `cancel()`.

    Thread-safe: worker threads start and wait on processes while the main thread
    may cancel the run at any time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen[bytes]] = set()
        self._cancelled = threading.Event()

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
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a new session, stdout and stderr appended to `log`.

        With `log=None` the child shares this process's stdout and stderr.

        Raises:
            Cancelled: the run is being interrupted; nothing was started.
        """
        with self._lock:
            if self._cancelled.is_set():
                raise Cancelled
            out = open(log, "ab") if log is not None else None  # noqa: SIM115 - closed below
            try:
                # A new session keeps the terminal's Ctrl-C away from children: the
                # parent decides how they stop, and stops them as whole trees.
                proc = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT if out is not None else None,
                    env=dict(env) if env is not None else None,
                    start_new_session=True,
                )
            finally:
                if out is not None:
                    out.close()  # the child holds its own descriptor
            self._children.add(proc)
        logger.debug("started pid %d: %s", proc.pid, " ".join(argv))
        return proc

    def wait(self, proc: subprocess.Popen[bytes], timeout: float | None) -> int | None:
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

    def stop(self, proc: subprocess.Popen[bytes], grace: float = DEFAULT_GRACE_S) -> None:
        """Stop `proc` and every process it started (SIGTERM, then SIGKILL after `grace`)."""
        stop_tree(proc, grace)
        self._forget(proc)

    def cancel(self, grace: float = DEFAULT_GRACE_S) -> None:
        """Refuse new processes and stop every running one, all in parallel."""
        with self._lock:
            self._cancelled.set()
            children = list(self._children)
        threads = [threading.Thread(target=stop_tree, args=(p, grace)) for p in children]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with self._lock:
            self._children.clear()

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._children.discard(proc)


def stop_tree(proc: subprocess.Popen[bytes], grace: float = DEFAULT_GRACE_S) -> None:
    """Stop a process, its process group and its descendants in other sessions.

    SIGTERM first, so that servers shut down and clients close their files; SIGKILL
    for whatever is still alive after `grace` seconds.
    """
    import psutil

    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:  # already gone: its group may still hold children
        descendants = []
    _signal_all(proc.pid, descendants, signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    # Descendants are not our children: psutil polls them (our own child is reaped
    # by Popen.wait above, so that its exit status stays with Popen).
    _, alive = psutil.wait_procs(descendants, timeout=max(0.0, deadline - time.monotonic()))
    if alive or proc.poll() is None:
        logger.debug("killing pid %d and %d descendants that ignored SIGTERM", proc.pid, len(alive))
        _signal_all(proc.pid, alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=grace)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)


def _signal_all(pgid: int, descendants: list[psutil.Process], sig: signal.Signals) -> None:
    import psutil

    # The group id is the child's pid (start_new_session): signal the whole group,
    # then every descendant that left it (Jupyter kernels start their own session).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for child in descendants:
        with contextlib.suppress(psutil.Error):
            child.send_signal(sig)
