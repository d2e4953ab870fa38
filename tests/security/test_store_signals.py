"""A store that never answers: bounded waits, and Ctrl-C always works (issue 10, defect 12).

The attack: `--store gs://…` on a machine without a network hung for 1,008 s and
ignored SIGTERM and SIGINT (pyarrow's clients retry for up to 15 minutes inside C++
code, where Python cannot run a signal handler).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from security_helpers import AUDITC, DATASET, REPO, auditc, write_project


class SilentServer:
    """Accepts TCP connections and never answers: a black hole on 127.0.0.1."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = int(self.socket.getsockname()[1])
        self.connected = threading.Event()
        self._held: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self._held.append(connection)
            self.connected.set()

    def close(self) -> None:
        for connection in self._held:
            connection.close()
        # shutdown wakes the blocked accept (close alone does not): a thread left behind
        # would keep later tests' local runs from forking their launcher.
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()
        self._acceptor.join(10)


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p", DATASET)


def _start(project: Path, *args: str, timeout_s: str = "600") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*AUDITC, "-C", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AUDITC_STORE_TIMEOUT": timeout_s},
    )


@pytest.mark.parametrize(
    ("command", "signum"),
    [
        ("plan", signal.SIGINT),
        ("check", signal.SIGINT),
        ("run", signal.SIGINT),
        ("run", signal.SIGTERM),
    ],
)
def test_a_signal_stops_a_command_waiting_for_a_store(
    project: Path, silent: SilentServer, command: str, signum: int
) -> None:
    uri = f"s3://audits/main?endpoint_override=127.0.0.1:{silent.port}&scheme=http"
    process = _start(project, command, "--store", uri)
    try:
        assert silent.connected.wait(60), "auditc never reached the store"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    if signum == signal.SIGTERM and process.returncode == -signum:
        return  # SIGTERM before `run` takes it over: the default, ending the process, applies
    assert process.returncode == 130, stderr
    assert ("Interrupted." in stderr or "Aborted." in stderr) and "Traceback" not in stderr


def test_a_store_that_never_answers_is_an_error_in_bounded_time(
    project: Path, silent: SilentServer
) -> None:
    uri = f"s3://audits/main?endpoint_override=127.0.0.1:{silent.port}&scheme=http"
    result = auditc(
        "-C", str(project), "check", "--store", uri, env={"AUDITC_STORE_TIMEOUT": "2"}, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"error: cannot reach store {uri}: no answer within 2 s (is there a network, and is "
        "the endpoint right? AUDITC_STORE_TIMEOUT sets the limit)\n"
    )


def test_gcs_without_a_network_is_an_error_in_bounded_time(project: Path) -> None:
    # No endpoint, no credentials, no network: the GCS client's own retries are bounded too.
    result = auditc(
        "-C", str(project), "plan", "--store", "gs://audits/main",
        env={"AUDITC_STORE_TIMEOUT": "3"}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: cannot ") and "gs://audits/main" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_store_timeout_is_an_error(project: Path) -> None:
    result = auditc(
        "-C", str(project), "check", "--store", "s3://audits/main?endpoint_override=127.0.0.1:9",
        env={"AUDITC_STORE_TIMEOUT": "forever"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "AUDITC_STORE_TIMEOUT='forever'; expected seconds" in result.stderr


def test_the_watchdog_ends_a_main_thread_blocked_in_c_code(
    tmp_path: Path, silent: SilentServer
) -> None:
    # A call that never returns to Python (a pyarrow request without timeouts): Python
    # cannot run the SIGINT handler, so only the watchdog can end the process.
    script = tmp_path / "blocked.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pyarrow.fs as fs
            from compiler.cli._interrupts import install_watchdog

            install_watchdog(1.0)
            s3 = fs.S3FileSystem(
                endpoint_override="127.0.0.1:{silent.port}", scheme="http", anonymous=True,
                connect_timeout=600, request_timeout=600,
            )
            print("blocking", flush=True)
            s3.get_file_info(fs.FileSelector("bucket/x", recursive=True))
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "blocking\n"
        assert silent.connected.wait(60)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "SIGINT: auditc is blocked in a call that cannot be interrupted" in stderr


WATCHDOG_PROBE = """
import sys, threading
from compiler.cli.main import main

sys.argv = ["probe", *sys.argv[1:]]  # not "auditc": the exit must not skip this script's end
try:
    main()
except SystemExit:
    pass
print(sorted(t.name for t in threading.enumerate()))
"""


def test_only_an_object_store_starts_the_watchdog(project: Path, silent: SilentServer) -> None:
    # The local backend forks its launcher only from a single-threaded process: a
    # watchdog started by every command made every local run execute a new interpreter.
    def threads(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", WATCHDOG_PROBE, "-C", str(project), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "AUDITC_STORE_TIMEOUT": "1"},
            check=False,
        )
        return result.stdout.splitlines()[-1]

    assert threads("plan") == "['MainThread']"
    uri = f"s3://audits/main?endpoint_override=127.0.0.1:{silent.port}&scheme=http"
    assert "auditc-signal-watchdog" in threads("plan", "--store", uri)
