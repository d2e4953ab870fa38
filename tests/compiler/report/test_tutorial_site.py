"""The report, check and diff of a store filled by really running the tutorial audit.

One `auditc run audits/tutorial` per session (about 30 s on 2 cores) into a fresh
store; the tests then read it the way a user would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from report_browser import Browser, crawl

from compiler.report import DiffSide, build_site, check_gates, diff_results, load_results
from schemas import Store

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def tutorial_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = tmp_path_factory.mktemp("tutorial") / "store"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler.cli.main",
            "-C",
            str(ROOT),
            "run",
            "audits/tutorial",
            "--store",
            str(store),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return Store.open(store, create=False)


def test_the_tutorial_site_loads_cleanly(
    tutorial_store: Store, browser: Browser, tmp_path: Path
) -> None:
    results = load_results(tutorial_store)
    out = tmp_path / "site"

    site = build_site(results, out)
    problems = crawl(browser, out, screenshot=tmp_path / "tutorial-index.png")

    assert {p: found for p, found in problems.items() if found} == {}
    assert site.cases == 1 and site.systems == 1
    (case,) = results.cases
    assert case.system_label == "offensive-filter"
    assert case.systems[0].model == "profanity-check"
    assert [m.name for m in case.measurements]  # the breakdowns come from real measurements
    page = (out / f"audit-{case.method}.html").read_text()
    for score in case.scores.scores:
        assert f'data-score="{score.name}"' in page
        assert score.formatted() in page
    assert "Breakdowns by group" in page
    # The safety case leads with the audit's question, the primary score and its gate.
    case_page = next(out.glob("case-*.html")).read_text()
    verdict = case_page[
        case_page.index('id="verdict"') : case_page.index('class="provenance-block"')
    ]
    assert "Does the offensive-language filter flag harmless mentions" in verdict
    assert "80.0%" in verdict and 'class="badge fail"' in verdict
    assert "identity_sentences.jsonl" in case_page  # the data's hash in the provenance block


def test_a_published_site_shows_no_local_path(tutorial_store: Store, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(load_results(tutorial_store), out)

    local = [tutorial_store.base, str(ROOT), str(Path.home()), str(tmp_path.parent)]
    leaks = {
        path.relative_to(out).as_posix(): [root for root in local if root in path.read_text()]
        for path in out.rglob("*")
        if path.is_file() and path.suffix in (".html", ".css")
    }
    assert {k: v for k, v in leaks.items() if v} == {}
    assert "from <code>store</code>" in (out / "index.html").read_text()


def test_check_lists_every_tutorial_gate(tutorial_store: Store) -> None:
    results = load_results(tutorial_store)
    gated = [s for c in results.cases for s in c.scores.scores if s.passed() is not None]

    result = check_gates(results)

    assert gated, "the tutorial declares gates"
    assert sorted(g.score.name for g in result.gates) == sorted(s.name for s in gated)
    assert result.ok == all(s.passed() for s in gated)


def test_the_tutorial_compared_with_itself_has_no_significant_change(tutorial_store: Store) -> None:
    side = DiffSide.of_results("tutorial", load_results(tutorial_store))

    report = diff_results(side, side)

    (case,) = report.cases
    with_instances = [s for s in case.scores if s.comparison is not None]
    assert with_instances, "the tutorial stores per-instance values"
    assert all(s.significant is False and s.delta == 0 for s in with_instances)
    assert all(s.verdict == "unchanged" for s in with_instances)
    assert report.nodes == []
