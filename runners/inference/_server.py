"""The inference server: an ASGI app (Starlette) served by uvicorn on one socket.

Routes (the inference protocol of docs/contracts.md):

- `GET /health` → 200 `{"status": "ok"}` once the model is loaded, 503 while loading.
- `POST <interface.endpoint>` with a JSON object → a JSON object; with a JSON list →
  a list of the same length. 400 for bad input, 503 while loading, 500 when the model fails.

The model is loaded in a background thread so `/health` answers at once. Requests
that arrive together are merged into one model call (`_Batcher`): while the model
runs on one batch, the next one gathers, so throughput grows with concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas import AuditcError, InferenceError

from ._config import ServerConfig
from ._models import BadRequest, Predictor, make_predictor

__all__ = ["DEFAULT_MAX_BATCH", "create_app", "serve"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 256
"""Most inputs merged into one model call."""
_KEEP_ALIVE_S = 75
"""Longer than aiohttp's 15 s, so the server never closes a connection a client is reusing."""


def _json(value: Any, status: int = 200) -> Response:
    body = orjson.dumps(value, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json")


def _default(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    if tolist is None:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return tolist()


class _Batcher:
    """Merges concurrent requests into one call of `predict`, in one model thread."""

    def __init__(self, predictor: Predictor, max_batch: int) -> None:
        self._predictor = predictor
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[list[Any], asyncio.Future[list[Any]]]] = asyncio.Queue()
        # One thread: models are rarely safe to call concurrently, and batching gives the speed.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def submit(self, inputs: list[Any]) -> list[Any]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((inputs, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0])
            while size < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
                size += len(batch[-1][0])
            await self._run_batch(loop, batch)

    async def _run_batch(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[list[Any], asyncio.Future[list[Any]]]],
    ) -> None:
        flat = [x for inputs, _ in batch for x in inputs]
        try:
            outputs = await loop.run_in_executor(self._executor, self._predictor.predict, flat)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            # One bad request must not fail the others merged with it: retry each alone.
            for inputs, future in batch:
                try:
                    alone = await loop.run_in_executor(
                        self._executor, self._predictor.predict, inputs
                    )
                except Exception as single_exc:
                    _settle(future, exc=single_exc)
                else:
                    _settle(future, result=alone)
            return
        start = 0
        for inputs, future in batch:
            _settle(future, result=outputs[start : start + len(inputs)])
            start += len(inputs)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _settle(
    future: asyncio.Future[list[Any]],
    *,
    result: list[Any] | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # the client went away and the handler was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result or [])


class _State:
    """What the routes share: the predictor, whether it is loaded, why loading failed."""

    def __init__(self, predictor: Predictor, max_batch: int) -> None:
        self.predictor = predictor
        self.max_batch = max_batch
        self.ready = False
        self.load_error: BaseException | None = None
        self.batcher: _Batcher | None = None
        self.on_load_failure: Any = None


def _load_in_background(state: _State, loop: asyncio.AbstractEventLoop) -> None:
    def target() -> None:
        try:
            state.predictor.load()
        except BaseException as exc:
            state.load_error = exc
            logger.error("cannot load the model: %s", exc)
            if state.on_load_failure is not None:
                loop.call_soon_threadsafe(state.on_load_failure)
            return
        loop.call_soon_threadsafe(setattr, state, "ready", True)
        logger.info("model loaded: %s", state.predictor.description)

    threading.Thread(target=target, name="model-loader", daemon=True).start()


def create_app(
    predictor: Predictor, endpoint: str, max_batch: int = DEFAULT_MAX_BATCH
) -> Starlette:
    """The ASGI app serving `predictor` at `endpoint` (the model loads on startup).

    Args:
        predictor: The model back end (`make_predictor(config)`).
        endpoint: The predict route, e.g. `/predict`.
        max_batch: Most inputs merged into one model call.
    """
    state = _State(predictor, max_batch)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.batcher = _Batcher(predictor, max_batch)
        worker = asyncio.create_task(state.batcher.run())
        _load_in_background(state, asyncio.get_running_loop())
        try:
            yield
        finally:
            worker.cancel()
            state.batcher.close()

    async def health(request: Request) -> Response:
        if state.ready:
            return _json({"status": "ok"})
        return _json({"status": "loading"}, 503)

    async def predict(request: Request) -> Response:
        if not state.ready:
            return _json({"error": "the model is still loading"}, 503)
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return _json({"error": f"the request body is not JSON: {exc}"}, 400)
        batched = isinstance(payload, list)
        items = payload if batched else [payload]
        try:
            inputs = [predictor.prepare(item) for item in items]
        except BadRequest as exc:
            return _json({"error": str(exc)}, 400)
        assert state.batcher is not None
        try:
            outputs = await state.batcher.submit(inputs) if inputs else []
        except AuditcError as exc:
            return _json({"error": str(exc)}, 500)
        except Exception as exc:  # the user's model raised: report it, keep serving
            logger.warning("model call failed: %s: %s", type(exc).__name__, exc)
            return _json({"error": f"the model raised {type(exc).__name__}: {exc}"}, 500)
        return _json(outputs if batched else outputs[0])

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route(endpoint, predict, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.auditc = state
    return app


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves, so a busy port is a clear InferenceError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InferenceError(
                f"port {port} on {host} is already in use (another server is running there); "
                "choose another port or stop that process"
            ) from exc
        raise InferenceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def serve(config: ServerConfig, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
    """Serve the config's model until interrupted (SIGINT/SIGTERM). Blocks.

    Args:
        config: What to serve and where.
        max_batch: Most inputs merged into one model call.

    Raises:
        InferenceError: the runner kind is not served here, the port is in use, or the
            model could not be loaded (the server stops then).
    """
    import uvicorn

    predictor = make_predictor(config)
    sock = _bind(config.host, config.port)
    app = create_app(predictor, config.service.spec.interface.endpoint, max_batch)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            loop="auto",  # uvloop and httptools when installed
            http="auto",
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=_KEEP_ALIVE_S,
        )
    )
    state: _State = app.state.auditc
    state.on_load_failure = lambda: setattr(server, "should_exit", True)
    logger.info(
        "serving %s on http://%s:%d%s",
        predictor.description,
        config.host,
        config.port,
        config.service.spec.interface.endpoint,
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if state.load_error is not None:
        if isinstance(state.load_error, AuditcError):
            raise state.load_error
        raise InferenceError(
            f"cannot load {predictor.description}: "
            f"{type(state.load_error).__name__}: {state.load_error}"
        ) from state.load_error
