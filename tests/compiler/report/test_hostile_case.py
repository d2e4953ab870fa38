"""Script smuggled into a safety case never runs: escaped where auditc renders, contained where notebooks render.

An audit whose spec (a score's `format`, the Method's title) and data (a group name shown
through Markdown and HTML outputs) carry `<img src=x onerror=…>` is run for real with
`auditc run`, reported with `auditc report`, and opened in headless Chromium: the
store's `index.html`, the site's copy, the case page that frames it, and every other page.
The handlers would log `PWNED-…` to the console; none may.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from report_browser import Browser, PageReport

from schemas import Store

HANDLER = "<img src=x onerror=\"console.error('PWNED-{where}')\">"

SPECS = f"""\
kind: Dataset
name: groups
spec:
  file: {{path: groups.jsonl}}
  columns: {{group: string, flagged: int8}}
---
kind: Method
name: hostile-case
documentation:
  title: {json.dumps(HANDLER.format(where="title") + "Is it safe?")}
spec:
  implementation: {{notebook: case.ipynb}}
  inputs: {{groups: groups}}
  output: {{kind: SafetyCase}}
  scores:
    - name: rate
      primary: true
      minimum: 0
      maximum: 1
      format: {json.dumps(HANDLER.format(where="format") + "{value:.1%}")}
      gate: {{max: 0.5}}
"""

CELLS = [
    "from IPython.display import HTML, Markdown, display\n"
    "from runners import analysis\n"
    "rows = analysis.input('groups').to_pylist()\n"
    "group = rows[0]['group']",
    "display(Markdown(f'The most flagged group is **{group}**.'))\n"
    "display(HTML(f'<p>{group}</p>'))\n"
    "display(analysis.table(rows))",
    "display(analysis.score_card(analysis.score('rate', 0.5, text=group)))",
]


def _notebook() -> str:
    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1"}]
    cells += [{"cell_type": "code", "metadata": {}, "source": src} for src in CELLS]
    for cell in cells:
        cell.update(execution_count=None, outputs=[])
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _auditc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the rendered safety case in the store, the site) of the hostile audit."""
    project = tmp_path_factory.mktemp("hostile")
    audits = project / "audits"
    audits.mkdir()
    (audits / "audit.yaml").write_text(SPECS)
    (audits / "case.ipynb").write_text(_notebook())
    group = HANDLER.format(where="data")
    (audits / "groups.jsonl").write_text(
        json.dumps({"group": group, "flagged": 1}) + "\n" + json.dumps({"group": "b", "flagged": 0})
    )
    ran = _auditc("-C", str(project), "run")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    store = Store.open(project / ".auditc", create=False)
    (case,) = [m for m in store.manifests() if m.name == "hostile-case"]
    page = Path(store.path(f"method/hostile-case/{case.id}/_case/index.html"))
    site = project / "site"
    reported = _auditc("-C", str(project), "report", "--out", str(site))
    assert reported.returncode == 0, reported.stderr
    return page, site


def _pwned(report: PageReport) -> list[str]:
    return [e for e in report.errors if "PWNED" in e]


def test_the_stores_safety_case_runs_no_handler(
    browser: Browser, hostile: tuple[Path, Path]
) -> None:
    page_path, _ = hostile
    html = page_path.read_text()
    # Escaped where auditc renders (the score card and the verdict header) …
    assert "&lt;img src=x onerror=" in html
    # … and the page carries a policy that runs no script at all (data shown as Markdown
    # or HTML reaches the page as markup: only the policy can stop it).
    assert "Content-Security-Policy" in html and "script-src" not in html

    page = browser.open(page_path.as_uri())
    try:
        report = page.report
        shown = page.evaluate("document.body.innerText")
    finally:
        page.close()

    assert _pwned(report) == []
    assert any("Content Security Policy" in e for e in report.errors), report.errors
    assert "PWNED-format" in shown  # the escaped format is shown as text, not run


def test_the_sites_copy_and_its_frame_run_no_handler(
    browser: Browser, hostile: tuple[Path, Path]
) -> None:
    _, site = hostile
    (copy,) = site.glob("cases/*/index.html")
    (case_page,) = site.glob("case-hostile-case-*.html")
    frame = case_page.read_text()
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame

    seen = {}
    for path in (copy, case_page, site / "index.html", site / "audit-hostile-case.html"):
        page = browser.open(path.as_uri())
        try:
            seen[path.name] = _pwned(page.report)
        finally:
            page.close()

    assert seen == dict.fromkeys(seen, [])
    # The site's own pages escape the title and format; nothing there is even refused.
    assert "&lt;img src=x onerror=" in (site / "index.html").read_text()
