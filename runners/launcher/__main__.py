"""`python -m runners.launcher --fd N [--tmp-dir DIR] [--remove DIR]...`: serve on socket N.

Started by the local backend when it cannot fork a copy of itself (another thread is
running, or the store is remote); see `runners.launcher`.
"""

from __future__ import annotations

import socket
import sys

import click

from .._entry import run_entry
from . import DEFAULT_GRACE_S, serve_launcher


@click.command()
@click.option("--fd", type=int, required=True, help="An inherited stream socket.")
@click.option("--tmp-dir", help="TMPDIR of every child.")
@click.option("--remove", multiple=True, help="Removed if auditc dies (repeatable).")
@click.option("--grace", type=float, default=DEFAULT_GRACE_S, show_default=True)
def command(fd: int, tmp_dir: str | None, remove: tuple[str, ...], grace: float) -> None:
    """Serve on socket FD until its other end closes."""
    sock = socket.socket(fileno=fd)
    serve_launcher(sock, tmp_dir=tmp_dir, remove=list(remove), grace=grace)


def main(argv: list[str] | None = None) -> int:
    """Parse the options and serve; return the exit code."""
    return run_entry(command, argv, prog="python -m runners.launcher")


if __name__ == "__main__":
    sys.exit(main())
