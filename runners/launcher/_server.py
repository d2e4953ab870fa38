"""The launcher's loop: preload step modules, fork or exec children on request, report exits.

Requests and replies are JSON objects, one per line, on a stream socket whose other
end only the `auditc` process holds:

- `{"op": "preload", "groups": ["datasets", "evaluation"]}`: import what those steps
  need while nothing else is asked (`PRELOAD_GROUPS`);
- `{"op": "spawn", "id": 7, "argv": [...], "log": PATH|null, "env": {...}|null,
  "fork": true, "name": "auditc-eval"}` → `{"id": 7, "pid": 4242}` (or
  `{"id": 7, "error": "..."}`), and later `{"id": 7, "exit": CODE}` with `CODE` as
  `Popen.returncode` gives it (negative: killed by that signal). With `fork`, `argv` is
  `[python, "-m", MODULE, ARGS...]` and runs in a fork of the launcher; otherwise it is
  executed (`execve`) in a new process;
- `{"op": "close"}`: the run is over; exit once the socket closes.

The launcher says `{"ready": PID}` first, once it serves.

End of file on the socket without `close` means `auditc` died: every child is stopped
(SIGTERM, then SIGKILL after the grace period) and the run's temporary directories are
removed. SIGTERM to the launcher does the same.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ._child import become_child, reset_signals, run_module
from ._linux import become_subreaper, die_with_parent, set_process_name
from ._tree import DEFAULT_GRACE_S, has_children, stop_trees, wait_reaped

__all__ = ["FORKED_STEPS", "PRELOAD_GROUPS", "serve_launcher"]

logger = logging.getLogger(__name__)

PRELOAD_GROUPS: dict[str, tuple[str, ...]] = {
    "datasets": ("runners._entry", "runners.datasets._ingest"),
    "evaluation": (
        "click",
        "runners.evaluation._client",
        "pyarrow.parquet",
        "aiohttp",
        "uvloop",
    ),
    "methods": ("runners._entry", "runners.methods._run", "pyarrow.compute", "pandas"),
    "notebooks": ("papermill", "nbconvert", "nbformat", "nbclient", "jupyter_client", "zmq"),
}
"""What each kind of step imports before it does any work: the launcher imports it once,
and every step forked afterwards starts with it loaded. (Not the steps' `__main__`
modules: those run afresh in each child, as `python -m` runs them.)"""

FORKED_STEPS: dict[str, tuple[str, ...]] = {
    "runners.datasets": ("datasets",),
    "runners.imports": ("datasets",),
    "runners.evaluation": ("evaluation",),
    "runners.methods": ("methods", "notebooks"),
}
"""The runner modules a launcher runs in a fork of itself, and the preload groups each needs."""


@dataclass
class _Spawn:
    id: int
    argv: list[str]
    log: str | None = None
    env: dict[str, str] | None = None
    fork: bool = False
    name: str = "auditc-step"

    @classmethod
    def parse(cls, message: dict[str, Any]) -> _Spawn:
        return cls(
            id=int(message["id"]),
            argv=[str(a) for a in message["argv"]],
            log=message.get("log"),
            env=message.get("env"),
            fork=bool(message.get("fork")),
            name=str(message.get("name") or "auditc-step"),
        )


@dataclass
class _State:
    sock: socket.socket
    tmp_dir: str | None
    remove: list[str]
    grace: float
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    wakeup: tuple[int, int] = (-1, -1)
    buffer: bytes = b""
    children: dict[int, int] = field(default_factory=dict)
    """pid → request id, for every child not reaped yet."""
    execed: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    preload: list[str] = field(default_factory=list)
    requested: set[str] = field(default_factory=set)
    loaded: set[str] = field(default_factory=set)
    closing: bool = False
    terminated: bool = False


def serve_launcher(
    sock: socket.socket,
    *,
    tmp_dir: str | None = None,
    remove: Sequence[str] = (),
    grace: float = DEFAULT_GRACE_S,
) -> NoReturn:
    """Serve requests on `sock` until its other end closes; never returns.

    Args:
        sock: This end of a socket pair; `auditc` holds the other.
        tmp_dir: The `TMPDIR` of every child (inside the run's work directory).
        remove: Directories to remove when the launcher ends because `auditc` died.
        grace: Seconds children get between SIGTERM and SIGKILL.
    """
    code = 0
    try:
        _serve(_State(sock, tmp_dir, list(remove), grace))
    except BaseException:  # the launcher must never return into the code that forked it
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def _serve(state: _State) -> None:
    with contextlib.suppress(PermissionError):  # already a session leader when executed
        os.setsid()
    set_process_name("auditc-launch")
    become_subreaper()
    _install_signals(state)
    state.sock.setblocking(False)
    state.selector.register(state.sock, selectors.EVENT_READ)
    state.selector.register(state.wakeup[0], selectors.EVENT_READ)
    _reply(state, {"ready": os.getpid()})
    while True:
        events = state.selector.select(0 if state.preload else None)
        for key, _ in events:
            if key.fileobj is state.sock:
                if not _read_requests(state):
                    _shutdown(state)
                    return
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(state.wakeup[0], 4096)
        _reap(state)
        if state.terminated:
            _shutdown(state)
            return
        if not events and state.preload:
            _load_group(state, state.preload.pop(0))


def _install_signals(state: _State) -> None:
    reset_signals()
    # Ctrl-C reaches `auditc`, which decides how the children stop; the launcher must
    # stay to report their exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    read, write = os.pipe()
    for fd in (read, write):
        os.set_blocking(fd, False)
    state.wakeup = (read, write)
    signal.set_wakeup_fd(write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def terminate(signum: int, frame: object) -> None:
        state.terminated = True

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)


def _read_requests(state: _State) -> bool:
    """Handle every complete request; False at end of file."""
    try:
        data = state.sock.recv(65536)
    except BlockingIOError:
        return True
    except OSError:
        data = b""
    if not data:
        return False
    state.buffer += data
    *lines, state.buffer = state.buffer.split(b"\n")
    for line in lines:
        if line.strip():
            _handle(state, json.loads(line))
    return True


def _handle(state: _State, message: dict[str, Any]) -> None:
    op = message.get("op")
    if op == "preload":
        for group in message.get("groups", []):
            if group in PRELOAD_GROUPS and group not in state.requested:
                state.requested.add(group)
                state.preload.append(group)
    elif op == "spawn":
        request = _Spawn.parse(message)
        try:
            pid = _fork_step(state, request) if request.fork else _exec(state, request)
        except OSError as exc:
            _reply(state, {"id": request.id, "error": f"cannot start {request.argv[0]}: {exc}"})
        else:
            state.children[pid] = request.id
            _reply(state, {"id": request.id, "pid": pid})
    elif op == "close":
        state.closing = True


def _reply(state: _State, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    state.sock.setblocking(True)
    try:
        state.sock.sendall(data)
    except OSError:
        state.terminated = True  # `auditc` is gone
    finally:
        state.sock.setblocking(False)


def _load_group(state: _State, group: str) -> None:
    if group in state.loaded:
        return
    state.loaded.add(group)
    with contextlib.suppress(ValueError):
        state.preload.remove(group)
    started = time.perf_counter()
    for module in PRELOAD_GROUPS[group]:
        try:
            importlib.import_module(module)
        except Exception as exc:  # an optional dependency: the step will say what is missing
            logger.debug("preloading %s failed: %s", module, exc)
    logger.debug("preloaded %s in %.3fs", group, time.perf_counter() - started)


def _fork_step(state: _State, request: _Spawn) -> int:
    module, args = _module_of(request.argv)
    for group in FORKED_STEPS.get(module, ()):
        if group in state.requested:
            _load_group(state, group)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    gc.freeze()  # children do not copy the pages of what is already loaded to collect it
    launcher = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _leave_launcher(state)
        become_child(
            launcher_pid=launcher,
            name=request.name,
            log=request.log,
            env=request.env,
            tmp_dir=state.tmp_dir,
        )
        code = run_module(module, args)
    finally:
        os._exit(code)


def _module_of(argv: list[str]) -> tuple[str, list[str]]:
    if len(argv) < 3 or argv[1] != "-m":
        raise OSError(f"not a `python -m MODULE` command: {argv[:3]}")
    return argv[2], argv[3:]


def _leave_launcher(state: _State) -> None:
    """Close, in a forked child, what belongs to the launcher (through their objects)."""
    state.selector.close()
    state.sock.close()
    for fd in state.wakeup:
        os.close(fd)
    state.wakeup = (-1, -1)
    for proc in state.execed.values():
        proc.returncode = 0  # not ours to reap: keeps Popen.__del__ quiet


def _exec(state: _State, request: _Spawn) -> int:
    env = dict(request.env) if request.env is not None else dict(os.environ)
    if state.tmp_dir is not None:
        env["TMPDIR"] = state.tmp_dir
    out = open(request.log, "ab") if request.log is not None else None  # noqa: SIM115
    launcher = os.getpid()
    name = request.name

    def prepare() -> None:  # runs in the child before exec; the launcher is single-threaded
        die_with_parent(signal.SIGTERM, launcher)
        set_process_name(name)

    try:
        proc = subprocess.Popen(
            request.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            env=env,
            start_new_session=True,
            preexec_fn=prepare,  # noqa: PLW1509 - safe: the launcher runs one thread
        )
    finally:
        if out is not None:
            out.close()
    state.execed[proc.pid] = proc
    return proc.pid


def _reap(state: _State) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        proc = state.execed.pop(pid, None)
        if proc is not None:
            proc.returncode = code
        request = state.children.pop(pid, None)
        if request is not None and not state.terminated:
            _reply(state, {"id": request, "exit": code})


def _reaped(state: _State, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(state)
        if pid not in state.children:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _shutdown(state: _State) -> None:
    """Stop every child and, unless `auditc` closed the run itself, remove its directories."""
    state.terminated = True
    pids = list(state.children)
    if pids:
        stop_trees(pids, wait_exit=lambda pid, t: _reaped(state, pid, t), grace=state.grace)
    _stop_adopted(state)
    if not state.closing:
        for path in state.remove:
            shutil.rmtree(path, ignore_errors=True)


def _stop_adopted(state: _State) -> None:
    """Orphans of the steps that were given to the launcher (it is their subreaper)."""
    if not has_children():
        return
    import psutil

    try:
        orphans = [p.pid for p in psutil.Process().children()]
    except psutil.Error:
        return
    if orphans:
        stop_trees(orphans, wait_exit=wait_reaped, grace=state.grace)
