"""`python -m runners.launcher --fd N [--tmp-dir DIR] [--remove DIR]...`: serve on socket N.

Started by the local backend when it cannot fork a copy of itself (another thread is
running, or the store is remote); see `runners.launcher`.
"""

from __future__ import annotations

import argparse
import socket

from . import DEFAULT_GRACE_S, serve_launcher


def main(argv: list[str] | None = None) -> None:
    """Parse the options and serve until the socket's other end closes."""
    parser = argparse.ArgumentParser(prog="python -m runners.launcher", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="an inherited stream socket")
    parser.add_argument("--tmp-dir", help="TMPDIR of every child")
    parser.add_argument("--remove", action="append", default=[], help="removed if auditc dies")
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE_S)
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    serve_launcher(sock, tmp_dir=args.tmp_dir, remove=args.remove, grace=args.grace)


if __name__ == "__main__":
    main()
