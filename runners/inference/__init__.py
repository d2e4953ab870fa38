"""Inference servers: serve a model over HTTP with `/health` and a batch predict route.

Example:
    >>> from runners.inference import ServerConfig, serve, free_port
    >>> serve(ServerConfig(service=service, model=model, port=free_port()))  # doctest: +SKIP

Run as `python -m runners.inference CONFIG.json` (CONFIG holds a `ServerConfig`).
"""

from ._config import DEFAULT_HOST, ServerConfig
from ._models import BadRequest, HuggingFacePredictor, Predictor, PythonPredictor, make_predictor
from ._ready import HEALTH_PATH, free_port, wait_ready
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
