"""What every command shares: settings, the single error boundary, exit codes, output."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from schemas import (
    AuditcError,
    UsageError,
    extra_for_module,
    missing_extra_error,
    on_remote_store,
)

from ._interrupts import end_within, install_watchdog

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INVALID",
    "EXIT_OK",
    "Settings",
    "check_store",
    "paths_argument",
    "format_option",
    "review_format_option",
    "text_json_format_option",
    "run_cli",
    "writing_to",
]

EXIT_OK = 0
EXIT_FAILED = 1
"""A run failed: a workflow failed, a gate failed, a store or backend error."""
EXIT_INVALID = 2
"""Invalid specs or usage (click's own usage code)."""
EXIT_INTERNAL = 3
"""A bug in auditc."""

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 a run, gate or store operation failed; "
    "2 invalid specs or usage, or a missing extra; 3 internal error (a bug: please report it)."
)

DEFAULT_SPEC_DIR = "audits"


@dataclass(frozen=True)
class Settings:
    """Global options, available to each command as `ctx.obj`."""

    project_dir: Path
    log_level: str
    debug: bool

    @classmethod
    def create(cls, project_dir: str, log_level: str, debug: bool) -> Settings:
        level = logging.DEBUG if debug else getattr(logging, log_level.upper())
        logging.basicConfig(
            level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
        )
        for noisy in (
            "httpx",
            "httpcore",
            "urllib3",
            "asyncio",
            "traitlets",
            "papermill",
            "matplotlib",
        ):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
        return cls(Path(project_dir).resolve(), log_level, debug)

    @property
    def default_store(self) -> str:
        """`<project>/.auditc`."""
        return str(self.project_dir / ".auditc")

    def spec_paths(self, paths: tuple[str, ...]) -> list[Path]:
        """The PATHS arguments, or `audits/`, made absolute against the project dir."""
        chosen = paths or (DEFAULT_SPEC_DIR,)
        return [(self.project_dir / p) if not Path(p).is_absolute() else Path(p) for p in chosen]


_Command = TypeVar("_Command", bound=Callable[..., Any])


def paths_argument() -> Callable[[_Command], _Command]:
    """The PATHS argument shared by commands that read specs."""
    return click.argument("paths", nargs=-1, type=click.Path())


def format_option(choices: Sequence[str], help: str) -> Callable[[_Command], _Command]:
    """`--format` (into the parameter `format_`) with `choices`, the first the default."""
    return click.option(
        "--format",
        "format_",
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        help=help,
    )


def review_format_option() -> Callable[[_Command], _Command]:
    """`--format text|json|markdown`, shared by the commands whose output goes into reviews."""
    return format_option(
        ["text", "json", "markdown"],
        "text for terminals, json for tools, markdown for a pull-request comment.",
    )


def text_json_format_option(what: str = "people and CI logs") -> Callable[[_Command], _Command]:
    """`--format text|json`, shared by the commands whose output is read by people or tools."""
    return click.option(
        "--format",
        "format_",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=f"text for {what}, json for tools.",
    )


def check_store(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The callback of every `--store` option: an empty value or a file is a usage error.

    Without it, `--store ''` silently meant the default store, and `plan --store FILE`
    planned against an empty store.
    """
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter("is empty; expected a directory or a URI (s3://…)")
    if "://" not in value:
        path = Path(value).expanduser()
        if path.exists() and not path.is_dir():
            raise click.BadParameter(f"{value!r} is a file; expected a directory or a URI")
    return value


@contextlib.contextmanager
def writing_to(path: Path, option: str) -> Iterator[None]:
    """Turn an OSError about `path` (or a file under it) into a usage error naming `option`.

    Other OSErrors propagate: only what the user's option points at is the user's to fix.
    """
    try:
        yield
    except OSError as exc:
        name = exc.filename
        target = Path(os.path.abspath(path))
        if not isinstance(name, str):
            raise
        about = Path(os.path.abspath(name))  # the path itself, inside it, or a parent to create
        if not (about.is_relative_to(target) or target.is_relative_to(about)):
            raise
        raise UsageError(f"{option} {path}: cannot write {name}: {exc.strerror or exc}") from None


def run_cli(group: click.Group, argv: list[str], *, watchdog: bool = False) -> Any:
    """The single error boundary: user errors print without a traceback, bugs with one.

    With `watchdog` (the `auditc` process itself, not a test calling `main`), opening an
    object store starts the watchdog that makes Ctrl-C end auditc even while it waits
    inside C code; commands that open none keep a single thread.
    """
    debug = "--debug" in argv
    if watchdog:
        on_remote_store(install_watchdog)
    try:
        return group.main(args=argv, prog_name="auditc", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_INVALID if exc.exit_code == 2 else exc.exit_code)
    except click.Abort:  # click's form of KeyboardInterrupt
        click.echo("Aborted.", err=True)
        end_within(130)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        end_within(130)
        sys.exit(130)
    except AuditcError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc}" if "\n" not in str(exc) else str(exc), err=True)
        end_within(exc.exit_code)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(EXIT_OK)
    except ModuleNotFoundError as exc:
        # An optional package that an extra installs: say which extra, as a usage error.
        extra = extra_for_module(exc.name or "")
        if extra is None:
            _internal_error()
        if debug:
            traceback.print_exc()
        missing = missing_extra_error(
            extra, _command_name(group, argv), [(exc.name or "").split(".")[0]]
        )
        click.echo(f"error: {missing}", err=True)
        sys.exit(missing.exit_code)
    except Exception:
        _internal_error()


def _command_name(group: click.Group, argv: list[str]) -> str:
    """`auditc <command>` for the command in `argv`, for messages."""
    names = set(group.list_commands(click.Context(group)))
    return "auditc " + next((arg for arg in argv if arg in names), "").strip()


def _internal_error() -> NoReturn:
    """Print the traceback of the exception being handled as a bug, and exit 3."""
    traceback.print_exc()
    click.echo(
        "internal error: this is a bug in auditc; please report it with the traceback above.",
        err=True,
    )
    sys.exit(EXIT_INTERNAL)
