"""Ctrl-C (and SIGTERM or SIGHUP where a command handles them) always ends `auditc`.

Python runs signal handlers in the main thread between bytecodes, so a main thread
blocked inside C code (a store connection that never answers, a library call without
a timeout) cannot take a signal until that call returns. A watchdog thread, started
when `auditc` opens an object store (whose client is what blocks there), sees each
signal Python handles (through `signal.set_wakeup_fd`); when the main thread has not
taken it within `GRACE_S` seconds, the watchdog ends the process with the usual code
(128 + the signal: 130 for SIGINT, 143 for SIGTERM) and says why. Commands that stop
on SIGTERM and SIGHUP handle them with `raise_interrupt` (`_signals.py`). A main thread that takes the signal
stops as it always did (clean-up included), however long that takes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import NoReturn

__all__ = ["GRACE_S", "end_within", "install_watchdog", "raise_interrupt"]

GRACE_S = 3.0
"""Seconds the main thread has to take a signal before the process is ended."""


class _Taken:
    """How many signals the main thread has taken, for the watchdog to wait on."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def add(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count >= count, timeout)


_taken = _Taken()
_WATCHED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_installed = False


def raise_interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """The signal handler of SIGINT (and of SIGTERM where a command stops on it): stop as
    for Ctrl-C, telling the watchdog the main thread is responsive."""
    _taken.add()
    raise KeyboardInterrupt


def install_watchdog(grace_s: float = GRACE_S) -> None:
    """Make SIGINT, and signals handled by `raise_interrupt`, always end the process.

    Call from the main thread before any work; does nothing in other threads, or when
    a watchdog is already installed.
    """
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    try:
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main interpreter
        reader.close()
        writer.close()
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, raise_interrupt)
    _installed = True
    threading.Thread(
        target=_watch,
        args=(reader, writer, grace_s),
        name="auditc-signal-watchdog",
        daemon=True,
    ).start()


def _watch(reader: socket.socket, writer: socket.socket, grace_s: float) -> None:
    received = 0
    with reader, writer:  # the writer stays open as long as the wakeup fd may be used
        while data := reader.recv(64):
            for signum in data:
                if signum not in _WATCHED:
                    continue
                received += 1
                if not _taken.wait_for(received, grace_s):
                    _end(signum, grace_s)


def _end(signum: int, grace_s: float) -> NoReturn:
    name = signal.Signals(signum).name
    message = (
        f"\n{name}: auditc is blocked in a call that cannot be interrupted and did not stop "
        f"within {grace_s:g} s; exiting now\n"
    )
    with contextlib.suppress(OSError):  # stderr may be gone: exit all the same
        os.write(sys.stderr.fileno(), message.encode())
    os._exit(128 + signum)


def end_within(code: int) -> None:
    """In the `auditc` process, exit with `code` now if it opened an object store.

    For exits after an interruption or an error. Exit handlers could then wait without
    end: pyarrow's S3 finalizer waits for every request in flight, and a store that
    never answers keeps one in flight (or leaves the client's locks held when a signal
    cut it short) for as long as its timeouts allow. So the process ends here, its
    output flushed, without running them. Returns when no object store was opened, and
    in a process that only calls the CLI (tests call `main()` in-process).
    """
    from schemas import remote_stores_opened

    if remote_stores_opened() and Path(sys.argv[0]).name in ("auditc", "main.py"):
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
