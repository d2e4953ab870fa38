"""The gate of `concurrency: auto`: at most `limit` requests in flight, a limit that moves.

Stage: runner (the evaluation client). Workers `acquire()` a slot just before a request
and `release()` it when the answer is in, so a row waiting out a `Retry-After` holds no
slot. Waiters are served first come, first served. A lower limit applies at once (the
requests in flight finish; no new ones start until the count is under it); a higher one
is reached in steps spread over a given time, so raising the level is not a burst.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

__all__ = ["PACE_TICK_S", "InFlightGate"]

PACE_TICK_S = 0.01
"""Interval of the steps of a paced raise."""


class InFlightGate:
    """A counting gate whose limit can change while requests wait (one event loop only).

    Example:
        >>> gate = InFlightGate(4)
        >>> await gate.acquire()  # doctest: +SKIP
        >>> gate.release()  # doctest: +SKIP
        >>> gate.set_limit(16, over_s=0.2)  # 4 -> 16 in steps over 0.2 s  # doctest: +SKIP
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """The limit in force now (it trails `target` during a paced raise)."""
        self.target = limit
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._pacer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a slot and take it."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as the waiter was cancelled: give it back
            else:
                future.cancel()
            raise

    def release(self) -> None:
        """Give a slot back."""
        self.in_flight -= 1
        self._wake()

    def set_limit(self, target: int, over_s: float = 0.0) -> None:
        """Move the limit to `target`: at once when lower, in steps over `over_s` when higher."""
        if self._pacer is not None:
            self._pacer.cancel()
            self._pacer = None
        self.target = target
        if target <= self.limit or over_s < PACE_TICK_S:
            self.limit = target
            self._wake()
            return
        step = math.ceil((target - self.limit) * PACE_TICK_S / over_s)
        self._raise(step)

    def close(self) -> None:
        """Stop a paced raise (the run is over)."""
        if self._pacer is not None:
            self._pacer.cancel()
            self._pacer = None

    def _raise(self, step: int) -> None:
        self._pacer = None
        self.limit = min(self.target, self.limit + step)
        self._wake()
        if self.limit < self.target:
            self._pacer = asyncio.get_running_loop().call_later(PACE_TICK_S, self._raise, step)

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self.in_flight < self.limit:
            future = waiters.popleft()
            if not future.done():
                self.in_flight += 1
                future.set_result(None)
