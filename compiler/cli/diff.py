"""`auditc diff BASE HEAD`: compare the scores of two stores or two git refs, with intervals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from compiler.report import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
from schemas import UsageError

from ._common import EXIT_CODES_HELP, Settings, review_format_option

if TYPE_CHECKING:
    from compiler.report import DiffSide


@click.command(
    "diff",
    epilog=EXIT_CODES_HELP,
    short_help="Compare the scores of two stores, with confidence intervals.",
)
@click.argument("base")
@click.argument("head")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--store",
    metavar="URI",
    envvar=["AUDITC_DIFF_STORE", "AUDITC_STORE"],
    help="Store holding the runs of git refs [default: <project>/.auditc]; not used for store URIs.",
)
@review_format_option()
@click.option(
    "--resamples",
    type=click.IntRange(min=100),
    default=DEFAULT_RESAMPLES,
    show_default=True,
    help="Bootstrap resamples.",
)
@click.option(
    "--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed of the bootstrap."
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.5, 1.0, max_open=True),
    default=DEFAULT_CONFIDENCE,
    show_default=True,
    help="Confidence level of the intervals.",
)
@click.pass_obj
def command(
    settings: Settings,
    base: str,
    head: str,
    paths: tuple[str, ...],
    store: str | None,
    format_: str,
    resamples: int,
    seed: int,
    confidence: float,
) -> None:
    """Compare the safety cases of BASE and HEAD score by score.

    BASE and HEAD are each a store (a directory or a URI with ://) or a git ref. A
    store contributes the safety cases its report shows; a git ref contributes the
    safety cases its specs (under PATHS, default audits/) resolve to, looked up by
    node id in --store. Safety cases are paired by Method (and system). For each
    score: old and new value, difference and, where both runs stored per-instance
    values, a paired bootstrap interval of the change; significant when it
    excludes 0. Then which nodes changed and why (spec fields, upstream ids, input
    files, model revision).
    """
    from compiler.report import BootstrapOptions, diff_results, render_diff

    options = BootstrapOptions(resamples=resamples, seed=seed, confidence=confidence)
    sides = [_side(settings, arg, paths, store) for arg in (base, head)]
    report = diff_results(sides[0], sides[1], options)
    click.echo(render_diff(report, format_))  # type: ignore[arg-type]


def _is_store(arg: str) -> bool:
    return "://" in arg or Path(arg).expanduser().is_dir()


def _side(settings: Settings, arg: str, paths: tuple[str, ...], store: str | None) -> DiffSide:
    from compiler.report import DiffSide, load_results
    from schemas import Store

    if _is_store(arg):
        return DiffSide.of_results(arg, load_results(Store.open(arg, create=False)))
    from compiler import GitError

    try:
        return _ref_side(settings, arg, paths, store or settings.default_store)
    except GitError as exc:
        raise UsageError(
            f"{arg!r} is not a store (no such directory); as a git ref: {exc}"
        ) from exc


def _ref_side(settings: Settings, ref: str, paths: tuple[str, ...], store_uri: str) -> DiffSide:
    from compiler import load_project_at, resolve_graph
    from compiler.report import DiffSide, NodeRef, StoreIndex, cases_by_ref
    from schemas import Store

    # Resolve the ref first: an unknown ref is the error to report, not the store.
    graph = resolve_graph(load_project_at(settings.project_dir, ref, settings.spec_paths(paths)))
    store = Store.open(store_uri, create=False)
    refs = {
        node.name: NodeRef(node.kind, node.name, node.id)
        for node in graph
        if node.output_kind == "SafetyCase"
    }
    found = cases_by_ref(StoreIndex.read(store), refs)
    cases = tuple(case for case in found.values() if case is not None)
    missing = tuple(
        f"Method/{name} {refs[name].id} (run `auditc run` at {ref})"
        for name, case in found.items()
        if case is None
    )
    return DiffSide(ref, store, cases, missing)
