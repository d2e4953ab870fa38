"""One row through a service, synchronously: what `auditc infer` uses."""

from __future__ import annotations

from typing import Any

import orjson

from schemas import DEFAULT_REQUEST_TIMEOUT, InferenceError, InferenceService

from ..adapters import compile_pipeline
from ._client import _error_text, json_headers

__all__ = ["infer_row"]


def infer_row(
    service: InferenceService,
    base_url: str,
    row: dict[str, Any],
    api_key: str | None = None,
    *,
    timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> dict[str, Any]:
    """Send one row through the service's adapters and return its output row.

    Args:
        service: The service; its interface gives the endpoint and the adapters.
        base_url: The running service's base URL (`http://127.0.0.1:8123`).
        row: A dataset row (a JSON object).
        api_key: Sent as `Authorization: Bearer` when given.
        timeout: Seconds for the request.

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
        response = httpx.post(
            url, content=orjson.dumps(request), headers=json_headers(api_key), timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise InferenceError(
            f"InferenceService/{service.name}: cannot reach {url}: {type(exc).__name__}: {exc}"
        ) from exc
    if response.status_code >= 300:
        raise InferenceError(
            f"InferenceService/{service.name}: {url} answered HTTP {response.status_code}: "
            f"{_error_text(response.content)}"
        )
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise InferenceError(
            f"InferenceService/{service.name}: {url} answered something that is not JSON "
            f"({exc}): {response.content[:80]!r}"
        ) from exc
    output = compile_pipeline(interface.response, name="interface.response").one(body)
    return {column: output.get(column) for column in interface.output}
