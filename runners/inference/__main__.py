"""`python -m runners.inference CONFIG.json`: serve one model until stopped.

Exit codes (docs/contracts.md): 0 stopped normally, 1 the server failed (port in use,
model not loadable), 2 invalid config, 3 a bug.
"""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError

from .._bytecode import private_bytecode_cache
from .._entry import configure_logging, describe_invalid_config, error_boundary
from . import ServerConfig, serve


def _load_config(path: str) -> ServerConfig:
    try:
        return ServerConfig.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise click.UsageError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise click.UsageError(describe_invalid_config(path, "ServerConfig", exc)) from exc


@click.command()
@click.argument("config", metavar="CONFIG.json")
@click.option("--log-level", default="INFO", envvar="AUDITC_LOG_LEVEL", show_default=True)
def command(config: str, log_level: str) -> None:
    """Serve the model that CONFIG.json (a runners.inference.ServerConfig) describes."""
    private_bytecode_cache()
    configure_logging(log_level)
    server_config = _load_config(config)
    with error_boundary("the inference server"):
        serve(server_config)


if __name__ == "__main__":
    command()
