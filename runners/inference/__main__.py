"""`python -m runners.inference CONFIG.json`: serve one model until stopped.

Exit codes (docs/contracts.md): 0 stopped normally, 1 the server failed (port in use,
model not loadable), 2 invalid config, 3 a bug.
"""

from __future__ import annotations

import sys

import click

from .._bytecode import private_bytecode_cache
from .._entry import configure_logging, error_boundary, load_config, log_level_option, run_entry
from . import ServerConfig, serve


@click.command()
@click.argument("config", metavar="CONFIG.json")
@log_level_option
def command(config: str, log_level: str) -> None:
    """Serve the model that CONFIG.json (a runners.inference.ServerConfig) describes."""
    private_bytecode_cache()
    configure_logging(log_level)
    server_config = load_config(config, ServerConfig)
    with error_boundary("the inference server"):
        serve(server_config)


def main(argv: list[str] | None = None) -> int:
    """Serve until stopped; return the exit code."""
    return run_entry(command, argv, prog="python -m runners.inference")


if __name__ == "__main__":
    sys.exit(main())
