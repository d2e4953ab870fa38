"""`auditc serve` and `auditc infer` on the local-basic test audit's python service."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from e2e_helpers import AUDITC, auditc

ROW = '{"text": "twenty characters ok", "label": 1}'


def test_serve_prints_urls_answers_infer_and_stops_on_ctrl_c(project: Path) -> None:
    serve = subprocess.Popen(
        [*AUDITC, "-C", str(project), "serve", "length-service", "audit.yaml", "--replicas", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        urls = [serve.stdout.readline().strip() for _ in range(2)]
        assert all(u.startswith("http://127.0.0.1:") for u in urls) and urls[0] != urls[1]
        for url in urls:
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        done = auditc(
            "-C", str(project), "infer", "length-service", ROW, "audit.yaml", "--url", urls[1]
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"score": pytest.approx(20 / 40)}
        serve.send_signal(signal.SIGINT)
        _, stderr = serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0
    assert "InferenceService/length-service stopped." in stderr
    for url in urls:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health", timeout=2)


def test_infer_starts_the_service_for_one_row(project: Path) -> None:
    done = auditc("-C", str(project), "infer", "length-service", "-", "audit.yaml", stdin=ROW)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"score": pytest.approx(0.5)}


def test_serve_on_a_port_in_use_is_a_clear_error(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = auditc(
            "-C", str(project), "serve", "length-service", "audit.yaml", "--port", str(port)
        )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use; choose another port "
        "(or leave the port out to pick a free one)"
    )


def test_serve_and_infer_reject_what_is_not_a_service(project: Path) -> None:
    done = auditc("-C", str(project), "serve", "length-servic", "audit.yaml")
    assert done.returncode == 2
    assert "no InferenceService or InferenceSession named 'length-servic'" in done.stderr
    assert "(did you mean 'length-service'?)" in done.stderr
    done = auditc("-C", str(project), "infer", "phrases", ROW, "audit.yaml")
    assert done.returncode == 2
    assert "Dataset/phrases is not an InferenceService" in done.stderr


@pytest.mark.parametrize(
    ("row", "message"),
    [("{not json", "ROW is not valid JSON"), ('["a list"]', "ROW must be a JSON object")],
)
def test_infer_rejects_a_row_that_is_not_a_json_object(
    project: Path, row: str, message: str
) -> None:
    done = auditc("-C", str(project), "infer", "length-service", row, "audit.yaml")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
