"""The site as headless Chromium sees it: no console errors, no network, working links, full tables.

Every page reachable from index.html is opened from the file system; the DevTools
protocol reports console errors, exceptions, refused loads and every request.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from report_browser import Browser, Page, crawl
from report_store import GROUPS, SyntheticStore

from compiler.report import build_site, load_results


@pytest.fixture(scope="module")
def site(synthetic_store: SyntheticStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser-site") / "site"
    build_site(load_results(synthetic_store.store), out)
    return out


def test_every_page_loads_cleanly_offline(browser: Browser, site: Path, tmp_path: Path) -> None:
    shot = tmp_path / "index.png"

    problems = crawl(browser, site, screenshot=shot)

    assert {p: found for p, found in problems.items() if found} == {}
    assert len(problems) == 1 + 2 + 5 + 1 + 5  # index, audits, case pages, provenance, copied cases
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _open(browser: Browser, path: Path) -> Page:
    return browser.open(path.as_uri())


def test_score_table_shows_every_system_and_score(browser: Browser, site: Path) -> None:
    page = _open(browser, site / "audit-filter-safety-case.html")
    try:
        systems = page.evaluate(
            "[...document.querySelectorAll('table.scores th.system')].map(e => e.textContent.trim())"
        )
        rows = page.evaluate(
            """[...document.querySelectorAll('table.scores tbody tr')].map(tr => ({
                score: tr.dataset.score,
                cells: [...tr.querySelectorAll('td')].map(td => ({
                    system: td.dataset.system, value: td.dataset.value, gate: td.dataset.gate || null,
                    rank: td.classList.contains('best') ? 'best' : td.classList.contains('worst') ? 'worst' : null,
                    colour: getComputedStyle(td).backgroundColor}))}))"""
        )
        charts = page.evaluate("document.querySelectorAll('figure.chart svg').length")
        groups = page.evaluate(
            "[...document.querySelectorAll('details table.data tbody th')].map(e => e.textContent)"
        )
    finally:
        page.close()

    assert systems == ["filter-a", "filter-b", "filter-c"]
    assert [r["score"] for r in rows] == ["max_fpr_gap", "accuracy", "flag_rate"]
    for row in rows:
        assert [c["system"] for c in row["cells"]] == systems
        assert all(c["value"] for c in row["cells"])
    gap, accuracy, flagged = ({c["system"]: c for c in r["cells"]} for r in rows)
    # max_fpr_gap: lower is better, so the smallest value is green.
    lowest = min(gap.values(), key=lambda c: float(c["value"]))
    assert lowest["rank"] == "best" and lowest["colour"] == "rgb(218, 251, 225)"
    assert max(gap.values(), key=lambda c: float(c["value"]))["rank"] == "worst"
    # accuracy: higher is better.
    assert max(accuracy.values(), key=lambda c: float(c["value"]))["rank"] == "best"
    assert {c["rank"] for c in flagged.values()} == {None}
    assert [gap[s]["gate"] for s in systems] == ["pass", "fail", "fail"]
    assert charts == 3 + 1  # one per score, one per breakdown column
    assert groups == list(GROUPS)


def test_index_lists_audits_systems_and_gates(browser: Browser, site: Path) -> None:
    page = _open(browser, site / "index.html")
    try:
        audits = page.evaluate(
            "[...document.querySelectorAll('[data-audit]')].map(e => e.dataset.audit)"
        )
        systems = page.evaluate(
            "[...document.querySelectorAll('table.systems tbody tr')].map(e => e.dataset.system)"
        )
        text = page.evaluate("document.body.innerText")
    finally:
        page.close()

    assert audits == ["filter-safety-case", "latency-case"]
    assert systems == ["filter-a", "filter-b", "filter-c"]
    assert "2 gates failed" in text and "4 gates passed" in text
    assert "profanity-check" in text and "0123456789abcdef0123456789abcdef01234567" in text


def test_case_page_frames_the_rendered_safety_case(browser: Browser, site: Path) -> None:
    case_page = next(site.glob("case-filter-safety-case-*.html"))
    page = _open(browser, case_page)
    try:
        frame = page.evaluate("document.querySelector('iframe.case').src")
    finally:
        page.close()

    assert frame in page.report.requests
    assert Path(unquote(urlsplit(frame).path)).read_text().count("Safety case of filter-") == 1


def test_the_harness_sees_errors_and_network_requests(browser: Browser, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
        "<img src='http://127.0.0.1:9/pixel.png'><script>console.error('planted');</script>"
        "<script>undefinedFunction();</script></body></html>"
    )
    blocked = tmp_path / "blocked.html"
    blocked.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' content=\"default-src 'none'\">"
        "</head><body><img src='http://127.0.0.1:9/blocked.png'></body></html>"
    )

    page = _open(browser, bad)
    page.close()
    refused = _open(browser, blocked)
    refused.close()

    assert "http://127.0.0.1:9/pixel.png" in page.report.external
    assert any("planted" in e for e in page.report.errors)
    assert any("undefinedFunction" in e for e in page.report.errors)
    assert any("Content Security Policy" in e or "csp" in e.lower() for e in refused.report.errors)
