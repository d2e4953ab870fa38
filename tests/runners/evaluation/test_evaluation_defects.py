"""Regressions of the evaluation client's defects found by attacking it (issue 10).

Each test failed on the client before its fix: a huge response crashed it, an echoed API
key was written into rows and logs, one bad row failed a whole batch, and a SIGKILL lost
up to a minute of answered rows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq
from aiohttp import web
from evaluation_support import (
    ThreadServer,
    assert_exactly_once,
    config,
    echo,
    json_response,
    read_output,
    service,
    write_dataset,
)

from runners.evaluation import DEFAULT_FLUSH_INTERVAL_S, run_evaluation

REPO = Path(__file__).resolve().parents[3]
SECRET = "sk-test-0123456789abcdef"
MiB = 2**20


# ------------------------------------------------------------ response size


class Streamer:
    """Streams `total` bytes in 64 KiB chunks (no Content-Length) for rows with i % 4 == 0."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent: list[int] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        i = orjson.loads(await request.read())["i"]
        if i % 4:
            return json_response({"score": i / 2, "label": "ok"})
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        sent = 0
        chunk = b"x" * 65536
        try:
            while sent < self.total:
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: what it had to
        self.sent.append(sent)
        return response


def test_a_huge_streamed_response_is_a_row_error_not_a_crash(tmp_path: Path) -> None:
    server = Streamer(total=256 * MiB)
    dataset = write_dataset(tmp_path / "d", 8)
    with ThreadServer(server.handle) as http:
        result = run_evaluation(
            config(
                http.url,
                dataset,
                tmp_path / "out",
                concurrency=2,
                max_response_bytes=MiB,
                errors={"max_error_fraction": 1.0},
            )
        )
    assert (result.status, result.rows, result.errors) == ("complete", 8, 2)
    rows = read_output(tmp_path / "out")
    assert_exactly_once(rows, range(8))
    big = [r for r in rows if r["_index_"] % 4 == 0]
    assert {r["_error_type_"] for r in big} == {"too-large"}
    assert "larger than max_response_bytes allows (1,048,576 bytes" in big[0]["_error_"]
    # The client stopped reading long before the server had sent it all.
    assert len(server.sent) == 2 and max(server.sent) < 64 * MiB


def test_a_declared_content_length_over_the_limit_is_not_read(tmp_path: Path) -> None:
    async def announce(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": str(8 * 2**30)}
        )
        await response.prepare(request)
        await response.write(b'{"score": ')
        await asyncio.sleep(5)  # never sends the 8 GiB it announced
        return response

    dataset = write_dataset(tmp_path / "d", 2)
    with ThreadServer(announce) as http:
        started = time.monotonic()
        result = run_evaluation(
            config(http.url, dataset, tmp_path / "out", errors={"max_error_fraction": 1.0})
        )
        took = time.monotonic() - started
    assert took < 5, "the client waited for the body it refused"
    assert result.errors == 2
    assert {r["_error_type_"] for r in read_output(tmp_path / "out")} == {"too-large"}


# ------------------------------------------------------------ API key redaction


async def echo_authorization(request: web.Request) -> web.Response:
    """Echoes the Authorization header back: in an error for odd rows, in the answer else."""
    i = orjson.loads(await request.read())["i"]
    seen = request.headers.get("Authorization", "")
    if i % 2:
        return json_response({"error": f"invalid request with {seen}"}, 400)
    return json_response({"score": 0.5, "label": f"caller {seen}"})


