"""A discrete-event simulation of the evaluation client against model servers, in virtual time.

It drives the real `AdaptiveController` (or a fixed level) the way the client does: a gate
of `level` requests in flight, retries that wait out `Retry-After` without holding a slot,
`update()` on a 0.25 s tick. Deterministic and fast, so the controller's behaviour can be
checked in the normal suite without any timing assertion on real time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from runners.evaluation._adaptive import AdaptiveController, AdaptiveSettings

TICK_S = 0.25
RTT_S = 0.0004
MAX_ATTEMPTS = 5
PACE_TICK_S = 0.01


@dataclass
class Answer:
    status: int
    retry_after: float | None = None


class SlotServer:
    """k parallel slots and a FIFO queue; `service(active)` seconds per request."""

    def __init__(self, slots: int, service: Callable[[int], float]) -> None:
        self.slots = slots
        self.service = service
        self.active = 0
        self.queue: deque[int] = deque()

    def arrive(self, sim: Simulation, request: int) -> None:
        if self.active < self.slots:
            self._start(sim, request)
        else:
            self.queue.append(request)

    def _start(self, sim: Simulation, request: int) -> None:
        self.active += 1
        sim.at(sim.now + self.service(self.active), self._finish, request)

    def _finish(self, sim: Simulation, request: int) -> None:
        self.active -= 1
        sim.respond(request, Answer(200))
        if self.queue:
            self._start(sim, self.queue.popleft())


class RateLimitedServer:
    """A token bucket of `rate`/s and `burst` tokens; over it, 429 with Retry-After."""

    def __init__(
        self,
        rate: float,
        burst: float,
        latency: Callable[[], float],
        retry_after: float = 1.0,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.latency = latency
        self.retry_after = retry_after
        self.tokens = burst
        self.updated = 0.0
        self.rejected = 0

    def arrive(self, sim: Simulation, request: int) -> None:
        self.tokens = min(self.burst, self.tokens + (sim.now - self.updated) * self.rate)
        self.updated = sim.now
        if self.tokens >= 1:
            self.tokens -= 1
            sim.at(sim.now + self.latency(), lambda s, r: s.respond(r, Answer(200)), request)
        else:
            self.rejected += 1
            answer = Answer(429, self.retry_after)
            sim.at(sim.now + 0.0002, lambda s, r: s.respond(r, answer), request)


@dataclass
class Result:
    rows: int
    errors: int
    duration_s: float
    levels: list[tuple[float, int]] = field(default_factory=list)
    final_level: int = 0
    settled: int | None = None

    @property
    def throughput(self) -> float:
        return self.rows / self.duration_s


class Simulation:
    """One run of `rows` rows through `server`, at a fixed level or adaptive."""

    def __init__(
        self,
        server: SlotServer | RateLimitedServer,
        rows: int,
        *,
        fixed: int | None = None,
        settings: AdaptiveSettings | None = None,
        seed: int = 0,
    ) -> None:
        self.server = server
        self.now = 0.0
        self.random = random.Random(seed)
        self._events: list[tuple[float, int, Callable[..., None], int]] = []
        self._seq = itertools.count()
        self.controller = (
            None if fixed is not None else AdaptiveController(settings or _default(), now=0.0)
        )
        self.fixed = fixed
        self.rows = rows
        self.next_row = 0
        self.ready: deque[int] = deque()
        """Rows whose retry wait is over."""
        self.attempts: dict[int, int] = {}
        self.sent: dict[int, tuple[float, int]] = {}
        self.in_flight = 0
        self.done = 0
        self.errors = 0
        self.levels: list[tuple[float, int]] = []
        self.limit = self.controller.level if self.controller else 0
        self._pacing = -1
        self._step = 1

    @property
    def level(self) -> int:
        if self.controller is None:
            assert self.fixed is not None
            return self.fixed
        return self.limit

    def _paced(self, _: int) -> None:
        """One step of a paced raise: the limit climbs to the controller's level."""
        assert self.controller is not None
        target = self.controller.level
        if self.limit >= target or self._pacing != self.controller.epoch:
            return
        self.limit += max(1, self._step)
        self.limit = min(self.limit, target)
        self._fill()
        if self.limit < target:
            self.at(self.now + PACE_TICK_S, lambda s, r: s._paced(r), -1)

    def _level_changed(self) -> None:
        assert self.controller is not None
        target = self.controller.level
        self.levels.append((self.now, target))
        over = self.controller.increase_over_s
        if target <= self.limit or over <= 0:
            self.limit = target
            self._fill()
            return
        self._pacing = self.controller.epoch
        self._step = math.ceil((target - self.limit) * PACE_TICK_S / over)
        self._paced(-1)

    def at(self, when: float, action: Callable[..., None], request: int) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action, request))

    def run(self) -> Result:
        self.at(TICK_S, lambda s, _: s._tick(), -1)
        self._fill()
        while self.done < self.rows and self._events:
            when, _, action, request = heapq.heappop(self._events)
            self.now = when
            action(self, request)
        controller = self.controller
        return Result(
            rows=self.done - self.errors,
            errors=self.errors,
            duration_s=self.now,
            levels=self.levels,
            final_level=controller.level if controller else self.level,
            settled=controller.settled if controller else self.fixed,
        )

    def _tick(self) -> None:
        if self.controller is not None and self.next_row >= self.rows and not self.ready:
            self.controller.freeze(self.now, "no rows left")
        self.at(self.now + TICK_S, lambda s, _: s._tick(), -1)

    def _fill(self) -> None:
        while self.in_flight < self.level:
            if self.ready:
                row = self.ready.popleft()
            elif self.next_row < self.rows:
                row = self.next_row
                self.next_row += 1
            else:
                return
            self._send(row)

    def _send(self, row: int) -> None:
        self.in_flight += 1
        self.attempts[row] = self.attempts.get(row, 0) + 1
        epoch = self.controller.epoch if self.controller else 0
        self.sent[row] = (self.now, epoch)
        self.at(self.now + RTT_S / 2, lambda s, r: s.server.arrive(s, r), row)

    def respond(self, row: int, answer: Answer) -> None:
        self.at(self.now + RTT_S / 2, lambda s, r: s._answered(r, answer), row)

    def _answered(self, row: int, answer: Answer) -> None:
        self.in_flight -= 1
        sent_at, epoch = self.sent.pop(row)
        controller = self.controller
        if answer.status == 200:
            self.done += 1
            if controller is not None and controller.answered(epoch, self.now - sent_at, self.now):
                self._level_changed()
        else:
            if controller is not None and controller.congested(epoch, self.now, "HTTP 429"):
                self._level_changed()
            if self.attempts[row] >= MAX_ATTEMPTS:
                self.done += 1
                self.errors += 1
            else:
                wait = answer.retry_after or 0.5
                self.at(self.now + wait, lambda s, r: s._retry(r), row)
        self._fill()

    def _retry(self, row: int) -> None:
        self.ready.append(row)
        self._fill()


def _default() -> AdaptiveSettings:
    return AdaptiveSettings(minimum=1, maximum=512, start=4)


def best_fixed(
    make_server: Callable[[], SlotServer | RateLimitedServer],
    rows: int,
    levels: list[int],
    *,
    max_errors: int = 0,
) -> tuple[int, float]:
    """The fixed level with the highest throughput (among those within the error budget)."""
    results = {}
    for level in levels:
        result = Simulation(make_server(), rows, fixed=level).run()
        if result.errors <= max_errors:
            results[level] = result.throughput
    level = max(results, key=lambda k: results[k])
    return level, results[level]
