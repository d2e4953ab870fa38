"""Linux process controls through `prctl(2)`; each is a no-op (returning False) elsewhere.

The libc function is looked up when this module is imported, in the launcher, so a
freshly forked child only makes the call.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["become_subreaper", "die_with_parent", "set_process_name"]

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def die_with_parent(sig: signal.Signals, parent: int) -> bool:
    """Have the kernel send `sig` to this process when its parent exits.

    `parent` is the pid the caller was forked from: if it is already gone (the call
    came too late to be told), this process exits at once instead.
    """
    if _PRCTL is None or _PRCTL(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:
        os._exit(1)
    return True


def become_subreaper() -> bool:
    """Adopt the orphaned descendants of this process (instead of init), so it can stop them."""
    return _PRCTL is not None and _PRCTL(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def set_process_name(name: str) -> bool:
    """The name `ps -o comm`, `top` and `pgrep` show (15 bytes at most)."""
    if _PRCTL is None:
        return False
    return _PRCTL(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0) == 0
