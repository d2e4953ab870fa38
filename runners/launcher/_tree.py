"""Stopping process trees: a process, its process group, and its descendants elsewhere."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

__all__ = ["DEFAULT_GRACE_S", "has_children", "stop_trees", "wait_reaped"]

logger = logging.getLogger(__name__)

DEFAULT_GRACE_S = 5.0
"""Seconds a process gets to exit after SIGTERM before it is killed."""


def has_children() -> bool:
    """Whether this process has a child, running or exited and not yet reaped (none is reaped).

    Before listing children with psutil, which imports it and reads all of /proc: most
    steps start no process at all.
    """
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def stop_trees(
    pids: Sequence[int],
    *,
    wait_exit: Callable[[int, float], bool],
    grace: float = DEFAULT_GRACE_S,
) -> None:
    """Stop processes, their process groups, and everything they started.

    SIGTERM first — to each process, to the group it leads (if it leads one) and to
    every descendant, wherever it went (a Jupyter kernel starts a session of its own) —
    so that servers shut down and clients commit what they hold; SIGKILL for whatever
    is still alive after `grace`.

    Args:
        pids: The processes to stop.
        wait_exit: `wait_exit(pid, timeout)` waits for one of `pids` to exit and be
            reaped by its parent, and says whether it did.
        grace: Seconds between SIGTERM and SIGKILL.
    """
    import psutil

    descendants: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            descendants += psutil.Process(pid).children(recursive=True)
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    _signal_each(descendants, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive_leaders = [pid for pid in pids if not wait_exit(pid, _left(deadline))]
    _, alive = psutil.wait_procs(descendants, timeout=_left(deadline))
    if not alive_leaders and not alive:
        return
    logger.debug("killing %d processes that ignored SIGTERM", len(alive_leaders) + len(alive))
    for pid in alive_leaders:
        _signal_group(pid, signal.SIGKILL)
    _signal_each(alive, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=grace)
    for pid in alive_leaders:
        wait_exit(pid, grace)


def wait_reaped(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` for a child of this process to exit, and reap it."""
    import psutil

    try:
        psutil.Process(pid).wait(timeout)
    except psutil.TimeoutExpired:
        return False
    except psutil.Error:  # gone already
        pass
    return True


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # A group's id is its leader's pid, and the kernel never hands out a pid that is
    # still some group's id: the group `pid`, if it exists, is the one `pid` leads.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _signal_each(processes: list[psutil.Process], sig: signal.Signals) -> None:
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)
