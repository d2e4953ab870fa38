"""Fingerprints of external services against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import runners.fingerprint
from runners.fingerprint import FingerprintError, fingerprint_spec, take_fingerprint
from schemas import InferenceService

MODELS = {"object": "list", "data": [{"id": "tiny-chat", "root": "org/tiny-chat@abc123"}]}
KEY = "sk-fingerprint-test-key"


class Handler(http.server.BaseHTTPRequestHandler):
    """`GET /v1/models`, `POST /v1/chat/completions`, `GET /v1/echo-key`; anything else 404."""

    seen: list[tuple[str, str, str | None]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, self.headers.get("Authorization")))
        if self.path == "/v1/models":
            self._send(200, MODELS, {"x-model-version": "2026-11-01"})
        elif self.path == "/v1/echo-key":
            self._send(200, {"you": self.headers.get("Authorization")})
        elif self.path == "/text":
            self._send(200, b"plain text, not JSON")
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self.seen.append(("POST", self.path, json.dumps(body)))
        self._send(200, {"model": "tiny-chat", "system_fingerprint": "fp_44709d6fcb", "n": 1})


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def service(
    fingerprint: Any = None, endpoint: str = "/v1/chat/completions", **runner: Any
) -> InferenceService:
    spec: dict[str, Any] = {"kind": "external", "url": "http://x", **runner}
    if fingerprint is not None:
        spec["fingerprint"] = fingerprint
    return InferenceService.model_validate(
        {
            "kind": "InferenceService",
            "name": "chat",
            "spec": {
                "runner": spec,
                "interface": {"endpoint": endpoint, "output": {"y": "string"}},
            },
        }
    )


def test_public_api() -> None:
    assert sorted(runners.fingerprint.__all__) == sorted(
        n for n in dir(runners.fingerprint) if not n.startswith("_")
    )


def test_the_default_is_the_model_list_of_an_openai_style_service(url: str) -> None:
    assert fingerprint_spec(service()) is not None
    value = take_fingerprint(service(), url, KEY)
    assert value.startswith("sha256:") and len(value) == len("sha256:") + 16
    assert take_fingerprint(service(), url + "/") == value  # the same answer, the same print
    assert ("GET", "/v1/models", f"Bearer {KEY}") in Handler.seen
    # Not OpenAI-style, or switched off: no fingerprint.
    assert fingerprint_spec(service(endpoint="/predict")) is None
    assert fingerprint_spec(service(fingerprint=False)) is None


def test_a_selected_value_or_header_is_kept_as_it_is(url: str) -> None:
    assert take_fingerprint(service({"get": "/v1/models", "select": "$.data[0].root"}), url) == (
        "org/tiny-chat@abc123"
    )
    assert take_fingerprint(service({"get": "/v1/models", "header": "x-model-version"}), url) == (
        "2026-11-01"
    )
    probe = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}
    value = take_fingerprint(service({"probe": probe, "select": "$.system_fingerprint"}), url)
    assert value == "fp_44709d6fcb"
    assert ("POST", "/v1/chat/completions", json.dumps(probe)) in Handler.seen


def test_the_api_key_is_never_part_of_a_fingerprint(url: str) -> None:
    value = take_fingerprint(service({"get": "/v1/echo-key", "select": "$.you"}), url, KEY)
    assert value == "Bearer [REDACTED]"


@pytest.mark.parametrize(
    ("fingerprint", "message"),
    [
        ({"get": "/nowhere"}, "HTTP 404"),
        ({"get": "/text", "select": "$.x"}, "the answer is not JSON"),
        ({"get": "/v1/models", "select": "$.version"}, "matched nothing"),
        ({"get": "/v1/models", "header": "x-absent"}, "the answer has no header x-absent"),
    ],
)
def test_what_cannot_be_fingerprinted_is_a_clear_error(
    url: str, fingerprint: dict[str, str], message: str
) -> None:
    with pytest.raises(FingerprintError, match=message) as info:
        take_fingerprint(service(fingerprint), url)
    assert str(info.value).startswith("InferenceService/chat: fingerprint (")


def test_an_unreachable_service_fails_within_the_timeout() -> None:
    with pytest.raises(FingerprintError, match="Connection refused|refused"):
        take_fingerprint(service(), "http://127.0.0.1:9", timeout_s=2)


@pytest.mark.parametrize(
    ("fingerprint", "message"),
    [
        ({"header": "x"}, "give exactly one of 'get' (a path) and 'probe' (a request body)"),
        ({"get": "/a", "probe": {}}, "give exactly one of"),
        (
            {"get": "/a", "header": "x", "select": "$.a"},
            "give at most one of 'header' and 'select'",
        ),
        ({"get": "no-slash"}, "should match pattern"),
    ],
)
def test_invalid_fingerprint_specs_are_refused(fingerprint: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        service(fingerprint)


def test_runner_version_is_part_of_the_spec() -> None:
    assert service(version="2025-01-15").spec.runner.version == "2025-01-15"  # type: ignore[union-attr]
