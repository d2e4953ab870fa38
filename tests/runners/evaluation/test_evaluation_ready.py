"""The client's own readiness wait (`ready_url`): a server that never gets ready fails the shard.

Real servers on 127.0.0.1: one that answers 503 while "loading" and then 200, a port
nobody listens on, and the entry point as a pod runs it, which must exit with code 4.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from evaluation_support import ThreadServer, config, echo, json_response, write_dataset

from runners.evaluation import (
    EXIT_NOT_READY,
    ServiceNotReadyError,
    run_evaluation,
    wait_for_service,
)
from runners.inference import free_port


class LoadingServer(ThreadServer):
    """/health answers 503 for the first `loading` polls, then 200; /predict echoes."""

    def __init__(self, loading: int) -> None:
        super().__init__(echo, get={"/health": self.health})
        self.loading = loading
        self.polls = 0

    async def health(self, request: web.Request) -> web.Response:
        self.polls += 1
        if self.polls <= self.loading:
            return json_response({"status": "loading"}, status=503)
        return json_response({"status": "ok"})


def test_waits_while_the_server_loads_then_evaluates(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", 5)
    with LoadingServer(loading=3) as server:
        result = run_evaluation(
            config(
                server.url,
                dataset,
                tmp_path / "out",
                ready_url=f"{server.url}/health",
                timeouts={"ready": 30},
            )
        )
        assert server.polls == 4, "polled through the 503s until the first 200"
    assert (result.status, result.rows, result.errors) == ("complete", 5, 0)


def test_a_server_that_never_answers_fails_in_time_naming_url_and_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    start = time.monotonic()
    with pytest.raises(ServiceNotReadyError) as caught:
        wait_for_service(url, timeout_s=1.0)
    elapsed = time.monotonic() - start
    assert 1.0 <= elapsed < 5.0
    message = str(caught.value)
    assert url in message and "after 1 s" in message and "timeouts.ready" in message
    assert "ConnectionRefusedError" in message, message
    assert caught.value.exit_code == EXIT_NOT_READY == 4


def test_a_503_is_the_last_error_named() -> None:
    with (
        LoadingServer(loading=10**6) as server,
        pytest.raises(ServiceNotReadyError, match="last error: HTTP 503"),
    ):
        wait_for_service(f"{server.url}/health", timeout_s=0.5)


def test_a_long_wait_logs_progress(caplog: pytest.LogCaptureFixture) -> None:
    """Every LOG_EVERY_S the wait says how long it has waited and why (fake clock)."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += max(seconds, 1.0)

    url = f"http://127.0.0.1:{free_port()}/health"
    with caplog.at_level(logging.INFO, "runners.evaluation"), pytest.raises(ServiceNotReadyError):
        wait_for_service(url, timeout_s=40, clock=lambda: now[0], sleep=sleep)
    waiting = [
        r.getMessage() for r in caplog.records if "waiting for the service" in r.getMessage()
    ]
    assert len(waiting) == 2, waiting
    assert waiting[0].startswith(f"waiting for the service at {url}: 15 of 40 s")


def test_the_entry_point_exits_4_when_the_service_is_not_ready(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", 3)
    port = free_port()
    cfg = config(
        f"http://127.0.0.1:{port}",
        dataset,
        tmp_path / "out",
        ready_url=f"http://127.0.0.1:{port}/health",
        timeouts={"ready": 1},
    )
    path = tmp_path / "step.json"
    path.write_text(cfg.model_dump_json())
    done = subprocess.run(
        [sys.executable, "-m", "runners.evaluation", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_NOT_READY, done.stderr
    assert f"http://127.0.0.1:{port}/health was not ready after 1 s" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "out").glob("part-*.parquet")), "nothing was sent or written"
