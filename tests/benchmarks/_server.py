"""The benchmark server: an RSGI app for granian (one worker, uvloop) on 127.0.0.1.

Routes:
- `POST /v1/chat/completions`: an OpenAI-compatible chat completion with a small
  deterministic answer derived from the last message.
- `POST /predict`: a plain JSON model; an object gets `{"label", "score"}`, a list gets a
  list of those (batching).
- `GET /health`: readiness. `GET /stats`: `{"requests", "rows", "first", "last"}` where
  `first` is the monotonic time (seconds, CLOCK_MONOTONIC, comparable across processes on
  Linux) the first counted request arrived and `last` the time the last response was
  handed to granian. `POST /reset` clears the counters. Only the two model routes count.

`BENCH_DELAY_MS` (environment) makes each model route wait that long before answering,
like a model on a GPU would.

Run it as `granian --interface rsgi --loop uvloop --workers 1 --working-dir
tests/benchmarks _server:app`; `_common.BenchServer` does that, pinned to one core.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import orjson

DELAY_S = float(os.environ.get("BENCH_DELAY_MS", "0")) / 1000.0
JSON_HEADERS = [("content-type", "application/json")]


class _Stats:
    """Counters of the model routes; one worker process, one event loop, so no locks."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.rows = 0
        self.first = 0.0
        self.last = 0.0

    def arrived(self) -> None:
        if self.requests == 0:
            self.first = time.monotonic()
        self.requests += 1

    def answered(self, rows: int) -> None:
        self.rows += rows
        self.last = time.monotonic()


STATS = _Stats()


def _chat(body: dict[str, Any]) -> dict[str, Any]:
    content = body["messages"][-1]["content"]
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1764000000,
        "model": body.get("model", "bench"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"answer {len(content)}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": len(content) // 4, "completion_tokens": 2, "total_tokens": 0},
    }


def _predict(item: dict[str, Any]) -> dict[str, Any]:
    n = len(item["text"])
    return {"label": n % 2, "score": (n % 100) / 100.0}


async def _answer(proto: Any, status: int, payload: Any) -> None:
    proto.response_bytes(status, JSON_HEADERS, orjson.dumps(payload))


async def app(scope: Any, proto: Any) -> None:
    """The RSGI entry point."""
    if scope.proto != "http":
        return
    path = scope.path
    if path == "/v1/chat/completions" or path == "/predict":
        STATS.arrived()
        body = orjson.loads(await proto())
        if DELAY_S:
            await asyncio.sleep(DELAY_S)
        if path == "/predict":
            if isinstance(body, list):
                payload: Any = [_predict(item) for item in body]
                rows = len(body)
            else:
                payload, rows = _predict(body), 1
        else:
            payload, rows = _chat(body), 1
        await _answer(proto, 200, payload)
        STATS.answered(rows)
    elif path == "/health":
        await _answer(proto, 200, {"status": "ok"})
    elif path == "/stats":
        await _answer(
            proto,
            200,
            {
                "requests": STATS.requests,
                "rows": STATS.rows,
                "first": STATS.first,
                "last": STATS.last,
            },
        )
    elif path == "/reset":
        STATS.reset()
        await _answer(proto, 200, {"status": "reset"})
    else:
        await _answer(proto, 404, {"error": f"no route {path}"})
