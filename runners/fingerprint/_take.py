"""Ask an external service what it is, and reduce the answer to a short fingerprint."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

from schemas import InferenceError, InferenceService, ServiceFingerprint

from ..adapters import AdapterError, compile_path

__all__ = [
    "DEFAULT_FINGERPRINT_TIMEOUT_S",
    "FingerprintError",
    "fingerprint_spec",
    "take_fingerprint",
]

DEFAULT_FINGERPRINT_TIMEOUT_S = 10.0
"""Longest one fingerprint request may take."""
MAX_ANSWER_BYTES = 4 * 2**20
"""A larger answer is not read (a fingerprint needs little)."""
MAX_VALUE_CHARS = 120
"""A value kept as it is (a header, a selected string) is cut to this length."""
_OPENAI_MODELS = ServiceFingerprint(get="/v1/models")


class FingerprintError(InferenceError):
    """The service could not be fingerprinted (unreachable, an error, nothing at `select`)."""

    code = "fingerprint"


def fingerprint_spec(service: InferenceService) -> ServiceFingerprint | None:
    """How `service` is fingerprinted: its runner's `fingerprint`, the default, or None.

    The default, for an `external` runner that declares none, is `GET /v1/models` when its
    endpoint is OpenAI-style (`/v1/...`); other runners are pinned by their image or model
    revision and are not fingerprinted.
    """
    runner = service.spec.runner
    if runner.kind != "external" or runner.fingerprint is False:
        return None
    if runner.fingerprint is not None:
        return runner.fingerprint
    return _OPENAI_MODELS if service.spec.interface.endpoint.startswith("/v1/") else None


def take_fingerprint(
    service: InferenceService,
    base_url: str,
    api_key: str | None = None,
    *,
    timeout_s: float = DEFAULT_FINGERPRINT_TIMEOUT_S,
) -> str:
    """Ask the service as its fingerprint spec says; the value, or `sha256:<16 hex>` of it.

    Raises:
        FingerprintError: the service has no fingerprint spec, cannot be reached, answers
            an error or too much, or its answer lacks the header or path asked for.
    """
    spec = fingerprint_spec(service)
    if spec is None:
        raise FingerprintError(f"InferenceService/{service.name} declares no fingerprint")
    base = base_url.rstrip("/")
    if spec.get is not None:
        url, data = base + spec.get, None
    else:
        url, data = base + service.spec.interface.endpoint, json.dumps(spec.probe).encode()
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=data, headers=headers)
    where = (
        f"InferenceService/{service.name}: fingerprint ({'GET' if data is None else 'POST'} {url})"
    )
    body, answer_headers = _ask(request, timeout_s, where)
    if api_key:
        body = body.replace(api_key.encode(), b"[REDACTED]")
    if spec.header is not None:
        value = answer_headers.get(spec.header)
        if value is None:
            raise FingerprintError(f"{where}: the answer has no header {spec.header}")
        return _short(value)
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        if spec.select is not None:
            raise FingerprintError(f"{where}: the answer is not JSON") from None
        return _hash(body)
    if spec.select is not None:
        try:
            parsed = compile_path(spec.select, where="fingerprint.select")(parsed)
        except AdapterError as exc:
            raise FingerprintError(f"{where}: {exc}") from None
    if isinstance(parsed, str | int | float | bool) and spec.select is not None:
        return _short(str(parsed))
    return _hash(json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode())


def _ask(request: urllib.request.Request, timeout_s: float, where: str) -> tuple[bytes, Any]:
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (http(s) URLs from validated specs)
            body = response.read(MAX_ANSWER_BYTES + 1)
            headers = response.headers
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FingerprintError(f"{where}: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise FingerprintError(f"{where}: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed answer
        raise FingerprintError(f"{where}: {type(exc).__name__}: {exc}") from None
    if len(body) > MAX_ANSWER_BYTES:
        raise FingerprintError(f"{where}: the answer is larger than {MAX_ANSWER_BYTES:,} bytes")
    return body, headers


def _short(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"


def _hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]
