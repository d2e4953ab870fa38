"""`concurrency: auto` in the real client, against small model servers on 127.0.0.1.

One test per server kind of issue 15 (k slots and a queue, a rate-limited API, a one-slot
CPU model). They check what must hold whatever the machine's speed — every row exactly
once, no row lost to 429s, Retry-After honoured, the level moved and stayed in bounds —
and leave throughput to tests/benchmarks/bench_adaptive.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from evaluation_support import (
    ThreadServer,
    assert_exactly_once,
    config,
    json_response,
    read_output,
    write_dataset,
)

from runners.evaluation import run_evaluation


class SlotServer:
    """`slots` requests served at once, `service_s` each; the rest wait in a queue."""

    def __init__(self, slots: int, service_s: float) -> None:
        self.slots = slots
        self.service_s = service_s
        self.active = 0
        self.peak = 0
        self._semaphore: asyncio.Semaphore | None = None

    async def handle(self, request: web.Request) -> web.Response:
        i = orjson.loads(await request.read())["i"]
        if self._semaphore is None:  # made in the server's own event loop
            self._semaphore = asyncio.Semaphore(self.slots)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            async with self._semaphore:
                await asyncio.sleep(self.service_s)
        finally:
            self.active -= 1
        return json_response({"score": i / 2, "label": f"row-{i}"})


class RateLimitedServer:
    """A token bucket of `rate` requests/s; over it, 429 with `Retry-After: 1`."""

    def __init__(self, rate: float, burst: float, latency_s: float) -> None:
        self.rate = rate
        self.burst = burst
        self.latency_s = latency_s
        self.tokens = burst
        self.updated = time.monotonic()
        self.rejected = 0
        self.log: dict[int, list[tuple[float, int]]] = defaultdict(list)
        """`_index_` -> (arrival time, status) of each attempt."""

    async def handle(self, request: web.Request) -> web.Response:
        i = orjson.loads(await request.read())["i"]
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            self.rejected += 1
            self.log[i].append((now, 429))
            return json_response({"error": "rate limited"}, 429, headers={"Retry-After": "1"})
        self.tokens -= 1
        self.log[i].append((now, 200))
        await asyncio.sleep(self.latency_s)
        return json_response({"score": i / 2, "label": f"row-{i}"})


def _run(tmp_path: Path, server: Any, rows: int, **spec: Any) -> Any:
    dataset = write_dataset(tmp_path / "d", rows)
    with ThreadServer(server.handle) as http:
        # The test service is `external`: `concurrency: auto` is its default.
        result = run_evaluation(config(http.url, dataset, tmp_path / "out", **spec))
    assert_exactly_once(read_output(tmp_path / "out"), range(rows))
    return result


def test_auto_raises_the_level_for_a_server_with_free_slots(tmp_path: Path) -> None:
    server = SlotServer(slots=8, service_s=0.005)
    result = _run(tmp_path, server, 1500)
    assert (result.status, result.errors) == ("complete", 0)
    assert server.peak > 4, "it never went above its start of 4"
    assert 1 <= result.concurrency <= 512 and server.peak <= 512


def test_auto_cuts_on_429_honours_retry_after_and_loses_no_row(tmp_path: Path) -> None:
    # 100 requests/s at 40 ms each: more than 4 in flight is over the limit.
    server = RateLimitedServer(rate=100, burst=4, latency_s=0.04)
    result = _run(tmp_path, server, 400, retries={"backoff_initial": 0.05})
    assert server.rejected > 0, "the test server never limited the client"
    assert (result.status, result.errors) == ("complete", 0)
    assert result.concurrency <= 8
    for attempts in server.log.values():
        for (refused, status), (again, _) in zip(attempts, attempts[1:], strict=False):
            assert status == 429 and again - refused >= 0.95, "Retry-After: 1 was not honoured"


def test_auto_does_not_flood_a_one_slot_model(tmp_path: Path) -> None:
    server = SlotServer(slots=1, service_s=0.01)
    result = _run(tmp_path, server, 300)
    assert (result.status, result.errors) == ("complete", 0)
    # The start (4) and a doubling or two to see that it does not pay (a busy machine makes
    # the measurements noisy); never anywhere near the maximum of 512.
    assert server.peak <= 32 and result.concurrency <= 16


def test_a_pinned_level_is_kept(tmp_path: Path) -> None:
    server = SlotServer(slots=64, service_s=0.002)
    result = _run(tmp_path, server, 400, concurrency=3)
    assert result.concurrency == 3 and server.peak <= 3
