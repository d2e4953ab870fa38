"""Inference servers: serve a model over HTTP with `/health` and a batch predict route.

Example:
    >>> from runners.inference import ServerConfig, serve, free_port
    >>> serve(ServerConfig(service=service, model=model, port=free_port()))  # doctest: +SKIP

Run as `python -m runners.inference CONFIG.json` (CONFIG holds a `ServerConfig`).
"""

from typing import TYPE_CHECKING, Any

from ._config import DEFAULT_HOST, ServerConfig
from ._models import BadRequest, HuggingFacePredictor, Predictor, PythonPredictor, make_predictor
from ._ready import HEALTH_PATH, free_port, wait_ready

if TYPE_CHECKING:
    from ._server import DEFAULT_MAX_BATCH, create_app, serve

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BATCH",
    "HEALTH_PATH",
    "BadRequest",
    "HuggingFacePredictor",
    "Predictor",
    "PythonPredictor",
    "ServerConfig",
    "create_app",
    "free_port",
    "make_predictor",
    "serve",
    "wait_ready",
]


def __getattr__(name: str) -> Any:
    # The backend waits for servers and builds their configs in the `auditc` process;
    # the server itself (starlette) loads only where a server runs.
    if name in ("DEFAULT_MAX_BATCH", "create_app", "serve"):
        from . import _server

        return getattr(_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
