"""What every runner entry point (`python -m runners.<step> …`) shares: one command-line
library (click), one entry boundary (`run_entry`), one way to read a step's config, one
logging set-up and one error boundary — and the whole command of the steps that take
just `CONFIG.json [--result FILE]` (`step_command`).

Exit codes (docs/contracts.md): 0 success; 1 the step failed (its message on stderr);
2 the config or the arguments are invalid (or an extra is missing); 3 a bug (with a
traceback); an `AuditcError` may carry its own code (4: the evaluation's service was
never ready).
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import IO, Any, TypeVar

import click
from pydantic import BaseModel, ValidationError

from schemas import AuditcError, format_loc

from ._bytecode import private_bytecode_cache

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "InvalidConfigError",
    "configure_logging",
    "describe_invalid_config",
    "error_boundary",
    "keep_pandas_out",
    "load_config",
    "log_level_option",
    "result_option",
    "run_entry",
    "step_command",
    "write_result",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
"""As a shell reports a process that SIGINT ended."""

ConfigT = TypeVar("ConfigT", bound=BaseModel)
CommandT = TypeVar("CommandT", bound=Callable[..., Any])

_NOISY_LOGGERS = ("traitlets", "asyncio", "matplotlib", "blib2to3")


class InvalidConfigError(click.UsageError):
    """A step's config file is unreadable or invalid: exit 2, the message without a usage line."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


def run_entry(command: click.Command, argv: Sequence[str] | None, *, prog: str) -> int:
    """The one entry boundary of every runner process: parse `argv`, run, return the exit code.

    The command's own return value (an int) is the exit code, else 0; a `SystemExit`
    (from `error_boundary`) keeps its code; click's usage errors print their message and
    give 2. `python -m runners.<step>` modules end with `sys.exit(run_entry(...))`.
    """
    try:
        code = command.main(
            args=list(argv) if argv is not None else None, prog_name=prog, standalone_mode=False
        )
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:  # click's form of KeyboardInterrupt
        click.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except SystemExit as exited:
        return exited.code if isinstance(exited.code, int) else EXIT_FAILED
    return code if isinstance(code, int) else 0


def load_config(path: str, config_type: type[ConfigT]) -> ConfigT:
    """Read and validate a step's JSON config.

    Raises:
        InvalidConfigError: the file cannot be read, or is not a valid `config_type`
            (every field error listed, see `describe_invalid_config`).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidConfigError(
            f"cannot read {config_type.__name__} {path}: {exc.strerror or exc}"
        ) from exc
    try:
        return config_type.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidConfigError(describe_invalid_config(path, config_type.__name__, exc)) from exc


def result_option(command: CommandT) -> CommandT:
    """`--result FILE`: where the step writes its result model as JSON."""
    return click.option(
        "--result", "result_path", metavar="FILE", help="Write the step's result here as JSON."
    )(command)


def log_level_option(command: CommandT) -> CommandT:
    """`--log-level`, default `AUDITC_LOG_LEVEL`, else INFO."""
    return click.option(
        "--log-level",
        default="INFO",
        envvar="AUDITC_LOG_LEVEL",
        show_default=True,
        help="DEBUG, INFO, WARNING or ERROR.",
    )(command)


def write_result(path: str | None, result: BaseModel) -> None:
    """Write a step's result model as JSON to `--result FILE`, when one was given."""
    if path is not None:
        Path(path).write_text(result.model_dump_json(indent=2), encoding="utf-8")


def step_command(
    *,
    step: str,
    description: str | None,
    config_type: type[ConfigT],
    run: Callable[[ConfigT], BaseModel],
) -> click.Command:
    """The command of a step that takes `CONFIG.json [--result FILE] [--log-level L]`."""

    @click.command(help=description)
    @click.argument("config", metavar="CONFIG.json")
    @result_option
    @log_level_option
    def command(config: str, result_path: str | None, log_level: str) -> int:
        private_bytecode_cache()
        configure_logging(log_level)
        step_config = load_config(config, config_type)
        with error_boundary(f"runners.{step}"):
            result = run(step_config)
        write_result(result_path, result)
        return 0

    return command


def keep_pandas_out() -> None:
    """Keep pandas out of a step process that never uses it.

    pyarrow imports pandas, when it is installed, at its first conversion of Python
    values to Arrow, only to check whether they are pandas objects: 0.2–0.35 s at the
    start of every Dataset and Evaluation step (most of auditc's fixed cost beyond the
    bare loop's). Those steps run no user code and use no pandas, so their processes
    (never a caller's: only a step's `__main__` calls this) refuse to import it and
    pyarrow goes on without it, as where pandas is not installed. Where pandas is
    already imported, nothing changes.
    """
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(f"this step does not use {fullname}", name=fullname)


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
