"""One step in a child of the launcher: what the process becomes, and what it leaves behind.

A forked step must behave as `python -m runners.<step> ARGS` started on its own would:
its own session, stdin from /dev/null, stdout and stderr appended to its log, default
signal dispositions, fresh logging, `sys.argv` and `sys.path[0]` as `-m` sets them, and
at the end its non-daemon threads joined and its logs flushed (but not the `atexit`
hooks of the process it was forked from). On
top of that it dies with the launcher (`PR_SET_PDEATHSIG`) and adopts its orphaned
descendants (`PR_SET_CHILD_SUBREAPER`), which it stops before it exits: nothing a step
starts outlives it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import runpy
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Mapping, Sequence

from ._linux import become_subreaper, die_with_parent, set_process_name
from ._tree import has_children, stop_trees, wait_reaped

__all__ = ["become_child", "reset_signals", "run_module"]

_RESET_SIGNALS = (
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGCHLD,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
)
DESCENDANTS_GRACE_S = 2.0
"""Seconds the processes a finished step left behind get between SIGTERM and SIGKILL."""


def reset_signals() -> None:
    """The dispositions of a fresh interpreter, whatever the forking process had set."""
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it at start-up
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def become_child(
    *,
    launcher_pid: int,
    name: str,
    log: str | None,
    env: Mapping[str, str] | None,
    tmp_dir: str | None,
) -> None:
    """Turn a freshly forked launcher into a step process (see the module docstring)."""
    os.setsid()
    die_with_parent(signal.SIGTERM, launcher_pid)
    set_process_name(name)
    reset_signals()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if log is not None:
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
    _fresh_stdio()
    # A step that crashes (a segfault in a C extension) leaves its Python stack in its log.
    faulthandler.enable(file=sys.stderr)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    if tmp_dir is not None:
        os.environ["TMPDIR"] = tmp_dir
        tempfile.tempdir = tmp_dir
    # Logging is configured by the step's own entry point, as in a fresh interpreter.
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def _fresh_stdio() -> None:
    """`sys.stdin/stdout/stderr` on file descriptors 0, 1 and 2, as a new interpreter has them.

    The forking process may have replaced them (pytest's capture, a Jupyter kernel's
    streams), which would send a step's output somewhere other than its log.
    """
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(  # noqa: SIM115
        2, "w", buffering=1, errors="backslashreplace", closefd=False
    )


def run_module(module: str, args: Sequence[str]) -> int:
    """Run `python -m module args…` in this process; its exit code.

    Descendants the step left running are stopped before this returns.
    """
    subreaper = become_subreaper()
    sys.argv = [module, *args]
    if sys.path:
        sys.path[0] = os.getcwd()  # as `python -m` sets it (not the forking script's dir)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # an uncaught error ends a step as it ends an interpreter
        traceback.print_exc()
        code = 1
    _finish_threads()
    _flush()
    if subreaper:
        _stop_descendants()
    return code


def _finish_threads() -> None:
    """What an interpreter does at exit before it ends: wait for non-daemon threads, flush logs.

    (The process then ends with `os._exit`: the `atexit` hooks it inherited from the
    launcher — and from `auditc`, such as removing the run's work directory — must not run.)
    """
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    logging.shutdown()


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    sys.stderr.write(f"{value}\n")
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _stop_descendants() -> None:
    """Stop every process the step started and left running (they are all our children now)."""
    if not has_children():
        return
    import psutil

    try:
        children = psutil.Process().children(recursive=False)
    except psutil.Error:
        return
    if not children:
        return
    stop_trees([c.pid for c in children], wait_exit=wait_reaped, grace=DESCENDANTS_GRACE_S)
