"""Resolving the paths specs name without trusting the file system.

A pull request can commit symlinks: two links pointing at each other, or a link
`self -> .` inside a Module directory. Resolving them must end in an error that names
the link, never in a crash or an endless walk. `resolve` is the one place that turns
a loop into `SymlinkLoop`, on every Python version (3.11 and 3.12 raise
`RuntimeError`, 3.13 returns the unresolved rest of the loop).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["SymlinkLoop", "resolve"]


class SymlinkLoop(Exception):  # noqa: N818 - a condition callers turn into an Issue
    """A path whose symlinks never reach a file or directory (a loop, or over 40 links)."""

    def __init__(self, path: Path, target: Path | None = None) -> None:
        super().__init__(str(path))
        self.path = path
        """The link (or the path through it) that loops."""
        self.target = target
        """For a directory link that leads back into the tree being read: where it leads."""


def resolve(path: Path) -> Path:
    """`path.resolve()` (non-strict), with symlink loops raised as `SymlinkLoop`.

    A path that does not exist resolves as far as it can, like `Path.resolve()`.

    Raises:
        SymlinkLoop: a symlink on the way loops (or the chain is longer than the OS allows).
    """
    try:
        resolved = path.resolve()
    except RuntimeError:  # Python < 3.13: "Symlink loop from …"
        raise SymlinkLoop(path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkLoop(path) from None
        raise
    try:
        os.stat(resolved)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # Python >= 3.13 stops resolving at the loop
            raise SymlinkLoop(path) from None
    return resolved
