"""The `auditc` side of the launcher (`runners.launcher`): start it, ask it for processes.

A `Launcher` is a copy of this process made with `fork()` when that is safe — this
process runs one thread and its store is local, so nothing it inherits can be in the
middle of something — which costs no interpreter start and no imports; otherwise it is
`python -m runners.launcher`. Either way, the socket between the two is the launcher's
lifeline: only this process holds its end, so the launcher notices this process's death
and stops everything it started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from schemas import BackendError

__all__ = ["ChildProcess", "LaunchOptions", "LaunchedProcess", "Launcher", "forkable"]

logger = logging.getLogger(__name__)

FORK_ENV = "AUDITC_FORK_STEPS"
"""Set to 0 to run every step in a fresh interpreter (`python -m runners.<step>`)."""

LAUNCHER_START_S = 60.0
"""How long the launcher may take to start or to answer a request (it may be importing
what a step needs first)."""
_LOST = -int(signal.SIGKILL)
"""The exit code given to children whose launcher vanished (they are killed with it)."""


@dataclass(frozen=True)
class LaunchOptions:
    """How a run's launcher starts, and what it gives its children."""

    preload: Sequence[str] = ()
    """Preload groups of `runners.launcher` the run's steps need."""
    tmp_dir: Path | None = None
    """The children's `TMPDIR`, inside the run's work directory."""
    remove: Sequence[Path] = ()
    """Directories the launcher removes if `auditc` dies."""
    allow_fork: bool = True
    """Whether the launcher may be a fork of this process (not when this process holds
    connections to a remote store)."""
    inherit_fds: Sequence[int] = ()
    """Descriptors the launcher and its forked steps keep open (the store's lock)."""


class ChildProcess(Protocol):
    """What the backend needs of a child process (a subset of `subprocess.Popen`)."""

    @property
    def pid(self) -> int:
        """The process id."""

    @property
    def returncode(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal), else None."""

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code; raises `subprocess.TimeoutExpired` after `timeout`."""


