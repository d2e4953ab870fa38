"""Servers that cannot start or never become ready fail with clear InferenceErrors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from inference_support import REPO, Running, model, service

from runners.inference import free_port, wait_ready
from schemas import InferenceError

PROFANITY = model({"python": {"callable": "profanity_check:predict_prob", "argument": "text"}})


def run_server(tmp_path: Path, config: dict[str, object]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "server.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, "-m", "runners.inference", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_server(
            tmp_path,
            {
                "service": service("s", {"kind": "python"}, {"score": "float64"}),
                "model": PROFANITY,
                "port": port,
            },
        )
    assert done.returncode == 1
    assert f"error: port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_config_exits_2(tmp_path: Path) -> None:
    done = run_server(tmp_path, {"service": {"kind": "InferenceService"}, "port": 80})
    assert done.returncode == 2
    assert (
        "not a valid ServerConfig (" in done.stderr
        and "  service.name: Field required" in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_runner_kinds_not_served_here(tmp_path: Path) -> None:
    external = service(
        "ext", {"kind": "external", "url": "https://api.example.com"}, {"x": "string"}
    )
    external["spec"].pop("model")  # type: ignore[attr-defined]
    done = run_server(tmp_path, {"service": external, "port": free_port()})
    assert done.returncode == 1
    assert (
        "InferenceService/ext: runner 'external' is not served by auditc's inference server"
        in done.stderr
    )


def test_server_that_never_becomes_ready(
    start_server: Callable[..., Running], tmp_path: Path
) -> None:
    slow = tmp_path / "slowmod"
    slow.mkdir()
    (slow / "slow.py").write_text(
        textwrap.dedent(
            """
            import time
            time.sleep(600)  # an import that never finishes

            def predict(xs):
                return xs
            """
        )
    )
    server = start_server(
        {
            "service": service("s", {"kind": "python"}, {"x": "string"}),
            "model": model({"python": {"callable": "slow:predict"}}),
            "python_paths": [str(slow)],
        },
        ready_timeout=None,
    )
    started = time.monotonic()
    with pytest.raises(InferenceError) as info:
        wait_ready(server.base_url, 2.0, server.process, log=server.log)
    assert 2.0 <= time.monotonic() - started < 10
    message = str(info.value)
    assert message.startswith(
        f"the inference server at {server.base_url}/health was not ready after 2 s"
    )
    assert f"see its log {server.log}" in message
    # It answers, but says it is loading.
    assert "HTTP 503" in message
    assert httpx.post(f"{server.base_url}/predict", json={}).status_code == 503


def test_wait_ready_reports_a_server_that_exits(start_server: Callable[..., Running]) -> None:
    server = start_server(
        {
            "service": service("s", {"kind": "python"}, {"x": "string"}),
            "model": model(
                {"python": {"callable": "no_such_module_xyz:predict", "package": "nosuch==1"}}
            ),
        },
        ready_timeout=None,
    )
    with pytest.raises(InferenceError) as info:
        wait_ready(server.base_url, 60, server.process, log=server.log)
    message = str(info.value)
    assert "the inference server exited with code 1 before it was ready" in message
    assert (
        "cannot import 'no_such_module_xyz:predict': No module named 'no_such_module_xyz'"
        in message
    )
    assert "(install 'nosuch==1')" in message


def test_wait_ready_without_a_process_times_out_on_a_closed_port() -> None:
    port = free_port()
    with pytest.raises(
        InferenceError,
        match=rf"127.0.0.1:{port}/health was not ready after 0.3 s "
        r"\(last answer: ConnectionRefusedError: ",
    ):
        wait_ready(f"http://127.0.0.1:{port}", 0.3)
