"""One row through a service, synchronously: what `auditc infer` uses."""

from __future__ import annotations

from typing import Any

import orjson

from schemas import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REQUEST_TIMEOUT,
    InferenceError,
    InferenceService,
)

from ..adapters import compile_pipeline
from ._client import _error_text, json_headers
from ._redact import REDACTED

__all__ = ["infer_row"]


def _read_at_most(response: Any, limit: int) -> bytes | None:
    """The body of a streamed httpx response, or None when it is longer than `limit`."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def infer_row(
    service: InferenceService,
    base_url: str,
    row: dict[str, Any],
    api_key: str | None = None,
    *,
    timeout: float = DEFAULT_REQUEST_TIMEOUT,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> dict[str, Any]:
    """Send one row through the service's adapters and return its output row.

    Args:
        service: The service; its interface gives the endpoint and the adapters.
        base_url: The running service's base URL (`http://127.0.0.1:8123`).
        row: A dataset row (a JSON object).
        api_key: Sent as `Authorization: Bearer` when given.
        timeout: Seconds for the request.
        max_response_bytes: A longer answer is an error (and is not read).

    Returns:
        The declared output columns of the response (missing ones are None).

    Raises:
        AdapterError: the request or response adapters do not fit the row or response.
        InferenceError: the service cannot be reached, answers an error, or not JSON.
    """
    # Imported here: the evaluation client imports this package but never uses httpx,
    # and importing httpx costs it ~70 ms of start-up.
    import httpx

    interface = service.spec.interface
    request = compile_pipeline(interface.request, name="interface.request").one(row)
    url = base_url.rstrip("/") + interface.endpoint
    try:
        with httpx.stream(
            "POST",
            url,
            content=orjson.dumps(request),
            headers=json_headers(api_key),
            timeout=timeout,
        ) as response:
            content = _read_at_most(response, max_response_bytes)
    except httpx.HTTPError as exc:
        raise InferenceError(
            f"InferenceService/{service.name}: cannot reach {url}: {type(exc).__name__}: {exc}"
        ) from exc
    if content is None:
        raise InferenceError(
            f"InferenceService/{service.name}: {url} answered more than {max_response_bytes:,} "
            "bytes (max_response_bytes); the answer was not read"
        )
    if api_key and api_key.encode() in content:
        content = content.replace(api_key.encode(), REDACTED.encode())
    if response.status_code >= 300:
        raise InferenceError(
            f"InferenceService/{service.name}: {url} answered HTTP {response.status_code}: "
            f"{_error_text(content)}"
        )
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise InferenceError(
            f"InferenceService/{service.name}: {url} answered something that is not JSON "
            f"({exc}): {content[:80]!r}"
        ) from exc
    output = compile_pipeline(interface.response, name="interface.response").one(body)
    return {column: output.get(column) for column in interface.output}