class LaunchedProcess:
    """A child started by the launcher, as seen from `auditc` (which is not its parent)."""

    def __init__(self, args: Sequence[str], pid: int) -> None:
        self.args = list(args)
        self.pid = pid
        self.returncode: int | None = None
        self._exited = threading.Event()

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit; its exit code.

        Raises:
            subprocess.TimeoutExpired: it is still running after `timeout` seconds.
        """
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def _exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def __repr__(self) -> str:
        return f"<LaunchedProcess pid={self.pid} returncode={self.returncode}>"


def forkable(argv: Sequence[str], env: Mapping[str, str] | None) -> bool:
    """Whether `argv` is a runner step the launcher can run in a fork of itself.

    Not when the environment changes anything Python reads only at start-up
    (`PYTHON*` variables such as `PYTHONPATH` or `PYTHONPYCACHEPREFIX`).
    """
    from runners.launcher import FORKED_STEPS

    if len(argv) < 3 or argv[0] != sys.executable or argv[1] != "-m":
        return False
    if argv[2] not in FORKED_STEPS or os.environ.get(FORK_ENV, "1") == "0":
        return False
    if env is None:
        return True
    changed = {k for k in {*env, *os.environ} if env.get(k) != os.environ.get(k)}
    return not any(k.startswith("PYTHON") for k in changed)


class Launcher:
    """One launcher process and the children it started for this process.

    Thread-safe: `spawn` may be called from any thread.
    """

    def __init__(self, options: LaunchOptions | None = None) -> None:
        self._options = options = options or LaunchOptions()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._next_id = 0
        self._waiting: dict[int, tuple[threading.Event, list[Any], list[str]]] = {}
        self._running: dict[int, LaunchedProcess] = {}
        """Children by request id, until their exit is reported."""
        self._closed = False
        """No more spawns: closing, or the launcher is gone."""
        self._finished = False
        """`close()` ran."""
        self._ready = threading.Event()
        self._sock, self._proc, self._pid = self._start()
        self._reader = threading.Thread(target=self._read, name="auditc-launcher", daemon=True)
        self._reader.start()
        if not self._ready.wait(LAUNCHER_START_S) or self._closed:
            self.close()
            raise BackendError(
                "the process launcher did not start (its messages, if any, are above)"
            )
        if options.preload:
            self._send({"op": "preload", "groups": list(options.preload)})

    @property
    def pid(self) -> int:
        """The launcher's process id."""
        return self._pid

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log: Path | None,
        env: Mapping[str, str] | None = None,
        name: str = "auditc-step",
    ) -> LaunchedProcess:
        """Start `argv` (forked from the launcher when `forkable`, else executed).

        Raises:
            BackendError: the launcher could not start it, or is gone.
        """
        event = threading.Event()
        reply: list[LaunchedProcess | str] = []
        with self._lock:
            if self._closed:
                raise BackendError("the process launcher of this run has stopped")
            self._next_id += 1
            request_id = self._next_id
            self._waiting[request_id] = (event, reply, list(argv))
        message = {
            "op": "spawn",
            "id": request_id,
            "argv": list(argv),
            "log": str(log) if log is not None else None,
            "env": dict(env) if env is not None else None,
            "fork": forkable(argv, env),
            "name": name,
        }
        try:
            self._send(message)
        except OSError as exc:
            with self._lock:
                self._waiting.pop(request_id, None)
            raise BackendError(f"the process launcher of this run is gone: {exc}") from exc
        if not event.wait(LAUNCHER_START_S):
            with self._lock:
                self._waiting.pop(request_id, None)
            raise BackendError(f"the process launcher did not answer in {LAUNCHER_START_S:g} s")
        answer = reply[0] if reply else "the process launcher of this run exited"
        if isinstance(answer, str):
            raise BackendError(answer)
        return answer

    def close(self) -> None:
        """Stop the launcher (its children must be stopped first) and wait for it to exit."""
        with self._lock:
            if self._finished:
                return
            self._finished = self._closed = True
        with contextlib.suppress(OSError):
            self._send({"op": "close"})
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        self._reader.join(timeout=30)
        self._sock.close()
        self._wait_launcher()

    # ------------------------------------------------------------ internals

    def _start(self) -> tuple[socket.socket, subprocess.Popen[bytes] | None, int]:
        options = self._options
        ours, theirs = socket.socketpair()
        tmp = str(options.tmp_dir) if options.tmp_dir is not None else None
        remove = [str(p) for p in options.remove]
        if options.allow_fork and _can_fork():
            pid = _fork_launcher(ours, theirs, tmp, remove)
            theirs.close()
            return ours, None, pid
        argv = [sys.executable, "-m", "runners.launcher", "--fd", str(theirs.fileno())]
        if tmp is not None:
            argv += ["--tmp-dir", tmp]
        for path in remove:
            argv += ["--remove", path]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                pass_fds=[theirs.fileno(), *options.inherit_fds],
                start_new_session=True,
            )
        except OSError as exc:
            raise BackendError(f"cannot start the process launcher: {exc}") from exc
        finally:
            theirs.close()
        return ours, proc, proc.pid

    def _send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self._send_lock:
            self._sock.sendall(data)

    def _read(self) -> None:
        with self._sock.makefile("rb") as stream:
            for line in stream:
                if line.strip():
                    self._dispatch(json.loads(line))
        self._lost()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "ready" in message:
            self._ready.set()
            return
        request_id = message["id"]
        with self._lock:
            if "exit" in message:
                child = self._running.pop(request_id, None)
                if child is not None:
                    child._exit(int(message["exit"]))
                return
            waiting = self._waiting.pop(request_id, None)
            if waiting is None:  # answered after spawn() gave up: the launcher stops it at close
                return
            event, reply, argv = waiting
            if "pid" in message:
                child = LaunchedProcess(argv, int(message["pid"]))
                self._running[request_id] = child
                reply.append(child)
            else:
                reply.append(str(message.get("error")))
        event.set()

    def _lost(self) -> None:
        """The launcher closed its end: every child still running is gone with it."""
        with self._lock:
            closing = self._closed
            self._closed = True
            waiting = list(self._waiting.values())
            self._waiting.clear()
            running = list(self._running.values())
            self._running.clear()
        self._ready.set()
        for event, _, _ in waiting:
            event.set()
        for child in running:
            if not closing:
                logger.error("the process launcher exited; pid %d is lost", child.pid)
            child._exit(_LOST)

    def _wait_launcher(self) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._pid, 0)


def _can_fork() -> bool:
    """Whether a copy of this process made by `fork()` is safe to run Python in.

    Only when this is the process's one Python thread: a lock another thread holds at the
    fork would stay held forever in the copy.
    """
    return (
        hasattr(os, "fork")
        and threading.active_count() == 1
        and os.environ.get(FORK_ENV, "1") != "0"
    )


def _fork_launcher(
    ours: socket.socket, theirs: socket.socket, tmp: str | None, remove: list[str]
) -> int:
    from runners.launcher import serve_launcher

    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the copy would write this process's pending output again
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() with threads; only its own helper threads
        # of native libraries (jemalloc, OpenBLAS) run here, and they handle fork.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            serve_launcher(theirs, tmp_dir=tmp, remove=remove)
        finally:
            os._exit(1)
    return pid
