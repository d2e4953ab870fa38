"""The shared shape of a runner step's `python -m runners.<step> CONFIG.json` entry point.

Exit codes (docs/contracts.md): 0 success; 1 the step failed (its message on stderr);
2 the config is invalid; 3 a bug (with a traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schemas import AuditcError

from ._bytecode import private_bytecode_cache

__all__ = ["run_step"]

ConfigT = TypeVar("ConfigT", bound=BaseModel)

_NOISY_LOGGERS = ("traitlets", "asyncio", "matplotlib", "blib2to3")


def run_step(
    argv: list[str] | None,
    *,
    step: str,
    description: str | None,
    config_type: type[ConfigT],
    run: Callable[[ConfigT], BaseModel],
) -> int:
    """Parse `CONFIG.json [--result FILE]`, run the step, and map the outcome to an exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m runners.{step}", description=description)
    parser.add_argument("config", type=Path, help=f"{config_type.__name__} as JSON")
    parser.add_argument("--result", type=Path, help="write the step's result here as JSON")
    args = parser.parse_args(argv)
    private_bytecode_cache()
    _configure_logging()
    try:
        config = config_type.model_validate_json(args.config.read_bytes())
    except (OSError, ValidationError) as exc:
        print(f"error: invalid {config_type.__name__} {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        result = run(config)
    except AuditcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print("internal error: this is a bug in auditc; please report it.", file=sys.stderr)
        return 3
    if args.result is not None:
        args.result.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return 0


def _configure_logging() -> None:
    level = os.environ.get("AUDITC_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in _NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
