"""An `external` service through `auditc run` and `auditc plan`, as users run them.

The service is a small OpenAI-style server on 127.0.0.1 whose model can be swapped behind
its URL. Checks: the manifest records the service's declared version, its fingerprint and
the concurrency `auto` ended at; `plan` and `run` warn when the live fingerprint no
longer matches, and never hang on a service that does not answer.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import auditc

from schemas import Manifest

ROWS = 30


class ChatServer:
    """`/v1/models` lists `self.model`; `/v1/chat/completions` answers with it."""

    def __init__(self) -> None:
        self.model = "tiny-chat-2026-11"
        self.refuse: str | None = None
        """Prompts holding this text get HTTP 400."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send({"object": "list", "data": [{"id": outer.model}]})
                else:
                    self._send({"error": "not found"}, 404)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                if outer.refuse is not None and outer.refuse in text:
                    self._send({"error": "this prompt is refused"}, 400)
                    return
                message = {"role": "assistant", "content": f"{outer.model}: {len(text)}"}
                self._send({"model": outer.model, "choices": [{"message": message}]})

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def __enter__(self) -> ChatServer:
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()


def write_project(root: Path, url: str, version: str = "2026-11") -> Path:
    (root / "audits" / "data").mkdir(parents=True)
    rows = [{"prompt": f"question {i}"} for i in range(ROWS)]
    (root / "audits" / "data" / "prompts.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    (root / "audits" / "audit.yaml").write_text(
        f"""\
kind: Dataset
name: prompts
spec:
  file: {{path: data/prompts.jsonl}}
  columns: {{prompt: string}}
---
kind: InferenceService
name: chat
spec:
  runner: {{kind: external, url: "{url}", version: "{version}"}}
  interface:
    endpoint: /v1/chat/completions
    request: {{model: tiny-chat, messages: [{{role: user, content: "$.prompt"}}]}}
    response: {{answer: "$.choices[0].message.content"}}
    output: {{answer: string}}
---
kind: Evaluation
name: answers
spec: {{service: chat, dataset: prompts}}
"""
    )
    return root


def manifest(project: Path) -> Manifest:
    found = [
        Manifest.model_validate_json(p.read_text())
        for p in (project / ".auditc" / "evaluation" / "answers").glob("*/_manifest.json")
    ]
    assert len(found) == 1
    return found[0]


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as running:
        yield running


def test_the_manifest_records_version_fingerprint_and_concurrency(
    tmp_path: Path, server: ChatServer
) -> None:
    project = write_project(tmp_path / "p", server.url)
    done = auditc("-C", str(project), "run")
    assert done.returncode == 0, done.stderr
    recorded = manifest(project)
    assert recorded.status == "complete" and recorded.rows == ROWS
    assert recorded.service_version == "2026-11"
    assert recorded.service_fingerprint is not None
    assert recorded.service_fingerprint.startswith("sha256:")
    assert 1 <= recorded.metrics["concurrency"] <= 512  # `auto`, the external default
    # A new declared version is a new node: plan says the evaluation re-runs.
    write_project(tmp_path / "q", server.url, version="2026-12")
    (project / "audits" / "audit.yaml").write_text(
        (tmp_path / "q" / "audits" / "audit.yaml").read_text()
    )
    planned = auditc("-C", str(project), "plan")
    assert planned.returncode == 0, planned.stderr
    assert "Evaluation/answers" in planned.stdout
    assert "upstream InferenceService/chat changed" in planned.stdout


def test_plan_and_run_warn_when_the_service_changed_behind_its_url(
    tmp_path: Path, server: ChatServer
) -> None:
    project = write_project(tmp_path / "p", server.url)
    assert auditc("-C", str(project), "run").returncode == 0
    quiet = auditc("-C", str(project), "plan")
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr

    server.model = "tiny-chat-2027-01"  # the same URL, another model
    planned = auditc("-C", str(project), "plan")
    assert planned.returncode == 0, planned.stderr
    assert "warning: InferenceService/chat at http://127.0.0.1:" in planned.stderr
    assert "now answers with fingerprint sha256:" in planned.stderr
    assert "Evaluation/answers's stored results were made when it answered" in planned.stderr
    assert "auditc run --force --select answers" in planned.stderr
    ran = auditc("-C", str(project), "run")
    assert ran.returncode == 0 and "now answers with fingerprint" in ran.stderr


def test_a_service_that_cannot_be_asked_is_reported_and_never_hangs(
    tmp_path: Path, server: ChatServer
) -> None:
    project = write_project(tmp_path / "p", server.url)
    assert auditc("-C", str(project), "run").returncode == 0
    server.__exit__()
    down = auditc("-C", str(project), "plan")
    assert down.returncode == 0
    assert "cannot check whether InferenceService/chat changed" in down.stderr

    # The same port now takes connections but never answers: the check gives up by itself.
    port = int(server.url.rsplit(":", 1)[1])
    with socket.socket() as silent:
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", port))
        silent.listen(16)
        started = time.monotonic()
        planned = auditc("-C", str(project), "plan")
        took = time.monotonic() - started
    assert planned.returncode == 0
    assert "cannot check whether InferenceService/chat changed" in planned.stderr
    assert "timed out" in planned.stderr or "no answer within" in planned.stderr
    assert took < 30, "plan waited for a service that never answers"


def test_a_down_service_fails_fast_with_its_url_and_last_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    project = write_project(tmp_path / "p", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    done = auditc("-C", str(project), "run")
    took = time.monotonic() - started
    assert done.returncode == 1
    # Seconds, not the 600 s a model may take to load; progress while it waits.
    assert took < 60
    url = f"http://127.0.0.1:{port}"
    assert f"InferenceService/chat waiting for {url}: " in done.stderr
    assert "of 20 s (last error: " in done.stderr
    assert f"the service at {url} was not ready after 20 s (timeouts.ready; last error: " in (
        done.stderr
    )
    assert "Connection refused" in done.stderr
    recorded = manifest(project)
    assert recorded.status == "failed" and not recorded.rows


def test_an_evaluation_with_failed_rows_is_a_failed_node(
    tmp_path: Path, server: ChatServer
) -> None:
    project = write_project(tmp_path / "p", server.url)
    spec = project / "audits" / "audit.yaml"
    # One prompt the service refuses (HTTP 400, not retried).
    text = spec.read_text().replace(
        "spec: {service: chat, dataset: prompts}",
        "spec: {service: chat, dataset: prompts, retries: {max_attempts: 1}}",
    )
    spec.write_text(text)
    data = project / "audits" / "data" / "prompts.jsonl"
    data.write_text(data.read_text().replace('"question 7"', '"question 7 REFUSE"'))
    server.refuse = "REFUSE"
    done = auditc("-C", str(project), "run")
    assert done.returncode == 1
    assert "1 of 30 rows (3.3%) failed, more than errors.max_error_fraction (0)" in done.stderr
    recorded = manifest(project)
    assert recorded.status == "failed" and recorded.metrics["errors"] == 1

    # Allowed on purpose, in the spec: the same rows make a complete node.
    spec.write_text(
        text.replace("max_attempts: 1}", "max_attempts: 1}, errors: {max_error_fraction: 0.05}")
    )
    again = auditc("-C", str(project), "run")
    assert again.returncode == 0, again.stderr
