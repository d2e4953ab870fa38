"""`python -m runners.inference CONFIG.json`: serve one model until stopped.

Exit codes (docs/contracts.md): 0 stopped normally, 1 the server failed (port in use,
model not loadable), 2 invalid config, 3 a bug.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import click
from pydantic import ValidationError

from schemas import AuditcError, format_loc

from .._bytecode import private_bytecode_cache
from . import ServerConfig, serve

EXIT_FAILED, EXIT_INVALID, EXIT_INTERNAL = 1, 2, 3


def _describe(path: str, exc: ValidationError) -> str:
    n = exc.error_count()
    lines = [f"  {format_loc(tuple(e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()[:10]]
    more = [f"  … and {n - 10} more"] if n > 10 else []
    return "\n".join(
        [f"{path}: not a valid ServerConfig ({n} error{'s' if n != 1 else ''}):", *lines, *more]
    )


def _load_config(path: str) -> ServerConfig:
    try:
        return ServerConfig.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise click.UsageError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise click.UsageError(_describe(path, exc)) from exc


@click.command()
@click.argument("config", metavar="CONFIG.json")
@click.option("--log-level", default="INFO", envvar="AUDITC_LOG_LEVEL", show_default=True)
def command(config: str, log_level: str) -> None:
    """Serve the model that CONFIG.json (a runners.inference.ServerConfig) describes."""
    private_bytecode_cache()
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    server_config = _load_config(config)
    try:
        serve(server_config)
    except AuditcError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED if exc.exit_code == 0 else exc.exit_code)
    except Exception:
        click.echo(traceback.format_exc(), err=True)
        click.echo("internal error in the inference server (a bug: please report it)", err=True)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    command()
