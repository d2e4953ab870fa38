"""Wait until the service an evaluation sends to is ready, or fail the shard with exit code 4.

In a Kubernetes evaluation pod the inference server is a native sidecar, which the
kubelet restarts whatever the pod's `restartPolicy`: a server that never loads (a bad
model revision, an OOM while loading, a CUDA error) would otherwise hold the pod and
its GPU until the Job's deadline. So the client waits for the server itself, bounded
by the Evaluation's `timeouts.ready`, and exits with `EXIT_NOT_READY` when the time
is up; the Job's `podFailurePolicy` fails that shard at once (docs/kubernetes.md).

The wait is a plain poll of one health URL (stdlib only, nothing to import on the
client's start-up path): any HTTP 200 means ready; anything else (a refused
connection, a timeout, HTTP 503 while the model loads) is retried until the deadline.

An `external` service is waited for the same way, with a short default
(`Timeouts.ready_s`: seconds, not the 600 s a model may need to load): by the local
backend before its evaluations start (progress on the terminal), by the client on
Kubernetes. Without a `health_path`, any HTTP answer at its URL means it is up.

Example:
    >>> wait_for_service("http://127.0.0.1:8000/health", timeout_s=600)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from schemas import EvaluationError

from .._health import probe_health

__all__ = [
    "EXIT_NOT_READY",
    "ServiceNotReadyError",
    "wait_for_service",
]

logger = logging.getLogger("runners.evaluation")

EXIT_NOT_READY = 4
"""Exit code of `python -m runners.evaluation` when its service is not ready in time."""
POLL_INITIAL_S = 0.05
POLL_MAX_S = 1.0
"""Polls start fast (a local server is up in well under a second) and slow down to this."""
PROBE_TIMEOUT_S = 5.0
"""Longest one poll may take; a server that answers slower than this is not ready."""
LOG_EVERY_S = 15.0
"""How often a long wait says it is still waiting."""
PROGRESS_EVERY_S = 2.0
"""How often `on_progress` hears about a wait."""


class ServiceNotReadyError(EvaluationError):
    """The service did not answer its health URL with HTTP 200 within `timeouts.ready`."""

    code = "service-not-ready"
    exit_code = EXIT_NOT_READY


def wait_for_service(
    url: str,
    timeout_s: float,
    *,
    any_status: bool = False,
    on_progress: Callable[[float, str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll `url` with GET until it answers HTTP 200; returns the seconds waited.

    Args:
        url: the service's health URL (`http://127.0.0.1:8000/health`).
        timeout_s: how long to wait in all (the Evaluation's `timeouts.ready`).
        any_status: any HTTP answer will do (an external service without a health route:
            what matters is that something answers at its URL).
        on_progress: called every `PROGRESS_EVERY_S` of waiting with the seconds waited
            and the last error (the local backend shows it on the terminal).
        clock: monotonic clock (tests pass their own).
        sleep: how to pause between polls (tests pass their own).

    Raises:
        ServiceNotReadyError: not ready within `timeout_s`; the message names the URL,
            the time waited and the last error seen (exit code `EXIT_NOT_READY`).
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    start = clock()
    deadline = start + timeout_s
    delay = POLL_INITIAL_S
    next_log = start + LOG_EVERY_S
    next_progress = start + PROGRESS_EVERY_S
    while True:
        now = clock()
        last = probe_health(url, max(0.1, min(PROBE_TIMEOUT_S, deadline - now)), any_status)
        now = clock()
        if last is None:
            waited = now - start
            if waited >= 1.0:
                logger.info("service ready at %s after %.1f s", url, waited)
            return waited
        if now >= deadline:
            raise ServiceNotReadyError(
                f"the service at {url} was not ready after {timeout_s:g} s "
                f"(timeouts.ready; last error: {last}); giving up now instead of sending "
                "every row to a service that is down"
            )
        if on_progress is not None and now >= next_progress:
            on_progress(now - start, last)
            next_progress = now + PROGRESS_EVERY_S
        if on_progress is None and now >= next_log:
            logger.info(
                "waiting for the service at %s: %.0f of %g s (last error: %s)",
                url,
                now - start,
                timeout_s,
                last,
            )
            next_log = now + LOG_EVERY_S
        sleep(min(delay, max(deadline - now, 0.0)))
        delay = min(delay * 2, POLL_MAX_S)