def test_the_api_key_never_reaches_rows_logs_or_messages(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", 20)
    out = tmp_path / "out"
    with ThreadServer(echo_authorization) as http:
        cfg = config(
            http.url,
            dataset,
            out,
            api_key_env="AUDITC_TEST_KEY",
            errors={"on_error": "record", "max_error_fraction": 0.1},
        )
        path = tmp_path / "cfg.json"
        path.write_text(cfg.model_dump_json())
        done = subprocess.run(
            [sys.executable, "-m", "runners.evaluation", str(path), "--log-level", "DEBUG"],
            cwd=REPO,
            env={**os.environ, "AUDITC_TEST_KEY": SECRET},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1, done.stderr  # half the rows failed: over the fraction
    assert "Bearer [REDACTED]" in done.stderr  # the echoed header was logged, redacted
    assert SECRET not in done.stderr + done.stdout
    rows = read_output(out)
    assert_exactly_once(rows, range(20))
    texts = [str(value) for row in rows for value in row.values()]
    assert not [t for t in texts if SECRET in t]
    assert "invalid request with Bearer [REDACTED]" in rows[1]["_error_"]
    assert rows[0]["label"] == "caller Bearer [REDACTED]"


# ------------------------------------------------------------ batches with a bad row


class PoisonServer:
    """A batch model that raises (HTTP 500) on any batch holding a row with i % 15 == 3."""

    def __init__(self) -> None:
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        items = orjson.loads(await request.read())
        if any(item["i"] % 15 == 3 for item in items):
            return json_response({"error": "the model raised ValueError"}, 500)
        return json_response([{"score": item["i"] / 2, "label": "ok"} for item in items])


def test_one_bad_row_in_a_batch_fails_only_itself(tmp_path: Path) -> None:
    server = PoisonServer()
    dataset = write_dataset(tmp_path / "d", 304)
    with ThreadServer(server.handle) as http:
        result = run_evaluation(
            config(
                http.url,
                dataset,
                tmp_path / "out",
                service_spec=service(batching=True),
                batch_size=16,
                concurrency=4,
                retries={"backoff_initial": 0.01, "backoff_max": 0.02},
                errors={"max_error_fraction": 1.0},
            )
        )
    rows = read_output(tmp_path / "out")
    assert_exactly_once(rows, range(304))
    failed = sorted(r["_index_"] for r in rows if r["_error_"] is not None)
    assert failed == [i for i in range(304) if i % 15 == 3]  # 21 rows, not 21 batches
    assert result.errors == 21
    assert all(r["score"] == r["_index_"] / 2 for r in rows if r["_error_"] is None)
    assert {r["_error_type_"] for r in rows if r["_error_"]} == {"http-500"}
    # A 500 of a batch is not retried as is: only a bad row alone uses its attempts, and
    # halving finds the bad rows in fewer requests than sending every row alone.
    assert result.retries == 21 * 4
    assert server.requests < 304


# ------------------------------------------------------------ SIGKILL loses seconds, not a minute


async def steady(request: web.Request) -> web.Response:
    await asyncio.sleep(0.02)
    return await echo(request)


def test_sigkill_loses_only_the_last_seconds_of_answers(tmp_path: Path) -> None:
    answered: list[float] = []

    async def timed(request: web.Request) -> web.Response:
        response = await steady(request)
        answered.append(time.monotonic())
        return response

    rows = 20_000
    dataset = write_dataset(tmp_path / "d", rows)
    out = tmp_path / "out"
    with ThreadServer(timed) as http:
        path = tmp_path / "cfg.json"
        # Defaults for parts and flushes: what a user's run does.
        path.write_text(config(http.url, dataset, out, concurrency=4).model_dump_json())
        client = subprocess.Popen(
            [sys.executable, "-m", "runners.evaluation", str(path)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not answered or time.monotonic() - answered[0] < DEFAULT_FLUSH_INTERVAL_S + 4:
            assert client.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        killed_at = time.monotonic()
        client.send_signal(signal.SIGKILL)
        client.wait(10)
    committed = sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("part-*.parquet"))
    # Everything answered more than a flush interval (and a margin for the write) before
    # the kill is in a committed part.
    old = sum(t < killed_at - DEFAULT_FLUSH_INTERVAL_S - 2.0 for t in answered)
    assert 0 < old <= committed < rows
    assert DEFAULT_FLUSH_INTERVAL_S <= 5.0, "a kill may lose only a few seconds of answers"
