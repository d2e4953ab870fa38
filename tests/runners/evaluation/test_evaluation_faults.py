"""A fault-injecting server: every row still ends up in the output exactly once, with
errors recorded only where the retries ran out."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from pathlib import Path

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

ROWS = 80
MAX_ATTEMPTS = 5


class FaultServer:
    """Faults chosen by `_index_ % 8` and the attempt number; every answer is logged."""

    def __init__(self) -> None:
        self.log: dict[int, list[tuple[float, str]]] = defaultdict(list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        i = orjson.loads(await request.read())["i"]
        attempt = len(self.log[i]) + 1
        kind = i % 8
        outcome = self._outcome(i, kind, attempt)
        self.log[i].append((time.monotonic(), outcome))
        if outcome == "500":
            return json_response({"error": "injected failure"}, status=500)
        if outcome == "503":
            return json_response({"error": "overloaded"}, status=503)
        if outcome == "429":
            return json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": "1" if i == 9 else "0"}
            )
        if outcome == "slow":
            await asyncio.sleep(1.0)  # past the client's 0.3 s request timeout
        if outcome == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if outcome == "truncated":
            response = web.StreamResponse(
                headers={"Content-Length": "100", "Content-Type": "application/json"}
            )
            await response.prepare(request)
            await response.write(b'{"sco')
            assert request.transport is not None
            request.transport.close()
            return response
        if outcome == "bad-json":
            return web.Response(body=b'{"score": 1.0', content_type="application/json")
        return json_response({"score": i / 2, "label": f"row-{i}"})

    @staticmethod
    def _outcome(i: int, kind: int, attempt: int) -> str:
        if kind == 0:  # random 500s, reproducible per (row, attempt)
            return "500" if random.Random(i * 1000 + attempt).random() < 0.5 else "ok"
        first_only = {1: "429", 2: "slow", 3: "drop", 7: "truncated"}
        if kind in first_only:
            return first_only[kind] if attempt == 1 else "ok"
        if kind == 4:
            return "bad-json"
        if kind == 5:
            return "503"
        if kind == 6:
            return "500" if attempt <= 2 else "ok"
        raise AssertionError(kind)


def test_faults_yield_every_row_exactly_once(tmp_path: Path) -> None:
    faults = FaultServer()
    dataset = write_dataset(tmp_path / "d", ROWS, parts=2)
    with ThreadServer(faults.handle) as server:
        result = run_evaluation(
            config(
                server.url,
                dataset,
                tmp_path / "out",
                concurrency=16,
                timeouts={"request": 0.3},
                retries={
                    "max_attempts": MAX_ATTEMPTS,
                    "backoff_initial": 0.01,
                    "backoff_max": 0.05,
                },
                part_rows=30,
                errors={"max_error_fraction": 1.0},
            )
        )
        requests_seen = server.requests
    rows = read_output(tmp_path / "out")
    assert_exactly_once(rows, range(ROWS))
    attempts = {i: [outcome for _, outcome in faults.log[i]] for i in range(ROWS)}
    assert result.requests == requests_seen == sum(len(a) for a in attempts.values())
    assert result.retries == result.requests - ROWS  # every attempt after a row's first

    for row in rows:
        i, seen = row["_index_"], attempts[row["_index_"]]
        if seen[-1] == "ok":
            assert (row["score"], row["label"], row["_error_"]) == (i / 2, f"row-{i}", None), row
        kind = i % 8
        if kind == 0:
            exhausted = seen == ["500"] * MAX_ATTEMPTS
            assert row["_error_type_"] == ("http-500" if exhausted else None), (row, seen)
            if exhausted:
                assert row["_error_"] == "HTTP 500: injected failure (after 5 attempts)"
        elif kind in (1, 2, 3, 7):
            assert len(seen) == 2 and row["_error_type_"] is None, (row, seen)
        elif kind == 4:
            assert seen == ["bad-json"] and row["_error_type_"] == "bad-json"  # not retried
            assert row["_error_"].startswith("the response is not JSON")
        elif kind == 5:
            assert seen == ["503"] * MAX_ATTEMPTS
            assert (row["_error_type_"], row["_error_"]) == (
                "http-503",
                "HTTP 503: overloaded (after 5 attempts)",
            )
        elif kind == 6:
            assert seen == ["500", "500", "ok"] and row["_error_type_"] is None

    # Retry-After: 1 is honoured (the jittered backoff alone is at most 0.05 s).
    (first, _), (second, _) = faults.log[9]
    assert second - first >= 0.95
    expected_errors = sum(1 for r in rows if r["_error_type_"] is not None)
    assert result.errors == expected_errors >= 20  # kinds 4 and 5 always fail
    assert result.status == "complete"
