"""Model servers for bench_adaptive.py: three kinds of server `concurrency: auto` must handle.

    python tests/benchmarks/_adaptive_server.py --port P slots --slots 32 --service-ms 50
    python tests/benchmarks/_adaptive_server.py --port P rate-limit --rate 200 --latency-ms 100
    python tests/benchmarks/_adaptive_server.py --port P cpu --service-ms 20

- `slots`: a GPU batch server. `--slots` requests are served at once, the rest wait in a
  FIFO queue; a step takes `service-ms` × (1 + 0.3 × busy slots / slots) × U(0.7, 1.3),
  so throughput rises until every slot is busy, then only latency grows.
- `rate-limit`: a hosted API. A token bucket of `--rate` requests/s (burst `--burst`);
  a request over it gets HTTP 429 with `Retry-After: 1` at once; the others are answered
  after `latency-ms` × U(0.5, 1.5), with no limit on how many at a time.
- `cpu`: a model on a CPU: one request at a time, `service-ms` × U(0.5, 1.5) each.

`POST /predict` answers `{"score": …}` (each row's answer depends on its text only);
`GET /health`; `GET /stats` gives `{"answered", "rejected", "first", "last", "peak"}`
(`first`/`last`: CLOCK_MONOTONIC of the first request and the last answer, comparable
across processes on Linux; `peak`: most requests inside the server at once);
`POST /reset` clears them. One process, one event loop (uvloop), 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import orjson
from aiohttp import web

JSON = "application/json"


class Model:
    """Counters shared by the three kinds."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        self.answered = 0
        self.rejected = 0
        self.first = 0.0
        self.last = 0.0
        self.inside = 0
        self.peak = 0

    def arrived(self) -> None:
        if not self.first:
            self.first = time.monotonic()
        self.inside += 1
        self.peak = max(self.peak, self.inside)

    def left(self, answered: bool) -> None:
        self.inside -= 1
        if answered:
            self.answered += 1
            self.last = time.monotonic()
        else:
            self.rejected += 1

    async def serve(self, body: dict[str, Any]) -> web.Response:
        raise NotImplementedError


def _answer(body: dict[str, Any]) -> web.Response:
    score = (len(body.get("text", "")) % 97) / 97
    return web.Response(body=orjson.dumps({"score": score}), content_type=JSON)


class SlotModel(Model):
    def __init__(self, slots: int, service_ms: float, seed: int) -> None:
        super().__init__(seed)
        self.slots = slots
        self.service_s = service_ms / 1000
        self.semaphore = asyncio.Semaphore(slots)
        self.busy = 0

    async def serve(self, body: dict[str, Any]) -> web.Response:
        async with self.semaphore:
            self.busy += 1
            try:
                slowdown = 1 + 0.3 * self.busy / self.slots
                await asyncio.sleep(self.service_s * slowdown * self.random.uniform(0.7, 1.3))
            finally:
                self.busy -= 1
        return _answer(body)


class RateLimitedModel(Model):
    def __init__(self, rate: float, burst: float, latency_ms: float, seed: int) -> None:
        super().__init__(seed)
        self.rate = rate
        self.burst = burst
        self.latency_s = latency_ms / 1000
        self.tokens = burst
        self.updated = time.monotonic()

    async def serve(self, body: dict[str, Any]) -> web.Response:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return web.Response(
                status=429,
                body=b'{"error": "rate limit exceeded"}',
                content_type=JSON,
                headers={"Retry-After": "1"},
            )
        self.tokens -= 1
        await asyncio.sleep(self.latency_s * self.random.uniform(0.5, 1.5))
        return _answer(body)


class CpuModel(Model):
    def __init__(self, service_ms: float, seed: int) -> None:
        super().__init__(seed)
        self.service_s = service_ms / 1000
        self.lock = asyncio.Lock()

    async def serve(self, body: dict[str, Any]) -> web.Response:
        async with self.lock:
            await asyncio.sleep(self.service_s * self.random.uniform(0.5, 1.5))
        return _answer(body)


def make_app(model: Model) -> web.Application:
    """The routes over one model."""

    async def predict(request: web.Request) -> web.Response:
        model.arrived()
        answered = False
        try:
            response = await model.serve(orjson.loads(await request.read()))
            answered = response.status == 200
            return response
        finally:
            model.left(answered)

    async def stats(request: web.Request) -> web.Response:
        keys = ("answered", "rejected", "first", "last", "peak")
        return web.Response(
            body=orjson.dumps({k: getattr(model, k) for k in keys}), content_type=JSON
        )

    async def reset(request: web.Request) -> web.Response:
        model.reset()
        return web.Response(body=b"{}", content_type=JSON)

    async def health(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status": "ok"}', content_type=JSON)

    app = web.Application()
    app.router.add_post("/predict", predict)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_get("/health", health)
    return app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    kinds = parser.add_subparsers(dest="kind", required=True)
    slots = kinds.add_parser("slots")
    slots.add_argument("--slots", type=int, default=32)
    slots.add_argument("--service-ms", type=float, default=50.0)
    limited = kinds.add_parser("rate-limit")
    limited.add_argument("--rate", type=float, default=200.0)
    limited.add_argument("--burst", type=float, default=20.0)
    limited.add_argument("--latency-ms", type=float, default=100.0)
    cpu = kinds.add_parser("cpu")
    cpu.add_argument("--service-ms", type=float, default=20.0)
    return parser


def main() -> None:
    """Serve one model until killed."""
    import uvloop

    args = _parser().parse_args()

    async def serve() -> None:
        model: Model
        if args.kind == "slots":
            model = SlotModel(args.slots, args.service_ms, args.seed)
        elif args.kind == "rate-limit":
            model = RateLimitedModel(args.rate, args.burst, args.latency_ms, args.seed)
        else:
            model = CpuModel(args.service_ms, args.seed)
        runner = web.AppRunner(make_app(model), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096).start()
        await asyncio.Event().wait()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
