"""An evaluation killed with SIGKILL and restarted sends only the unfinished rows."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from aiohttp import web
from evaluation_support import (
    ThreadServer,
    assert_exactly_once,
    config,
    echo,
    read_output,
    write_dataset,
)

ROWS = 600
REPO = Path(__file__).resolve().parents[3]


async def slow_echo(request: web.Request) -> web.Response:
    await asyncio.sleep(0.01)
    return await echo(request)


def start(cfg: Path, result: Path | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "runners.evaluation", str(cfg)]
    if result is not None:
        args += ["--result", str(result)]
    return subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def committed_rows(out: Path) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("part-*.parquet"))


def test_killed_evaluation_resumes_with_only_the_unfinished_rows(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d", ROWS, parts=3)
    out = tmp_path / "out"
    with ThreadServer(slow_echo) as server:
        cfg = tmp_path / "cfg.json"
        cfg.write_text(
            config(server.url, dataset, out, concurrency=2, part_rows=20).model_dump_json()
        )
        first = start(cfg)
        deadline = time.monotonic() + 60
        while len(list(out.glob("part-*.parquet"))) < 3:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "no parts were written"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL
        done_before = committed_rows(out)
        sent_before = server.requests
        assert 0 < done_before < ROWS
        parts_before = {p.name: p.read_bytes() for p in out.glob("part-*.parquet")}
        # A write the kill interrupted leaves a temporary file; it must never count.
        (out / "part-0-000099.parquet.tmp-deadbeef").write_bytes(b"PAR1 half a part")

        second = start(cfg, tmp_path / "result.json")
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 0, stderr
        sent_after = server.requests - sent_before

    result = json.loads((tmp_path / "result.json").read_text())
    assert sent_after == ROWS - done_before  # only the rows no committed part holds
    assert (result["resumed_rows"], result["rows"], result["requests"]) == (
        done_before,
        ROWS,
        sent_after,
    )
    assert f"{ROWS} rows ({done_before} resumed)" in stderr
    assert not list(out.glob("*.tmp-*"))
    for name, content in parts_before.items():  # committed parts are never rewritten
        assert (out / name).read_bytes() == content
    assert_exactly_once(read_output(out), range(ROWS))


def test_sigterm_commits_the_answered_rows_before_exiting(tmp_path: Path) -> None:
    """A stopped run (SIGTERM from the backend, Ctrl-C) keeps every answered row."""
    dataset = write_dataset(tmp_path / "d", ROWS, parts=3)
    out = tmp_path / "out"
    with ThreadServer(slow_echo) as server:
        cfg = tmp_path / "cfg.json"
        # Parts are large: without the signal handler nothing would be committed yet.
        cfg.write_text(
            config(server.url, dataset, out, concurrency=2, part_rows=100_000).model_dump_json()
        )
        first = start(cfg)
        deadline = time.monotonic() + 60
        while server.requests < 100:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the client sent too few requests"
            time.sleep(0.02)
        received_at_signal = server.requests
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=30)
        assert first.returncode == 1, stderr
        assert "interrupted by SIGTERM" in stderr
        done_before = committed_rows(out)
        sent_before = server.requests
        # Every answered row is kept: only the (at most `concurrency`) requests still in
        # flight when the signal came are dropped, to be sent again by the next run.
        assert received_at_signal - 2 <= done_before < ROWS
        assert sent_before - done_before <= 2

        second = start(cfg)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 0, stderr
        assert server.requests - sent_before == ROWS - done_before
    assert_exactly_once(read_output(out), range(ROWS))
