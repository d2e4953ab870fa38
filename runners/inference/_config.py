"""The inference server's configuration: what the backend hands to `serve`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas import InferenceService, Model

__all__ = ["DEFAULT_HOST", "ServerConfig"]

DEFAULT_HOST = "127.0.0.1"


class ServerConfig(BaseModel):
    """What one inference server serves, and where.

    Example:
        >>> ServerConfig(service=service, model=model, port=8123)  # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: InferenceService
    """The service to serve; its runner kind picks the implementation."""
    model: Model | None = None
    """The service's Model (required by the `python` and `huggingface` runners)."""
    model_dir: str | None = None
    """Absolute path of a local model directory, when `Model.spec.path` is set."""
    python_paths: list[str] = Field(default_factory=list)
    """Absolute Module directories put first on `sys.path` before the callable is imported."""
    host: str = DEFAULT_HOST
    port: int = Field(ge=1, le=65535)
