"""`auditc diff BASE HEAD`: compare the scores of two stores or two git refs, with intervals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from compiler.report import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
from schemas import UsageError

from ._common import EXIT_FAILED, EXIT_OK, Settings, check_store, review_format_option
from ._scoping import all_option, results_scope, run_option, select_option

if TYPE_CHECKING:
    from compiler.report import DiffReport, DiffSide, RunChoice, Scope

DIFF_EXIT_CODES = (
    "Exit codes: 0 compared (whatever changed, unless --fail-on says otherwise); 1 --fail-on "
    "matched, or a store could not be read; 2 invalid specs or usage; 3 internal error (a "
    "bug: please report it)."
)


MAX_RESAMPLES = 100_000
"""More resamples than this add nothing to an interval but time and memory."""


@click.command(
    "diff",
    epilog=DIFF_EXIT_CODES,
    short_help="Compare the scores of two stores, with confidence intervals.",
)
@click.argument("base")
@click.argument("head")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--store",
    metavar="URI",
    envvar=["AUDITC_DIFF_STORE", "AUDITC_STORE"],
    callback=check_store,
    help="Store holding the runs of git refs [default: <project>/.auditc]; not used for store URIs.",
)
@select_option()
@all_option()
@run_option(
    "--base-run",
    "Read this recorded run of each BASE safety case instead of its current one: a run "
    "number or `previous` (runs that `auditc run --force` replaced are kept).",
)
@run_option("--head-run", "The same for HEAD.")
@review_format_option()
@click.option(
    "--fail-on",
    type=click.Choice(["regression", "worse"]),
    default=None,
    help="Exit 1 on a gate regression (PASS → FAIL, PASS → INCONCLUSIVE, INCONCLUSIVE → "
    "FAIL); `worse` also on a significant change for the worse. For CI.",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=100, max=MAX_RESAMPLES),
    default=DEFAULT_RESAMPLES,
    show_default=True,
    help="Bootstrap resamples.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**32 - 1),
    default=DEFAULT_SEED,
    show_default=True,
    help="Seed of the bootstrap and permutations (0 to 2^32-1).",
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
    selected: tuple[str, ...],
    whole_store: bool,
    base_run: RunChoice | None,
    head_run: RunChoice | None,
    store: str | None,
    format_: str,
    fail_on: str | None,
    resamples: int,
    seed: int,
    confidence: float,
) -> int:
    """Compare the safety cases of BASE and HEAD: gate flips first, then every score.

    BASE and HEAD are each a store (a directory or a URI with ://) or a git ref. A
    store contributes its latest runs of the safety-case Methods of the specs under
    PATHS (default: audits/; --select narrows them, --all takes every Method in the
    store); a git ref contributes the safety cases its specs resolve to, looked up by
    node id in --store. Safety cases are paired by Method (and system).

    First the gates that flipped (PASS → FAIL is a regression, FAIL → PASS an
    improvement). Then, per score: old and new value, difference and, where both runs
    stored per-instance values, a paired test (exact McNemar for 0/1 values, else a
    paired permutation test), a paired bootstrap interval of the change, and the
    verdict, with p-values Holm-adjusted over the whole diff; how many instances paired,
    changed or are in one run only, with a warning when a changed dataset is paired by
    row position. Last, which nodes changed and why.
    """
    from compiler.report import BootstrapOptions, diff_results, render_diff

    options = BootstrapOptions(resamples=resamples, seed=seed, confidence=confidence)
    scope = None
    if not whole_store and any(_is_store(arg) for arg in (base, head)):
        scope = results_scope(settings, paths, selected, whole_store)
    elif whole_store and (paths or selected):
        raise UsageError("--all reads the whole store; it takes no PATHS or --select")
    sides = [
        _side(settings, arg, paths, selected, store, scope, run)
        for arg, run in ((base, base_run), (head, head_run))
    ]
    report = diff_results(sides[0], sides[1], options)
    click.echo(render_diff(report, format_))  # type: ignore[arg-type]
    return EXIT_FAILED if _fails(report, fail_on) else EXIT_OK


def _fails(report: DiffReport, fail_on: str | None) -> bool:
    if fail_on is None:
        return False
    if report.regressions:
        return True
    return fail_on == "worse" and bool(report.worse)


def _is_store(arg: str) -> bool:
    return "://" in arg or Path(arg).expanduser().is_dir()


def _side(
    settings: Settings,
    arg: str,
    paths: tuple[str, ...],
    selected: tuple[str, ...],
    store: str | None,
    scope: Scope | None,
    run: RunChoice | None,
) -> DiffSide:
    from compiler.report import DiffSide, load_results
    from schemas import Store

    label = arg if run is None else f"{arg} (run {run})"
    if _is_store(arg):
        opened = Store.open(arg, create=False)
        results = load_results(opened, scope, by_method=True, run=run)
        return DiffSide(label, opened, tuple(results.cases), results.unavailable)
    from compiler import GitError

    try:
        return _ref_side(settings, arg, paths, selected, store or settings.default_store, run)
    except GitError as exc:
        raise UsageError(
            f"{arg!r} is not a store (no such directory); as a git ref: {exc}"
        ) from exc


def _ref_side(
    settings: Settings,
    ref: str,
    paths: tuple[str, ...],
    selected: tuple[str, ...],
    store_uri: str,
    run: RunChoice | None,
) -> DiffSide:
    from compiler import load_scoped_graph_at
    from compiler.report import DiffSide, NodeRef, SafetyCase, StoreIndex, cases_by_ref
    from schemas import Store

    # Resolve the ref first: an unknown ref is the error to report, not the store.
    graph = load_scoped_graph_at(
        settings.project_dir, ref, settings.spec_paths(paths), given=bool(paths), select=selected
    )
    store = Store.open(store_uri, create=False)
    refs = {
        node.name: NodeRef(node.kind, node.name, node.id)
        for node in graph
        if node.output_kind == "SafetyCase"
    }
    found = cases_by_ref(StoreIndex.read(store), refs, run)
    cases = tuple(case for case in found.values() if isinstance(case, SafetyCase))
    missing = tuple(
        f"Method/{name} {refs[name].id} (run `auditc run` at {ref})" if case is None else case
        for name, case in found.items()
        if not isinstance(case, SafetyCase)
    )
    return DiffSide(ref if run is None else f"{ref} (run {run})", store, cases, missing)
