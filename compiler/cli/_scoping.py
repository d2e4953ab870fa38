"""Which results `check`, `report` and `diff` read: the current specs' nodes, or `--all`.

By default these commands read the nodes of the specs under PATHS (default: the whole
project), narrowed by `--select` as elsewhere; results of Methods that no longer exist,
and other audits' results in a shared store, are left out. `--all` reads the whole store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from schemas import UsageError

from ._common import Settings

if TYPE_CHECKING:
    from compiler.report import RunChoice, Scope

__all__ = ["RUN_CHOICE", "all_option", "results_scope", "run_option", "select_option"]

_Command = TypeVar("_Command", bound=Callable[..., Any])


def select_option() -> Callable[[_Command], _Command]:
    """`--select NAME[+]`, repeatable, as for `auditc run`."""
    return click.option(
        "--select",
        "-s",
        "selected",
        multiple=True,
        metavar="NAME[+]",
        help="Only the safety cases of NAME and what depends on it (NAME+). Repeatable.",
    )


class _RunChoice(click.ParamType["RunChoice"]):
    """`previous`, or a run number (1 for a node's first run)."""

    name = "N|previous"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> RunChoice:
        if value == "previous":
            return "previous"
        if isinstance(value, int) and value >= 1:
            return value
        if isinstance(value, str) and value.isdigit() and int(value) >= 1:
            return int(value)
        self.fail(f"{value!r} is not a run number (1, 2, …) or 'previous'", param, ctx)


RUN_CHOICE = _RunChoice()


def run_option(name: str, help_: str) -> Callable[[_Command], _Command]:
    """An option naming a recorded run of each safety case (`auditc run --force` keeps them)."""
    return click.option(name, type=RUN_CHOICE, default=None, metavar="N|previous", help=help_)


def all_option() -> Callable[[_Command], _Command]:
    """`--all`: the whole store instead of the current specs' nodes."""
    return click.option(
        "--all",
        "whole_store",
        is_flag=True,
        help="Read every safety case in the store (the latest run per Method and system), "
        "not only the nodes of the current specs.",
    )


def results_scope(
    settings: Settings, paths: tuple[str, ...], selected: tuple[str, ...], whole_store: bool
) -> Scope | None:
    """The scope of the specs under PATHS and `--select`, or None for `--all`.

    Raises:
        UsageError: `--all` with PATHS or `--select`; no specs to scope to.
        SpecError: the project's specs are invalid.
    """
    if whole_store:
        if paths or selected:
            raise UsageError("--all reads the whole store; it takes no PATHS or --select")
        return None
    from compiler import DEFAULT_SPEC_DIR, load_scoped_graph
    from compiler.report import scope_of

    if not paths and not (settings.project_dir / DEFAULT_SPEC_DIR).is_dir():
        raise UsageError(
            f"no specs to read results for: {settings.project_dir / DEFAULT_SPEC_DIR} does not "
            "exist; pass PATHS (or --project-dir), or --all to read the whole store"
        )
    scoped = load_scoped_graph(
        settings.project_dir, settings.spec_paths(paths), given=bool(paths), select=selected
    )
    shown = " ".join(paths) if paths else f"{DEFAULT_SPEC_DIR}/"
    return scope_of(scoped.graph, f"the specs under {shown}")
