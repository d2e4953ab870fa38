"""What every runner entry point (`python -m runners.<step> …`) shares: one logging set-up
and one error boundary, and the whole shape of the steps that take just `CONFIG.json`.

Exit codes (docs/contracts.md): 0 success; 1 the step failed (its message on stderr);
2 the config is invalid (or an extra is missing); 3 a bug (with a traceback); an
`AuditcError` may carry its own code (4: the evaluation's service was never ready).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schemas import AuditcError, format_loc

from ._bytecode import private_bytecode_cache

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "configure_logging",
    "describe_invalid_config",
    "error_boundary",
    "run_step",
]

EXIT_FAILED = 1
EXIT_INTERNAL = 3

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
    configure_logging()
    try:
        config = config_type.model_validate_json(args.config.read_bytes())
    except (OSError, ValidationError) as exc:
        print(f"error: invalid {config_type.__name__} {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        with error_boundary(f"runners.{step}"):
            result = run(config)
    except SystemExit as exited:
        return int(exited.code or 0)
    if args.result is not None:
        args.result.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return 0


def configure_logging(level: str | None = None) -> None:
    """Log to stderr at `level` (default `AUDITC_LOG_LEVEL`, else INFO), chatty libraries quieter."""
    name = (level or os.environ.get("AUDITC_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, name, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in _NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def error_boundary(what: str, scrub: Callable[[str], str] = str) -> Iterator[None]:
    """The one place a runner process turns an exception into its exit.

    An `AuditcError` prints its message and exits with its code (1 unless it carries
    another); anything else is a bug: its traceback, a request to report it, exit 3.

    Args:
        what: the step, for the bug report (`runners.evaluation`).
        scrub: applied to every message and traceback before it is printed (the
            evaluation client takes its API key out).

    Raises:
        SystemExit: on any exception from the block.
    """
    try:
        yield
    except AuditcError as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        raise SystemExit(exc.exit_code or EXIT_FAILED) from None
    except Exception:
        print(scrub(traceback.format_exc()), file=sys.stderr, end="")
        print(
            f"internal error in {what}: this is a bug in auditc; please report it.",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_INTERNAL) from None


def describe_invalid_config(path: str, type_name: str, exc: ValidationError) -> str:
    """A config file's validation errors, one per line (the first ten), for a usage error."""
    n = exc.error_count()
    lines = [f"  {format_loc(tuple(e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()[:10]]
    more = [f"  … and {n - 10} more"] if n > 10 else []
    return "\n".join(
        [f"{path}: not a valid {type_name} ({n} error{'s' if n != 1 else ''}):", *lines, *more]
    )
