"""Temporary work directories of runs, sessions and methods, and the sweep of stale ones.

Each directory's name carries the pid of the process it belongs to
(`auditc-run-<pid>-<random>`, likewise `auditc-serve-`, `auditc-infer-` and the method
runner's `auditc-method-`). A run removes its own when it ends; if it is killed, its
launcher removes it; and if both were killed at once, the next run, session or `infer`
finds it by its dead owner and removes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["STALE_PATTERN", "sweep_stale_work_dirs", "work_dir"]

logger = logging.getLogger(__name__)

STALE_PATTERN = re.compile(r"^auditc-(run|serve|infer|method)-(\d+)-")
"""Work directories this sweep may remove: their kind and the pid that owns them."""


@contextlib.contextmanager
def work_dir(kind: str) -> Iterator[Path]:
    """A fresh `auditc-<kind>-<pid>-…` directory, removed afterwards; stale ones go first."""
    sweep_stale_work_dirs()
    with tempfile.TemporaryDirectory(
        prefix=f"auditc-{kind}-{os.getpid()}-", ignore_cleanup_errors=True
    ) as tmp:
        yield Path(tmp)


def sweep_stale_work_dirs(root: Path | None = None) -> list[Path]:
    """Remove the work directories (in `root`, default the temp dir) whose owner is gone.

    Returns:
        The directories removed.
    """
    base = Path(root if root is not None else tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        match = STALE_PATTERN.match(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        if _owner_alive(int(match[2]), entry):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
        logger.debug("removed the stale work directory %s", entry.path)
    return removed


def _owner_alive(pid: int, entry: os.DirEntry[str]) -> bool:
    """Whether process `pid` still runs and is the one that made the directory."""
    import psutil

    try:
        started = psutil.Process(pid).create_time()
        made = entry.stat(follow_symlinks=False).st_mtime
    except (psutil.Error, OSError):
        return False
    # A process that started after the directory was last changed reuses a dead
    # owner's pid (a second of slack for clock granularity).
    return bool(started <= made + 1.0)
