"""Termination signals, handled as Ctrl-C by the commands that start processes.

`run`, `serve` and `infer` stop the servers, clients and methods they started when
they are interrupted. Ctrl-C raises KeyboardInterrupt; SIGTERM (what CI systems and
process supervisors send) and SIGHUP (a closed terminal or SSH session) are made to
do the same, so every way of stopping auditc short of SIGKILL goes through the same
clean-up (and SIGKILL is handled by the process launcher: docs/local.md).
"""

from __future__ import annotations

import signal
import threading

from ._interrupts import raise_interrupt

__all__ = ["stop_on_termination"]

TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def stop_on_termination() -> None:
    """Raise KeyboardInterrupt in the main thread on SIGTERM and SIGHUP."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in TERMINATION_SIGNALS:
        # raise_interrupt also tells the watchdog the main thread took the signal.
        signal.signal(sig, raise_interrupt)
