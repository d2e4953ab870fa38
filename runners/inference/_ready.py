"""Helpers for whoever starts a server: pick a free port, wait until it is ready."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from schemas import InferenceError

from .._health import probe_health

__all__ = ["HEALTH_PATH", "free_port", "wait_ready"]

HEALTH_PATH = "/health"
_LOG_TAIL_LINES = 20


class _Process(Protocol):
    """A started server process (`subprocess.Popen` or the local backend's launched child)."""

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _health_url(url: str) -> str:
    # A bare base URL means the runner's own readiness route.
    parts = urlsplit(url)
    return url.rstrip("/") + HEALTH_PATH if parts.path in ("", "/") else url


def _log_tail(log: str | Path | None) -> str:
    if log is None:
        return ""
    path = Path(log)
    try:
        lines = path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    except OSError:
        return f"; see its log {path}"
    tail = "\n".join(f"  | {line}" for line in lines)
    return f"; see its log {path}" + (f", which ends with:\n{tail}" if tail else " (empty)")


def wait_ready(
    url: str,
    timeout: float,
    process: _Process | None = None,
    *,
    log: str | Path | None = None,
) -> None:
    """Poll a server's readiness route until it answers 200.

    Args:
        url: The health URL to poll; a base URL without a path polls `<url>/health`.
        timeout: Seconds to wait in all.
        process: The server process, if we started it: its exit ends the wait at once.
        log: The server's log file, named (with its last lines) in errors.

    Raises:
        InferenceError: the process exited, or the server was not ready in time.
    """
    target = _health_url(url)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if process is not None and process.poll() is not None:
            raise InferenceError(
                f"the inference server exited with code {process.returncode} before it "
                f"was ready at {target}{_log_tail(log)}"
            )
        last = probe_health(target, min(5.0, max(deadline - time.monotonic(), 0.1)))
        if last is None:
            return
        if time.monotonic() >= deadline:
            raise InferenceError(
                f"the inference server at {target} was not ready after {timeout:g} s "
                f"(last answer: {last}){_log_tail(log)}"
            )
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 0.5)
